"""gpytorch wrappers: equal to mlp_kernel, and an ExactGP posterior equals kernel ridge regression by hand."""

from __future__ import annotations

import math

import pytest
import torch

from sciml.kernels import mlp_kernel

gpytorch = pytest.importorskip("gpytorch")

SETTINGS = dict(depth=2, activation="relu", sigma_w=math.sqrt(2.0), sigma_b=0.1)


def test_kernels_equal_mlp_kernel(gen):
    from sciml.kernels import NNGPKernel, NTKKernel
    X1 = torch.randn(7, 3, generator=gen, dtype=torch.float64)
    X2 = torch.randn(4, 3, generator=gen, dtype=torch.float64)
    exact = mlp_kernel(X1, X2, **SETTINGS)
    for cls, ref in ((NNGPKernel, exact.nngp), (NTKKernel, exact.ntk)):
        k = cls(**SETTINGS)
        assert torch.allclose(k(X1, X2).to_dense(), ref, rtol=1e-12)
        same = getattr(mlp_kernel(X1, **SETTINGS), cls._which)
        assert torch.allclose(k(X1, X1, diag=True), torch.diagonal(same), rtol=1e-12)
    with pytest.raises(ValueError, match="unknown activation"):
        NTKKernel(activation="softsign?")


def test_exact_gp_posterior_is_kernel_ridge(gen):
    from sciml.kernels import NTKKernel
    X = torch.randn(20, 3, generator=gen, dtype=torch.float64)
    y = torch.sin(X.sum(-1))
    Xt = torch.randn(5, 3, generator=gen, dtype=torch.float64)
    noise = 1e-2

    class GP(gpytorch.models.ExactGP):
        def __init__(self, x, t, likelihood):
            super().__init__(x, t, likelihood)
            self.mean = gpytorch.means.ZeroMean()
            self.cov = NTKKernel(**SETTINGS)

        def forward(self, x):
            return gpytorch.distributions.MultivariateNormal(self.mean(x), self.cov(x))

    likelihood = gpytorch.likelihoods.GaussianLikelihood().double()
    likelihood.noise = noise
    model = GP(X, y, likelihood).double().eval()
    likelihood.eval()
    with torch.no_grad(), gpytorch.settings.fast_computations(False, False, False):
        mean = likelihood(model(Xt)).mean
    K = mlp_kernel(X, **SETTINGS).ntk
    Ks = mlp_kernel(Xt, X, **SETTINGS).ntk
    ridge = Ks @ torch.linalg.solve(K + noise * torch.eye(20, dtype=torch.float64), y)
    assert torch.allclose(mean, ridge, rtol=1e-6, atol=1e-8)


def test_exact_gp_trains_with_scale_kernel(gen):
    """ScaleKernel(NNGPKernel) in an ExactGP: marginal likelihood decreases under Adam on outputscale/noise."""
    from sciml.kernels import NNGPKernel
    X = torch.randn(30, 2, generator=gen, dtype=torch.float64)
    y = 3.0 * torch.sin(X[:, 0]) + 0.05 * torch.randn(30, generator=gen, dtype=torch.float64)

    class GP(gpytorch.models.ExactGP):
        def __init__(self, x, t, likelihood):
            super().__init__(x, t, likelihood)
            self.mean = gpytorch.means.ZeroMean()
            self.cov = gpytorch.kernels.ScaleKernel(NNGPKernel(**SETTINGS))

        def forward(self, x):
            return gpytorch.distributions.MultivariateNormal(self.mean(x), self.cov(x))

    likelihood = gpytorch.likelihoods.GaussianLikelihood().double()
    model = GP(X, y, likelihood).double().train()
    mll = gpytorch.mlls.ExactMarginalLogLikelihood(likelihood, model)
    opt = torch.optim.Adam(model.parameters(), lr=0.1)
    losses = []
    for _ in range(30):
        opt.zero_grad()
        loss = -mll(model(X), y)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert all(math.isfinite(v) for v in losses)
    assert losses[-1] < losses[0] - 0.1
