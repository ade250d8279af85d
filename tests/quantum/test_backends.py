"""One-object backends: ``backend=`` (any BackendV2) drives estimator, sampler and pass manager everywhere."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sciml.quantum import (
    QUBO,
    brute_force,
    cvar_vqe,
    instance_path,
    make_primitives,
    mis_qubo,
    qaoa_correlations,
    read_dimacs,
    rqaoa,
    shrink_and_solve,
    solve_qaoa,
)

pytest.importorskip("qiskit_aer")


@pytest.fixture(scope="module")
def line_backend():
    """A fake 6-qubit device with a line coupling map (noisy, simulated by Aer through BackendV2.run)."""
    from qiskit.providers.fake_provider import GenericBackendV2
    from qiskit.transpiler import CouplingMap

    return GenericBackendV2(num_qubits=6, coupling_map=CouplingMap.from_line(6), seed=1)


def _mis6():
    g = read_dimacs(instance_path("mis_1tc.8.txt"))
    return mis_qubo(6, g.edges[(g.edges < 6).all(1)], penalty=2.0)


def test_full_qaoa_job_through_backend_alone(line_backend):
    qubo, problem = _mis6()
    res = solve_qaoa(qubo, reps=1, seed=0, restarts=1, maxiter=12, backend=line_backend,
                     feasible=problem.feasible_mask, on_failure="ignore")
    assert res.simulator == "backend:generic_backend_6q" and np.isnan(res.memory_bytes)
    assert problem.feasible(res.x) and res.energy == float(qubo.energy(res.x))
    assert res.energy == brute_force(qubo).energy                       # 6 qubits: the optimum is sampled
    # each ZZ term needs >= 2 CX on a cx-basis device; the line coupling adds SWAPs on top
    assert res.two_qubit_gates >= 2 * len(problem.edges) and res.circuit_depth > 0


def test_cvar_rqaoa_correlations_and_pipeline_take_the_same_backend(line_backend):
    qubo, problem = _mis6()
    cv = cvar_vqe(qubo, reps=2, seed=0, maxiter=26, shots=128, backend=line_backend, on_failure="ignore")
    assert cv.simulator.startswith("backend:") and cv.two_qubit_gates == 5      # CNOT chain on a line: no swaps
    C = qaoa_correlations(qubo.to_maxcut(), restarts=1, maxiter=4, shots=512, backend=line_backend,
                          generator=torch.Generator().manual_seed(0))
    assert C.shape == (7, 7) and torch.allclose(torch.diagonal(C), torch.ones(7, dtype=torch.float64))
    rq = rqaoa(problem, n_cutoff=4, restarts=1, maxiter=4, backend=line_backend,
               generator=torch.Generator().manual_seed(0))
    assert rq.qaoa_calls == 2 and problem.feasible(rq.x) and rq.energy <= rq.recursive_energy
    res = shrink_and_solve(problem, "aware", "qaoa", target=6, maxiter=4, restarts=1, backend=line_backend,
                           optimum=problem.exact()[1], on_failure="ignore")
    assert res.simulator.startswith("backend:") and res.qubits_after == 5 and problem.feasible(res.x)


def test_backend_errors_are_clear(line_backend):
    with pytest.raises(TypeError, match="BackendV2"):
        make_primitives(3, backend="aer")
    with pytest.raises(ValueError, match="not both"):
        make_primitives(3, backend=line_backend, sampler=object())
    with pytest.raises(ValueError, match="do not fit"):
        solve_qaoa(QUBO(torch.eye(7, dtype=torch.float64)), backend=line_backend)
