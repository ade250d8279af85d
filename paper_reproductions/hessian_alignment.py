"""Hessian alignment for domain generalisation (Hemati, Zhang, Estiri, Chen, ICCV 2023, arXiv 2308.11778):
the spec's CPU-scale Colored-Digits benchmark (spec B.4) with ERM, HGP, Hutchinson and the grayscale oracle.

The paper's Colored-MNIST and DomainBed tables could not be read here (the spec's CMNIST values are marked
[recalled]); their rows say so and carry no number. CPU bands: the issue's acceptance (HGP >= ERM + 0.2 test
accuracy, mean of >= 3 seeds) and the protocol's ceilings (ERM must fall for the spurious colour: test < 0.5;
nothing can beat the 0.75 label-noise ceiling).
"""

from __future__ import annotations

import dataclasses

from experiments.dg_colored_digits import Config as StudyConfig
from experiments.dg_colored_digits import colored_digits_study, hutchinson_key
from sciml.runner import Measured, Paper, ReproductionConfig, Row, RunContext, reproduction

PAPER = Paper(key="hessian_alignment", title="Understanding Hessian Alignment for Domain Generalization",
              arxiv="2308.11778", venue="ICCV 2023")

_CPU = ("Colored Digits (spec B.4): envs e = 0.2, 0.1 (600 images each), test e = 0.9, 25% label noise; MLP "
        "128-64-64-1 ReLU, full-batch Adam 1e-3, L2 1e-3, 501 steps, penalty on at step 100 (weight 1e5 for HGP; "
        "Hutchinson with 20 probes at weights 1e1, 1e2, 1e3), loss divided by the weight after; mean over seeds")
_SAME = "the spec's setting (left)"
HUTCHINSON_WEIGHTS = (1e1, 1e2, 1e3)
_UNREAD = ("paper table not readable offline; the spec's value is [recalled]: HGP/Hutchinson ~69-70 % test "
           "(Fishr protocol)")

ROWS = (
    Row("cmnist/hgp/test", "CMNIST table", "Colored MNIST, Fishr protocol, 10 restarts", "test accuracy (%)", None,
        "-", note=_UNREAD),
    Row("domainbed/average", "DomainBed tables", "PACS, VLCS, OfficeHome, TerraInc, DomainNet", "average accuracy",
        None, "-", note="paper-scale data not available offline; the spec has no per-dataset number"),
    Row("digits/erm/test_acc", "spec B.4", _CPU, "ERM test accuracy", None, _SAME, expect=(0.0, 0.5),
        note="spec prototype 0.285 (h=128) / 0.21 (h=64, 200 steps); must fall for the colour"),
    Row("digits/hgp/test_acc", "spec B.4", _CPU, "HGP test accuracy", None, _SAME, expect=(0.0, 0.75),
        note="spec prototype 0.59 +- 0.08 (h=64, weight 1e5); 0.75 is the label-noise ceiling"),
    Row("digits/hgp_minus_erm", "spec B.4", _CPU, "HGP minus ERM test accuracy", None, _SAME, expect=(0.2, 1.0),
        note="issue acceptance: >= 0.2 averaged over >= 3 seeds"),
    Row("digits/oracle/test_acc", "spec B.4", _CPU, "grayscale oracle (colour removed, ERM) test accuracy", None,
        _SAME, expect=(0.5, 0.75), note="spec prototype 0.63"),
) + tuple(
    Row(f"digits/{hutchinson_key(w)}/{what}", "spec B.4", _CPU, f"Hutchinson (weight {w:g}) {label}", None, _SAME,
        note="spec: collapses (test 0.50) at the HGP weight 1e4; the sweep 1e1-1e3 the spec asks for, no band")
    for w in HUTCHINSON_WEIGHTS for what, label in (("test_acc", "test accuracy"),
                                                    ("minus_erm", "minus ERM test accuracy"))
)


@dataclasses.dataclass(frozen=True)
class AlignmentReproConfig(ReproductionConfig):
    seeds: int = 3
    hidden: int = 64
    hgp_weight: float = 1e5
    hutchinson_weights: tuple[float, ...] = HUTCHINSON_WEIGHTS   # the rows name these three weights

    @classmethod
    def preset(cls, scale: str) -> "AlignmentReproConfig":
        return cls(scale=scale, seeds=1) if scale == "smoke" else cls(scale=scale)


@reproduction(PAPER, rows=ROWS, config=AlignmentReproConfig,
              summary="Hessian alignment (HGP, Hutchinson) vs ERM and a grayscale oracle on Colored Digits")
def reproduce(cfg: AlignmentReproConfig, ctx: RunContext) -> dict[str, Measured]:
    m = colored_digits_study(StudyConfig(seeds=cfg.seeds, hidden=cfg.hidden, hgp_weight=cfg.hgp_weight,
                                         hutchinson_weights=cfg.hutchinson_weights, smoke=cfg.scale == "smoke"), ctx)
    few = cfg.seeds < 3
    out = {}
    hutchinson = tuple(hutchinson_key(w) for w in cfg.hutchinson_weights)
    for method in ("erm", "hgp", "oracle") + hutchinson:
        note = f"train {m[f'{method}/train_acc']:.3f}, test sd {m[f'{method}/test_acc_sd']:.3f} over {cfg.seeds} seeds"
        out[f"digits/{method}/test_acc"] = Measured(m[f"{method}/test_acc"], note, paper_setting=not few)
    out["digits/hgp_minus_erm"] = Measured(m["hgp_minus_erm"], paper_setting=not few)
    for method in hutchinson:
        out[f"digits/{method}/minus_erm"] = Measured(m[f"{method}_minus_erm"], paper_setting=not few)
    return out
