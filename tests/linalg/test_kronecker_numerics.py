"""KroneckerOperator numerics in float32/float64 (issue 11): conditioning, signs, gradients, cache.

Each test compares with a float64 dense reference (torch.linalg) or a float64 Kronecker reference that is
itself checked against dense at a smaller size.
"""

from __future__ import annotations

import math

import pytest
import torch

from sciml.linalg import KroneckerOperator
from sciml.linalg.kronecker import kron_apply
from sciml.testing import random_spd, tol


def se_factor(n: int, dtype=torch.float64, lengthscale: float = 0.2) -> torch.Tensor:
    """A squared-exponential (RBF) kernel matrix on n equispaced points of [0, 1]: PSD, numerically singular."""
    x = torch.linspace(0, 1, n, dtype=torch.float64)
    return torch.exp(-0.5 * (x[:, None] - x[None, :]) ** 2 / lengthscale**2).to(dtype)


def dense_of(factors, shift=0.0):
    out = factors[0]
    for f in factors[1:]:
        out = torch.kron(out, f)
    return out + shift * torch.eye(out.shape[0], dtype=out.dtype)


def test_float32_se_solve_matches_float64_at_n_4896(gen):
    """The issue's case: N = 16*17*18 = 4,896, shift 0.1, condition 3.6e3; float32 was refused as singular."""
    factors = [se_factor(n) for n in (16, 17, 18)]
    op64, op32 = KroneckerOperator(factors), KroneckerOperator([f.float() for f in factors])
    B = torch.randn(4896, 3, generator=gen, dtype=torch.float64)
    x64 = op64.solve(B, shift=0.1)
    x32 = op32.solve(B.float(), shift=0.1)
    info = op32.conditioning(0.1)
    assert 3.0e3 < info.condition_estimate < 4.0e3 and not info.singular
    # Perturbation theory: relative error <= cond * (backward error ~ eps32); measured 3e-6.
    rel = float((x32.double() - x64).norm() / x64.norm())
    assert rel <= info.condition_estimate * torch.finfo(torch.float32).eps, rel
    # float64 result itself against the residual of the dense-free matvec
    res = float((op64 @ x64 + 0.1 * x64 - B).norm() / B.norm())
    assert res < 1e-12
    ld64, ld32 = op64.logdet(shift=0.1), op32.logdet(shift=0.1)
    # log det = sum log(lambda + s): absolute error <= N * max relative eigenvalue error (eps32 * cond-free).
    assert abs(float(ld32) - float(ld64)) <= 4896 * 10 * torch.finfo(torch.float32).eps * 10


def test_float64_large_n_small_shift_is_accepted():
    """N = 274,560 with shift 1e-6 in float64 was refused by the old N*eps rule; the answer has a tiny residual."""
    factors = [se_factor(n) for n in (64, 65, 66)]
    op = KroneckerOperator(factors)
    b = torch.ones(op.shape[0], dtype=torch.float64)
    x = op.solve(b, shift=1e-6)
    # Backward error of the computed solution (normwise): small relative to ||A|| ||x||.
    residual = (op @ x + 1e-6 * x - b).norm()
    backward = float(residual / (op.conditioning(1e-6).largest_abs_eigenvalue * x.norm() + b.norm()))
    assert backward < 1e-12, backward


def test_truly_singular_still_refused_with_condition_estimate():
    op = KroneckerOperator([torch.eye(2, dtype=torch.float64), 2 * torch.eye(3, dtype=torch.float64)])
    info = op.conditioning(-2.0)
    assert info.singular and info.condition_estimate == math.inf
    with pytest.raises(ValueError, match="singular.*condition estimate"):
        op.solve(torch.ones(6, dtype=torch.float64), shift=-2.0)


def test_condition_estimate_matches_dense(gen):
    factors = [random_spd(n, cond=30.0, generator=gen) for n in (3, 4)]
    info = KroneckerOperator(factors).conditioning(0.05)
    expected = float(torch.linalg.cond(dense_of(factors, 0.05)))
    assert info.condition_estimate == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize("shift", [float("nan"), float("inf"), -float("inf"), torch.tensor(float("nan"))])
def test_nonfinite_shift_raises(shift):
    op = KroneckerOperator([torch.eye(2, dtype=torch.float64) * 2])
    with pytest.raises(ValueError, match="shift must be finite"):
        op.solve(torch.ones(2, dtype=torch.float64), shift=shift)
    with pytest.raises(ValueError, match="shift must be finite"):
        op.logdet(shift=shift)


