"""SGN certificates: block bounds of a Jacobian, the weighted margin and Lipschitz constant, certified step sizes.

For a pseudo-gradient F with Jacobian J on a region, SGN takes mu_i = min lambda_min(sym J_ii), L_ij = max ||J_ij||_2,
picks weights w, and certifies <F(x) - F(y), x - y>_w >= alpha ||x - y||_w^2 with alpha = alpha_*(w). With the weighted
Lipschitz constant beta = max ||M^{1/2} J M^{-1/2}||_2 (M = blockdiag(w_i I_{d_i})):
* Euler: ||x+ - y+||_w^2 <= (1 - 2 h alpha + h^2 beta^2) ||x - y||_w^2, a contraction for 0 < h < 2 alpha / beta^2;
* RK4 (linear F): every eigenvalue lambda of J has Re lambda >= alpha > 0 and |lambda| <= beta, and the RK4 stability
  polynomial has |R(z)| <= 1 on the closed left half-disk of radius 2.5 (checked in tests), so h <= 2.5 / beta gives
  spectral radius < 1 by the maximum principle. For nonlinear F this is the authors' guideline, not a proof.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from typing import Callable, Sequence

import torch

from sciml.core import Result, check_floating
from sciml.games.sgn import Weights, check_weights, optimal_weights, sgn_margin

RK4_RADIUS = 2.5          # C_4: |R_4(z)| <= 1 on the closed left half-disk of this radius (fails at about 2.7)
OBJECTIVES = ("alpha", "euler", "rk4")


def check_blocks(blocks: Sequence[int], dim: int) -> tuple[int, ...]:
    """Per-player dimensions: positive integers summing to ``dim``."""
    if isinstance(blocks, int) or not all(isinstance(b, int) and not isinstance(b, bool) for b in blocks):
        raise TypeError(f"blocks must be a sequence of per-player dimensions (ints), got {blocks!r}")
    blocks = tuple(blocks)
    if not blocks or any(b < 1 for b in blocks):
        raise ValueError(f"every block dimension must be >= 1, got {blocks}")
    if sum(blocks) != dim:
        raise ValueError(f"block sizes {blocks} sum to {sum(blocks)}, but the joint dimension is {dim}")
    return blocks


def check_square(H: torch.Tensor, name: str = "H") -> None:
    check_floating(H, name)
    if H.is_complex():
        raise ValueError(f"{name} must be real")
    if H.ndim != 2 or H.shape[0] != H.shape[1]:
        raise ValueError(f"{name} must be a square matrix, got shape {tuple(H.shape)}")


def block_bounds(J: torch.Tensor, blocks: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """mu_i = lambda_min(sym J_ii) and L_ij = ||J_ij||_2 of one Jacobian, or min / max over a batch (..., d, d)."""
    cuts = [0, *itertools.accumulate(blocks)]
    J = J.reshape(-1, *J.shape[-2:])
    n = len(blocks)
    mu = torch.empty(n, dtype=J.dtype, device=J.device)
    L = torch.zeros(n, n, dtype=J.dtype, device=J.device)
    for i in range(n):          # loops over players (N is small), the heavy work is batched over points
        si = slice(cuts[i], cuts[i + 1])
        Jii = J[:, si, si]
        mu[i] = torch.linalg.eigvalsh(0.5 * (Jii + Jii.transpose(-1, -2)))[:, 0].min()
        for j in range(n):
            if i != j:
                L[i, j] = torch.linalg.matrix_norm(J[:, si, cuts[j]:cuts[j + 1]], ord=2).max()
    return mu, L


def metric_diagonal(w: torch.Tensor, blocks: Sequence[int], like: torch.Tensor) -> torch.Tensor:
    """diag(M(w)) = (w_1 1_{d_1}, ..., w_N 1_{d_N}) on ``like``'s device and dtype."""
    return torch.repeat_interleave(w.to(like), torch.tensor(blocks, device=like.device))


def weighted_lipschitz(J: torch.Tensor, blocks: Sequence[int], w) -> float:
    """beta(w) = max over a batch of ||M^{1/2} J M^{-1/2}||_2 (the Lipschitz constant of a linear F in ||.||_w)."""
    check_floating(J, "J")
    w = check_weights(w, len(blocks))
    s = metric_diagonal(w, blocks, J).sqrt()
    JM = s[:, None] * J / s[None, :]
    return float(torch.linalg.matrix_norm(JM.reshape(-1, *J.shape[-2:]), ord=2).max())


