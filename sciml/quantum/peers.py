"""qiskit-optimization's QAOA and recursive QAOA on the same QUBO, for comparisons (imports are lazy)."""

from __future__ import annotations

import dataclasses
import time

import torch

from sciml.core import Result
from sciml.quantum.qubo import QUBO


@dataclasses.dataclass(frozen=True)
class PeerResult(Result):
    """x (n,) int64, its QUBO energy, wall time in seconds, cost-function evaluations (-1 if unknown) and the
    optimal QAOA parameters (betas then gammas; None if unknown)."""

    x: torch.Tensor
    energy: float
    seconds: float
    evaluations: int = -1
    params: object = None


def _bits(result, n: int) -> torch.Tensor:
    return torch.as_tensor(result.x[:n].round(), dtype=torch.int64)


def qiskit_optimization_qaoa(qubo: QUBO, reps: int = 1, maxiter: int = 100, seed: int | None = None,
                             shots: int = 1024, recursive: bool = False, n_cutoff: int = 4,
                             initial_point=None) -> PeerResult:
    """``MinimumEigenOptimizer(QAOA)`` (or ``RecursiveMinimumEigenOptimizer`` around it) with Aer ``SamplerV2``,
    COBYLA(maxiter) and a level-1 preset pass manager (spec A4: ``pass_manager=`` is required on Qiskit 2.x).

    Its QAOA estimates each energy from ``shots`` samples (the mean, CVaR alpha = 1). ``initial_point``
    (2 reps,) betas then gammas, as ours; without it the peer draws an UNSEEDED random start (issue 16: that made
    comparisons flaky), so a seeded one is drawn from ``seed`` here.
    """
    import numpy as np

    from qiskit.transpiler import generate_preset_pass_manager
    from qiskit_aer import AerSimulator
    from qiskit_aer.primitives import SamplerV2
    from qiskit_optimization.algorithms import MinimumEigenOptimizer, RecursiveMinimumEigenOptimizer
    from qiskit_optimization.minimum_eigensolvers import QAOA
    from qiskit_optimization.optimizers import COBYLA

    t0 = time.perf_counter()
    sampler = SamplerV2(seed=seed, default_shots=shots)
    pm = generate_preset_pass_manager(optimization_level=1, backend=AerSimulator())
    if initial_point is None:
        rng = np.random.default_rng(seed)
        initial_point = np.concatenate([rng.uniform(0, np.pi / 2, reps), rng.uniform(0, np.pi, reps)])
    qaoa = QAOA(sampler=sampler, optimizer=COBYLA(maxiter=maxiter), reps=reps, pass_manager=pm,
                initial_point=np.asarray(initial_point, dtype=np.float64))
    qp = qubo.to_quadratic_program()
    opt = MinimumEigenOptimizer(qaoa)
    if recursive:
        opt = RecursiveMinimumEigenOptimizer(opt, min_num_vars=n_cutoff)
    res = opt.solve(qp)
    x = _bits(res, qubo.num_vars)
    inner = getattr(res, "min_eigen_solver_result", None)
    evals = getattr(inner, "cost_function_evals", None)
    point = getattr(inner, "optimal_point", None)
    return PeerResult(x, float(qubo.energy(x)), time.perf_counter() - t0, -1 if evals is None else int(evals),
                      None if point is None else np.asarray(point, dtype=np.float64))
