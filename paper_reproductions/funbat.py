"""FunBaT (Fang et al., ICLR 2024): the real-data RMSE table (paper-only), the synthetic experiments, calibration,
and two real continuous-indexed data sets that ship offline.

The paper's real datasets (BeijingAir PM2.5 / PM10 / SO2, US-TEMP) cannot be downloaded here, so their rows show
the published numbers only. The values are the authors' committed result logs (``result_log/*_Tucker``, mean ± std
over 5 folds), which the spec transcribes and which are probably the source of Table 1; the PDF's table body
could not be read offline. Measured rows: the authors' 2-mode rank-1 synthetic generator with FunBaT-CP (paper
Sec. 5.1 generator and kernel hyperparameters; our noise prior, damping, standardisation and restarts differ, so
the row is ``in-band``, not ``match``), parity with the authors' code on their own data file and split
(data/tensor/funbat_simulation_r1.npz): their arithmetic re-implemented as an oracle (sciml.tensor.funbat_reference)
with their exact settings is the ``match`` row against the paper's 0.004, ours with their settings beside it, and
the ratio of the two once the one modelling difference (their N(0, vI) prior counted a second time in every
pseudo-observation) is removed from the oracle (issue 13: within 5%), the spec's synthetic spatio-temporal
benchmark with known truth (bands from spec §2.5), 95%-band coverage of noisy values and of the latent f on
held-out and extrapolated coordinates (band [0.93, 0.97] from issue 13) on the spec's benchmark and on data drawn
from the model's own prior (with learned and with fixed generating hyperparameters), and hourly temperatures of two cities
(vega_datasets, offline) with FunBaT, its ℓ → 0 ablation, tensorly Tucker/CP, gpytorch GP and the training mean on
the same splits (reported).
"""
from __future__ import annotations

import dataclasses

from experiments.tensor_funbat_calibration import well_specified_calibration
from experiments.tensor_funbat_cp_rank1 import Config as CPConfig
from experiments.tensor_funbat_cp_rank1 import authors_parity, cp_rank1, plot_cp
from experiments.tensor_funbat_realdata import CITIES, realdata_table
from experiments.tensor_funbat_realdata import Config as RealConfig
from experiments.tensor_funbat_synthetic import Config as STConfig
from experiments.tensor_funbat_synthetic import benchmark, plot_factors, single_thread
from sciml.runner import Measured, Paper, ReproductionConfig, Row, RunContext, reproduction
from sciml.tensor import FunBaTGibbs

PAPER = Paper(key="funbat", title="Functional Bayesian Tucker Decomposition for Continuous-indexed Tensor Data",
              arxiv="2311.04829", venue="ICLR 2024")

_OFFLINE = "data not available offline; value from the authors' result logs (5 folds), see module docstring"

# (dataset, metric, {rank: value}) for FunBaT (Tucker); [author logs] as transcribed in the spec §2.3.
_REAL = (
    ("PM2.5", "RMSE", {2: 0.2955, 3: 0.2910, 5: 0.2997, 7: 0.3184}),
    ("PM2.5", "MAE", {2: 0.1825, 3: 0.1831, 5: 0.1878, 7: 0.1975}),
    ("PM10", "RMSE", {2: 0.3283, 3: 0.3484, 5: 0.3378, 7: 0.3468}),
    ("SO2", "RMSE", {2: 0.3859, 3: 0.3861, 5: 0.3879, 7: 0.3898}),
    ("SO2", "MAE", {2: 0.2409, 3: 0.2410, 5: 0.2414, 7: 0.2417}),
    ("US-TEMP", "RMSE", {2: 1.37, 3: 1.35, 5: 1.19}),
)
_REAL_CP = (("PM2.5", 0.2943), ("PM10", 0.3465), ("SO2", 0.3839))

_AUTHORS_SETTING = ("authors' data file simulation_r1.npy (2-mode rank-1, 1350 points, 50/50 split), FunBaT-CP, "
                    "Matérn-3/2 ℓ = 0.1, σ² = 0.5, v = 1, a0 = b0 = 1, damping 0.1 / 0.2, 100 epochs")
