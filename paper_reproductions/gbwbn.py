"""GBWBN (Wang et al., CVPR 2025, arXiv 2504.00660): Riemannian batch norm under generalised Bures-Wasserstein
geometry. The paper's MAMEM-SSVEP-II / HDM05 tables could not be retrieved (only the abstract was readable, spec
§4.5) and their data are not bundled: those rows are paper-only. What runs here: the geometry against pyriemann and
closed forms, the batch norm's defining property (barycentre I, unit dispersion), and the spec's CPU-scale SPDNet
on digits region covariances (§4.6) with no batch norm (the trivial baseline) and the AIRM batch norm (the
"existing RBN" the paper compares with) beside the BW / GBW variants, >= 5 seeds.
"""

from __future__ import annotations

import dataclasses

import torch

from experiments.ot_gbwbn_digits import VARIANTS
from experiments.ot_gbwbn_digits import Config as DigitsConfig
from experiments.ot_gbwbn_digits import run as run_digits
from sciml.runner import Measured, Paper, ReproductionConfig, Row, RunContext, reproduction

PAPER = Paper(key="gbwbn", title="Learning to Normalize on the SPD Manifold under Bures-Wasserstein Geometry",
              arxiv="2504.00660")

_DIGITS = ("SPDNet BiMap 7->6, [BN], ReEig 1e-4, LogEig, Linear 36->10 on 7x7 region covariances of sklearn digits "
           "(1257/540 split), Adam 5e-3 + BW Riemannian SGD 5e-3, batch 30, float64, eval-mode test accuracy; "
           "30 epochs (spec; default run 15), 5 seeds")
_GEOM = "random SPD matrices, float64"
_DEFAULT_VARIANTS = ("no_bn", "airm_bn", "bw_isometry_code", "bw_otmap_t0.5", "gbw_learnM_t0.5",
                     "gbw_learnM_bw_t0.5")
_SPEC_48 = {"no_bn": 0.556, "bw_isometry_t0.5": 0.675, "bw_otmap_t0.5": 0.812}

ROWS = (
    Row("mamem/gbwbn/test_acc", "paper tables (not retrieved)", "MAMEM-SSVEP-II, SPDNet backbone, 11 subjects",
        "mean test accuracy (%)", None, "-", note="data not bundled; copy the table from the PDF before quoting"),
    Row("hdm05/gbwbn/test_acc", "paper tables (not retrieved)", "HDM05, RResNet backbone, theta = 0.5",
        "test accuracy (%)", None, "-", note="data not bundled (external download in the authors' code)"),
    Row("geometry/distance_vs_pyriemann", "spec §4.2", _GEOM, "max |d_BW - pyriemann distance_wasserstein| / d", None,
        _GEOM, expect=(0.0, 1e-12), note="independent peer; skipped without pyriemann"),
    Row("geometry/barycenter_vs_pyriemann", "spec §4.2", _GEOM + ", N = 30, n = 6, cond 1e3",
        "max |G - pyriemann mean_wasserstein| / max |G|", None, _GEOM, expect=(0.0, 1e-8)),
    Row("geometry/exp_log_identity", "spec §4.2", _GEOM, "max |Exp_G(Log_G X) - X| / max |X|", None, _GEOM,
        expect=(0.0, 1e-11)),
    Row("bn/barycenter_is_identity", "spec §4.6 ground truth 5", "BN in training mode, var_about='mean', converged "
        "barycentre, shift 1, bias I", "max |barycentre(output) - I| (both centerings)", None, _GEOM,
        expect=(0.0, 1e-7)),
    Row("bn/unit_dispersion", "spec §4.6 ground truth 5", "as above", "max |mean d^2(output, I) - 1|", None, _GEOM,
        expect=(0.0, 1e-6)),
    Row("digits/best_bn_minus_no_bn", "spec §4.6 acceptance", _DIGITS,
        "best BN variant mean accuracy minus no-BN mean", None, _DIGITS, expect=(0.0, 1.0),
        note="the spec's statistical criterion: best BN >= no BN"),
    Row("digits/gbw_minus_airm", "paper's claim (abstract)", _DIGITS, "GBW-BN (learned M = expm(S)) minus AIRM-BN mean "
        "accuracy",
        None, _DIGITS, expect=(0.0, 1.0), note="the paper claims BW/GBW beat the existing (AIRM) RBN on "
        "ill-conditioned data; a negative value fails the claim at this scale"),
) + tuple(
    Row(f"digits/{v}/test_acc", "spec §4.8 [V]" if v in _SPEC_48 else "ours", _DIGITS, f"{v} mean test accuracy",
        None, _DIGITS, note=(f"spec prototype {_SPEC_48[v]:.3f} (3 seeds)" if v in _SPEC_48 else "no spec value"))
    for v in VARIANTS
) + tuple(
    Row(f"digits/{v}/collapsed_runs", "spec §4.8", _DIGITS, f"{v}: runs with accuracy < 0.3", None, _DIGITS,
        note="the spec saw 1 of 3 no-BN runs collapse (16%)") for v in VARIANTS
)