def weighted_margin(J: torch.Tensor, blocks: Sequence[int], w) -> float:
    """The true weighted monotonicity margin lambda_min(M^{-1/2} sym(M J) M^{-1/2}) (min over a batch)."""
    check_floating(J, "J")
    w = check_weights(w, len(blocks))
    s = metric_diagonal(w, blocks, J).sqrt()
    B = s[:, None] * J / s[None, :]
    B = B.reshape(-1, *J.shape[-2:])
    return float(torch.linalg.eigvalsh(0.5 * (B + B.transpose(-1, -2)))[:, 0].min())


def euclidean_margin(J: torch.Tensor) -> float:
    """lambda_min(sym J): positive iff F is strongly monotone in the Euclidean inner product."""
    J = J.reshape(-1, *J.shape[-2:])
    return float(torch.linalg.eigvalsh(0.5 * (J + J.transpose(-1, -2)))[:, 0].min())


@dataclasses.dataclass(frozen=True)
class Certificate(Result):
    """An SGN certificate on a region.

    ``alpha`` is the certified rate (x' = -F(x) contracts at e^{-alpha t} in ||.||_w); ``h_euler`` = 2 alpha / beta^2
    is the supremum of certified Euler steps (every 0 < h < h_euler contracts, factor ``euler_factor(h)``);
    ``h_rk4`` = 2.5 / beta. Both are 0 when alpha <= 0 (nothing certified).
    """

    weights: torch.Tensor
    alpha: float
    beta: float
    h_euler: float
    h_rk4: float
    mu: torch.Tensor
    L: torch.Tensor
    blocks: tuple[int, ...]
    alpha_sup: float
    n_points: int = 1

    @property
    def certified(self) -> bool:
        return self.alpha > 0

    @property
    def ratio(self) -> float:
        return float(self.weights[1] / self.weights[0])

    def euler_factor(self, h: float) -> float:
        """Certified contraction factor sqrt(1 - 2 h alpha + h^2 beta^2) of one Euler step in ||.||_w."""
        return max(0.0, 1 - 2 * h * self.alpha + h * h * self.beta ** 2) ** 0.5


def _choose_weights(mu, L, J: torch.Tensor, blocks, objective: str, weights) -> tuple[torch.Tensor, float]:
    """Weights for the certificate: given, margin-optimal, or maximising alpha / beta^p (p = 2 Euler, 1 RK4): a
    bounded 1-D search over log r inside the timescale band for two players, Nelder-Mead on log w otherwise."""
    import numpy as np
    from scipy.optimize import minimize, minimize_scalar

    from sciml.games.sgn import two_player_band

    best = optimal_weights(mu, L)
    if weights is not None:
        return check_weights(weights, len(blocks)), best.alpha_sup
    if objective == "alpha" or not best.certified:
        return best.weights, best.alpha_sup
    power = 2 if objective == "euler" else 1

    def value(w: torch.Tensor) -> float:
        a = sgn_margin(mu, L, w)
        return a / weighted_lipschitz(J, blocks, w) ** power if a > 0 else -1.0 + a

    start = value(best.weights)
    if len(blocks) == 2:
        band = two_player_band(mu, L)
        lo, hi = math.log(max(band.r_minus, 1e-300)), math.log(min(band.r_plus, 1e300))
        res = minimize_scalar(lambda z: -value(torch.tensor([1.0, math.exp(z)], dtype=torch.float64)),
                              bounds=(lo, hi), method="bounded", options={"xatol": 1e-10})
        w = torch.tensor([1.0, math.exp(res.x)], dtype=torch.float64)
    else:
        res = minimize(lambda z: -value(torch.from_numpy(np.exp(z - z.max()))), np.log(best.weights.numpy()),
                       method="Nelder-Mead", options={"xatol": 1e-10, "fatol": 1e-14, "maxiter": 2000})
        w = torch.from_numpy(np.exp(res.x - res.x.max()))
    w = w / w.sum()
    return (w if value(w) >= start else best.weights), best.alpha_sup


def certificate_from_jacobians(J: torch.Tensor, blocks: Sequence[int], weights=None,
                               objective: str = "alpha") -> Certificate:
    """Certificate from a batch of Jacobians (n, d, d) sampled on a region (or one Jacobian (d, d))."""
    if objective not in OBJECTIVES:
        raise ValueError(f"objective must be one of {OBJECTIVES}, got {objective!r}")
    check_floating(J, "J")
    if J.ndim not in (2, 3) or J.shape[-1] != J.shape[-2]:
        raise ValueError(f"Jacobians must have shape (d, d) or (n, d, d), got {tuple(J.shape)}")
    blocks = check_blocks(blocks, J.shape[-1])
    J = J.reshape(-1, *J.shape[-2:])
    mu, L = block_bounds(J, blocks)
    if bool((mu <= 0).any()):
        raise ValueError(f"own curvature bounds must be > 0 for an SGN certificate, got mu = {mu.tolist()} "
                         "(a player's own cost is not strongly convex on this region)")
    w, alpha_sup = _choose_weights(mu.cpu(), L.cpu(), J, blocks, objective, weights)
    alpha = sgn_margin(mu.cpu(), L.cpu(), w)
    beta = weighted_lipschitz(J, blocks, w)
    ok = alpha > 0 and beta > 0
    return Certificate(w, alpha, beta, 2 * alpha / beta ** 2 if ok else 0.0, RK4_RADIUS / beta if ok else 0.0,
                       mu, L, blocks, alpha_sup, J.shape[0])


