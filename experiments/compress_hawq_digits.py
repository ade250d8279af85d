"""HAWQ-V2 on the spec's digits CNN: Hessian-trace sensitivities, all 4^4 bit configurations, budget picks vs
the brute-force oracle, uniform precision and random configurations (spec B.6 CPU-scale reproduction)."""

from __future__ import annotations

import dataclasses
import itertools
import time

import numpy as np
import torch

from experiments.digits_common import digits_split, fit_adam
from sciml.compress import allocate_bits, hawq_sensitivity, quantizable_layers, quantize
from sciml.runner import ExperimentConfig, RunContext, experiment


@dataclasses.dataclass(frozen=True)
class Config(ExperimentConfig):
    epochs: int = 40                 # spec: Adam 3e-3, 40 epochs, batch 100
    lr: float = 3e-3
    num_probes: int = 200            # spec: 200 Rademacher probes per layer, full train set
    bits: tuple[int, ...] = (2, 3, 4, 8)
    budgets: tuple[int, ...] = (3, 4, 5)   # budgets = the size of uniform b-bit weights
    per_channel: bool = False
    random_configs: int = 200        # the trivial baseline: random configurations within each budget

    def validate(self) -> None:
        if self.epochs < 1 or self.num_probes < 1 or self.random_configs < 1:
            raise ValueError("epochs, num_probes and random_configs must be >= 1")


def digits_cnn() -> torch.nn.Sequential:
    """Conv(1→16,3,p1)–ReLU–MaxPool2–Conv(16→32,3,p1)–ReLU–MaxPool2–Linear(128→64)–ReLU–Linear(64→10)."""
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 16, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(16, 32, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2), torch.nn.Flatten(),
        torch.nn.Linear(128, 64), torch.nn.ReLU(), torch.nn.Linear(64, 10))


@torch.no_grad()
def evaluate(model, data) -> tuple[float, float]:
    """(mean cross-entropy in float64, accuracy)."""
    x, y = data
    logits = model(x).double()
    return float(torch.nn.functional.cross_entropy(logits, y)), float((logits.argmax(1) == y).double().mean())


def spearman(a, b) -> float:
    from scipy.stats import spearmanr

    return float(spearmanr(a, b).statistic)


def hawq_study(cfg: Config, ctx: RunContext) -> dict[str, float]:
    """Train, measure sensitivities, enumerate every configuration; returns flat metrics."""
    gen = ctx.make_generator(0, device="cpu")
    torch.manual_seed(ctx.seed)
    model = digits_cnn()
    train_data, test_data = digits_split(0, images=True)
    epochs = 2 if cfg.smoke else cfg.epochs
    fit_adam(model, train_data, epochs, cfg.lr, 100, gen)          # spec: batch 100
    model.eval()
    base_loss, base_train_acc = evaluate(model, train_data)
    _, base_test_acc = evaluate(model, test_data)
    probes = 10 if cfg.smoke else cfg.num_probes
    hessian_data = (train_data[0][:200], train_data[1][:200]) if cfg.smoke else train_data
    start = time.perf_counter()
    sens = hawq_sensitivity(model, torch.nn.functional.cross_entropy, hessian_data, bits=cfg.bits,
                            num_probes=probes, per_channel=cfg.per_channel, generator=gen)
    trace_seconds = time.perf_counter() - start

    configs = list(itertools.product(sens.bits, repeat=len(sens.layers)))
    if cfg.smoke:
        configs = configs[:: max(1, len(configs) // 16)]
    delta_loss, test_acc, omega, size = [], [], [], []
    for config in ctx.progress(configs, desc="bit configurations"):
        q = quantize(model, dict(zip(sens.layers, config)), per_channel=cfg.per_channel)
        loss, _ = evaluate(q, train_data)
        delta_loss.append(loss - base_loss)
        test_acc.append(evaluate(q, test_data)[1])
        omega.append(sens.omega(config))
        size.append(sens.size_mb(config))
    delta_loss, test_acc, omega, size = map(np.asarray, (delta_loss, test_acc, omega, size))
    metrics = {"fp32_train_acc": base_train_acc, "fp32_test_acc": base_test_acc, "num_configs": len(configs),
               "trace_seconds": trace_seconds, "spearman_omega_dloss": spearman(omega, delta_loss)}
    for name, n, trace, stderr in zip(sens.layers, sens.num_params, sens.traces, sens.trace_stderr):
        metrics[f"trace/{name}"] = trace
        metrics[f"trace_stderr/{name}"] = stderr
        metrics[f"avg_trace/{name}"] = trace / n
    rng = np.random.default_rng(ctx.seed)
    index = {c: i for i, c in enumerate(configs)}
    for b in cfg.budgets:
        uniform = tuple(min(sens.bits, key=lambda c: abs(c - b)) for _ in sens.layers)
        budget = sens.uniform_size_mb(b)
        pick = allocate_bits(sens, budget)
        pick_config = tuple(pick.bits[n] for n in sens.layers)
        feasible = np.flatnonzero(size <= budget * (1 + 1e-12))
        oracle = feasible[np.argmin(delta_loss[feasible])]
        if pick_config not in index:          # smoke runs enumerate a subset: evaluate the pick directly
            q = quantize(model, pick.bits, per_channel=cfg.per_channel)
            pick_dloss, pick_acc = evaluate(q, train_data)[0] - base_loss, evaluate(q, test_data)[1]
        else:
            pick_dloss, pick_acc = delta_loss[index[pick_config]], test_acc[index[pick_config]]
        random_idx = rng.choice(feasible, size=min(cfg.random_configs, len(feasible)), replace=False)
        metrics |= {f"b{b}/pick": "".join(map(str, pick_config)), f"b{b}/pick_dloss": float(pick_dloss),
                    f"b{b}/pick_test_acc": float(pick_acc), f"b{b}/oracle": "".join(map(str, configs[oracle])),
                    f"b{b}/oracle_dloss": float(delta_loss[oracle]),
                    f"b{b}/pick_over_oracle": float(pick_dloss / max(delta_loss[oracle], 1e-12)),
                    f"b{b}/random_mean_dloss": float(delta_loss[random_idx].mean())}
        if uniform in index and sens.size_mb(uniform) <= budget * (1 + 1e-12):
            metrics[f"b{b}/uniform_dloss"] = float(delta_loss[index[uniform]])
            metrics[f"b{b}/uniform_minus_pick"] = float(delta_loss[index[uniform]] - pick_dloss)
    _plot(ctx, omega, delta_loss, size, test_acc, metrics["spearman_omega_dloss"])
    return metrics


def _plot(ctx: RunContext, omega, delta_loss, size, test_acc, rho) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    axes[0].loglog(np.maximum(omega, 1e-12), np.maximum(delta_loss, 1e-6), ".", alpha=0.6)
    axes[0].set(xlabel="Ω(b) = Σ Tr(H_i)/n_i ‖Q(W_i) − W_i‖²", ylabel="ΔL (train CE)",
                title=f"HAWQ-V2 sensitivity vs loss increase (Spearman {rho:.2f})")
    axes[1].plot(size * 1e3, test_acc, ".", alpha=0.6)
    axes[1].set(xlabel="weights size (kB)", ylabel="test accuracy", title="accuracy vs model size (all configs)")
    ctx.save_figure("hawq_omega_vs_dloss", fig)


@experiment("compress/hawq-digits", config=Config, tags=("compress", "curvature"),
            summary="HAWQ-V2 bit allocation on a digits CNN vs the brute-force oracle over all 256 configurations")
def run(cfg: Config, ctx: RunContext) -> dict[str, float]:
    return hawq_study(cfg, ctx)
