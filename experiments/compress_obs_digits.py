"""One-shot pruning of the spec's digits MLP (64-64-10 ReLU, float64): M-FAC Optimal Brain Surgeon vs magnitude
pruning over a sparsity sweep (spec B.9 CPU-scale table), plus accuracy vs sparsity plot."""

from __future__ import annotations

import dataclasses

import torch

from experiments.digits_common import digits_split, fit_adam
from sciml.compress import prune
from sciml.runner import ExperimentConfig, RunContext, experiment


@dataclasses.dataclass(frozen=True)
class Config(ExperimentConfig):
    sparsities: tuple[float, ...] = (0.5, 0.7, 0.8, 0.9, 0.95)
    epochs: int = 60                     # spec: Adam, 60 epochs -> dense test accuracy ~0.970
    lr: float = 1e-3
    num_grads: int = 64                  # spec: m = 64 gradients of batch 16, lambda = 1e-4, 8 recomputations
    grad_batch_size: int = 16
    damping: float = 1e-4
    recomputations: int = 8

    def validate(self) -> None:
        if not self.sparsities or not all(0 <= s < 1 for s in self.sparsities):
            raise ValueError(f"sparsities must be in [0, 1), got {self.sparsities}")


def train_mlp(train_data, epochs: int, lr: float, generator: torch.Generator, dtype=torch.float64):
    model = torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.ReLU(), torch.nn.Linear(64, 10)).to(dtype)
    return fit_adam(model, train_data, epochs, lr, 32, generator)


def accuracy(model, data) -> float:
    with torch.no_grad():
        return float((model(data[0]).argmax(1) == data[1]).double().mean())


def obs_sweep(cfg: Config, ctx: RunContext) -> dict[str, float]:
    gen = ctx.make_generator(0, device="cpu")
    torch.manual_seed(ctx.seed)
    train_data, test_data = digits_split(0, dtype=torch.float64)
    model = train_mlp(train_data, 3 if cfg.smoke else cfg.epochs, cfg.lr, gen)
    metrics = {"dense_test_acc": accuracy(model, test_data)}
    sparsities = cfg.sparsities[:2] if cfg.smoke else cfg.sparsities
    for s in ctx.progress(sparsities, desc="sparsity"):
        mag = prune(model, s, method="magnitude", eval_data=test_data)
        obs = prune(model, s, method="mfac", data=train_data, eval_data=test_data, num_grads=cfg.num_grads,
                    grad_batch_size=cfg.grad_batch_size, damping=cfg.damping, recomputations=cfg.recomputations,
                    generator=gen)
        metrics |= {f"s{s}/magnitude_acc": mag.accuracy, f"s{s}/mfac_acc": obs.accuracy,
                    f"s{s}/mfac_minus_magnitude": obs.accuracy - mag.accuracy, f"s{s}/achieved": obs.sparsity}
    _plot(ctx, sparsities, metrics)
    return metrics


def _plot(ctx, sparsities, metrics) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 4))
    for method, style in (("mfac", "o-"), ("magnitude", "s--")):
        ax.plot(sparsities, [metrics[f"s{s}/{method}_acc"] for s in sparsities], style, label=method)
    ax.axhline(metrics["dense_test_acc"], color="gray", lw=0.8, label="dense")
    ax.set(xlabel="sparsity", ylabel="test accuracy", title="one-shot pruning, digits MLP")
    ax.legend()
    ctx.save_figure("accuracy_vs_sparsity", fig)


@experiment("compress/obs-digits", config=Config, tags=("compress", "curvature"),
            summary="One-shot M-FAC OBS vs magnitude pruning of a digits MLP over a sparsity sweep")
def run(cfg: Config, ctx: RunContext) -> dict[str, float]:
    return obs_sweep(cfg, ctx)
