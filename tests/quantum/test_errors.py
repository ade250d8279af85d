"""Clear errors (issue 16): penalties below the valid bound, non-binary bits, non-integer data, misspelled options
(caught before any optimisation starts), RQAOA answers on shrunk constrained problems."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sciml.quantum import (
    PenaltyWarning,
    brute_force,
    instance_path,
    mdkp_qubo,
    mis_qubo,
    qap_qubo,
    read_mdkp,
    read_qaplib,
    rqaoa,
    shrink,
    shrink_and_solve,
    solve_qaoa,
    verify_and_repair,
)

TRIANGLE = [(0, 1), (1, 2), (0, 2)]


def test_mis_penalty_below_the_valid_bound_is_an_error():
    with pytest.raises(ValueError, match="must exceed 1"):
        mis_qubo(3, TRIANGLE, penalty=0.5)                 # issue: gave -1.5 on a triangle (true optimum -1)
    qubo, _ = mis_qubo(3, TRIANGLE, penalty=1.5)
    assert brute_force(qubo).energy == -1.0


def test_mdkp_and_qap_penalties_below_a_sufficient_bound_warn_with_the_bound():
    inst = read_mdkp(instance_path("mdkp_synthetic8.dat"))
    with pytest.warns(PenaltyWarning, match="sufficient bound 40"):      # sum p = 105, greedy = OPT = 65
        mdkp_qubo(inst.profits, inst.weights, inst.capacities, penalty=10.0)
    q = read_qaplib(instance_path("qap_synthetic4.dat"))
    with pytest.warns(PenaltyWarning, match="identity permutation"):
        qap_qubo(q.flow, q.distance, penalty=5.0)


def test_non_binary_bits_are_rejected_not_repaired():
    _, problem = mis_qubo(3, [(0, 1)])
    with pytest.raises(ValueError, match="0 or 1"):
        verify_and_repair(problem, np.array([2, 0, 1]))    # issue: 'repaired' into objective 6 > maximum 3
    with pytest.raises(ValueError, match="0 or 1"):
        problem.objective([0.5, 1, 0])


def test_non_integer_data_is_rejected():
    with pytest.raises(ValueError, match="non-integer"):
        mis_qubo(3, [(0, 1.5)])                            # issue: silently truncated to (0, 1)
    assert mis_qubo(3, np.array([[0.0, 1.0]]))[1].edges.tolist() == [[0, 1]]
    with pytest.raises(ValueError, match="integers"):
        mdkp_qubo([1.0, 2.0], [[1.5, 1]], [3])


class _Exploding:
    """A primitive that fails if anything tries to use it: the option check must come first."""

    def __getattr__(self, name):
        raise AssertionError(f"primitive used ({name}) before the options were checked")


@pytest.mark.parametrize("call, match", [
    (lambda q, p: solve_qaoa(q, on_failure="wran", estimator=_Exploding(), sampler=_Exploding(),
                             pass_manager=_Exploding()), "did you mean 'warn'"),
    (lambda q, p: solve_qaoa(q, method="mps"), "method must be one of"),
    (lambda q, p: shrink_and_solve(p, mode="awre"), "did you mean 'aware'"),
    (lambda q, p: shrink_and_solve(p, solver="qoaa"), "did you mean 'qaoa'"),
    (lambda q, p: shrink_and_solve(p, method="statevectr"), "did you mean 'statevector'"),
    (lambda q, p: shrink_and_solve(p, sdp_solver="cvx"), "sdp_solver must be one of"),
    (lambda q, p: shrink(p, 3, correlation="gww"), "did you mean 'gw'"),
    (lambda q, p: shrink(p, "papr"), "did you mean 'paper'"),
    (lambda q, p: mdkp_qubo([1.0], [[1]], [1], encoding="unbalnced"), "did you mean 'unbalanced'"),
])
def test_misspelled_options_fail_before_any_work(call, match):
    qubo, problem = mis_qubo(4, [(0, 1), (2, 3)])
    with pytest.raises(ValueError, match=match):
        call(qubo, problem)


@pytest.mark.parametrize("which", ["mdkp", "qap"])
def test_rqaoa_on_shrunk_constrained_problems_returns_feasible_energies(which):
    """Issue 16: RQAOA on shrunk MDKP/QAP returned infeasible-energy answers (49 vs optimum -44)."""
    if which == "mdkp":
        inst = read_mdkp(instance_path("mdkp_synthetic8.dat"))
        _, problem = mdkp_qubo(inst.profits, inst.weights, inst.capacities)
    else:
        inst = read_qaplib(instance_path("qap_synthetic4.dat"))
        _, problem = qap_qubo(inst.flow, inst.distance)
    sh = shrink(problem, "paper", on_failure="ignore", generator=torch.Generator().manual_seed(0))
    rq = rqaoa(problem, n_cutoff=6, restarts=1, maxiter=20, state=sh.state,
               generator=torch.Generator().manual_seed(0))
    assert problem.feasible(rq.x) and rq.energy == pytest.approx(float(problem.qubo.energy(rq.x)))
    objective = problem.objective(rq.x)
    assert rq.energy == pytest.approx(-objective if problem.maximize else objective)   # zero penalty paid
