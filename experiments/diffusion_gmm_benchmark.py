"""Exact-score Gaussian-mixture benchmark: samplers with and without LML at equal total NFE, 5 seeds.

Problems (spec diffusion_ot.md §1.7a): 2-D 8-mode and 16-D 5-mode mixtures, continuous VP schedule
(beta in [0.1, 20]), steps uniform in log-SNR from t = 1 to t = 1e-3. With the exact score, the only error is the
discretisation (plus the corrector's own bias), so every curve should approach the sampling-noise floor
(SW2/MMD²/TV between two independent sets of exact samples of the same size).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import re

import numpy as np
import torch

from sciml.core import check_subset
from sciml.diffusion import (
    ExactHessianCorrection,
    LangevinCorrection,
    LMCorrection,
    VPSchedule,
    gmm_2d_8mode,
    gmm_16d_5mode,
    mode_weight_tv,
    rbf_mmd2,
    sample,
    sliced_w2,
)
from sciml.runner import ExperimentConfig, RunContext, experiment

# <predictor>[+<correction>]; dpmpp2m = DPM-Solver++ multistep order 2. Every variant gets the same total NFE.
VARIANTS = ("ddim", "dpmpp2m", "ddim+code", "ddim+code_formula64", "ddim+code_k0.3", "dpmpp2m+code_k0.3",
            "ddim+langevin", "ddim+lm_r1", "ddim+lm_r2", "ddim+exact")
# also accepted: "<predictor>+langevin_snr<x>", "+lm_r<r>_snr<x>", "+langevin_ps" / "+lm_r2_ps" (per-sample steps)
PROBLEMS = ("2d8", "16d5")


@dataclasses.dataclass(frozen=True)
class Config(ExperimentConfig):
    problems: tuple[str, ...] = PROBLEMS
    nfes: tuple[int, ...] = (5, 10, 20, 50)          # spec §1.7a
    seeds: int = 5                                   # spec: average over >= 5 seeds
    n_samples: int = 4000                            # spec: N = 4000 (floor SW2 ~0.17 in 2-D)
    mmd_subsample: int = 1000                        # MMD² on the first 1000 points (O(N²) memory and time)
    variants: tuple[str, ...] = VARIANTS
    code_lam: float = 8e-4                           # repo README, CIFAR-10 NFE 5
    lm_lam: float = 1.0                              # LM-Langevin lambda_0 (lambda_t = lambda_0 / sigma_t²), [R]
    snr: float = 0.16                                # Song et al. 2021, CIFAR-10

    def validate(self) -> None:
        check_subset("problems", self.problems, PROBLEMS)
        check_subset("variants", tuple(v for v in self.variants if not is_tuned_corrector(v)), VARIANTS)
        if not self.nfes or min(self.nfes) < 3:
            raise ValueError(f"nfes must be ints >= 3, got {self.nfes}")
        if self.seeds < 1 or self.n_samples < 100 or self.mmd_subsample < 10:
            raise ValueError("need seeds >= 1, n_samples >= 100, mmd_subsample >= 10")


def make_problem(name: str, device: torch.device | str = "cpu"):
    """The spec's mixtures (the 16-D one drawn with seed 0)."""
    mix = gmm_2d_8mode() if name == "2d8" else gmm_16d_5mode(torch.Generator().manual_seed(0))
    return mix.to(device)


def is_tuned_corrector(name: str) -> bool:
    """``<predictor>+langevin[_snr<x>][_ps]`` or ``+lm_r<r>[_snr<x>][_ps]`` with a non-default option."""
    suffix = name.partition("+")[2]
    return bool(re.fullmatch(r"(langevin|lm_r\d+)(_snr[0-9.e-]+)?(_ps)?", suffix)) and suffix not in (
        "langevin", "lm_r1", "lm_r2")


def corrector_from_name(suffix: str, cfg):
    """``langevin[_snr<x>][_ps]`` and ``lm_r<r>[_snr<x>][_ps]``: tuned SNR and per-sample step sizes."""
    parts = suffix.split("_")
    snr = next((float(p[3:]) for p in parts if p.startswith("snr")), cfg.snr)
    step_size = "per_sample" if "ps" in parts else "batch"
    if parts[0] == "langevin":
        return LangevinCorrection(snr=snr, step_size=step_size)
    rank = int(parts[1][1:])
    return LMCorrection("lm_langevin", lam=cfg.lm_lam, rank=rank, snr=snr, step_size=step_size)


