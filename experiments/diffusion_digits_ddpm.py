"""Learned-score benchmark: a small DDPM on scikit-learn's 8x8 digits, samplers ± LML, FD in PCA-20 space.

The MLP eps-network (spec diffusion_ot.md §1.7b: width 256, 4 residual blocks, ~0.38 M parameters) is trained with
the DDPM loss on the 1797 digits scaled to [-1, 1] (linear beta, T = 1000, Adam 1e-3, batch 256, EMA 0.999).

Checkpoint cache: the trained EMA weights are saved to ``<results>/cache/diffusion/digits_v2_w<width>_s<steps>_seed
<seed>.pt`` (``<results>`` is the ``results`` folder above the run folder, else the run folder's parent) and loaded
from there on later runs with the same width, steps and seed; delete the file to retrain. Nothing is committed.

Metric: Fréchet distance in the PCA-20 space of the real digits between generated and real samples, next to the
real-vs-real floor (two halves of the data, 899 vs 898, which is *larger* than a 1797-vs-1797 value because of
the smaller samples), and the KL divergence of a classifier's predicted-class histogram from
uniform (LDA classifier; the spec used logistic regression).
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import torch

from experiments.diffusion_gmm_benchmark import corrector_from_name, is_tuned_corrector, with_one_thread
from sciml.core import check_subset
from sciml.diffusion import (
    EpsMLP,
    LangevinCorrection,
    LMCorrection,
    VPSchedule,
    frechet_distance,
    sample,
    train_eps_model,
)
from sciml.runner import ExperimentConfig, RunContext, experiment

# <sampler>[+<correction>]; all at equal total NFE (correctors cost one evaluation each).
VARIANTS = ("ddim", "dpmpp2m", "heun", "ddim+code", "ddim+code_fp32", "ddim+code_k0.3", "dpmpp2m+code_k0.3",
            "ddim+langevin", "ddim+lm_r2")


@dataclasses.dataclass(frozen=True)
class Config(ExperimentConfig):
    train_steps: int = 6000        # spec §1.7b: 6,000 Adam steps
    width: int = 256               # spec: 256 (~0.38 M parameters)
    nfes: tuple[int, ...] = (5, 10, 20, 50)
    variants: tuple[str, ...] = VARIANTS
    code_lam: float = 8e-4         # repo README, CIFAR-10 DPM-LM at NFE 5
    lm_lam: float = 1.0            # LM-Langevin lambda_0, [R]
    snr: float = 0.16              # Song et al. 2021

    noise_seeds: int = 3           # initial-noise seeds per (variant, NFE): one seed moved DDIM NFE 10 by 0.2

    def validate(self) -> None:
        if self.train_steps < 1 or self.width < 8 or self.noise_seeds < 1:
            raise ValueError(f"need train_steps >= 1, width >= 8, noise_seeds >= 1, got {self.train_steps}, "
                             f"{self.width}, {self.noise_seeds}")
        check_subset("variants", tuple(v for v in self.variants if not is_tuned_corrector(v)), VARIANTS)
        if not self.nfes or min(self.nfes) < 3:
            raise ValueError(f"nfes must be ints >= 3, got {self.nfes}")


def cache_dir(ctx: RunContext) -> Path:
    """``<results>/cache/diffusion`` for the ``results`` folder above the run folder (else beside the run)."""
    root = next((p for p in ctx.out_dir.resolve().parents if p.name == "results"), ctx.out_dir.resolve().parent)
    path = root / "cache" / "diffusion"
    path.mkdir(parents=True, exist_ok=True)
    return path


def load_digits_tensor() -> tuple[torch.Tensor, np.ndarray]:
    """The 1797 digits scaled from 0..16 to [-1, 1] (float32, (1797, 64)) and their labels."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    return torch.from_numpy(digits.data.astype(np.float32) / 8.0 - 1.0), digits.target


