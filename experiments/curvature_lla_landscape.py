"""Gabdullin (arXiv 2412.10146, library LLA) at CPU scale, spec curvature.md B.5: Hessian criteria re and Kh0.5.

(1) digits[0:800], 64-16-10 tanh MLP (P = 1210), float64, "init" (seed 0) and "trained" (300 full-batch SGD steps,
lr 0.05, momentum 0.9). Exact H (dense, sciml.curvature.HessianOperator.to_dense) gives lambda_max, lambda_min, the
exact re and the negative-eigenvalue fraction; SLQ (Rademacher starts) gives LLA's criteria
re = |min theta / max theta| and Kh0.5 = sum_{theta<0} (|theta| tau)^0.5 / sum_{theta>0} (theta tau)^0.5 per run,
averaged over runs. Kh0.5 is not a spectral functional: it depends on the Lanczos length m, the number of runs
n_v and the reorthogonalisation (full / LLA's partial last-10 / none), so each is reported.
(2) Distribution shift: the trained model's Hessian on five evaluation sets (train, clean test digits[800:1600],
test + N(0, 0.3^2) and N(0, 0.6^2) pixel noise, transposed images); Spearman(Kh0.5, accuracy) (spec <= -0.8).
(3) Filter normalisation under BatchNorm rescaling: Conv(1->8,3)-BN-ReLU-Linear on 256 digits, train-mode BN;
multiplying the conv weight and bias by c leaves the function unchanged (up to BN's eps) and must leave the
filter-normalised plane unchanged; the un-normalised plane changes.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from experiments.curvature_common import (Quadrature, accuracy, digits, hessian_criteria, mlp, single_thread, slq,
                                          spearman, train_full_batch)
from sciml.curvature import HessianOperator, loss_landscape, plot_landscape, spectral_density
from sciml.runner import ExperimentConfig, RunContext, experiment

CE = nn.CrossEntropyLoss()


@dataclasses.dataclass(frozen=True)
class Config(ExperimentConfig):
    n_train: int = 800
    hidden: int = 16
    steps: int = 300
    lr: float = 0.05
    momentum: float = 0.9
    n_v: int = 5                        # SLQ runs for the init/trained table
    m_values: tuple[int, ...] = (30, 100)
    shift_m: int = 100
    shift_n_v: int = 3
    noise_levels: tuple[float, ...] = (0.3, 0.6)
    bn_scale: float = 10.0
    bn_eps: float = 1e-12
    plane_steps: int = 5
    plane_samples: int = 256
    threads: int = 1

    def validate(self) -> None:
        if not 1 <= self.n_train <= 1797 - 1 or min(self.n_v, self.shift_n_v, self.shift_m) < 1:
            raise ValueError("need 1 <= n_train < 1797 and positive n_v, shift_n_v, shift_m")
        if not self.m_values or min(self.m_values) < 2:
            raise ValueError("m_values must be >= 2")
        if self.plane_steps < 2 or self.bn_scale <= 0:
            raise ValueError("plane_steps must be >= 2 and bn_scale > 0")


SMOKE = dict(n_train=200, steps=100, n_v=2, m_values=(30,), shift_m=30, shift_n_v=2, noise_levels=(0.6,), plane_samples=64)


def exact_stats(H: torch.Tensor) -> dict[str, float]:
    """Statistics of the exact spectrum, incl. the 'uniform-weight' Kh0.5 analogue (every eigenvalue weight 1/P)."""
    lam = torch.linalg.eigvalsh(H)
    _, kh_uniform = hessian_criteria(lam[None], torch.full_like(lam, 1 / lam.numel())[None])
    return {"lambda_max": float(lam[-1]), "lambda_min": float(lam[0]), "re_exact": float((lam[0] / lam[-1]).abs()),
            "neg_frac": float((lam < 0).to(torch.float64).mean()), "kh05_uniform_weights": kh_uniform}


def ghost_copies(q: Quadrature, lam_max: float, rtol: float = 1e-6) -> int:
    """Largest number (over runs) of Ritz values sitting on lambda_max: 1 with full reorthogonalisation."""
    return int((((q.nodes - lam_max).abs() <= rtol * abs(lam_max)).sum(1)).max())


def criteria_table(op: HessianOperator, H_stats: dict[str, float], cfg: Config, gen_seed: int) -> dict[str, float]:
    """re / Kh0.5 for every m with full reorthogonalisation (sciml.curvature.spectral_density), and at the largest m
    with LLA's partial (last 10 vectors) and with no reorthogonalisation (same probes: same generator seed)."""
    out = {}
    for m in cfg.m_values:
        d = spectral_density(op, m, cfg.n_v, torch.Generator().manual_seed(gen_seed), num_bins=2)
        re, kh = hessian_criteria(d.nodes, d.weights)
        out |= {f"full_m{m}_re": re, f"full_m{m}_kh05": kh,
                f"full_m{m}_ghosts": float(ghost_copies(Quadrature(d.nodes, d.weights, m, "full"), H_stats["lambda_max"]))}
    m = max(cfg.m_values)
    for reorth in ("partial", "none"):
        q = slq(op.matmat, op.shape[0], m, cfg.n_v, torch.Generator().manual_seed(gen_seed), reorth=reorth)
        re, kh = hessian_criteria(q.nodes, q.weights)
        out |= {f"{reorth}_m{m}_re": re, f"{reorth}_m{m}_kh05": kh,
                f"{reorth}_m{m}_ghosts": float(ghost_copies(q, H_stats["lambda_max"]))}
    return out


