"""Chebyshev-Tucker for a function wanted on a non-box region (a ball, a simplex, a shell).

Tensor Chebyshev interpolation samples f on grids of the whole bounding box, so the simplest honest treatment of a
non-box region R is: f must be defined (and smooth) on the bounding box, the format is fitted there, and its error
is measured where the caller cares, at random points inside R. The caller gets a warning that the fit is of the
box (the format itself knows nothing about R) and ``status`` CONVERGED only when the error measured inside R is
<= tol. A function that is undefined outside R (NaN there) still gets the clear "not a box" error: extending it
smoothly is the caller's job (a smooth cut-off, or f of the point projected onto R), because any automatic
extension would add a kink the interpolant then has to resolve.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable

import torch

from sciml.core import Status, report_status
from sciml.tensor.chebyshev_tucker import ChebyshevTucker
from sciml.tensor.ct_build import CHECK_POINTS, check_domain, check_tol, sample_points

_REGION_SEED = 20250303
_MIN_ACCEPTANCE = 1e-3   # below this the region is a sliver of the box and the box fit wastes almost everything


def region_points(region: Callable[[torch.Tensor], torch.Tensor], box, n: int, dtype=torch.float64,
                  device=None) -> torch.Tensor:
    """``n`` uniformly random points of the box that satisfy ``region`` (rejection sampling, fixed seed)."""
    gen = torch.Generator().manual_seed(_REGION_SEED)
    lo = torch.tensor([a for a, _ in box], dtype=torch.float64)
    hi = torch.tensor([b for _, b in box], dtype=torch.float64)
    batch = max(4 * n, 4096)
    u = lo + torch.rand(batch, len(box), generator=gen, dtype=torch.float64) * (hi - lo)
    inside = region(u.to(dtype=dtype, device=device))
    if not isinstance(inside, torch.Tensor) or inside.dtype != torch.bool or tuple(inside.shape) != (batch,):
        raise TypeError(f"region must map points (K, d) to a bool tensor (K,), got {type(inside).__name__} "
                        f"{getattr(inside, 'dtype', '')} {tuple(getattr(inside, 'shape', ()))}")
    inside = inside.cpu()
    rate = float(inside.double().mean())
    if rate < _MIN_ACCEPTANCE:
        raise ValueError(f"region covers {rate:.1e} of its bounding box {box} (< {_MIN_ACCEPTANCE}); "
                         "give a tighter box")
    kept = u[inside]
    while kept.shape[0] < n:   # rare: only when the region is a small part of the box
        u = lo + torch.rand(batch, len(box), generator=gen, dtype=torch.float64) * (hi - lo)
        kept = torch.cat([kept, u[region(u.to(dtype=dtype, device=device)).cpu()]])
    return kept[:n].to(dtype=dtype, device=device)


def fit_on_region(f: Callable[[torch.Tensor], torch.Tensor], region: Callable[[torch.Tensor], torch.Tensor], box,
                  tol: float = 1e-8, *, n_check: int = CHECK_POINTS, on_failure: str = "warn",
                  dtype: torch.dtype = torch.float64, device=None, **fit_kwargs) -> ChebyshevTucker:
    """Chebyshev-Tucker of f for use on ``region`` ⊂ ``box``, fitted on the box and checked inside the region.

    Args:
        f: callable (K, d) -> (K,), defined and smooth on the whole box (NaN there raises the "not a box" error).
        region: callable (K, d) -> bool (K,), True inside the region of interest.
        box: the bounding box, d pairs (low, high).
        tol: relative tolerance of the error inside the region.
        n_check: random points inside the region at which f and the format are compared.
        fit_kwargs: passed to ``ChebyshevTucker.fit`` (degree, als_sweeps, max_degree).

    Returns:
        The box fit, with ``check_error`` = max |f - format| / max |f| over the region's check points and
        ``status`` CONVERGED only when that is <= tol (a UserWarning says the fit is of the bounding box).
    """
    box = check_domain(box)
    tol = check_tol(tol)
    if not callable(region):
        raise TypeError(f"region must be callable (points -> bool mask), got {type(region).__name__}")
    pts = region_points(region, box, n_check, dtype, device)
    warnings.warn("fit_on_region: the Chebyshev-Tucker format interpolates f on the bounding box "
                  f"{box}; the region only decides where its error is measured", UserWarning, stacklevel=2)
    fitted = ChebyshevTucker.fit(f, box, tol=tol, on_failure="ignore", dtype=dtype, device=device, **fit_kwargs)
    vals = sample_points(f, pts)
    scale = float(vals.abs().max())
    err = float((fitted.evaluate(pts) - vals).abs().max()) / scale if scale > 0 else 0.0
    ok = err <= tol and fitted.status in (Status.CONVERGED, Status.MAX_ITER)
    status = Status.CONVERGED if ok else Status.MAX_ITER
    report_status(status, "fit_on_region", f"error inside the region {err:.1e} at {n_check} random points "
                  f"(tol {tol:.0e}); box fit: {fitted.status.label}, box error {fitted.check_error:.1e}", on_failure)
    return dataclasses.replace(fitted, status=status, check_error=err)