def trained_model(ctx: RunContext, data: torch.Tensor, steps: int, width: int) -> tuple[EpsMLP, dict]:
    """The cached EMA model, or a freshly trained one (then cached)."""
    path = cache_dir(ctx) / f"digits_v2_w{width}_s{steps}_seed{ctx.seed}.pt"       # v2: EMA with warm-up
    model = EpsMLP(64, width=width, n_blocks=4, generator=ctx.make_generator(11, "cpu"))
    if path.exists():
        model.load_state_dict(torch.load(path, map_location="cpu"))
        ctx.log(f"  loaded the cached DDPM from {path}")
        return model.eval(), {"train_cached": 1.0, "train_final_loss": math.nan}
    import time

    start = time.perf_counter()
    result = train_eps_model(model, data, VPSchedule.ddpm_linear(), steps=steps,
                             generator=ctx.make_generator(12, "cpu"))
    seconds = time.perf_counter() - start
    torch.save(result.model.state_dict(), path)
    ctx.log(f"  trained {steps} steps in {seconds:.1f}s (final loss {float(result.losses[-200:].mean()):.4f}); "
            f"cached at {path}")
    return result.model.eval(), {"train_cached": 0.0, "train_seconds": seconds,
                                 "train_final_loss": float(result.losses[-200:].mean())}


class PCAFrechet:
    """FD in the PCA-k space of the real data (PCA by SVD of the centred real digits)."""

    def __init__(self, real: torch.Tensor, k: int = 20) -> None:
        real = real.double()
        self.mean = real.mean(0)
        _, _, vt = torch.linalg.svd(real - self.mean, full_matrices=False)
        self.basis = vt[:k].T

    def project(self, x: torch.Tensor) -> torch.Tensor:
        return (x.double() - self.mean) @ self.basis

    def __call__(self, a: torch.Tensor, b: torch.Tensor) -> float:
        return float(frechet_distance(self.project(a), self.project(b)))


def class_kl(classifier, x: torch.Tensor) -> float:
    """KL(predicted class histogram || uniform) for a classifier fitted on the real digits (pixel scale 0..16)."""
    pred = classifier.predict(((x.double().clamp(-1, 1) + 1.0) * 8.0).numpy())
    hist = np.bincount(pred, minlength=10) / len(pred)
    nz = hist > 0
    return float(np.sum(hist[nz] * np.log(hist[nz] * 10)))


def variant_call(name: str, cfg) -> dict:
    predictor, _, suffix = name.partition("+")
    base = {"ddim": {"sampler": "ddim"}, "dpmpp2m": {"sampler": "dpm_solver++", "order": 2},
            "heun": {"sampler": "heun"}}[predictor]
    if not suffix:
        return base
    if is_tuned_corrector(name):
        return base | {"correction": corrector_from_name(suffix, cfg)}
    corr = {"code": LMCorrection("code", lam=cfg.code_lam),
            "code_fp32": LMCorrection("code", lam=cfg.code_lam, compute_dtype="input"),
            "code_k0.3": LMCorrection("code", lam=cfg.code_lam, kappa=0.3),
            "langevin": LangevinCorrection(snr=cfg.snr),
            "lm_r2": LMCorrection("lm_langevin", lam=cfg.lm_lam, rank=2, snr=cfg.snr)}[suffix]
    return base | {"correction": corr}


