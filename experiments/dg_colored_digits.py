"""Colored Digits (spec B.4): a CPU-scale Colored-MNIST protocol on scikit-learn's digits. Label = (digit < 5)
flipped w.p. 0.25; colour = label flipped w.p. e (0.2, 0.1 in training, 0.9 at test), so colour is a spurious
feature that flips at test time. ERM, HGP and Hutchinson Hessian alignment (sciml.curvature) and the grayscale
oracle, full-batch Adam, penalty switched on at step 100 (the annealing the spec calls essential)."""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
from torch import nn

from sciml.curvature.alignment import alignment_objective, hessian_alignment_penalty
from sciml.runner import ExperimentConfig, RunContext, experiment

METHODS = ("erm", "hgp", "hutchinson", "oracle")


@dataclasses.dataclass(frozen=True)
class Config(ExperimentConfig):
    methods: tuple[str, ...] = METHODS
    seeds: int = 3
    hidden: int = 128
    steps: int = 501
    lr: float = 1e-3
    l2: float = 1e-3
    start_step: int = 100
    hgp_weight: float = 1e4          # spec: HGP h=128, pw = 1e4
    hutchinson_weights: tuple[float, ...] = (1e1, 1e2, 1e3)   # spec: its penalty lives on another scale: sweep
    hutchinson_probes: int = 20

    def validate(self) -> None:
        bad = set(self.methods) - set(METHODS)
        if bad or not self.methods:
            raise ValueError(f"methods must be a non-empty subset of {METHODS}, got {self.methods}")
        if self.seeds < 1 or self.steps < 1 or self.hidden < 1:
            raise ValueError("seeds, steps and hidden must be >= 1")
        if "hutchinson" in self.methods and (not self.hutchinson_weights
                                             or not all(w > 0 for w in self.hutchinson_weights)):
            raise ValueError(f"hutchinson_weights must be a non-empty tuple of positive weights, got "
                             f"{self.hutchinson_weights}")


def hutchinson_key(weight: float) -> str:
    """Metric prefix of the Hutchinson run at penalty ``weight`` (e.g. ``hutchinson_w100``)."""
    return f"hutchinson_w{weight:g}"


def colored_digits(seed: int, grayscale: bool = False):
    """Environments ``[(x, y) for e = 0.2, 0.1]`` and the test environment (e = 0.9); x is (n, 128)."""
    from sklearn.datasets import load_digits

    rng = np.random.default_rng(seed)
    d = load_digits()
    perm = rng.permutation(len(d.target))
    images, digits = d.images[perm] / 16.0, d.target[perm]

    def make(idx, e):
        label = (digits[idx] < 5).astype(np.float64)
        label = np.abs(label - (rng.random(len(idx)) < 0.25))             # 25 % label noise
        colour = np.abs(label - (rng.random(len(idx)) < e))               # colour agrees w.p. 1 - e
        x = np.stack([images[idx], images[idx]], axis=1)                  # (n, 2, 8, 8)
        if not grayscale:
            x[np.arange(len(idx)), (1 - colour).astype(int)] = 0.0        # zero the other channel
        return torch.tensor(x.reshape(len(idx), -1), dtype=torch.float32), torch.tensor(label, dtype=torch.float32)

    idx = np.arange(len(digits))
    return [make(idx[:600], 0.2), make(idx[600:1200], 0.1)], make(idx[1200:], 0.9)


