"""LV-HBA: single-loop Hessian-free method for bilevel problems with (coupled) lower-level constraints (Yao, Yu, Zeng,
Zhang, "Constrained Bi-Level Optimization: Proximal Lagrangian Value Function Approach and Hessian-free Algorithm",
ICLR 2024, arXiv 2401.16164; spec optim_numerics section 6).

``min_{x,y} F(x, y)`` s.t. ``y in argmin_theta {f(x, theta) : g(x, theta) <= 0}`` (``constraint="ineq"``, multipliers
in ``[0, U]``) or ``g(x, theta) = 0`` (``constraint="eq"``, multipliers in ``[-U, U]``), ``(x, y)`` in a closed convex
set ``C`` given by the user's projection. Per iteration, with ``c_k = c0 (k+1)^p`` (``0 < p < 1/2``):

    d_th = grad_y f(x,th) + J_y g(x,th)^T lam + (th - y)/gamma1        th  <- th - eta d_th
    d_la = -g(x,th) + (lam - z)/gamma2                                  lam <- Proj_Lambda(lam - eta d_la)
    d_x  = grad_x F(x,y)/c_k + grad_x f(x,y) - grad_x f(x,th) - J_x g(x,th)^T lam       (new th, lam)
    d_y  = grad_y F(x,y)/c_k + grad_y f(x,y) - (y - th)/gamma1
    (x, y) <- Proj_C((x, y) - alpha (d_x, d_y))        z <- Proj_Lambda(z + beta (lam - z)/gamma2)

Gradients by autograd of the user's callables ``F(x, y) -> scalar``, ``f(x, y) -> scalar``, ``g(x, y) -> tensor``
(any shape; the multipliers take its shape). Signs (spec 6.6): the ``lam`` step is gradient ASCENT on the inner
saddle problem and ``z`` moves toward ``lam``.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable

import torch

from sciml.core import Result, Status, report_status


@dataclasses.dataclass(frozen=True)
class LVHBAResult(Result):
    """Final ``x``, ``y``, inner ``theta``, multiplier ``lam`` and its prox centre ``z``; ``history`` holds
    ``metric(x, y)`` (default ``F``) at iterations ``history_iter`` (``history[0]`` at the start); ``residual`` is
    the last step's ``max(||dx||, ||dy||) / alpha``; ``status`` CONVERGED when it fell below ``tol``."""

    x: torch.Tensor
    y: torch.Tensor
    theta: torch.Tensor
    lam: torch.Tensor
    z: torch.Tensor
    history: torch.Tensor
    history_iter: torch.Tensor
    residual: float
    status: Status
    iterations: int
    settings: dict


def _grads(fn: Callable, *args: torch.Tensor, wrt: tuple[int, ...]) -> tuple[torch.Tensor, ...]:
    """Value-free gradients of the scalar ``fn(*args)`` with respect to ``args[i]`` for ``i`` in ``wrt``."""
    args = [a.detach().requires_grad_(i in wrt) for i, a in enumerate(args)]
    with torch.enable_grad():
        out = fn(*args)
        return torch.autograd.grad(out, [args[i] for i in wrt], allow_unused=True, materialize_grads=True)


def _check_tensor(value, name: str, like: torch.Tensor | None = None) -> torch.Tensor:
    t = torch.as_tensor(value) if like is None else torch.as_tensor(value, dtype=like.dtype, device=like.device)
    if not t.is_floating_point():
        t = t.to(torch.float64)
    if not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name} contains NaN or Inf")
    return t.clone()