def variant_call(name: str, mix, cfg) -> dict:
    """Keyword arguments of :func:`sample` for a variant."""
    predictor, _, suffix = name.partition("+")
    base = {"sampler": "dpm_solver++", "order": 2} if predictor == "dpmpp2m" else {"sampler": "ddim"}
    if not suffix:
        return base
    if is_tuned_corrector(name):
        return base | {"correction": corrector_from_name(suffix, cfg)}
    corr = {"code": LMCorrection("code", lam=cfg.code_lam, kappa=0.0),
            # the released formula in float64 without the exact kappa = 0 short-cut: the identity up to rounding
            "code_formula64": LMCorrection("code", lam=cfg.code_lam, kappa=0.0, compute_dtype="input"),
            "code_k0.3": LMCorrection("code", lam=1e-3, kappa=0.3),
            "langevin": LangevinCorrection(snr=cfg.snr),
            "lm_r1": LMCorrection("lm_langevin", lam=cfg.lm_lam, rank=1, snr=cfg.snr),
            "lm_r2": LMCorrection("lm_langevin", lam=cfg.lm_lam, rank=2, snr=cfg.snr),
            "exact": ExactHessianCorrection(mix, lam=cfg.lm_lam, snr=cfg.snr)}[suffix]
    return base | {"correction": corr}


def evaluate(samples: torch.Tensor, ref: torch.Tensor, mix, seed: int, mmd_n: int) -> dict[str, float]:
    finite = bool(torch.isfinite(samples).all())
    if not finite:
        return {"sw2": math.inf, "mmd2": math.inf, "tv": math.inf}
    return {"sw2": float(sliced_w2(samples, ref, 500, torch.Generator(samples.device).manual_seed(10_000 + seed))),
            "mmd2": float(rbf_mmd2(samples[:mmd_n], ref[:mmd_n])),
            "tv": float(mode_weight_tv(samples, mix))}


def run_grid(cfg, ctx: RunContext, problems, nfes, seeds: int, n: int, seed_offset: int = 0,
             variants=None) -> tuple[dict, dict, dict]:
    """All (problem, variant, nfe, seed) runs. Returns (raw[problem][variant][nfe] -> list of metric dicts,
    floors[problem] -> list of metric dicts, extras) where extras holds identity diffs and example samples.
    Seeds are ``seed_offset .. seed_offset + seeds - 1`` (tuning runs use seeds disjoint from evaluation)."""
    variants = tuple(variants or cfg.variants)
    raw: dict = {}
    floors: dict = {}
    extras: dict = {"identity_max_rel_diff": 0.0, "examples": {}}
    for problem in problems:
        mix = make_problem(problem, ctx.device)
        schedule = VPSchedule.continuous()
        model = mix.eps_model(schedule)
        raw[problem], floors[problem] = {}, []
        for seed in ctx.progress(range(seed_offset, seed_offset + seeds), total=seeds, desc=f"{problem} seeds"):
            ref = mix.sample(n, ctx.make_generator(1000 + seed))
            other = mix.sample(n, ctx.make_generator(2000 + seed))
            floors[problem].append(evaluate(other, ref, mix, seed, cfg.mmd_subsample))
            for nfe in nfes:
                x_init = torch.randn(n, mix.dim, dtype=torch.float64, device=ctx.device,
                                     generator=ctx.make_generator(3000 + seed))
                outs = {}
                for variant in variants:
                    kwargs = variant_call(variant, mix, cfg)
                    try:
                        out = sample(model, schedule, x_init.shape, nfe=nfe, x_init=x_init,
                                     generator=ctx.make_generator(4000 + seed), **kwargs)
                        samples, used = out.samples, out.nfe
                    except ValueError as err:        # the trajectory overflowed (NaN/Inf reached the model)
                        if "NaN" not in str(err):
                            raise
                        samples, used = torch.full_like(x_init, math.nan), nfe
                    outs[variant] = samples
                    metrics = evaluate(samples, ref, mix, seed, cfg.mmd_subsample) | {"nfe_used": used}
                    raw[problem].setdefault(variant, {}).setdefault(nfe, []).append(metrics)
                for code in ("ddim+code", "ddim+code_formula64"):
                    if "ddim" in outs and code in outs:
                        rel = float((outs[code] - outs["ddim"]).norm(dim=1).max() / outs["ddim"].norm(dim=1).max())
                        key = "identity_max_rel_diff" if code == "ddim+code" else "formula64_max_rel_diff"
                        extras[key] = max(extras.get(key, 0.0), rel)
                if seed == 0 and problem == "2d8":
                    extras["examples"][nfe] = {k: v.cpu() for k, v in outs.items()}
                    extras["examples"]["ref"] = ref.cpu()
            ctx.log(f"  {problem} seed {seed}: " + ", ".join(
                f"{v}@{nfes[0]}={raw[problem][v][nfes[0]][-1]['sw2']:.3g}" for v in variants))
    return raw, floors, extras


