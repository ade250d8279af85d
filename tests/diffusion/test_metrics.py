"""Metrics against closed forms and brute force."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch

from sciml.diffusion import frechet_distance, gmm_2d_8mode, mode_weight_tv, rbf_mmd2, sliced_w2


def test_sliced_w2_of_a_shift_is_the_projected_shift(gen):
    a = torch.randn(500, 3, dtype=torch.float64, generator=gen)
    shift = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    sw = sliced_w2(a, a + shift, n_projections=200, generator=torch.Generator().manual_seed(1))
    theta = torch.randn(200, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    theta = theta / theta.norm(dim=1, keepdim=True)
    torch.testing.assert_close(sw, torch.sqrt(((theta @ shift) ** 2).mean()), rtol=1e-12, atol=1e-12)


def test_sliced_w2_in_1d_equals_quantile_w2_for_unequal_sizes():
    a = torch.tensor([[0.0], [1.0], [3.0]], dtype=torch.float64)
    b = torch.tensor([[0.5], [2.0]], dtype=torch.float64)
    # brute force: integrate (F_a^{-1}(q) - F_b^{-1}(q))² over q on a fine grid
    q = (np.arange(600000) + 0.5) / 600000
    qa = np.sort(a.numpy().ravel())[np.minimum(np.ceil(q * 3).astype(int) - 1, 2)]
    qb = np.sort(b.numpy().ravel())[np.minimum(np.ceil(q * 2).astype(int) - 1, 1)]
    expected = np.sqrt(np.mean((qa - qb) ** 2))
    assert abs(float(sliced_w2(a, b, n_projections=3)) - expected) < 1e-5


def test_unbiased_mmd2_matches_brute_force(gen):
    a = torch.randn(30, 2, dtype=torch.float64, generator=gen)
    b = torch.randn(25, 2, dtype=torch.float64, generator=gen) + 0.5
    h = 0.8
    k = lambda x, y: float(np.exp(-np.sum((x - y) ** 2) / (2 * h * h)))
    A, B = a.numpy(), b.numpy()
    kaa = sum(k(A[i], A[j]) for i in range(30) for j in range(30) if i != j) / (30 * 29)
    kbb = sum(k(B[i], B[j]) for i in range(25) for j in range(25) if i != j) / (25 * 24)
    kab = sum(k(A[i], B[j]) for i in range(30) for j in range(25)) / (30 * 25)
    assert abs(float(rbf_mmd2(a, b, bandwidth=h)) - (kaa + kbb - 2 * kab)) < 1e-12


def test_mode_weight_tv():
    mix = gmm_2d_8mode()
    x = mix.means[torch.tensor([0, 0, 0, 1])]
    expected = 0.5 * (mix.weights - torch.tensor([0.75, 0.25, 0, 0, 0, 0, 0, 0], dtype=torch.float64)).abs().sum()
    torch.testing.assert_close(mode_weight_tv(x, mix), expected, rtol=1e-14, atol=1e-14)


def test_frechet_distance_matches_scipy_sqrtm(gen):
    a = torch.randn(400, 5, dtype=torch.float64, generator=gen) @ torch.randn(5, 5, dtype=torch.float64, generator=gen)
    b = torch.randn(300, 5, dtype=torch.float64, generator=gen) + 0.3
    ca, cb = np.cov(a.numpy().T), np.cov(b.numpy().T)
    expected = (np.sum((a.numpy().mean(0) - b.numpy().mean(0)) ** 2) + np.trace(ca) + np.trace(cb)
                - 2 * np.trace(scipy.linalg.sqrtm(ca @ cb).real))
    assert abs(float(frechet_distance(a, b)) - expected) < 1e-8


def test_metric_input_errors():
    with pytest.raises(ValueError, match="shapes"):
        sliced_w2(torch.zeros(5, 2, dtype=torch.float64), torch.zeros(5, 3, dtype=torch.float64))
    with pytest.raises(ValueError, match="NaN"):
        rbf_mmd2(torch.full((3, 2), float("nan")), torch.zeros(3, 2))


def test_paired_comparison_against_scipy():
    from scipy import stats

    from sciml.diffusion.stats import paired_comparison

    a = np.array([0.30, 0.25, 0.41, 0.28, 0.33, 0.29])
    b = np.array([0.35, 0.27, 0.40, 0.36, 0.38, 0.31])
    res = paired_comparison(a, b)
    lo, hi = stats.ttest_rel(a, b).confidence_interval(0.95)
    assert abs(res.ci_low - lo) < 1e-12 and abs(res.ci_high - hi) < 1e-12
    assert res.n_better == 5 and abs(res.sign_p - stats.binomtest(5, 6).pvalue) < 1e-12
    inf = paired_comparison([np.inf, 1.0, 2.0], [1.0, 2.0, 1.0])
    assert inf.n == 2 and inf.n_diverged == 1
