"""SGN certificates vs ground truth: true weighted margins, spectral radii of the certified steps, the paper's LQ
numbers (closed forms eig(H) = 1 +- lam sqrt(ab)), region certificates of a torch pseudo-gradient, gradient play."""

from __future__ import annotations

import math
import warnings

import pytest
import torch

from sciml.core import Status
from sciml.core.warnings import ConvergenceWarning
from sciml.games import (Box, certify, certify_linear, sgn_margin, euclidean_margin, euler_threshold, gradient_play,
                         rk4_amplification, spectral_radius, stability_threshold, step_matrix, weighted_lipschitz,
                         weighted_margin)
from sciml.games.lq import coupled_game, lq_game, random_lq_blocks, scalar_game

A, B = 10.0, 0.05


def _random_game(g: torch.Generator, blocks, coupling: float) -> torch.Tensor:
    """Random block Jacobian with strongly convex own blocks and non-normal, asymmetric couplings."""
    d = sum(blocks)
    cuts = torch.repeat_interleave(torch.arange(len(blocks)), torch.tensor(blocks))
    own = cuts[:, None] == cuts[None, :]
    scale = torch.exp(2 * torch.randn(len(blocks), generator=g, dtype=torch.float64))   # asymmetric players
    H = coupling * torch.randn(d, d, generator=g, dtype=torch.float64) * (scale[cuts][:, None] / scale.mean())
    H = torch.where(own, torch.zeros_like(H), H)
    start = 0
    for b in blocks:
        R = torch.randn(b, b, generator=g, dtype=torch.float64)
        S = torch.randn(b, b, generator=g, dtype=torch.float64)
        H[start:start + b, start:start + b] = R @ R.T / b + 0.3 * torch.eye(b, dtype=torch.float64) + 0.5 * (S - S.T)
        start += b
    return H


def test_rk4_stability_polynomial_on_the_left_half_disk():
    """The RK4 step rule rests on |R_4(z)| <= 1 on the closed left half-disk of radius 2.5 (fails by 2.7)."""
    t = torch.linspace(math.pi / 2, 3 * math.pi / 2, 20001, dtype=torch.float64)
    arc = 2.5 * torch.exp(1j * t)
    segment = 1j * torch.linspace(-2.5, 2.5, 20001, dtype=torch.float64)
    assert float(rk4_amplification(arc).max()) <= 1 + 1e-12
    assert float(rk4_amplification(segment).max()) <= 1 + 1e-12
    assert float(rk4_amplification(2.7 * torch.exp(1j * t)).max()) > 1


@pytest.mark.parametrize("blocks, coupling", [((1, 1), 1.5), ((2, 3), 0.25), ((3, 2, 4), 0.25)])
def test_certificates_are_sound_on_a_random_ensemble(blocks, coupling):
    """alpha never exceeds the true weighted margin, beta is the weighted norm, and every certified Euler / RK4 step
    has spectral radius < 1 (0 violations)."""
    g = torch.Generator().manual_seed(sum(blocks))
    certified = 0
    for _ in range(40):
        H = _random_game(g, blocks, coupling)
        c = certify_linear(H, blocks)
        assert c.alpha <= weighted_margin(H, blocks, c.weights) + 1e-10
        if not c.certified:
            continue
        certified += 1
        for h in (c.h_euler * (1 - 1e-9), 0.5 * c.h_euler):
            T = step_matrix(H, h, "euler")
            assert spectral_radius(T) < 1
            assert weighted_lipschitz(T, blocks, c.weights) <= c.euler_factor(h) + 1e-10   # contraction in ||.||_w
        assert spectral_radius(step_matrix(H, c.h_rk4, "rk4")) < 1
        assert c.h_euler <= euler_threshold(H) + 1e-12
    assert 8 <= certified < 40      # both certified and uncertified games were drawn


def test_scalar_game_numbers_and_flow():
    H = scalar_game()
    assert euclidean_margin(H) == pytest.approx(-4.025, abs=1e-12)
    c = certify_linear(H, [1, 1])
    assert c.ratio == pytest.approx(200.0) and c.alpha == pytest.approx(1 - math.sqrt(0.5), abs=1e-12)
    lam = torch.linalg.eigvals(H).real.min()
    assert weighted_margin(H, [1, 1], c.weights) == pytest.approx(float(lam), abs=1e-12)   # tight: 0.2929
    t = torch.arange(0, 6, 5e-4, dtype=torch.float64)
    x = torch.linalg.matrix_exp(-t[:, None, None] * H) @ torch.tensor([0.15, -0.15], dtype=torch.float64)
    euclid = x.norm(dim=1) / x[0].norm()
    wnorm = (x ** 2 @ c.weights).sqrt()
    assert float(euclid.max()) == pytest.approx(3.19, abs=5e-3) and float(t[euclid.argmax()]) == pytest.approx(1.14, abs=5e-3)
    assert bool((wnorm[1:] <= wnorm[:-1] + 1e-15).all())
    assert bool((wnorm <= wnorm[0] * torch.exp(-c.alpha * t) * (1 + 1e-12)).all())


