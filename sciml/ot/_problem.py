"""Input checks and the shared log-domain plan algebra of entropic OT (paper convention, eta = 1/reg).

Plan from duals: ``P(x, y)_ij = exp(eta (-C_ij + x_i + y_j) - 1)``. Rows/columns of zero mass are removed before
solving (their log-mass is -inf) and put back as zero rows/columns of the plan afterwards.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch


@dataclasses.dataclass(frozen=True)
class Problem:
    """A validated OT problem restricted to the support of the marginals.

    Shapes: a (n,), b (m,), C (n, m) on the support; ``rows`` (n,), ``cols`` (m,) index the full problem of shape
    ``full_shape``.
    """

    a: torch.Tensor
    b: torch.Tensor
    C: torch.Tensor
    eta: float
    rows: torch.Tensor
    cols: torch.Tensor
    full_shape: tuple[int, int]
    full_C: torch.Tensor

    @property
    def log_a(self) -> torch.Tensor:
        return torch.log(self.a)

    @property
    def log_b(self) -> torch.Tensor:
        return torch.log(self.b)


def _as_tensor(value, name: str, like: torch.Tensor | None) -> torch.Tensor:
    if isinstance(value, np.ndarray) or isinstance(value, (list, tuple)):
        value = torch.as_tensor(np.asarray(value))
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor or numpy array, got {type(value).__name__}")
    if value.is_complex():
        raise ValueError(f"{name} must be real, got dtype {value.dtype}")
    if like is None:
        dtype = value.dtype if value.is_floating_point() else torch.float64  # float64 default (§2.7.8)
        return value.to(dtype)
    return value.to(dtype=like.dtype, device=like.device)


def check_problem(C, a, b, eta: float) -> Problem:
    """Validate ``(C, a, b, eta)`` and restrict to the marginals' support.

    Raises ValueError for: non-2-D C, a/b not 1-D of matching lengths, NaN/Inf or negative costs or marginals,
    zero total mass, unequal total masses (relative gap above sqrt(eps) of the dtype), eta not a finite number > 0.
    Negative costs are refused on purpose (the issue asks for it): shifting C by a constant leaves the plan
    unchanged, so pass ``C - C.min()``.
    """
    C = _as_tensor(C, "C", None)
    a = _as_tensor(a, "a", C)
    b = _as_tensor(b, "b", C)
    if C.ndim != 2:
        raise ValueError(f"C must be a 2-D cost matrix (n, m), got shape {tuple(C.shape)}")
    n, m = C.shape
    if a.ndim != 1 or b.ndim != 1 or a.shape[0] != n or b.shape[0] != m:
        raise ValueError(f"a and b must be 1-D with lengths ({n}, {m}) matching C of shape {tuple(C.shape)}, got "
                         f"a {tuple(a.shape)} and b {tuple(b.shape)}")
    if isinstance(eta, bool) or not isinstance(eta, (int, float)) or not math.isfinite(eta) or eta <= 0:
        raise ValueError(f"eta (inverse regularisation, POT's 1/reg) must be a finite number > 0, got {eta!r}")
    for name, t in (("C", C), ("a", a), ("b", b)):
        if not bool(torch.isfinite(t).all()):
            raise ValueError(f"{name} contains NaN or Inf; costs and marginals must be finite")
        if bool((t < 0).any()):
            raise ValueError(f"{name} has negative entries (min {float(t.min()):.3g}); "
                             + ("costs must be >= 0 (shift by C.min(): the plan is unchanged)" if name == "C"
                                else "marginals must be >= 0"))
    mass_a, mass_b = float(a.sum()), float(b.sum())
    if mass_a <= 0 or mass_b <= 0:
        raise ValueError(f"the marginals must have positive total mass, got sum(a)={mass_a}, sum(b)={mass_b}")
    gap = abs(mass_a - mass_b) / max(mass_a, mass_b)
    if gap > math.sqrt(torch.finfo(C.dtype).eps):
        raise ValueError(f"balanced OT needs sum(a) == sum(b), got {mass_a!r} vs {mass_b!r} (relative gap "
                         f"{gap:.2e}); renormalise one of them")
    rows = torch.nonzero(a > 0).flatten()
    cols = torch.nonzero(b > 0).flatten()
    Cs = C.index_select(0, rows).index_select(1, cols)
    return Problem(a=a[rows], b=b[cols], C=Cs, eta=float(eta), rows=rows, cols=cols, full_shape=(n, m), full_C=C)


def log_plan(problem: Problem, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``eta (-C + x ⊕ y) - 1`` (n, m): the log of the plan; never forms the underflowing kernel exp(-eta C)."""
    return problem.eta * (x[:, None] + y[None, :] - problem.C) - 1.0


def marginal_error(problem: Problem, P: torch.Tensor) -> float:
    """``||g||_1 = ||a - P 1||_1 + ||b - P^T 1||_1`` (the true marginal error, on the support)."""
    return float((problem.a - P.sum(1)).abs().sum() + (problem.b - P.sum(0)).abs().sum())


def full_plan(problem: Problem, P: torch.Tensor) -> torch.Tensor:
    """Scatter the support plan back into the (n, m) problem; zero-mass rows/columns get zero plan."""
    n, m = problem.full_shape
    if P.shape == (n, m):
        return P
    out = torch.zeros(n, m, dtype=P.dtype, device=P.device)
    out[problem.rows[:, None], problem.cols[None, :]] = P
    return out


def full_duals(problem: Problem, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Duals on the full index set, in the gauge y_last = 0; -inf on zero-mass rows/columns (plan 0 there)."""
    shift = y[-1]
    x, y = x + shift, y - shift  # f(x + t, y - t) = f(x, y): same plan
    n, m = problem.full_shape
    fx = torch.full((n,), -math.inf, dtype=x.dtype, device=x.device)
    fy = torch.full((m,), -math.inf, dtype=y.dtype, device=y.device)
    fx[problem.rows] = x
    fy[problem.cols] = y
    return fx, fy
