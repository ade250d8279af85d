"""Tests for sciml.linalg.matfun against SVD/eigh identities and scipy.linalg oracles."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch

from sciml.linalg.matfun import NS_QUINTIC, inv_sqrtm_psd, logm_psd, newton_schulz, polar, sqrtm_psd

F64 = torch.float64


def make_gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def with_singular_values(m: int, n: int, s: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """``U diag(s) V^T`` with random orthonormal U (m, r), V (n, r), r = min(m, n)."""
    r = min(m, n)
    U = torch.linalg.qr(torch.randn(m, r, generator=gen, dtype=F64)).Q
    V = torch.linalg.qr(torch.randn(n, r, generator=gen, dtype=F64)).Q
    return (U * s) @ V.T


def spd(n: int, eigenvalues: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    A = with_singular_values(n, n, torch.ones(n, dtype=F64), gen)  # a random orthogonal matrix
    A = (A * eigenvalues) @ A.T
    return (A + A.T) / 2


# ---- Newton-Schulz ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(64, 32), (32, 64)])
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
def test_newton_schulz_singular_values_in_band_and_orientation(shape, dtype):
    gen = make_gen(0)
    G = with_singular_values(*shape, torch.linspace(1, 10, min(shape), dtype=F64), gen).float()  # cond 10
    X = newton_schulz(G, dtype=dtype)
    assert X.shape == G.shape and X.dtype == torch.float32
    s = torch.linalg.svdvals(X.double())
    # the spec measures ~[0.7, 1.2]; the band is widened for bf16 rounding
    assert float(s.min()) >= 0.6 and float(s.max()) <= 1.25
    # the output is close to the exact polar factor in direction (same singular vectors)
    U = polar(G).unitary
    cosine = float((X * U).sum() / (X.norm() * U.norm()))
    assert cosine > 0.95


def test_newton_schulz_scalar_map_matches_spec():
    gen = make_gen(1)
    u = torch.randn(20, generator=gen)
    v = torch.randn(12, generator=gen)
    G = 7.0 * torch.outer(u, v)  # rank one: the Frobenius-normalised singular value is 1.0
    X = newton_schulz(G, dtype=torch.float32)
    s = torch.linalg.svdvals(X)
    torch.testing.assert_close(s[0], torch.tensor(0.696), rtol=0.0, atol=0.02)
    # same value from the scalar polynomial p(s) = a s + b s^3 + c s^5 applied five times
    a, b, c = NS_QUINTIC
    x = 1.0
    for _ in range(5):
        x = a * x + b * x ** 3 + c * x ** 5
    torch.testing.assert_close(s[0], torch.tensor(x, dtype=torch.float32), rtol=0.0, atol=1e-4)


def test_newton_schulz_batched_matches_per_matrix_and_keeps_dtype():
    gen = make_gen(2)
    G = torch.randn(3, 16, 8, generator=gen, dtype=F64)
    X = newton_schulz(G, dtype=torch.float32)
    assert X.dtype == F64 and X.shape == (3, 16, 8)
    for i in range(3):
        torch.testing.assert_close(X[i], newton_schulz(G[i], dtype=torch.float32), rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(newton_schulz(G, steps=0, dtype=F64),
                               G / (G.norm(dim=(-2, -1), keepdim=True) + 1e-7), rtol=1e-12, atol=1e-12)


def test_newton_schulz_rejects_bad_inputs():
    with pytest.raises(ValueError, match="2 dims"):
        newton_schulz(torch.ones(5))
    with pytest.raises(ValueError, match="dtype"):
        newton_schulz(torch.ones(3, 3), dtype=torch.int32)
    with pytest.raises(ValueError, match="steps"):
        newton_schulz(torch.ones(3, 3), steps=-1)
    with pytest.raises(ValueError, match="NaN"):
        newton_schulz(torch.full((3, 3), float("nan")))


# ---- polar -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(7, 4), (4, 7), (5, 5)])
def test_polar_matches_scipy(shape):
    G = torch.randn(*shape, generator=make_gen(3), dtype=F64)
    res = polar(G)
    u, p = scipy.linalg.polar(G.numpy(), side="right")
    torch.testing.assert_close(res.unitary, torch.from_numpy(u), rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(res.positive, torch.from_numpy(p), rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(res.unitary @ res.positive, G, rtol=1e-10, atol=1e-10)


def test_polar_float32_in_float32_out():
    G = torch.randn(6, 3, generator=make_gen(4))
    res = polar(G)
    assert res.unitary.dtype == torch.float32
    torch.testing.assert_close(res.unitary.mT @ res.unitary, torch.eye(3), rtol=1e-5, atol=1e-5)


# ---- PSD functions ---------------------------------------------------------------------------------------------
def test_sqrtm_psd_squares_to_a_and_matches_scipy():
    gen = make_gen(5)
    A = spd(12, torch.logspace(-2, 2, 12, dtype=F64), gen)
    root = sqrtm_psd(A)
    torch.testing.assert_close(root @ root, A, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(root, torch.from_numpy(np.real(scipy.linalg.sqrtm(A.numpy()))), rtol=1e-8, atol=1e-8)
    torch.testing.assert_close(root, root.T, rtol=0.0, atol=1e-12)


def test_sqrtm_psd_singular_and_batched():
    gen = make_gen(6)
    X = torch.randn(2, 8, 3, generator=gen, dtype=F64)
    A = X @ X.mT  # rank 3: tiny negative eigenvalues from rounding must be clipped, not rejected
    root = sqrtm_psd(A)
    assert root.shape == (2, 8, 8)
    torch.testing.assert_close(root @ root, A, rtol=1e-9, atol=1e-9)


def test_inv_sqrtm_psd_whitens():
    gen = make_gen(7)
    A = spd(10, torch.logspace(-1, 2, 10, dtype=F64), gen)
    W = inv_sqrtm_psd(A)
    torch.testing.assert_close(W @ A @ W, torch.eye(10, dtype=F64), rtol=1e-10, atol=1e-10)
    shifted = inv_sqrtm_psd(A, eps=0.5)
    torch.testing.assert_close(shifted @ shifted, torch.linalg.inv(A + 0.5 * torch.eye(10, dtype=F64)),
                               rtol=1e-10, atol=1e-10)


def test_logm_psd_matches_scipy_and_inverts_expm():
    gen = make_gen(8)
    A = spd(9, torch.logspace(-1, 1, 9, dtype=F64), gen)
    L = logm_psd(A)
    torch.testing.assert_close(L, torch.from_numpy(np.real(scipy.linalg.logm(A.numpy()))), rtol=1e-8, atol=1e-8)
    torch.testing.assert_close(torch.linalg.matrix_exp(L), A, rtol=1e-10, atol=1e-10)
    assert logm_psd(A.float()).dtype == torch.float32


def test_psd_functions_reject_bad_inputs():
    gen = make_gen(9)
    indefinite = spd(5, torch.tensor([-1.0, 1, 2, 3, 4], dtype=F64), gen)
    with pytest.raises(ValueError, match="not positive semi-definite"):
        sqrtm_psd(indefinite)
    with pytest.raises(ValueError, match="symmetric"):
        sqrtm_psd(torch.triu(torch.ones(4, 4, dtype=F64)))
    with pytest.raises(ValueError, match="square"):
        sqrtm_psd(torch.ones(3, 4, dtype=F64))
    singular = torch.diag(torch.tensor([0.0, 1.0, 2.0], dtype=F64))
    with pytest.raises(ValueError, match="singular"):
        logm_psd(singular)
    with pytest.raises(ValueError, match="singular"):
        inv_sqrtm_psd(singular)
    with pytest.raises(ValueError, match="eps"):
        inv_sqrtm_psd(singular, eps=-1.0)
    expected = torch.diag(torch.tensor([1.0, 2.0, 3.0], dtype=F64).rsqrt())  # (singular + I)^{-1/2}
    torch.testing.assert_close(inv_sqrtm_psd(singular, eps=1.0), expected, rtol=1e-12, atol=1e-12)
