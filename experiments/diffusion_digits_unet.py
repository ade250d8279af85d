"""A small image DDPM with FID/KID: a TinyUNet on 16 x 16 digits, the paper's samplers at its NFE grid, ± LML.

Data: scikit-learn's 1797 digits (8 x 8, 0..16), bilinearly upsampled to 16 x 16 and scaled to [-1, 1] (offline,
ships with scikit-learn). Model: :class:`~sciml.diffusion.TinyUNet` (base 16: ~63 k parameters), DDPM loss, linear
beta, T = 1000, Adam (lr 2e-3, 100 warm-up steps, cosine decay to 0), EMA 0.999, 3000 steps of batch 64. The
trained EMA weights are cached under ``<results>/cache/diffusion/`` (as the digits MLP, see
:mod:`experiments.diffusion_digits_ddpm`); nothing is committed.

Metric: FID and KID in the 64-feature space of a small CNN classifier trained here on the same digits
(:mod:`sciml.diffusion.image_metrics`; its held-out accuracy is reported). ``n_gen`` (512) generated images are compared
with a fixed random half of the real digits (898); the floor is ``n_gen`` images of the other real half against
the same half. The trivial baseline is a Gaussian with the real pixels' mean and covariance (no structure beyond
second moments), one fresh draw of ``n_gen`` images per seed; every sampler minus it is reported with a paired
95 % t-interval (``<sampler>_minus_gaussian``).

Samplers at equal NFE (the paper's baselines and its LML placements, fp32 as in the released scripts):

* ``ddim`` / ``ddim+lml``: DDIM (trailing grid) and the released DDIM-LM operator (kappa 0, lambda 5e-3, the
  CelebA-HQ script's value, fp32 operator);
* ``dpm3`` / ``dpm3+lml``: the released CIFAR-10 configuration, DPM-Solver-3 noise form on DPM's linspace grid
  ending at t = 0, with the README's lambda for that NFE (fp32 operator);
* ``dpmpp2m``, ``unipc``, ``pndm``: DPM-Solver++(2M), UniPC-2 and PNDM (PLMS) with diffusers' default grids.

Every (sampler, NFE) runs over ``seeds`` initial-noise seeds shared by all samplers (paired); LML minus its base
is reported with a 95 % t-interval. The lambda sweep of :mod:`experiments.diffusion_lambda_sweep` (fp32 operator,
same-size random-noise control, fp64 operator) is run on this model at NFE 10 as well (``sweep/...``).
"""

from __future__ import annotations

import dataclasses
import math
import time

import numpy as np
import torch
from torch.nn import functional as F

from experiments import diffusion_lambda_sweep as sweep_exp
from experiments.diffusion_digits_ddpm import cache_dir
from experiments.diffusion_gmm_benchmark import with_one_thread
from sciml.core import check_subset
from sciml.diffusion import LMCorrection, TinyUNet, VPSchedule, sample, train_eps_model
from sciml.diffusion.image_metrics import FeatureScores, train_feature_net
from sciml.diffusion.stats import paired_comparison
from sciml.runner import ExperimentConfig, RunContext, experiment

# README of zituitui/LML-diffusion-sampler, CIFAR-10 DPM-LM lambda per NFE (spec §1.5)
CIFAR_LAMBDA = {5: 8e-4, 6: 8e-4, 7: 1e-3, 8: 1e-3, 9: 1e-3, 10: 8e-4, 12: 1e-3, 15: 1e-3, 20: 5e-4, 30: 3e-4,
                50: 1e-4, 100: 5e-5}
CELEBA_DDIM_LAMBDA = 5e-3
SAMPLERS = ("ddim", "ddim+lml", "dpm3", "dpm3+lml", "dpmpp2m", "unipc", "pndm")
DEFAULT_SAMPLERS = ("ddim", "ddim+lml", "dpm3", "dpm3+lml", "dpmpp2m")
LML_PAIRS = {"ddim+lml": "ddim", "dpm3+lml": "dpm3"}
GAUSSIAN = ("gaussian", 0)          # per_seed key of the trivial baseline (one draw per seed)