_BAND_NOTE = "band: the paper's 0.004 at its one significant digit, [0.0035, 0.0045]"
_SMOOTH_TRUTH = (
    "; why it can sit above the band here: the spec's truth (sines and exponentials) is far smoother than "
    "Matérn-3/2 draws, and a Bayesian band on a truth smoother than its prior is conservative (its expected "
    "squared bias under the prior exceeds the actual one); on data the model is right for (cov_prior rows) the "
    "same fit's latent band on held-out coordinates is in band. Checked not to be the mean-field factorisation: a "
    "joint linearised (Gauss-Newton Laplace) predictive over all factor values and the core gives the same widths "
    "(N = 1000, seed 0: coverage 0.995 both, standardised-error sd 0.75 mean-field vs 0.77 joint)")
_ST_SETTING = ("spec §2.5 generator: 30×30×100 irregular coordinates in [0,1], rank-(2,2,2) truth, noise 0.1, "
               "N = 8000, 80/20 split, Matérn-3/2 ℓ = 0.3, up to 100 epochs")

ROWS = tuple(
    Row(key=f"tab1/{ds.lower()}/r{r}/{metric.lower()}", source="Table 1 (author logs)",
        paper_setting=f"{ds}, FunBaT (Tucker), R = {r}, 5 random 80/20 folds", metric=f"test {metric} (lower is better)"
        + (" in °F" if ds == "US-TEMP" else " on z-scored targets"),
        paper=v, ours_setting="-", expect=None, note=_OFFLINE)
    for ds, metric, values in _REAL for r, v in values.items()
) + tuple(
    Row(key=f"tab1/{ds.lower()}/cp_r3/rmse", source="Table 1 (author logs)",
        paper_setting=f"{ds}, FunBaT-CP, R = 3, 5 folds", metric="test RMSE (lower is better)", paper=v,
        ours_setting="-", expect=None, note=_OFFLINE)
    for ds, v in _REAL_CP
) + (
    Row(key="synth/cp_r1/rmse", source="Sec. 5.1 (authors' notebook)",
        paper_setting="2-mode rank-1 u1(x)u2(y), six random 15×15 grids, 50% train, noise-free, FunBaT-CP, "
                      "Matérn-3/2 ℓ = 0.1, σ² = 0.5, 100 epochs",
        metric="test RMSE (lower is better)", paper=0.004,
        ours_setting="same generator and kernel hyperparameters (fixed); our Gamma(1e-3, 1e-3) noise prior, "
                     "damping 0.5, y standardised, N(0, 1) init, 5 restarts (the authors: one U(0, 1) start, "
                     "their priors and damping), mean over seeds",
        expect=(0.0, 0.01), same_setting=False,
        note="spec acceptance: RMSE <= 0.01; paper value from the authors' notebook; with the authors' settings "
             "the issue measured 0.0037"),
    Row(key="synth/cp_r1/mae", source="Sec. 5.1 (authors' notebook)", paper_setting="as above",
        metric="test MAE (lower is better)", paper=0.002, ours_setting="as above", expect=(0.0, 0.01),
        same_setting=False),
    Row(key="parity/cp_r1/authors_code", source="Sec. 5.1 (authors' notebook)", paper_setting=_AUTHORS_SETTING,
        metric="test RMSE (lower is better)", paper=0.004,
        ours_setting="the authors' arithmetic (NumPy port, sciml.tensor.funbat_reference) with their exact "
                     "settings on their data file and split (data/tensor/funbat_simulation_r1.npz)",
        expect=(0.0035, 0.0045), same_setting=True, note=_BAND_NOTE),
    Row(key="parity/cp_r1/ours_authors_settings", source="Sec. 5.1 (authors' notebook)",
        paper_setting=_AUTHORS_SETTING, metric="test RMSE (lower is better)", paper=0.004,
        ours_setting="our FunBaT with their settings (fixed ℓ, σ², one start, damping 0.1, Gamma(1, 1), E[τ] = 1, "
                     "raw y) on their file and split; without their second N(0, I) prior on the pseudo-observations",
        expect=(0.0, 0.0045), same_setting=False,
        note="lower than theirs because we do not count the N(0, vI) prior twice (see the ratio row)"),
    Row(key="parity/cp_r1/ours_over_authors_single_prior", source="issue 13",
        paper_setting="their arithmetic without the double-counted N(0, vI) prior (m_0 = 0), same data and split",
        metric="RMSE ours (their settings) / RMSE their arithmetic", paper=None, ours_setting="as above",
        expect=(0.95, 1.05), same_setting=True,
        note="issue 13 asks for 5%; the double-counted prior alone moves their RMSE from 0.0042 to 0.0036"),
    Row(key="parity/cp_r1/ours_default", source="Sec. 5.1 (authors' notebook)", paper_setting=_AUTHORS_SETTING,
        metric="test RMSE (lower is better)", paper=0.004,
        ours_setting="our defaults (learned ℓ/σ² from the evidence, 5 restarts, y standardised) on their file",
        expect=(0.0, 0.0045), same_setting=False),
    Row(key="st/funbat_r2/rmse", source="spec §2.5 (not in the paper)", paper_setting=_ST_SETTING,
        metric="test RMSE on noisy y, mean over seeds", paper=None, ours_setting="see note; R = 2",
        expect=(0.0, 0.105), note="spec recomputed 0.1013; oracle (true f) ≈ 0.10"),
    Row(key="st/funbat_r2/rmse_truth", source="spec §2.5", paper_setting=_ST_SETTING,
        metric="RMSE against the noise-free truth, mean over seeds", paper=None, ours_setting="R = 2",
        expect=(0.0, 0.03), note="spec recomputed 0.017"),
    Row(key="st/funbat_r3/rmse", source="spec §2.5", paper_setting=_ST_SETTING,
        metric="test RMSE on noisy y, mean over seeds", paper=None, ours_setting="R = 3", expect=(0.0, 0.105),
        note="spec recomputed 0.1016"),
    Row(key="st/funbat_r3/rmse_truth", source="spec §2.5", paper_setting=_ST_SETTING,
        metric="RMSE against the noise-free truth, mean over seeds", paper=None, ours_setting="R = 3",
        expect=(0.0, 0.03), note="spec recomputed 0.018"),
    Row(key="st/ablation_ratio", source="spec §2.5", paper_setting="ℓ → 0 (ν = 1/2, ℓ = 1e-4), R = 2",
        metric="ablation RMSE / FunBaT RMSE (noisy y)", paper=None, ours_setting="R = 2",
        expect=(2.0, 1e9),
        note="spec: the functional prior must matter by more than 2x (recomputed 2.4x, single start); with "
             "restarts the discrete (l -> 0) model reaches ~0.10 on some seeds, so the seed mean is lower"),
    Row(key="st/ablation_ratio_truth", source="issue 13", paper_setting="ℓ → 0 (ν = 1/2, ℓ = 1e-4), R = 2",
        metric="ablation RMSE / FunBaT RMSE, both against the noise-free truth", paper=None, ours_setting="R = 2",
        expect=None,
        note="the spec's > 2x is stated on noisy y, where the noise (0.1) bounds the ratio of two fits that both "
             "reach it; against the truth the functional prior's value is not masked by the noise"),
    Row(key="st/funbat_r2/coverage95", source="issue 5", paper_setting=_ST_SETTING,
        metric="fraction of noisy test values inside the 95% predictive band", paper=None, ours_setting="R = 2",
        expect=(0.93, 0.97)),
) + tuple(
    Row(key=f"cov/N{n}/{kind}", source="issue 13", paper_setting=_ST_SETTING.replace("N = 8000", f"N = {n}"),
        metric=f"95%-band coverage, {label} (seed mean)", paper=None,
        ours_setting="R = 2, hyperparameters learned from the evidence; extrapolation: t in [1, 1.3]",
        expect=(0.93, 0.97), note="band from issue 13 (nominal 0.95)" + (_SMOOTH_TRUTH if "latent" in kind else ""))
    for n in (1000, 8000)
    for kind, label in (("noisy", "noisy held-out y"), ("latent", "latent f at held-out coordinates"),
                        ("extrap_latent", "latent f at extrapolated times"),
                        ("extrap_noisy", "noisy y at extrapolated times"))
) + tuple(
    Row(key=f"cov_prior/N{n}/{kind}", source="issue 13",
        paper_setting=f"data drawn from FunBaT's own prior (sciml.tensor.prior_draw_tensor): 30×30×100 coordinates, "
                      f"rank-(2,2,2), Matérn-3/2 ℓ = 0.3, σ² = 1 factors, N(0, I) core, noise 0.1, N = {n}, 80/20",
        metric=f"95%-band coverage, {label} (mean over prior draws)", paper=None,
        ours_setting="R = 2, FunBaT defaults (ℓ/σ² learned from the evidence, 5 restarts); extrapolation: "
                     "t in [1, 1.3]", expect=(0.93, 0.97),
        note="band from issue 13; a correctly specified model, so nominal coverage is what a calibrated posterior "
             "must give in expectation over draws. The extrapolated coverage of one draw ranges from ~0.1 to 1.0, "
             "so the default's 20 / 5 draws place the mean only to about ±0.035 / ±0.07: for a verdict with a "
             "standard error near 0.01 run `sciml run tensor/funbat-calibration --set draws=200` (N = 1000) or "
             "`--set n_obs=8000 --set draws=60`")
    for n in (1000, 8000)
    for kind, label in (("noisy", "noisy held-out y"), ("latent", "latent f at held-out coordinates"),
                        ("extrap_latent", "latent f at extrapolated times"))
) + tuple(
    Row(key=f"{prefix}/N1000/{kind}", source="issue 13",
        paper_setting="as cov_prior/N1000 (data drawn from FunBaT's own prior)",
        metric=f"95%-band coverage, {label} (mean over prior draws)", paper=None,
        ours_setting="R = 2, ℓ = 0.3 and σ² = 1 fixed at the generating values (learn=()), y not standardised: the "
                     "exactly specified model; " + posterior, expect=(0.93, 0.97), note="band from issue 13; " + note)
    for prefix, posterior, note in (
        ("cov_prior_fixed", "the message-passing posterior",
         "isolates the approximate posterior from hyperparameter learning"),
        ("cov_prior_fixed_gibbs", "the fit refined by FunBaTGibbs(hyperparameters='fixed'), the exact posterior",
         "beside cov_prior_fixed (the message-passing posterior of the same fits)"),
        ("cov_prior_fixed_truth", "FunBaTGibbs(hyperparameters='fixed') started at the truth (no burn-in)",
         ("the sampler's kernel check: the truth of a prior draw is an exact posterior draw, so a chain started "
          "there covers at the nominal level on average whether or not it mixes; equal to cov_prior_fixed_gibbs "
          "(started at the fit) within the standard error means the fit's start misses no posterior mass")))
    for kind, label in (("latent", "latent f at held-out coordinates"),
                        ("extrap_latent", "latent f at extrapolated times"))
) + tuple(
    Row(key=f"{prefix}/N{n}/{kind}", source="issue 13", paper_setting=setting.replace("N = 8000", f"N = {n}"),
        metric=f"95%-band coverage, {label} (mean over {what})", paper=None,
        ours_setting=f"the default fit refined by FunBaTGibbs() (Gibbs sampler of the same model, 400 draws kept, "
                     "ℓ/σ² sampled)", expect=(0.93, 0.97),
        note="band from issue 13 (nominal 0.95)" + (_SMOOTH_TRUTH if prefix == "cov_gibbs" and "latent" in kind
                                                    else ""))
    for prefix, setting, what in (("cov_gibbs", _ST_SETTING, "seeds"),
                                  ("cov_prior_gibbs", "as cov_prior (data drawn from FunBaT's own prior), N = 8000",
                                   "prior draws"))
    for n in (1000, 8000)
    for kind, label in (("noisy", "noisy held-out y"), ("latent", "latent f at held-out coordinates"),
                        ("extrap_latent", "latent f at extrapolated times"))
) + tuple(
    Row(key=f"cov/N{n}/plateaued_restarts", source="issue 13",
        paper_setting=_ST_SETTING.replace("N = 8000", f"N = {n}"),
        metric="restarts (of 5) that stalled on a plateau > 5 % above the kept fit's training RMSE (seed mean)",
        paper=None, ours_setting="R = 2, default FunBaT (5 restarts, N(0, 1) init, the best kept)", expect=None,
        note="the stall flag: a single start lands on the 0.21 plateau often at N = 1000; the kept fit is the best")
    for n in (1000, 8000)
) + tuple(
    Row(key=f"real/{city}/{method}/{metric}", source="issue 13 (not in the paper)",
        paper_setting=f"hourly temperature {city}, 2010, (day of year, hour), vega_datasets 0.9.0, 80/20 splits",
        metric=f"test {metric.upper()} in °F (lower is better), mean over seeds", paper=None,
        ours_setting=desc, expect=None)
    for city in CITIES
    for method, desc in (("funbat", "FunBaT R = 3, Matérn-3/2, learned ℓ/σ²"),
                         ("ablation_l0", "ℓ → 0 ablation (Matérn-1/2, ℓ = 1e-4)"),
                         ("tensorly_tucker", "tensorly masked Tucker R = 3 on the 365 × 24 grid"),
                         ("tensorly_cp", "tensorly masked CP R = 3 on the grid"),
                         ("gp", "gpytorch exact GP: posterior on 3200 points, hyperparameters from 100 Adam "
                                "steps on 800 of them"),
                         ("train_mean", "trivial baseline: the training mean"))
    for metric in ("rmse", "mae")
) + tuple(
    Row(key=f"real/{city}/ablation_ratio", source="issue 13", paper_setting=f"hourly temperature {city}",
        metric="ablation RMSE / FunBaT RMSE", paper=None, ours_setting="as above", expect=None)
    for city in CITIES
) + (
    Row(key="st/tucker_als/rmse_truth", source="baseline", paper_setting="masked Tucker-ALS on 30×30×100 bins",
        metric="RMSE against the truth", paper=None, ours_setting="ours (HOOI + EM imputation), R = 2",
        expect=None),
    Row(key="st/tensorly_tucker/rmse_truth", source="baseline",
        paper_setting="tensorly.decomposition.tucker(mask=...) on 30×30×100 bins", metric="RMSE against the truth",
        paper=None, ours_setting="tensorly, R = 2, 20 iterations, seed 0 only", expect=None),
    Row(key="st/ptucker/rmse_truth", source="baseline", paper_setting="P-Tucker-style ALS on 30×30×100 bins",
        metric="RMSE against the truth", paper=None, ours_setting="ridge 0.1, R = 2", expect=None),
    Row(key="st/gp/rmse_truth", source="baseline", paper_setting="exact GP regression on raw coordinates",
        metric="RMSE against the truth", paper=None,
        ours_setting="gpytorch, ARD Matérn-3/2, posterior on a random 3200-point training subset, "
                     "hyperparameters from 100 Adam steps on 800 of them, seed 0 only",
        expect=None),
    Row(key="st/funbat_r2/gp_ratio", source="issue 5", paper_setting="FunBaT R = 2 vs GP regression",
        metric="FunBaT RMSE_truth / GP RMSE_truth (<= 1: FunBaT matches or beats the GP)", paper=None,
        ours_setting="as the two rows above", expect=(0.0, 1.0)),
)


