"""Test instances of the SNS paper (spec §2.6)."""

from __future__ import annotations

import numpy as np
import torch


def random_assignment_instance(n: int, seed: int, dtype: torch.dtype = torch.float64,
                               device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """R1 of spec §2.6 (Table 1 of the paper): ``C = default_rng(seed).random((n, n))``, uniform marginals 1/n.

    Returns (C (n, n), a (n,), b (n,)).
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    C = torch.as_tensor(np.random.default_rng(seed).random((n, n)), dtype=dtype, device=device)
    a = torch.full((n,), 1.0 / n, dtype=dtype, device=device)
    return C, a, a.clone()
