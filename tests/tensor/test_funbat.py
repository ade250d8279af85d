"""FunBaT end to end: accuracy against the known truth, calibration, unseen coordinates, guards, errors."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from sciml.core import ConvergenceWarning, Status
from sciml.tensor import (
    FunBaT,
    authors_cp_rank1,
    bin_observations,
    dense_gp_posterior,
    masked_tucker_als,
    prior_draw_tensor,
    spatiotemporal_tensor,
)
from sciml.tensor.state_space import matern_kernel


def _rmse(a, b):
    return float(((a - b) ** 2).mean().sqrt())


@pytest.fixture(scope="module")
def benchmark_data():
    # Seed 1: its held-out noise alone has RMSE 0.1018 (the spec's acceptance bound is 0.105).
    return spatiotemporal_tensor(8000, generator=torch.Generator().manual_seed(1))


def test_spatiotemporal_benchmark_rank2_accuracy_and_calibration(benchmark_data):
    d = benchmark_data
    res = FunBaT(ranks=2, kernel="matern32", lengthscale=0.3).fit(
        d.train_coords, d.train_values, n_iter=60, generator=torch.Generator().manual_seed(0))
    assert res.status is Status.CONVERGED
    mean, var = res.predict(d.test_coords)
    assert _rmse(mean, d.test_values) <= 0.105
    assert _rmse(mean, d.test_truth) <= 0.03
    inside = ((d.test_values - mean).abs() <= 1.96 * var.sqrt()).double().mean()
    assert 0.93 <= float(inside) <= 0.97          # calibrated 95% band on noisy held-out values
    assert abs(res.noise_std - 0.1) < 0.01         # E[τ]^{-1/2} recovers the true noise level
    # Discrete baseline on the binned data (same resolution as the distinct coordinates) is worse.
    grid = masked_tucker_als(bin_observations(d.train_coords, d.train_values, (30, 30, 100), (0, 0, 0), (1, 1, 1)),
                             2, n_iter=30, on_failure="ignore")
    assert _rmse(grid.predict(d.test_coords), d.test_truth) > 1.5 * _rmse(mean, d.test_truth)


def test_authors_rank1_generator_with_cp_variant():
    d = authors_cp_rank1(generator=torch.Generator().manual_seed(0))
    res = FunBaT(ranks=1, variant="cp", kernel="matern32", lengthscale=0.1, variance=0.5).fit(
        d.train_coords, d.train_values, n_iter=100, generator=torch.Generator().manual_seed(0))
    mean, _ = res.predict(d.test_coords)
    assert _rmse(mean, d.test_values) <= 0.01


def test_unseen_coordinates_get_the_exact_chain_posterior(gen):
    d = spatiotemporal_tensor(600, grid_sizes=(8, 8, 12), generator=gen)
    fitted = FunBaT(ranks=2, lengthscale=0.3).fit(d.train_coords, d.train_values, n_iter=40, generator=gen,
                                                  on_failure="ignore")
    res = dataclasses.replace(fitted, model=dataclasses.replace(fitted.model, predictive="plugin"))
    new = torch.tensor([-0.3, 0.0123, 0.5001, 1.4], dtype=torch.float64)   # beyond, between, beyond
    mean, cov = res.factor_functions(2, new)
    union, inverse = torch.unique(torch.cat([res.grids[2], new]), sorted=True, return_inverse=True)
    lam = torch.zeros(union.shape[0], 2, 2, dtype=torch.float64)
    eta = torch.zeros(union.shape[0], 2, dtype=torch.float64)
    lam[inverse[:-4]], eta[inverse[:-4]] = res.precision[2], res.shift[2]
    ell, sigma2 = res.lengthscales[2], res.variances[2]   # learned from the evidence (the default)
    assert ell != 0.3 and sigma2 != 1.0
    dmean, dcov = dense_gp_posterior(union, lam, eta, "matern32", ell, sigma2)
    torch.testing.assert_close(mean, dmean[inverse[-4:]], rtol=1e-7, atol=1e-8)
    torch.testing.assert_close(cov, dcov[inverse[-4:]], rtol=1e-7, atol=1e-8)
    # Far beyond the data the factor reverts to the prior N(0, σ² I): the mean goes to 0, the variance grows.
    far = torch.tensor([[0.5, 0.5, 0.5], [0.5, 0.5, 9.0]], dtype=torch.float64)
    fmean, var = res.predict(far, include_noise=False)
    assert float(var[1]) > float(var[0]) and abs(float(fmean[1])) < 1e-12
    _, prior_cov = res.factor_functions(2, torch.tensor([50.0], dtype=torch.float64))
    torch.testing.assert_close(prior_cov[0], sigma2 * torch.eye(2, dtype=torch.float64), rtol=1e-6, atol=1e-6)
    # The default (marginal) predictive is the moment-matched mixture of the same dense posteriors over the
    # mode's hyperparameter grid posterior; far away it reverts to the mixture of the priors.
    ells, variances, weights = fitted.hyperparameter_posterior[2]
    assert len(ells) > 1 and abs(sum(weights) - 1.0) < 1e-12
    m_mix, c_mix = fitted.factor_functions(2, new)
    first = sum(w * dense_gp_posterior(union, lam, eta, "matern32", e, v)[0][inverse[-4:]]
                for e, v, w in zip(ells, variances, weights))
    second = sum(w * (lambda m, c: c + m[:, :, None] * m[:, None, :])(
        *(t[inverse[-4:]] for t in dense_gp_posterior(union, lam, eta, "matern32", e, v)))
        for e, v, w in zip(ells, variances, weights))
    torch.testing.assert_close(m_mix, first, rtol=1e-7, atol=1e-8)
    torch.testing.assert_close(c_mix, second - first[:, :, None] * first[:, None, :], rtol=1e-7, atol=1e-8)
    _, far_cov = fitted.factor_functions(2, torch.tensor([50.0], dtype=torch.float64))
    expected = sum(w * v for v, w in zip(variances, weights)) * torch.eye(2, dtype=torch.float64)
    torch.testing.assert_close(far_cov[0], expected, rtol=1e-6, atol=1e-6)


def test_dense_smoother_gives_the_same_fit(gen):
    d = spatiotemporal_tensor(300, grid_sizes=(6, 6, 10), generator=gen)
    kw = {"ranks": 2, "lengthscale": 0.3, "tol": 1e-3}
    a = FunBaT(**kw).fit(d.train_coords, d.train_values, n_iter=5, generator=torch.Generator().manual_seed(0),
                         on_failure="ignore")
    b = FunBaT(smoother="dense", **kw).fit(d.train_coords, d.train_values, n_iter=5,
                                           generator=torch.Generator().manual_seed(0), on_failure="ignore")
    for x, y in zip(a.predict(d.test_coords), b.predict(d.test_coords)):
        torch.testing.assert_close(x, y, rtol=1e-7, atol=1e-9)


def test_collapse_to_zero_core_is_reported_and_default_init_avoids_it():
    d = spatiotemporal_tensor(2000, generator=torch.Generator().manual_seed(1))
    naive = FunBaT(ranks=2, tau0=0.1, init="normal", standardize=False, learn=())
    with pytest.warns(ConvergenceWarning, match="collapsed"):
        res = naive.fit(d.train_coords, d.train_values, n_iter=20, generator=torch.Generator().manual_seed(0))
    assert res.status is Status.BREAKDOWN
    good = FunBaT(ranks=2, learn=()).fit(d.train_coords, d.train_values, n_iter=20,
                               generator=torch.Generator().manual_seed(0), on_failure="ignore")
    assert good.status is not Status.BREAKDOWN
    assert _rmse(good.predict(d.test_coords)[0], d.test_truth) < 0.5 * float(d.test_values.std())


def test_max_iter_warns():
    d = spatiotemporal_tensor(300, grid_sizes=(6, 6, 10), generator=torch.Generator().manual_seed(0))
    with pytest.warns(ConvergenceWarning, match="max_iter"):
        res = FunBaT(ranks=2).fit(d.train_coords, d.train_values, n_iter=2)
    assert res.status is Status.MAX_ITER and len(res.history) == 2


def test_bad_input_errors():
    coords = torch.rand(50, 3, dtype=torch.float64)
    values = torch.rand(50, dtype=torch.float64)
    bad = coords.clone()
    bad[3, 1] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        FunBaT().fit(bad, values)
    with pytest.raises(ValueError, match="ranks"):
        FunBaT(ranks=0)
    with pytest.raises(ValueError, match="ranks"):
        FunBaT(ranks=(2, 0, 2))
    with pytest.raises(ValueError, match="match"):
        FunBaT().fit(coords, values[:-1])
    single = coords.clone()
    single[:, 2] = 0.5
    with pytest.raises(ValueError, match="mode 2 has a single distinct coordinate"):
        FunBaT().fit(single, values)
    with pytest.raises(ValueError, match="ranks has 2 entries"):
        FunBaT(ranks=(2, 2)).fit(coords, values)
    with pytest.raises(ValueError, match="CP variant"):
        FunBaT(ranks=(2, 3), variant="cp")
    with pytest.raises(ValueError, match="kernel"):
        FunBaT(kernel="rbf")
    res = FunBaT(ranks=1, tol=1e-2, learn=()).fit(coords.float(), values.float(), n_iter=30, on_failure="ignore")
    assert res.predict(coords)[0].dtype == torch.float64       # float32 input is computed in float64
    with pytest.raises(ValueError, match="shape"):
        res.predict(torch.rand(4, 2, dtype=torch.float64))


def _five_seeds(model: FunBaT, n_obs: int = 8000) -> tuple[list[float], list[float]]:
    noisy, truth = [], []
    for seed in range(5):
        d = spatiotemporal_tensor(n_obs, generator=torch.Generator().manual_seed(1000 + seed))
        res = model.fit(d.train_coords, d.train_values, n_iter=100, generator=torch.Generator().manual_seed(seed),
                        on_failure="ignore")
        mean, _ = res.predict(d.test_coords)
        noisy.append(_rmse(mean, d.test_values))
        truth.append(_rmse(mean, d.test_truth))
    return noisy, truth


@pytest.mark.slow
@pytest.mark.parametrize("rank", [2, 3])
def test_five_seed_benchmark(rank):
    noisy, truth = _five_seeds(FunBaT(ranks=rank, lengthscale=0.3))
    assert sum(noisy) / 5 <= 0.105 and max(truth) <= 0.03


@pytest.mark.slow
@pytest.mark.xfail(strict=True, reason="spec's >2x ablation claim does not hold with restarts: the l -> 0 "
                                       "(discrete) model reaches 0.10 on some seeds; measured ratio ~1.6")
def test_lengthscale_to_zero_ablation_is_twice_worse():
    full, _ = _five_seeds(FunBaT(ranks=2, lengthscale=0.3))
    ablation, _ = _five_seeds(FunBaT(ranks=2, kernel="matern12", lengthscale=1e-4))
    assert sum(ablation) > 2 * sum(full)


def test_fit_stuck_on_a_plateau_is_not_converged():
    # The issue's failure: with the authors' initialisation (one start, E[τ] = 1, fixed hyperparameters) the spec
    # benchmark at N = 2000 settles at training RMSE 0.199 (noise 0.1) and used to report converged. Truth: the
    # same data reach 0.097 from the default start; the plateau leaves residual structure along time.
    d = spatiotemporal_tensor(2000, generator=torch.Generator().manual_seed(0))
    stuck = FunBaT(ranks=2, restarts=1, learn=(), tau0=1.0)
    with pytest.warns(ConvergenceWarning, match="stalled on a plateau"):
        res = stuck.fit(d.train_coords, d.train_values, n_iter=60, generator=torch.Generator().manual_seed(0))
    assert res.status is Status.MAX_ITER and res.history[-1].train_rmse > 0.15
    good = FunBaT(ranks=2, learn=()).fit(d.train_coords, d.train_values, n_iter=60,
                                         generator=torch.Generator().manual_seed(0))
    assert good.status is Status.CONVERGED and good.history[-1].train_rmse < 0.11


def test_more_bad_inputs_give_clear_errors():
    coords = torch.rand(60, 3, dtype=torch.float64)
    values = torch.rand(60, dtype=torch.float64)
    nan_values = values.clone()
    nan_values[7] = float("nan")
    with pytest.raises(ValueError, match="values contains NaN"):
        FunBaT().fit(coords, nan_values)
    for bad in (0.0, -0.1, float("nan")):
        with pytest.raises(ValueError, match="lengthscale"):
            FunBaT(lengthscale=bad)
    with pytest.raises(ValueError, match="learn"):
        FunBaT(learn=("period",))
    with pytest.raises(ValueError, match="smoother"):
        FunBaT(smoother="qr")
    res = FunBaT(ranks=1, tol=1e-2, learn=()).fit(coords, values, n_iter=10, on_failure="ignore")
    outside = torch.tensor([[0.5, 0.5, 1.7]], dtype=torch.float64)
    with pytest.raises(ValueError, match="mode 2 lie outside the fitted range"):
        res.predict(outside, extrapolate=False)
    assert res.predict(outside)[0].shape == (1,)      # extrapolation is allowed by default


def test_parallel_smoother_fit_equals_sequential_and_learned_values_reported(gen):
    d = spatiotemporal_tensor(500, grid_sizes=(10, 10, 20), generator=gen)
    kw = {"ranks": 2, "tol": 1e-3, "restarts": 1, "learn_every": 3}
    a = FunBaT(**kw).fit(d.train_coords, d.train_values, n_iter=7, generator=torch.Generator().manual_seed(0),
                         on_failure="ignore")
    b = FunBaT(smoother="kalman", **kw).fit(d.train_coords, d.train_values, n_iter=7,
                                            generator=torch.Generator().manual_seed(0), on_failure="ignore")
    for x, y in zip(a.predict(d.test_coords), b.predict(d.test_coords)):
        torch.testing.assert_close(x, y, rtol=1e-7, atol=1e-9)
    assert len(a.lengthscales) == 3 and a.lengthscales != (0.3, 0.3, 0.3) and a.variances != (1.0, 1.0, 1.0)
    torch.testing.assert_close(torch.tensor(a.lengthscales), torch.tensor(b.lengthscales), rtol=1e-5, atol=0)


def test_real_hourly_temperatures_load_offline_and_beat_the_mean():
    pytest.importorskip("vega_datasets")
    import socket

    real_connect = socket.socket.connect

    def no_network(*args, **kwargs):
        raise AssertionError("the data set must load without network access")

    socket.socket.connect = no_network
    try:
        from sciml.tensor import hourly_temperatures

        d = hourly_temperatures("san_francisco", generator=torch.Generator().manual_seed(0))
        small = hourly_temperatures("seattle", keep_fraction=0.25, generator=torch.Generator().manual_seed(0))
    finally:
        socket.socket.connect = real_connect
    assert d.train_coords.shape[0] + d.test_coords.shape[0] == 8759
    assert [g.shape[0] for g in d.grids] == [365, 24]
    assert float(d.train_coords.min()) >= 0.0 and float(d.train_coords.max()) <= 1.0
    # A quick rank-2 fit on 25% of Seattle against the trivial baseline (the training mean) on the same split.
    res = FunBaT(ranks=2, lengthscale=0.1, learn=(), stall_check=False).fit(
        small.train_coords, small.train_values, n_iter=10, generator=torch.Generator().manual_seed(0),
        on_failure="ignore")
    baseline = _rmse(torch.full_like(small.test_values, float(small.train_values.mean())), small.test_values)
    assert _rmse(res.predict(small.test_coords)[0], small.test_values) < 0.2 * baseline


def test_restarts_escape_the_sparse_plateau_and_count_the_stalled_ones():
    # Issue 13: at N = 1,000 a single start lands on a plateau (training RMSE 0.21 against noise 0.1, latent
    # coverage 0.67) that looks converged: the inflated noise estimate absorbs the missed structure, so the
    # residual test cannot see it. Truth: the noise-free f of the generator. Restarts (full runs, hyperparameters
    # learned) keep the best and count the others that stalled above it.
    d = spatiotemporal_tensor(1000, generator=torch.Generator().manual_seed(1000))
    single = FunBaT(ranks=2, restarts=1).fit(d.train_coords, d.train_values, n_iter=100,
                                             generator=torch.Generator().manual_seed(100), on_failure="ignore")
    assert _rmse(single.predict(d.test_coords, include_noise=False)[0], d.test_truth) > 0.15   # the plateau
    res = FunBaT(ranks=2, restarts=5).fit(d.train_coords, d.train_values, n_iter=100,
                                          generator=torch.Generator().manual_seed(100), on_failure="ignore")
    assert len(res.restart_rmse) == 5 and res.n_plateaued >= 1 and "plateau" in res.reason
    assert min(res.restart_rmse) == pytest.approx(res.history[-1].train_rmse, rel=0.02)
    assert _rmse(res.predict(d.test_coords, include_noise=False)[0], d.test_truth) < 0.05
    assert abs(res.noise_std - 0.1) < 0.01


def test_prior_draw_tensor_is_the_model_it_claims():
    # Independent truth: f recomputed by a dense einsum over the core; the extrapolated points lie beyond the
    # training range in the last mode only; the factor draws have the prior's variance (1) within sampling error.
    d = prior_draw_tensor(400, grid_sizes=(6, 7, 40), n_extrap=50, generator=torch.Generator().manual_seed(0))
    again = prior_draw_tensor(400, grid_sizes=(6, 7, 40), n_extrap=50, generator=torch.Generator().manual_seed(0))
    assert torch.equal(d.train_values, again.train_values) and torch.equal(d.extrap_truth, again.extrap_truth)
    assert d.train_coords.shape == (320, 3) and d.test_coords.shape == (80, 3) and d.extrap_coords.shape == (50, 3)
    assert float(d.extrap_coords[:, 2].min()) >= 1.0 and float(d.extrap_coords[:, 2].max()) <= 1.3
    assert float(d.extrap_coords[:, :2].max()) <= 1.0
    noise = d.train_values - d.train_truth
    assert 0.08 < float(noise.std()) < 0.12
    for k, grid in enumerate(d.grids):
        assert torch.isin(d.train_coords[:, k], grid).all()
    rows = [u[torch.searchsorted(g, d.train_coords[:, k].contiguous())] for k, (u, g) in enumerate(zip(d.factors, d.grids))]
    assert torch.allclose(torch.einsum("abc,na,nb,nc->n", d.core, *rows), d.train_truth, atol=1e-12)
    # whitened by the Matérn-3/2 (ℓ = 0.3) Gram of their coordinates, the factor values are 106 i.i.d. N(0, 1)
    white = torch.cat([torch.linalg.solve_triangular(torch.linalg.cholesky(
        matern_kernel(g[:, None] - g[None, :], "matern32", 0.3, 1.0) + 1e-9 * torch.eye(g.shape[0], dtype=g.dtype)),
        u, upper=False) for u, g in zip(d.factors, d.grids)]).reshape(-1)
    assert abs(float(white.mean())) < 0.35 and 0.6 < float(white.var()) < 1.4 and d.core.shape == (2, 2, 2)
    with pytest.raises(ValueError, match="rank"):
        prior_draw_tensor(100, rank=0)


@pytest.mark.slow
def test_bands_cover_at_nominal_level_when_the_model_is_right():
    # Issue 13: on data drawn from the model's prior, the latent-f band on held-out coordinates covers in
    # [0.93, 0.97] (mean over draws; the per-draw spread measured over 10 draws is 0.91-0.965).
    latent = []
    for seed in range(5):
        d = prior_draw_tensor(1000, generator=torch.Generator().manual_seed(3000 + seed))
        res = FunBaT(ranks=2).fit(d.train_coords, d.train_values, n_iter=100,
                                  generator=torch.Generator().manual_seed(seed), on_failure="ignore")
        mean, var = res.predict(d.test_coords, include_noise=False)
        latent.append(float(((d.test_truth - mean).abs() <= 1.96 * var.sqrt()).double().mean()))
    assert 0.93 <= sum(latent) / len(latent) <= 0.97, latent
