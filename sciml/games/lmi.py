"""SGN weight search as a linear matrix inequality (spec quantum_games.md B2, "LMI bisection with cvxpy").

alpha_*(w) >= a  <=>  D^{-1/2} C(w) D^{-1/2} - 2a I is PSD  <=>  C(w) - 2a D is PSD (congruence with D^{1/2} > 0),
and C(w) - 2a D = D (C_hat - a I) + (C_hat - a I)^T D is linear in w. For fixed ``a`` the best PSD slack
s(a) = max_{w >= 0, sum w = 1} lambda_min(C(w) - 2a D) is a small SDP; a is feasible iff s(a) >= 0, and the largest
feasible a is found by bisection between a margin we already have (w = 1) and min(mu) (the diagonal bound).
An independent route to the Perron / closed-form weights of :func:`sciml.games.optimal_weights`; needs cvxpy
(optional, ``quantum`` extra).
"""

from __future__ import annotations

import dataclasses

import torch

from sciml.core import Result, Status
from sciml.games.sgn import _margin, comparison_matrix


@dataclasses.dataclass(frozen=True)
class LMIWeights(Result):
    """Weights (sum 1) of the best feasible LMI level, its SGN margin, the bisection bracket and the SDP count.
    ``bracket[0]`` is an exact margin (of ``weights``); ``bracket[1]`` a level the SDP could not verify (its
    accuracy is ~1e-8, so the supremum may exceed it by that much)."""

    weights: torch.Tensor
    alpha: float
    bracket: tuple[float, float]
    solves: int
    status: Status


def lmi_weights(mu, L, tol: float = 1e-7, max_bisections: int = 60, solver: str | None = None) -> LMIWeights:
    """Block weights maximising alpha_*(w) by bisection on the LMI level (module docstring).

    Stops when the bracket [feasible, infeasible] is narrower than ``tol * max(1, |min mu|)`` (CONVERGED) or after
    ``max_bisections`` SDPs (MAX_ITER). ``alpha`` is the exact margin of the returned weights, not the SDP level.
    """
    try:
        import cvxpy as cp
    except ImportError as exc:  # optional peer
        raise ImportError("lmi_weights needs cvxpy (pip install 'sciml[quantum]' or cvxpy>=1.5)") from exc
    if not tol > 0 or max_bisections < 1:
        raise ValueError(f"tol must be > 0 and max_bisections >= 1, got {tol}, {max_bisections}")
    C_hat = comparison_matrix(mu, L)
    n = C_hat.shape[0]
    A = C_hat.numpy()
    w = cp.Variable(n)
    level = cp.Parameter()
    D = cp.diag(w)
    S = D @ A + A.T @ D - 2 * level * D
    slack = cp.Variable()
    # lambda_min of a symmetric affine matrix: S - slack I PSD (S is symmetric by construction; symmetrise for cvxpy)
    problem = cp.Problem(cp.Maximize(slack), [(S + S.T) / 2 - slack * cp.Constant(torch.eye(n).numpy()) >> 0,
                                              w >= 0, cp.sum(w) == 1])
    best_w = torch.full((n,), 1.0 / n, dtype=torch.float64)
    lo = _margin(C_hat, best_w)                      # feasible: attained by w = 1
    hi = float(C_hat.diagonal().min())               # alpha_*(w) <= min_i mu_i for every w
    scale, solves = max(1.0, abs(hi)), 0
    while hi - lo > tol * scale and solves < max_bisections:
        mid = (lo + hi) / 2
        level.value = mid
        problem.solve(solver=solver)
        solves += 1
        if problem.status in ("optimal", "optimal_inaccurate") and w.value is not None and w.value.min() > 0:
            # any positive w is a certified lower bound: use its exact margin, not the SDP's verdict (~1e-8 accurate)
            cand = torch.from_numpy(w.value.copy()).to(torch.float64)
            cand = cand / cand.sum()
            alpha = _margin(C_hat, cand)
            if alpha > lo:
                lo, best_w = alpha, cand
        if lo < mid:        # level not verified by exact margins: infeasible up to the solver's accuracy
            hi = mid
    alpha = _margin(C_hat, best_w)
    status = Status.CONVERGED if hi - lo <= tol * scale else Status.MAX_ITER
    return LMIWeights(best_w, alpha, (lo, hi), solves, status)
