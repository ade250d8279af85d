"""Entropy-regularised two-player tabular Markov game with softmax policies, its Fisher (mirror) SGN certificate and
natural / Euclidean policy gradient (spec quantum_games.md B2 "Mirror/Fisher extension", B5.4).

Player i minimises f_i(theta) = -(<d_pi, r> + tau sum_s H(pi_i(.|s))) with the normalised occupancy
d = (1 - gamma)(I - gamma P_pi^T)^{-1} mu_0 and an unweighted entropy sum over states (as the released code).
Softmax logits have one null direction per state (adding a constant); the Fisher quantities are computed on its
orthogonal complement, which is what the authors' eigenvalue threshold (1e-5) and clamped square roots approximate.
"""

from __future__ import annotations

import dataclasses
import math

import torch

from sciml.core import Result, Status, check_floating
from sciml.games.certify import Box
from sciml.games.sgn import TimescaleBand, optimal_weights, ratio_margins, two_player_band


@dataclasses.dataclass(frozen=True)
class TabularMarkovGame:
    """P (S, A, A, S) transition probabilities, r (S, A, A) shared reward, mu0 (S,) start distribution."""

    P: torch.Tensor
    r: torch.Tensor
    mu0: torch.Tensor
    gamma: float = 0.9
    tau: float = 1.0

    def __post_init__(self) -> None:
        for name in ("P", "r", "mu0"):
            check_floating(getattr(self, name), name)
        S, A = self.r.shape[0], self.r.shape[1]
        if self.P.shape != (S, A, A, S) or self.r.shape != (S, A, A) or self.mu0.shape != (S,):
            raise ValueError(f"shapes must be P (S, A, A, S), r (S, A, A), mu0 (S,); got {tuple(self.P.shape)}, "
                             f"{tuple(self.r.shape)}, {tuple(self.mu0.shape)}")
        if not torch.allclose(self.P.sum(-1), torch.ones_like(self.P.sum(-1))) or bool((self.P < 0).any()):
            raise ValueError("P(.|s, a1, a2) must be probability vectors")
        if not 0 <= self.gamma < 1:
            raise ValueError(f"gamma must be in [0, 1), got {self.gamma}")
        if not self.tau > 0:
            raise ValueError(f"tau must be > 0, got {self.tau}")

    @property
    def n_states(self) -> int:
        return self.r.shape[0]

    @property
    def n_actions(self) -> int:
        return self.r.shape[1]

    @property
    def block(self) -> int:
        """Logits per player (S * A)."""
        return self.n_states * self.n_actions

    def policies(self, theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        S, A = self.n_states, self.n_actions
        return (torch.softmax(theta[..., :S * A].reshape(*theta.shape[:-1], S, A), -1),
                torch.softmax(theta[..., S * A:].reshape(*theta.shape[:-1], S, A), -1))

    def losses(self, theta: torch.Tensor) -> torch.Tensor:
        """(f_1, f_2) at one logit vector theta (2 S A,)."""
        pi1, pi2 = self.policies(theta)
        joint = pi1[:, :, None] * pi2[:, None, :]
        P_pi = torch.einsum("sij,sijk->sk", joint, self.P)
        eye = torch.eye(self.n_states, dtype=theta.dtype, device=theta.device)
        d_s = torch.linalg.solve(eye - self.gamma * P_pi.T, (1 - self.gamma) * self.mu0)
        value = (d_s[:, None, None] * joint * self.r).sum()
        ent1 = -(pi1 * torch.log_softmax(theta[:self.block].reshape(pi1.shape), -1)).sum()
        ent2 = -(pi2 * torch.log_softmax(theta[self.block:].reshape(pi2.shape), -1)).sum()
        return torch.stack([-(value + self.tau * ent1), -(value + self.tau * ent2)])

    def pseudo_gradient(self, theta: torch.Tensor) -> torch.Tensor:
        """F(theta) = (grad_{theta_1} f_1, grad_{theta_2} f_2) at one point (use torch.func.vmap for batches)."""
        from torch.func import grad

        g1 = grad(lambda t: self.losses(t)[0])(theta)
        g2 = grad(lambda t: self.losses(t)[1])(theta)
        return torch.cat([g1[:self.block], g2[self.block:]])

    def pseudo_gradients(self, theta: torch.Tensor) -> torch.Tensor:
        """F at a batch of points (n, 2 S A) by two reverse passes through the batched losses (cheaper per call than
        vmap over :meth:`pseudo_gradient`, for the many small steps of policy gradient)."""
        from torch.func import vmap

        with torch.enable_grad():
            t = theta.detach().requires_grad_(True)
            f = vmap(self.losses)(t)
            g1, = torch.autograd.grad(f[:, 0].sum(), t, retain_graph=True)
            g2, = torch.autograd.grad(f[:, 1].sum(), t)
        return torch.cat([g1[:, :self.block], g2[:, self.block:]], -1)

    def fisher(self, theta: torch.Tensor, jitter: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-player Fisher matrices blockdiag_s(diag(pi(.|s)) - pi pi^T) (+ jitter I), batched over theta."""
        out = []
        for pi in self.policies(theta):
            blocks = torch.diag_embed(pi) - pi[..., :, None] * pi[..., None, :]
            F = torch.zeros(*pi.shape[:-2], self.block, self.block, dtype=pi.dtype, device=pi.device)
            A = self.n_actions
            for s in range(self.n_states):      # S is tiny; the batch dimension is vectorised
                F[..., s * A:(s + 1) * A, s * A:(s + 1) * A] = blocks[..., s, :, :]
            out.append(F + jitter * torch.eye(self.block, dtype=pi.dtype, device=pi.device))
        return out[0], out[1]

    def shift_complement(self) -> torch.Tensor:
        """Orthonormal basis V (S A, S (A - 1)) of the logits orthogonal to per-state constant shifts."""
        A = self.n_actions
        ones = torch.ones(A, 1, dtype=self.r.dtype, device=self.r.device) / math.sqrt(A)
        Q, _ = torch.linalg.qr(torch.cat([ones, torch.eye(A, dtype=self.r.dtype, device=self.r.device)], 1))
        per_state = Q[:, 1:A]
        return torch.block_diag(*[per_state] * self.n_states)


def coordination_game(gamma: float = 0.9, tau: float = 1.0, dtype: torch.dtype = torch.float64,
                      device=None) -> TabularMarkovGame:
    """The 2-player, 2-state, 2-action game of the SGN paper: matching actions (0,0) -> state 0 w.p. 0.9, (1,1) ->
    state 1 w.p. 0.9, mismatches -> 0.5/0.5 (from either state); reward +1 on a match, -1 otherwise; start in 0."""
    P = torch.zeros(2, 2, 2, 2, dtype=dtype, device=device)
    P[:, 0, 0] = torch.tensor([0.9, 0.1], dtype=dtype)
    P[:, 1, 1] = torch.tensor([0.1, 0.9], dtype=dtype)
    P[:, 0, 1] = P[:, 1, 0] = 0.5
    r = torch.tensor([[1.0, -1.0], [-1.0, 1.0]], dtype=dtype, device=device).expand(2, 2, 2).clone()
    mu0 = torch.tensor([1.0, 0.0], dtype=dtype, device=device)
    return TabularMarkovGame(P, r, mu0, gamma, tau)


def _inv_sqrt(F: torch.Tensor) -> torch.Tensor:
    e, V = torch.linalg.eigh(F)
    return V @ torch.diag_embed(e.rsqrt()) @ V.transpose(-1, -2)


@dataclasses.dataclass(frozen=True)
class FisherCertificate(Result):
    """SGN bounds in the Fisher geometry on a logit cube around theta_star: mu (2,), L (2, 2), margin-optimal ratio
    and alpha, the ratio and alpha the authors' log grid picks, beta at that ratio, eta_max = 2 alpha / beta^2."""

    mu: torch.Tensor
    L: torch.Tensor
    ratio: float
    alpha: float
    grid_ratio: float
    grid_alpha: float
    beta: float
    eta_max: float
    band: TimescaleBand
    n_points: int


def fisher_certificate(game: TabularMarkovGame, theta_star: torch.Tensor, radius: float = 0.1,
                       ratio_grid: torch.Tensor | None = None, jitter: float = 0.0) -> FisherCertificate:
    """Fisher-normalised SGN certificate over the 2^d vertices of {|theta - theta*|_inf <= radius} (plus the center).

    mu_i = min lambda_min(V^T F_i^{-1/2} H_ii F_i^{-1/2} V), L_ij = max ||F_i^{-1/2} H_ij F_j^{-1/2}|| (restricted
    to the shift complement V), beta = max ||M^{1/2} F^{-1} J M^{-1/2}|| with M = blockdiag(w_1 F_1, w_2 F_2).
    """
    from torch.func import jacrev, vmap

    check_floating(theta_star, "theta_star")
    if not radius > 0:
        raise ValueError(f"radius must be > 0, got {radius}")
    points = Box(theta_star, radius, max_vertices=1 << 16).points()
    J = vmap(jacrev(game.pseudo_gradient))(points)
    F1, F2 = game.fisher(points, jitter)
    V = game.shift_complement()
    # Reduced (shift-free) coordinates: y_i = V^T theta_i; Fisher G_i = V^T F_i V, Jacobian K = V^T J V blockwise.
    G1, G2 = V.T @ F1 @ V, V.T @ F2 @ V
    Vb = torch.block_diag(V, V)
    K = Vb.T @ J @ Vb
    m = V.shape[1]
    S1, S2 = _inv_sqrt(G1), _inv_sqrt(G2)
    N11 = S1 @ K[:, :m, :m] @ S1
    N22 = S2 @ K[:, m:, m:] @ S2
    N12 = S1 @ K[:, :m, m:] @ S2
    N21 = S2 @ K[:, m:, :m] @ S1
    sym = lambda X: 0.5 * (X + X.transpose(-1, -2))  # noqa: E731
    mu = torch.stack([torch.linalg.eigvalsh(sym(N11))[:, 0].min(), torch.linalg.eigvalsh(sym(N22))[:, 0].min()])
    L = torch.zeros(2, 2, dtype=mu.dtype, device=mu.device)
    L[0, 1] = torch.linalg.matrix_norm(N12, ord=2).max()
    L[1, 0] = torch.linalg.matrix_norm(N21, ord=2).max()
    best = optimal_weights(mu.cpu(), L.cpu())
    if ratio_grid is None:
        ratio_grid = torch.logspace(-2, 2, 200, dtype=torch.float64)
    margins = ratio_margins(mu.cpu(), L.cpu(), ratio_grid)
    k = int(torch.argmax(margins))
    r_grid = float(ratio_grid[k])
    # beta of the natural-gradient field G^{-1} K in the metric blockdiag(w1 G1, w2 G2), at the grid ratio (as the
    # released code); M^{1/2} G^{-1} K M^{-1/2} = W^{1/2} G^{-1/2} K G^{-1/2} W^{-1/2}.
    Sinv = torch.zeros_like(K)
    Sinv[:, :m, :m], Sinv[:, m:, m:] = S1, S2
    s = torch.cat([torch.ones(m, dtype=K.dtype, device=K.device),
                   math.sqrt(r_grid) * torch.ones(m, dtype=K.dtype, device=K.device)])
    B = s[:, None] * (Sinv @ K @ Sinv) / s[None, :]
    beta = float(torch.linalg.matrix_norm(B, ord=2).max())
    alpha_grid = float(margins[k])
    eta_max = 2 * alpha_grid / beta ** 2 if alpha_grid > 0 else 0.0
    return FisherCertificate(mu, L, best.ratio, best.alpha, r_grid, alpha_grid, beta, eta_max,
                             two_player_band(mu.cpu(), L.cpu()), points.shape[0])


@dataclasses.dataclass(frozen=True)
class PolicyGradientRun(Result):
    """Per-seed iterations to ||grad|| < tol (steps run when not reached), Lyapunov sum_i w_i KL(pi_i*||pi_i) per
    iteration (iterations, seeds), gradient norms, final logits and the status (CONVERGED when every seed met tol)."""

    iterations: torch.Tensor
    lyapunov: torch.Tensor
    grad_norms: torch.Tensor
    theta: torch.Tensor
    converged: torch.Tensor
    status: Status


def policy_gradient(game: TabularMarkovGame, theta0: torch.Tensor, eta: float, steps: int = 2000,
                    geometry: str = "fisher", theta_star: torch.Tensor | None = None, weights=(1.0, 1.0),
                    tol: float = 1e-6) -> PolicyGradientRun:
    """Natural (``geometry="fisher"``: theta_i <- theta_i - eta F_i^+ g_i, Euler on the Fisher flow) or Euclidean
    policy gradient from a batch of starts theta0 (seeds, 2 S A), all seeds advanced together.

    Each seed stops counting at the first iteration whose pre-step gradient norm is < tol (the released code's rule).
    """
    check_floating(theta0, "theta0")
    if geometry not in ("fisher", "euclidean"):
        raise ValueError(f"geometry must be 'fisher' or 'euclidean', got {geometry!r}")
    if not (math.isfinite(eta) and eta > 0):
        raise ValueError(f"eta must be a finite number > 0, got {eta}")
    theta = theta0.reshape(-1, 2 * game.block).clone()
    star = torch.zeros(2 * game.block, dtype=theta.dtype, device=theta.device) if theta_star is None else theta_star
    p1s, p2s = game.policies(star)
    w1, w2 = float(weights[0]), float(weights[1])
    field = game.pseudo_gradients
    n_seeds = theta.shape[0]
    iterations = torch.full((n_seeds,), steps, dtype=torch.long, device=theta.device)
    done = torch.zeros(n_seeds, dtype=torch.bool, device=theta.device)
    lyap, norms = [], []
    n = game.block
    V = game.shift_complement()
    for k in range(steps):
        g = field(theta)
        gn = torch.linalg.vector_norm(g, dim=-1)
        newly = (~done) & (gn < tol)
        iterations[newly] = k
        done |= newly
        norms.append(gn)
        if bool(done.all()):
            break
        if geometry == "fisher":
            # Min-norm natural gradient F_i^+ g_i = V (V^T F_i V)^{-1} V^T g_i (g_i has no shift component).
            F1, F2 = game.fisher(theta)
            d1 = torch.linalg.solve(V.T @ F1 @ V, (g[:, :n] @ V)[..., None])[..., 0] @ V.T
            d2 = torch.linalg.solve(V.T @ F2 @ V, (g[:, n:] @ V)[..., None])[..., 0] @ V.T
            step = torch.cat([d1, d2], -1)
        else:
            step = g
        theta = torch.where(done[:, None], theta, theta - eta * step)
        p1, p2 = game.policies(theta)
        kl = lambda ps, p: (ps * (ps.log() - p.log())).sum((-1, -2))  # noqa: E731
        lyap.append(w1 * kl(p1s, p1) + w2 * kl(p2s, p2))
        if not bool(torch.isfinite(theta).all()):
            break
    converged = done.clone()
    status = Status.CONVERGED if bool(converged.all()) else (
        Status.NONFINITE if not bool(torch.isfinite(theta).all()) else Status.MAX_ITER)
    return PolicyGradientRun(iterations, torch.stack(lyap) if lyap else torch.empty(0, n_seeds),
                             torch.stack(norms), theta, converged, status)


__all__ = ["FisherCertificate", "PolicyGradientRun", "TabularMarkovGame", "coordination_game", "fisher_certificate",
           "policy_gradient"]
