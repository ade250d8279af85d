"""Batched SPD functions and the Lyapunov solve: forward vs scipy, gradients vs finite differences / dense
autograd, and finite gradients at repeated eigenvalues (where eigh's own backward returns NaN)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from sciml.linalg import lyapunov_solve, spd_inv_sqrtm, spd_logm, spd_power, spd_sqrtm
from sciml.testing import random_spd, tol

FUNCS = {
    "sqrtm": (spd_sqrtm, lambda a: a ** 0.5),
    "inv_sqrtm": (spd_inv_sqrtm, lambda a: a ** -0.5),
    "power_0.3": (lambda A: spd_power(A, 0.3), lambda a: a ** 0.3),
    "logm": (spd_logm, np.log),
}


def scipy_reference(A: torch.Tensor, scalar) -> torch.Tensor:
    """Independent reference: numpy eigh of each matrix (scipy's sqrtm/logm agree to ~1e-13 here)."""
    out = []
    for a in A.reshape(-1, *A.shape[-2:]).numpy():
        w, v = np.linalg.eigh(a)
        out.append((v * scalar(w)) @ v.T)
    return torch.from_numpy(np.stack(out)).reshape(A.shape)


@pytest.mark.parametrize("name", list(FUNCS))
def test_forward_matches_reference_batched(gen, name, dtype):
    fn, scalar = FUNCS[name]
    A = torch.stack([random_spd(5, cond=50.0, generator=gen) for _ in range(3)])  # (3, 5, 5)
    torch.testing.assert_close(fn(A.to(dtype)), scipy_reference(A, scalar).to(dtype), **tol(dtype, "spectral"))


def test_sqrtm_matches_scipy_sqrtm(gen):
    linalg = pytest.importorskip("scipy.linalg")
    A = random_spd(6, cond=100.0, generator=gen)
    torch.testing.assert_close(spd_sqrtm(A), torch.from_numpy(np.real(linalg.sqrtm(A.numpy()))),
                               **tol(torch.float64, "spectral"))


def _directional_fd(fn, A, E, W, h=1e-6):
    return float(((W * (fn(A + h * E) - fn(A - h * E))).sum()) / (2 * h))


@pytest.mark.parametrize("name", list(FUNCS))
@pytest.mark.parametrize("repeated", [False, True])
def test_gradient_matches_finite_differences(gen, name, repeated):
    """<grad, E> = d/dt <W, f(A + tE)> along a symmetric E; with repeated eigenvalues too."""
    fn, _ = FUNCS[name]
    if repeated:  # eigenvalues 2, 2, 2, 5, 5: eigh's backward divides by zero gaps here
        Q = torch.linalg.qr(torch.randn(5, 5, generator=gen, dtype=torch.float64))[0]
        A = (Q * torch.tensor([2.0, 2.0, 2.0, 5.0, 5.0], dtype=torch.float64)) @ Q.T
        A = (A + A.T) / 2
    else:
        A = random_spd(5, cond=20.0, generator=gen)
    E = torch.randn(5, 5, generator=gen, dtype=torch.float64)
    E = (E + E.T) / 2
    W = torch.randn(5, 5, generator=gen, dtype=torch.float64)
    leaf = A.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad((W * fn(leaf)).sum(), leaf)
    assert bool(torch.isfinite(grad).all())
    assert float((grad * E).sum()) == pytest.approx(_directional_fd(fn, A, E, W), rel=1e-6, abs=1e-8)


def test_sqrtm_gradient_at_scaled_identity_closed_form(gen):
    """sqrt(cI + tE) = sqrt(c) I + t E / (2 sqrt(c)) + O(t^2): the gradient of <W, sqrtm> is sym(W) / (2 sqrt c)."""
    W = torch.randn(4, 4, generator=gen, dtype=torch.float64)
    A = (2.0 * torch.eye(4, dtype=torch.float64)).requires_grad_(True)
    (grad,) = torch.autograd.grad((W * spd_sqrtm(A)).sum(), A)
    torch.testing.assert_close(grad, (W + W.T) / 2 / (2 * math.sqrt(2.0)), **tol(torch.float64, "exact"))
    # for contrast: autograd through eigh is NaN/Inf here
    B = (2.0 * torch.eye(4, dtype=torch.float64)).requires_grad_(True)
    lam, V = torch.linalg.eigh(B)
    (naive,) = torch.autograd.grad((W * ((V * lam.sqrt()) @ V.T)).sum(), B)
    assert not bool(torch.isfinite(naive).all())


def _lyapunov_dense(A, C):
    """X from A X + X A = C as one dense (n^2 x n^2) solve: a differentiable reference for general A."""
    n = A.shape[0]
    eye = torch.eye(n, dtype=A.dtype)
    # row-major vec: vec(A X) = (A ⊗ I) vec(X) and vec(X A) = (I ⊗ A^T) vec(X)
    K = torch.kron(A, eye) + torch.kron(eye, A.mT.contiguous())
    return torch.linalg.solve(K, C.reshape(-1)).reshape(n, n)


@pytest.mark.parametrize("repeated", [False, True])
def test_lyapunov_forward_and_gradients(gen, repeated):
    A = torch.eye(4, dtype=torch.float64) * 3 if repeated else random_spd(4, cond=30.0, generator=gen)
    C = torch.randn(4, 4, generator=gen, dtype=torch.float64)
    W = torch.randn(4, 4, generator=gen, dtype=torch.float64)
    X = lyapunov_solve(A, C)
    torch.testing.assert_close(A @ X + X @ A, C, **tol(torch.float64, "solve"))
    torch.testing.assert_close(X, _lyapunov_dense(A, C), **tol(torch.float64, "solve"))
    grads = []
    for solver in (lyapunov_solve, _lyapunov_dense):
        a, c = A.clone().requires_grad_(True), C.clone().requires_grad_(True)
        grads.append(torch.autograd.grad((W * solver(a, c)).sum(), (a, c)))
    (ga, gc), (ra, rc) = grads
    assert bool(torch.isfinite(ga).all())
    torch.testing.assert_close(gc, rc, **tol(torch.float64, "solve"))
    torch.testing.assert_close(ga, ra, **tol(torch.float64, "solve"))


def test_lyapunov_matches_scipy(gen):
    linalg = pytest.importorskip("scipy.linalg")
    A = random_spd(5, generator=gen)
    C = torch.randn(5, 5, generator=gen, dtype=torch.float64)
    ref = linalg.solve_continuous_lyapunov(A.numpy(), C.numpy())  # A X + X A^H = C
    torch.testing.assert_close(lyapunov_solve(A, C), torch.from_numpy(ref), **tol(torch.float64, "solve"))


@pytest.mark.parametrize("call, match", [
    (lambda: spd_sqrtm(torch.randn(3, 3, dtype=torch.float64) + 5 * torch.eye(3, dtype=torch.float64)
                       + torch.triu(torch.ones(3, 3, dtype=torch.float64), 1)), "symmetric"),
    (lambda: spd_sqrtm(-torch.eye(3, dtype=torch.float64)), "not positive definite"),
    (lambda: spd_logm(torch.zeros(3, 3, dtype=torch.float64)), "not positive definite"),
    (lambda: spd_sqrtm(torch.eye(3, dtype=torch.int64)), "floating"),
    (lambda: spd_sqrtm(torch.eye(3, dtype=torch.complex128)), "real symmetric"),
    (lambda: spd_sqrtm(torch.ones(3, 4, dtype=torch.float64)), "square"),
    (lambda: spd_sqrtm(torch.full((2, 2), float("nan"), dtype=torch.float64)), "NaN"),
    (lambda: spd_power(torch.eye(3, dtype=torch.float64), float("nan")), "p must be"),
    (lambda: lyapunov_solve(torch.eye(3, dtype=torch.float64), torch.ones(2, 2, dtype=torch.float64)),
     "trailing shape"),
])
def test_spd_bad_inputs(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_eigenvalue_clamp_matches_dense_and_has_finite_gradient_at_repeated_eigenvalues():
    from sciml.linalg import eigenvalue_clamp

    g = torch.Generator().manual_seed(5)
    Q, _ = torch.linalg.qr(torch.randn(5, 5, generator=g, dtype=torch.float64))
    lam = torch.tensor([-2.0, 0.5, 0.5, 1.0, 3.0], dtype=torch.float64)  # indefinite, one repeated pair
    A = (Q * lam) @ Q.T
    out = eigenvalue_clamp(A, 0.75)
    want = (Q * lam.clamp_min(0.75)) @ Q.T
    assert torch.allclose(out, want, atol=1e-13)
    # Directional derivative vs central finite differences along a symmetric direction (the floor is not hit
    # by any eigenvalue within the step, so the map is smooth there).
    E = torch.randn(5, 5, generator=g, dtype=torch.float64)
    E = (E + E.T) / 2
    Ar = A.clone().requires_grad_(True)
    (eigenvalue_clamp(Ar, 0.75) * E).sum().backward()
    h = 1e-6
    fd = ((eigenvalue_clamp(A + h * E, 0.75) - eigenvalue_clamp(A - h * E, 0.75)) * E).sum() / (2 * h)
    assert torch.isfinite(Ar.grad).all()
    assert abs(float((Ar.grad * E).sum() - fd)) < 1e-7
    # At the identity (n-fold repeated eigenvalue) the gradient is the identity map on symmetric directions.
    I = torch.eye(4, dtype=torch.float64, requires_grad=True)
    (eigenvalue_clamp(I, 0.5) * E[:4, :4]).sum().backward()
    assert torch.allclose(I.grad, E[:4, :4], atol=1e-14)
