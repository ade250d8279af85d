"""Granziol, Zohren, Roberts (arXiv 2006.09092) at CPU scale, spec curvature.md B.2: batch curvature vs batch size.

All 1797 digits, 64-16-10 tanh MLP (P = 1210), float64, 150 full-batch SGD steps (lr 0.05, momentum 0.9). Per-sample
GGN factors A_i = S_i^T J_i (Lambda_i = S_i S_i^T, closed form for softmax cross-entropy) are computed once; for each
B, ``batches`` random batches without replacement give the exact lambda_max of the batch GGN
G_S = (1/B) sum_{i in S} A_i^T A_i from the smaller of its Gram (BC x BC) and P x P forms. The RMT (spiked
Wishart) prediction is lambda_max(G_S) - lambda_max(G) ~ c / B in the noise-dominated regime: we fit the log-log
slope on B <= ``fit_max_batch`` (spec measured -0.97). Optional: the largest constant SGD step that does not
increase the full loss over ``lr_steps`` steps from the trained point, vs B (bisection), against 2 / lambda_B.
"""

from __future__ import annotations

import dataclasses
import math

import torch
from torch import nn

from experiments.curvature_common import digits, flat_params, functional, linear_fit, mlp, single_thread, train_full_batch
from sciml.curvature import (GGNOperator, ggn_gram_eigenvalues, output_hessian_blocks, per_sample_jacobians,
                             top_eigenvalues)
from sciml.runner import ExperimentConfig, RunContext, experiment

CE = nn.CrossEntropyLoss()


@dataclasses.dataclass(frozen=True)
class Config(ExperimentConfig):
    batch_sizes: tuple[int, ...] = (8, 16, 32, 64, 128, 256, 512, 1024)
    batches: int = 20                   # random batches per B
    fit_max_batch: int = 256            # exclude B near N (finite-population factor (N-B)/(B(N-1)))
    hidden: int = 16
    steps: int = 150
    lr: float = 0.05
    momentum: float = 0.9
    lr_check: bool = False              # optional largest-stable-LR scan (minutes)
    lr_check_batches: tuple[int, ...] = (8, 32, 128, 512)
    lr_steps: int = 200
    threads: int = 1

    def validate(self) -> None:
        if not self.batch_sizes or min(self.batch_sizes) < 1 or max(self.batch_sizes) > 1797:
            raise ValueError(f"batch_sizes must lie in [1, 1797], got {self.batch_sizes}")
        if self.batches < 1 or self.steps < 0:
            raise ValueError("batches must be >= 1 and steps >= 0")
        if sum(b <= self.fit_max_batch for b in self.batch_sizes) < 2:
            raise ValueError("need at least two batch sizes <= fit_max_batch for the slope")


SMOKE = dict(batch_sizes=(8, 32, 128), batches=4, lr_check=False)


def batch_lambda_max(J: torch.Tensor, Lam: torch.Tensor, batch_sizes: tuple[int, ...], batches: int,
                     gen: torch.Generator) -> dict[int, torch.Tensor]:
    """lambda_max of G_S = (1/B) sum_{i in S} J_i^T Lambda_i J_i for ``batches`` random batches (without
    replacement) per batch size, exact by the Gram trick: {B: (batches,)}. J (N, C, P), Lam (N, C, C) per sample."""
    N = J.shape[0]
    out = {}
    for B in batch_sizes:
        picks = [torch.randperm(N, generator=gen)[:B] for _ in range(batches)]
        out[B] = torch.stack([ggn_gram_eigenvalues(J[S], Lam[S] / B).eigenvalues[0] for S in picks])
    return out


def fit_inverse_law(batch_sizes: list[int], excess: list[float]) -> tuple[float, float]:
    """Slope and intercept of log(excess) vs log(B) (1/B law: slope -1)."""
    x = torch.log(torch.tensor(batch_sizes, dtype=torch.float64))
    y = torch.log(torch.tensor(excess, dtype=torch.float64))
    return linear_fit(x, y)


def largest_stable_lr(model: nn.Module, X: torch.Tensor, y: torch.Tensor, B: int, steps: int,
                      gen_seed: int, hi: float = 20.0, iters: int = 12) -> float:
    """Largest constant plain-SGD step (batch B, fixed sample stream) whose ``steps`` steps from the current point
    do not increase the full-data loss (geometric bisection)."""
    f = functional(model)
    theta0 = flat_params(model)
    g_full = torch.func.grad(lambda th, xb, yb: nn.functional.cross_entropy(f(th, xb), yb))
    with torch.no_grad():
        base = float(nn.functional.cross_entropy(f(theta0, X), y))

    def stable(eta: float) -> bool:
        gen = torch.Generator().manual_seed(gen_seed)
        theta = theta0.clone()
        for _ in range(steps):
            idx = torch.randperm(len(X), generator=gen)[:B]
            theta = theta - eta * g_full(theta, X[idx], y[idx])
            if not bool(torch.isfinite(theta).all()):
                return False
        with torch.no_grad():
            return float(nn.functional.cross_entropy(f(theta, X), y)) <= base

    lo, top = 1e-3, hi
    if not stable(lo):
        return 0.0
    for _ in range(iters):
        mid = math.sqrt(lo * top)
        lo, top = (mid, top) if stable(mid) else (lo, mid)
    return lo


