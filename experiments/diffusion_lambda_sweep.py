"""What LML's gains are made of: a lambda sweep of the released operator against an explicit noise control.

Released configuration (spec diffusion_ot.md §1.3/§1.5, CIFAR-10 scripts): DPM-Solver-3 noise form, DDPM linear
schedule, DPM linspace grid ending at t = 0, kappa = 0, the operator on the increment in float32. With kappa = 0 the
operator is the identity in exact arithmetic, so in float32 it injects cancellation noise of relative size
``~ u (lambda + |d|²) / lambda``. The sweep compares, on exact-score isotropic Gaussian mixtures at d = 256 .. 4096
(pixel-like scale), with paired seeds (same initial noise, reference set and SW2 projections):

* ``lm_fp32``: the released operator in float32 (lambda in the grid);
* ``control``: the baseline plus isotropic random noise of exactly the per-sample norm that the fp32 operator adds
  at that step (:class:`~sciml.diffusion.RoundingNoiseControl`): same size, no structure;
* ``mcontrol``: the same with multiplicative noise (per element ∝ |d_i|, the shape of rounding errors);
* ``lm_fp64``: the released formula in float64 (samples in float64) against a float64 baseline;
* ``k0.3``: kappa = 0.3 (fp32), where the operator really changes the direction.

Every difference is ``variant - baseline`` in sliced W2 (negative: better) with a 95 % t-interval over seeds and the
sign test; ``lm_fp32 - control`` says whether the operator does anything that same-size noise does not.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch

from experiments.diffusion_gmm_benchmark import with_one_thread
from sciml.diffusion import LMCorrection, RoundingNoiseControl, VPSchedule, gmm_isotropic, sample, sliced_w2
from sciml.diffusion.stats import paired_comparison
from sciml.runner import ExperimentConfig, RunContext, experiment


@dataclasses.dataclass(frozen=True)
class Config(ExperimentConfig):
    dims: tuple[int, ...] = (256, 1024, 4096)
    lams: tuple[float, ...] = (1e-4, 8e-4, 1e-2)     # README: 8e-4 (CIFAR NFE 5/6/10), 1e-3 .. 5e-5 elsewhere
    kappa_lams: tuple[float, ...] = (8e-4, 1.0)      # kappa = 0.3 runs
    seeds: int = 5
    n_samples: int = 1000
    nfe: int = 10                                     # the setting (DPM-Solver-3, NFE 10)
    projections: int = 200

    def validate(self) -> None:
        if not self.dims or min(self.dims) < 2:
            raise ValueError(f"dims must be ints >= 2, got {self.dims}")
        if not self.lams or min(self.lams) <= 0 or (self.kappa_lams and min(self.kappa_lams) <= 0):
            raise ValueError("lams and kappa_lams must be > 0")
        if self.seeds < 2 or self.n_samples < 50 or self.nfe < 3 or self.projections < 10:
            raise ValueError("need seeds >= 2, n_samples >= 50, nfe >= 3, projections >= 10")


def sweep_variants(lams, kappa_lams=(), controls=("control", "mcontrol")) -> dict[str, tuple[torch.dtype, object]]:
    """name -> (sample dtype, correction) for every variant of the sweep (see the module docstring)."""
    out: dict[str, tuple[torch.dtype, object]] = {"base_fp32": (torch.float32, None),
                                                   "base_fp64": (torch.float64, None)}
    makers = {"control": lambda lam: RoundingNoiseControl(lam=lam, seed=7),
              "mcontrol": lambda lam: RoundingNoiseControl(lam=lam, seed=7, structure="multiplicative")}
    for lam in lams:
        out[f"lm_fp32/lam{lam:g}"] = (torch.float32, LMCorrection(lam=lam, kappa=0.0, compute_dtype="input"))
        for control in controls:
            out[f"{control}/lam{lam:g}"] = (torch.float32, makers[control](lam))
        out[f"lm_fp64/lam{lam:g}"] = (torch.float64, LMCorrection(lam=lam, kappa=0.0, compute_dtype="input"))
    for lam in kappa_lams:
        out[f"k0.3/lam{lam:g}"] = (torch.float32, LMCorrection(lam=lam, kappa=0.3, compute_dtype="float64"))
    return out


def sample_variants(model, schedule, z: torch.Tensor, variants: dict, nfe: int) -> dict[str, torch.Tensor]:
    """Samples of every variant from the same initial noise ``z`` in the released configuration (DPM-Solver-3 noise
    form, DPM linspace grid ending at t = 0); a variant whose operator produced NaN gives a NaN tensor."""
    out = {}
    for name, (dtype, corr) in variants.items():
        try:
            with torch.no_grad():
                out[name] = sample(model, schedule, tuple(z.shape), "dpm_solver", nfe=nfe, order=3,
                                   spacing="linspace", end="zero", x_init=z.to(dtype), correction=corr).samples
        except ValueError as err:                         # the fp32 operator can return NaN (|p| = 0)
            if "NaN" not in str(err):
                raise
            out[name] = torch.full(tuple(z.shape), math.nan, dtype=dtype, device=z.device)
    return out


def relative_move(x: torch.Tensor, base: torch.Tensor) -> float:
    """Median over samples of |x - base| / |base| (inf if x is not finite)."""
    x, base = x.double().flatten(1), base.double().flatten(1)
    rel = ((x - base).norm(dim=1) / base.norm(dim=1)).median()
    return float(rel) if bool(torch.isfinite(rel)) else math.inf


def run_sweep(cfg, ctx: RunContext) -> tuple[dict, dict]:
    """Per-seed SW2 and relative movement of every variant. Returns (sw2[d][variant] -> list, move[d][variant])."""
    schedule = VPSchedule.ddpm_linear()
    sw2: dict = {}
    move: dict = {}
    variants = sweep_variants(cfg.lams, cfg.kappa_lams)
    for d in cfg.dims:
        mix = gmm_isotropic(d, torch.Generator().manual_seed(0))
        model = mix.eps_model(schedule)
        sw2[d] = {"floor": []} | {v: [] for v in variants}
        move[d] = {v: [] for v in variants}
        for seed in ctx.progress(range(cfg.seeds), total=cfg.seeds, desc=f"d={d}"):
            ref = mix.sample(cfg.n_samples, ctx.make_generator(100 + seed))
            proj_seed = 300 + seed

            def sw(x):
                if not bool(torch.isfinite(x).all()):
                    return math.inf
                return float(sliced_w2(x.double(), ref, cfg.projections, torch.Generator().manual_seed(proj_seed)))

            sw2[d]["floor"].append(sw(mix.sample(cfg.n_samples, ctx.make_generator(200 + seed))))
            z = torch.randn(cfg.n_samples, d, dtype=torch.float64, generator=ctx.make_generator(400 + seed))
            samples = sample_variants(model, schedule, z, variants, cfg.nfe)
            for name, (dtype, _) in variants.items():
                sw2[d][name].append(sw(samples[name]))
                base = samples["base_fp64" if dtype == torch.float64 else "base_fp32"]
                move[d][name].append(relative_move(samples[name], base))
            ctx.log(f"  d={d} seed {seed}: base {sw2[d]['base_fp32'][-1]:.4f}, floor {sw2[d]['floor'][-1]:.4f}, "
                    + ", ".join(f"{v}={sw2[d][v][-1]:.4f}" for v in variants if v.startswith("lm_fp32")))
    return sw2, move


def summarise(cfg, sw2: dict, move: dict) -> dict:
    """Flat metrics and the paired comparisons (``<d>/<variant>/...``)."""
    out: dict = {}
    for d, by in sw2.items():
        out[f"d{d}/floor/sw2_mean"] = float(np.mean(by["floor"]))
        out[f"d{d}/base_fp32/sw2_mean"] = float(np.mean(by["base_fp32"]))
        for name in by:
            if name in ("floor", "base_fp32"):
                continue
            base = "base_fp64" if name.startswith(("lm_fp64", "base_fp64")) else "base_fp32"
            if name == "base_fp64":
                base = "base_fp32"
            cmp = paired_comparison(by[name], by[base])
            out[f"d{d}/{name}/minus_base"] = cmp
            out[f"d{d}/{name}/move_median"] = float(np.median(move[d][name]))
            if name.startswith("lm_fp32"):
                lam = name.split("/")[1]
                out[f"d{d}/lm_fp32_minus_control/{lam}"] = paired_comparison(by[name], by[f"control/{lam}"])
                out[f"d{d}/lm_fp32_minus_mcontrol/{lam}"] = paired_comparison(by[name], by[f"mcontrol/{lam}"])
    return out


def conclusion(summary: dict, dims, lams) -> str:
    """One paragraph stating what the sweep shows, whatever it shows."""
    helps, same_as_noise, fp64_null = [], [], []
    for d in dims:
        for lam in lams:
            lm = summary.get(f"d{d}/lm_fp32/lam{lam:g}/minus_base")
            vs = [summary.get(f"d{d}/lm_fp32_minus_{c}/lam{lam:g}") for c in ("control", "mcontrol")]
            f64 = summary.get(f"d{d}/lm_fp64/lam{lam:g}/minus_base")
            if lm is not None and lm.significant and lm.mean < 0:
                helps.append(f"d={d}, lambda={lam:g} ({lm.mean:+.2g})")
                matched = [c for c, v in zip(("isotropic", "multiplicative"), vs) if v is not None and not
                           (v.significant and v.mean < 0)]
                if matched:
                    same_as_noise.append(f"d={d}, lambda={lam:g} ({' and '.join(matched)} control)")
            if f64 is not None and f64.n and abs(f64.mean) < 1e-6:
                fp64_null.append(f"d={d}, lambda={lam:g}")
    parts = [f"fp32 operator significantly better than the baseline at: {', '.join(helps) or 'none'}",
             f"of these, not significantly better than same-size random noise: {', '.join(same_as_noise) or 'none'}",
             f"fp64 operator = baseline (|mean diff| < 1e-6) at: {', '.join(fp64_null) or 'none'}"]
    return "; ".join(parts)


@experiment("diffusion/lambda-sweep", config=Config, tags=("diffusion",),
            summary="LML lambda sweep (released fp32 operator, DPM-Solver-3) vs same-size noise control, fp64, kappa")
@with_one_thread
def run(cfg: Config, ctx: RunContext) -> dict[str, float]:
    if cfg.smoke:
        cfg = dataclasses.replace(cfg, dims=(64,), seeds=2, n_samples=200, lams=(8e-4,), kappa_lams=(1.0,))
    sw2, move = run_sweep(cfg, ctx)
    summary = summarise(cfg, sw2, move)
    ctx.log("conclusion: " + conclusion(summary, cfg.dims, cfg.lams))
    flat: dict[str, float] = {}
    for key, value in summary.items():
        if hasattr(value, "mean"):
            flat[f"{key}/mean"], flat[f"{key}/ci_low"], flat[f"{key}/ci_high"] = value.mean, value.ci_low, value.ci_high
            flat[f"{key}/n_better"] = float(value.n_better)
        else:
            flat[key] = value
    return {k: (v if math.isfinite(v) else 1e300) for k, v in flat.items()}
