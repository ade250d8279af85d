"""Matrix sensing GD against the spec's closed-form rates (7.5) and streaming eigenvectors against eigh (8.5)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sciml.numerics import gaussian_sensing, matrix_sensing_gd, streaming_top_eigenvector


@pytest.fixture
def target():
    g = torch.Generator().manual_seed(0)
    U, _ = torch.linalg.qr(torch.randn(50, 2, generator=g, dtype=torch.float64))
    return U @ torch.diag(torch.tensor([1.0, 0.5], dtype=torch.float64)) @ U.T      # n = 50, r = 2


def test_symmetric_overparameterised_error_decays_like_one_over_t_squared(target):
    """T^2 err -> (k - r)/(4 eta)^2 = 12.5 (spec: 12.16, 12.38, 12.46 at T = 1e3, 3e3, 1e4 for alpha 0.5)."""
    res = matrix_sensing_gd(target, 4, alpha=0.5, eta=0.1, n_iter=10_000, generator=torch.Generator().manual_seed(1))
    T = torch.tensor([1000, 3000, 10_000])
    scaled = (T.double() ** 2 * res.errors[T]).tolist()
    assert 11.5 < scaled[0] < scaled[1] < scaled[2] < 12.5
    slope = np.polyfit(np.log(T.numpy()), np.log(res.errors[T].numpy()), 1)[0]
    assert -2.1 <= slope <= -1.9


def test_exact_parameterisation_converges_linearly_to_machine_precision(target):
    res = matrix_sensing_gd(target, 2, alpha=0.5, eta=0.1, n_iter=2000, generator=torch.Generator().manual_seed(1))
    assert float(res.errors[-1]) < 1e-29


def test_asymmetric_is_linear_and_faster_for_larger_alpha(target):
    slopes = []
    for alpha in (0.05, 0.1, 0.2):
        res = matrix_sensing_gd(target, 4, parameterization="asymmetric", alpha=alpha, eta=0.1, n_iter=3000,
                                generator=torch.Generator().manual_seed(1))
        tail = np.log(res.errors[1500:2500].numpy())
        t = np.arange(len(tail))
        fit = np.polyfit(t, tail, 1)
        r2 = 1 - np.sum((np.polyval(fit, t) - tail) ** 2) / np.sum((tail - tail.mean()) ** 2)
        assert r2 > 0.99, (alpha, r2)
        slopes.append(-fit[0])
    assert slopes[0] < slopes[1] < slopes[2]


def test_one_step_modification_removes_the_alpha_dependence(target):
    common = dict(parameterization="asymmetric", alpha=0.05, eta=0.1, n_iter=2500)
    plain = matrix_sensing_gd(target, 4, generator=torch.Generator().manual_seed(1), **common)
    mod = matrix_sensing_gd(target, 4, modification={"at": 2000, "beta": 0.7, "tau": 0.05},
                            generator=torch.Generator().manual_seed(1), **common)
    assert float(mod.errors[2500]) < 1e-6 * float(plain.errors[2500])     # spec: 4.6e-7 -> 4.6e-16 at 2500


def test_gaussian_sensing_recovers_the_target(target):
    g = torch.Generator().manual_seed(2)
    small = target[:10, :10]
    A = gaussian_sensing(10, 5 * 10 * 2 * 2, generator=g)
    res = matrix_sensing_gd(small, 2, alpha=0.5, eta=0.1, n_iter=1500, sensing=A, generator=g)
    assert float(res.errors[-1]) < 1e-8 * float(res.errors[0])


def test_sensing_bad_input(target):
    with pytest.raises(ValueError, match="square"):
        matrix_sensing_gd(target[:, :3], 2)
    with pytest.raises(ValueError, match="k must"):
        matrix_sensing_gd(target, 0)
    with pytest.raises(ValueError, match="eta"):
        matrix_sensing_gd(target, 2, eta=0.0)
    with pytest.raises(ValueError, match="NaN"):
        matrix_sensing_gd(target * float("nan"), 2)
    with pytest.raises(ValueError, match="asymmetric"):
        matrix_sensing_gd(target, 2, modification={"at": 1})
    with pytest.raises(FloatingPointError, match="diverged"):
        matrix_sensing_gd(target, 2, eta=50.0, alpha=5.0, n_iter=200)


def _stream(R: float, n=4000, d=60, seed=0):
    g = torch.Generator().manual_seed(seed)
    V, _ = torch.linalg.qr(torch.randn(d, d, generator=g, dtype=torch.float64))
    scales = torch.ones(d, dtype=torch.float64)
    scales[0] = R ** 0.5
    rows = (torch.randn(n, d, generator=g, dtype=torch.float64) * scales) @ V.T
    rows = rows[torch.randperm(n, generator=g)]
    w, U = torch.linalg.eigh(rows.T @ rows)
    return rows, U[:, -1], float(w[-1] / w[-2])


@pytest.mark.parametrize("R", [5.0, 20.0, 100.0])
def test_block_power_correlation_beats_one_minus_one_over_the_empirical_gap(R):
    rows, v1, gap = _stream(R)
    res = streaming_top_eigenvector(rows, n_chunks=8, generator=torch.Generator().manual_seed(0))
    assert abs(float(res.vector @ v1)) >= 1 - 1 / gap, (R, gap)


def test_oja_grid_improves_with_the_gap_and_picks_an_eta():
    corr = []
    for R in (5.0, 100.0):
        rows, v1, _ = _stream(R, n=2000, d=40)
        sigma1 = float(torch.linalg.matrix_norm(rows, ord=2) ** 2)
        etas = torch.tensor([0.1, 1.0, 10.0], dtype=torch.float64) * np.log(40) / sigma1
        res = streaming_top_eigenvector(rows, method="oja", eta=etas, generator=torch.Generator().manual_seed(0))
        corr.append(abs(float(res.vector @ v1)))
        assert res.eta in etas.tolist()
    assert corr[1] >= corr[0] and corr[1] > 0.99


def test_streaming_bad_input():
    with pytest.raises(ValueError, match="non-empty"):
        streaming_top_eigenvector(torch.zeros(0, 3))
    with pytest.raises(ValueError, match="NaN"):
        streaming_top_eigenvector(torch.full((4, 3), float("nan")))
    with pytest.raises(ValueError, match="n_chunks"):
        streaming_top_eigenvector(torch.ones(4, 3), n_chunks=10)
    with pytest.raises(ValueError, match="eta"):
        streaming_top_eigenvector(torch.ones(4, 3), method="oja")
    with pytest.raises(ValueError, match="method"):
        streaming_top_eigenvector(torch.ones(4, 3), method="lanczos")
