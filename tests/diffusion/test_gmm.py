"""Exact GMM score, noise prediction and Hessian against autograd of an independent log-density."""

from __future__ import annotations

import math

import pytest
import torch

from sciml.diffusion import GaussianMixture, VPSchedule, gmm_2d_8mode, gmm_16d_5mode


def _reference_log_prob(mix: GaussianMixture, x: torch.Tensor, alpha: float, sigma: float) -> torch.Tensor:
    """log p_t via torch.distributions (Cholesky-based), independent of the eigenbasis code under test."""
    eye = torch.eye(mix.dim, dtype=torch.float64)
    comps = torch.distributions.MultivariateNormal(alpha * mix.means, alpha**2 * mix.covs + sigma**2 * eye)
    return torch.logsumexp(comps.log_prob(x[:, None, :]) + torch.log(mix.weights), dim=1)


@pytest.mark.parametrize("problem", ["2d", "16d"])
@pytest.mark.parametrize("t", [0.002, 0.05, 0.4, 1.0])
def test_score_eps_hessian_match_autograd(problem, t, gen):
    mix = gmm_2d_8mode() if problem == "2d" else gmm_16d_5mode(torch.Generator().manual_seed(0))
    sch = VPSchedule.continuous()
    alpha, sigma = (float(v) for v in sch.alpha_sigma(t))
    # points near the modes and between them (where the Hessian is indefinite)
    x = torch.cat([alpha * mix.sample(20, gen), 3.0 * torch.randn(20, mix.dim, dtype=torch.float64, generator=gen)])
    x.requires_grad_(True)
    logp = _reference_log_prob(mix, x, alpha, sigma)
    grad = torch.autograd.grad(logp.sum(), x, create_graph=True)[0]
    hess = torch.stack([torch.autograd.grad(grad[:, i].sum(), x, retain_graph=True)[0] for i in range(mix.dim)], 1)
    x = x.detach()
    torch.testing.assert_close(mix.log_prob(x, t, sch), logp.detach(), rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(mix.score(x, t, sch), grad.detach(), rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(mix.eps(x, t, sch), -sigma * grad.detach(), rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(mix.hessian(x, t, sch), hess.detach(), rtol=1e-10, atol=1e-10)


def test_hessian_is_indefinite_between_modes():
    mix = gmm_2d_8mode()
    sch = VPSchedule.continuous()
    midpoint = 0.5 * (mix.means[0] + mix.means[1])[None] * float(sch.alpha_sigma(0.05)[0])
    assert float(torch.linalg.eigvalsh(mix.hessian(midpoint, 0.05, sch)).max()) > 0


def test_responsibilities_do_not_underflow_far_from_modes():
    mix = gmm_2d_8mode()
    x = torch.tensor([[40.0, -40.0], [0.0, 0.0]], dtype=torch.float64)
    w = mix.responsibilities(x)
    assert bool(torch.isfinite(w).all()) and torch.allclose(w.sum(1), torch.ones(2, dtype=torch.float64))
    assert bool(torch.isfinite(mix.score(x, 1e-3, VPSchedule.continuous())).all())


def test_sample_moments(gen):
    mix = gmm_2d_8mode()
    x = mix.sample(40000, gen)
    mean = (mix.weights[:, None] * mix.means).sum(0)
    # standard error of the mean is sqrt(8.05 / 40000) ~ 0.014 per coordinate; 5 sigma band
    assert float((x.mean(0) - mean).abs().max()) < 0.075
    counts = torch.bincount(mix.assign(x), minlength=8).double() / 40000
    assert float((counts - mix.weights).abs().max()) < 0.01


def test_bad_mixture_inputs():
    eye = torch.eye(2, dtype=torch.float64)[None]
    with pytest.raises(ValueError, match="weights must have shape"):
        GaussianMixture(torch.ones(3), torch.zeros(2, 2), eye.repeat(2, 1, 1))
    with pytest.raises(ValueError, match="positive definite"):
        GaussianMixture(torch.ones(1), torch.zeros(1, 2), -eye)
    with pytest.raises(ValueError, match="NaN"):
        GaussianMixture(torch.ones(1), torch.full((1, 2), math.nan), eye)
    mix = gmm_2d_8mode()
    with pytest.raises(ValueError, match="shape"):
        mix.eps(torch.zeros(3, 5, dtype=torch.float64), 0.5, VPSchedule.continuous())


def test_isotropic_mixture_equals_the_general_one(gen):
    from sciml.diffusion.gmm import gmm_isotropic

    iso = gmm_isotropic(6, torch.Generator().manual_seed(0))
    eye = torch.eye(6, dtype=torch.float64)
    full = GaussianMixture(iso.weights, iso.means, iso.stds[:, None, None] ** 2 * eye)
    sch = VPSchedule.ddpm_linear()
    x = 2.0 * torch.randn(50, 6, dtype=torch.float64, generator=gen)
    for t in (0.0, 300.0, 999.0):
        torch.testing.assert_close(iso.eps(x, t, sch), full.eps(x, t, sch), rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(iso.log_prob(x, t, sch), full.log_prob(x, t, sch), rtol=1e-12, atol=1e-12)
    draws = iso.sample(20000, gen)
    mean = (iso.weights[:, None] * iso.means).sum(0)
    assert float((draws.mean(0) - mean).abs().max()) < 5 * 0.6 / 20000**0.5 + 0.02
