"""Construction routes of the Chebyshev-Tucker format: validation, sampling, adaptive degree, compression.

Helpers of :class:`sciml.tensor.ChebyshevTucker` (callable, grid and CP input); not exported from sciml.tensor.
Imports only torch, sciml.core, sciml.linalg and (lazily, through ct_spline) scipy.

Reference:
    Benner, Khoromskij, Khoromskaia, Sun, arXiv 2503.01696 (2025), Algorithms 3.1-3.3.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Callable, Sequence

import torch

from sciml.core import Status, like
from sciml.linalg import (
    TuckerTensor,
    chebyshev_coefficients,
    chebyshev_nodes,
    multi_mode_product,
    tucker_hooi,
    tucker_hosvd,
)
from sciml.tensor.ct_spline import cell_centres, spline_to_nodes

Interval = tuple[float, float]

# Adaptive degree: number of points per mode tried in turn (nested Lobatto grids, m -> 2m - 1).
_ADAPTIVE_POINTS = (9, 17, 33, 65, 129, 257, 513)
# Chebyshev coefficients of smooth data floor at ~1e3 eps relative to the largest one (rounding in f and in the
# DCT); asking the tail to go below that would never stop.
_NOISE_FLOOR = 1e3 * torch.finfo(torch.float64).eps
# The last TAIL_SLICES coefficient slices of a mode measure how well that mode is resolved (grid/CP input).
_TAIL_SLICES = 2
# Slice sums of |coefficients| (relative to max |f|) at or below this are rounding noise (m^{d-1} terms of ~1e-17).
_L1_FLOOR = 1e-12
# Random points at which every callable fit is checked against f (fixed seed: reproducible).
CHECK_POINTS = 1000
CHECK_SEED = 20250301
# Points of a callable evaluated per call (bounds the memory of f's intermediates).
_EVAL_CHUNK = 2 ** 20


# ------------------------------------------------------------------------------------------------------ validation

def check_domain(domain) -> tuple[Interval, ...]:
    """A sequence of d >= 1 finite intervals (low, high) with low < high."""
    try:
        items = list(domain)
    except TypeError:
        raise ValueError(f"domain must be a sequence of (low, high) pairs, one per dimension, got {domain!r}") from None
    if not items:
        raise ValueError("domain is empty; give one (low, high) pair per dimension")
    if all(isinstance(v, numbers.Real) for v in items):
        raise ValueError(f"domain must be a sequence of (low, high) pairs, one per dimension (e.g. [(-1, 1)] * 3), "
                         f"got the flat {domain!r}")
    box = []
    for i, pair in enumerate(items):
        try:
            lo, hi = (float(v) for v in pair)
        except (TypeError, ValueError):
            raise ValueError(f"domain[{i}] must be a pair (low, high) of numbers, got {pair!r}") from None
        if not (math.isfinite(lo) and math.isfinite(hi)):
            raise ValueError(f"domain[{i}] must have finite ends, got ({lo}, {hi})")
        if not lo < hi:
            raise ValueError(f"domain[{i}] is empty or inverted: need low < high, got ({lo}, {hi})")
        box.append((lo, hi))
    return tuple(box)


def check_tol(tol) -> float:
    if isinstance(tol, bool) or not isinstance(tol, numbers.Real) or not math.isfinite(tol) or not 0 < tol < 1:
        raise ValueError(f"tol must be a number in (0, 1), got {tol!r}")
    return float(tol)


def check_degrees(degree, d: int) -> tuple[int, ...] | None:
    if degree is None:
        return None
    degs = [degree] * d if isinstance(degree, numbers.Integral) and not isinstance(degree, bool) else list(degree)
    if len(degs) != d:
        raise ValueError(f"degree must be an int or one int per dimension ({d}), got {degree!r}")
    for g in degs:
        if isinstance(g, bool) or not isinstance(g, numbers.Integral) or g < 1:
            raise ValueError(f"degree must be an integer >= 1 (per dimension), got {degree!r}")
    return tuple(int(g) for g in degs)


def check_sweeps(als_sweeps) -> int:
    if isinstance(als_sweeps, bool) or not isinstance(als_sweeps, numbers.Integral) or als_sweeps < 0:
        raise ValueError(f"als_sweeps must be an integer >= 0, got {als_sweeps!r}")
    return int(als_sweeps)


# ------------------------------------------------------------------------------------------------------- helpers

def node_grid(points: Sequence[int], box: Sequence[Interval], dtype, device) -> list[torch.Tensor]:
    return [chebyshev_nodes(m, 2, iv, dtype=dtype, device=device) for m, iv in zip(points, box)]


# Tensor Chebyshev interpolation needs f on the whole box; a function defined only on a sub-region (a ball, a
# molecule's surface) signals it by NaN outside. Say what to do instead of fitting garbage.
_NOT_A_BOX = ("Chebyshev-Tucker samples f on the whole box domain (tensor grids of Chebyshev nodes); if f is "
              "defined only on a non-box region, extend it smoothly to the bounding box (e.g. a smooth cut-off "
              "times f, or f of the point projected onto the region) and use sciml.tensor.fit_on_region, which "
              "fits the bounding box and measures the error inside the region, or fit a box inside the region")


def sample(f: Callable, nodes: list[torch.Tensor]) -> torch.Tensor:
    """f on the tensor grid of ``nodes``, called on (K, d) chunks; checks shape and finiteness."""
    d = len(nodes)
    shape = tuple(n.shape[0] for n in nodes)
    mesh = torch.stack(torch.meshgrid(*nodes, indexing="ij"), dim=-1).reshape(-1, d)  # (prod m, d)
    out = []
    for start in range(0, mesh.shape[0], _EVAL_CHUNK):
        chunk = mesh[start:start + _EVAL_CHUNK]
        vals = f(chunk)
        if not isinstance(vals, torch.Tensor):
            raise ValueError(f"f must return a torch.Tensor, got {type(vals).__name__}")
        if tuple(vals.shape) != (chunk.shape[0],):
            raise ValueError(f"f must map points of shape (..., {d}) to values of shape (...); for input "
                             f"{tuple(chunk.shape)} it returned {tuple(vals.shape)}")
        if not bool(torch.isfinite(vals).all()):
            bad = ~torch.isfinite(vals)
            raise ValueError(f"f returned NaN or Inf at {int(bad.sum())} of {chunk.shape[0]} Chebyshev nodes, e.g. "
                             f"at x = {chunk[bad][0].tolist()}. {_NOT_A_BOX}")
        out.append(vals.to(chunk.dtype))
    return torch.cat(out).reshape(shape)


def tail_ratio(coeffs: torch.Tensor, dim: int) -> float:
    """Largest |coefficient| in the last slices along ``dim``, relative to the largest overall."""
    top = float(coeffs.abs().max())
    if top == 0.0:
        return 0.0
    last = coeffs.movedim(dim, 0)[-_TAIL_SLICES:]
    return float(last.abs().max()) / top


def compress(coeffs: torch.Tensor, tol: float, als_sweeps: int) -> tuple[TuckerTensor, float, int]:
    """Tolerance HOSVD (exact SVDs) of the coefficient tensor, optionally refined by ALS; (tucker, rel err, sweeps)."""
    norm = torch.linalg.vector_norm(coeffs)
    if coeffs.ndim == 1 and float(norm) > 0:  # a 1-D series is its own rank-1 Tucker tensor
        return TuckerTensor(norm.reshape(1), ((coeffs / norm)[:, None],)), 0.0, 0
    if float(norm) == 0.0:
        core = coeffs.new_zeros((1,) * coeffs.ndim)
        return TuckerTensor(core, tuple(_unit_column(coeffs, n) for n in coeffs.shape)), 0.0, 0
    fit = tucker_hosvd(coeffs, tol=tol, method="svd")
    if als_sweeps == 0:
        return fit.tucker, fit.rel_error, 0
    # Fixed sweep budget (the paper's Tucker-ALS); running out of sweeps is the expected outcome, not a failure.
    refined = tucker_hooi(coeffs, fit.ranks, n_iter_max=als_sweeps, tol=1e-4, init=fit.tucker, on_failure="ignore")
    return refined.tucker, refined.rel_error, refined.n_iter


def _unit_column(ref: torch.Tensor, n: int) -> torch.Tensor:
    e = torch.zeros(n, 1, **like(ref))
    e[0, 0] = 1.0
    return e


def orthonormalise(core: torch.Tensor, factors: Sequence[torch.Tensor]) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """QR every factor and fold the triangular parts into the core (same tensor, orthonormal factors)."""
    qs, rs = [], []
    for f in factors:
        q, r = torch.linalg.qr(f)
        qs.append(q)
        rs.append(r)
    return multi_mode_product(core, rs), qs


def pad_rows(v: torch.Tensor, m: int) -> torch.Tensor:
    return torch.cat([v, v.new_zeros(m - v.shape[0], v.shape[1])]) if v.shape[0] < m else v


def block_diagonal_core(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    out = a.new_zeros(tuple(x + y for x, y in zip(a.shape, b.shape)))
    out[tuple(slice(0, x) for x in a.shape)] = a
    out[tuple(slice(x, None) for x in a.shape)] = b
    return out


# ------------------------------------------------------------------------------------------------ private routes

def to_chebyshev_nodes(values: torch.Tensor, box: Sequence[Interval], grid, degree,
                        modes: int | None = None) -> torch.Tensor:
    """Samples at the Chebyshev-Lobatto nodes of ``box`` along the first ``modes`` modes of ``values``."""
    modes = values.ndim if modes is None else modes
    if isinstance(grid, str):
        if grid == "chebyshev":
            if degree is not None:
                expected = check_degrees(degree, modes)
                got = tuple(values.shape[k] - 1 for k in range(modes))
                if expected != got:
                    raise ValueError(f"values at Chebyshev nodes of shape {tuple(values.shape)} have degrees {got},"
                                     f" not the requested {expected}")
            for k in range(modes):
                if values.shape[k] < 2:
                    raise ValueError(f"need >= 2 Chebyshev samples per mode, mode {k} has {values.shape[k]}")
            return values
        if grid != "uniform":
            raise ValueError(f"grid must be 'chebyshev', 'uniform' or a list of coordinate tensors, got {grid!r}")
        coords = [cell_centres(values.shape[k], box[k], dtype=values.dtype, device=values.device)
                  for k in range(modes)]
    else:
        coords = list(grid)
        if len(coords) != modes:
            raise ValueError(f"grid must hold {modes} coordinate tensors, got {len(coords)}")
    degrees = check_degrees(128 if degree is None else degree, modes)
    out = values
    for k in range(modes):
        nodes = chebyshev_nodes(degrees[k] + 1, 2, box[k], dtype=values.dtype, device=values.device)
        out = spline_to_nodes(out, coords[k], nodes, dim=k)
    return out


def slice_sums(coeffs: torch.Tensor, dim: int, scale: float) -> torch.Tensor:
    """``s_j = sum |C[..., j, ...]|`` over all other modes (index j along ``dim``), divided by ``scale``. Shape (m,).

    ``sum_{j >= m} s_j`` bounds the sup-norm contribution of the unresolved coefficients along ``dim`` (|T_k| <= 1);
    the slice *maximum* used before badly underestimates it for point singularities, where the error is spread
    over m^{d-1} coefficients per slice.
    """
    other = tuple(k for k in range(coeffs.ndim) if k != dim)
    sums = coeffs.abs().sum(dim=other) if other else coeffs.abs()
    return sums / scale if scale > 0 else sums


def tail_estimate(sums: torch.Tensor) -> tuple[float, float, str]:
    """Estimated ``sum_{j >= m} s_j`` of a mode's slice sums from their decay rate: (estimate, rate, model).

    The envelope e_j = max(s_j, s_{j-1}) (even/odd coefficients of symmetric functions alternate with zeros) over
    the last half of the indices is fitted both as geometric decay (log e linear in j: analytic functions) and as
    algebraic decay (log e linear in log j: kinks, cusps); the better fit extrapolates the tail:
    geometric ``e_m rho / (1 - rho)``, algebraic ``e_m m / (p - 1)`` (infinite when p <= 1 or rho >= 1). Once the
    envelope is at rounding level the estimate is that level. ``rate`` is rho or p.
    """
    m = sums.shape[0]
    # A handful of numbers: fit on the CPU (the coefficients may live on a GPU).
    sums = sums.detach().to("cpu", torch.float64)
    sums = torch.cat([sums[:-1], 2 * sums[-1:]])  # DCT-I halves the last coefficient; undo it for the fit
    env = torch.maximum(sums, torch.cat([sums[:1], sums[:-1]]))
    last = float(env[-1])
    if float(env[-max(2, m // 4):].max()) <= _L1_FLOOR or m < 6:
        return max(last, float(env[-max(2, m // 4):].max())), 0.0, "floor"
    j = torch.arange(m // 2, m, dtype=torch.float64)
    logs = torch.log(env[m // 2:].to(torch.float64).clamp_min(1e-300))
    best = None
    for model, x in (("geometric", j), ("algebraic", torch.log(j))):
        xc = x - x.mean()
        slope = float((xc * (logs - logs.mean())).sum() / (xc * xc).sum())
        resid = float(((logs - logs.mean() - slope * xc) ** 2).mean())
        if model == "geometric":
            rho = math.exp(slope)
            tail, rate = (last * rho / (1 - rho) if rho < 1 else math.inf), rho
        else:
            p = -slope
            tail, rate = (last * m / (p - 1) if p > 1 else math.inf), p
        if best is None or resid < best[0]:
            best = (resid, tail, rate, model)
    return last + best[1], best[2], best[3]


def _points_needed(estimate: float, rate: float, model: str, m: int, target: float) -> float:
    """Extrapolated number of points at which the tail estimate reaches ``target`` (inf if never)."""
    if estimate <= target:
        return m
    if model == "geometric" and 0 < rate < 1:
        return m + math.log(target / estimate) / math.log(rate)
    if model == "algebraic" and rate > 1:
        return m * (estimate / target) ** (1.0 / (rate - 1.0))
    return math.inf


def check_points(f: Callable, box: Sequence[Interval], n: int, dtype, device) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` uniformly random points of the box (fixed seed: reproducible) and f there."""
    gen = torch.Generator().manual_seed(CHECK_SEED)
    u = torch.rand(n, len(box), generator=gen, dtype=torch.float64)
    lo = torch.tensor([a for a, _ in box], dtype=torch.float64)
    hi = torch.tensor([b for _, b in box], dtype=torch.float64)
    pts = (lo + u * (hi - lo)).to(dtype=dtype, device=device)
    return pts, sample_points(f, pts)


