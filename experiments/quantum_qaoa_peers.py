"""Our QAOA / CVaR-VQE / RQAOA vs qiskit-optimization's MinimumEigenOptimizer(QAOA) and RecursiveMinimumEigenOptimizer
on the shrunk QUBOs of the paper's three instances (constraint-aware, seed 0, 10 qubits)."""

from __future__ import annotations

import dataclasses
import time

import torch

from sciml.runner import ExperimentConfig, RunContext, experiment


@dataclasses.dataclass(frozen=True)
class Config(ExperimentConfig):
    reps: int = 1            # QAOA depth for every solver (RQAOA uses p = 1 as in Bravyi et al.)
    maxiter: int = 60        # COBYLA iterations, same for ours and qiskit-optimization's
    n_cutoff: int = 4        # RQAOA: brute force below this many variables
    problems: tuple[str, ...] = ("mis_1tc.16.txt", "mdkp_synthetic8.dat", "qap_synthetic4.dat")  # the paper's

    def validate(self) -> None:
        if self.reps < 1 or self.maxiter < 1 or self.n_cutoff < 1:
            raise ValueError("reps, maxiter, n_cutoff must be >= 1")
        from experiments.quantum_shrinking import INSTANCES

        if not set(self.problems) <= set(INSTANCES):
            raise ValueError(f"problems must be a subset of {INSTANCES}; got {self.problems}")


@experiment("quantum/qaoa-peers", config=Config, tags=("quantum",),
            summary="QAOA / RQAOA / CVaR-VQE vs qiskit-optimization on the shrunk MIS, MDKP, QAP QUBOs")
def run(cfg: Config, ctx: RunContext) -> dict[str, float]:
    from experiments.quantum_shrinking import load
    from sciml.quantum import brute_force, cvar_vqe, paper_budget, rqaoa, shrink, solve_qaoa
    from sciml.quantum.peers import qiskit_optimization_qaoa

    problems = ("qap_synthetic4.dat",) if cfg.smoke else cfg.problems
    maxiter = 10 if cfg.smoke else cfg.maxiter
    metrics: dict[str, float] = {}
    for name in problems:
        problem, _ = load(name)
        name = name.split(".")[0] if name.startswith(("mdkp", "qap")) else name.removesuffix(".txt")
        sh = shrink(problem, paper_budget(problem.qubo.num_vars), generator=torch.Generator().manual_seed(0))
        q = sh.qubo
        opt = brute_force(q).energy
        solvers = {
            "ours_qaoa": lambda q=q: solve_qaoa(q, reps=cfg.reps, seed=0, restarts=1, maxiter=maxiter,
                                            on_failure="ignore"),
            "qiskit_opt_qaoa": lambda q=q: qiskit_optimization_qaoa(q, reps=cfg.reps, maxiter=maxiter, seed=0),
        }
        if not cfg.smoke:
            solvers |= {
                "ours_cvar_vqe": lambda q=q: cvar_vqe(q, reps=2, seed=0, maxiter=maxiter, on_failure="ignore"),
                "ours_rqaoa": lambda q=q: rqaoa(q, n_cutoff=cfg.n_cutoff, restarts=1, maxiter=maxiter,
                                            generator=torch.Generator().manual_seed(0)),
                "qiskit_opt_rqaoa": lambda q=q: qiskit_optimization_qaoa(q, reps=1, maxiter=maxiter, seed=0,
                                                                     recursive=True, n_cutoff=cfg.n_cutoff),
            }
        for label, solve in solvers.items():
            t0 = time.perf_counter()
            res = solve()
            seconds = time.perf_counter() - t0
            gap = (res.energy - opt) / max(abs(opt), 1e-12)
            metrics[f"{name}/{label}/rel_gap"] = gap
            metrics[f"{name}/{label}/seconds"] = seconds
            ctx.log(f"{name} ({q.num_vars} qubits) {label:17s} E={res.energy:.4g} opt={opt:.4g} gap={gap:.3g} "
                    f"{seconds:.1f}s")
    return metrics
