"""Log-domain Sinkhorn: exact block-coordinate ascent on the concave dual of entropic OT (spec §2.2)."""

from __future__ import annotations

import math

import torch

from sciml.core import Status, report_status
from sciml.linalg import log_kernel_reduce
from sciml.ot._problem import Problem, check_problem, full_duals, full_plan, log_plan, marginal_error
from sciml.ot.result import TransportResult


def check_budget(tol: float, max_iter: int, name: str = "max_iter") -> None:
    if isinstance(tol, bool) or not isinstance(tol, (int, float)) or not 0 < tol < math.inf:
        raise ValueError(f"tol must be a finite number > 0 (a bound on ||g||_1), got {tol!r}")
    if isinstance(max_iter, bool) or not isinstance(max_iter, int) or max_iter < 0:
        raise ValueError(f"{name} must be an int >= 0, got {max_iter!r}")


def sinkhorn_sweeps(problem: Problem, x: torch.Tensor, y: torch.Tensor, max_sweeps: int, tol: float,
                    history: list[float]) -> tuple[torch.Tensor, torch.Tensor, int, float]:
    """Run up to ``max_sweeps`` sweeps ``x <- argmax_x f``, ``y <- argmax_y f`` from ``(x, y)``.

    After a y-update the column marginals are exact, so ``||g||_1`` is the row error, which the next x-update's
    row logsumexp gives for free (one O(nm) pass per half-sweep). Appends ``||g||_1`` of each iterate (before
    every sweep, and of the final iterate) to ``history``. Returns (x, y, sweeps done, final ||g||_1).
    """
    eta, C = problem.eta, problem.C
    log_a, log_b = problem.log_a, problem.log_b
    zero_x, zero_y = torch.zeros_like(x), torch.zeros_like(y)
    # log row sums without x / log column sums without y of exp(eta(-C + x ⊕ y) - 1), row-blocked (O(block) memory)
    def row_lse(y_: torch.Tensor) -> torch.Tensor:
        return log_kernel_reduce(C, zero_x, y_, eta, dim=1, shift=-1.0)

    def col_lse(x_: torch.Tensor) -> torch.Tensor:
        return log_kernel_reduce(C, x_, zero_y, eta, dim=0, shift=-1.0)

    # The column error of the starting point is not free: measure it once exactly.
    err = marginal_error(problem, torch.exp(log_plan(problem, x, y)))
    row = row_lse(y)  # (n,)
    sweeps = 0
    while True:
        history.append(err)
        if err <= tol or sweeps >= max_sweeps or not math.isfinite(err):
            return x, y, sweeps, err
        x = (log_a - row) / eta
        y = (log_b - col_lse(x)) / eta
        sweeps += 1
        # Row sums of the new plan are exp(eta x + LSE_j(eta(y_j - C_ij) - 1)) (columns are exact now); the same
        # row logsumexp is the next x-update's, so a sweep costs two O(nm) passes.
        row = row_lse(y)
        err = float((problem.a - torch.exp(eta * x + row)).abs().sum())


def finish(problem: Problem, x: torch.Tensor, y: torch.Tensor, history: list[float], n_sinkhorn: int,
           n_newton: int, tol: float, method: str, on_failure: str,
           sparsity_history: tuple[int, ...] = (), n_direct_solves: int = 0, note: str = "") -> TransportResult:
    """Form the plan, measure its true marginal error and build the result (status from that error)."""
    P = torch.exp(log_plan(problem, x, y))
    err = marginal_error(problem, P)
    if history:
        history[-1] = err
    if not math.isfinite(err) or not bool(torch.isfinite(x).all() and torch.isfinite(y).all()):
        status = Status.NONFINITE
    else:
        status = Status.CONVERGED if err <= tol else Status.MAX_ITER
    report_status(status, method, f"||g||_1 = {err:.3e} vs tol {tol:.1e} after {n_sinkhorn} Sinkhorn sweeps and "
                  f"{n_newton} Newton steps at eta = {problem.eta:g}{note}", on_failure)
    plan = full_plan(problem, P)
    cost = float((problem.full_C * plan).sum())
    return TransportResult(plan=plan, cost=cost, dual=full_duals(problem, x, y), marginal_error=err,
                           n_iter=n_sinkhorn + n_newton, n_sinkhorn=n_sinkhorn, n_newton=n_newton,
                           history=tuple(history), status=status, method=method, eta=problem.eta, tol=tol,
                           sparsity_history=sparsity_history, n_direct_solves=n_direct_solves)


def sinkhorn(C, a, b, eta: float, *, tol: float = 1e-9, max_iter: int = 10_000,
             on_failure: str = "warn") -> TransportResult:
    """Entropic OT by log-domain Sinkhorn, stopped on the true marginal error ``||g||_1 <= tol``.

    Solves ``min <C, P> + (1/eta) sum P log P`` s.t. ``P 1 = a, P^T 1 = b`` (POT's ``reg = 1/eta``).

    Reference:
        Cuturi (2013), "Sinkhorn distances"; log-domain form as in Tang et al., "Accelerating Sinkhorn Algorithm
        with Sparse Newton Iterations" (ICLR 2024), §2 (exact block ascent on the Lyapunov potential).

    Args:
        C: (n, m) finite costs >= 0 (tensor or numpy; float64 unless C is already a float tensor; a and b follow
            C's dtype and device).
        a, b: (n,), (m,) non-negative marginals of equal total mass; zero-mass entries are dropped.
        eta: inverse regularisation > 0 (large eta = close to unregularised OT).
        tol: stop when ``||a - P1||_1 + ||b - P^T 1||_1 <= tol``.
        max_iter: sweep budget (one sweep = x-update + y-update).
        on_failure: "warn" (ConvergenceWarning), "raise" or "ignore" when tol is not reached.

    Returns:
        TransportResult with method "sinkhorn".
    """
    check_budget(tol, max_iter)
    problem = check_problem(C, a, b, eta)
    x = torch.zeros_like(problem.a)
    y = torch.zeros_like(problem.b)
    history: list[float] = []
    x, y, sweeps, _ = sinkhorn_sweeps(problem, x, y, max_iter, tol, history)
    return finish(problem, x, y, history, sweeps, 0, tol, "sinkhorn", on_failure)
