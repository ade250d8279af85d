"""The optimizer harness: the spec's digits MLP task, baselines (SGD, Adam, AdamW) and the curvature optimizers
of sciml.optim with their peers (torch-optimizer's Adahessian, sophia-opt's SophiaG) on identical data order and
initialisation; loss against steps and against wall time, several seeds."""

from __future__ import annotations

import dataclasses
import time
from typing import Callable

import numpy as np
import torch
from torch import nn

from experiments.digits_common import digits_split
from sciml.optim import MFAC, NAMO, NAMOD, AdaHessian, Muon, SophiaG, SophiaH, WithAdamW, sample_labels
from sciml.runner import ExperimentConfig, RunContext, experiment


def _peer(name: str):
    if name == "torch_optimizer_adahessian":
        import torch_optimizer

        return lambda params: torch_optimizer.Adahessian(params, lr=0.15, hessian_power=1.0)
    if name == "sophia_opt":
        import sophia_opt

        return lambda params: sophia_opt.SophiaG(params, lr=1e-3, betas=(0.965, 0.99), rho=0.05, weight_decay=0.0)
    raise KeyError(name)


def _hidden_matrices(model: nn.Sequential):
    """Spec 1.5b routing: hidden weight matrices to the matrix optimizer; output layer and biases to Adam."""
    linears = [m for m in model if isinstance(m, nn.Linear)]
    hidden = [m.weight for m in linears[:-1]]
    return hidden, [p for p in model.parameters() if all(p is not h for h in hidden)]


def _matrix(cls, **kwargs):
    def factory(model, g):
        hidden, rest = _hidden_matrices(model)
        return WithAdamW(cls(hidden, **kwargs), rest, lr=1e-3, betas=(0.9, 0.999), eps=1e-8)
    return factory


# name -> (factory(model, generator), needs create_graph, Sophia-G style Hessian refresh every k steps (0 = none))
def optimizer_table() -> dict[str, tuple[Callable, bool, int]]:
    return {
        "sgd": (lambda m, g: torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9), False, 0),
        "adam": (lambda m, g: torch.optim.Adam(m.parameters(), lr=1e-3), False, 0),
        "adamw": (lambda m, g: torch.optim.AdamW(m.parameters(), lr=1e-3, weight_decay=1e-2), False, 0),
        "adahessian": (lambda m, g: AdaHessian(m.parameters(), lr=0.15, hessian_power=1.0, generator=g), True, 0),
        "adahessian_k0.5": (lambda m, g: AdaHessian(m.parameters(), lr=0.05, hessian_power=0.5, generator=g),
                            True, 0),
        "torch_optimizer_adahessian": (lambda m, g: _peer("torch_optimizer_adahessian")(m.parameters()), True, 0),
        "sophia_g": (lambda m, g: SophiaG(m.parameters(), lr=1e-3, rho=0.05, weight_decay=0.0), False, 10),
        "sophia_opt": (lambda m, g: _peer("sophia_opt")(m.parameters()), False, 10),
        "sophia_h": (lambda m, g: SophiaH(m.parameters(), lr=1e-3, gamma=0.01, weight_decay=0.0, generator=g),
                     True, 0),
        "mfac": (lambda m, g: MFAC(m.parameters(), lr=1e-3, ngrads=64, damp=1e-4), False, 0),
        # spec 1.5b: lr 0.02, mu 0.95, Keller shape factor for Muon, Moonlight factor for NAMO, c = 0.75
        "muon": (_matrix(Muon, lr=0.02, weight_decay=0.0, adjust_lr_fn="original"), False, 0),
        "namo": (_matrix(NAMO, lr=0.02, weight_decay=0.0), False, 0),
        "namo_d": (_matrix(NAMOD, lr=0.02, weight_decay=0.0, col_clamp=0.75), False, 0),
    }


@dataclasses.dataclass(frozen=True)
class Config(ExperimentConfig):
    optimizers: tuple[str, ...] = ("sgd", "adam", "adahessian", "torch_optimizer_adahessian", "sophia_g",
                                   "sophia_opt", "mfac")
    epochs: int = 20                  # spec B.7/B.8: digits MLP 64-64-10 ReLU, batch 64, 20 epochs
    batch_size: int = 64
    seeds: int = 3
    hidden: tuple[int, ...] = (64,)   # spec optim_numerics 1.5b uses (256, 256), 30 epochs, batch 128

    def validate(self) -> None:
        unknown = set(self.optimizers) - set(optimizer_table())
        if unknown or not self.optimizers:
            raise ValueError(f"optimizers must be a non-empty subset of {sorted(optimizer_table())}, got "
                             f"{self.optimizers}")
        if self.epochs < 1 or self.seeds < 1 or self.batch_size < 1:
            raise ValueError("epochs, seeds and batch_size must be >= 1")


