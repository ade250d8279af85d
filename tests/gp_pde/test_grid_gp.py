"""Kronecker identities of the grid prior and the GP-HM objective against dense torch.kron computations."""

from __future__ import annotations

import pytest
import torch

from sciml.gp_pde import (
    KroneckerGridPrior,
    SpectralMixture1D,
    allen_cahn,
    boundary_indices,
    grid_axes,
    grid_points,
    manufactured,
)
from sciml.gp_pde.solver import GPHMConfig, _Component, _objective, _Setup


def _kernels(gen, dims=2, q=3, kind="gm"):
    out = []
    for _ in range(dims):
        k = SpectralMixture1D(kind, q, freq_scale=2.0)
        with torch.no_grad():
            k.params.logw.copy_(torch.randn(q, dtype=torch.float64, generator=gen) * 0.3)
            k.params.logls.copy_(torch.rand(q, dtype=torch.float64, generator=gen) + 1.0)
            k.params.mu.add_(torch.rand(q, dtype=torch.float64, generator=gen))
        out.append(k)
    return out


def _dense(kernels, axes, jitter, order=(0, 0)):
    """Dense pieces from kernel values at all pairs (no Toeplitz gather): C, and cross-cov of derivatives."""
    Cs = [k.matrix(x, x) + jitter * torch.eye(x.numel(), dtype=x.dtype) for k, x in zip(kernels, axes)]
    Ks = [k.matrix(x, x, order=a) if a else C for k, x, a, C in zip(kernels, axes, order, Cs)]
    return torch.kron(Cs[0], Cs[1]), torch.kron(Ks[0], Ks[1])


