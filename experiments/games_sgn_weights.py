"""Small-gain Nash weight search on random N-player games, and the certificate's steps on the 64-D LQ game
(Sharma, arXiv 2512.06791; spec quantum_games.md B2/B5).

Part 1, weight search: random comparison matrices (mu_i ~ U[0.5, 1.5], couplings L_ij ~ U[0, g] scaled so that the
small-gain ratio rho(diag(mu)^-1 L) is ~0.8), N in {3, 5, 8}. Every method's margin alpha_*(w) beside the exact
supremum tau(C_hat) (smallest real eigenvalue of the comparison matrix): Perron eigenvector (closed form),
LMI bisection with cvxpy (skipped if cvxpy is absent), Nelder-Mead on log w, the M-matrix warm start, and the
untuned baseline w = 1. Time per call is measured in this process.

Part 2, LQ steps: the 64-D LQ game over lambda in [0, 2.5]: Euclidean, SGN and true weighted margins, certified
Euler / RK4 steps against the true stability thresholds (closed form eig(H) = 1 +- lambda sqrt(ab)); a certified
step with spectral radius >= 1 would be a violation (must be 0).
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import torch

from sciml.games import (certify_linear, euclidean_margin, optimal_weights, sgn_margin, small_gain_ratio,
                         spectral_radius, step_matrix, weighted_margin)
from sciml.games.lq import lq_game
from sciml.runner import ExperimentConfig, RunContext, experiment

METHODS = ("perron", "lmi", "nelder_mead", "warm_start")


@dataclasses.dataclass(frozen=True)
class Config(ExperimentConfig):
    players: tuple[int, ...] = (3, 5, 8)
    games: int = 10
    gain: float = 0.8
    lambdas: int = 61

    def validate(self) -> None:
        if min(self.players) < 2 or self.games < 1 or not 0 < self.gain < 1 or self.lambdas < 2:
            raise ValueError("need players >= 2, games >= 1, 0 < gain < 1 and lambdas >= 2")


def random_bounds(n: int, gain: float, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """mu ~ U[0.5, 1.5]; nonnegative couplings rescaled to the small-gain ratio ``gain`` (< 1: certifiable)."""
    mu = 0.5 + torch.rand(n, generator=gen, dtype=torch.float64)
    L = torch.rand(n, n, generator=gen, dtype=torch.float64) * (1 - torch.eye(n, dtype=torch.float64))
    L = L * gain / small_gain_ratio(mu, L)
    return mu, L


def _weight_search(cfg: Config, ctx: RunContext, players, games) -> dict[str, float]:
    try:
        import cvxpy  # noqa: F401
        methods = METHODS
    except ImportError:
        methods = tuple(m for m in METHODS if m != "lmi")
        ctx.log("cvxpy not installed: the LMI method is skipped")
    gen = ctx.make_generator(1, device="cpu")
    gap = {m: [] for m in methods + ("uniform",)}
    seconds = {m: [] for m in methods}
    for n in players:
        for _ in range(games):
            mu, L = random_bounds(n, cfg.gain, gen)
            sup = optimal_weights(mu, L).alpha_sup
            for m in methods:
                t0 = time.perf_counter()
                alpha = optimal_weights(mu, L, method=m).alpha
                seconds[m].append(time.perf_counter() - t0)
                gap[m].append(sup - alpha)
            gap["uniform"].append(sup - sgn_margin(mu, L, torch.ones(n, dtype=torch.float64)))
    out = {}
    for m, g in gap.items():
        out[f"max_gap_{m}"] = float(np.max(g))        # tau(C_hat) - alpha_*(w) >= 0; 0 = optimal weights
        out[f"median_gap_{m}"] = float(np.median(g))
    for m, s in seconds.items():
        out[f"median_seconds_{m}"] = float(np.median(s))
    ctx.log("alpha gap to the supremum (max): " + ", ".join(f"{m} {out[f'max_gap_{m}']:.2e}" for m in gap))
    return out


def _lq_steps(cfg: Config, ctx: RunContext, n_lambdas: int) -> dict[str, float]:
    a, b = 10.0, 0.05
    w = torch.tensor([b / a, 1.0], dtype=torch.float64)
    lams = np.linspace(0.0, 2.5, n_lambdas)
    rows, violations = [], 0
    for lam in lams:
        H = lq_game(float(lam))
        cert = certify_linear(H, [32, 32], weights=w)
        true_euler = 2.0 / (1 + lam * np.sqrt(a * b))            # closed form: eig(H) = 1 +- lam sqrt(ab) (+- i)
        rows.append((lam, euclidean_margin(H), cert.alpha, weighted_margin(H, [32, 32], w), cert.h_euler, true_euler))
        for h, method in ((cert.h_euler * (1 - 1e-9), "euler"), (cert.h_rk4, "rk4")):
            if cert.certified and spectral_radius(step_matrix(H, h, method)) >= 1:
                violations += 1
    arr = np.asarray(rows)
    ctx.save_arrays("lq_margins", lam=arr[:, 0], euclid=arr[:, 1], sgn=arr[:, 2], true=arr[:, 3], h_euler=arr[:, 4],
                    h_euler_true=arr[:, 5])
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(4.8, 3.5))
    for j, name in ((1, "Euclidean"), (2, "SGN alpha_*"), (3, "true (weighted)")):
        ax.plot(arr[:, 0], arr[:, j], label=name)
    ax.axhline(0, color="gray", lw=0.8)
    ax.set(xlabel="coupling lambda", ylabel="monotonicity margin", ylim=(-2, 1.1))
    ax.legend(fontsize=8)
    ctx.save_figure("lq_margins", fig)

    def first_nonpositive(col):
        bad = arr[arr[:, col] <= 0, 0]
        return float(bad[0]) if bad.size else float("nan")

    return {"lq_euclid_fails_at": first_nonpositive(1), "lq_sgn_fails_at": first_nonpositive(2),
            "lq_step_violations": float(violations),
            "lq_max_alpha_minus_true": float(np.max(arr[:, 2] - arr[:, 3]))}


@experiment("games/sgn-weights", config=Config, tags=("games",),
            summary="SGN weight search (Perron / LMI / Nelder-Mead / warm start / uniform) and LQ certified steps")
def run(cfg: Config, ctx: RunContext) -> dict[str, float]:
    players = (3,) if cfg.smoke else cfg.players
    games = 2 if cfg.smoke else cfg.games
    metrics = _weight_search(cfg, ctx, players, games)
    metrics.update(_lq_steps(cfg, ctx, 11 if cfg.smoke else cfg.lambdas))
    return metrics