def test_logdet_of_two_negative_definite_factors(gen):
    """(-A) ⊗ (-B) = A ⊗ B is positive definite; the closed form used to take log of negative numbers."""
    a, b = random_spd(3, generator=gen), random_spd(4, generator=gen)
    op = KroneckerOperator([-a, -b])
    expected = torch.logdet(dense_of([a, b]))
    torch.testing.assert_close(op.logdet(), expected, **tol(torch.float64, "solve"))
    torch.testing.assert_close(op.logdet(shift=0.3), torch.logdet(dense_of([a, b], 0.3)), **tol(torch.float64, "solve"))


def test_indefinite_logdet_raises_and_slogdet_matches_dense(gen):
    a, b = random_spd(3, generator=gen), random_spd(4, generator=gen)
    op = KroneckerOperator([-a, b])  # negative definite product: det sign (-1)^12 = +1 but not PD
    with pytest.raises(ValueError, match="not positive definite.*slogdet"):
        op.logdet()
    for factors in ([-a, b], [-a, random_spd(3, generator=gen)]):
        for shift in (0.0, 0.2):
            op = KroneckerOperator(factors)
            sign, logabs = op.slogdet(shift)
            ref_sign, ref_log = torch.linalg.slogdet(dense_of(factors, shift))
            assert float(sign) == float(ref_sign)
            torch.testing.assert_close(logabs, ref_log, **tol(torch.float64, "solve"))


def _grads(loss_fn, factors):
    leaves = [f.detach().clone().requires_grad_(True) for f in factors]
    loss_fn(leaves).backward()
    return [leaf.grad for leaf in leaves]


@pytest.mark.parametrize("shift", [0.0, 0.5])
def test_gradients_finite_with_identity_factor(gen, shift):
    """An identity factor has a fully repeated eigenvalue: eigh's backward divides by 0 gaps (NaN before)."""
    factors = [random_spd(3, generator=gen), torch.eye(4, dtype=torch.float64), 2 * torch.eye(2, dtype=torch.float64)]
    B = torch.randn(24, 2, generator=gen, dtype=torch.float64)
    W = torch.randn(24, 2, generator=gen, dtype=torch.float64)

    def ours(fs):
        op = KroneckerOperator(fs)
        return (op.solve(B, shift=shift) * W).sum() + op.logdet(shift=shift)

    def dense(fs):
        M = dense_of(fs, shift)
        return (torch.linalg.solve(M, B) * W).sum() + torch.logdet(M)

    got, want = _grads(ours, factors), _grads(dense, factors)
    for g, w in zip(got, want):
        assert bool(torch.isfinite(g).all())
        # logdet's gradient is symmetric (A^{-T} is), solve's is the full (unsymmetrised) dense gradient
        torch.testing.assert_close(g, w, **tol(torch.float64, "solve"))


def test_gradients_wrt_rhs_and_tensor_shift(gen):
    factors = [random_spd(3, generator=gen), random_spd(2, generator=gen)]
    B = torch.randn(6, generator=gen, dtype=torch.float64)
    results = []
    for use_kron in (True, False):
        b = B.clone().requires_grad_(True)
        s = torch.tensor(0.4, dtype=torch.float64, requires_grad=True)
        if use_kron:
            op = KroneckerOperator(factors)
            loss = (op.solve(b, shift=s) ** 2).sum() + op.logdet(shift=s)
        else:
            M = dense_of(factors) + s * torch.eye(6, dtype=torch.float64)
            loss = (torch.linalg.solve(M, b) ** 2).sum() + torch.logdet(M)
        loss.backward()
        results.append((b.grad, s.grad))
    torch.testing.assert_close(results[0][0], results[1][0], **tol(torch.float64, "solve"))
    torch.testing.assert_close(results[0][1], results[1][1], **tol(torch.float64, "solve"))


def test_in_place_edit_invalidates_cache(gen):
    a, b = random_spd(3, generator=gen), random_spd(4, generator=gen)
    op = KroneckerOperator([a, b])
    rhs = torch.randn(12, generator=gen, dtype=torch.float64)
    op.solve(rhs, shift=0.1)  # fills the cache
    a.mul_(3.0)  # in-place edit: bumps a._version
    torch.testing.assert_close(op.solve(rhs, shift=0.1), torch.linalg.solve(dense_of([a, b], 0.1), rhs),
                               **tol(torch.float64, "solve"))
    torch.testing.assert_close(op.logdet(), torch.logdet(dense_of([a, b])), **tol(torch.float64, "solve"))
    a[0, 0] += 1.0  # indexed assignment also bumps the version
    eig = op.eigh()
    torch.testing.assert_close(torch.sort(eig.eigenvalues).values, torch.linalg.eigvalsh(dense_of([a, b])),
                               **tol(torch.float64, "spectral"))