@dataclasses.dataclass(frozen=True)
class GBWBNReproConfig(ReproductionConfig):
    seeds: int = 5
    epochs: int = 15                # the spec's 30 under --full (about 2x the time)
    all_variants: bool = False      # --full adds the isometry/OT-map learned-M and variance-about-G variants

    @classmethod
    def preset(cls, scale: str) -> "GBWBNReproConfig":
        if scale == "smoke":
            return cls(scale=scale, seeds=1, epochs=1)
        return cls(scale=scale, epochs=30, all_variants=True) if scale == "full" else cls(scale=scale)


def _geometry_checks() -> dict[str, Measured]:
    from sciml.ot.bures import bw_barycenter, bw_distance, bw_exp, bw_log
    from sciml.ot.gbwbn import GBWBatchNorm

    g = torch.Generator().manual_seed(0)

    def spd(n, cond, batch=()):
        Q, _ = torch.linalg.qr(torch.randn(*batch, n, n, generator=g, dtype=torch.float64))
        return (Q * torch.logspace(0, torch.log10(torch.tensor(cond)).item(), n, dtype=torch.float64)) @ Q.mT

    out: dict[str, Measured] = {}
    X = spd(6, 1e3, (30,))
    try:
        from pyriemann.utils.distance import distance_wasserstein
        from pyriemann.utils.mean import mean_wasserstein

        d = bw_distance(X[:-1], X[1:])
        ref = torch.tensor([distance_wasserstein(a.numpy(), b.numpy()) for a, b in zip(X[:-1], X[1:])])
        out["geometry/distance_vs_pyriemann"] = Measured(float(((d - ref.double()).abs() / ref.double()).max()))
        G = bw_barycenter(X, tol=1e-12).mean
        Gp = torch.from_numpy(mean_wasserstein(X.numpy(), tol=1e-12, maxiter=1000))
        out["geometry/barycenter_vs_pyriemann"] = Measured(float((G - Gp).abs().max() / Gp.abs().max()))
    except ImportError:
        pass
    G, Y = spd(6, 1e2), spd(6, 1e2, (10,))
    out["geometry/exp_log_identity"] = Measured(float(((bw_exp(G, bw_log(G, Y)) - Y).abs().amax() / Y.abs().max())))
    # A batch inside the region where Exp_I inverts Log_I for every sample (no folding; spec §4.7 pitfall 4),
    # which is where the property holds exactly. After normalising to unit dispersion the tangent vectors have
    # sum(lambda^2) ~ 4 (g_I = tr V^2 / 4), so a sample folds when some eigenvalue passes -2: common for n <= 6
    # (we measured 3-19% of a 16-32 batch), absent at n = 8, N = 32.
    n = 8
    g.manual_seed(0)  # the measured no-fold batch (checked below, never assumed)
    E = torch.randn(32, n, n, generator=g, dtype=torch.float64)
    T = torch.eye(n, dtype=torch.float64) + 0.1 * (E + E.mT) / 2
    C = spd(n, 5.0)
    batch = C @ (T @ T) @ C
    eye = torch.eye(n, dtype=torch.float64)
    bary, disp = 0.0, 0.0
    for centering in ("isometry", "ot_map"):
        bn = GBWBatchNorm(n, metric="identity", centering=centering, var_about="mean", barycenter_iters=200,
                          eps=1e-12)
        Z = bn(batch)
        if bn.last_fold_fraction > 0:
            raise RuntimeError(f"the ground-truth batch folds under {centering} centring; use a tighter batch")
        bary = max(bary, float((bw_barycenter(Z, tol=1e-10).mean - eye).abs().max()))
        disp = max(disp, abs(float(bw_distance(Z, eye, squared=True).mean()) - 1))
    out["bn/barycenter_is_identity"] = Measured(bary)
    out["bn/unit_dispersion"] = Measured(disp)
    return out


