"""QUBO model: energies, Ising / Pauli form, Max-Cut with anchor, QuadraticProgram interop, enumeration."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from sciml.quantum import QUBO, all_energies, brute_force, cut_values
from sciml.quantum.qubo import index_to_bits
from sciml.testing import tol


def _random_qubo(n: int, gen: torch.Generator) -> QUBO:
    A = torch.randn(n, n, generator=gen, dtype=torch.float64)
    return QUBO(A + A.T, offset=float(torch.randn(1, generator=gen, dtype=torch.float64)))


def _all_bits(n: int) -> torch.Tensor:
    return index_to_bits(torch.arange(2**n), n)


def test_energy_batch_matches_loop(gen):
    q = _random_qubo(7, gen)
    bits = _all_bits(7)
    loop = torch.tensor([float(b.double() @ q.Q @ b.double()) + q.offset for b in bits], dtype=torch.float64)
    torch.testing.assert_close(q.energy(bits), loop, **tol(torch.float64))
    torch.testing.assert_close(q.energy(bits[5]), loop[5], **tol(torch.float64))


def test_ising_fields_reproduce_energies(gen):
    q = _random_qubo(8, gen)
    h, J, const = q.to_ising()
    z = 1.0 - 2.0 * _all_bits(8).double()                      # spin +1 <-> bit 0
    ising = z @ h + torch.einsum("bi,ij,bj->b", z, J, z) + const
    torch.testing.assert_close(ising, all_energies(q), **tol(torch.float64))


@pytest.mark.parametrize("n", [1, 5, 10])
def test_pauli_diagonal_plus_offset_equals_qubo(n, gen):
    pytest.importorskip("qiskit")
    q = _random_qubo(n, gen)
    H, offset = q.to_pauli()
    diag = torch.from_numpy(np.real(H.to_matrix(sparse=True).diagonal())) + offset
    torch.testing.assert_close(diag, all_energies(q), rtol=1e-12, atol=1e-11)
    off_diag = H.to_matrix(sparse=True) - np.diag(np.real(H.to_matrix(sparse=True).diagonal()))
    assert abs(off_diag).max() == 0                               # diagonal Hamiltonian


def test_maxcut_identity_every_assignment(gen):
    q = _random_qubo(6, gen)
    W = q.to_maxcut()
    z = _all_bits(7)                                              # every side assignment, anchor included
    x = z[:, 1:] ^ z[:, :1]                                       # x_i = [z_{i+1} != z_0]
    torch.testing.assert_close(cut_values(W, z), q.offset - q.energy(x), rtol=1e-12, atol=1e-11)
    back = QUBO.from_maxcut(W, const=-q.offset)
    torch.testing.assert_close(back.Q, q.Q, **tol(torch.float64))
    assert back.offset == pytest.approx(q.offset)


def test_brute_force_matches_itertools(gen):
    q = _random_qubo(9, gen)
    best = min(itertools.product([0, 1], repeat=9), key=lambda b: float(q.energy(torch.tensor(b))))
    res = brute_force(q)
    assert tuple(res.x.tolist()) == best
    assert res.energy == pytest.approx(float(q.energy(torch.tensor(best))), rel=1e-12)


def test_quadratic_program_round_trip(gen):
    pytest.importorskip("qiskit_optimization")
    q = _random_qubo(5, gen)
    qp = q.to_quadratic_program()
    for bits in _all_bits(5)[::3]:
        assert qp.objective.evaluate(bits.tolist()) == pytest.approx(float(q.energy(bits)), rel=1e-12)
    back = QUBO.from_quadratic_program(qp)
    torch.testing.assert_close(back.Q, q.Q, **tol(torch.float64))
    qp.maximize(linear=[1.0, 0, 0, 0, 0])                         # maximisation is negated
    assert float(QUBO.from_quadratic_program(qp).energy(torch.tensor([1, 0, 0, 0, 0]))) == -1.0


def test_bad_inputs_are_rejected():
    with pytest.raises(ValueError, match="symmetric"):
        QUBO([[0.0, 1.0], [0.0, 0.0]])
    with pytest.raises(ValueError, match="NaN"):
        QUBO([[float("nan"), 0.0], [0.0, 1.0]])
    with pytest.raises(ValueError, match="square"):
        QUBO(torch.zeros(2, 3))
    with pytest.raises(ValueError, match="only 0 and 1"):
        QUBO(torch.eye(2)).energy(torch.tensor([0.5, 1.0]))
    with pytest.raises(ValueError, match="exceeds max_vars"):
        brute_force(QUBO(torch.eye(23)))
