"""The paper's pipeline end to end: penalty QUBO -> shrink -> solve the small graph -> lift -> verify -> repair.

Reference: arXiv:2506.14250; spec A2.9 (pseudocode).
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import numpy as np
import torch

from sciml.core import Result
from sciml.quantum.qubo import brute_force
from sciml.quantum.shrinking import paper_budget, shrink, verify_and_repair

MODES = ("vanilla", "aware", "adaptive")
SOLVERS = ("exact", "qaoa", "cvar")


@dataclasses.dataclass(frozen=True)
class PipelineResult(Result):
    """Metrics of one pipeline run (spec A2.8): qubits before/after, rejected merges, raw feasibility, repair
    moves, objective after repair, approximation ratio, shrunk-QUBO energy reached, wall time."""

    mode: str
    solver: str
    qubits_before: int
    qubits_after: int
    rejected_merges: int
    correlation_calls: int
    raw_feasible: bool
    repair_moves: int
    objective: float
    approx_ratio: float
    shrunk_energy: float
    shrunk_optimum: float
    x: np.ndarray
    seconds: float


def shrink_and_solve(problem: Any, mode: str = "aware", solver: str = "exact", reps: int = 1, seed: int = 0,
                     target: int | None = None, optimum: float | None = None, maxiter: int = 100,
                     restarts: int = 2, tau: float = 0.8, floor: float = 0.5) -> PipelineResult:
    """Run the pipeline once.

    Args:
        problem: from ``mis_qubo`` / ``mdkp_qubo`` / ``qap_qubo``.
        mode: "vanilla" (no vetoes, R = 1), "aware" (vetoes, R = 1), "adaptive" (vetoes, recompute-on-drop
            with ``tau``, stop below ``floor``).
        solver: "exact" (brute force of the shrunk QUBO: the upper bound), "qaoa" (depth ``reps``; depths
            1..reps warm-started by INTERP), "cvar" (CVaR-VQE with ``reps`` layers).
        seed: seeds the SDP initialisation and the quantum solver.
        target: alive Max-Cut nodes; default the paper's round(2/3 N).
        optimum: the exact optimum of the original problem, for the approximation ratio.
    """
    if mode not in MODES or solver not in SOLVERS:
        raise ValueError(f"mode must be one of {MODES} and solver one of {SOLVERS}, got {mode!r}, {solver!r}")
    t0 = time.perf_counter()
    gen = torch.Generator().manual_seed(seed)
    target = paper_budget(problem.qubo.num_vars) if target is None else target
    sh = shrink(problem, target, constraint_aware=mode != "vanilla", adaptive=mode == "adaptive", tau=tau,
                floor=floor if mode == "adaptive" else 0.0, generator=gen)
    small = sh.qubo
    best = brute_force(small)
    if solver == "exact":
        y, e = best.x, best.energy
    elif solver == "qaoa":
        from sciml.quantum.qaoa import interp_warm_start, solve_qaoa

        res, init = None, None
        for p in range(1, reps + 1):
            res = solve_qaoa(small, reps=p, seed=seed, restarts=restarts if init is None else 1, maxiter=maxiter,
                             init=init, on_failure="ignore")
            init = interp_warm_start(res.params)
        y, e = res.x, res.energy
    else:
        from sciml.quantum.qaoa import cvar_vqe

        res = cvar_vqe(small, reps=reps, seed=seed, maxiter=maxiter, on_failure="ignore")
        y, e = res.x, res.energy
    x = sh.state.lift(torch.as_tensor(y)[None])[0].numpy()
    sol = verify_and_repair(problem, x, optimum)
    return PipelineResult(mode, solver, sh.qubits_before, sh.qubits_after, sh.rejected_merges,
                          sh.correlation_calls, sol.raw_feasible, sol.repair_moves, sol.objective, sol.approx_ratio,
                          float(e), best.energy, sol.x, time.perf_counter() - t0)
