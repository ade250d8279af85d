"""Are FunBaT's bands calibrated? Coverage over many data sets drawn from the model's own prior (issue 13).

Under a correct model a Bayesian credible band covers at its nominal level in expectation over draws of the truth
from the prior. Each draw here is ``prior_draw_tensor`` (rank 2, 30 x 30 x 100 coordinates, noise 0.1), fitted by
message passing (the paper's posterior) and refined by ``FunBaTGibbs`` (the exact posterior of the same model);
the bands are scored at several levels on the latent f at held-out coordinates, on noisy held-out y and on the
latent f at extrapolated times t in [1, 1.3].

Per draw the extrapolated coverage is far from a binomial proportion (all points share one set of time paths),
so it swings between ~0.1 and 1.0 and the mean needs hundreds of draws: the summary gives each mean with its
standard error over draws, and a reliability plot (coverage against nominal level).

``truth_start`` also runs a chain started at the truth (with ``learn=False`` the truth is an exact posterior
draw): a sampler whose moves leave the posterior invariant covers at the nominal level on average from its first
sweep, mixed or not. Equal coverage from the fit's start and from the truth's rules out poor mixing; nominal
coverage from the truth's start rules out a wrong kernel.
"""

from __future__ import annotations

import dataclasses
import math

import torch

from experiments.tensor_funbat_synthetic import single_thread
from sciml.runner import ExperimentConfig, RunContext, experiment
from sciml.tensor import FunBaT, FunBaTGibbs, prior_draw_tensor

LEVELS = (0.5, 0.8, 0.9, 0.95, 0.99)
KINDS = ("latent", "noisy", "extrap_latent")
_TITLES = {"latent": "latent f, held-out coordinates", "noisy": "noisy y, held-out coordinates",
           "extrap_latent": "latent f, extrapolated t in [1, 1.3]"}


@dataclasses.dataclass(frozen=True)
class Config(ExperimentConfig):
    n_obs: int = 1000
    draws: int = 100                 # standard error of the extrapolated mean ~0.17 / sqrt(draws)
    learn: bool = True               # learned ℓ/σ² (the defaults); False: fixed at the generating values, y in its units
    gibbs: bool = True
    truth_start: bool = False        # also a chain started at the truth (needs learn=False)
    n_iter: int = 100
    seed_offset: int = 3000          # draw i uses data seed seed_offset + i

    def validate(self) -> None:
        if self.n_obs < 100 or self.draws < 1 or self.n_iter < 1:
            raise ValueError(f"need n_obs >= 100, draws >= 1 and n_iter >= 1; got {self.n_obs}, {self.draws}, "
                             f"{self.n_iter}")
        if self.truth_start and (self.learn or not self.gibbs):
            raise ValueError("truth_start needs learn=False and gibbs=True: only with the generating "
                             "hyperparameters fixed is the truth an exact posterior draw")


def band_coverage(truth: torch.Tensor, mean: torch.Tensor, var: torch.Tensor,
                  levels: tuple[float, ...] = LEVELS) -> dict[float, float]:
    """Fraction of ``truth`` inside mean ± z_level · sd, per nominal level."""
    z = (truth - mean).abs() / var.clamp(min=0).sqrt()
    return {lv: float((z <= math.sqrt(2.0) * torch.special.erfinv(torch.tensor(lv, dtype=z.dtype))).double().mean())
            for lv in levels}


def _scores(posterior, d) -> dict[str, float]:
    """Coverage per kind at every level: keys ``kind`` (the 95% band) and ``kind@level``."""
    out = {}
    for kind, coords, truth, noise in (("latent", d.test_coords, d.test_truth, False),
                                       ("noisy", d.test_coords, d.test_values, True),
                                       ("extrap_latent", d.extrap_coords, d.extrap_truth, False)):
        cover = band_coverage(truth, *posterior.predict(coords, include_noise=noise))
        out[kind] = cover[0.95]
        out |= {f"{kind}@{lv:g}": c for lv, c in cover.items()}
    return out


def calibration_draw(d, seed: int, ctx: RunContext, n_iter: int, learn: bool, gibbs: FunBaTGibbs | None,
                     truth_start: bool = False) -> dict[str, float]:
    """One prior draw: the message-passing fit's scores, and with ``gibbs`` the chain's (``gibbs_*``; from the
    truth ``truth_*``)."""
    exact = {} if learn else {"learn": (), "standardize": False}
    res = FunBaT(ranks=2, **exact).fit(d.train_coords, d.train_values, n_iter=n_iter,
                                       generator=ctx.make_generator(seed, "cpu"), on_failure="ignore")
    row = _scores(res, d) | {"converged": float(res.status.label == "converged")}
    if gibbs is None:
        return row
    gibbs = dataclasses.replace(gibbs, hyperparameters="sample" if learn else "fixed")
    post = gibbs.sample(res, d.train_coords, d.train_values, generator=ctx.make_generator(7000 + seed, "cpu"),
                        on_failure="ignore")
    row |= {f"gibbs_{k}": v for k, v in _scores(post, d).items()}
    row["gibbs_converged"] = float(post.status.label == "converged")
    if truth_start:
        # fit.grids are the training coordinates, a subset of the generator's grids
        factors = [u[torch.searchsorted(g, s)] for u, g, s in zip(d.factors, d.grids, res.grids)]
        post = dataclasses.replace(gibbs, burn_in=0).sample(
            res, d.train_coords, d.train_values, generator=ctx.make_generator(7000 + seed, "cpu"),
            on_failure="ignore", initial=(factors, d.core))
        row |= {f"truth_{k}": v for k, v in _scores(post, d).items()}
    return row