@experiment("curvature/granziol-batch", config=Config, tags=("curvature", "paper:2006.09092"),
            summary="Granziol et al.: batch-GGN lambda_max - lambda_max(G) ~ 1/B on digits (Gram trick), optional max LR vs B")
def run(cfg: Config, ctx: RunContext) -> dict[str, float]:
    if cfg.smoke:
        cfg = dataclasses.replace(cfg, **SMOKE)
    metrics: dict[str, float] = {}
    with single_thread(cfg.threads):
        X, y = digits()
        model = mlp((64, cfg.hidden, 10), 0)
        losses = train_full_batch(model, X, y, cfg.steps, cfg.lr, cfg.momentum)
        with torch.no_grad():
            metrics["train_loss"] = float(nn.functional.cross_entropy(model(X), y))
        J = per_sample_jacobians(model, X)                               # (N, C, P)
        with torch.no_grad():
            Lam = output_hessian_blocks(CE, "mean", model(X), y) * len(X)  # (N, C, C) per-sample Lambda_i
        G = GGNOperator(model, CE, (X, y))
        top = top_eigenvalues(G, 1, ctx.make_generator(5, "cpu"))
        lam_full = float(ggn_gram_eigenvalues(J, Lam / len(X)).eigenvalues[0])
        metrics |= {"lambda_max_full": lam_full, "lambda_max_full_lanczos": float(top.eigenvalues[0]),
                    "trace_full": float(torch.einsum("ncp,ncd,ndp->", J, Lam, J) / len(X)), "P": float(G.shape[0])}
        per_b = batch_lambda_max(J, Lam, cfg.batch_sizes, cfg.batches, ctx.make_generator(3, "cpu"))
        for B, lam in per_b.items():
            metrics[f"B{B}_lambda_max_mean"] = float(lam.mean())
            metrics[f"B{B}_lambda_max_std"] = float(lam.std()) if len(lam) > 1 else 0.0
        fit_b = [B for B in cfg.batch_sizes if B <= cfg.fit_max_batch]
        excess = [metrics[f"B{B}_lambda_max_mean"] - lam_full for B in fit_b]
        if min(excess) <= 0:
            ctx.log("a batch lambda_max fell below the full one: the log-log fit uses only positive excesses")
        keep = [(b, e) for b, e in zip(fit_b, excess) if e > 0]
        slope, intercept = fit_inverse_law([b for b, _ in keep], [e for _, e in keep])
        metrics |= {"slope_log_excess_vs_log_B": slope, "fit_intercept": intercept,
                    "fit_points": float(len(keep))}
        # baseline beside the 1/B law: "batch curvature = full curvature" (ratio 1, slope undefined); E[G_S] = G and
        # lambda_max is convex, so E[lambda_max(G_S)] >= lambda_max(G); the ratio at the smallest B shows the size
        metrics["smallest_B_over_full"] = metrics[f"B{min(cfg.batch_sizes)}_lambda_max_mean"] / lam_full
        if cfg.lr_check:
            for B in cfg.lr_check_batches:
                eta = largest_stable_lr(model, X, y, B, cfg.lr_steps, gen_seed=ctx.seed + B)
                lam_b = float(batch_lambda_max(J, Lam, (B,), cfg.batches, ctx.make_generator(4, "cpu"))[B].mean())
                metrics[f"lrcheck_B{B}_eta_max"] = eta
                metrics[f"lrcheck_B{B}_eta_times_lambda_B_over_2"] = eta * lam_b / 2
        ctx.save_arrays("lambda_vs_batch", batch_sizes=torch.tensor(cfg.batch_sizes),
                        lambda_max=torch.stack([per_b[B] for B in cfg.batch_sizes]), lambda_full=torch.tensor(lam_full),
                        train_losses=torch.tensor(losses))
        _plot(ctx, cfg, per_b, lam_full, slope, intercept)
    return metrics


def _plot(ctx: RunContext, cfg: Config, per_b: dict[int, torch.Tensor], lam_full: float, slope: float,
          intercept: float) -> None:
    import matplotlib.pyplot as plt

    bs = torch.tensor(cfg.batch_sizes, dtype=torch.float64)
    ex = torch.stack([per_b[B].mean() for B in cfg.batch_sizes]) - lam_full
    fig, ax = plt.subplots(figsize=(5, 3.6))
    ax.loglog(bs[ex > 0], ex[ex > 0], "o", label="mean lambda_max(G_B) - lambda_max(G)")
    fit_b = bs[bs <= cfg.fit_max_batch]
    ax.loglog(fit_b, torch.exp(intercept + slope * fit_b.log()), "-", label=f"fit: slope {slope:.2f}")
    ax.loglog(fit_b, torch.exp(intercept + slope * fit_b.log()[0]) * (fit_b / fit_b[0]) ** -1.0, ":",
              label="1/B reference")
    ax.set_xlabel("batch size B")
    ax.set_ylabel("excess top eigenvalue")
    ax.set_title("batch GGN: excess ~ 1/B")
    ax.legend(fontsize=8)
    ctx.save_figure("lambda_max_vs_batch", fig)