def train_digits(name: str, seed: int, epochs: int, batch_size: int, hidden: tuple[int, ...] = (64,)) -> dict:
    """One run: identical init and data order for every optimizer with the same seed."""
    factory, graph, hessian_every = optimizer_table()[name]
    (x, y), (xt, yt) = digits_split(0)
    torch.manual_seed(seed)
    sizes = (64,) + tuple(hidden)
    layers: list[nn.Module] = []
    for a, b in zip(sizes, sizes[1:]):
        layers += [nn.Linear(a, b), nn.ReLU()]
    model = nn.Sequential(*layers, nn.Linear(sizes[-1], 10))
    gen = torch.Generator().manual_seed(seed)
    label_gen = torch.Generator().manual_seed(seed + 1)
    opt = factory(model, torch.Generator().manual_seed(seed + 2))
    losses, times, step = [], [], 0
    start = time.perf_counter()
    for _ in range(epochs):
        for idx in torch.randperm(len(y), generator=gen).split(batch_size):
            opt.zero_grad()
            loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
            loss.backward(create_graph=graph)
            if hessian_every:
                opt.step(bs=len(idx))
            else:
                opt.step()
            step += 1
            if hessian_every and step % hessian_every == hessian_every - 1:
                opt.zero_grad()
                logits = model(x[idx])
                nn.functional.cross_entropy(logits, sample_labels(logits, label_gen)).backward()
                opt.update_hessian()
            losses.append(float(loss.detach()))
            times.append(time.perf_counter() - start)
            if graph:
                opt.zero_grad(set_to_none=True)         # free the double-backward graph
    with torch.no_grad():
        train_loss = float(nn.functional.cross_entropy(model(x), y))
        test_acc = float((model(xt).argmax(1) == yt).float().mean())
    return {"losses": losses, "times": times, "train_loss": train_loss, "test_acc": test_acc,
            "seconds": times[-1]}


def digits_benchmark(cfg: Config, ctx: RunContext) -> dict[str, float]:
    if cfg.smoke:
        cfg = dataclasses.replace(cfg, epochs=1, seeds=1)
    metrics: dict[str, float] = {}
    curves = {}
    for name in ctx.progress(cfg.optimizers, desc="optimizers"):
        runs = [train_digits(name, ctx.seed + s, cfg.epochs, cfg.batch_size, cfg.hidden) for s in range(cfg.seeds)]
        acc = np.array([r["test_acc"] for r in runs])
        metrics |= {f"{name}/test_acc": float(acc.mean()), f"{name}/test_acc_sd": float(acc.std(ddof=1)) if
                    len(acc) > 1 else 0.0, f"{name}/train_loss": float(np.mean([r["train_loss"] for r in runs])),
                    f"{name}/seconds": float(np.median([r["seconds"] for r in runs]))}
        curves[name] = runs
    _plot(ctx, curves)
    return metrics


def _plot(ctx, curves) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for name, runs in curves.items():
        losses = np.array([r["losses"] for r in runs])
        smooth = np.convolve(losses.mean(0), np.ones(20) / 20, mode="valid")
        axes[0].plot(smooth, label=name)
        axes[1].plot(np.mean([r["times"] for r in runs], 0)[: len(smooth)], smooth, label=name)
    axes[0].set(yscale="log", xlabel="step", ylabel="training loss (20-step mean)")
    axes[1].set(yscale="log", xlabel="wall time (s)", ylabel="training loss")
    axes[0].legend(fontsize=7)
    ctx.save_figure("loss_vs_steps_and_time", fig)


@experiment("optim/digits-mlp", config=Config, tags=("optim", "curvature"),
            summary="AdaHessian, Sophia, M-FAC vs SGD/Adam and their peer packages on a digits MLP (3 seeds)")
def run(cfg: Config, ctx: RunContext) -> dict[str, float]:
    return digits_benchmark(cfg, ctx)