@dataclasses.dataclass(frozen=True)
class FunBaTReproConfig(ReproductionConfig):
    st_n_obs: int = 8000          # spec §2.5
    st_seeds: int = 5             # spec: mean ± std over 5 seeds
    sparse_n_obs: int = 1000      # issue 13: coverage also at N = 1000
    sparse_seeds: int = 3
    cp_seeds: int = 5
    real_seeds: int = 5
    gp_max_train: int = 3200      # the fair GP budget: posterior on 3,200 points, 100 Adam steps
    gp_hyper_train: int = 800     # ... the Adam steps on 800 of them (100 steps at 3,200 took ~5 min each)
    gp_iter: int = 100
    prior_seeds_1000: int = 20    # prior draws for the calibration rows; per draw the extrapolated coverage swings
    prior_seeds_8000: int = 5     # between ~0.65 and 1.0 (one set of time paths), so N = 1000 gets many draws
    prior_fixed_seeds: int = 20   # the same with ℓ, σ² fixed at the generating values

    @classmethod
    def preset(cls, scale: str) -> FunBaTReproConfig:
        if scale == "smoke":
            return cls(scale=scale, st_n_obs=2000, st_seeds=1, sparse_seeds=1, cp_seeds=1, real_seeds=1,
                       gp_max_train=300, gp_hyper_train=200, gp_iter=30, prior_seeds_1000=1, prior_seeds_8000=0,
                       prior_fixed_seeds=1)
        if scale == "full":   # the spec's sizes are CPU-scale already; "full" only draws more prior samples
            return cls(scale=scale, prior_seeds_1000=100, prior_seeds_8000=20, prior_fixed_seeds=100)
        return cls(scale=scale)