def digits_grid(cfg, ctx: RunContext, train_steps: int, nfes, variants,
                seeds: int = 1) -> tuple[dict[str, float], dict, dict]:
    """Train (or load) the DDPM and evaluate every (variant, NFE) over ``seeds`` initial-noise seeds. Returns flat
    metrics (means over seeds), example samples and ``per_seed[(variant, nfe)] -> list of FD``."""
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

    data, labels = load_digits_tensor()
    model, info = trained_model(ctx, data, train_steps, cfg.width)
    fd = PCAFrechet(data)
    perm = torch.randperm(data.shape[0], generator=ctx.make_generator(13, "cpu"))
    half_a, half_b = data[perm[: data.shape[0] // 2]], data[perm[data.shape[0] // 2:]]
    # LDA instead of the spec's logistic regression: ~0.1 s instead of ~15 s on the shared CPU, similar accuracy
    classifier = LinearDiscriminantAnalysis().fit(((data.double() + 1) * 8).numpy(), labels)
    out = dict(info) | {"floor/fd_pca20_halves": fd(half_a, half_b), "floor/class_kl_real": class_kl(classifier, data)}
    schedule = VPSchedule.ddpm_linear()
    examples: dict = {}
    per_seed: dict = {}
    n = data.shape[0]
    for nfe in ctx.progress(nfes, desc="NFE"):
        for seed in range(seeds):
            x_init = torch.randn(n, 64, generator=ctx.make_generator(14 + nfe + 1000 * seed, "cpu"))
            base = None
            for variant in variants:
                try:
                    with torch.no_grad():
                        res = sample(model, schedule, (n, 64), nfe=nfe, x_init=x_init, dtype=torch.float32,
                                     generator=ctx.make_generator(15 + nfe + 1000 * seed, "cpu"),
                                     **variant_call(variant, cfg))
                    x, used = res.samples, res.nfe
                except ValueError as err:
                    if "NaN" not in str(err):
                        raise
                    x, used = torch.full_like(x_init, math.nan), nfe
                finite = bool(torch.isfinite(x).all())
                per_seed.setdefault((variant, nfe), []).append(fd(x, data) if finite else math.inf)
                if seed == 0:
                    out[f"{variant}/nfe{nfe}/class_kl"] = class_kl(classifier, x) if finite else 1e300
                    out[f"{variant}/nfe{nfe}/nfe_used"] = float(used)
                    examples[(variant, nfe)] = x[:16]
                if variant == "ddim":
                    base = x
                elif base is not None and variant.startswith("ddim+code") and finite:
                    key = f"{variant}/nfe{nfe}/max_abs_change_vs_ddim"
                    out[key] = max(out.get(key, 0.0), float((x - base).abs().max()))
        for variant in variants:
            vals = np.array(per_seed[(variant, nfe)])
            out[f"{variant}/nfe{nfe}/fd_pca20"] = float(vals.mean()) if np.isfinite(vals).all() else 1e300
        ctx.log(f"  NFE {nfe}: " + ", ".join(f"{v}={out[f'{v}/nfe{nfe}/fd_pca20']:.3g}" for v in variants))
    return out, examples, per_seed


def plot_digits(ctx: RunContext, examples: dict, variants, nfe: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(variants), 8, figsize=(8, 1.1 * len(variants)), squeeze=False)
    for row, variant in enumerate(variants):
        imgs = examples[(variant, nfe)]
        for col in range(8):
            ax = axes[row][col]
            ax.imshow(imgs[col].reshape(8, 8).clamp(-1, 1).numpy(), cmap="gray_r", vmin=-1, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
        axes[row][0].set_ylabel(variant, fontsize=6, rotation=0, ha="right")
    fig.suptitle(f"digits DDPM samples at NFE {nfe}")
    ctx.save_figure(f"digits_samples_nfe{nfe}", fig)


@experiment("diffusion/digits-ddpm", config=Config, tags=("diffusion",),
            summary="small DDPM on sklearn digits: samplers ± LML at equal NFE, FD in PCA-20 space vs real floor")
@with_one_thread
def run(cfg: Config, ctx: RunContext) -> dict[str, float]:
    steps, nfes, variants = cfg.train_steps, cfg.nfes, cfg.variants
    if cfg.smoke:
        steps, nfes, variants = min(steps, 60), nfes[:1], variants[:4]
    metrics, examples, _ = digits_grid(cfg, ctx, steps, nfes, variants, 1 if cfg.smoke else cfg.noise_seeds)
    plot_digits(ctx, examples, variants, nfes[min(1, len(nfes) - 1)])
    return {k: v for k, v in metrics.items() if math.isfinite(v)}
