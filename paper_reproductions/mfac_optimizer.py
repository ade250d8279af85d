"""M-FAC as an optimizer (Frantar et al., NeurIPS 2021, arXiv 2107.03356): the released BERT model cards (paper
scale) beside a digits-MLP run (spec B.9 optimizer check) against Adam and SGD."""

from __future__ import annotations

import dataclasses

from experiments.optim_common import Config as BenchConfig
from experiments.optim_common import digits_benchmark
from sciml.runner import Measured, Paper, ReproductionConfig, Row, RunContext, reproduction

PAPER = Paper(key="mfac_optimizer", title="M-FAC: Efficient Matrix-Free Approximations of Second-Order "
              "Information (optimizer)", arxiv="2107.03356", venue="NeurIPS 2021")

_OFF = "Hugging Face model cards M-FAC/* (5 runs); GLUE/SQuAD fine-tuning not runnable offline"
_CPU = "digits MLP 64-64-10 ReLU, batch 64, 20 epochs, 3 seeds; M-FAC lr 1e-3, m = 64, damp 1e-4"
_SAME = "the spec's setting (left)"

ROWS = (
    Row("bert_mini/squad2/f1", "model card", "BERT-mini SQuAD v2, m = 1024, damp 1e-6", "F1 (Adam 58.13)", 61.35,
        "-", note=_OFF),
    Row("bert_tiny/qqp/acc", "model card", "BERT-tiny QQP", "accuracy (Adam 81.09)", 84.29, "-", note=_OFF),
    Row("bert_mini/sst2/acc", "model card", "BERT-mini SST-2", "accuracy (Adam 85.46): not better", 84.20, "-",
        note=_OFF),
    Row("digits/mfac/test_acc", "spec B.9", _CPU, "M-FAC test accuracy", None, _SAME, expect=(0.9, 1.0),
        note="no spec number; the band asks for a working optimizer on an easy task"),
    Row("digits/mfac_minus_adam", "baseline", _CPU, "M-FAC minus Adam test accuracy", None, _SAME),
    Row("digits/step_time_ratio_vs_adam", "issue 19", _CPU, "median wall time of a run / Adam's", None, _SAME),
)


@dataclasses.dataclass(frozen=True)
class MFACOptimReproConfig(ReproductionConfig):
    seeds: int = 3
    epochs: int = 20

    @classmethod
    def preset(cls, scale: str) -> "MFACOptimReproConfig":
        return cls(scale=scale, seeds=1, epochs=1) if scale == "smoke" else cls(scale=scale)


@reproduction(PAPER, rows=ROWS, config=MFACOptimReproConfig,
              summary="M-FAC optimizer vs Adam on a digits MLP; the released BERT model-card numbers")
def reproduce(cfg: MFACOptimReproConfig, ctx: RunContext) -> dict[str, Measured]:
    m = digits_benchmark(BenchConfig(optimizers=("adam", "mfac"), seeds=cfg.seeds, epochs=cfg.epochs,
                                     smoke=cfg.scale == "smoke"), ctx)
    return {"digits/mfac/test_acc": Measured(m["mfac/test_acc"], f"sd {m['mfac/test_acc_sd']:.3f}"),
            "digits/mfac_minus_adam": Measured(m["mfac/test_acc"] - m["adam/test_acc"]),
            "digits/step_time_ratio_vs_adam": Measured(m["mfac/seconds"] / m["adam/seconds"])}
