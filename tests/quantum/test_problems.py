"""Encoders, readers, exact optima (HiGHS vs enumeration), repairs, vetoes, and qiskit-optimization's converter."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sciml.quantum import (
    brute_force,
    instance_path,
    mdkp_qubo,
    mis_qubo,
    qap_qubo,
    read_dimacs,
    read_mdkp,
    read_qaplib,
    simulated_annealing,
)
from sciml.quantum.qubo import QUBO, index_to_bits


def _mis(name):
    g = read_dimacs(instance_path(name))
    return mis_qubo(g.n_nodes, g.edges)


def _mdkp(name="mdkp_synthetic8.dat"):
    inst = read_mdkp(instance_path(name))
    return (*mdkp_qubo(inst.profits, inst.weights, inst.capacities), inst.optimum)


def _qap4():
    inst = read_qaplib(instance_path("qap_synthetic4.dat"))
    return qap_qubo(inst.flow, inst.distance)


def test_readers_match_the_readme():
    g = read_dimacs(instance_path("mis_1tc.16.txt"))
    assert (g.n_nodes, len(g.edges)) == (16, 22)
    assert g.edges[0].tolist() == [1, 2] and g.edges[-1].tolist() == [13, 14]   # spec A5: (2,3) ... (14,15)
    inst = read_mdkp(instance_path("mdkp_pet2.dat"))
    assert inst.weights.shape == (10, 10) and inst.optimum == 87061
    assert read_qaplib(instance_path("qap_nug12.dat")).flow.shape == (12, 12)
    with pytest.raises(FileNotFoundError, match="available"):
        instance_path("no_such_file.txt")


@pytest.mark.parametrize("name, alpha", [("mis_1tc.8.txt", 4), ("mis_1tc.16.txt", 8)])
def test_mis_brute_force_equals_highs(name, alpha):
    qubo, problem = _mis(name)
    bf = brute_force(qubo)
    _, opt = problem.exact()
    assert opt == alpha and -bf.energy == opt
    assert problem.feasible(bf.x) and problem.objective(bf.x) == opt


def test_mdkp_brute_force_equals_highs():
    qubo, problem, opt = _mdkp()
    assert qubo.num_vars == 17 and problem.penalty == 106.0       # spec A5: 17 variables, P = 106
    bf = brute_force(qubo)
    assert problem.exact()[1] == opt == 65.0
    assert -bf.energy == pytest.approx(opt, abs=1e-9)
    assert problem.feasible(bf.x) and problem.objective(bf.x) == opt


def test_mdkp_highs_matches_published_optimum():
    inst = read_mdkp(instance_path("mdkp_pet2.dat"))
    _, problem = mdkp_qubo(inst.profits, inst.weights, inst.capacities)
    assert problem.exact()[1] == inst.optimum


def test_qap_energy_on_permutations_equals_cost():
    qubo, problem = _qap4()
    assert qubo.num_vars == 16 and problem.penalty == 817.0
    perms = [(0, 1, 2, 3), (1, 0, 3, 2), (3, 2, 1, 0), (2, 0, 3, 1)]
    for perm in perms:
        X = np.zeros((4, 4), dtype=np.int64)
        X[np.arange(4), perm] = 1
        assert float(qubo.energy(torch.from_numpy(X.reshape(-1)))) == pytest.approx(problem.permutation_cost(perm))
    assert problem.exact()[1] == 42.0 and brute_force(qubo).energy == pytest.approx(42.0)


@pytest.mark.parametrize("which", ["mis", "mdkp", "qap"])
def test_encoding_equals_qiskit_optimization_converter(which):
    qo = pytest.importorskip("qiskit_optimization")
    from qiskit_optimization.converters import QuadraticProgramToQubo

    qp = qo.QuadraticProgram()
    if which == "mis":
        qubo, problem = _mis("mis_1tc.8.txt")
        for i in range(8):
            qp.binary_var(f"v{i}")
        qp.maximize(linear=[1.0] * 8)
        for u, v in problem.edges.tolist():
            qp.linear_constraint({f"v{u}": 1, f"v{v}": 1}, "<=", 1)
    elif which == "mdkp":
        qubo, problem, _ = _mdkp()
        n = problem.n_original
        for j in range(n):
            qp.binary_var(f"x{j}")
        qp.maximize(linear=problem.profits.tolist())
        for k in range(problem.weights.shape[0]):
            qp.linear_constraint(problem.weights[k].tolist(), "<=", float(problem.capacities[k]))
    else:
        qubo, problem = _qap4()
        n = problem.n
        for i in range(n):
            for j in range(n):
                qp.binary_var(f"x{i}_{j}")
        K = torch.kron(problem.flow, problem.distance).numpy()
        qp.minimize(quadratic=K)
        for i in range(n):
            qp.linear_constraint({f"x{i}_{j}": 1 for j in range(n)}, "==", 1)
        for j in range(n):
            qp.linear_constraint({f"x{i}_{j}": 1 for i in range(n)}, "==", 1)
    conv = QuadraticProgramToQubo()
    theirs = QUBO.from_quadratic_program(conv.convert(qp))
    if which != "mis":   # MIS rows are turned into P x_u x_v by LinearInequalityToPenalty before conv.penalty
        assert conv.penalty == pytest.approx(problem.penalty)
    if which == "mdkp":   # same slack encoding up to variable order: compare the optimum and the spectrum bounds
        assert brute_force(theirs).energy == pytest.approx(brute_force(qubo).energy, abs=1e-9)
        assert theirs.num_vars == qubo.num_vars
    else:
        torch.testing.assert_close(theirs.Q, qubo.Q, rtol=1e-12, atol=1e-9)
        assert theirs.offset == pytest.approx(qubo.offset)


def test_repairs_give_feasible_answers(gen):
    _, mis = _mis("mis_1tc.16.txt")
    x = torch.ones(16, dtype=torch.int64)
    fixed = mis.repair(x)
    assert mis.feasible(fixed)
    A = mis._adjacency()
    assert ((A @ fixed)[fixed == 0] > 0).all()                   # maximal: every free vertex has a neighbour in
    _, mdkp, _ = _mdkp()
    fixed = mdkp.repair(np.ones(8, dtype=np.int64))
    assert mdkp.feasible(fixed) and mdkp.objective(fixed) > 0
    _, qap = _qap4()
    for _ in range(5):
        x = torch.randint(0, 2, (16,), generator=gen)
        assert qap.feasible(qap.repair(x))


def test_vetoes():
    _, mis = _mis("mis_1tc.8.txt")            # edge (1, 2) 0-based
    assert mis.veto([np.array([1, 2]), np.array([0])], np.zeros(0, np.int64), np.zeros(0, np.int64)) is not None
    assert mis.veto([np.array([0, 1]), np.array([2])], np.zeros(0, np.int64), np.zeros(0, np.int64)) is None
    _, qap = _qap4()
    assert qap.veto([np.array([0, 5])], np.zeros(0, np.int64), np.zeros(0, np.int64)) is None      # (0,0), (1,1)
    assert qap.veto([np.array([0, 1])], np.zeros(0, np.int64), np.zeros(0, np.int64)) is not None  # same row
    assert qap.veto([], np.zeros(0, np.int64), np.array([0, 4, 8, 12])) is not None               # column 0 all 0


def test_simulated_annealing_finds_mis_optimum(gen):
    qubo, _ = _mis("mis_1tc.8.txt")
    res = simulated_annealing(qubo, num_sweeps=200, num_chains=16, generator=gen)
    assert res.energy == brute_force(qubo).energy
    assert float(qubo.energy(res.x)) == res.energy


def test_bad_problem_inputs():
    with pytest.raises(ValueError, match="capacities must be non-negative"):
        mdkp_qubo([1.0, 2.0], [[1, 1]], [-1])
    with pytest.raises(ValueError, match="outside"):
        mis_qubo(3, [(0, 3)])
    with pytest.raises(ValueError, match="same size"):
        qap_qubo(torch.zeros(3, 3), torch.zeros(4, 4))
    with pytest.raises(ValueError, match="weights must be"):
        mdkp_qubo([1.0, 2.0], [[1, 1, 1]], [3])
    with pytest.raises(ValueError, match="penalty"):
        mis_qubo(3, [(0, 1)], penalty=-1.0)
    assert index_to_bits(torch.tensor([5]), 3).tolist() == [[1, 0, 1]]
