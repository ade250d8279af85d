"""Sagun, Evci, Güney, Dauphin, Bottou, "Empirical Analysis of the Hessian of Over-Parametrized Neural Networks"
(arXiv 1706.04454, ICLR-W 2018).

The paper's results are figures, not tables: its abstract (re-read) claims (i) the spectrum = a bulk near zero
+ outliers, (ii) adding parameters scales the bulk, changing the data (clusters/classes) moves the outliers, and
(iii) small- and large-batch solutions that look like different basins are connected through the flat region.
There is no numeric anchor in the paper, so the bands below are the spec's CPU-scale targets (curvature.md B.1,
"[measured here]" by the spec author on the same setting): C-1 outliers for softmax nets (C accepted, after Papyan
2019), ~0.70 of tr(G) in the top C-1, a more singular bulk with width, and no barrier on the LB->SB line.
"""

from __future__ import annotations

import dataclasses
import math

from experiments import curvature_sagun_spectrum as sagun
from sciml.runner import Measured, Paper, ReproductionConfig, Row, RunContext, reproduction

PAPER = Paper(key="hessian_overparam", title="Empirical Analysis of the Hessian of Over-Parametrized Neural Networks",
              arxiv="1706.04454", venue="ICLR Workshop 2018")

_DIGITS = "digits classes {0..C-1}, first 80C samples, 64-12-C tanh, float64, exact G"
_FIG = "figures only (no numbers); claim re-read in the abstract"


@dataclasses.dataclass(frozen=True)
class SagunReproConfig(ReproductionConfig):
    exp: sagun.Config = sagun.Config()

    @classmethod
    def preset(cls, scale: str) -> "SagunReproConfig":
        if scale == "smoke":
            return cls(scale=scale, exp=sagun.Config(**sagun.SMOKE))
        if scale == "full":
            return cls(scale=scale, exp=sagun.Config(classes=tuple(range(2, 11)), seeds=(0, 1, 2), widths=(4, 8, 16, 24)))
        return cls(scale=scale)


ROWS = (
    *(Row(f"outliers/C{C}/init_gap_in_Cm1_C", "abstract + spec B.1 (Papyan 2019 count)",
          "outlier count tracks the number of classes/clusters (figures)",
          "fraction of seeds with largest log-gap of G at C-1 or C (init)", None, _DIGITS + ", seeds 0,1",
          expect=(1.0, 1.0), note="spec [measured here]: gap at C-1 for C = 2,4,6,8 in both seeds" if C % 2 == 0
          else "odd C not measured by the spec; same acceptance")
      for C in range(2, 9)),
    Row("outliers/trained_gap_within2", "spec B.1", "-", "fraction of (C, seed) with trained gap within C-1 +- 2",
        None, _DIGITS + ", 200 SGD steps (lr .05, mom .9, wd 1e-3)", expect=(1.0, 1.0),
        note="spec: after training gap at C-1 (+-1-2)"),
    Row("outliers/trained_gap_eq_Cm1", "spec B.1", "-", "fraction of (C, seed) with trained gap exactly C-1", None,
        _DIGITS + ", trained", expect=None, note="context: training blurs the gap (spec: +-1-2)"),
    Row("share/trained_topCm1_mean", "spec B.1", "-", "share of tr(G) in the top C-1 eigenvalues, mean over C, seeds",
        None, _DIGITS + ", trained", expect=(0.6, 0.8), note="spec [measured here] ~0.70 for every C (band +-0.1)"),
    Row("share/init_topCm1_mean", "spec B.1", "-", "same, at init", None, _DIGITS + ", init", expect=(0.6, 0.8),
        note="spec ~0.70"),
    Row("ratio/trained_min", "spec B.1", "-", "min over (C, seed) of lambda_{C-1}/lambda_C, trained", None,
        _DIGITS + ", trained", expect=(1.2, 6.0), note="spec: 1.2-6 (larger for small C)"),
    Row("ratio/trained_max", "spec B.1", "-", "max over (C, seed) of lambda_{C-1}/lambda_C, trained", None,
        _DIGITS + ", trained", expect=(1.2, 6.0), note="spec: 1.2-6"),
    Row("width/frac_small_increase", "abstract (conjecture: more parameters scale the bulk)", _FIG,
        "frac(abs(lambda_H) < 1e-4) at h=16 minus at h=8", None, "600 digits, 64-h-10 tanh, 300 steps, wd 1e-3",
        expect=(0.0, 1.0), note="spec [measured here]: 0.26 -> 0.34"),
    Row("width/h8_frac_small", "spec B.1", "-", "frac(abs(lambda_H) < 1e-4), h=8 (P=610)", None, "as above",
        expect=None, note="spec 0.26"),
    Row("width/h16_frac_small", "spec B.1", "-", "frac(abs(lambda_H) < 1e-4), h=16 (P=1210)", None, "as above",
        expect=None, note="spec 0.34"),
    Row("width/negatives_ratio", "spec B.1", "-", "#negative eigenvalues of H, h=16 over h=8", None, "as above",
        expect=(1.0, math.inf), note="spec: 55 -> 179 (R adds small negative eigenvalues with width)"),
    Row("width/h16_top_H_over_G", "spec B.1", "-", "lambda_max(H) / lambda_max(G), h=16", None, "as above",
        expect=(0.75, 1.25), note="spec: outliers live in G, top eigenvalues of H and G within ~25 %"),
    Row("lbsb/barrier_ratio", "abstract (LB and SB solutions in the same basin)", _FIG,
        "max_{a in [0,1]} L((1-a) w_LB + a w_SB) / max(L(w_LB), L(w_SB))", None,
        "all digits, 64-64-10 tanh, GD 1500 steps lr .5 -> w_LB; 20 epochs SGD b16 lr .1 -> w_SB", expect=(0.0, 1.02),
        note="spec acceptance <= 1.02"),
    Row("lbsb/lb_loss", "spec B.1", "-", "L(w_LB)", None, "as above", expect=None, note="spec 0.0162"),
    Row("lbsb/sb_loss", "spec B.1", "-", "L(w_SB)", None, "as above", expect=None, note="spec 0.0111"),
    Row("lbsb/distance", "spec B.1", "-", "norm(w_SB - w_LB)", None, "as above", expect=None, note="spec 1.12"),
)


