"""Bilevel solvers' convergence (spec optim_numerics 5.5 and 6.5): log gap vs iteration.

* BSVRB v1 / v2 (theory gamma), RSVRB and exact bilevel GD on the spec 5.5 data re-weighting problem: the true
  objective F(x_k) (every lower level solved exactly) minus the best value any run reached, against the iteration
  (GD's iterations are full hypergradient steps; the stochastic methods touch 3 of 10 blocks and 32 points each);
* LV-HBA on the coupled toy (n = 100): log relative error of x against the iteration for the released defaults,
  the working setting, its p sweep and the [0, U] multiplier reading.
"""

from __future__ import annotations

import dataclasses

import torch

from sciml.numerics.bilevel import bilevel_gd, breast_cancer_reweighting, bsvrb, rsvrb
from sciml.numerics.lvhba_problems import CoupledToy
from sciml.runner import ExperimentConfig, RunContext, experiment


@dataclasses.dataclass(frozen=True)
class Config(ExperimentConfig):
    n_iter: int = 3000            # stochastic bilevel iterations
    gd_iter: int = 300
    lvhba_iter: int = 3000        # autograd LV-HBA iterations per curve

    def validate(self) -> None:
        if min(self.n_iter, self.gd_iter, self.lvhba_iter) < 1:
            raise ValueError("iteration counts must be >= 1")


@experiment("numerics/bilevel", config=Config, tags=("numerics",),
            summary="BSVRB / RSVRB / exact bilevel GD (F gap) and LV-HBA (relative error) vs iteration")
def run(cfg: Config, ctx: RunContext) -> dict[str, float]:
    n_iter, gd_iter, lv_iter = (60, 10, 100) if cfg.smoke else (cfg.n_iter, cfg.gd_iter, cfg.lvhba_iter)
    problem, _ = breast_cancer_reweighting(device=ctx.device)
    x0 = torch.zeros(problem.dx, dtype=problem.dtype, device=ctx.device)
    every = max(1, n_iter // 60)
    curves = {"exact bilevel GD": bilevel_gd(problem, x0, step=30.0, n_iter=gd_iter, eval_every=max(1, gd_iter // 60))}
    for i, version in enumerate(("v1", "v2")):
        curves[f"BSVRB {version}"] = bsvrb(problem, x0, version=version, n_iter=n_iter, eval_every=every,
                                           generator=ctx.make_generator(i, device="cpu"), on_failure="ignore")
    curves["RSVRB"] = rsvrb(problem, x0, n_iter=n_iter, eval_every=every,
                            generator=ctx.make_generator(2, device="cpu"), on_failure="ignore")
    best = min(float(r.history_F.min()) for r in curves.values())
    for label, r in curves.items():
        ctx.log(f"{label:18s} F {r.history_F[-1].item():.4f} after {r.iterations} iterations ({r.seconds:.1f} s)")

    toy = CoupledToy()
    settings = {"released defaults": dict(released=True), "working p = 0.3": {},
                "working p = 0.1": dict(p=0.1), "working p = 0.49": dict(p=0.49),
                "[0, U] multipliers": dict(constraint="ineq")}
    errors = {label: toy.run(n_iter=lv_iter, record_every=max(1, lv_iter // 100), **kw)
              for label, kw in ctx.progress(settings.items(), total=len(settings))}
    _plot(curves, best, errors, ctx)
    ctx.save_arrays("bilevel_F", **{k.replace(" ", "_"): r.history_F for k, r in curves.items()})
    metrics = {f"F_final/{k}": r.history_F[-1].item() for k, r in curves.items()}
    metrics.update({f"lvhba_err_final/{k}": r.history[-1].item() for k, r in errors.items()})
    return metrics


def _plot(curves, best, errors, ctx: RunContext) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    for label, r in curves.items():
        ax1.semilogy(r.history_iter.numpy(), (r.history_F - best).clamp_min(1e-6).numpy(), label=label)
    ax1.set_xlabel("iteration")
    ax1.set_ylabel("F(x_k) - best F reached")
    ax1.set_title("spec 5.5 data re-weighting (m = 10)")
    ax1.legend(fontsize=8)
    for label, r in errors.items():
        ax2.semilogy(r.history_iter.numpy(), r.history.numpy(), label=label)
    ax2.set_xlabel("iteration")
    ax2.set_ylabel("||x_k - x*|| / ||x*||")
    ax2.set_title("LV-HBA, coupled toy n = 100")
    ax2.legend(fontsize=8)
    fig.tight_layout()
    ctx.save_figure("bilevel_convergence", fig)