@dataclasses.dataclass(frozen=True)
class Config(ExperimentConfig):
    size: int = 16
    base: int = 16                 # ~63 k parameters (base 12 at 1500 constant-lr steps was no better than a Gaussian)
    train_steps: int = 3000        # 157 s on one lightly loaded core (cached after the first run)
    batch_size: int = 64
    lr: float = 2e-3
    lr_schedule: str = "cosine"    # decays to 0: the last steps settle the weights (see train_eps_model)
    warmup: int = 100
    feature_steps: int = 600
    nfes: tuple[int, ...] = (5, 10, 20)
    samplers: tuple[str, ...] = DEFAULT_SAMPLERS    # + "unipc", "pndm" by --set
    n_gen: int = 512               # generated images per (sampler, NFE, seed); the reference is a real half (898)
    seeds: int = 3
    sweep_nfe: int = 10
    sweep_lams: tuple[float, ...] = (1e-4, 8e-4, 1e-2)

    def validate(self) -> None:
        if not 16 <= self.n_gen <= 898:
            raise ValueError(f"n_gen must be in [16, 898] (a real half is the reference), got {self.n_gen}")
        if self.size % 4 or self.size < 8 or self.base < 2 or self.train_steps < 1 or self.seeds < 1:
            raise ValueError(f"need size divisible by 4 (>= 8), base >= 2, train_steps >= 1, seeds >= 1; got "
                             f"{self.size}, {self.base}, {self.train_steps}, {self.seeds}")
        check_subset("samplers", self.samplers, SAMPLERS)
        if self.lr_schedule not in ("constant", "cosine") or self.warmup < 0:
            raise ValueError(f"lr_schedule must be 'constant' or 'cosine' and warmup >= 0; got {self.lr_schedule!r}, "
                             f"{self.warmup}")
        if not self.nfes or min(self.nfes) < 3:
            raise ValueError(f"nfes must be ints >= 3, got {self.nfes}")
        if self.sweep_lams and min(self.sweep_lams) <= 0:
            raise ValueError("sweep_lams must be > 0")