def well_specified_calibration(n_obs: int, seeds: int, ctx: RunContext, n_iter: int = 100,
                               seed_offset: int = 3000, learn: bool = True, gibbs: FunBaTGibbs | None = None,
                               truth_start: bool = False, record: bool = False
                               ) -> tuple[dict[str, float], list[dict[str, float]]]:
    """Scores over ``seeds`` prior draws: (mean, sd, se, min per key as ``well_specified/<key>[_std|_se|_min]``
    with ``well_specified/n_seeds``; the per-draw rows). With ``record`` the running means are recorded after
    every draw, so an interrupted run keeps them."""
    rows: list[dict[str, float]] = []
    for seed in ctx.progress(range(seeds), total=seeds, desc=f"prior draws N={n_obs}"):
        d = prior_draw_tensor(n_obs, generator=ctx.make_generator(seed_offset + seed, "cpu"))
        rows.append(calibration_draw(d, seed, ctx, n_iter, learn, gibbs, truth_start))
        summary = summarise(rows)
        if record:
            ctx.record(**{k: v for k, v in summary.items() if "@" not in k})
    _log(summary, ctx)
    return summary, rows


def summarise(rows: list[dict[str, float]]) -> dict[str, float]:
    out = {"well_specified/n_seeds": float(len(rows))}
    for key in rows[0]:
        vals = torch.tensor([r[key] for r in rows], dtype=torch.float64)
        sd = float(vals.std()) if len(rows) > 1 else 0.0
        out |= {f"well_specified/{key}": float(vals.mean()), f"well_specified/{key}_se": sd / math.sqrt(len(rows))}
        if "@" not in key:      # the reliability points keep mean and standard error only
            out |= {f"well_specified/{key}_std": sd, f"well_specified/{key}_min": float(vals.min())}
    return out


def _log(summary: dict[str, float], ctx: RunContext) -> None:
    n = int(summary["well_specified/n_seeds"])
    for prefix, name in (("", "message passing"), ("gibbs_", "Gibbs"), ("truth_", "Gibbs from the truth")):
        if f"well_specified/{prefix}latent" in summary:
            ctx.log(f"  {name:22s} ({n} draws) " + ", ".join(
                f"{k}={summary[f'well_specified/{prefix}{k}']:.3f}±{summary[f'well_specified/{prefix}{k}_se']:.3f}"
                for k in KINDS))


def plot_reliability(ctx: RunContext, summary: dict[str, float], title: str) -> None:
    """Mean coverage against nominal level per kind, one line per posterior, ± 2 standard errors."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(KINDS), figsize=(4.2 * len(KINDS), 4), squeeze=False)
    for ax, kind in zip(axes[0], KINDS):
        ax.plot([0.45, 1.0], [0.45, 1.0], "k:", lw=1, label="nominal")
        for prefix, name in (("", "message passing"), ("gibbs_", "Gibbs (exact)"), ("truth_", "Gibbs from truth")):
            keys = [f"well_specified/{prefix}{kind}@{lv:g}" for lv in LEVELS]
            if keys[0] not in summary:
                continue
            mean = [summary[k] for k in keys]
            se = [2 * summary[k + "_se"] for k in keys]
            ax.errorbar(LEVELS, mean, yerr=se, marker="o", capsize=3, label=name)
        ax.set_title(_TITLES[kind])
        ax.set_xlabel("nominal level")
        ax.set_ylabel("coverage (mean over draws, ± 2 SE)")
    axes[0][0].legend(fontsize=8)
    fig.suptitle(title)
    ctx.save_figure("funbat_reliability", fig)


@experiment("tensor/funbat-calibration", config=Config, tags=("tensor", "funbat"),
            summary="FunBaT band coverage over draws from the model's own prior: message passing vs exact Gibbs")
def run(cfg: Config, ctx: RunContext) -> dict[str, float]:
    if cfg.smoke:
        cfg = dataclasses.replace(cfg, n_obs=300, draws=2, n_iter=20)
    gibbs = (FunBaTGibbs(n_samples=50, burn_in=20) if cfg.smoke else FunBaTGibbs()) if cfg.gibbs else None
    with single_thread():
        summary, rows = well_specified_calibration(cfg.n_obs, cfg.draws, ctx, cfg.n_iter, cfg.seed_offset, cfg.learn,
                                                   gibbs, cfg.truth_start, record=True)
    ctx.save_arrays("per_draw", **{k.replace("@", "_at_"): torch.tensor([r[k] for r in rows]) for k in rows[0]})
    plot_reliability(ctx, summary, f"FunBaT bands on {cfg.draws} prior draws, N = {cfg.n_obs}, "
                                   f"{'learned' if cfg.learn else 'generating'} hyperparameters")
    return summary
