"""Gradient-normalised smoothness (Semenov, Jaggi, Doikov, arXiv 2506.13710; spec optim_numerics section 3):
the gradient-regularised Newton step with any PSD Hessian approximation and an adaptive trust radius.

Algorithm 1 (the official ``grad_norm_smooth``): with metric ``B`` (SPD, default I), dual norm
``||g||_* = sqrt(g^T B^-1 g)``:

    lam = ||g||_* / (gamma + 1e-8);  dx = -(H + lam B)^-1 g                (Cholesky)
    accept if f(x) - f(x + dx) >= ||g(x + dx)||_*^2 / (8 lam): gamma <- 2 gamma, else gamma <- gamma / 2 and retry

so every step has length ``||dx||_B <= gamma``. ``hessian`` may be the exact Hessian, Gauss-Newton, Fisher, a
rank-one term, a constant bound or None (= 0: normalised gradient descent). Differences from the reference: a
Cholesky failure (H indefinite and lam too small) is counted in the result and treated as a rejected trial (the
reference silently ends); every oracle call is counted; the result says why the loop stopped.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable

import numpy as np
import scipy.linalg

from sciml.core import Result, Status, report_status


@dataclasses.dataclass(frozen=True)
class GradNormSmoothResult(Result):
    """``x``, ``fun``; ``iterations`` (outer), ``oracle_calls`` (f+grad evaluations), ``solves`` (linear solves),
    ``cholesky_failures``, ``history`` (f after each iteration, f(x0) first), ``step_lengths`` (||dx||_B),
    ``gammas`` (the radius used by each accepted step), ``status`` and ``reason``."""

    x: np.ndarray
    fun: float
    iterations: int
    oracle_calls: int
    solves: int
    cholesky_failures: int
    history: np.ndarray
    step_lengths: np.ndarray
    gammas: np.ndarray
    status: Status
    reason: str


def grad_norm_smooth(f: Callable, grad: Callable, x0, *, hessian: Callable | None = None, metric=None,
                     gamma0: float = 1.0, max_iters: int = 100, tol: float = 1e-8, f_star: float | None = None,
                     grad_tol: float = 0.0, max_trials: int = 40, gamma_min: float = 1e-9,
                     on_failure: str = "warn") -> GradNormSmoothResult:
    """Minimise ``f`` with Algorithm 1. Stops when ``f - f_star < tol`` (if ``f_star`` is given), else when
    ``||g||_* < max(grad_tol, tol)``; CONVERGED is checked on those true quantities."""
    x = np.asarray(x0, dtype=np.float64).copy()
    if x.ndim != 1 or not np.all(np.isfinite(x)):
        raise ValueError("x0 must be a finite 1-D array")
    if not (gamma0 > 0 and math.isfinite(gamma0)):
        raise ValueError(f"gamma0 must be a finite number > 0, got {gamma0!r}")
    if not isinstance(max_iters, int) or max_iters < 1:
        raise ValueError(f"max_iters must be an int >= 1, got {max_iters!r}")
    if not tol > 0:
        raise ValueError(f"tol must be > 0, got {tol!r}")
    d = x.size
    B = np.eye(d) if metric is None else np.asarray(metric, dtype=np.float64)
    if B.shape != (d, d) or not np.allclose(B, B.T) or not np.all(np.isfinite(B)):
        raise ValueError(f"metric must be a finite symmetric ({d}, {d}) matrix")
    try:
        B_factor = scipy.linalg.cho_factor(B)
    except np.linalg.LinAlgError:
        raise ValueError("metric must be positive definite") from None

    def dual(g):
        return float(np.sqrt(max(g @ scipy.linalg.cho_solve(B_factor, g), 0.0)))

    calls = 1
    fx, g = float(f(x)), np.asarray(grad(x), dtype=np.float64)
    if not (math.isfinite(fx) and np.all(np.isfinite(g))):
        raise ValueError("f or grad is not finite at x0")
    gamma, solves, failures = gamma0, 0, 0
    history, lengths, gammas = [fx], [], []

    def done(fx, g):
        if f_star is not None:
            return fx - f_star < tol
        return dual(g) < max(grad_tol, tol)

    status, reason, k = Status.MAX_ITER, f"no convergence in {max_iters} iterations", 0
    for k in range(max_iters):
        if done(fx, g):
            status, reason = Status.CONVERGED, "f - f* < tol" if f_star is not None else "dual gradient norm < tol"
            break
        H = np.zeros((d, d)) if hessian is None else np.asarray(hessian(x), dtype=np.float64)
        g_norm = dual(g)
        accepted = None
        for _ in range(max_trials):
            lam = g_norm / (gamma + 1e-8)
            try:
                factor = scipy.linalg.cho_factor(H + lam * B)
            except np.linalg.LinAlgError:
                failures += 1
                gamma = gamma / 2
                continue
            dx = -scipy.linalg.cho_solve(factor, g)
            solves += 1
            x_new = x + dx
            f_new, g_new = float(f(x_new)), np.asarray(grad(x_new), dtype=np.float64)
            calls += 1
            accepted = (x_new, f_new, g_new, dx, gamma)
            if math.isfinite(f_new) and fx - f_new >= dual(g_new) ** 2 / (8 * lam):
                gamma = max(2 * gamma, gamma_min)
                break
            gamma = gamma / 2
        if accepted is None:
            status, reason = Status.BREAKDOWN, "every trial's Cholesky factorisation failed (H not PSD?)"
            break
        x, fx, g, dx, used = accepted          # after max_trials failures the last trial is taken (as the code)
        lengths.append(float(np.sqrt(max(dx @ B @ dx, 0.0))))
        gammas.append(used)
        history.append(fx)
        if not (math.isfinite(fx) and np.all(np.isfinite(g))):
            status, reason = Status.NONFINITE, "f or grad became non-finite"
            break
    else:
        if done(fx, g):
            status, reason = Status.CONVERGED, "f - f* < tol" if f_star is not None else "dual gradient norm < tol"
            k = max_iters
    iterations = len(history) - 1
    report_status(status, "grad_norm_smooth", reason, on_failure)
    return GradNormSmoothResult(x, fx, iterations, calls, solves, failures, np.asarray(history), np.asarray(lengths),
                                np.asarray(gammas), status, reason)