def certify_linear(H: torch.Tensor, blocks: Sequence[int], weights=None, objective: str = "alpha") -> Certificate:
    """SGN certificate of the linear pseudo-gradient F(x) = H x (bounds are exact: mu_i = lambda_min(sym H_ii),
    L_ij = ||H_ij||_2).

    Args:
        H: (d, d) real matrix.
        blocks: per-player dimensions, summing to d.
        weights: fixed block weights (> 0); default: the margin-optimal weights (:func:`optimal_weights`).
        objective: "alpha" (maximise the rate), "euler" (alpha / beta^2) or "rk4" (alpha / beta) when choosing weights.
    """
    check_square(H)
    return certificate_from_jacobians(H, blocks, weights, objective)


@dataclasses.dataclass(frozen=True)
class Box:
    """The region {x : |x - center|_inf <= radius}; its sample points are the 2^d vertices plus the center when
    2^d <= max_vertices, else the center plus ``n_samples`` uniform points (vertices are a heuristic, not a proof:
    bounds between sample points are estimates)."""

    center: torch.Tensor
    radius: float
    n_samples: int = 256
    max_vertices: int = 4096
    seed: int = 0

    def __post_init__(self) -> None:
        check_floating(self.center, "Box center")
        if not (isinstance(self.radius, (int, float)) and 0 < self.radius < float("inf")):
            raise ValueError(f"Box radius must be a finite number > 0, got {self.radius!r}")
        if self.n_samples < 1:
            raise ValueError(f"n_samples must be >= 1, got {self.n_samples}")

    def points(self) -> torch.Tensor:
        c = self.center.reshape(-1)
        d = c.numel()
        if 2 ** d <= self.max_vertices:
            signs = torch.cartesian_prod(*[torch.tensor([-1.0, 1.0], dtype=c.dtype, device=c.device)] * d)
            signs = signs.reshape(-1, d)
        else:
            g = torch.Generator(device="cpu").manual_seed(self.seed)
            signs = (2 * torch.rand(self.n_samples, d, generator=g, dtype=c.dtype) - 1).to(c.device)
        return torch.cat([c[None], c[None] + self.radius * signs])


def jacobians(F: Callable[[torch.Tensor], torch.Tensor], points: torch.Tensor) -> torch.Tensor:
    """Jacobians (n, d, d) of a pseudo-gradient F: (d,) -> (d,) at each point (vmap of jacrev)."""
    from torch.func import jacrev, vmap

    return vmap(jacrev(F))(points)


def certify(F: Callable[[torch.Tensor], torch.Tensor], region, blocks: Sequence[int], weights=None,
            objective: str = "alpha") -> Certificate:
    """SGN certificate of a pseudo-gradient F on a region, with mu/L/beta estimated from Jacobians at sample points.

    Args:
        F: differentiable torch function (d,) -> (d,), F(x) = (grad_{x_i} f_i(x))_i.
        region: a :class:`Box` or a tensor (n, d) of sample points.
        blocks: per-player dimensions.
    """
    if not callable(F):
        raise TypeError("F must be a callable mapping a (d,) tensor to its (d,) pseudo-gradient")
    points = region.points() if isinstance(region, Box) else region
    check_floating(points, "region points")
    if points.ndim != 2:
        raise ValueError(f"region points must have shape (n, d), got {tuple(points.shape)}")
    check_blocks(blocks, points.shape[1])
    J = jacobians(F, points)
    if J.shape[-2:] != (points.shape[1], points.shape[1]):
        raise ValueError(f"F must map (d,) to (d,), its Jacobian has shape {tuple(J.shape[1:])}")
    return certificate_from_jacobians(J, blocks, weights, objective)


__all__ = ["Box", "Certificate", "Weights", "block_bounds", "certificate_from_jacobians", "certify",
           "certify_linear", "euclidean_margin", "jacobians", "weighted_lipschitz", "weighted_margin"]
