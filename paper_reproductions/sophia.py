"""Sophia (Liu et al., ICLR 2024, arXiv 2305.14342): the paper's anchor (about half the steps of AdamW to the same
loss on GPT-2, paper scale) beside the spec's digits-MLP comparison (spec B.8) with sophia-opt's SophiaG as the
peer on identical runs."""

from __future__ import annotations

import dataclasses

from experiments.optim_common import Config as BenchConfig
from experiments.optim_common import digits_benchmark
from sciml.runner import Measured, Paper, ReproductionConfig, Row, RunContext, reproduction

PAPER = Paper(key="sophia", title="Sophia: A Scalable Stochastic Second-order Optimizer for Language Model "
              "Pre-training", arxiv="2305.14342", venue="ICLR 2024")

_CPU = "digits MLP 64-64-10 ReLU, batch 64, 20 epochs, 3 seeds; SophiaG lr 1e-3, rho 0.05, Hessian every 10 steps"
_SAME = "the spec's setting (left)"

ROWS = (
    Row("gpt2/steps_ratio_vs_adamw", "Abstract / Fig. 1", "GPT-2 125M-770M, OpenWebText, 100K AdamW steps",
        "steps to AdamW's final validation loss / AdamW's", 0.5, "-",
        note="paper scale (GPUs, OpenWebText); not runnable offline"),
    Row("digits/sophia_g/test_acc", "spec B.8", _CPU, "SophiaG test accuracy", None, _SAME, expect=(0.93, 1.0),
        note="spec prototype 0.955 (sophia-opt)"),
    Row("digits/sophia_g_minus_peer", "spec B.8", _CPU, "ours minus sophia-opt (identical runs)", None, _SAME,
        expect=(-1e-6, 1e-6), note="the code convention is the official arithmetic: equal up to rounding"),
    Row("digits/sophia_g_minus_adam", "baseline", _CPU, "SophiaG minus Adam test accuracy", None, _SAME,
        note="spec prototype +0.015"),
)


@dataclasses.dataclass(frozen=True)
class SophiaReproConfig(ReproductionConfig):
    seeds: int = 3
    epochs: int = 20

    @classmethod
    def preset(cls, scale: str) -> "SophiaReproConfig":
        return cls(scale=scale, seeds=1, epochs=1) if scale == "smoke" else cls(scale=scale)


@reproduction(PAPER, rows=ROWS, config=SophiaReproConfig,
              summary="SophiaG vs sophia-opt and Adam on a digits MLP; the paper's 2x-fewer-steps anchor")
def reproduce(cfg: SophiaReproConfig, ctx: RunContext) -> dict[str, Measured]:
    m = digits_benchmark(BenchConfig(optimizers=("adam", "sophia_g", "sophia_opt"), seeds=cfg.seeds,
                                     epochs=cfg.epochs, smoke=cfg.scale == "smoke"), ctx)
    return {"digits/sophia_g/test_acc": Measured(m["sophia_g/test_acc"], f"sd {m['sophia_g/test_acc_sd']:.3f}"),
            "digits/sophia_g_minus_peer": Measured(m["sophia_g/test_acc"] - m["sophia_opt/test_acc"]),
            "digits/sophia_g_minus_adam": Measured(m["sophia_g/test_acc"] - m["adam/test_acc"])}
