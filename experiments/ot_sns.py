"""SNS vs log-domain Sinkhorn on the paper's random assignment instance (spec §2.6 R1), with convergence curves."""

from __future__ import annotations

import dataclasses
import math
import time

import numpy as np

from sciml.ot import random_assignment_instance, sinkhorn, sinkhorn_newton_sparse
from sciml.runner import ExperimentConfig, RunContext, experiment


@dataclasses.dataclass(frozen=True)
class Config(ExperimentConfig):
    n: int = 500                    # paper's size
    seeds: tuple[int, ...] = (1, 2, 3)
    eta: float = 1200.0             # paper's inverse regularisation
    n_sinkhorn: int = 20            # N1, warm start
    tol: float = 2e-15              # on ||g||_1 (spec R1)
    sinkhorn_cap: int = 2000        # capped Sinkhorn sweeps (the paper's 56k sweeps do not fit in CI)

    def validate(self) -> None:
        if self.n < 2 or not self.seeds or self.eta <= 0 or self.sinkhorn_cap < 1:
            raise ValueError(f"need n >= 2, seeds, eta > 0, sinkhorn_cap >= 1; got {self}")


@experiment("ot/sns", config=Config, tags=("ot",),
            summary="SNS vs log-domain Sinkhorn on the random assignment instance (eta = 1200): ||g||_1 vs iteration")
def run(cfg: Config, ctx: RunContext) -> dict[str, float]:
    from scipy.optimize import linear_sum_assignment

    n = 100 if cfg.smoke else cfg.n
    seeds = cfg.seeds[:1] if cfg.smoke else cfg.seeds
    cap = 300 if cfg.smoke else cfg.sinkhorn_cap
    tol = max(cfg.tol, 1e-14) if cfg.smoke else cfg.tol  # 2e-15 is at the rounding floor of ||g||_1 for small n
    curves, rows = {}, []
    for seed in ctx.progress(seeds, desc="seeds"):
        C, a, b = random_assignment_instance(n, seed, device=ctx.device)
        start = time.perf_counter()
        sns = sinkhorn_newton_sparse(C, a, b, cfg.eta, n_sinkhorn=cfg.n_sinkhorn, tol=tol, on_failure="ignore")
        sns_s = time.perf_counter() - start
        start = time.perf_counter()
        capped = sinkhorn(C, a, b, cfg.eta, tol=tol, max_iter=cap, on_failure="ignore")
        sinkhorn_s = time.perf_counter() - start
        r, c = linear_sum_assignment(C.cpu().numpy())
        lap = float(C.cpu().numpy()[r, c].sum()) / n
        row = {"seed": seed, "sns_newton": sns.n_newton, "sns_total": sns.n_iter, "sns_error": sns.marginal_error,
               "sns_s": sns_s, "sinkhorn_sweeps": capped.n_iter, "sinkhorn_error": capped.marginal_error,
               "sinkhorn_s": sinkhorn_s, "cost_minus_lap": sns.cost - lap,
               "gap_bound": (math.log(n) + 1) / cfg.eta, "converged": float(sns.converged)}
        rows.append(row)
        curves[seed] = (sns.history, capped.history)
        ctx.log("  " + ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()))
    _plot(ctx, curves, n, cfg.eta)
    ctx.save_arrays("runs", **{key: [row[key] for row in rows] for key in rows[0]})
    worst_sns = max(row["sns_error"] for row in rows)
    best_capped = min(row["sinkhorn_error"] for row in rows)
    return {
        "n": float(n),
        "sns_newton_steps_max": float(max(row["sns_newton"] for row in rows)),
        "sns_newton_steps_mean": float(np.mean([row["sns_newton"] for row in rows])),
        "sns_marginal_error_max": worst_sns,
        "sns_all_converged": float(all(row["converged"] for row in rows)),
        "sinkhorn_capped_sweeps": float(cap),
        "sinkhorn_capped_error_min": best_capped,
        "error_ratio_capped_sinkhorn_over_sns": best_capped / max(worst_sns, 1e-300),
        "cost_minus_lap_max": float(max(row["cost_minus_lap"] for row in rows)),
        "entropic_gap_bound": rows[0]["gap_bound"],
        "sns_seconds_mean": float(np.mean([row["sns_s"] for row in rows])),
        "sinkhorn_capped_seconds_mean": float(np.mean([row["sinkhorn_s"] for row in rows])),
    }


def _plot(ctx: RunContext, curves: dict, n: int, eta: float) -> None:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for i, (seed, (sns_hist, sk_hist)) in enumerate(curves.items()):
        floor = 1e-17  # ||g||_1 = 0 exactly cannot be drawn on a log axis
        ax.semilogy(np.maximum(sns_hist, floor), color=f"C{i}", lw=1.8, label=f"SNS, seed {seed}")
        ax.semilogy(np.maximum(sk_hist, floor), color=f"C{i}", ls="--", lw=1.0, label=f"Sinkhorn, seed {seed}")
    ax.set_xscale("symlog", linthresh=50)
    ax.set_xlabel("iteration (Sinkhorn sweep or Newton step)")
    ax.set_ylabel(r"marginal error $\|g\|_1$")
    ax.set_title(f"random assignment, n = {n}, eta = {eta:g}")
    ax.legend(fontsize=7)
    ctx.save_figure("convergence", fig)
