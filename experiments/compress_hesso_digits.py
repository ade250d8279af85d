"""HESSO structured pruning while training on digits (spec B.10): the spec's MLP (64-128-128-10 ReLU) and a
residual MLP whose skip-connected stream channels form one group across all blocks (the residual-add rule).
Accuracy and compact size against the target group sparsity, beside random group selection on the same schedule,
and the compact model's distance to the masked one."""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from experiments.digits_common import digits_split
from sciml.compress import HESSO, ResidualCNN, ResidualMLP, compact_model, zero_invariant_groups
from sciml.runner import ExperimentConfig, RunContext, experiment

ARCHITECTURES = ("mlp", "residual_mlp", "residual_cnn")


@dataclasses.dataclass(frozen=True)
class Config(ExperimentConfig):
    architectures: tuple[str, ...] = ("mlp", "residual_mlp")
    targets: tuple[float, ...] = (0.0, 0.5, 0.7, 0.9)
    epochs: int = 40                # spec: SGD lr 0.1, momentum 0.9, batch 50, 40 epochs
    warmup_epochs: int = 5          # pruning starts after 5 epochs, lasts 10 epochs in 5 periods
    pruning_epochs: int = 10
    periods: int = 5
    lr: float = 0.1
    momentum: float = 0.9
    seeds: int = 3
    residual_width: int = 64        # residual MLP: 64 -> 64-channel stream, 2 blocks of hidden 64 -> 10
    residual_hidden: int = 64
    residual_blocks: int = 2
    cnn_channels: tuple[int, int] = (8, 16)   # residual CNN: two stages of 2 basic blocks on the 8x8 images

    def validate(self) -> None:
        if self.warmup_epochs + self.pruning_epochs > self.epochs or self.seeds < 1:
            raise ValueError("need warmup_epochs + pruning_epochs <= epochs and seeds >= 1")
        if not self.architectures or set(self.architectures) - set(ARCHITECTURES):
            raise ValueError(f"architectures must be a non-empty subset of {ARCHITECTURES}, got {self.architectures}")
        if not all(0.0 <= t < 1.0 for t in self.targets):
            raise ValueError(f"targets must lie in [0, 1), got {self.targets}")


def build_model(cfg: Config, architecture: str) -> nn.Module:
    if architecture == "mlp":
        return nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(), nn.Linear(128, 10))
    if architecture == "residual_mlp":
        return ResidualMLP(64, cfg.residual_width, cfg.residual_hidden, cfg.residual_blocks, 10)
    return ResidualCNN(1, cfg.cnn_channels, blocks_per_stage=2, num_classes=10)


def train_hesso(cfg: Config, target: float, seed: int, random_baseline: bool = False, architecture: str = "mlp"):
    """Train one model with HESSO; returns (model in eval mode, compact model, optimizer, test data)."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    (x, y), test = digits_split(0, dtype=torch.float32, images=architecture == "residual_cnn")
    model = build_model(cfg, architecture)
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
    model.eval()
    return model, compact_model(model, groups), opt, test


def hesso_sweep(cfg: Config, ctx: RunContext) -> dict[str, float]:
    """Metrics ``{architecture}/t{target}/{hesso|random}/{test_acc, test_acc_sd, compact_params, ...}``."""
    if cfg.smoke:
        cfg = dataclasses.replace(cfg, targets=(0.0, 0.5), epochs=4, warmup_epochs=1, pruning_epochs=2, seeds=1)
    metrics: dict[str, float] = {}
    runs = [(arch, target, method) for arch in cfg.architectures for target in cfg.targets
            for method in (("hesso", "random") if target else ("hesso",))]
    for arch, target, method in ctx.progress(runs, desc="architecture x target x method"):
        accs, sizes, diffs = [], [], []
        for s in range(cfg.seeds):
            model, small, _, (xt, yt) = train_hesso(cfg, target, ctx.seed + s, method == "random", arch)
            with torch.no_grad():
                accs.append(float((model(xt).argmax(1) == yt).float().mean()))
                diffs.append(float((small(xt) - model(xt)).abs().max()))
            sizes.append(sum(p.numel() for p in small.parameters()))
        acc = torch.tensor(accs)
        key = f"{arch}/t{target}/{method}"
        metrics |= {f"{key}/test_acc": float(acc.mean()), f"{key}/test_acc_sd": float(acc.std()) if len(accs) > 1
                    else 0.0, f"{key}/compact_params": float(sum(sizes) / len(sizes)),
                    f"{key}/compact_max_abs_diff": max(diffs)}
    _plot(ctx, cfg, metrics)
    return metrics


def _plot(ctx, cfg, metrics) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    for name, by_size in (("accuracy_vs_size", True), ("accuracy_vs_sparsity", False)):
        fig, ax = plt.subplots(figsize=(5.5, 4))
        for colour, arch in enumerate(cfg.architectures):
            for method, style in (("hesso", "o-"), ("random", "s--")):
                keys = [(t, f"{arch}/t{t}/{method}") for t in cfg.targets
                        if f"{arch}/t{t}/{method}/test_acc" in metrics]
                xs = [metrics[f"{k}/compact_params"] if by_size else t for t, k in keys]
                if keys:
                    ax.plot(xs, [metrics[f"{k}/test_acc"] for _, k in keys], style, color=f"C{colour}",
                            label=f"{arch} {method}")
        ax.set(xscale="log" if by_size else "linear", ylabel="test accuracy", title="HESSO vs random groups (digits)",
               xlabel="compact model parameters" if by_size else "target group sparsity")
        ax.legend(fontsize=8)
        ctx.save_figure(name, fig)


@experiment("compress/hesso-digits", config=Config, tags=("compress",),
            summary="HESSO structured pruning of a digits MLP and residual MLP vs random groups: accuracy vs size")
def run(cfg: Config, ctx: RunContext) -> dict[str, float]:
    return hesso_sweep(cfg, ctx)
