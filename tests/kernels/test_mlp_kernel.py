"""Exact MLP kernels: spec 2.2.3 anchors, V-transforms vs Gauss-Hermite and Monte Carlo, bad input."""

from __future__ import annotations

import math

import pytest
import torch

from sciml.kernels import erf_v, gauss_hermite_v, mlp_kernel, mlp_kernel_diag, monte_carlo_v, relu_v


def _anchor_inputs(dtype=torch.float64) -> torch.Tensor:
    """e1 _|_ e2 and e3 at 1 rad from e1, all with x.x/d = 1 (spec 2.2.3)."""
    d = 4
    e1 = torch.zeros(d, dtype=dtype)
    e1[0] = 2.0
    e2 = torch.zeros(d, dtype=dtype)
    e2[1] = 2.0
    return torch.stack([e1, e2, math.cos(1.0) * e1 + math.sin(1.0) * e2])


@pytest.mark.parametrize("depth, nngp, ntk", [
    (1, {(0, 0): 2.0, (0, 1): 0.6366, (0, 2): 1.2723}, {(0, 0): 4.0, (0, 1): 0.6366, (0, 2): 2.0090}),
    (3, {(0, 1): 1.2097}, {(0, 0): 8.0, (0, 1): 2.1208}),
    (10, {(0, 1): 1.7431}, {(0, 0): 22.0}),
])
def test_relu_anchors(depth, nngp, ntk):
    out = mlp_kernel(_anchor_inputs(), depth=depth, activation="relu", sigma_w=math.sqrt(2.0), sigma_b=0.0)
    for (i, j), value in nngp.items():
        assert abs(float(out.nngp[i, j]) - value) < 1e-4
    for (i, j), value in ntk.items():
        assert abs(float(out.ntk[i, j]) - value) < 1e-4
    assert abs(float(out.ntk[1, 1]) - 2 * (depth + 1)) < 1e-12          # diag Theta = 2(L+1) exactly


def test_erf_anchors_closed_form_and_quadrature():
    X = _anchor_inputs()
    for activation in ("erf", torch.erf):                                # closed form and Gauss-Hermite
        out = mlp_kernel(X, depth=1, activation=activation, sigma_w=1.0, sigma_b=0.0)
        assert abs(float(out.nngp[0, 0]) - 0.46456) < 1e-4
        assert abs(float(out.nngp[0, 2]) - 0.23458) < 1e-4
        assert abs(float(out.ntk[0, 0]) - 1.03397) < 1e-4
        assert abs(float(out.ntk[0, 2]) - 0.48040) < 1e-4


def test_output_follows_input_dtype_and_symmetry(gen):
    X = torch.randn(7, 3, generator=gen, dtype=torch.float32)
    out = mlp_kernel(X, depth=2, sigma_w=1.3, sigma_b=0.2)
    assert out.nngp.dtype == torch.float32 and out.ntk.shape == (7, 7)
    assert torch.equal(out.ntk, out.ntk.T)
    ref = mlp_kernel(X.double(), X.double(), depth=2, sigma_w=1.3, sigma_b=0.2)   # X2 given: no symmetrization
    assert torch.allclose(out.ntk.double(), ref.ntk, rtol=1e-6)
    diag = mlp_kernel_diag(X.double(), depth=2, sigma_w=1.3, sigma_b=0.2)
    assert torch.allclose(diag.ntk, torch.diagonal(ref.ntk), rtol=1e-12)
    assert torch.allclose(diag.nngp, torch.diagonal(ref.nngp), rtol=1e-12)