def test_prior_identities_equal_dense_kron(gen):
    axes = [torch.linspace(0, 1, 5, dtype=torch.float64), torch.linspace(-1, 2, 7, dtype=torch.float64)]
    kernels = _kernels(gen)
    prior = KroneckerGridPrior(kernels, axes, jitter=1e-3)
    U = torch.randn(5, 7, dtype=torch.float64, generator=gen)
    with torch.no_grad():
        C, _ = _dense(kernels, axes, 1e-3)
        torch.testing.assert_close(prior.operator().to_dense(), C, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(prior.logdet(), torch.linalg.slogdet(C)[1], rtol=1e-10, atol=1e-10)
        torch.testing.assert_close(prior.solve(U).reshape(-1), torch.linalg.solve(C, U.reshape(-1)),
                                   rtol=1e-9, atol=1e-9)
        torch.testing.assert_close(prior.quad(U), U.reshape(-1) @ torch.linalg.solve(C, U.reshape(-1)),
                                   rtol=1e-10, atol=0)
        torch.testing.assert_close(prior.color(prior.whiten(U)), U, rtol=1e-10, atol=1e-10)
        # derivatives: cross-covariance (K^(a)_1 ⊗ C_2 etc.) times C^{-1} vec(U), formed densely
        for orders in [(2, 0), (0, 2), (1, 0), (0, 1), (1, 1), (2, 1)]:
            _, Kx = _dense(kernels, axes, 1e-3, orders)
            expected = Kx @ torch.linalg.solve(C, U.reshape(-1))
            torch.testing.assert_close(prior.derivative(U, orders).reshape(-1), expected, rtol=1e-9, atol=1e-9)


def test_prediction_at_grid_and_scattered_points(gen):
    axes = [torch.linspace(0, 1, 6, dtype=torch.float64), torch.linspace(0, 1, 8, dtype=torch.float64)]
    kernels = _kernels(gen)
    prior = KroneckerGridPrior(kernels, axes, jitter=1e-3)
    U = torch.randn(6, 8, dtype=torch.float64, generator=gen)
    pts = torch.rand(9, 2, dtype=torch.float64, generator=gen)
    with torch.no_grad():
        C, _ = _dense(kernels, axes, 1e-3)
        alpha = torch.linalg.solve(C, U.reshape(-1))
        for orders in [(0, 0), (2, 0), (0, 1)]:
            # k^(a)(p, grid) for every grid point, by brute force over the grid
            grid = grid_points(axes)
            cross = torch.ones(9, grid.shape[0], dtype=torch.float64)
            for j in range(2):
                cross = cross * kernels[j].values((pts[:, j:j + 1] - grid[None, :, j]).reshape(-1),
                                                  orders[j]).reshape(9, -1)
            torch.testing.assert_close(prior.predict_points(U, pts, orders), cross @ alpha, rtol=1e-9, atol=1e-9)
        # on the grid itself the tensor-grid prediction equals the scattered one
        torch.testing.assert_close(prior.predict_grid(U, axes).reshape(-1), prior.predict_points(U, grid_points(axes)),
                                   rtol=1e-10, atol=1e-10)


def test_objective_and_gradients_equal_dense_implementation(gen):
    # Allen-Cahn 2-D (nonlinear) on a 6 x 7 grid: Kronecker loss vs a loss built from dense torch.kron matrices.
    prob = manufactured(allen_cahn(2), lambda x: torch.sin(3 * x[:, 0]) * torch.cos(2 * x[:, 1]), [(0, 1), (0, 2)])
    cfg = GPHMConfig(n_components=3, jitter=1e-4)
    setup = _Setup(prob, (6, 7), cfg, "cpu")
    kernels = _kernels(gen)
    U = torch.randn(6, 7, dtype=torch.float64, generator=gen, requires_grad=True)
    lt1 = torch.tensor(0.3, dtype=torch.float64, requires_grad=True)
    lt2 = torch.tensor(-0.2, dtype=torch.float64, requires_grad=True)
    params = [U, lt1, lt2] + [p for k in kernels for p in k.parameters()]

    prior = KroneckerGridPrior(kernels, setup.axes, cfg.jitter)
    loss = _objective(setup, [prior], [_Component(kernels, U)], [True], lt1, lt2, cfg)
    grads = torch.autograd.grad(loss, params)

    C, Kxx = _dense(kernels, setup.axes, cfg.jitter, (2, 0))
    _, Kyy = _dense(kernels, setup.axes, cfg.jitter, (0, 2))
    u = U.reshape(-1)
    alpha = torch.linalg.solve(C, u)
    H = Kxx @ alpha + Kyy @ alpha + u * (u**2 - 1) - setup.F.reshape(-1)
    ub = u[boundary_indices((6, 7))]
    M, Nb = 42, ub.numel()
    dense = (0.5 * torch.linalg.slogdet(C)[1] + 0.5 * u @ alpha
             + cfg.lambda_b * (-0.5 * Nb * lt1 + 0.5 * lt1.exp() * ((ub - setup.g) ** 2).sum())
             - 0.5 * M * lt2 + 0.5 * lt2.exp() * (H**2).sum())
    dense_grads = torch.autograd.grad(dense, params)
    torch.testing.assert_close(loss, dense, rtol=1e-10, atol=0)
    for g, e in zip(grads, dense_grads):
        torch.testing.assert_close(g, e, rtol=1e-8, atol=1e-8 * float(e.abs().max()))


def test_boundary_indices_follow_reference_order():
    flat = torch.arange(12).reshape(3, 4)
    expected = torch.cat([flat[0, :], flat[-1, :], flat[:, 0], flat[:, -1]])
    assert torch.equal(boundary_indices((3, 4)), expected)
    assert torch.equal(boundary_indices((5,)), torch.tensor([0, 4]))


def test_not_positive_definite_factor_is_a_clear_error():
    k = SpectralMixture1D("gm", 2)
    with torch.no_grad():
        k.params.logw.fill_(float("nan"))
    with pytest.raises(ValueError, match="positive definite"):
        KroneckerGridPrior([k], grid_axes([(0.0, 1.0)], (5,), torch.float64, "cpu"))


def test_midpoint_matrix_equals_cross_matrix(gen):
    axes = [torch.linspace(0, 2, 9, dtype=torch.float64)]
    kernels = _kernels(gen, dims=1)
    prior = KroneckerGridPrior(kernels, axes, jitter=1e-4)
    mids = 0.5 * (axes[0][1:] + axes[0][:-1])
    with torch.no_grad():
        for order in (0, 1, 2):
            torch.testing.assert_close(prior.midpoint_matrix(0, order), prior.cross_matrix(0, mids, order),
                                       rtol=1e-11, atol=1e-11)