@reproduction(PAPER, rows=ROWS, config=SagunReproConfig,
              summary="Sagun et al.: C-1 GGN outliers on digits subsets, share of tr(G), width sweep, LB->SB line")
def reproduce(cfg: SagunReproConfig, ctx: RunContext) -> dict[str, Measured]:
    e = cfg.exp
    m = sagun.run(e, ctx)
    spec_setting = e.seeds == (0, 1) and e.per_class == 80 and e.hidden == 12 and e.steps == 200
    out: dict[str, Measured] = {}
    for C in e.classes:
        if C > 8:
            continue
        gaps = [m[f"C{C}_s{s}_init_gap"] for s in e.seeds]
        out[f"outliers/C{C}/init_gap_in_Cm1_C"] = Measured(
            sum(g in (C - 1, C) for g in gaps) / len(gaps), f"gaps per seed {[int(g) for g in gaps]}",
            paper_setting=spec_setting or None)
    out["outliers/trained_gap_within2"] = Measured(m["trained_frac_gap_within2_of_Cm1"])
    out["outliers/trained_gap_eq_Cm1"] = Measured(m["trained_frac_gap_eq_Cm1"])
    out["share/trained_topCm1_mean"] = Measured(m["trained_share_top_Cm1_mean"],
                                                f"range {m['trained_share_top_Cm1_min']:.3f}-{m['trained_share_top_Cm1_max']:.3f}")
    out["share/init_topCm1_mean"] = Measured(m["init_share_top_Cm1_mean"],
                                             f"range {m['init_share_top_Cm1_min']:.3f}-{m['init_share_top_Cm1_max']:.3f}")
    out["ratio/trained_min"] = Measured(m["trained_ratio_min"])
    out["ratio/trained_max"] = Measured(m["trained_ratio_max"])
    if {8, 16} <= set(e.widths):
        out["width/frac_small_increase"] = Measured(m["width16_frac_abs_below_1e-4"] - m["width8_frac_abs_below_1e-4"])
        out["width/h8_frac_small"] = Measured(m["width8_frac_abs_below_1e-4"], f"median abs(lambda) {m['width8_median_abs']:.2e}")
        out["width/h16_frac_small"] = Measured(m["width16_frac_abs_below_1e-4"], f"median abs(lambda) {m['width16_median_abs']:.2e}")
        out["width/negatives_ratio"] = Measured(m["width16_num_negative"] / m["width8_num_negative"],
                                                f"{int(m['width8_num_negative'])} -> {int(m['width16_num_negative'])}")
        out["width/h16_top_H_over_G"] = Measured(m["width16_top_H_over_G"])
    if e.lbsb:
        scaled = e.lb_hidden != 64 or e.lb_steps != 1500 or e.sb_epochs != 20
        out["lbsb/barrier_ratio"] = Measured(m["barrier_ratio"], f"line ends {m['line_loss_at_-0.5']:.4f} (a=-0.5), "
                                             f"{m['line_loss_at_1.5']:.4f} (a=1.5)", paper_setting=False if scaled else None)
        out["lbsb/lb_loss"] = Measured(m["lb_loss"])
        out["lbsb/sb_loss"] = Measured(m["sb_loss"])
        out["lbsb/distance"] = Measured(m["lb_sb_distance"])
    return out