def test_standard_parameterization_same_nngp_other_ntk(gen):
    X = torch.randn(5, 3, generator=gen, dtype=torch.float64)
    ntk = mlp_kernel(X, depth=2, sigma_w=1.4, sigma_b=0.1)
    std = mlp_kernel(X, depth=2, sigma_w=1.4, sigma_b=0.1, parameterization="standard", width=64)
    assert torch.allclose(ntk.nngp, std.nngp, rtol=1e-14)
    assert not torch.allclose(ntk.ntk, std.ntk, rtol=1e-2)
    # depth 0 is a linear model z = W x + b: its standard NTK is x.x' + 1 by hand
    lin = mlp_kernel(X, depth=0, sigma_w=1.4, sigma_b=0.1, parameterization="standard", width=64)
    assert torch.allclose(lin.ntk, X @ X.T + 1, rtol=1e-12)


# (k11, k12, k22) covariances: generic, negatively correlated, nearly collinear
COVS = [(1.0, 0.3, 2.0), (0.5, -0.4, 1.5), (2.0, 1.99, 2.0)]


@pytest.mark.parametrize("k11, k12, k22", COVS)
def test_erf_v_matches_gauss_hermite(k11, k12, k22):
    k = [torch.tensor(v, dtype=torch.float64) for v in (k11, k12, k22)]
    exact = erf_v(*k)
    quad = gauss_hermite_v(torch.erf, *k, deg=64)
    # 64 nodes per axis: measured quadrature error 3.5e-7 at correlation 0.995, < 1e-8 elsewhere
    assert abs(float(exact[0] - quad[0])) < 1e-6
    assert abs(float(exact[1] - quad[1])) < 1e-6


def test_relu_v_diagonal_identity_and_quadrature():
    k = torch.tensor([0.3, 1.0, 4.0], dtype=torch.float64)
    v_phi, v_der = relu_v(k, k, k)
    assert torch.allclose(v_phi, k / 2, rtol=1e-14) and torch.allclose(v_der, torch.full_like(k, 0.5))
    # ReLU is kinked: Gauss-Hermite converges slowly, so only a loose cross-check (closed form is the reference)
    a = [torch.tensor(v, dtype=torch.float64) for v in (1.0, 0.3, 2.0)]
    quad = gauss_hermite_v(torch.relu, *a, deg=96)
    exact = relu_v(*a)
    assert abs(float(exact[0] - quad[0])) < 2e-3
    assert abs(float(exact[1] - quad[1])) < 2e-2


@pytest.mark.parametrize("name, phi, V", [("relu", torch.relu, relu_v), ("erf", torch.erf, erf_v)])
def test_v_transforms_vs_monte_carlo(name, phi, V):
    gen = torch.Generator().manual_seed(1234)
    for k11, k12, k22 in COVS[:2]:
        mc_phi, se_phi, mc_der, se_der = monte_carlo_v(phi, k11, k12, k22, 1_000_000, gen)
        exact = V(*[torch.tensor(v, dtype=torch.float64) for v in (k11, k12, k22)])
        assert abs(float(exact[0]) - mc_phi) < 4 * se_phi, name
        assert abs(float(exact[1]) - mc_der) < 4 * se_der, name


@pytest.mark.parametrize("kwargs, match", [
    (dict(depth=-1), "depth"),
    (dict(depth=1.5), "depth"),
    (dict(activation="tanhh"), "unknown activation"),
    (dict(sigma_w=-1.0), "sigma_w"),
    (dict(parameterization="mup"), "parameterization"),
    (dict(parameterization="standard"), "width"),
])
def test_bad_settings(kwargs, match):
    with pytest.raises(ValueError, match=match):
        mlp_kernel(torch.randn(3, 2, dtype=torch.float64), **kwargs)


def test_bad_inputs():
    X = torch.randn(3, 2, dtype=torch.float64)
    with pytest.raises(ValueError, match="d = 2"):
        mlp_kernel(X, torch.randn(4, 3, dtype=torch.float64))
    bad = X.clone()
    bad[1, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        mlp_kernel(bad)
    with pytest.raises(ValueError, match="NaN"):
        mlp_kernel(X, bad)
    with pytest.raises(ValueError, match="shape"):
        mlp_kernel(torch.randn(3, dtype=torch.float64))
