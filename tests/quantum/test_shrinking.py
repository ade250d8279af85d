"""Graph shrinking: exact merge algebra, GW correlations, constraint-aware pipeline with verify-and-repair."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from sciml.core import ConvergenceWarning
from sciml.quantum import (
    QUBO,
    ShrinkState,
    all_energies,
    brute_force,
    cut_values,
    gw_correlations,
    instance_path,
    paper_budget,
    qap_qubo,
    read_qaplib,
    shrink,
    verify_and_repair,
)
from sciml.quantum.qubo import index_to_bits


def _random_qubo(n, gen):
    A = torch.randn(n, n, generator=gen, dtype=torch.float64)
    return QUBO(A + A.T, offset=1.5)


def test_shrink_then_lift_identity_after_random_merges(gen):
    q = _random_qubo(9, gen)
    state = ShrinkState(q.to_maxcut(), q.offset)
    W0 = q.to_maxcut()
    for _ in range(5):                                          # random merges, including into the anchor
        alive = state.alive_nodes()
        pick = torch.randperm(len(alive), generator=gen)[:2]
        s = 1 if float(torch.rand(1, generator=gen)) < 0.5 else -1
        state.merge(int(alive[pick[0]]), int(alive[pick[1]]), s)
    small = state.shrunk_qubo()
    k = small.num_vars
    y = index_to_bits(torch.arange(2**k), k)
    x = state.lift(y)
    torch.testing.assert_close(q.energy(x), small.energy(y), rtol=0, atol=1e-9)
    # the cut form of the same identity: cut_original(lift(z)) = cut_shrunk(z) + const
    z_full = torch.cat([torch.zeros(2**k, 1, dtype=torch.int64), x], 1)
    z_small = torch.cat([torch.zeros(2**k, 1, dtype=torch.int64), y], 1)
    torch.testing.assert_close(cut_values(W0, z_full), cut_values(state.shrunk_weights(), z_small) + state.const,
                               rtol=0, atol=1e-9)


def test_merge_into_anchor_fixes_variables(gen):
    q = _random_qubo(4, gen)
    state = ShrinkState(q.to_maxcut(), q.offset)
    state.merge(3, 0, -1)                                       # z_3 = 1 - z_0: variable 2 fixed to 1
    state.merge(2, 0, 1)                                        # variable 1 fixed to 0
    x = state.lift(index_to_bits(torch.arange(4), 2))
    assert (x[:, 2] == 1).all() and (x[:, 1] == 0).all()


def test_gw_on_bipartite_graph_is_exact(gen):
    # Complete bipartite K_{3,4} with positive weights: SDP = max cut = total weight, C = -1 across the parts.
    W = torch.zeros(7, 7, dtype=torch.float64)
    W[:3, 3:] = torch.rand(3, 4, generator=gen, dtype=torch.float64) + 0.5
    W = W + W.T
    res = gw_correlations(W, max_sweeps=2000, tol=1e-13, generator=gen)
    assert res.sdp_value == pytest.approx(float(W.sum()) / 2, rel=1e-8)
    torch.testing.assert_close(res.C[:3, 3:], -torch.ones(3, 4, dtype=torch.float64), rtol=0, atol=1e-5)


def test_gw_bounds_the_max_cut(gen):
    W = torch.rand(9, 9, generator=gen, dtype=torch.float64)
    W = torch.triu(W, 1)
    W = W + W.T
    res = gw_correlations(W, max_sweeps=2000, tol=1e-12, generator=gen)
    maxcut = float(cut_values(W, index_to_bits(torch.arange(2**9), 9)).max())
    assert maxcut - 1e-9 <= res.sdp_value <= maxcut / 0.878 # GW: max cut >= 0.878 SDP for non-negative weights
    with pytest.warns(ConvergenceWarning):
        gw_correlations(W, max_sweeps=1, generator=gen, on_failure="warn")


def test_qap_constraint_aware_feasibility_and_repair():
    inst = read_qaplib(instance_path("qap_synthetic4.dat"))
    qubo, problem = qap_qubo(inst.flow, inst.distance)
    target = paper_budget(qubo.num_vars)
    assert target == 11                                         # spec A5: 17 -> 11 Max-Cut nodes, 10 qubits
    raw = {}
    for aware in (False, True):
        feas = []
        for seed in range(2):
            sh = shrink(problem, target, constraint_aware=aware, generator=torch.Generator().manual_seed(seed))
            assert sh.qubits_after <= 10 or sh.stopped_early
            bf = brute_force(sh.qubo)
            y = sh.state.lift(bf.x[None])[0]
            assert float(qubo.energy(y)) == pytest.approx(bf.energy, abs=1e-9)
            sol = verify_and_repair(problem, y.numpy(), optimum=42.0)
            assert problem.feasible(sol.x)                      # every final answer feasible after repair
            assert 0 < sol.approx_ratio <= 1 + 1e-12
            feas.append(sol.raw_feasible)
        raw[aware] = np.mean(feas)
    assert raw[True] >= raw[False]


def test_shrink_rejects_bad_targets(gen):
    q = _random_qubo(4, gen)
    with pytest.raises(ValueError, match="target"):
        shrink(q, 1)
    with pytest.raises(ValueError, match="correlation"):
        shrink(q, 3, correlation="lp")
    assert math.isfinite(float(all_energies(shrink(q, 3, generator=gen).qubo).min()))


def test_adaptive_floor_stops_and_counts_recomputations(gen):
    inst = read_qaplib(instance_path("qap_synthetic4.dat"))
    _, problem = qap_qubo(inst.flow, inst.distance)
    stopped = shrink(problem, 11, adaptive=True, floor=1.01, generator=gen)   # |C| <= 1 < floor: no merge
    assert stopped.stopped_early and stopped.nodes_after == 17 and stopped.correlation_calls == 1
    once = shrink(problem, 11, recalc_every=0, generator=gen)                 # R = 0: correlations computed once
    assert once.correlation_calls == 1 and once.nodes_after == 11
    every = shrink(problem, 11, recalc_every=1, generator=gen)
    assert every.correlation_calls == 6                                       # one per merge (17 -> 11)
