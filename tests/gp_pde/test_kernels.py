"""Kernel values and closed-form derivatives against finite differences, autograd, gpytorch and closed forms."""

from __future__ import annotations

import math

import pytest
import torch

from sciml.gp_pde import SpectralMixture1D

CASES = [("gm", 2.5), ("se", 2.5), ("stm", 2.5), ("stm", 3.5), ("stm", 4.5), ("matern", 2.5), ("matern", 4.5)]


def _kernel(kind, nu, gen, q=4):
    k = SpectralMixture1D(kind, q, freq_scale=3.0, nu=nu)
    with torch.no_grad():
        k.params.logw.copy_(torch.randn(q, dtype=torch.float64, generator=gen) * 0.5)
        k.params.logls.copy_(torch.rand(q, dtype=torch.float64, generator=gen) * 2.0)
        k.params.mu.copy_(torch.rand(q, dtype=torch.float64, generator=gen) * 3.0)
    return k


@pytest.mark.parametrize("kind,nu", CASES)
def test_derivatives_match_central_differences(kind, nu, gen):
    k = _kernel(kind, nu, gen)
    d = torch.linspace(-1.3, 1.3, 41, dtype=torch.float64) + 1e-3      # includes lags close to 0, not 0
    h = 1e-4
    with torch.no_grad():
        fd1 = (k.values(d + h) - k.values(d - h)) / (2 * h)
        fd2 = (k.values(d + h, 1) - k.values(d - h, 1)) / (2 * h)
        fd2_from_k = (k.values(d + h) - 2 * k.values(d) + k.values(d - h)) / h**2
        scale = k.values(torch.zeros(1, dtype=torch.float64), 2).abs()
        torch.testing.assert_close(k.values(d, 1), fd1, rtol=1e-6, atol=1e-7 * scale.item())
        torch.testing.assert_close(k.values(d, 2), fd2, rtol=1e-6, atol=1e-7 * scale.item())
        torch.testing.assert_close(k.values(d, 2), fd2_from_k, rtol=1e-4, atol=1e-4 * scale.item())


@pytest.mark.parametrize("kind,nu", CASES)
def test_derivatives_match_autograd_away_from_zero(kind, nu, gen):
    k = _kernel(kind, nu, gen)
    d = torch.tensor([-0.7, -0.2, 0.05, 0.4, 1.1], dtype=torch.float64, requires_grad=True)
    k0 = k.values(d)
    g1 = torch.autograd.grad(k0.sum(), d, create_graph=True)[0]
    g2 = torch.autograd.grad(g1.sum(), d)[0]
    torch.testing.assert_close(k.values(d, 1).detach(), g1.detach(), rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(k.values(d, 2).detach(), g2, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("kind,nu", CASES)
def test_second_derivative_at_zero_closed_form(kind, nu, gen):
    # k''(0) = sum_q w_q (phi_q''(0) - m_q^2): phi''(0) = -2 rho (SE), -a^2 Q(0) = -a^2/(2 nu - 2) (Matern nu)
    k = _kernel(kind, nu, gen)
    p = k.params
    w, s = p.logw.exp().detach(), p.logls.exp().detach()
    m2 = (2 * math.pi * p.mu.detach()) ** 2 if kind in ("gm", "stm") else torch.zeros_like(w)
    env = -2 * s if kind in ("gm", "se") else -(2 * nu * s**2) / (2 * nu - 2)
    expected = (w * (env - m2)).sum()
    with torch.no_grad():
        got = k.values(torch.zeros(1, dtype=torch.float64), 2)[0]
        torch.testing.assert_close(got, expected, rtol=1e-12, atol=0.0)
        # first derivative is odd: exactly 0 at the origin
        assert k.values(torch.zeros(1, dtype=torch.float64), 1)[0] == 0


def test_toeplitz_gather_equals_dense_evaluation(gen):
    k = _kernel("stm", 2.5, gen)
    x = torch.linspace(0.0, 2.0, 37, dtype=torch.float64)
    with torch.no_grad():
        for order, mat in enumerate(k.toeplitz(x, 2)):
            dense = k.values((x[:, None] - x[None, :]).reshape(-1), order).reshape(37, 37)
            torch.testing.assert_close(mat, dense, rtol=1e-12, atol=1e-12)
        K1 = k.matrix(x, order=1)
        torch.testing.assert_close(K1, -K1.mT, rtol=0, atol=1e-12)      # odd derivative: antisymmetric


def test_gm_equals_gpytorch_spectral_mixture(gen):
    gpytorch = pytest.importorskip("gpytorch")
    q = 5
    weights = torch.rand(q, dtype=torch.float64, generator=gen) + 0.1
    means = torch.rand(q, dtype=torch.float64, generator=gen) * 10
    scales = torch.rand(q, dtype=torch.float64, generator=gen) * 0.5 + 0.05
    ref = gpytorch.kernels.SpectralMixtureKernel(num_mixtures=q, ard_num_dims=1).double()
    ref.initialize(mixture_weights=weights, mixture_means=means.view(q, 1, 1), mixture_scales=scales.view(q, 1, 1))
    ours = SpectralMixture1D("gm", q)
    with torch.no_grad():
        ours.params.logw.copy_(weights.log())
        ours.params.mu.copy_(means)
        ours.params.logls.copy_((2 * math.pi**2 * scales**2).log())     # rho = 2 pi^2 sigma^2
        x = torch.rand(17, dtype=torch.float64, generator=gen) * 3
        y = torch.rand(11, dtype=torch.float64, generator=gen) * 3
        expected = ref(x[:, None], y[:, None]).to_dense()
        torch.testing.assert_close(ours.matrix(x, y), expected, rtol=1e-10, atol=1e-12)


def test_bad_kernel_arguments():
    with pytest.raises(ValueError, match="kind"):
        SpectralMixture1D("rbf")
    with pytest.raises(ValueError, match="nu"):
        SpectralMixture1D("stm", nu=1.5)
    with pytest.raises(ValueError, match="n_components"):
        SpectralMixture1D("gm", 0)
    with pytest.raises(ValueError, match="order"):
        SpectralMixture1D("gm").values(torch.zeros(3, dtype=torch.float64), 3)


def test_cross_matrix_row_blocks_equal_one_block(gen, monkeypatch):
    # kernels.matrix evaluates (x, y) lags in row blocks to bound memory (issue 12: 300 x 256 x Q temporaries were
    # ~150 MB); the blocks must not change a value, and gradients must still flow through them
    import sciml.gp_pde.kernels as kernels

    k = SpectralMixture1D("gm", 5, freq_scale=3.0)
    x = torch.rand(23, dtype=torch.float64, generator=gen)
    y = torch.rand(17, dtype=torch.float64, generator=gen)
    whole = k.matrix(x, y, order=2)
    monkeypatch.setattr(kernels, "MAX_LAG_ELEMENTS", 5 * 17 * 3)      # 3 rows per block: 8 blocks
    blocked = k.matrix(x, y, order=2)
    torch.testing.assert_close(blocked, whole, rtol=0, atol=0)
    (g,) = torch.autograd.grad(blocked.sum(), k.params.mu)
    (g_ref,) = torch.autograd.grad(whole.sum(), k.params.mu)
    torch.testing.assert_close(g, g_ref, rtol=1e-12, atol=1e-12)
