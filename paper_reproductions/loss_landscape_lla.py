"""Gabdullin, "Investigating generalization capabilities of neural networks by means of loss landscapes and Hessian
analysis" (arXiv 2412.10146; library LLA, GabdullinN/loss-landscape-analysis).

Re-read (abstract): conventional (random, normalised) plane axes can render BatchNorm networks wrongly, Hessian
axes mitigate it; typical Hessian eigenvalue spectral densities (HESD) exist across many networks; HESD criteria
change with the evaluation dataset and those changes correlate with accuracy changes. The paper's ImageNet-1K
numbers were not retrievable (spec: [recalled]) and need the pre-trained models: paper-only. The CPU rows use the
spec's digits setting (curvature.md B.5) and report what Kh0.5 depends on: Lanczos length m, number of SLQ runs n_v
and the reorthogonalisation (full / LLA's partial last-10 / none).

LLA's released code on current NumPy (read from the repository, commit ac22f35): ``hessian_calc.tr_calc``
(src/src_lla/hessian/hessian.py) starts with ``prev_trace = np.zeros(0)`` and tests ``if done:`` where ``done`` is
``abs(mean - prev_trace) / (abs(prev_trace) + c) < tol`` -- an EMPTY boolean array on the first probe; NumPy >= 2.2
raises ``ValueError: The truth value of an empty array is ambiguous`` (NumPy 1.22, pinned in its requirements.txt,
only warned), so its Hutchinson trace (``viz_esd(trace=True)``) fails. Also: ``esd_calc`` keeps only the last
``max_v`` = 10 Lanczos vectors (ghost copies of lambda_max, counted below) and builds T in float32
(``torch.zeros(n_iter, n_iter)``) whatever the model's dtype.
"""

from __future__ import annotations

import dataclasses
import math

from experiments import curvature_lla_landscape as lla
from sciml.runner import Measured, Paper, ReproductionConfig, Row, RunContext, reproduction

PAPER = Paper(key="loss_landscape_lla", title="Investigating generalization capabilities of neural networks by means "
              "of loss landscapes and Hessian analysis", arxiv="2412.10146", venue="arXiv 2024")

_NET = "digits[0:800], 64-16-10 tanh (P=1210), float64; trained = 300 full-batch SGD steps"
_SHIFT = "trained net, exact H + SLQ (m=100, n_v=3, full reorth.) on 800 shifted samples"
_BN = "Conv(1->8,3)-BN-ReLU-Linear, 256 digits, train-mode BN, conv weight+bias x10, 5x5 plane, same seed"


@dataclasses.dataclass(frozen=True)
class LLAReproConfig(ReproductionConfig):
    exp: lla.Config = lla.Config()

    @classmethod
    def preset(cls, scale: str) -> "LLAReproConfig":
        if scale == "smoke":
            return cls(scale=scale, exp=lla.Config(**lla.SMOKE))
        if scale == "full":
            return cls(scale=scale, exp=lla.Config(n_v=10, shift_n_v=10))
        return cls(scale=scale)


ROWS = (
    Row("crit/init/re", "spec B.5", "-", "re = abs(theta_min/theta_max) (SLQ, m=max, n_v=5, full reorth.), init", None, _NET,
        expect=(0.2, 0.4), note="spec: exact 0.310, SLQ identical (re(init) ~ 0.3)"),
    Row("crit/trained/re", "spec B.5", "-", "re, trained", None, _NET, expect=(0.0, 0.01), note="spec 0.0037 (< 0.01)"),
    Row("crit/trained/re_exact", "spec B.5", "-", "re from the exact spectrum, trained", None, _NET, expect=None,
        note="spec 0.0037"),
    Row("crit/init/kh05_m100", "spec B.5", "-", "Kh0.5, m=100, n_v=5, full reorth., init", None, _NET, expect=None,
        note="spec 0.82"),
    Row("crit/trained/kh05_m100", "spec B.5", "-", "Kh0.5, m=100, n_v=5, full reorth., trained", None, _NET, expect=None,
        note="spec 0.087"),
    Row("crit/trained/kh05_m30", "spec B.5", "-", "Kh0.5, m=30, n_v=5, full reorth., trained", None, _NET, expect=None,
        note="spec 0.044: Kh0.5 depends on m"),
    Row("crit/trained/kh05_m100_partial", "LLA esd_calc (max_v=10)", "-", "Kh0.5, m=100, LLA partial reorth., trained",
        None, _NET, expect=None, note="LLA's own setting"),
    Row("crit/trained/kh05_m100_none", "spec B.5", "-", "Kh0.5, m=100, no reorth., trained", None, _NET, expect=None,
        note="spec 0.070"),
    Row("crit/trained/ghosts_none", "spec A.3d", "-", "Ritz copies of lambda_max (rel. 1e-6), m=100, no reorth.", None,
        _NET, expect=None, note="spec: up to 7 (1 with full reorth.)"),
    Row("crit/trained/ghosts_full", "spec A.3d", "-", "Ritz copies of lambda_max, m=100, full reorth.", None, _NET,
        expect=(1.0, 1.0), note="exactly one with full reorthogonalisation"),
    Row("crit/kh05_drop", "abstract + spec B.5", "-", "Kh0.5(init) / Kh0.5(trained), m=100, n_v=5, full", None, _NET,
        expect=(5.0, 20.0), note="spec: drops ~10x (band: factor 2 either way)"),
    Row("shift/spearman_kh05_acc", "abstract (criteria changes correlate with accuracy changes)",
        "ImageNet-1K models; train on one dataset, test on another", "Spearman(Kh0.5, accuracy) over 5 evaluation sets",
        None, _SHIFT + "; sets: train, test, test+N(0,.3^2), test+N(0,.6^2), transposed", expect=(-1.0, -0.8),
        note="spec acceptance <= -0.8 (spec measured -1.0)"),
    Row("shift/spearman_re_acc", "spec B.5", "-", "Spearman(re, accuracy)", None, _SHIFT, expect=None, note="spec -0.9"),
    Row("shift/spearman_loss_acc", "baseline", "-", "Spearman(loss, accuracy) (needs labels)", None, _SHIFT,
        expect=None, note="trivial labelled baseline"),
    *(Row(f"shift/{name}/{q}", "spec B.5 table", "-", f"{q} on {name}", None, _SHIFT, expect=None, note=f"spec {v}")
      for name, vals in (("train", (0.993, 0.09)), ("test", (0.941, 0.30)), ("test_noise0.3", (0.821, 0.32)),
                         ("test_noise0.6", (0.552, 0.51)), ("test_transposed", (0.164, 1.43)))
      for q, v in zip(("acc", "kh05"), vals)),
    Row("bn/filter_eps1e-12", "Sec. on normalisation with BatchNorm (spec B.5)", "-",
        "max abs(plane(c=10) - plane(c=1)), filter normalisation, BN eps 1e-12", None, _BN, expect=(0.0, 1e-8),
        note="ground truth: equal (BN removes the scale)"),
    Row("bn/none_eps1e-12", "spec B.5", "-", "same, un-normalised directions", None, _BN, expect=(1.0, math.inf),
        note="spec: differs by up to 6.5"),
    Row("bn/filter_eps1e-5", "spec B.5", "-", "filter normalisation, default BN eps 1e-5", None, _BN, expect=None,
        note="spec 9e-5 (eps breaks exact invariance)"),
    Row("paper/imagenet_criteria", "paper tables", "ImageNet-1K pre-trained models", "re / Kh0.5 vs accuracy", None, "-",
        expect=None, note="needs the pre-trained models and ImageNet; numbers not re-read"),
)


