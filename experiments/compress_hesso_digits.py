"""HESSO structured pruning while training on the spec's digits MLP (64-128-128-10 ReLU, spec B.10): accuracy
and compact size against the target group sparsity, beside random group selection on the same schedule."""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from experiments.digits_common import digits_split
from sciml.compress import HESSO, compact_model, zero_invariant_groups
from sciml.runner import ExperimentConfig, RunContext, experiment


@dataclasses.dataclass(frozen=True)
class Config(ExperimentConfig):
    targets: tuple[float, ...] = (0.0, 0.5, 0.7, 0.9)
    epochs: int = 40                # spec: SGD lr 0.1, momentum 0.9, batch 50, 40 epochs
    warmup_epochs: int = 5          # pruning starts after 5 epochs, lasts 10 epochs in 5 periods
    pruning_epochs: int = 10
    periods: int = 5
    lr: float = 0.1
    momentum: float = 0.9
    seeds: int = 3

    def validate(self) -> None:
        if self.warmup_epochs + self.pruning_epochs > self.epochs or self.seeds < 1:
            raise ValueError("need warmup_epochs + pruning_epochs <= epochs and seeds >= 1")


def train_hesso(cfg: Config, target: float, seed: int, random_baseline: bool = False):
    """Train one MLP with HESSO; returns (model, compact model, optimizer, test data)."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    (x, y), test = digits_split(0, dtype=torch.float32)
    model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(), nn.Linear(128, 10))
    groups = zero_invariant_groups(model)
    steps_per_epoch = len(y) // 50
    opt = HESSO(model.parameters(), groups, target, lr=cfg.lr, momentum=cfg.momentum,
                start_pruning_step=cfg.warmup_epochs * steps_per_epoch,
                pruning_steps=cfg.pruning_epochs * steps_per_epoch, pruning_periods=cfg.periods,
                random_selection=torch.Generator().manual_seed(10_000 + seed) if random_baseline else None)
    for _ in range(cfg.epochs):
        for idx in torch.randperm(len(y), generator=gen).split(50):
            opt.zero_grad()
            nn.functional.cross_entropy(model(x[idx]), y[idx]).backward()
            opt.step()
    return model, compact_model(model, groups), opt, test


def hesso_sweep(cfg: Config, ctx: RunContext) -> dict[str, float]:
    if cfg.smoke:
        cfg = dataclasses.replace(cfg, targets=(0.0, 0.5), epochs=4, warmup_epochs=1, pruning_epochs=2, seeds=1)
    metrics: dict[str, float] = {}
    for target in ctx.progress(cfg.targets, desc="target sparsity"):
        for method in ("hesso", "random") if target > 0 else ("hesso",):
            accs, sizes, diffs = [], [], []
            for s in range(cfg.seeds):
                model, small, _, (xt, yt) = train_hesso(cfg, target, ctx.seed + s, random_baseline=method == "random")
                with torch.no_grad():
                    accs.append(float((model(xt).argmax(1) == yt).float().mean()))
                    diffs.append(float((small(xt) - model(xt)).abs().max()))
                sizes.append(sum(p.numel() for p in small.parameters()))
            acc = torch.tensor(accs)
            key = f"t{target}/{method}"
            metrics |= {f"{key}/test_acc": float(acc.mean()), f"{key}/test_acc_sd": float(acc.std()) if len(accs) > 1
                        else 0.0, f"{key}/compact_params": float(sum(sizes) / len(sizes)),
                        f"{key}/compact_max_abs_diff": max(diffs)}
    _plot(ctx, cfg, metrics)
    return metrics


def _plot(ctx, cfg, metrics) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 4))
    for method, style in (("hesso", "o-"), ("random", "s--")):
        pts = [(metrics[f"t{t}/{method}/compact_params"], metrics[f"t{t}/{method}/test_acc"]) for t in cfg.targets
               if f"t{t}/{method}/test_acc" in metrics]
        if pts:
            ax.plot(*zip(*pts), style, label=method)
    ax.set(xscale="log", xlabel="compact model parameters", ylabel="test accuracy",
           title="HESSO vs random group pruning (digits MLP)")
    ax.legend()
    ctx.save_figure("accuracy_vs_size", fig)


@experiment("compress/hesso-digits", config=Config, tags=("compress",),
            summary="HESSO structured pruning of a digits MLP vs random group selection: accuracy vs compact size")
def run(cfg: Config, ctx: RunContext) -> dict[str, float]:
    return hesso_sweep(cfg, ctx)
