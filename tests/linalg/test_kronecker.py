"""KroneckerOperator against its dense float64 reference, linear_operator, and bad inputs."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from sciml.linalg import KroneckerOperator
from sciml.testing import random_spd, tol
from sciml.testing.operator_case import OperatorTestCase


class TestKroneckerThreeFactors(OperatorTestCase):
    def make_operator(self, gen, dtype):
        factors = [random_spd(n, cond=30.0, generator=gen, dtype=dtype) for n in (3, 5, 4)]
        return KroneckerOperator(factors), torch.kron(torch.kron(*factors[:2]), factors[2])


class TestKroneckerOneFactor(OperatorTestCase):
    def make_operator(self, gen, dtype):
        factor = random_spd(7, cond=10.0, generator=gen, dtype=dtype)
        return KroneckerOperator([factor]), factor


class TestKroneckerNonSymmetric(OperatorTestCase):
    symmetric = False

    def make_operator(self, gen, dtype):
        a, b = torch.randn(3, 3, generator=gen, dtype=dtype), torch.randn(4, 4, generator=gen, dtype=dtype)
        return KroneckerOperator([a, b]), torch.kron(a, b)


def test_matches_linear_operator_kronecker(gen):
    linear_operator = pytest.importorskip("linear_operator")
    from linear_operator.operators import DenseLinearOperator, KroneckerProductLinearOperator

    factors = [random_spd(n, cond=50.0, generator=gen) for n in (4, 6, 5)]
    ours = KroneckerOperator(factors)
    theirs = KroneckerProductLinearOperator(*[DenseLinearOperator(f) for f in factors])
    B = torch.randn(120, 3, generator=gen, dtype=torch.float64)
    torch.testing.assert_close(ours @ B, theirs @ B, **tol(torch.float64, "exact"))
    torch.testing.assert_close(ours.solve(B), theirs.solve(B), **tol(torch.float64, "solve"))
    torch.testing.assert_close(ours.logdet(), theirs.logdet(), **tol(torch.float64, "solve"))


def test_device_and_dtype_follow_factors(device):
    gen = torch.Generator(device=device).manual_seed(0)
    factors = [torch.eye(3, device=device, dtype=torch.float32) * 2, torch.eye(2, device=device, dtype=torch.float32)]
    op = KroneckerOperator(factors)
    x = torch.randn(6, device=device, dtype=torch.float32, generator=gen)
    out = op.solve(x, shift=1.0)
    assert out.device.type == device.type and out.dtype == torch.float32
    torch.testing.assert_close(out, x / 3.0, **tol(torch.float32))


def test_solve_is_differentiable(gen):
    a = random_spd(3, generator=gen).requires_grad_(True)
    b = random_spd(4, generator=gen)
    rhs = torch.randn(12, generator=gen, dtype=torch.float64)
    loss = KroneckerOperator([a, b]).logdet(shift=0.5) + KroneckerOperator([a, b]).solve(rhs, shift=0.5).sum()
    loss.backward()

    def dense_loss(a_):
        dense = torch.kron(a_, b) + 0.5 * torch.eye(12, dtype=torch.float64)
        return torch.logdet(dense) + torch.linalg.solve(dense, rhs).sum()

    a_ref = a.detach().clone().requires_grad_(True)
    dense_loss(a_ref).backward()
    # eigh differentiates along symmetric perturbations only, so compare the symmetric parts of the gradients.
    def sym(g):
        return 0.5 * (g + g.mT)

    torch.testing.assert_close(sym(a.grad), sym(a_ref.grad), **tol(torch.float64, "solve"))


@settings(max_examples=50, deadline=None)
@given(sizes=st.lists(st.integers(1, 4), min_size=1, max_size=3), seed=st.integers(0, 2**16))
def test_mixed_product_property(sizes, seed):
    """(A1⊗A2)(B1⊗B2) = (A1B1)⊗(A2B2), checked through the operator on random shapes."""
    g = torch.Generator().manual_seed(seed)
    a = [torch.randn(n, n, generator=g, dtype=torch.float64) for n in sizes]
    b = [torch.randn(n, n, generator=g, dtype=torch.float64) for n in sizes]
    x = torch.randn(int(torch.tensor(sizes).prod()), 2, generator=g, dtype=torch.float64)
    lhs = KroneckerOperator(a) @ (KroneckerOperator(b) @ x)
    rhs = KroneckerOperator([ai @ bi for ai, bi in zip(a, b)]) @ x
    torch.testing.assert_close(lhs, rhs, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("factors, match", [
    ([torch.ones(2, 3, dtype=torch.float64)], "square"),
    ([], "at least one"),
    ([torch.eye(2, dtype=torch.float64), torch.eye(2, dtype=torch.float32)], "must match"),
    ([torch.tensor([[1.0, float("nan")], [0.0, 1.0]], dtype=torch.float64)], "NaN"),
    ([torch.eye(2, dtype=torch.int64)], "floating"),
])
def test_bad_factors_raise(factors, match):
    with pytest.raises(ValueError, match=match):
        KroneckerOperator(factors)


def test_bad_solve_inputs_raise():
    op = KroneckerOperator([torch.eye(2, dtype=torch.float64), 2 * torch.eye(3, dtype=torch.float64)])
    with pytest.raises(ValueError, match="singular"):
        op.solve(torch.ones(6, dtype=torch.float64), shift=-2.0)     # every eigenvalue is 2
    with pytest.raises(ValueError, match="does not match"):
        op.solve(torch.ones(5, dtype=torch.float64))
    with pytest.raises(ValueError, match="NaN"):
        op.solve(torch.full((6,), float("nan"), dtype=torch.float64))
    with pytest.raises(ValueError, match="not positive definite"):
        op.logdet(shift=-2.5)
    with pytest.raises(ValueError, match="cannot act"):
        op @ torch.ones(4, dtype=torch.float64)
    with pytest.raises(ValueError, match="not symmetric"):
        KroneckerOperator([torch.tensor([[1.0, 2.0], [0.0, 1.0]], dtype=torch.float64)]).solve(
            torch.ones(2, dtype=torch.float64))