def shifted_sets(X: torch.Tensor, y: torch.Tensor, n: int, noise: tuple[float, ...],
                 gen: torch.Generator) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Evaluation sets: train = [0:n], test = [n:2n] clean, + Gaussian pixel noise, and 8x8-transposed images."""
    Xt, yt = X[n:2 * n], y[n:2 * n]
    sets = {"train": (X[:n], y[:n]), "test": (Xt, yt)}
    for s in noise:
        sets[f"test_noise{s:g}"] = (Xt + s * torch.randn(Xt.shape, generator=gen, dtype=Xt.dtype), yt)
    sets["test_transposed"] = (Xt.reshape(-1, 8, 8).mT.reshape(-1, 64), yt)
    return sets


class SmallBNNet(nn.Sequential):
    """Conv(1->8, 3x3) -> BatchNorm2d -> ReLU -> Linear(8*6*6 -> 10) on 8x8 digits (input (N, 64))."""

    def __init__(self, eps: float, seed: int) -> None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            super().__init__(nn.Unflatten(1, (1, 8, 8)), nn.Conv2d(1, 8, 3, dtype=torch.float64),
                             nn.BatchNorm2d(8, eps=eps, dtype=torch.float64), nn.ReLU(), nn.Flatten(),
                             nn.Linear(8 * 6 * 6, 10, dtype=torch.float64))


def bn_invariance(cfg: Config, eps: float) -> dict[str, float]:
    """Max |plane(c-scaled conv) - plane(original)| for filter-normalised and un-normalised planes (same seed)."""
    X, y = digits()
    X, y = X[: cfg.plane_samples], y[: cfg.plane_samples]
    out = {}
    for norm in ("filter", "none"):
        planes = []
        for c in (1.0, cfg.bn_scale):
            net = SmallBNNet(eps, seed=0)
            with torch.no_grad():
                net[1].weight.mul_(c)
                net[1].bias.mul_(c)
            land = loss_landscape(net, CE, (X, y), directions=2, normalization=norm, steps=cfg.plane_steps,
                                  span=(-0.5, 0.5), generator=torch.Generator().manual_seed(7), mode="train")
            planes.append(land.losses)
        out[f"bn_eps{eps:g}_{norm}_max_abs_diff"] = float((planes[1] - planes[0]).abs().max())
        out[f"bn_eps{eps:g}_{norm}_plane_max"] = float(torch.maximum(planes[0], planes[1]).max())
    return out


@experiment("curvature/lla-landscape", config=Config, tags=("curvature", "paper:2412.10146"),
            summary="LLA (Gabdullin): Hessian criteria re/Kh0.5 at init vs trained, under distribution shift; "
                    "filter-normalised planes invariant to BatchNorm rescaling")
def run(cfg: Config, ctx: RunContext) -> dict[str, float]:
    if cfg.smoke:
        cfg = dataclasses.replace(cfg, **SMOKE)
    metrics: dict[str, float] = {}
    with single_thread(cfg.threads):
        X, y = digits()
        Xtr, ytr = X[: cfg.n_train], y[: cfg.n_train]
        model = mlp((64, cfg.hidden, 10), 0)
        densities = {}
        for phase in ("init", "trained"):
            if phase == "trained":
                train_full_batch(model, Xtr, ytr, cfg.steps, cfg.lr, cfg.momentum)
            op = HessianOperator(model, CE, (Xtr, ytr))
            stats = exact_stats(op.to_dense())
            metrics |= {f"{phase}_{k}": v for k, v in stats.items()}
            metrics |= {f"{phase}_{k}": v for k, v in criteria_table(op, stats, cfg, ctx.seed + 100).items()}
            densities[phase] = spectral_density(op, max(cfg.m_values), cfg.n_v, ctx.make_generator(200, "cpu"))
        m = max(cfg.m_values)
        metrics["kh05_drop_factor"] = metrics[f"init_full_m{m}_kh05"] / metrics[f"trained_full_m{m}_kh05"]
        metrics["re_drop_factor"] = metrics[f"init_full_m{m}_re"] / metrics[f"trained_full_m{m}_re"]

        sets = shifted_sets(X, y, cfg.n_train, cfg.noise_levels, ctx.make_generator(300, "cpu"))
        accs, khs, res = [], [], []
        for name, (Xe, ye) in sets.items():
            op = HessianOperator(model, CE, (Xe, ye))
            stats = exact_stats(op.to_dense())
            d = spectral_density(op, cfg.shift_m, cfg.shift_n_v, torch.Generator().manual_seed(ctx.seed + 400), num_bins=2)
            re, kh = hessian_criteria(d.nodes, d.weights)
            acc = accuracy(model, Xe, ye)
            metrics |= {f"shift_{name}_acc": acc, f"shift_{name}_loss": op.loss(),
                        f"shift_{name}_lambda_max": stats["lambda_max"], f"shift_{name}_lambda_min": stats["lambda_min"],
                        f"shift_{name}_re": re, f"shift_{name}_kh05": kh}
            accs.append(acc), khs.append(kh), res.append(re)
        acc_t = torch.tensor(accs, dtype=torch.float64)
        metrics["spearman_kh05_acc"] = spearman(torch.tensor(khs, dtype=torch.float64), acc_t)
        metrics["spearman_re_acc"] = spearman(torch.tensor(res, dtype=torch.float64), acc_t)
        # trivial baseline for the shift proxy: the loss itself (needs labels, unlike the curvature criteria)
        metrics["spearman_loss_acc"] = spearman(torch.tensor([metrics[f"shift_{n}_loss"] for n in sets],
                                                             dtype=torch.float64), acc_t)

        metrics |= bn_invariance(cfg, cfg.bn_eps)
        metrics |= bn_invariance(cfg, 1e-5)
        _plots(ctx, cfg, model, Xtr, ytr, densities)
    return metrics


def _plots(ctx: RunContext, cfg: Config, model: nn.Module, X: torch.Tensor, y: torch.Tensor, densities: dict) -> None:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for phase, d in densities.items():
        ax.semilogy(d.grid, d.density.clamp_min(1e-8), label=phase)
    ax.set_xlabel("eigenvalue")
    ax.set_ylabel("density (log)")
    ax.set_title(f"HESD by SLQ (m={max(cfg.m_values)}, n_v={cfg.n_v}, full reorth.)")
    ax.legend()
    ctx.save_figure("hesd_init_vs_trained", fig)
    land = loss_landscape(model, CE, (X, y), directions=2, normalization="filter", steps=9 if cfg.smoke else 21,
                          generator=ctx.make_generator(500, "cpu"))
    ctx.save_figure("landscape_filter_normalised", plot_landscape(land))
    land_h = loss_landscape(model, CE, (X, y), directions="hessian", normalization="filter",
                            steps=9 if cfg.smoke else 21, generator=ctx.make_generator(501, "cpu"))
    ctx.save_figure("landscape_hessian_axes", plot_landscape(land_h))
