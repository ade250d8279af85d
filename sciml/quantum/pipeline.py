"""The paper's pipeline end to end: penalty QUBO -> shrink -> solve the small graph -> lift -> verify -> repair.

Reference: arXiv:2506.14250; spec A2.9 (pseudocode).
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import numpy as np
import torch

from sciml.core import Result, Status
from sciml.quantum.qubo import MAX_BRUTE_FORCE_VARS, brute_force
from sciml.quantum.shrinking import DEFAULT_MEMORY_BYTES, shrink, verify_and_repair

MODES = ("vanilla", "aware", "adaptive")
SOLVERS = ("exact", "qaoa", "cvar", "rqaoa", "anneal", "random")
# The shrunk optimum (a reference for the solver's energy) is enumerated only up to this many variables.
REFERENCE_MAX_VARS = 20


@dataclasses.dataclass(frozen=True)
class PipelineResult(Result):
    """Metrics of one pipeline run (spec A2.8).

    Attributes:
        qubits_before / qubits_after: QUBO variables before and after shrinking (measured, not targeted: a
            vetoed or quality-limited shrink may end elsewhere); target / stop_reason: the budget and why
            shrinking stopped short ("" if not). rejected_merges, correlation_calls, sdp_unconverged: shrinking.
        raw_feasible, repair_moves, objective, approx_ratio, x: the verified answer (original variables).
        shrunk_energy: the solver's energy on the shrunk QUBO; shrunk_optimum: its exact minimum (NaN above
            ``REFERENCE_MAX_VARS`` variables). solver_status: CONVERGED unless the optimiser ran out of budget.
        simulator, evaluations, seconds_per_evaluation, memory_bytes, circuit_depth, two_qubit_gates,
        feasible_fraction: from the quantum solver (NaN / -1 / "" for classical solvers). seconds: wall time.
    """

    mode: str
    solver: str
    qubits_before: int
    qubits_after: int
    target: int
    stop_reason: str
    rejected_merges: int
    correlation_calls: int
    sdp_unconverged: int
    raw_feasible: bool
    repair_moves: int
    objective: float
    approx_ratio: float
    shrunk_energy: float
    shrunk_optimum: float
    solver_status: Status
    simulator: str
    evaluations: int
    seconds_per_evaluation: float
    memory_bytes: float
    circuit_depth: int
    two_qubit_gates: int
    feasible_fraction: float
    x: np.ndarray
    seconds: float


def shrink_and_solve(problem: Any, mode: str = "aware", solver: str = "exact", reps: int = 1, seed: int = 0,
                     target: int | str | None = None, optimum: float | None = None, maxiter: int = 100,
                     restarts: int = 2, tau: float = 0.8, floor: float = 0.9, shots: int = 1024,
                     backend: Any = None, method: str = "auto", max_bond_dimension: int | None = None,
                     recalc_every: int = 1, correlation: str = "gw", sdp_solver: str = "mixing",
                     on_failure: str = "warn", memory_bytes: int = DEFAULT_MEMORY_BYTES,
                     n_cutoff: int = 4) -> PipelineResult:
    """Run the pipeline once. Every option is checked before any computation starts.

    Args:
        problem: from ``mis_qubo`` / ``mdkp_qubo`` / ``qap_qubo``.
        mode: "vanilla" (no vetoes), "aware" (vetoes), "adaptive" (vetoes, recompute-on-drop with ``tau``, and
            below the target keep merging while |C| >= ``floor``; default target "auto" = hardware budget).
        solver: "exact" (brute force of the shrunk QUBO, <= 22 variables), "qaoa" (depth ``reps``; depths 1..reps
            warm-started by INTERP), "cvar" (CVaR-VQE with ``reps`` layers), "rqaoa" (continues the merges with
            QAOA correlations down to ``n_cutoff``), "anneal" (simulated annealing), "random" (best of ``shots``
            uniform bitstrings: the trivial baseline at the same shot budget).
        seed: seeds the SDP initialisation and the solver.
        target: the node budget (int, "paper" or "auto", see ``shrink``); default "paper" ("auto" if adaptive).
        optimum: the exact optimum of the original problem, for the approximation ratio.
        backend: any ``BackendV2`` for the quantum solvers (drives estimator, sampler and pass manager).
        method, max_bond_dimension: simulator of the quantum solvers ("auto": statevector fast path up to 22
            qubits, capped MPS beyond).
        on_failure: what a correlation or optimiser budget exhaustion does ("warn", "raise", "ignore").
    """
    from sciml.quantum._options import check_choice, check_on_failure
    from sciml.quantum.qaoa import resolve_method

    check_choice("mode", mode, MODES)
    check_choice("solver", solver, SOLVERS)
    check_choice("sdp_solver", sdp_solver, ("mixing", "scs"))
    check_on_failure(on_failure)
    resolve_method(1, method, max_bond_dimension)
    if not hasattr(problem, "qubo") or not hasattr(problem, "veto"):
        raise TypeError(f"problem must come from mis_qubo / mdkp_qubo / qap_qubo, got {type(problem).__name__}")
    t0 = time.perf_counter()
    gen = torch.Generator().manual_seed(seed)
    sh = shrink(problem, target, constraint_aware=mode != "vanilla", adaptive=mode == "adaptive", tau=tau,
                floor=floor, recalc_every=recalc_every, correlation=correlation, sdp_solver=sdp_solver,
                generator=gen, on_failure=on_failure, memory_bytes=memory_bytes)
    small, state = sh.qubo, sh.state
    if solver == "exact" and small.num_vars > MAX_BRUTE_FORCE_VARS:
        raise ValueError(f"solver='exact' enumerates 2^{small.num_vars} states (limit 2^{MAX_BRUTE_FORCE_VARS}); "
                         "use solver='anneal', 'qaoa' or 'random', or a smaller target")
    reference = brute_force(small) if small.num_vars <= REFERENCE_MAX_VARS else None

    def feasible(y: np.ndarray) -> np.ndarray:
        return problem.feasible_mask(state.lift(torch.from_numpy(np.asarray(y)))[:, :problem.n_original].numpy())

    quantum = dict(backend=backend, method=method, max_bond_dimension=max_bond_dimension)
    info: dict[str, Any] = {}
    status = Status.CONVERGED
    if solver == "exact":
        y = reference.x if reference is not None else brute_force(small).x
    elif solver == "qaoa":
        from sciml.quantum.qaoa import interp_warm_start, solve_qaoa

        res, init = None, None
        for p in range(1, reps + 1):
            res = solve_qaoa(small, reps=p, seed=seed, restarts=restarts if init is None else 1, maxiter=maxiter,
                             init=init, shots=shots, on_failure=on_failure, feasible=feasible, **quantum)
            init = interp_warm_start(res.params)
        y, status, info = res.x, res.status, _quantum_info(res)
    elif solver == "cvar":
        from sciml.quantum.qaoa import cvar_vqe

        res = cvar_vqe(small, reps=reps, seed=seed, maxiter=maxiter, shots=shots, on_failure=on_failure,
                       feasible=feasible, **quantum)
        y, status, info = res.x, res.status, _quantum_info(res)
    elif solver == "rqaoa":
        from sciml.quantum.qaoa import rqaoa

        rq = rqaoa(problem, n_cutoff=n_cutoff, reps=reps, restarts=restarts, maxiter=maxiter, generator=gen,
                   constraint_aware=mode != "vanilla", state=state, shots=shots, **quantum)
        y, info = None, {"evaluations": rq.qaoa_calls}
    elif solver == "anneal":
        from sciml.quantum.annealing import simulated_annealing

        y = simulated_annealing(small, num_sweeps=maxiter * 10, num_chains=16, generator=gen).x
    else:
        Y = torch.randint(0, 2, (shots, small.num_vars), generator=gen)
        energies = small.energy(Y)
        mask = torch.from_numpy(feasible(Y.numpy()))
        pool = torch.where(mask, energies, torch.full_like(energies, float("inf"))) if bool(mask.any()) else energies
        y = Y[int(torch.argmin(pool))]
        info = {"feasible_fraction": float(mask.double().mean())}
    if solver == "rqaoa":                     # rqaoa answers in the original variables (it continued the merges)
        x, e = rq.x.numpy(), rq.energy
    else:
        x = state.lift(torch.as_tensor(y)[None])[0].numpy()
        e = float(small.energy(torch.as_tensor(y)))
    sol = verify_and_repair(problem, x, optimum)
    return PipelineResult(mode, solver, sh.qubits_before, sh.qubits_after, sh.target, sh.stop_reason,
                          sh.rejected_merges, sh.correlation_calls, sh.sdp_unconverged, sol.raw_feasible,
                          sol.repair_moves, sol.objective, sol.approx_ratio, e,
                          reference.energy if reference is not None else float("nan"), status,
                          info.get("simulator", ""), int(info.get("evaluations", 0)),
                          float(info.get("seconds_per_evaluation", float("nan"))),
                          float(info.get("memory_bytes", float("nan"))), int(info.get("circuit_depth", -1)),
                          int(info.get("two_qubit_gates", -1)), float(info.get("feasible_fraction", float("nan"))),
                          sol.x, time.perf_counter() - t0)


def _quantum_info(res: Any) -> dict[str, Any]:
    keys = ("simulator", "evaluations", "seconds_per_evaluation", "memory_bytes", "circuit_depth", "two_qubit_gates",
            "feasible_fraction")
    return {k: getattr(res, k) for k in keys}