def train_one(cfg: Config, method: str, seed: int, weight: float | None = None) -> tuple[float, float]:
    """Returns (train accuracy, test accuracy); ``weight`` is the penalty weight (default: ``cfg.hgp_weight``
    for HGP, the first of ``cfg.hutchinson_weights`` for Hutchinson)."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    envs, (xt, yt) = colored_digits(seed, grayscale=method == "oracle")
    body = nn.Sequential(nn.Linear(128, cfg.hidden), nn.ReLU(), nn.Linear(cfg.hidden, cfg.hidden), nn.ReLU())
    head = nn.Linear(cfg.hidden, 1)
    params = list(body.parameters()) + list(head.parameters())
    opt = torch.optim.Adam(params, lr=cfg.lr)

    def loss_fn(logits, y):
        return nn.functional.binary_cross_entropy_with_logits(logits[:, 0], y)

    for step in range(cfg.steps):
        feats = [body(x) for x, _ in envs]
        l2 = cfg.l2 * sum(p.pow(2).sum() for p in params)
        if method in ("erm", "oracle"):
            loss = torch.stack([loss_fn(head(f), y) for f, (_, y) in zip(feats, envs)]).mean() + l2
        else:
            terms = hessian_alignment_penalty(head, feats, [y for _, y in envs], loss_fn,
                                              method=method, num_probes=cfg.hutchinson_probes, generator=gen)
            if weight is None:
                weight = cfg.hgp_weight if method == "hgp" else cfg.hutchinson_weights[0]
            loss = alignment_objective(terms, step, weight=weight, start_step=cfg.start_step, regulariser=l2)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        x_train = torch.cat([x for x, _ in envs])
        y_train = torch.cat([y for _, y in envs])
        train_acc = float(((head(body(x_train))[:, 0] > 0).float() == y_train).float().mean())
        test_acc = float(((head(body(xt))[:, 0] > 0).float() == yt).float().mean())
    return train_acc, test_acc


def colored_digits_study(cfg: Config, ctx: RunContext) -> dict[str, float]:
    if cfg.smoke:
        cfg = dataclasses.replace(cfg, seeds=1, steps=30, start_step=10, hutchinson_probes=2)
    metrics: dict[str, float] = {}
    variants = [(hutchinson_key(w), m, w) if m == "hutchinson" else (m, m, None)
                for m in cfg.methods for w in (cfg.hutchinson_weights if m == "hutchinson" else (None,))]
    runs = [(v, s) for v in variants for s in range(cfg.seeds)]
    results: dict[str, list[tuple[float, float]]] = {key: [] for key, _, _ in variants}
    for (key, method, weight), s in ctx.progress(runs, desc="method x seed"):
        results[key].append(train_one(cfg, method, ctx.seed + s, weight))
    for method, pairs in results.items():
        train, test = np.array(pairs).T
        metrics |= {f"{method}/train_acc": float(train.mean()), f"{method}/test_acc": float(test.mean()),
                    f"{method}/test_acc_sd": float(test.std(ddof=1)) if len(test) > 1 else 0.0}
    if "erm" in results:
        for method in results:
            if method != "erm":
                metrics[f"{method}_minus_erm"] = metrics[f"{method}/test_acc"] - metrics["erm/test_acc"]
    _plot(ctx, results)
    return metrics


def _plot(ctx, results) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(1.2 * len(results) + 2, 3.5))
    for i, (method, pairs) in enumerate(results.items()):
        tests = [t for _, t in pairs]
        ax.scatter([i] * len(tests), tests, alpha=0.6)
        ax.plot([i - 0.2, i + 0.2], [np.mean(tests)] * 2, "k-")
    ax.axhline(0.75, ls=":", c="gray", label="noise ceiling")
    ax.set(xticks=range(len(results)), xticklabels=[k.replace("_w", "\nweight ") for k in results],
           ylabel="test accuracy (e = 0.9)", title="Colored Digits: spurious colour flips at test time")
    ax.legend()
    ctx.save_figure("colored_digits_test_accuracy", fig)


@experiment("dg/colored-digits", config=Config, tags=("curvature", "domain-generalisation"),
            summary="ERM vs HGP / Hutchinson Hessian alignment vs grayscale oracle on Colored Digits")
def run(cfg: Config, ctx: RunContext) -> dict[str, float]:
    return colored_digits_study(cfg, ctx)
