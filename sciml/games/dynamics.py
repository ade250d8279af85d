"""Simultaneous gradient play x <- x - h F(x) (Euler) or its RK4 version, and the true step-size thresholds of a
linear game (the ground truth the SGN steps are compared with)."""

from __future__ import annotations

import dataclasses
import math
from typing import Callable

import torch

from sciml.core import Result, Status, check_floating, report_status
from sciml.games.certify import check_square

METHODS = ("euler", "rk4")


@dataclasses.dataclass(frozen=True)
class PlayResult(Result):
    """Final point, iterations run, ||F(x_k)|| per iteration (history[0] at x0) and the stop reason."""

    x: torch.Tensor
    iterations: int
    history: torch.Tensor
    status: Status


def _step(F: Callable, x: torch.Tensor, h: float, method: str) -> torch.Tensor:
    if method == "euler":
        return x - h * F(x)
    k1 = F(x)
    k2 = F(x - 0.5 * h * k1)
    k3 = F(x - 0.5 * h * k2)
    k4 = F(x - h * k3)
    return x - (h / 6) * (k1 + 2 * k2 + 2 * k3 + k4)


def gradient_play(F: Callable[[torch.Tensor], torch.Tensor], x0: torch.Tensor, h: float, steps: int = 1000,
                  method: str = "euler", tol: float = 1e-10, project: Callable | None = None,
                  on_failure: str = "warn") -> PlayResult:
    """Run simultaneous gradient play (the same step h for every player) until ||F(x)|| <= tol.

    Args:
        F: pseudo-gradient (d,) -> (d,) (or batched (..., d) -> (..., d)).
        x0: start, floating tensor; the run follows its device and dtype.
        h: step size > 0.
        steps: iteration budget >= 1.
        method: "euler" or "rk4".
        tol: stop when ||F(x)||_2 <= tol (CONVERGED is this true residual).
        project: optional per-iterate projection onto the region (a product of per-player convex sets).
    """
    check_floating(x0, "x0")
    if not (isinstance(h, (int, float)) and math.isfinite(h) and h > 0):
        raise ValueError(f"step size h must be a finite number > 0, got {h!r}")
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be an int >= 1, got {steps!r}")
    if not tol > 0:
        raise ValueError(f"tol must be > 0, got {tol}")
    x = x0.clone()
    norms = [float(torch.linalg.vector_norm(F(x)))]
    status = Status.MAX_ITER
    k = 0
    if norms[0] <= tol:
        status = Status.CONVERGED
    for k in range(1, steps + 1):
        if status is Status.CONVERGED:
            k -= 1
            break
        x = _step(F, x, h, method)
        if project is not None:
            x = project(x)
        norms.append(float(torch.linalg.vector_norm(F(x))))
        if not math.isfinite(norms[-1]):
            status = Status.NONFINITE
            break
        if norms[-1] <= tol:
            status = Status.CONVERGED
            break
    report_status(status, "gradient_play", f"||F(x)|| = {norms[-1]:.3e} after {k} steps", on_failure)
    return PlayResult(x, k, torch.tensor(norms, dtype=torch.float64), status)


def step_matrix(H: torch.Tensor, h: float, method: str = "euler") -> torch.Tensor:
    """One-step matrix of x' = -H x: I - hH (Euler) or P_4(-hH) = sum_{k<=4} (-hH)^k / k! (RK4)."""
    check_square(H)
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    eye = torch.eye(H.shape[0], dtype=H.dtype, device=H.device)
    Z = -h * H
    if method == "euler":
        return eye + Z
    Z2 = Z @ Z
    return eye + Z + Z2 / 2 + Z2 @ Z / 6 + Z2 @ Z2 / 24


def spectral_radius(A: torch.Tensor) -> float:
    return float(torch.linalg.eigvals(A).abs().max())


def rk4_amplification(z: torch.Tensor) -> torch.Tensor:
    """|R_4(z)| for complex z, R_4(z) = 1 + z + z^2/2 + z^3/6 + z^4/24."""
    return (1 + z + z ** 2 / 2 + z ** 3 / 6 + z ** 4 / 24).abs()


def euler_threshold(H: torch.Tensor) -> float:
    """Exact largest stable Euler step: |1 - h lambda| < 1 for all eigenvalues iff h < min 2 Re(lambda) / |lambda|^2
    (0 when some Re(lambda) <= 0)."""
    check_square(H)
    lam = torch.linalg.eigvals(H.to(torch.float64) if H.dtype == torch.float32 else H)
    if bool((lam.real <= 0).any()):
        return 0.0
    return float((2 * lam.real / lam.abs() ** 2).min())


def stability_threshold(H: torch.Tensor, method: str = "euler", h_max: float | None = None, grid: int = 200,
                        tol: float = 1e-10) -> float:
    """First step size at which the spectral radius of the one-step matrix reaches 1 (grid scan, then bisection to
    ``tol``), the ground truth the SGN steps are compared with. Uses rho(P(-hH)) = max |P(-h lambda)| over the
    eigenvalues of H (computed once); returns about 0 when even tiny steps are unstable (some Re lambda <= 0).
    """
    check_square(H)
    lam = torch.linalg.eigvals(H)
    if h_max is None:
        h_max = 4.0 / float(lam.abs().max()) if float(lam.abs().max()) > 0 else 1.0

    def stable(h: float) -> bool:
        z = -h * lam
        amp = (1 + z).abs() if method == "euler" else rk4_amplification(z)
        return bool(amp.max() < 1)

    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    lo, hi = 0.0, None
    for h in torch.linspace(0, h_max, grid + 1, dtype=torch.float64)[1:].tolist():   # first unstable grid step
        if not stable(h):
            hi = h
            break
        lo = h
    if hi is None:
        return h_max
    while hi - lo > tol * max(1.0, hi):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if stable(mid) else (lo, mid)
    return lo