@reproduction(PAPER, rows=ROWS, config=FunBaTReproConfig,
              summary="FunBaT: real-data table (paper-only) + synthetic, calibration and offline real data vs ours")
def reproduce(cfg: FunBaTReproConfig, ctx: RunContext) -> dict[str, Measured]:
    out: dict[str, Measured] = {}
    smoke = cfg.scale == "smoke"
    st = STConfig(n_obs=cfg.st_n_obs, seeds=cfg.st_seeds, ranks=(2,) if smoke else (2, 3),
                  n_iter=30 if smoke else 100, baseline_seeds=min(cfg.st_seeds, 5), tensorly_seeds=0 if smoke else 1,
                  gp_max_train=cfg.gp_max_train, gp_hyper_train=cfg.gp_hyper_train, gp_iter=cfg.gp_iter,
                  gibbs=True)
    cp = CPConfig(seeds=cfg.cp_seeds)
    scaled = f"N = {st.n_obs}, {st.seeds} seed(s)"
    full_st = st.n_obs == 8000 and st.seeds >= 5
    with single_thread():
        cp_metrics, cp_first = cp_rank1(cp, ctx)
        plot_cp(ctx, cp_first)
        metrics, keep = benchmark(st, ctx)
        if keep:
            plot_factors(ctx, keep["result"])
        sparse = dataclasses.replace(st, n_obs=cfg.sparse_n_obs, seeds=cfg.sparse_seeds, ranks=(2,), ablation=False,
                                     baseline_seeds=0, tensorly_seeds=0, gp_seeds=0)
        sparse_metrics, _ = benchmark(sparse, ctx)
        prior = {n: well_specified_calibration(n, seeds, ctx, n_iter=30 if smoke else 100, gibbs=FunBaTGibbs())[0]
                 for n, seeds in ((1000, cfg.prior_seeds_1000), (8000, cfg.prior_seeds_8000)) if seeds > 0}
        prior_fixed = well_specified_calibration(1000, cfg.prior_fixed_seeds, ctx, n_iter=30 if smoke else 100,
                                                 learn=False, gibbs=FunBaTGibbs(), truth_start=True)[0] \
            if cfg.prior_fixed_seeds > 0 else {}
        real = realdata_table(RealConfig(seeds=cfg.real_seeds, gp_max_train=cfg.gp_max_train, gp_iter=cfg.gp_iter,
                                         gp_hyper_train=cfg.gp_hyper_train,
                                         keep_fraction=0.3 if smoke else 1.0, n_iter=20 if smoke else 100), ctx)
    parity = authors_parity(epochs=100)   # the authors' 100 epochs at every scale (about 10 s in all)
    for key in ("authors_code", "ours_authors_settings", "ours_default"):
        out[f"parity/cp_r1/{key}"] = Measured(parity[key.replace("_code", "")])
    out["parity/cp_r1/ours_over_authors_single_prior"] = Measured(
        parity["ours_authors_settings"] / parity["authors_single_prior"],
        f"their arithmetic without the double prior: {parity['authors_single_prior']:.5f}")
    seeds_note = f"{cp.seeds} seeds, ± {cp_metrics['rmse_std']:.1e}"
    out["synth/cp_r1/rmse"] = Measured(cp_metrics["rmse"], seeds_note)
    out["synth/cp_r1/mae"] = Measured(cp_metrics["mae"], seeds_note)
    for key in ("funbat_r2/rmse", "funbat_r2/rmse_truth", "funbat_r3/rmse", "funbat_r3/rmse_truth",
                "funbat_r2/coverage95", "tucker_als/rmse_truth", "tensorly_tucker/rmse_truth",
                "ptucker/rmse_truth", "gp/rmse_truth"):
        if key in metrics:
            n = int(metrics[key.split("/")[0] + "/n_seeds"])
            out[f"st/{key}"] = Measured(metrics[key], f"{scaled}; ± {metrics[key + '_std']:.4f} over {n} seed(s)",
                                        paper_setting=None if full_st else False)
    if "ablation_l0/rmse" in metrics:
        out["st/ablation_ratio"] = Measured(metrics["ablation_l0/rmse"] / metrics["funbat_r2/rmse"], scaled)
        out["st/ablation_ratio_truth"] = Measured(
            metrics["ablation_l0/rmse_truth"] / metrics["funbat_r2/rmse_truth"],
            f"{scaled}; RMSE vs truth: ablation {metrics['ablation_l0/rmse_truth']:.4f} (its best seed "
            f"{metrics['ablation_l0/rmse_truth_min']:.4f}), FunBaT {metrics['funbat_r2/rmse_truth']:.4f}")
    if "gp/rmse_truth" in metrics:
        out["st/funbat_r2/gp_ratio"] = Measured(metrics["funbat_r2/seed0_rmse_truth"] / metrics["gp/rmse_truth"],
                                                "both on seed 0")
    for n, m, seeds in ((cfg.sparse_n_obs, sparse_metrics, sparse.seeds), (st.n_obs, metrics, st.seeds)):
        if n not in (1000, 8000):
            continue
        for kind, key in (("noisy", "coverage95"), ("latent", "coverage95_latent"),
                          ("extrap_latent", "coverage95_extrap_latent"), ("extrap_noisy", "coverage95_extrap_noisy")):
            out[f"cov/N{n}/{kind}"] = Measured(m[f"funbat_r2/{key}"], f"{seeds} seed(s), ± "
                                               f"{m[f'funbat_r2/{key}_std']:.3f}",
                                               paper_setting=None if seeds >= 3 else False)
            if kind != "extrap_noisy":
                out[f"cov_gibbs/N{n}/{kind}"] = Measured(
                    m[f"funbat_r2/gibbs_{key}"], f"{seeds} seed(s), ± {m[f'funbat_r2/gibbs_{key}_std']:.3f}; "
                    f"sampler converged (ESS, R̂) {m['funbat_r2/gibbs_converged']:.2f}",
                    paper_setting=None if seeds >= 3 else False)
        out[f"cov/N{n}/plateaued_restarts"] = Measured(
            m["funbat_r2/plateaued_restarts"], f"{seeds} seed(s); time mode: learned ℓ "
            f"{m['funbat_r2/lengthscale_time']:.2f}, σ² {m['funbat_r2/variance_time']:.1f} (seed means)")
    def over_draws(m: dict[str, float], key: str, extra: str = "") -> Measured:
        seeds = int(m["well_specified/n_seeds"])
        return Measured(m[f"well_specified/{key}"], f"{seeds} prior draw(s), standard error "
                        f"{m[f'well_specified/{key}_se']:.3f} (sd over draws {m[f'well_specified/{key}_std']:.3f}), "
                        f"worst draw {m[f'well_specified/{key}_min']:.3f}" + extra,
                        paper_setting=None if seeds >= 3 else False)

    for n, m in prior.items():
        for kind in ("noisy", "latent", "extrap_latent"):
            out[f"cov_prior/N{n}/{kind}"] = over_draws(m, kind, f"; converged {m['well_specified/converged']:.2f}")
            out[f"cov_prior_gibbs/N{n}/{kind}"] = over_draws(
                m, f"gibbs_{kind}", f"; sampler converged (ESS, R̂) {m['well_specified/gibbs_converged']:.2f}")
    if prior_fixed:
        for kind in ("latent", "extrap_latent"):
            for prefix, key in (("cov_prior_fixed", kind), ("cov_prior_fixed_gibbs", f"gibbs_{kind}"),
                                ("cov_prior_fixed_truth", f"truth_{kind}")):
                out[f"{prefix}/N1000/{kind}"] = over_draws(prior_fixed, key)
    for city in CITIES:
        n = int(real[f"{city}/funbat/n_seeds"])
        for method in ("funbat", "ablation_l0", "tensorly_tucker", "tensorly_cp", "gp", "train_mean"):
            for metric in ("rmse", "mae"):
                key = f"{city}/{method}/{metric}"
                out[f"real/{key}"] = Measured(real[key], f"± {real[key + '_std']:.3f} over {n} seed(s)")
        out[f"real/{city}/ablation_ratio"] = Measured(real[f"{city}/ablation_l0/rmse"] / real[f"{city}/funbat/rmse"],
                                                      f"{n} seed(s)")
    ctx.log("oracle (true f) test RMSE: " + f"{metrics['oracle/rmse']:.4f}")
    return out
