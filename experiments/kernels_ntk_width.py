"""Empirical NNGP/NTK of random ReLU MLPs converging to the exact kernels as width grows (spec ssm.md 2.3, 2.5.2).

MLP ReLU, 2 hidden layers, sw^2 = 2, sb = 0.1, 6 Gaussian inputs in R^5; relative Frobenius error of one network's
last-layer Gram (NNGP) and J J^T (NTK) against sciml.kernels.mlp_kernel, mean over seeds; log-log slope fitted.
Expected slope ~ -1/2 (fluctuations O(width^-1/2)).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch

from sciml.kernels import mlp_width_sweep
from sciml.runner import ExperimentConfig, RunContext, experiment


@dataclasses.dataclass(frozen=True)
class Config(ExperimentConfig):
    widths: tuple[int, ...] = (64, 128, 256, 512, 1024, 2048)
    seeds: int = 5
    n_inputs: int = 6
    d_in: int = 5
    depth: int = 2

    def validate(self) -> None:
        if self.seeds < 1 or len(self.widths) < 2 or min(self.widths) < 1:
            raise ValueError(f"need seeds >= 1 and >= 2 widths >= 1, got {self.seeds}, {self.widths}")
        if self.n_inputs < 2 or self.d_in < 1 or self.depth < 0:
            raise ValueError("need n_inputs >= 2, d_in >= 1, depth >= 0")


def sweep_inputs(n: int, d: int, generator: torch.Generator) -> torch.Tensor:
    return torch.randn(n, d, generator=generator, dtype=torch.float64)


@experiment("kernels/ntk-width", config=Config, tags=("kernels",),
            summary="empirical NNGP/NTK of ReLU MLPs vs the exact kernels: error ~ width^-1/2")
def run(cfg: Config, ctx: RunContext) -> dict[str, float]:
    widths = (64, 128, 256) if cfg.smoke else cfg.widths
    seeds = 2 if cfg.smoke else cfg.seeds
    X = sweep_inputs(cfg.n_inputs, cfg.d_in, ctx.make_generator(1, device="cpu")).to(ctx.device)
    sweep = mlp_width_sweep(X, widths, seeds, depth=cfg.depth, sigma_w=math.sqrt(2.0), sigma_b=0.1,
                            seed=ctx.seed, progress=ctx.progress)
    ctx.save_arrays("sweep", widths=np.asarray(widths), nngp_errors=sweep.nngp_errors, ntk_errors=sweep.ntk_errors)
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(4.5, 3.5))
    for name, err in (("NNGP (last-layer Gram)", sweep.nngp_errors), ("NTK (J J^T)", sweep.ntk_errors)):
        ax.errorbar(widths, err.mean(1), yerr=err.std(1), marker="o", capsize=3, label=name)
    ref = sweep.ntk_errors.mean(1)[0] * (np.asarray(widths) / widths[0]) ** -0.5
    ax.plot(widths, ref, "k--", lw=1, label="width^-1/2")
    ax.set(xscale="log", yscale="log", xlabel="width", ylabel="relative Frobenius error")
    ax.legend(fontsize=8)
    ctx.save_figure("error_vs_width", fig)
    metrics = {"nngp_slope": sweep.nngp_slope, "ntk_slope": sweep.ntk_slope}
    for w, e1, e2 in zip(widths, sweep.nngp_errors.mean(1), sweep.ntk_errors.mean(1)):
        metrics[f"nngp_err_w{w}"], metrics[f"ntk_err_w{w}"] = float(e1), float(e2)
    return metrics
