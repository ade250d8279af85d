"""QAOA past 22 qubits: no enumeration, capped-bond MPS inside the pipeline, memory/time per evaluation reported."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sciml.quantum import (
    QUBO,
    all_energies,
    instance_path,
    mis_qubo,
    read_dimacs,
    resolve_method,
    shrink_and_solve,
    solve_qaoa,
)

pytest.importorskip("qiskit_aer")


def _mis_subgraph(n: int, name: str = "mis_1tc.32.txt"):
    g = read_dimacs(instance_path(name))
    return mis_qubo(n, g.edges[(g.edges < n).all(1)], penalty=2.0)


def test_auto_method_switches_to_capped_mps_past_the_fast_path():
    assert resolve_method(22) == ("statevector", None)
    assert resolve_method(23) == ("matrix_product_state", 16)
    assert resolve_method(30, max_bond_dimension=8) == ("matrix_product_state", 8)
    with pytest.raises(ValueError, match="did you mean 'matrix_product_state'"):
        resolve_method(10, "matrix_product_stat")


def test_mps_without_truncation_equals_statevector_expectation():
    """Same parameters, bond cap above the exact bond dimension: MPS <H> equals the exact statevector <H>."""
    from qiskit.circuit.library import qaoa_ansatz
    from qiskit.quantum_info import Statevector

    qubo, _ = _mis_subgraph(10)
    res = solve_qaoa(qubo, reps=1, seed=1, restarts=1, maxiter=8, method="matrix_product_state",
                     max_bond_dimension=64, on_failure="ignore")
    H, _ = qubo.to_pauli()
    Hn = H / float(np.abs(H.coeffs).max())
    probs = torch.from_numpy(Statevector(qaoa_ansatz(Hn, reps=1).assign_parameters(res.params)).probabilities())
    assert res.expectation == pytest.approx(float(probs @ all_energies(qubo)), rel=1e-7, abs=1e-7)
    assert res.approximate and res.simulator == "aer-mps(bond=64)"


@pytest.mark.parametrize("n", [24, 30])
def test_solve_qaoa_at_24_and_30_qubits_returns_a_feasible_answer(n):
    qubo, problem = _mis_subgraph(n)
    res = solve_qaoa(qubo, reps=1, seed=0, restarts=1, maxiter=10, method="matrix_product_state",
                     max_bond_dimension=8, feasible=problem.feasible_mask, on_failure="ignore")
    assert len(res.x) == n and problem.feasible(res.x)                 # checked on the original constraints
    assert res.energy == pytest.approx(float(qubo.energy(res.x)))        # energy of the returned bits
    assert res.energy == -problem.objective(res.x)                      # feasible MIS: energy = -|S|
    assert 0 < res.feasible_fraction <= 1 and res.evaluations == 10
    assert res.seconds_per_evaluation > 0 and res.memory_bytes == 32 * 8**2 * n
    assert res.circuit_depth > 0 and res.two_qubit_gates >= len(problem.edges)


@pytest.mark.parametrize("target_qubits", [24, 30])
def test_shrink_and_solve_at_24_and_30_qubits(target_qubits):
    g = read_dimacs(instance_path("mis_1tc.64.txt"))
    _, problem = mis_qubo(g.n_nodes, g.edges)
    res = shrink_and_solve(problem, "aware", "qaoa", seed=0, target=target_qubits + 1, maxiter=4, restarts=1,
                           recalc_every=0, method="matrix_product_state", max_bond_dimension=8, optimum=20.0,
                           on_failure="ignore")
    assert res.qubits_before == 64 and res.qubits_after == target_qubits
    assert res.simulator == "aer-mps(bond=8)" and np.isnan(res.shrunk_optimum)   # nothing enumerated
    assert problem.feasible(res.x) and res.objective == res.x.sum() and 0 < res.approx_ratio <= 1
    assert res.seconds_per_evaluation > 0


def test_exact_solver_refuses_large_shrunk_problems_with_a_clear_error():
    g = read_dimacs(instance_path("mis_1tc.32.txt"))
    _, problem = mis_qubo(g.n_nodes, g.edges)
    with pytest.raises(ValueError, match="use solver='anneal'"):
        shrink_and_solve(problem, "aware", "exact", target=25, recalc_every=0, on_failure="ignore")


def test_fast_path_reports_its_memory_model():
    qubo = QUBO(torch.diag(torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)))
    res = solve_qaoa(qubo, reps=1, seed=0, restarts=1, maxiter=10, on_failure="ignore")
    assert res.simulator == "fast-statevector" and res.memory_bytes == 32 * 2**3
    assert res.energy == -2.0                                           # the optimum x = (0, 1, 0) is sampled