def summarise(raw: dict, floors: dict) -> dict[str, float]:
    """Flat metrics: ``<problem>/<variant>/nfe<k>/<metric>_mean|_std`` and ``<problem>/floor/<metric>_mean|_std``."""
    out: dict[str, float] = {}
    for problem, variants in raw.items():
        for metric in ("sw2", "mmd2", "tv"):
            vals = np.array([f[metric] for f in floors[problem]])
            out[f"{problem}/floor/{metric}_mean"] = float(vals.mean())
            out[f"{problem}/floor/{metric}_std"] = float(vals.std(ddof=1)) if len(vals) > 1 else 0.0
        for variant, by_nfe in variants.items():
            for nfe, runs in by_nfe.items():
                for metric in ("sw2", "mmd2", "tv"):
                    vals = np.array([r[metric] for r in runs])
                    out[f"{problem}/{variant}/nfe{nfe}/{metric}_mean"] = float(vals.mean())
                    std = float(vals.std(ddof=1)) if len(vals) > 1 else 0.0
                    out[f"{problem}/{variant}/nfe{nfe}/{metric}_std"] = std
                out[f"{problem}/{variant}/nfe{nfe}/nfe_used"] = float(runs[0]["nfe_used"])
    return out


def plot_error_vs_nfe(ctx: RunContext, summary: dict, problems, variants, nfes, name: str = "error_vs_nfe") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(problems), figsize=(6 * len(problems), 4.5), squeeze=False)
    for ax, problem in zip(axes[0], problems):
        for variant in variants:
            means = np.array([summary[f"{problem}/{variant}/nfe{k}/sw2_mean"] for k in nfes])
            stds = np.array([summary[f"{problem}/{variant}/nfe{k}/sw2_std"] for k in nfes])
            # diverged runs are drawn at the cap of 20 (see the table for their values)
            means = np.minimum(np.nan_to_num(means, nan=20.0, posinf=20.0), 20.0)
            stds = np.minimum(np.nan_to_num(stds, nan=0.0, posinf=0.0), 0.9 * means)
            ax.errorbar(nfes, means, yerr=stds, marker="o", capsize=3, label=variant)
        ax.axhline(summary[f"{problem}/floor/sw2_mean"], color="k", ls="--", label="noise floor")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("total NFE")
        ax.set_ylabel("sliced W2 (mean ± std over seeds)")
        ax.set_title(problem)
        ax.grid(True, which="both", alpha=0.3)
    axes[0][-1].legend(fontsize=7)
    ctx.save_figure(name, fig)


def plot_samples(ctx: RunContext, examples: dict, nfe: int, variants, name: str = "samples_2d") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    mix = gmm_2d_8mode()
    grid = torch.linspace(-6, 6, 200, dtype=torch.float64)
    X, Y = torch.meshgrid(grid, grid, indexing="xy")
    logp = mix.log_prob(torch.stack([X.ravel(), Y.ravel()], 1)).reshape(200, 200)
    shown = [v for v in variants if v in examples[nfe]]
    fig, axes = plt.subplots(1, len(shown), figsize=(3.2 * len(shown), 3.4), squeeze=False)
    for ax, variant in zip(axes[0], shown):
        ax.contourf(X.numpy(), Y.numpy(), torch.exp(logp).numpy(), levels=20, cmap="Blues")
        pts = examples[nfe][variant][:1500].numpy()
        pts = pts[np.all(np.abs(pts) < 6, axis=1)]
        ax.scatter(pts[:, 0], pts[:, 1], s=1, c="tab:red", alpha=0.5)
        ax.set_title(f"{variant}, NFE {nfe}", fontsize=8)
        ax.set_xlim(-6, 6)
        ax.set_ylim(-6, 6)
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
    ctx.save_figure(name, fig)


def with_one_thread(fn):
    """Run ``fn`` with one torch thread (tiny tensors: two threads on a shared box are ~10x slower)."""
    @functools.wraps(fn)
    def wrapped(*args, **kwargs):
        previous = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return fn(*args, **kwargs)
        finally:
            torch.set_num_threads(previous)

    return wrapped


@experiment("diffusion/gmm-benchmark", config=Config, tags=("diffusion",),
            summary="exact-score GMM (2-D 8-mode, 16-D 5-mode): samplers ± LML/Langevin correctors vs NFE, 5 seeds")
@with_one_thread
def run(cfg: Config, ctx: RunContext) -> dict[str, float]:
    nfes, seeds, n = cfg.nfes, cfg.seeds, cfg.n_samples
    if cfg.smoke:
        nfes, seeds, n = nfes[:1], 2, 400
    raw, floors, extras = run_grid(cfg, ctx, cfg.problems, nfes, seeds, n)
    summary = summarise(raw, floors)
    plot_error_vs_nfe(ctx, summary, cfg.problems, cfg.variants, nfes)
    if extras["examples"]:
        plot_samples(ctx, extras["examples"], nfes[min(1, len(nfes) - 1)], cfg.variants)
    summary["identity_max_rel_diff"] = extras["identity_max_rel_diff"]
    # a diverged run (NaN/Inf samples) is reported as 1e300 so that result.json stays valid JSON
    return {k: (v if math.isfinite(v) else 1e300) for k, v in summary.items()}
