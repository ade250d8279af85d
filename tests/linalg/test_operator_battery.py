"""The shipped OperatorTestCase battery on KroneckerOperator and DenseOperator (gradients, batched right-hand
sides, float32/float64, devices, N >= 1e5), and conversions to/from linear_operator and scipy."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sciml.linalg import (DenseOperator, KroneckerOperator, MatvecOperator, SparseOperator, as_operator,
                          conjugate_gradient,
                          from_linear_operator, from_scipy)
from sciml.testing import random_spd, tol
from sciml.testing.operator_case import OperatorTestCase


def kron_dense(factors):
    out = factors[0]
    for f in factors[1:]:
        out = torch.kron(out, f)
    return out


class TestKroneckerBattery(OperatorTestCase):
    def make_operator(self, gen, dtype, device="cpu"):
        factors = [random_spd(n, cond=30.0, generator=gen, dtype=dtype, device=device) for n in (3, 5, 4)]
        return KroneckerOperator(factors), kron_dense(factors)

    def make_differentiable(self, gen, dtype):
        params = [random_spd(n, cond=10.0, generator=gen, dtype=dtype) for n in (3, 4)]
        params.append(torch.eye(2, dtype=dtype))  # repeated eigenvalues: gradients must stay finite
        return params, KroneckerOperator, kron_dense

    def make_large_operator(self, gen, dtype):
        sizes = (50, 50, 40)  # N = 100,000
        factors = [random_spd(n, cond=20.0, generator=gen, dtype=dtype) for n in sizes]

        def reference(Z):  # one einsum per mode on the (50, 50, 40, k) tensor: independent of kron_apply
            T = Z.reshape(*sizes, Z.shape[1])
            T = torch.einsum("ai,ijkr->ajkr", factors[0], T)
            T = torch.einsum("bj,ajkr->abkr", factors[1], T)
            return torch.einsum("ck,abkr->abcr", factors[2], T).reshape(Z.shape)

        return KroneckerOperator(factors), reference


class TestDenseBattery(OperatorTestCase):
    def make_operator(self, gen, dtype, device="cpu"):
        A = random_spd(12, cond=50.0, generator=gen, dtype=dtype, device=device)
        return DenseOperator(A), A

    def make_differentiable(self, gen, dtype):
        A = random_spd(6, cond=10.0, generator=gen, dtype=dtype)
        return [A], lambda ps: DenseOperator(ps[0]), lambda ps: ps[0]


# ---- linear_operator interop --------------------------------------------------------------------------------------
@pytest.fixture
def kron(gen):
    return KroneckerOperator([random_spd(n, cond=20.0, generator=gen) for n in (3, 4, 2)])


def test_kronecker_round_trip_through_linear_operator(kron, gen):
    pytest.importorskip("linear_operator")
    from linear_operator.operators import KroneckerProductLinearOperator

    lo = kron.to_linear_operator()
    assert isinstance(lo, KroneckerProductLinearOperator)
    B = torch.randn(24, 2, generator=gen, dtype=torch.float64)
    torch.testing.assert_close(lo @ B, kron @ B, **tol(torch.float64, "exact"))
    torch.testing.assert_close(lo.solve(B), kron.solve(B), **tol(torch.float64, "solve"))
    torch.testing.assert_close(lo.logdet(), kron.logdet(), **tol(torch.float64, "solve"))
    back = from_linear_operator(lo)
    assert isinstance(back, KroneckerOperator)
    torch.testing.assert_close(back.to_dense(), kron.to_dense(), **tol(torch.float64, "exact"))
    assert isinstance(as_operator(lo), KroneckerOperator)


def test_dense_and_matrix_free_round_trip_through_linear_operator(gen):
    pytest.importorskip("linear_operator")
    A = random_spd(7, generator=gen)
    B = torch.randn(7, 2, generator=gen, dtype=torch.float64)
    for op in (DenseOperator(A), MatvecOperator(lambda X: A @ X, 7)):
        lo = op.to_linear_operator()
        torch.testing.assert_close(lo @ B, A @ B, **tol(torch.float64, "exact"))
        torch.testing.assert_close(lo.mT @ B, A.mT @ B, **tol(torch.float64, "exact"))
        torch.testing.assert_close(lo.solve(B), torch.linalg.solve(A, B), **tol(torch.float64, "solve"))
        back = from_linear_operator(lo)
        torch.testing.assert_close(back @ B, A @ B, **tol(torch.float64, "exact"))
    # a peer operator without a sciml counterpart crosses as a matvec
    from linear_operator.operators import DiagLinearOperator

    d = torch.rand(7, generator=gen, dtype=torch.float64) + 1
    op = from_linear_operator(DiagLinearOperator(d))
    torch.testing.assert_close(op @ B, d[:, None] * B, **tol(torch.float64, "exact"))


# ---- scipy interop ----------------------------------------------------------------------------------------------
def test_kronecker_to_scipy_matches_and_solves(kron, gen):
    scipy_linalg = pytest.importorskip("scipy.sparse.linalg")
    sp = kron.to_scipy()
    x = torch.randn(24, generator=gen, dtype=torch.float64)
    np.testing.assert_allclose(sp @ x.numpy(), (kron @ x).numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(sp.rmatvec(x.numpy()), (kron.T @ x).numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(sp.matmat(np.eye(24)), kron.to_dense().numpy(), rtol=1e-12, atol=1e-12)
    sol, info = scipy_linalg.cg(sp, x.numpy(), rtol=1e-12, maxiter=500)
    assert info == 0
    np.testing.assert_allclose(sol, kron.solve(x).numpy(), rtol=1e-8, atol=1e-10)


def test_scipy_operator_into_sciml(gen):
    scipy_linalg = pytest.importorskip("scipy.sparse.linalg")
    A = random_spd(9, generator=gen)
    sp = scipy_linalg.aslinearoperator(A.numpy())
    op = as_operator(sp)
    b = torch.randn(9, generator=gen, dtype=torch.float64)
    res = conjugate_gradient(op, b, rtol=1e-12)
    assert res.converged
    torch.testing.assert_close(res.x, torch.linalg.solve(A, b), **tol(torch.float64, "solve"))
    op32 = from_scipy(sp, dtype=torch.float32)
    assert (op32 @ b.float()).dtype == torch.float32


def test_interop_rejects_wrong_types():
    from sciml.linalg import to_linear_operator, to_scipy

    with pytest.raises(ValueError, match="expects a sciml LinearOperator"):
        to_scipy(np.eye(3))
    with pytest.raises(ValueError, match="expects a linear_operator"):
        from_linear_operator(torch.eye(3))
    with pytest.raises(ValueError, match="expects a scipy"):
        from_scipy(torch.eye(3))
    with pytest.raises(ValueError, match="expects a sciml LinearOperator"):
        to_linear_operator(torch.eye(3))


class TestSparseBattery(OperatorTestCase):
    def make_operator(self, gen, dtype, device="cpu"):
        A = random_spd(10, cond=20.0, generator=gen, dtype=dtype, device=device)
        A = A * (A.abs() > 0.02)  # a sparsity pattern, still symmetric (and SPD for this seed)
        return SparseOperator(A.to_sparse_csr()), A


def test_sparse_operator_from_scipy_matches_scipy(gen):
    sparse = pytest.importorskip("scipy.sparse")
    L = sparse.random(50, 50, density=0.1, random_state=0, format="coo")
    L = (L + L.T + 10 * sparse.identity(50)).tocsr()
    op = SparseOperator.from_scipy(L)
    X = torch.randn(50, 3, generator=gen, dtype=torch.float64)
    np.testing.assert_allclose((op @ X).numpy(), L @ X.numpy(), rtol=1e-13, atol=1e-13)
    res = conjugate_gradient(as_operator(op.matrix), X, rtol=1e-12)
    np.testing.assert_allclose(res.x.numpy(), np.linalg.solve(L.toarray(), X.numpy()), rtol=1e-9, atol=1e-10)
