"""Input conversion shared by the numerics modules."""

from __future__ import annotations

import numpy as np
import torch


def as_dense_tensor(value, name: str, dtype=None, device=None) -> torch.Tensor:
    """numpy / scipy.sparse / torch (dense or sparse) -> dense floating torch tensor, NaN/Inf rejected."""
    if hasattr(value, "toarray") and not isinstance(value, torch.Tensor):        # scipy.sparse
        value = value.toarray()
    if isinstance(value, torch.Tensor) and value.layout != torch.strided:
        value = value.to_dense()
    t = torch.as_tensor(np.asarray(value) if not isinstance(value, torch.Tensor) else value)
    if not t.is_floating_point():
        t = t.to(torch.float64)
    if dtype is not None or device is not None:
        t = t.to(dtype=dtype or t.dtype, device=device or t.device)
    if not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name} contains NaN or Inf; BCD needs finite data")
    return t