def test_cholesky_route_matches_eigh_and_dense(gen, dtype):
    factors = [random_spd(n, cond=20.0, generator=gen, dtype=dtype) for n in (3, 5, 4)]
    op = KroneckerOperator(factors)
    B = torch.randn(60, 2, generator=gen, dtype=dtype)
    dense = dense_of([f.double() for f in factors])
    expected = torch.linalg.solve(dense, B.double()).to(dtype)
    torch.testing.assert_close(op.solve(B, method="cholesky"), expected, **tol(dtype, "solve"))
    torch.testing.assert_close(op.logdet(method="cholesky"), torch.logdet(dense).to(dtype), **tol(dtype, "solve"))
    with pytest.raises(ValueError, match="needs shift=0"):
        op.solve(B, shift=0.1, method="cholesky")
    with pytest.raises(ValueError, match="method must be one of"):
        op.solve(B, method="lu")
    with pytest.raises(ValueError, match="not positive definite"):
        KroneckerOperator([-factors[0]]).solve(B[:3], method="cholesky")


def test_cholesky_route_gradients_match_dense(gen):
    factors = [random_spd(3, generator=gen), random_spd(4, generator=gen)]
    B = torch.randn(12, generator=gen, dtype=torch.float64)

    def ours(fs):
        op = KroneckerOperator(fs)
        return op.solve(B, method="cholesky").square().sum() + op.logdet(method="cholesky")

    def dense(fs):
        M = dense_of(fs)
        return torch.linalg.solve(M, B).square().sum() + torch.logdet(M)

    for g, w in zip(_grads(ours, factors), _grads(dense, factors)):
        # the Cholesky backward uses only the lower triangle: compare symmetric parts
        torch.testing.assert_close(0.5 * (g + g.mT), 0.5 * (w + w.mT), **tol(torch.float64, "solve"))


def test_hopelessly_conditioned_float32_warns():
    """cond * eps32 >= 1 (shift 1e-7 on SE factors): not singular by the rounding bound, but no digit is certain."""
    from sciml.core import NumericalWarning

    op = KroneckerOperator([se_factor(n, torch.float32) for n in (16, 17, 18)])
    assert op.conditioning(1e-7).condition_estimate * torch.finfo(torch.float32).eps >= 1
    with pytest.warns(NumericalWarning, match="no correct digits"):
        op.solve(torch.ones(4896), shift=1e-7)


def _squared_exponential(n: int, lengthscale: float, jitter: float) -> torch.Tensor:
    x = torch.linspace(0.0, 1.0, n, dtype=torch.float64)
    return torch.exp(-(x[:, None] - x[None, :]) ** 2 / (2 * lengthscale ** 2)) + jitter * torch.eye(n, dtype=torch.float64)


def test_cholesky_solve_is_backward_stable_on_ill_conditioned_kernels(gen):
    # GP kernel factors with condition ~1e8-1e10: the triangular-solve route leaves a residual at rounding level;
    # an explicit inverse (cholesky_inverse + GEMM, the previous implementation) left ~1e-7 here.
    factors = [_squared_exponential(48, 0.2, 1e-8), _squared_exponential(40, 0.26, 1e-8)]
    op = KroneckerOperator(factors)
    B = (op @ torch.randn(48 * 40, generator=gen, dtype=torch.float64))
    X = op.solve(B, method="cholesky")
    assert ((op @ X) - B).norm() / B.norm() < 1e-12
    explicit = kron_apply([torch.cholesky_inverse(L) for L in op.cholesky_factors()], B[:, None])[:, 0]
    assert ((op @ explicit) - B).norm() / B.norm() > 1e-11  # the case is hard enough to tell them apart


def test_cholesky_factors_are_the_factor_choleskys_and_colour_noise(gen):
    factors = [random_spd(n, generator=gen) for n in (3, 4)]
    op = KroneckerOperator(factors)
    chols = op.cholesky_factors()
    for L, A in zip(chols, factors):
        assert torch.equal(L, torch.tril(L))
        torch.testing.assert_close(L @ L.mT, A, rtol=1e-12, atol=1e-12)
    # (⊗ L_k)(⊗ L_k)ᵀ = A: the colouring map reproduces the dense covariance.
    colour = dense_of(list(chols))
    torch.testing.assert_close(colour @ colour.mT, op.to_dense(), rtol=1e-12, atol=1e-12)
    assert op.cholesky_factors() is chols  # cached
