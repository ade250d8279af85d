"""Adaptive PDHG based on average spectrum (Xu & He, arXiv 2603.00644) on the linear assignment LP.

Only the abstract was readable: the algorithm in ``sciml.ot.pdhg`` (method "apc", variant "rayleigh_pc") is the
spec's reconstruction (§3.3) in He-Yuan's prediction-correction framework, not the paper's exact scheme, and the
paper gives no table we could read. Its one number, "up to ten-fold acceleration over Chambolle-Pock", comes from
a secondary summary ([S], unconfirmed) and stays ``reported``. What is checked: the grid of spec §3.5 (n = 50, 100;
omega 0.1 / 0.3 / 1; nu 1.0 / 1.9) against the exact LAP, Chambolle-Pock at the same omega (the baseline), the
best-tuned CP, plain PDHG (negative control) and a random permutation (trivial baseline).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch

from experiments.ot_pdhg import Config as GridConfig
from experiments.ot_pdhg import assignment_costs, ratios, run_grid
from sciml.ot.pdhg import pdhg_assignment, pdhg_lp
from sciml.runner import Measured, Paper, ReproductionConfig, Row, RunContext, reproduction

PAPER = Paper(key="apc_pdhg", title="Adaptive primal dual hybrid gradient algorithms based on average spectrum for "
              "saddle point problems", arxiv="2603.00644")

_GRID = ("assignment LP, C ~ U[0,1] (default_rng(0)), n in {50, 100}, omega in {0.1, 0.3, 1}, KKT <= 1e-6, "
         "budget 40k its; aPC = spec §3.3 reconstruction (gamma 1.9)")
_RECON = "reconstruction of the method (abstract only); band = issue #20 / spec §3.5 runs of it, not a paper number"

ROWS = (
    Row("abstract/up_to_tenfold", "abstract / secondary summary [S]", "assignment problem, setting unknown",
        "max over the grid of CP iterations / aPC iterations (nu 1.9; CP capped = lower bound)", 10.0, _GRID,
        note="'up to ten-fold' is [S], unconfirmed against the PDF; our method is a reconstruction: reported"),
    Row("grid/iter_ratio_median_nu1.9", "spec §3.5 [V] / issue #20", "-",
        "median over cells (CP converged) of CP iterations / aPC iterations, nu = 1.9", None, _GRID,
        expect=(4.0, 6.0), note=_RECON),
    Row("grid/iter_ratio_median_nu1.0", "spec §3.5 [V]", "-",
        "median over cells (CP converged) of CP iterations / aPC iterations, nu = 1.0", None, _GRID,
        expect=(2.5, 4.0), note=_RECON),
    Row("grid/product_ratio_median_nu1.9", "ours", "-", "median CP / aPC products with A and A^T, nu = 1.9", None,
        _GRID, note="an aPC iteration costs 3 products (+1 per redo), a CP iteration 2"),
    Row("grid/time_ratio_median_nu1.9", "spec §3.5 / issue #20", "-", "median CP / aPC wall time, nu = 1.9", None,
        _GRID, note="issue #20 expects about 2x; wall time is machine-dependent: reported"),
    Row("baseline/best_cp_over_best_apc", "spec §3.5", "-",
        "per n, (CP iterations at its best omega) / (aPC nu 1.9 iterations at its best omega), median over n", None,
        _GRID, note="CP tuned over the same omega grid: the fair baseline"),
    Row("truth/objective_rel_error_max", "ground truth", "-",
        "max over aPC runs of |<C, X> - LAP| / LAP (exact LAP: scipy linear_sum_assignment)", None, _GRID,
        expect=(0.0, 1e-5)),
    Row("truth/permutation_recovered_fraction", "ground truth", "-",
        "fraction of aPC runs whose row-wise arg-max is the LAP permutation", None, _GRID, expect=(1.0, 1.0)),
    Row("control/plain_pdhg_kkt", "abstract (motivation)", "-",
        "relative KKT error of plain PDHG (CP's steps, no extrapolation) after the same budget, smallest n, "
        "omega 0.3", None, _GRID, expect=(1e-6, math.inf), note="negative control: fails = stays above tol"),
    Row("control/plain_pdhg_interior_lp_kkt", "spec §3.7.2", "-",
        "KKT error of plain PDHG after 5,000 its on min x1 + x2, x1 = x2, x1 + x2 = 2 (CP and aPC converge)",
        None, "2-variable LP with interior optimum", expect=(1e-6, math.inf)),
    Row("baseline/random_permutation_cost_ratio", "trivial baseline", "-",
        "mean cost of a random permutation / LAP optimum, largest n (1000 draws)", None, _GRID),
)


@dataclasses.dataclass(frozen=True)
class APCReproConfig(ReproductionConfig):
    sizes: tuple[int, ...] = (50, 100)
    omegas: tuple[float, ...] = (0.1, 0.3, 1.0)
    nus: tuple[float, ...] = (1.0, 1.9)
    max_iter: int = 40_000

    @classmethod
    def preset(cls, scale: str) -> "APCReproConfig":
        if scale == "smoke":
            return cls(scale=scale, sizes=(20,), omegas=(0.3, 1.0), max_iter=10_000)
        return cls(scale=scale)


@reproduction(PAPER, rows=ROWS, config=APCReproConfig,
              summary="aPC-PDHG (reconstruction) vs Chambolle-Pock on the assignment LP, spec §3.5 grid")
def reproduce(cfg: APCReproConfig, ctx: RunContext) -> dict[str, Measured]:
    grid_cfg = GridConfig(sizes=cfg.sizes, omegas=cfg.omegas, nus=cfg.nus, max_iter=cfg.max_iter)
    rows = run_grid(grid_cfg, ctx.device, progress=ctx.progress, log=ctx.log)
    paper_grid = cfg.sizes == (50, 100) and cfg.omegas == (0.1, 0.3, 1.0) and cfg.max_iter == 40_000
    out: dict[str, Measured] = {}

    def median_ratio(nu: float, key: str) -> float:
        values = [v for v, cp_converged in ratios(rows, nu, key) if cp_converged]
        return float(np.median(values)) if values else math.nan

    n_cells = f"{len(rows)} runs over n = {cfg.sizes}, omega = {cfg.omegas}"
    out["abstract/up_to_tenfold"] = Measured(max(v for v, _ in ratios(rows, 1.9, "n_iter")), n_cells)
    # the 4-6x band is the spec's n = 50/100 grid: smaller n (smoke) gives smaller gains and is not compared
    if min(cfg.sizes) >= 50:
        out["grid/iter_ratio_median_nu1.9"] = Measured(median_ratio(1.9, "n_iter"), n_cells, paper_grid)
        if 1.0 in cfg.nus:
            out["grid/iter_ratio_median_nu1.0"] = Measured(median_ratio(1.0, "n_iter"), n_cells, paper_grid)
    else:
        ctx.log(f"  CP/aPC iteration ratio (nu 1.9) at n = {cfg.sizes}: {median_ratio(1.9, 'n_iter'):.2f} "
                "(not compared with the n >= 50 band)")
    out["grid/product_ratio_median_nu1.9"] = Measured(median_ratio(1.9, "n_matvec"), n_cells)
    out["grid/time_ratio_median_nu1.9"] = Measured(median_ratio(1.9, "seconds"), n_cells + ", 1 thread")
    best = []
    for n in cfg.sizes:
        cp_its = [r["n_iter"] for r in rows if r["n"] == n and r["method"] == "cp" and r["converged"]]
        apc_its = [r["n_iter"] for r in rows if r["n"] == n and r["method"] == "apc" and r["nu"] == 1.9]
        if cp_its:
            best.append(min(cp_its) / min(apc_its))
    if best:
        out["baseline/best_cp_over_best_apc"] = Measured(float(np.median(best)), n_cells)
    apc = [r for r in rows if r["method"] == "apc"]
    out["truth/objective_rel_error_max"] = Measured(max(r["objective_rel_error"] for r in apc), n_cells, paper_grid)
    out["truth/permutation_recovered_fraction"] = Measured(
        sum(r["permutation_recovered"] for r in apc) / len(apc), n_cells, paper_grid)

    n_small = min(cfg.sizes)
    C = torch.as_tensor(assignment_costs(n_small, grid_cfg.cost_seed), device=ctx.device)
    plain = pdhg_assignment(C, "plain", omega=0.3, max_iter=cfg.max_iter, on_failure="ignore")
    out["control/plain_pdhg_kkt"] = Measured(plain.kkt_error, f"n = {n_small}, {plain.n_iter} its", paper_grid)
    interior = pdhg_lp(torch.tensor([1.0, 1.0], dtype=torch.float64, device=ctx.device),
                       torch.tensor([[1.0, -1.0], [1.0, 1.0]], dtype=torch.float64, device=ctx.device),
                       torch.tensor([0.0, 2.0], dtype=torch.float64, device=ctx.device), "plain", max_iter=5000,
                       on_failure="ignore")
    out["control/plain_pdhg_interior_lp_kkt"] = Measured(interior.kkt_error, "5,000 its", True)

    n_big = max(cfg.sizes)
    C_big = assignment_costs(n_big, grid_cfg.cost_seed)
    from scipy.optimize import linear_sum_assignment

    r, c = linear_sum_assignment(C_big)
    rng = np.random.default_rng(1)
    random_costs = [C_big[np.arange(n_big), rng.permutation(n_big)].sum() for _ in range(1000)]
    out["baseline/random_permutation_cost_ratio"] = Measured(float(np.mean(random_costs) / C_big[r, c].sum()),
                                                             f"n = {n_big}")
    return out
