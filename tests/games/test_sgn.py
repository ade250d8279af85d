"""SGN algebra: margin, optimal weights (closed form / Perron vs brute force), timescale band, bad input."""

from __future__ import annotations

import math

import pytest
import torch

from sciml.core import Status
from sciml.games import (comparison_matrix, optimal_weights, ratio_margins, sgn_margin, sgn_matrix, small_gain_ratio,
                         two_player_band, warm_start_weights)

MU2, L2 = [1.0, 1.0], [[0.0, 10.0], [0.05, 0.0]]   # the paper's 2-D game (spec B3)


def _random_bounds(g: torch.Generator, n: int, strength: float):
    mu = 0.5 + torch.rand(n, generator=g, dtype=torch.float64)
    L = strength * torch.rand(n, n, generator=g, dtype=torch.float64)
    return mu, L - torch.diag(torch.diagonal(L))


def test_margin_matches_the_sgn_matrix_definition_and_is_scale_invariant():
    g = torch.Generator().manual_seed(0)
    for _ in range(20):
        mu, L = _random_bounds(g, 4, 0.5)
        w = torch.rand(4, generator=g, dtype=torch.float64) + 0.1
        C = sgn_matrix(mu, L, w)
        d = w.rsqrt()
        reference = 0.5 * float(torch.linalg.eigvalsh(d[:, None] * C * d[None, :])[0])   # B2 definition
        assert sgn_margin(mu, L, w) == pytest.approx(reference, abs=1e-12)
        assert sgn_margin(mu, L, 7.3 * w) == pytest.approx(reference, abs=1e-12)
        assert torch.allclose(C[0, 1], -(w[0] * L[0, 1] + w[1] * L[1, 0]))


def test_two_player_optimum_is_the_closed_form_and_beats_a_dense_ratio_grid():
    g = torch.Generator().manual_seed(1)
    for _ in range(30):
        mu, L = _random_bounds(g, 2, 2.0)
        best = optimal_weights(mu, L)
        m1, m2, L12, L21 = float(mu[0]), float(mu[1]), float(L[0, 1]), float(L[1, 0])
        closed = (m1 + m2) / 2 - math.sqrt(((m1 - m2) / 2) ** 2 + L12 * L21)
        assert best.alpha == pytest.approx(closed, abs=1e-12)
        assert best.ratio == pytest.approx(L12 / L21, rel=1e-12)
        grid = ratio_margins(mu, L, torch.logspace(-6, 6, 20001, dtype=torch.float64))
        assert float(grid.max()) <= best.alpha + 1e-12
        assert float(grid.max()) >= best.alpha - 1e-4


@pytest.mark.parametrize("n", [3, 5])
def test_perron_weights_attain_the_supremum_and_nelder_mead_never_exceeds_it(n):
    g = torch.Generator().manual_seed(n)
    for trial in range(15):
        mu, L = _random_bounds(g, n, 0.8)
        best = optimal_weights(mu, L)
        tau = float(torch.linalg.eigvals(comparison_matrix(mu, L)).real.min())
        assert best.method == "perron" and best.status is Status.CONVERGED
        assert best.alpha == pytest.approx(tau, abs=1e-10)
        if trial < 3:     # a local optimiser started elsewhere finds nothing better (and gets close)
            nm = optimal_weights(mu, L, method="nelder_mead")
            assert tau - 1e-3 <= nm.alpha <= tau + 1e-10
        for _ in range(20):   # random weights: brute-force lower bounds of the supremum
            w = torch.exp(3 * torch.randn(n, generator=g, dtype=torch.float64))
            assert sgn_margin(mu, L, w) <= best.alpha + 1e-10


def test_warm_start_certifies_exactly_when_the_small_gain_condition_holds():
    g = torch.Generator().manual_seed(2)
    hits = 0
    for _ in range(40):
        mu, L = _random_bounds(g, 4, 0.9)
        if small_gain_ratio(mu, L) < 1:
            hits += 1
            assert sgn_margin(mu, L, warm_start_weights(mu, L)) > 0
            assert optimal_weights(mu, L).alpha > 0
        else:
            assert optimal_weights(mu, L).alpha <= 1e-12
            with pytest.raises(ValueError, match="small-gain"):
                warm_start_weights(mu, L)
    assert 5 < hits < 35      # both branches were exercised


def test_paper_2d_game_numbers():
    best = optimal_weights(MU2, L2)
    assert best.ratio == pytest.approx(200.0, rel=1e-12)
    assert best.alpha == pytest.approx(1 - math.sqrt(0.5), abs=1e-12)       # 0.2929
    w = warm_start_weights(MU2, L2)
    assert float(w[1] / w[0]) == pytest.approx((22 / 2.1) ** 2, rel=1e-12)    # spec: 109.7 (truncated)
    assert sgn_margin(MU2, L2, w) == pytest.approx(0.261, abs=5e-4)
    band = two_player_band(MU2, L2)
    assert band.r_minus == pytest.approx(34.31, abs=5e-3) and band.r_plus == pytest.approx(1165.69, abs=5e-3)
    assert sgn_margin(MU2, L2, [1.0, 1 / 200]) < -10        # swapping the index convention breaks the certificate