@reproduction(PAPER, rows=ROWS, config=LLAReproConfig,
              summary="LLA: re / Kh0.5 fall with training and rise under distribution shift; BN-rescaling invariance")
def reproduce(cfg: LLAReproConfig, ctx: RunContext) -> dict[str, Measured]:
    e = cfg.exp
    m = lla.run(e, ctx)
    mm = max(e.m_values)
    setting = f"m={mm}, n_v={e.n_v}"
    out = {"crit/init/re": Measured(m[f"init_full_m{mm}_re"], f"exact {m['init_re_exact']:.4f}; {setting}"),
           "crit/trained/re": Measured(m[f"trained_full_m{mm}_re"], setting),
           "crit/trained/re_exact": Measured(m["trained_re_exact"],
                                             f"lambda_max {m['trained_lambda_max']:.4f}, lambda_min {m['trained_lambda_min']:.4f}"),
           "crit/kh05_drop": Measured(m["kh05_drop_factor"], setting),
           "shift/spearman_kh05_acc": Measured(m["spearman_kh05_acc"], f"m={e.shift_m}, n_v={e.shift_n_v}"),
           "shift/spearman_re_acc": Measured(m["spearman_re_acc"]),
           "shift/spearman_loss_acc": Measured(m["spearman_loss_acc"]),
           "bn/filter_eps1e-12": Measured(m[f"bn_eps{e.bn_eps:g}_filter_max_abs_diff"],
                                          f"plane max {m[f'bn_eps{e.bn_eps:g}_filter_plane_max']:.3f}"),
           "bn/none_eps1e-12": Measured(m[f"bn_eps{e.bn_eps:g}_none_max_abs_diff"],
                                        f"plane max {m[f'bn_eps{e.bn_eps:g}_none_plane_max']:.3f}"),
           "bn/filter_eps1e-5": Measured(m["bn_eps1e-05_filter_max_abs_diff"])}
    if 100 in e.m_values:
        out["crit/init/kh05_m100"] = Measured(m["init_full_m100_kh05"], f"n_v={e.n_v}")
        out["crit/trained/kh05_m100"] = Measured(m["trained_full_m100_kh05"], f"n_v={e.n_v}")
    if 30 in e.m_values:
        out["crit/trained/kh05_m30"] = Measured(m["trained_full_m30_kh05"], f"n_v={e.n_v}")
    if mm == 100:
        out["crit/trained/kh05_m100_partial"] = Measured(m["trained_partial_m100_kh05"], f"n_v={e.n_v}")
        out["crit/trained/kh05_m100_none"] = Measured(m["trained_none_m100_kh05"], f"n_v={e.n_v}")
        out["crit/trained/ghosts_none"] = Measured(m["trained_none_m100_ghosts"], f"partial: {m['trained_partial_m100_ghosts']:.0f}")
        out["crit/trained/ghosts_full"] = Measured(m["trained_full_m100_ghosts"])
    for name in ("train", "test", "test_noise0.3", "test_noise0.6", "test_transposed"):
        if f"shift_{name}_acc" in m:
            out[f"shift/{name}/acc"] = Measured(m[f"shift_{name}_acc"])
            out[f"shift/{name}/kh05"] = Measured(m[f"shift_{name}_kh05"], f"re {m[f'shift_{name}_re']:.3f}")
    return out
