"""Sagun et al. (arXiv 1706.04454) at CPU scale, spec curvature.md B.1: bulk + outliers of the exact Hessian.

(1) Digits subsets with C classes (first 80 C samples), 64-12-C tanh MLP, float64: exact G (per-sample Jacobians
and the closed-form softmax output Hessian) and exact H (HVPs on the identity) at init and after 200 full-batch
SGD steps (lr 0.05, momentum 0.9, wd 1e-3). Outlier count = index of the largest log-gap of G's spectrum over the
first 2C+2 eigenvalues (spec: C-1, C accepted); share of tr(G) in the top C-1; lambda_{C-1}/lambda_C.
(2) Width sweep (600 digits, 64-h-10, 300 steps): the bulk piles up at 0 and R adds small negative eigenvalues.
(3) Large batch -> small batch: GD to w_LB, then SGD(batch 16) to w_SB; loss on the line (1-a) w_LB + a w_SB.
Everything is dense and exact (P <= ~1300, ``to_dense`` of the sciml.curvature operators, checked against
torch.func.hessian / per-sample Jacobians in tests/curvature_papers): no estimator error enters the counts.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from experiments.curvature_common import (accuracy, digits, digits_classes, flat_params, functional, mlp, num_params,
                                          single_thread, train_full_batch)
from sciml.curvature import GGNOperator, HessianOperator, largest_log_gap
from sciml.runner import ExperimentConfig, RunContext, experiment

CE = nn.CrossEntropyLoss()


def exact_spectra(model: nn.Module, X: torch.Tensor, y: torch.Tensor, hessian: bool = True) -> tuple[torch.Tensor, ...]:
    """Ascending eigenvalues of the dense G (and H) of the mean cross-entropy (sciml.curvature operators)."""
    G = torch.linalg.eigvalsh(GGNOperator(model, CE, (X, y)).to_dense())
    if not hessian:
        return (G,)
    return G, torch.linalg.eigvalsh(HessianOperator(model, CE, (X, y)).to_dense())


@dataclasses.dataclass(frozen=True)
class Config(ExperimentConfig):
    classes: tuple[int, ...] = (2, 3, 4, 5, 6, 7, 8)
    seeds: tuple[int, ...] = (0, 1)
    per_class: int = 80
    hidden: int = 12
    steps: int = 200
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 1e-3
    hessian: bool = True                  # also the exact H (G alone decides the outlier count)
    widths: tuple[int, ...] = (8, 16)
    width_samples: int = 600
    width_steps: int = 300
    lbsb: bool = True
    lb_hidden: int = 64
    lb_steps: int = 1500
    lb_lr: float = 0.5
    sb_epochs: int = 20
    sb_batch: int = 16
    sb_lr: float = 0.1
    line_points: int = 41
    threads: int = 1

    def validate(self) -> None:
        if not self.classes or any(not 2 <= c <= 10 for c in self.classes):
            raise ValueError(f"classes must be in [2, 10], got {self.classes}")
        if not self.seeds or min(self.per_class, self.hidden, self.steps) < 1:
            raise ValueError("need seeds and positive per_class, hidden, steps")
        if self.line_points < 3:
            raise ValueError("line_points must be >= 3")


SMOKE = dict(classes=(2, 4), seeds=(0,), steps=60, widths=(8,), width_samples=200, width_steps=60,
             lb_hidden=16, lb_steps=150, sb_epochs=1, line_points=11)


def spectrum_stats(G_eigs: torch.Tensor, C: int) -> dict[str, float]:
    """Sagun outlier statistics of a GGN spectrum (ascending eigenvalues) for a C-class problem."""
    lam = G_eigs.flip(0)                                                 # descending
    k = C - 1
    return {"gap": float(largest_log_gap(G_eigs, 2 * C + 2)),
            "share_top": float(lam[:k].sum() / lam.clamp_min(0).sum()),
            "ratio": float(lam[k - 1] / lam[k])}


def class_spectra(cfg: Config, C: int, seed: int) -> dict[str, dict]:
    """Exact G (and H) spectra at init and after training for one class count and seed."""
    X, y = digits_classes(C, cfg.per_class)
    model = mlp((64, cfg.hidden, C), seed)
    out = {}
    for phase in ("init", "trained"):
        if phase == "trained":
            train_full_batch(model, X, y, cfg.steps, cfg.lr, cfg.momentum, cfg.weight_decay)
        spectra = exact_spectra(model, X, y, cfg.hessian)
        g = spectra[0]
        rec = {"G": g, **spectrum_stats(g, C), "acc": accuracy(model, X, y)}
        if cfg.hessian:
            rec["H"] = spectra[1]
            rec["gap_H"] = float(largest_log_gap(rec["H"], 2 * C + 2))
        out[phase] = rec
    return out


def width_sweep(cfg: Config) -> dict[str, float]:
    """Bulk statistics of the exact H for 64-h-10 nets on the first ``width_samples`` digits."""
    X, y = digits()
    X, y = X[: cfg.width_samples], y[: cfg.width_samples]
    m = {}
    for h in cfg.widths:
        model = mlp((64, h, 10), 0)
        train_full_batch(model, X, y, cfg.width_steps, cfg.lr, cfg.momentum, cfg.weight_decay)
        G, H = exact_spectra(model, X, y)
        m |= {f"width{h}_P": float(num_params(model)),
              f"width{h}_frac_abs_below_1e-4": float((H.abs() < 1e-4).to(torch.float64).mean()),
              f"width{h}_num_negative": float((H < 0).sum()),
              f"width{h}_median_abs": float(H.abs().median()),
              f"width{h}_top_H_over_G": float(H[-1] / G[-1])}
    return m


def large_to_small_batch(cfg: Config, gen: torch.Generator) -> tuple[dict[str, float], torch.Tensor, torch.Tensor]:
    """Train w_LB (full-batch GD), continue with small-batch SGD to w_SB, evaluate the loss on the line."""
    X, y = digits()
    model = mlp((64, cfg.lb_hidden, 10), 0)
    train_full_batch(model, X, y, cfg.lb_steps, cfg.lb_lr, momentum=0.0)
    w_lb = flat_params(model)
    opt = torch.optim.SGD(model.parameters(), lr=cfg.sb_lr)
    for _ in range(cfg.sb_epochs):
        for idx in torch.randperm(len(X), generator=gen).split(cfg.sb_batch):
            loss = nn.functional.cross_entropy(model(X[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    w_sb = flat_params(model)
    f = functional(model)
    alphas = torch.linspace(-0.5, 1.5, cfg.line_points, dtype=torch.float64)
    with torch.no_grad():
        line = torch.stack([nn.functional.cross_entropy(f((1 - a) * w_lb + a * w_sb, X), y) for a in alphas])
    inside = (alphas >= 0) & (alphas <= 1)
    ends = torch.stack([line[alphas.sub(0).abs().argmin()], line[alphas.sub(1).abs().argmin()]])
    m = {"lb_loss": float(ends[0]), "sb_loss": float(ends[1]), "lb_sb_distance": float((w_sb - w_lb).norm()),
         "line_max_inside": float(line[inside].max()), "line_loss_at_-0.5": float(line[0]),
         "line_loss_at_1.5": float(line[-1]),
         "barrier_ratio": float(line[inside].max() / ends.max())}
    return m, alphas, line


def plot_spectra(ctx: RunContext, spectra: dict[int, dict], seed: int) -> None:
    import matplotlib.pyplot as plt

    Cs = sorted(spectra)
    fig, axes = plt.subplots(1, len(Cs), figsize=(3.2 * len(Cs), 3.2), squeeze=False)
    for ax, C in zip(axes[0], Cs):
        for phase, style in (("init", "o"), ("trained", "s")):
            lam = spectra[C][phase]["G"].flip(0)[: 2 * C + 4]
            ax.semilogy(range(1, len(lam) + 1), lam.clamp_min(1e-12), style, ms=4, label=f"G {phase}", alpha=0.8)
            gap = int(spectra[C][phase]["gap"])
            ax.axvline(gap + 0.5, color="C0" if phase == "init" else "C1", ls="--", lw=0.8)
        ax.set_title(f"C = {C} (gap: dashed)")
        ax.set_xlabel("index i (descending)")
    axes[0][0].set_ylabel("eigenvalue of G")
    axes[0][0].legend(fontsize=7)
    ctx.save_figure(f"sorted_ggn_spectra_seed{seed}", fig)


def plot_density(ctx: RunContext, rec: dict, C: int) -> None:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.4))
    for phase in ("init", "trained"):
        H = rec[phase]["H"]
        edges = torch.linspace(float(H.min()), float(H.max()), 120, dtype=torch.float64)
        hist = torch.histogram(H, bins=edges, density=True).hist
        ax.semilogy((edges[1:] + edges[:-1]) / 2, hist.clamp_min(1e-6), drawstyle="steps-mid", label=phase)
    ax.set_xlabel("eigenvalue of H (exact)")
    ax.set_ylabel("density (log)")
    ax.set_title(f"digits C={C}: bulk at 0 + outliers")
    ax.legend()
    ctx.save_figure(f"hessian_density_C{C}", fig)


@experiment("curvature/sagun-spectrum", config=Config, tags=("curvature", "paper:1706.04454"),
            summary="Sagun et al.: exact H/G spectra on digits subsets, C-1 outliers, width sweep, LB->SB line")
def run(cfg: Config, ctx: RunContext) -> dict[str, float]:
    if cfg.smoke:
        cfg = dataclasses.replace(cfg, **SMOKE)
    metrics: dict[str, float] = {}
    with single_thread(cfg.threads):
        by_seed: dict[int, dict[int, dict]] = {}
        for seed in cfg.seeds:
            by_seed[seed] = {}
            for C in ctx.progress(cfg.classes, desc=f"classes seed {seed}"):
                rec = class_spectra(cfg, C, seed)
                by_seed[seed][C] = rec
                for phase, r in rec.items():
                    for key in ("gap", "share_top", "ratio", "acc") + (("gap_H",) if cfg.hessian else ()):
                        metrics[f"C{C}_s{seed}_{phase}_{key}"] = r[key]
        for phase in ("init", "trained"):
            recs = [(C, by_seed[s][C][phase]) for s in cfg.seeds for C in cfg.classes]
            metrics[f"{phase}_frac_gap_eq_Cm1"] = sum(r["gap"] == C - 1 for C, r in recs) / len(recs)
            metrics[f"{phase}_frac_gap_in_Cm1_C"] = sum(r["gap"] in (C - 1, C) for C, r in recs) / len(recs)
            metrics[f"{phase}_frac_gap_within2_of_Cm1"] = sum(abs(r["gap"] - C + 1) <= 2 for C, r in recs) / len(recs)
            shares = torch.tensor([r["share_top"] for _, r in recs], dtype=torch.float64)
            metrics[f"{phase}_share_top_Cm1_mean"] = float(shares.mean())
            metrics[f"{phase}_share_top_Cm1_min"] = float(shares.min())
            metrics[f"{phase}_share_top_Cm1_max"] = float(shares.max())
            metrics[f"{phase}_min_acc"] = min(r["acc"] for _, r in recs)
            metrics[f"{phase}_ratio_min"] = min(r["ratio"] for _, r in recs)
            metrics[f"{phase}_ratio_max"] = max(r["ratio"] for _, r in recs)
        for seed in cfg.seeds:
            plot_spectra(ctx, by_seed[seed], seed)
        if cfg.hessian:
            C = max(cfg.classes)
            plot_density(ctx, by_seed[cfg.seeds[0]][C], C)
        if cfg.widths:
            metrics |= width_sweep(cfg)
        if cfg.lbsb:
            lm, alphas, line = large_to_small_batch(cfg, ctx.make_generator(11, "cpu"))
            metrics |= lm
            ctx.save_arrays("lb_sb_line", alpha=alphas, loss=line)
            import matplotlib.pyplot as plt

            fig, ax = plt.subplots(figsize=(5, 3.4))
            ax.plot(alphas, line, "o-", ms=3)
            ax.axvline(0, color="k", lw=0.6)
            ax.axvline(1, color="k", lw=0.6)
            ax.set_xlabel("alpha  (0 = w_LB, 1 = w_SB)")
            ax.set_ylabel("training loss")
            ax.set_title("large-batch -> small-batch line: no barrier")
            ctx.save_figure("lb_sb_line", fig)
    ctx.log(f"gap==C-1 init {metrics['init_frac_gap_eq_Cm1']:.2f}, trained {metrics['trained_frac_gap_eq_Cm1']:.2f}")
    return metrics
