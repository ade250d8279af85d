"""The 2x2x2 Markov game: stationarity of uniform policies, the Fisher certificate's B3 numbers, NPG vs PG."""

from __future__ import annotations

import pytest
import torch

from sciml.core import Status
from sciml.games import coordination_game, fisher_certificate, policy_gradient
from sciml.games.markov import TabularMarkovGame


@pytest.fixture(scope="module")
def game():
    return coordination_game()


@pytest.fixture(scope="module")
def cert(game):
    return fisher_certificate(game, torch.zeros(8, dtype=torch.float64))


def test_uniform_policies_are_stationary_and_the_return_is_a_closed_form(game):
    theta = torch.zeros(8, dtype=torch.float64)
    assert float(game.pseudo_gradient(theta).abs().max()) < 1e-14
    # uniform policies: expected reward 0 in every state, entropy log 2 per state -> f_i = -2 tau log 2
    assert torch.allclose(game.losses(theta), torch.full((2,), -2 * torch.log(torch.tensor(2.0)).item(),
                                                         dtype=torch.float64))
    # the pseudo-gradient agrees with central finite differences of each player's own loss
    x = 0.3 * torch.randn(8, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    fd = torch.empty(8, dtype=torch.float64)
    for k in range(8):
        e = torch.zeros(8, dtype=torch.float64)
        e[k] = 1e-6
        fd[k] = (game.losses(x + e)[k // 4] - game.losses(x - e)[k // 4]) / 2e-6
    assert torch.allclose(game.pseudo_gradient(x), fd, atol=1e-8)


def test_fisher_certificate_matches_the_b3_numbers(cert):
    assert cert.n_points == 257
    assert torch.allclose(cert.mu, torch.full((2,), 0.9344, dtype=torch.float64), atol=5e-5)
    assert float(cert.L[0, 1]) == pytest.approx(0.6009, abs=5e-5) and float(cert.L[1, 0]) == pytest.approx(0.6009, abs=5e-5)
    assert cert.grid_ratio == pytest.approx(0.977, abs=5e-4) and cert.grid_alpha == pytest.approx(0.3334, abs=5e-5)
    assert cert.ratio == pytest.approx(1.0, abs=1e-9)          # closed form r* = L_12 / L_21
    assert cert.alpha == pytest.approx(float(cert.mu[0] - cert.L[0, 1]), abs=1e-12)
    assert cert.beta == pytest.approx(1.5718, abs=5e-5) and cert.eta_max == pytest.approx(0.2699, abs=5e-5)
    assert cert.band.r_minus == pytest.approx(0.133, abs=5e-4) and cert.band.r_plus == pytest.approx(7.54, abs=5e-3)


def test_npg_converges_faster_than_euclidean_pg_at_half_the_certified_step(game, cert):
    g = torch.Generator().manual_seed(0)
    theta0 = 0.01 * torch.randn(2, 8, generator=g, dtype=torch.float64)
    eta = 0.5 * cert.eta_max
    npg = policy_gradient(game, theta0, eta, 400, geometry="fisher", weights=(1.0, cert.grid_ratio))
    epg = policy_gradient(game, theta0, eta, 400, geometry="euclidean", weights=(1.0, cert.grid_ratio))
    assert npg.status is Status.CONVERGED and epg.status is Status.CONVERGED
    assert float(npg.iterations.float().mean()) * 1.5 < float(epg.iterations.float().mean())
    # the weighted KL decays at least at the certified squared factor 1 - 2 eta alpha + eta^2 beta^2 (0.955)
    factor = 1 - 2 * eta * cert.grid_alpha + eta ** 2 * cert.beta ** 2
    ly = npg.lyapunov[:60]
    assert bool((ly[1:] <= factor * ly[:-1]).all())
    assert float(npg.grad_norms[-1].max()) < 1e-6


def test_bad_input(game):
    with pytest.raises(ValueError, match="gamma"):
        TabularMarkovGame(game.P, game.r, game.mu0, gamma=1.0)
    with pytest.raises(ValueError, match="probability"):
        TabularMarkovGame(2 * game.P, game.r, game.mu0)
    with pytest.raises(ValueError, match="eta"):
        policy_gradient(game, torch.zeros(1, 8, dtype=torch.float64), 0.0)
    with pytest.raises(ValueError, match="geometry"):
        policy_gradient(game, torch.zeros(1, 8, dtype=torch.float64), 0.1, geometry="mirror")