@pytest.mark.parametrize("lam, euler, rk4, euler_true, rk4_true", [
    (1.0, 0.2010, 1.4645, 1.1716, 1.6316),
    (0.5, 0.706, 1.847, 1.478, 2.058),
])
def test_lq_game_numbers(lam, euler, rk4, euler_true, rk4_true):
    H = lq_game(lam)
    c = certify_linear(H, [32, 32], weights=[B / A, 1.0])
    s = lam * math.sqrt(A * B)
    assert c.alpha == pytest.approx(1 - s, abs=1e-12) == pytest.approx(weighted_margin(H, [32, 32], c.weights))
    assert c.beta == pytest.approx(1 + s, abs=1e-12)
    tol = 5e-4 if lam == 1.0 else 5e-3
    assert c.h_euler == pytest.approx(euler, abs=tol) and c.h_rk4 == pytest.approx(rk4, abs=tol)
    assert euler_threshold(H) == pytest.approx(2 / (1 + s), abs=1e-12) == pytest.approx(euler_true, abs=tol)
    assert stability_threshold(H, "euler") == pytest.approx(2 / (1 + s), rel=1e-8)
    rk4_root = 2.785293563405282    # real negative root of |R_4(z)| = 1
    assert float(rk4_amplification(torch.tensor(-rk4_root, dtype=torch.complex128))) == pytest.approx(1, abs=1e-12)
    assert stability_threshold(H, "rk4") == pytest.approx(rk4_root / (1 + s), rel=1e-8) == pytest.approx(rk4_true, abs=tol)


def test_lq_margin_thresholds_on_the_lambda_grid():
    lams = torch.linspace(0, 2.5, 61, dtype=torch.float64)   # d = 8: the margins depend only on R being orthogonal
    euclid = [euclidean_margin(lq_game(float(l), d=8)) for l in lams]
    sgn = [certify_linear(lq_game(float(l), d=8), [4, 4], weights=[B / A, 1.0]).alpha for l in lams]
    last_euclid = float(lams[[i for i, e in enumerate(euclid) if e > 0][-1]])
    last_sgn = float(lams[[i for i, a in enumerate(sgn) if a > 0][-1]])
    assert last_euclid == pytest.approx(0.1667, abs=1e-4) and last_sgn == pytest.approx(1.375, abs=1e-4)
    assert euclid[0] > 0 and 2 / (A + B) == pytest.approx(0.199, abs=5e-4) and 1 / math.sqrt(A * B) == pytest.approx(1.414, abs=5e-4)


def test_random_lq_game_draw_matches_its_definition():
    Q1, Q2, R = random_lq_blocks(12345)
    assert torch.linalg.matrix_norm(R, ord=2) == pytest.approx(1.0)
    assert float(torch.linalg.eigvalsh(Q1)[0]) > 1.0
    H = coupled_game(Q1, Q2, R, 0.5)
    assert torch.equal(H[:32, 32:], 0.5 * A * R)


def test_region_certificate_of_a_linear_field_equals_the_linear_one():
    H = lq_game(0.8, d=6)
    c_lin = certify_linear(H, [3, 3])
    c_box = certify(lambda x: H @ x, Box(torch.zeros(6, dtype=torch.float64), 0.5), [3, 3])
    assert c_box.n_points == 2 ** 6 + 1
    assert c_box.alpha == pytest.approx(c_lin.alpha, abs=1e-12) and c_box.beta == pytest.approx(c_lin.beta, abs=1e-12)