def _metric_range(m: dict[str, float], variant: str) -> str:
    """Extreme eigenvalues of a learned M over every step of every seed (empty for a fixed metric)."""
    if f"{variant}/metric_eig_min" not in m:
        return ""
    return f", eig(M) in [{m[f'{variant}/metric_eig_min']:.3g}, {m[f'{variant}/metric_eig_max']:.3g}]"


@reproduction(PAPER, rows=ROWS, config=GBWBNReproConfig,
              summary="BW geometry vs pyriemann, the BN's defining property, SPDNet + BW/GBW/AIRM batch norms on "
                      "digits")
def reproduce(cfg: GBWBNReproConfig, ctx: RunContext) -> dict[str, Measured]:
    out = _geometry_checks()
    smoke = cfg.scale == "smoke"
    variants = tuple(VARIANTS) if cfg.all_variants else _DEFAULT_VARIANTS
    digits = DigitsConfig(seeds=tuple(range(cfg.seeds)), epochs=cfg.epochs, smoke=smoke,
                          variants=("no_bn", "bw_otmap_t0.5") if smoke else variants)
    m = run_digits(digits, ctx)
    ran = [v for v in digits.variants if f"{v}/test_acc_mean" in m]
    scaled = cfg.seeds < 5 or cfg.epochs < 30
    ctx.log(f"digits: {cfg.seeds} seeds x {cfg.epochs} epochs" + (" (scaled from the spec's 30)" if scaled else ""))
    for v in ran:
        fold = m.get(f"{v}/fold_fraction_mean", float("nan"))
        out[f"digits/{v}/test_acc"] = Measured(m[f"{v}/test_acc_mean"], f"sd {m[f'{v}/test_acc_std']:.3f}, min "
                                               f"{m[f'{v}/test_acc_min']:.3f} over {cfg.seeds} seeds, fold fraction "
                                               f"{fold:.3f}" + _metric_range(m, v), paper_setting=not scaled)
        out[f"digits/{v}/collapsed_runs"] = Measured(m[f"{v}/collapsed_runs"],
                                                      f"{m[f'{v}/diverged_runs']:.0f} diverged (counted at chance)")
    bn_means = [m[f"{v}/test_acc_mean"] for v in ran if v != "no_bn"]
    if bn_means and "no_bn/test_acc_mean" in m:
        out["digits/best_bn_minus_no_bn"] = Measured(max(bn_means) - m["no_bn/test_acc_mean"], paper_setting=False)
    if "gbw_learnM_t0.5/test_acc_mean" in m and "airm_bn/test_acc_mean" in m:
        out["digits/gbw_minus_airm"] = Measured(m["gbw_learnM_t0.5/test_acc_mean"] - m["airm_bn/test_acc_mean"],
                                                paper_setting=False)
    return out