def digit_images(size: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    """The 1797 digits as (N, 1, size, size) float32 in [-1, 1] (bilinear upsampling) and their labels."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = torch.from_numpy(digits.images.astype(np.float32) / 8.0 - 1.0)[:, None]
    if size != 8:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False).clamp(-1, 1)
    return x, torch.from_numpy(digits.target)


def trained_unet(cfg: Config, ctx: RunContext, data: torch.Tensor, steps: int) -> tuple[TinyUNet, dict]:
    """The cached EMA TinyUNet, or a freshly trained one (then cached)."""
    name = (f"digits_unet_v2_s{cfg.size}_b{cfg.base}_n{steps}_bs{cfg.batch_size}_lr{cfg.lr:g}_{cfg.lr_schedule}"
            f"_w{min(cfg.warmup, steps - 1)}_seed{ctx.seed}.pt")
    path = cache_dir(ctx) / name
    model = TinyUNet(1, cfg.base, generator=ctx.make_generator(21, "cpu"))
    info = {"unet_params": float(sum(p.numel() for p in model.parameters()))}
    if path.exists():
        model.load_state_dict(torch.load(path, map_location="cpu"))
        ctx.log(f"  loaded the cached TinyUNet from {path}")
        return model.to(data.device).eval(), info | {"train_cached": 1.0}
    start = time.perf_counter()
    result = train_eps_model(model.to(data.device), data, VPSchedule.ddpm_linear(), steps=steps,
                             batch_size=cfg.batch_size, lr=cfg.lr, generator=ctx.make_generator(22, data.device),
                             lr_schedule=cfg.lr_schedule, warmup=min(cfg.warmup, steps - 1))
    seconds = time.perf_counter() - start
    torch.save({k: v.cpu() for k, v in result.model.state_dict().items()}, path)
    loss = float(result.losses[-100:].mean())
    ctx.log(f"  trained the TinyUNet ({info['unet_params']:.0f} params) {steps} steps in {seconds:.0f}s, "
            f"final loss {loss:.4f}; cached at {path}")
    return result.model.eval(), info | {"train_cached": 0.0, "train_seconds": seconds, "train_final_loss": loss}


def sampler_call(name: str, nfe: int) -> dict:
    """``sample()`` keywords of a named sampler (see the module docstring)."""
    calls = {
        "ddim": {"sampler": "ddim"},
        "ddim+lml": {"sampler": "ddim", "correction": LMCorrection(lam=CELEBA_DDIM_LAMBDA, compute_dtype="input")},
        "dpm3": {"sampler": "dpm_solver", "order": 3, "spacing": "linspace", "end": "zero"},
        "dpmpp2m": {"sampler": "dpm_solver++", "order": 2, "spacing": "diffusers"},
        "unipc": {"sampler": "unipc", "order": 2, "spacing": "diffusers"},
        "pndm": {"sampler": "pndm", "spacing": "diffusers", "end": "diffusers"},
    }
    if name == "dpm3+lml":
        lam = CIFAR_LAMBDA.get(nfe, 8e-4)
        return calls["dpm3"] | {"correction": LMCorrection(lam=lam, compute_dtype="input")}
    return calls[name]


class DigitsSetup:
    """Data, model, feature scores, reference halves and the floor/trivial-baseline numbers."""

    def __init__(self, cfg: Config, ctx: RunContext, train_steps: int, feature_steps: int, n_gen: int) -> None:
        device = torch.device(ctx.device)
        self.data, labels = digit_images(cfg.size)
        self.data, labels = self.data.to(device), labels.to(device)
        self.model, self.info = trained_unet(cfg, ctx, self.data, train_steps)
        feat = train_feature_net(self.data, labels, steps=feature_steps, generator=ctx.make_generator(23, device))
        self.info["feature_net_holdout_accuracy"] = feat.holdout_accuracy
        perm = torch.randperm(self.data.shape[0], generator=ctx.make_generator(24, "cpu")).to(device)
        half = self.data.shape[0] // 2
        self.reference, self.other_half = self.data[perm[:half]], self.data[perm[half:]]
        self.n = n_gen
        self.scores = FeatureScores(feat.model, self.reference)
        self.kid_gen = lambda: ctx.make_generator(25, device)
        self.info |= {f"floor/{k}": v for k, v in self.score(self.other_half[:n_gen]).items()}
        flat = self.data.flatten(1).double()
        cov = torch.cov(flat.T) + 1e-6 * torch.eye(flat.shape[1], dtype=flat.dtype, device=device)
        self._gauss_mean, self._gauss_chol = flat.mean(0), torch.linalg.cholesky(cov)
        self.info |= {f"gaussian/{k}": v for k, v in self.score(self.gaussian_images(ctx, 0)).items()}

    def score(self, images: torch.Tensor) -> dict[str, float]:
        if not bool(torch.isfinite(images).all()):
            return {"fid": math.inf, "kid_x1e3": math.inf}
        images = images.float().clamp(-1, 1)
        kid, _ = self.scores.kid(images, subset_size=min(500, self.n), n_subsets=20, generator=self.kid_gen())
        return {"fid": self.scores.fid(images), "kid_x1e3": 1e3 * kid}

    def gaussian_images(self, ctx: RunContext, seed: int) -> torch.Tensor:
        """``n_gen`` draws of the trivial baseline (the pixels' mean and covariance), clamped to [-1, 1]."""
        z = torch.randn(self.n, self._gauss_mean.shape[0], dtype=torch.float64,
                        generator=ctx.make_generator(2000 + seed, "cpu")).to(self._gauss_mean.device)
        return (self._gauss_mean + z @ self._gauss_chol.T).float().clamp(-1, 1).reshape(self.n, *self.data.shape[1:])

    def noise(self, ctx: RunContext, seed: int) -> torch.Tensor:
        return torch.randn(self.n, *self.data.shape[1:], generator=ctx.make_generator(1000 + seed, "cpu")).to(
            self.data.device)


def fid_grid(setup: DigitsSetup, ctx: RunContext, samplers, nfes, seeds: int) -> tuple[dict, dict]:
    """``per_seed[(sampler, nfe)] -> list of {fid, kid_x1e3}`` and example images."""
    schedule = VPSchedule.ddpm_linear()
    per_seed: dict = {}
    examples: dict = {}
    for seed in range(seeds):
        z = setup.noise(ctx, seed)
        per_seed.setdefault(GAUSSIAN, []).append(setup.score(setup.gaussian_images(ctx, seed)))
        for nfe in nfes:
            for name in samplers:
                with torch.no_grad():
                    x = sample(setup.model, schedule, tuple(z.shape), nfe=nfe, x_init=z.clone(), dtype=torch.float32,
                               **sampler_call(name, nfe)).samples
                per_seed.setdefault((name, nfe), []).append(setup.score(x))
                if seed == 0:
                    examples[(name, nfe)] = x[:8].cpu()
            ctx.log(f"  seed {seed} NFE {nfe}: " + ", ".join(
                f"{s}={per_seed[(s, nfe)][-1]['fid']:.3g}" for s in samplers))
    return per_seed, examples


def summarise_grid(per_seed: dict, samplers, nfes) -> dict:
    """Seed means/sds, LML minus its base and every sampler minus the Gaussian fit (paired over seeds)."""
    out: dict = {}
    for metric in ("fid", "kid_x1e3"):
        gauss = [r[metric] for r in per_seed[GAUSSIAN]]
        out[f"gaussian/{metric}_mean"] = float(np.mean(gauss))
        for name in samplers:
            for nfe in nfes:
                out[f"{name}_minus_gaussian/nfe{nfe}/{metric}"] = paired_comparison(
                    [r[metric] for r in per_seed[(name, nfe)]], gauss)
    for (name, nfe), rows in per_seed.items():
        if (name, nfe) == GAUSSIAN:
            continue
        for metric in ("fid", "kid_x1e3"):
            vals = np.array([r[metric] for r in rows])
            out[f"{name}/nfe{nfe}/{metric}_mean"] = float(vals.mean())
            out[f"{name}/nfe{nfe}/{metric}_sd"] = float(vals.std(ddof=1)) if len(vals) > 1 else math.nan
    for lml, base in LML_PAIRS.items():
        if lml in samplers and base in samplers:
            for nfe in nfes:
                for metric in ("fid", "kid_x1e3"):
                    out[f"{lml}_minus_{base}/nfe{nfe}/{metric}"] = paired_comparison(
                        [r[metric] for r in per_seed[(lml, nfe)]], [r[metric] for r in per_seed[(base, nfe)]])
    return out


def digits_sweep(setup: DigitsSetup, ctx: RunContext, lams, nfe: int, seeds: int) -> dict:
    """The released-operator lambda sweep on the UNet: fp32 operator, same-size noise control, fp64 operator."""
    variants = sweep_exp.sweep_variants(lams, controls=("control",))
    fid: dict = {v: [] for v in variants}
    move: dict = {v: [] for v in variants}
    schedule = VPSchedule.ddpm_linear()
    for seed in range(seeds):
        z = setup.noise(ctx, seed).double()
        samples = sweep_exp.sample_variants(setup.model, schedule, z, variants, nfe)
        for name, (dtype, _) in variants.items():
            fid[name].append(setup.score(samples[name])["fid"])
            move[name].append(sweep_exp.relative_move(samples[name],
                                                      samples["base_fp64" if dtype == torch.float64 else "base_fp32"]))
        ctx.log(f"  sweep seed {seed}: " + ", ".join(f"{v}={fid[v][-1]:.4g}" for v in variants))
    out: dict = {}
    for lam in lams:
        key = f"lam{lam:g}"
        out[f"sweep/lm_fp32_minus_base/{key}"] = paired_comparison(fid[f"lm_fp32/{key}"], fid["base_fp32"])
        out[f"sweep/control_minus_base/{key}"] = paired_comparison(fid[f"control/{key}"], fid["base_fp32"])
        out[f"sweep/lm_fp32_minus_control/{key}"] = paired_comparison(fid[f"lm_fp32/{key}"], fid[f"control/{key}"])
        out[f"sweep/lm_fp64_minus_base_fp64/{key}"] = paired_comparison(fid[f"lm_fp64/{key}"], fid["base_fp64"])
        out[f"sweep/lm_fp32/{key}/move_median"] = float(np.median(move[f"lm_fp32/{key}"]))
        out[f"sweep/lm_fp64/{key}/move_median"] = float(np.median(move[f"lm_fp64/{key}"]))
    out["sweep/base_fp32/fid_mean"] = float(np.mean(fid["base_fp32"]))
    out["sweep/base_fp64_minus_base_fp32"] = paired_comparison(fid["base_fp64"], fid["base_fp32"])
    return out


def table(summary: dict, info: dict, samplers, nfes) -> str:
    """Markdown FID table (mean ± sd over seeds) with the floor and the trivial baseline."""
    lines = ["| sampler | " + " | ".join(f"NFE {k} FID" for k in nfes) + " | " + " | ".join(
        f"NFE {k} KIDx1e3" for k in nfes) + " |", "|---" * (1 + 2 * len(nfes)) + "|"]
    for name in samplers:
        cells = [f"{summary[f'{name}/nfe{k}/fid_mean']:.3g} ± {summary[f'{name}/nfe{k}/fid_sd']:.2g}" for k in nfes]
        cells += [f"{summary[f'{name}/nfe{k}/kid_x1e3_mean']:.3g} ± {summary[f'{name}/nfe{k}/kid_x1e3_sd']:.2g}"
                  for k in nfes]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines.append(f"| real half (floor) | {info['floor/fid']:.3g} | | | KID {info['floor/kid_x1e3']:.3g} |")
    lines.append(f"| Gaussian fit (trivial), seed mean | {summary['gaussian/fid_mean']:.3g} | | | KID "
                 f"{summary['gaussian/kid_x1e3_mean']:.3g} |")
    return "\n".join(lines)


def flatten(summary: dict) -> dict[str, float]:
    flat: dict[str, float] = {}
    for key, value in summary.items():
        if hasattr(value, "ci_low"):
            flat[f"{key}/mean"], flat[f"{key}/ci_low"], flat[f"{key}/ci_high"] = value.mean, value.ci_low, value.ci_high
        else:
            flat[key] = value
    return {k: (v if math.isfinite(v) else 1e300) for k, v in flat.items()}


def plot(ctx: RunContext, examples: dict, samplers, nfe: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(samplers), 8, figsize=(8, 1.1 * len(samplers)), squeeze=False)
    for row, name in enumerate(samplers):
        for col in range(8):
            ax = axes[row][col]
            ax.imshow(examples[(name, nfe)][col, 0].clamp(-1, 1).numpy(), cmap="gray_r", vmin=-1, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
        axes[row][0].set_ylabel(name, fontsize=6, rotation=0, ha="right")
    fig.suptitle(f"TinyUNet digits samples at NFE {nfe}")
    ctx.save_figure(f"unet_samples_nfe{nfe}", fig)


def smoke_config(cfg: Config) -> Config:
    return dataclasses.replace(cfg, train_steps=20, feature_steps=20, nfes=(5,), samplers=("ddim", "dpm3", "dpm3+lml"),
                               seeds=2, sweep_nfe=5, sweep_lams=(8e-4,), n_gen=64)


def run_all(cfg: Config, ctx: RunContext) -> tuple[dict, dict, str]:
    """Everything: (summary with PairedComparison values, info, markdown table)."""
    setup = DigitsSetup(cfg, ctx, cfg.train_steps, cfg.feature_steps, cfg.n_gen)
    per_seed, examples = fid_grid(setup, ctx, cfg.samplers, cfg.nfes, cfg.seeds)
    summary = summarise_grid(per_seed, cfg.samplers, cfg.nfes)
    if cfg.sweep_lams:
        summary |= digits_sweep(setup, ctx, cfg.sweep_lams, cfg.sweep_nfe, max(cfg.seeds, 2))
    plot(ctx, examples, cfg.samplers, cfg.nfes[min(1, len(cfg.nfes) - 1)])
    text = table(summary, setup.info, cfg.samplers, cfg.nfes)
    (ctx.out_dir / "fid_table.md").write_text(text + "\n")
    ctx.log(text)
    return summary, setup.info, text


@experiment("diffusion/digits-unet-fid", config=Config, tags=("diffusion",),
            summary="TinyUNet DDPM on 16x16 digits: FID/KID (features of a CNN trained here) of DDIM, DPM-3, "
                    "DPM++, UniPC, PNDM ± LML at NFE 5/10/20 over paired seeds; lambda sweep vs noise control")
@with_one_thread
def run(cfg: Config, ctx: RunContext) -> dict[str, float]:
    if cfg.smoke:
        cfg = smoke_config(cfg)
    summary, info, _ = run_all(cfg, ctx)
    return flatten(summary | info)
