"""The one place test tolerances are defined: ``tol(dtype, kind)`` -> kwargs for ``torch.testing.assert_close``."""

from __future__ import annotations

import torch

# kind -> (float64 (rtol, atol), float32 (rtol, atol)). "exact": direct algebra (products, folds);
# "solve": solves/logdets of matrices with condition number <= ~1e4; "spectral": eigen-decompositions.
_TOLERANCES = {
    "exact": ((1e-12, 1e-12), (1e-5, 1e-5)),
    "solve": ((1e-9, 1e-10), (1e-3, 1e-4)),
    "spectral": ((1e-8, 1e-9), (1e-3, 1e-4)),
}


def tol(dtype: torch.dtype, kind: str = "exact") -> dict[str, float]:
    """``{"rtol": ..., "atol": ...}`` for comparisons of this kind in this dtype."""
    if kind not in _TOLERANCES:
        raise ValueError(f"unknown tolerance kind {kind!r}; valid: {sorted(_TOLERANCES)}")
    double, single = _TOLERANCES[kind]
    rtol, atol = double if dtype in (torch.float64, torch.complex128) else single
    return {"rtol": rtol, "atol": atol}