def lv_hba(F: Callable, f: Callable, g: Callable, x0, y0, *, constraint: str = "ineq",
           project_xy: Callable | None = None, project_theta: Callable | None = None, alpha: float = 0.01,
           beta: float = 0.02, eta: float = 0.01,
           gamma1: float = 10.0, gamma2: float = 0.1, c0: float = 1.0, p: float = 0.3, U: float = 1000.0,
           n_iter: int = 10_000, theta0=None, lam0=None, z0=None, tol: float = 1e-10,
           metric: Callable | None = None, record_every: int = 1, on_failure: str = "warn") -> LVHBAResult:
    """Run LV-HBA (module docstring) from ``(x0, y0)``; ``theta0`` defaults to ``y0``, ``lam0``/``z0`` to zeros of
    ``g``'s shape. ``project_xy(x, y) -> (x, y)`` is the Euclidean projection onto ``C`` (None: ``C`` = everything).
    Stops when ``max(||x_{k+1} - x_k||, ||y_{k+1} - y_k||) / alpha <= tol`` or after ``n_iter`` iterations.

    Defaults are the spec's working setting for the coupled toy (6.5); the penalty bias is ``O(1/c_k)``, so report
    the ``c_k`` schedule with every number."""
    if constraint not in ("eq", "ineq"):
        raise ValueError(f"constraint must be 'eq' (multipliers in [-U, U]) or 'ineq' ([0, U]), got {constraint!r}")
    if not 0 < p < 0.5:
        raise ValueError(f"p must lie in (0, 1/2) (c_k = c0 (k+1)^p, the paper's condition), got {p!r}")
    for name, val in (("alpha", alpha), ("beta", beta), ("eta", eta), ("gamma1", gamma1), ("gamma2", gamma2),
                      ("c0", c0), ("U", U)):
        if not (isinstance(val, (int, float)) and math.isfinite(val) and val > 0):
            raise ValueError(f"{name} must be a finite number > 0, got {val!r}")
    if not isinstance(n_iter, int) or n_iter < 0 or not isinstance(record_every, int) or record_every < 1:
        raise ValueError(f"need ints n_iter >= 0 and record_every >= 1, got {n_iter!r}, {record_every!r}")
    if not all(callable(fn) for fn in (F, f, g)) or any(fn is not None and not callable(fn)
                                                        for fn in (project_xy, project_theta)):
        raise TypeError("F, f, g (and project_xy / project_theta when given) must be callables")
    x = _check_tensor(x0, "x0")
    y = _check_tensor(y0, "y0", x)
    if project_xy is not None:
        x, y = (t.detach() for t in project_xy(x, y))
    theta = y.clone() if theta0 is None else _check_tensor(theta0, "theta0", x)
    g_shape = torch.as_tensor(g(x, theta)).shape
    lam = torch.zeros(g_shape, dtype=x.dtype, device=x.device) if lam0 is None else _check_tensor(lam0, "lam0", x)
    z = torch.zeros_like(lam) if z0 is None else _check_tensor(z0, "z0", x)
    if lam.shape != g_shape or z.shape != g_shape:
        raise ValueError(f"lam0 and z0 must have g's shape {tuple(g_shape)}")
    low = -U if constraint == "eq" else 0.0
    lam, z = lam.clamp(low, U), z.clamp(low, U)
    metric = F if metric is None else metric

    def lagrangian(x_, th_, lam_):
        return f(x_, th_) + (lam_ * g(x_, th_)).sum()


    history, history_iter = [float(metric(x, y))], [0]
    status, residual, k = Status.MAX_ITER, math.inf, 0
    for k in range(1, n_iter + 1):
        c_k = c0 * k ** p                                    # c_k = c0 (k+1)^p with k counted from 0
        (d_th,) = _grads(lagrangian, x, theta, lam, wrt=(1,))
        g_val = g(x, theta).detach()
        theta = theta - eta * (d_th + (theta - y) / gamma1)
        if project_theta is not None:
            theta = project_theta(x, theta).detach()
        lam = (lam - eta * (-g_val + (lam - z) / gamma2)).clamp(low, U)
        (lag_x,) = _grads(lagrangian, x, theta, lam, wrt=(0,))
        pen_x, pen_y = _grads(lambda x_, y_: F(x_, y_) / c_k + f(x_, y_), x, y, wrt=(0, 1))
        x_new = x - alpha * (pen_x - lag_x)
        y_new = y - alpha * (pen_y - (y - theta) / gamma1)
        if project_xy is not None:
            x_new, y_new = (t.detach() for t in project_xy(x_new, y_new))
        z = (z + beta * (lam - z) / gamma2).clamp(low, U)
        residual = max(float((x_new - x).norm()), float((y_new - y).norm())) / alpha
        x, y = x_new, y_new
        if not math.isfinite(residual):
            status = Status.NONFINITE
            break
        if k % record_every == 0 or k == n_iter:
            history.append(float(metric(x, y)))
            history_iter.append(k)
        if residual <= tol:
            status = Status.CONVERGED
            break
    if history_iter[-1] != k and status is not Status.NONFINITE:
        history.append(float(metric(x, y)))
        history_iter.append(k)
    report_status(status, "lv_hba", f"step residual {residual:.3e} after {k} iterations, c_k = {c0} (k+1)^{p}",
                  on_failure)
    settings = dict(constraint=constraint, alpha=alpha, beta=beta, eta=eta, gamma1=gamma1, gamma2=gamma2, c0=c0,
                    p=p, U=U)
    return LVHBAResult(x, y, theta, lam, z, torch.tensor(history, dtype=torch.float64), torch.tensor(history_iter),
                       residual, status, k, settings)