@pytest.mark.parametrize("alpha", [0.0, 0.1, 0.25])
def test_band_endpoints_are_where_the_margin_equals_alpha(alpha):
    g = torch.Generator().manual_seed(3)
    for _ in range(20):
        mu, L = _random_bounds(g, 2, 1.0)
        band = two_player_band(mu, L, alpha)
        if not band.feasible:
            assert optimal_weights(mu, L).alpha < alpha + 1e-12
            continue
        ends = ratio_margins(mu, L, [band.r_minus, band.r_plus])
        assert torch.allclose(ends, torch.full_like(ends, alpha), atol=1e-9)
        r = torch.logspace(-4, 4, 4001, dtype=torch.float64)
        inside = (r >= band.r_minus) & (r <= band.r_plus)
        margins = ratio_margins(mu, L, r)
        assert bool((margins[inside] >= alpha - 1e-12).all()) and bool((margins[~inside] < alpha + 1e-12).all())


def test_band_edge_cases():
    assert not two_player_band([1.0, 1.0], [[0, 2.0], [1.0, 0]]).feasible         # L12 L21 > mu1 mu2
    one_way = two_player_band([1.0, 1.0], [[0, 2.0], [0.0, 0]])
    assert one_way.r_minus == pytest.approx(1.0) and one_way.r_plus == math.inf
    assert ratio_margins([1.0, 1.0], [[0, 2.0], [0.0, 0]], [1.0])[0] == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("mu, L, w, match", [
    ([1.0, 0.0], L2, [1, 1], "mu_i must be > 0"),
    ([1.0, -1.0], L2, [1, 1], "mu_i must be > 0"),
    ([1.0, float("nan")], L2, [1, 1], "NaN"),
    (MU2, [[0, -1.0], [0.05, 0]], [1, 1], ">= 0"),
    (MU2, [[0, 1.0, 0], [0.05, 0, 0]], [1, 1], "N x N"),
    (MU2, L2, [1.0, 0.0], "weights must be > 0"),
    (MU2, L2, [1.0, -2.0], "weights must be > 0"),
    (MU2, L2, [1.0, 1.0, 1.0], "one weight per player"),
    (MU2, [[0, float("inf")], [0.05, 0]], [1, 1], "NaN or Inf"),
])
def test_bad_input_is_rejected(mu, L, w, match):
    with pytest.raises(ValueError, match=match):
        sgn_margin(mu, L, w)


def test_other_bad_inputs():
    with pytest.raises(ValueError, match="method"):
        optimal_weights(MU2, L2, method="sdp")
    with pytest.raises(ValueError, match="two players"):
        two_player_band([1, 1, 1], torch.zeros(3, 3))
    with pytest.raises(TypeError):
        sgn_margin("abc", L2, [1, 1])


def test_lmi_bisection_agrees_with_the_closed_form_perron_weights_and_nelder_mead():
    pytest.importorskip("cvxpy")
    from sciml.games import lmi_weights
    two = lmi_weights([1.0, 1.0], [[0.0, 10.0], [0.05, 0.0]])        # B3 2-D game: r* = 200, alpha = 1 - sqrt(1/2)
    assert two.status == Status.CONVERGED
    assert abs(two.alpha - (1 - math.sqrt(0.5))) < 1e-9 and abs(two.weights[1] / two.weights[0] - 200) < 0.05
    g = torch.Generator().manual_seed(7)
    for n, gain in ((3, 0.7), (5, 0.9), (4, 1.3)):                    # gain 1.3: not certifiable, sup < 0
        mu = 0.5 + torch.rand(n, generator=g, dtype=torch.float64)
        L = torch.rand(n, n, generator=g, dtype=torch.float64) * (1 - torch.eye(n, dtype=torch.float64))
        L = L * gain / small_gain_ratio(mu, L)
        perron, nm = optimal_weights(mu, L), optimal_weights(mu, L, method="nelder_mead")
        lmi = lmi_weights(mu, L)
        assert lmi.status == Status.CONVERGED
        assert lmi.bracket[0] <= perron.alpha_sup <= lmi.bracket[1] + 1e-6      # bracket[1]: SDP accuracy
        assert abs(lmi.alpha - perron.alpha) < 1e-8 and abs(lmi.alpha - nm.alpha) < 1e-8
        assert (lmi.alpha > 0) == (gain < 1)
        assert torch.allclose(lmi.weights, perron.weights, atol=1e-3)   # flat optimum: weights to ~sqrt(tol)
        assert abs(optimal_weights(mu, L, method="lmi").alpha - perron.alpha) < 1e-8
    with pytest.raises(ValueError, match="tol"):
        lmi_weights([1.0, 1.0], [[0.0, 1.0], [0.5, 0.0]], tol=0.0)
