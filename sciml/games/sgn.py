"""The small-gain Nash (SGN) matrix, its margin, the best block weights and the two-player timescale band.

Convention (Sharma, arXiv 2512.06791; spec quantum_games.md B2): ``mu[i]`` lower-bounds player i's own curvature
``sym(J_ii) >= mu_i I`` and ``L[i][j]`` upper-bounds ``||J_ij||_2`` = how player j's move changes player i's gradient.
With D = diag(w) and the comparison matrix C_hat (C_hat_ii = mu_i, C_hat_ij = -L_ij), the SGN matrix is
C(w) = D C_hat + C_hat^T D and the margin is alpha_*(w) = lambda_min(D^{-1/2} C(w) D^{-1/2}) / 2
= lambda_min(sym(D^{1/2} C_hat D^{-1/2})).

Best weights [derived here, checked numerically in tests/games]: alpha_*(w) >= a iff D (C_hat - a I) + (C_hat - a I)^T D
is PSD, which for the Z-matrix C_hat - a I has a diagonal solution D > 0 exactly when it is an M-matrix. So
sup_w alpha_*(w) = tau(C_hat), the smallest real eigenvalue of C_hat, and for irreducible couplings it is attained at
w_i = v_i / u_i with u, v the right/left eigenvectors of tau(C_hat) (Perron vectors). For N = 2 this is the closed form
r* = L_12 / L_21 and alpha_max = (mu_1 + mu_2)/2 - sqrt(((mu_1 - mu_2)/2)^2 + L_12 L_21).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Sequence

import numpy as np
import torch

from sciml.core import Result, Status

WEIGHT_METHODS = ("auto", "closed_form", "perron", "warm_start", "nelder_mead", "lmi")


def _as_float64(x, name: str) -> torch.Tensor:
    """A float64 CPU tensor from a number, sequence, array or tensor (the N x N SGN algebra is tiny)."""
    if isinstance(x, torch.Tensor):
        if not (x.is_floating_point() or x.dtype in (torch.int32, torch.int64)):
            raise TypeError(f"{name} must be real numbers, got dtype {x.dtype}")
        t = x.detach().to("cpu", torch.float64)
    else:
        try:
            t = torch.as_tensor(np.asarray(x, dtype=np.float64))
        except (TypeError, ValueError) as err:
            raise TypeError(f"{name} must be real numbers, got {type(x).__name__}") from err
    if not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name} contains NaN or Inf entries")
    return t


def check_bounds(mu, L) -> tuple[torch.Tensor, torch.Tensor]:
    """Validate curvatures ``mu`` (N,) > 0 and couplings ``L`` (N, N) >= 0; return them as float64 tensors with the
    diagonal of L set to zero (own curvature lives in mu)."""
    mu_t = _as_float64(mu, "mu").reshape(-1)
    L_t = _as_float64(L, "L")
    n = mu_t.numel()
    if n < 1:
        raise ValueError("mu must hold one curvature bound per player (at least one)")
    if L_t.ndim == 0 and n == 1:
        L_t = L_t.reshape(1, 1)
    if L_t.shape != (n, n):
        raise ValueError(f"L must be an N x N matrix matching len(mu) = {n}, got shape {tuple(L_t.shape)}")
    if bool((mu_t <= 0).any()):
        raise ValueError(f"every curvature bound mu_i must be > 0, got {mu_t.tolist()}")
    off = L_t - torch.diag(torch.diagonal(L_t))
    if bool((off < 0).any()):
        raise ValueError("coupling bounds L_ij must be >= 0 (they bound spectral norms)")
    return mu_t, off


def check_weights(w, n: int) -> torch.Tensor:
    """Validate block weights: N finite entries, all > 0."""
    w_t = _as_float64(w, "w").reshape(-1)
    if w_t.numel() != n:
        raise ValueError(f"w must hold one weight per player ({n}), got {w_t.numel()}")
    if bool((w_t <= 0).any()):
        raise ValueError(f"block weights must be > 0, got {w_t.tolist()}")
    return w_t


def comparison_matrix(mu, L) -> torch.Tensor:
    """C_hat with C_hat_ii = mu_i and C_hat_ij = -L_ij."""
    mu_t, off = check_bounds(mu, L)
    return torch.diag(mu_t) - off


def sgn_matrix(mu, L, w) -> torch.Tensor:
    """C(w)_ii = 2 w_i mu_i, C(w)_ij = -(w_i L_ij + w_j L_ji)."""
    C_hat = comparison_matrix(mu, L)
    D = torch.diag(check_weights(w, C_hat.shape[0]))
    return D @ C_hat + C_hat.T @ D


def _margin(C_hat: torch.Tensor, w: torch.Tensor) -> float:
    s = w.sqrt()
    B = s[:, None] * C_hat / s[None, :]
    return float(torch.linalg.eigvalsh(0.5 * (B + B.T))[0])


def sgn_margin(mu, L, w) -> float:
    """alpha_*(w) = lambda_min(D^{-1/2} C(w) D^{-1/2}) / 2; positive means F is alpha-strongly monotone in <.,.>_w
    wherever the bounds hold. Invariant to scaling w."""
    C_hat = comparison_matrix(mu, L)
    return _margin(C_hat, check_weights(w, C_hat.shape[0]))


def small_gain_ratio(mu, L) -> float:
    """Spectral radius of diag(mu)^{-1} L: < 1 iff some weights certify (C_hat is a nonsingular M-matrix)."""
    mu_t, off = check_bounds(mu, L)
    return float(torch.linalg.eigvals(off / mu_t[:, None]).abs().max())


@dataclasses.dataclass(frozen=True)
class Weights(Result):
    """Block weights (normalised to sum 1), their SGN margin, the supremum tau(C_hat) over all weights and how
    they were found. ``status`` is CONVERGED when ``alpha`` reaches ``alpha_sup`` to 1e-9 (relative)."""

    weights: torch.Tensor
    alpha: float
    alpha_sup: float
    method: str
    status: Status

    @property
    def ratio(self) -> float:
        """r = w_2 / w_1 (two players)."""
        return float(self.weights[1] / self.weights[0])

    @property
    def certified(self) -> bool:
        return self.alpha > 0


def _perron_pair(C_hat: torch.Tensor) -> tuple[float, torch.Tensor, torch.Tensor]:
    """tau(C_hat) and its right/left eigenvectors, signs fixed so that the largest entry is positive."""
    A = C_hat.numpy()
    vals, right = np.linalg.eig(A)
    vals_l, left = np.linalg.eig(A.T)
    k = int(np.argmin(vals.real))
    kl = int(np.argmin(np.abs(vals_l - vals[k])))
    u, v = right[:, k].real, left[:, kl].real
    u = u * np.sign(u[np.argmax(np.abs(u))])
    v = v * np.sign(v[np.argmax(np.abs(v))])
    return float(vals[k].real), torch.from_numpy(u.copy()), torch.from_numpy(v.copy())


def warm_start_weights(mu, L) -> torch.Tensor:
    """M-matrix warm start w_i = v_i / u_i with u = C_hat^{-1} 1, v = C_hat^{-T} 1 (both > 0 when C_hat is a
    nonsingular M-matrix; then alpha_*(w) > 0). Raises ValueError when the small-gain condition fails."""
    C_hat = comparison_matrix(mu, L)
    ones = torch.ones(C_hat.shape[0], dtype=C_hat.dtype)
    if small_gain_ratio(mu, L) >= 1:
        raise ValueError("small-gain condition fails (rho(diag(mu)^-1 L) >= 1): no weights certify")
    u = torch.linalg.solve(C_hat, ones)
    v = torch.linalg.solve(C_hat.T, ones)
    w = v / u
    return w / w.sum()


def _nelder_mead(objective, w0: torch.Tensor, max_iter: int = 4000) -> torch.Tensor:
    from scipy.optimize import minimize

    log_w0 = np.log(w0.numpy())
    res = minimize(lambda z: -objective(torch.from_numpy(np.exp(z - z.max()))), log_w0, method="Nelder-Mead",
                   options={"xatol": 1e-12, "fatol": 1e-14, "maxiter": max_iter, "maxfev": 2 * max_iter})
    w = torch.from_numpy(np.exp(res.x - res.x.max()))
    return w / w.sum()


def optimal_weights(mu, L, method: str = "auto") -> Weights:
    """Block weights maximising the SGN margin alpha_*(w).

    Args:
        mu: (N,) curvature lower bounds, > 0.
        L: (N, N) coupling upper bounds, >= 0 (diagonal ignored); ``L[i][j]`` bounds ||J_ij||.
        method: "auto" (closed form for N = 2, Perron vectors for N > 2, Nelder-Mead from the M-matrix warm start
            when the couplings are reducible and the Perron weights are not all positive), "closed_form" (N = 2),
            "perron", "warm_start" (the certified M-matrix start, not optimal) or "nelder_mead" (log-weights,
            started at the warm start or at w = 1 when the small-gain condition fails) or "lmi" (bisection on the
            LMI C(w) - 2 alpha D >= 0 with cvxpy, :func:`sciml.games.lmi.lmi_weights`; optional dependency).
    """
    if method not in WEIGHT_METHODS:
        raise ValueError(f"method must be one of {WEIGHT_METHODS}, got {method!r}")
    C_hat = comparison_matrix(mu, L)
    n = C_hat.shape[0]
    tau, u, v = _perron_pair(C_hat)
    if method == "auto":
        method = "closed_form" if n == 2 and C_hat[0, 1] < 0 and C_hat[1, 0] < 0 else "perron"
    if n == 1:
        w = torch.ones(1, dtype=torch.float64)
    elif method == "closed_form":
        if n != 2:
            raise ValueError(f"the closed form is for two players, got N = {n}")
        L12, L21 = float(-C_hat[0, 1]), float(-C_hat[1, 0])
        if L12 <= 0 or L21 <= 0:
            raise ValueError("the closed form r* = L_12 / L_21 needs L_12 > 0 and L_21 > 0; use method='nelder_mead'")
        w = torch.tensor([1.0, L12 / L21], dtype=torch.float64)
    elif method == "perron":
        w = v / u if bool((u > 0).all() and (v > 0).all()) else None
        if w is None or not bool(torch.isfinite(w).all()):
            method = "nelder_mead"   # reducible couplings: the supremum may be approached but not attained
    elif method == "warm_start":
        w = warm_start_weights(mu, L)
    elif method == "lmi":
        from sciml.games.lmi import lmi_weights   # cvxpy is optional: import only when asked for
        w = lmi_weights(mu, L).weights
    if method == "nelder_mead":
        try:
            w0 = warm_start_weights(mu, L)
        except ValueError:
            w0 = torch.ones(n, dtype=torch.float64)
        w = _nelder_mead(lambda ww: _margin(C_hat, ww), w0)
    w = w / w.sum()
    alpha = _margin(C_hat, w)
    converged = alpha >= tau - 1e-9 * max(1.0, abs(tau))
    return Weights(w, alpha, tau, method, Status.CONVERGED if converged else Status.MAX_ITER)


@dataclasses.dataclass(frozen=True)
class TimescaleBand(Result):
    """The closed interval of ratios r = w_2 / w_1 with alpha_*(r) >= alpha (None endpoints when empty;
    ``r_plus`` is inf when L_21 = 0)."""

    r_minus: float | None
    r_plus: float | None
    alpha: float

    @property
    def feasible(self) -> bool:
        return self.r_minus is not None

    def contains(self, r: float) -> bool:
        return self.feasible and self.r_minus <= r <= self.r_plus


def two_player_band(mu, L, alpha: float = 0.0) -> TimescaleBand:
    """Ratios r = w_2/w_1 with alpha_*(r) >= alpha: r_+- = (2m - P +- 2 sqrt(m (m - P))) / L_21^2 with
    m = (mu_1 - alpha)(mu_2 - alpha) and P = L_12 L_21 (from L_21^2 r^2 + (2P - 4m) r + L_12^2 <= 0)."""
    mu_t, off = check_bounds(mu, L)
    if mu_t.numel() != 2:
        raise ValueError(f"the timescale band is for two players, got N = {mu_t.numel()}")
    if not math.isfinite(alpha):
        raise ValueError(f"alpha must be finite, got {alpha}")
    mu1, mu2 = float(mu_t[0]), float(mu_t[1])
    L12, L21 = float(off[0, 1]), float(off[1, 0])
    m = (mu1 - alpha) * (mu2 - alpha)
    P = L12 * L21
    if mu1 < alpha or mu2 < alpha or m < P:
        return TimescaleBand(None, None, alpha)
    if L21 == 0.0:
        lo = 0.0 if L12 == 0.0 else (L12 ** 2 / (4 * m) if m > 0 else math.inf)
        return TimescaleBand(lo, math.inf, alpha) if math.isfinite(lo) else TimescaleBand(None, None, alpha)
    root = 2.0 * math.sqrt(m * (m - P))
    return TimescaleBand((2 * m - P - root) / L21 ** 2, (2 * m - P + root) / L21 ** 2, alpha)


def ratio_margins(mu, L, ratios: Sequence[float] | torch.Tensor) -> torch.Tensor:
    """alpha_*(r) for two players on a grid of ratios r = w_2 / w_1 (vectorised closed form of the 2 x 2 eigenvalue)."""
    mu_t, off = check_bounds(mu, L)
    if mu_t.numel() != 2:
        raise ValueError("ratio_margins is for two players")
    r = _as_float64(ratios, "ratios").reshape(-1)
    if bool((r <= 0).any()):
        raise ValueError("ratios must be > 0")
    k = off[0, 1] / r.sqrt() + off[1, 0] * r.sqrt()
    mean, half = (mu_t[0] + mu_t[1]) / 2, (mu_t[0] - mu_t[1]) / 2
    return mean - torch.sqrt(half ** 2 + k ** 2 / 4)