def sample_points(f: Callable, pts: torch.Tensor) -> torch.Tensor:
    vals = f(pts)
    if not isinstance(vals, torch.Tensor) or tuple(vals.shape) != (pts.shape[0],):
        raise ValueError(f"f must map points (K, d) to a tensor (K,); got {type(vals).__name__} "
                         f"{tuple(getattr(vals, 'shape', ()))}")
    if not bool(torch.isfinite(vals).all()):
        raise ValueError(f"f returned NaN or Inf at a check point. {_NOT_A_BOX}")
    return vals.to(pts.dtype)


@dataclasses.dataclass(frozen=True)
class AdaptiveFit:
    """Outcome of the adaptive degree search: coefficients, per-mode tail estimates and the reason it stopped."""

    coeffs: torch.Tensor
    tails: tuple[float, ...]
    models: tuple[str, ...]
    scale: float
    status: Status
    reason: str


def adaptive(f: Callable, box: Sequence[Interval], tol: float, max_degree: int, dtype, device) -> AdaptiveFit:
    """Grow the number of points per mode (nested m -> 2m - 1) until each mode's extrapolated tail is <= tol / (2d)
    (so that the d tails together stay below tol / 2).

    A mode whose fitted decay rate predicts that even ``max_degree`` cannot reach the target (algebraic decay of
    a kink at a tight tol) stops at once: MAX_ITER without sampling the largest grids.
    """
    d = len(box)
    target = max(tol / (2 * d), _L1_FLOOR)
    sizes = [p for p in _ADAPTIVE_POINTS if p - 1 <= max_degree] or [max_degree + 1]
    idx = [0] * d
    while True:
        points = [sizes[i] for i in idx]
        values = sample(f, node_grid(points, box, dtype, device))
        scale = float(values.abs().max())
        coeffs = chebyshev_coefficients(values)
        fits = [tail_estimate(slice_sums(coeffs, k, scale)) for k in range(d)]
        tails = tuple(t for t, _, _ in fits)
        models = tuple(mdl for _, _, mdl in fits)
        unresolved = [k for k in range(d) if tails[k] > target]
        if not unresolved:
            return AdaptiveFit(coeffs, tails, models, scale, Status.CONVERGED, "coefficient tails below tol / (2d)")
        # Decay rates from fewer than 33 coefficients are too rough to give up on.
        hopeless = [k for k in unresolved if points[k] >= 33
                    and _points_needed(tails[k], fits[k][1], models[k], points[k], target) > sizes[-1] * 1.5]
        grow = [k for k in unresolved if idx[k] + 1 < len(sizes)]
        if hopeless or not grow:
            k = (hopeless or unresolved)[0]
            why = (f"mode {k}: {models[k]} coefficient decay (rate {fits[k][1]:.3g}) extrapolates to a tail "
                   f"{tails[k]:.1e} > tol / (2d) that degree {sizes[-1] - 1} cannot reach")
            return AdaptiveFit(coeffs, tails, models, scale, Status.MAX_ITER, why)
        for k in grow:
            idx[k] += 1
