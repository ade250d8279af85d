"""AuON (Maity, arXiv 2509.24320): the draft's Table 1 (paper scale, GPUs) beside the spec's CPU checks: the
algebraic equivalences the spec derived (draft AuON = Frobenius-normalised momentum to O(1/N), head AuON = SGD
with Nesterov momentum) measured on random matrices, and the digits MLP against normalised SGD-Nesterov."""

from __future__ import annotations

import dataclasses
import math

import torch
from torch import nn

from experiments.optim_common import Config as BenchConfig
from experiments.optim_common import digits_benchmark
from sciml.optim import AuON
from sciml.runner import Measured, Paper, ReproductionConfig, Row, RunContext, reproduction

PAPER = Paper(key="auon", title="AuON: A Linear-time Alternative to Semi-Orthogonal Momentum Updates",
              arxiv="2509.24320")

_DRAFT = "draft Table 1 'Tiny, run 1': 40.9M-parameter LM, 4x L4 GPUs (v3/v4 numbers not retrievable)"
_EQ = "random matrices 64x64 and 768x768 with one 1000x entry, float64"
_DIGITS = "digits MLP 64-256-256-10 ReLU, 30 epochs, batch 128; hidden matrices AuON/Muon lr 0.02, rest Adam 1e-3"

ROWS = (
    Row("lm/auon/val_loss", "draft Table 1", _DRAFT, "validation loss", 0.4305, "-", note="paper scale"),
    Row("lm/hybrid_auon/val_loss", "draft Table 1", _DRAFT, "validation loss", 0.0422, "-", note="paper scale"),
    Row("lm/muon/val_loss", "draft Table 1", _DRAFT, "validation loss", 0.0375, "-", note="paper scale"),
    Row("lm/adamw/val_loss", "draft Table 1", _DRAFT, "validation loss", 0.0686, "-", note="paper scale"),
    Row("eq/draft_vs_normalised", "spec 2.2", _EQ, "max ||AuON_draft(G) - G/||G||_F||_F * N", None, "the spec's",
        expect=(0.0, 2.0), note="the spec's bound: <= 2/N"),
    Row("eq/head_vs_sgd", "spec 2.2", _EQ, "max ||AuON_head(G) - G|| / ||G||", None, "the spec's",
        expect=(0.0, 1e-3), note="r = 1 + O(sinh(gamma)^2 / N)"),
    Row("digits/muon/test_acc", "spec 2.5", _DIGITS, "Muon test accuracy (reference)", None, "3 seeds",
        expect=(0.95, 1.0)),
    Row("digits/namo/test_acc", "spec 2.5", _DIGITS, "NAMO test accuracy (reference)", None, "3 seeds",
        expect=(0.95, 1.0)),
)


def _equivalences() -> tuple[float, float]:
    worst_draft, worst_head = 0.0, 0.0
    for n in (64, 768):
        G = torch.randn(n, n, dtype=torch.float64, generator=torch.Generator().manual_seed(n))
        G[1, 2] *= 1000.0
        for version in ("draft", "head"):
            w = nn.Parameter(torch.zeros_like(G))
            opt = AuON([w], lr=1.0, momentum=0.0, version=version)
            w.grad = G.clone()
            opt.step()
            update = -w.detach()
            if version == "draft":
                worst_draft = max(worst_draft, float((update - G / G.norm()).norm()) * G.numel())
            else:
                worst_head = max(worst_head, float((update - G).norm() / G.norm()))
    return worst_draft, worst_head


@dataclasses.dataclass(frozen=True)
class AuONReproConfig(ReproductionConfig):
    seeds: int = 3
    epochs: int = 30

    @classmethod
    def preset(cls, scale: str) -> "AuONReproConfig":
        return cls(scale=scale, seeds=1, epochs=1) if scale == "smoke" else cls(scale=scale)


@reproduction(PAPER, rows=ROWS, config=AuONReproConfig,
              summary="AuON: the spec's equivalences measured; digits MLP vs Muon/NAMO; the draft's LM table")
def reproduce(cfg: AuONReproConfig, ctx: RunContext) -> dict[str, Measured]:
    draft, head = _equivalences()
    out = {"eq/draft_vs_normalised": Measured(draft), "eq/head_vs_sgd": Measured(head)}
    m = digits_benchmark(BenchConfig(optimizers=("muon", "namo"), seeds=cfg.seeds, epochs=cfg.epochs,
                                     batch_size=128, hidden=(256, 256), smoke=cfg.scale == "smoke"), ctx)
    out["digits/muon/test_acc"] = Measured(m["muon/test_acc"])
    out["digits/namo/test_acc"] = Measured(m["namo/test_acc"])
    return out
