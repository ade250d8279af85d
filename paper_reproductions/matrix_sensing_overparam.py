"""How Over-Parameterization Slows Down Gradient Descent in Matrix Sensing (Xiong, Ding, Du, ICLR 2024, arXiv
2310.01769). The paper's results are theorems and convergence plots; the reference values here are the spec's
closed-form constant (k - r)/(4 eta)^2 and its verified runs (spec 7.5), at the same setting: A = I, n = 50, r = 2,
k = 4, M* = U diag(1, 0.5) U^T, eta = 0.1, float64. The one-step modification is the spec's construction, not the
paper's Section-5 formula (not retrievable here): its row says so."""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from sciml.numerics import matrix_sensing_gd
from sciml.runner import Measured, Paper, ReproductionConfig, Row, RunContext, reproduction

PAPER = Paper(key="matrix_sensing_overparam", title="How Over-Parameterization Slows Down Gradient Descent in "
              "Matrix Sensing: The Curses of Symmetry and Initialization", arxiv="2310.01769", venue="ICLR 2024")

_SET = "A = I, n = 50, r = 2, k = 4, M* = U diag(1, 0.5) U^T, eta = 0.1, float64"

ROWS = (
    Row("sym/T2err_limit", "Thm (lower bound) + spec 7.2", _SET + ", symmetric, alpha 0.5",
        "T^2 ||X X^T - M*||_F^2 at T = 1e4 (limit (k-r)/(4 eta)^2 = 12.5)", 12.46, "same, our random init",
        expect=(11.9, 12.5), note="spec run: 12.16 / 12.38 / 12.46 at T = 1e3 / 3e3 / 1e4"),
    Row("sym/loglog_slope", "Thm: Omega(1/T^2)", _SET + ", symmetric", "slope of log err vs log T (T = 1e3..1e4)",
        -2.0, "same", expect=(-2.1, -1.9)),
    Row("sym_exact/err_T2000", "Thm: linear for k = r", "k = r = 2, symmetric", "error at T = 2000", 5e-31, "same",
        expect=(0.0, 1e-28)),
    Row("asym/rate_increases_with_alpha", "Thm: exp(-Omega(alpha^2 T))", _SET + ", asymmetric, G0 scale alpha/3",
        "tail slopes of log err for alpha 0.05 < 0.1 < 0.2 (1 = ordered)", 1.0, "same", expect=(1.0, 1.0)),
    Row("asym/min_r2", "Thm: linear convergence", _SET + ", asymmetric", "min R^2 of a linear fit of log err", None,
        "same", expect=(0.99, 1.0)),
    Row("modification/gain_at_2500", "Sec. 5 (spec's construction)", _SET + ", alpha 0.05, modification at 2000",
        "err(plain) / err(modified) at T = 2500", None, "spec's construction, NOT the paper's formula",
        expect=(1e6, float("inf")), note="spec: 1.4e-7 vs 4.6e-16"),
    Row("scaled_gd/err_T2000", "baseline (ScaledGD)", _SET + ", asymmetric k = 4, alpha 0.05", "error at T = 2000",
        None, "same", note="baseline whose preconditioning ignores the imbalance"),
)


@dataclasses.dataclass(frozen=True)
class SensingReproConfig(ReproductionConfig):
    T: int = 10_000

    @classmethod
    def preset(cls, scale: str) -> "SensingReproConfig":
        return cls(scale=scale, T=1000) if scale == "smoke" else cls(scale=scale)


@reproduction(PAPER, rows=ROWS, config=SensingReproConfig,
              summary="Over-parameterised matrix sensing: 1/T^2 (symmetric) vs linear (asymmetric) GD, modification")
def reproduce(cfg: SensingReproConfig, ctx: RunContext) -> dict[str, Measured]:
    torch.set_num_threads(1)                       # tiny matrices: more threads only spin
    g = torch.Generator().manual_seed(ctx.seed)
    U, _ = torch.linalg.qr(torch.randn(50, 2, generator=g, dtype=torch.float64))
    M = U @ torch.diag(torch.tensor([1.0, 0.5], dtype=torch.float64)) @ U.T
    sym = matrix_sensing_gd(M, 4, alpha=0.5, eta=0.1, n_iter=cfg.T, generator=g)
    Ts = np.array([cfg.T // 10, cfg.T // 3, cfg.T])
    out = {"sym/T2err_limit": Measured(float(cfg.T**2 * sym.errors[cfg.T]), paper_setting=cfg.T == 10_000),
           "sym/loglog_slope": Measured(float(np.polyfit(np.log(Ts), np.log(sym.errors[Ts].numpy()), 1)[0]))}
    exact = matrix_sensing_gd(M, 2, alpha=0.5, eta=0.1, n_iter=2000, generator=g)
    out["sym_exact/err_T2000"] = Measured(float(exact.errors[-1]))
    slopes, r2s = [], []
    for alpha in (0.05, 0.1, 0.2):
        res = matrix_sensing_gd(M, 4, parameterization="asymmetric", alpha=alpha, eta=0.1, n_iter=3000,
                                generator=torch.Generator().manual_seed(ctx.seed + 1))
        tail = np.log(res.errors[1500:2500].numpy())
        t = np.arange(len(tail))
        fit = np.polyfit(t, tail, 1)
        r2s.append(1 - np.sum((np.polyval(fit, t) - tail) ** 2) / np.sum((tail - tail.mean()) ** 2))
        slopes.append(-fit[0])
    out["asym/rate_increases_with_alpha"] = Measured(float(slopes[0] < slopes[1] < slopes[2]),
                                                     "tail slopes " + ", ".join(f"{s:.2e}" for s in slopes))
    out["asym/min_r2"] = Measured(float(min(r2s)))
    common = dict(parameterization="asymmetric", alpha=0.05, eta=0.1, n_iter=2500)
    plain = matrix_sensing_gd(M, 4, generator=torch.Generator().manual_seed(ctx.seed + 2), **common)
    mod = matrix_sensing_gd(M, 4, modification={"at": 2000}, generator=torch.Generator().manual_seed(ctx.seed + 2),
                            **common)
    out["modification/gain_at_2500"] = Measured(float(plain.errors[-1] / mod.errors[-1]),
                                                f"{float(plain.errors[-1]):.2e} -> {float(mod.errors[-1]):.2e}")
    scaled = matrix_sensing_gd(M, 4, parameterization="asymmetric", method="scaled_gd", alpha=0.05, eta=0.1,
                               n_iter=2000, generator=torch.Generator().manual_seed(ctx.seed + 2))
    out["scaled_gd/err_T2000"] = Measured(float(scaled.errors[-1]))
    _plot(ctx, sym, exact, plain, mod)
    return out


def _plot(ctx, sym, exact, plain, mod) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for res, label in ((sym, "symmetric k=4"), (exact, "symmetric k=r"), (plain, "asymmetric k=4, alpha 0.05"),
                       (mod, "asymmetric + modification")):
        ax.semilogy(res.errors.numpy(), label=label)
    ax.set(xlabel="iteration", ylabel="||F G^T - M*||_F^2", ylim=(1e-32, 10), title="matrix sensing GD (A = I)")
    ax.legend(fontsize=8)
    ctx.save_figure("sensing_errors", fig)