def test_region_certificate_of_a_nonlinear_game_is_sound_at_fresh_points():
    g = torch.Generator().manual_seed(5)
    H = _random_game(g, (2, 2), 0.1)
    cube = 0.3 * torch.tensor([[1.0, 0.5, -0.2, 0.1], [0.0, 1.0, 0.3, -0.4], [0.2, 0.0, 1.0, 0.5],
                               [-0.1, 0.3, 0.0, 1.0]], dtype=torch.float64)

    def F(x):
        return H @ x + 0.2 * torch.tanh(cube @ x) + 0.05 * x ** 3

    c = certify(F, Box(torch.zeros(4, dtype=torch.float64), 0.5, n_samples=400, max_vertices=1), [2, 2])
    assert c.certified
    fresh = 0.5 * (2 * torch.rand(300, 4, generator=g, dtype=torch.float64) - 1)
    from sciml.games.certify import jacobians
    # the sampled bounds hold approximately elsewhere in the region (estimates, not proofs)
    assert c.alpha <= weighted_margin(jacobians(F, fresh), [2, 2], c.weights) + 5e-2
    run = gradient_play(F, fresh[0], 0.9 * c.h_euler, steps=5000, tol=1e-12)
    assert run.status is Status.CONVERGED
    assert float(torch.linalg.vector_norm(F(run.x))) <= 1e-12


@pytest.mark.parametrize("method", ["euler", "rk4"])
def test_gradient_play_with_certified_steps_contracts_in_the_weighted_norm(method):
    H = scalar_game()
    c = certify_linear(H, [1, 1])
    h = 0.9 * (c.h_euler if method == "euler" else c.h_rk4)
    run = gradient_play(lambda x: H @ x, torch.tensor([0.15, -0.15], dtype=torch.float64), h, steps=20000,
                        method=method, tol=1e-12)
    assert run.status is Status.CONVERGED and float((H @ run.x).norm()) <= 1e-12
    assert run.history[0] > 1e-3 and run.iterations == len(run.history) - 1


def test_gradient_play_reports_divergence_and_budget():
    H = scalar_game()
    with pytest.warns(ConvergenceWarning):
        bad = gradient_play(lambda x: H @ x, torch.tensor([0.15, -0.15], dtype=torch.float64), 3.0, steps=2000)
    assert bad.status is Status.NONFINITE
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        short = gradient_play(lambda x: H.float() @ x, torch.tensor([0.15, -0.15]), 0.1, steps=3, on_failure="ignore")
    assert short.status is Status.MAX_ITER and short.x.dtype == torch.float32


def test_float32_input_and_bad_input():
    H = scalar_game(dtype=torch.float32)
    assert certify_linear(H, [1, 1]).alpha == pytest.approx(1 - math.sqrt(0.5), abs=1e-5)
    Hn = scalar_game()
    with pytest.raises(ValueError, match="sum to 3"):
        certify_linear(Hn, [1, 2])
    with pytest.raises(ValueError, match=">= 1"):
        certify_linear(Hn, [2, 0])
    with pytest.raises(TypeError, match="blocks"):
        certify_linear(Hn, 2)
    Hn_nan = Hn.clone()
    Hn_nan[0, 1] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        certify_linear(Hn_nan, [1, 1])
    with pytest.raises(ValueError, match="weights must be > 0"):
        certify_linear(Hn, [1, 1], weights=[1.0, 0.0])
    with pytest.raises(ValueError, match="mu"):
        certify_linear(-Hn, [1, 1])
    with pytest.raises(ValueError, match="square"):
        certify_linear(torch.zeros(2, 3, dtype=torch.float64), [1, 1])
    with pytest.raises(ValueError, match="radius"):
        Box(torch.zeros(2, dtype=torch.float64), 0.0)
    with pytest.raises(TypeError, match="callable"):
        certify("F", Box(torch.zeros(2, dtype=torch.float64), 0.1), [1, 1])
    with pytest.raises(ValueError, match="step size"):
        gradient_play(lambda x: x, torch.zeros(2), -0.1)
    with pytest.raises(ValueError, match="method"):
        gradient_play(lambda x: x, torch.zeros(2), 0.1, method="rk2")


@pytest.mark.parametrize("objective, power", [("euler", 2), ("rk4", 1)])
def test_step_objectives_beat_a_dense_ratio_grid(objective, power):
    """objective='euler'/'rk4' picks weights maximising alpha / beta^power; no ratio on a dense grid does better."""
    H = lq_game(1.0, d=8)
    c = certify_linear(H, [4, 4], objective=objective)
    mu, L = [1.0, 1.0], [[0.0, A], [B, 0.0]]         # exact block bounds of this game
    values = [sgn_margin(mu, L, [1.0, r]) / weighted_lipschitz(H, [4, 4], [1.0, r]) ** power
              for r in torch.logspace(1, 4, 301, dtype=torch.float64).tolist()]
    best = max(v for v in values if v > 0)
    assert c.alpha / c.beta ** power >= best - 1e-6
    plain = certify_linear(H, [4, 4])
    assert c.alpha / c.beta ** power >= plain.alpha / plain.beta ** power - 1e-12
