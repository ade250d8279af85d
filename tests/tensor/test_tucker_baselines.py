"""Binning, masked Tucker-ALS (ours vs tensorly), P-Tucker-style ALS, and the gpytorch GP peer."""

from __future__ import annotations

import pytest
import torch

from sciml.linalg import TuckerTensor
from sciml.tensor import bin_observations, fit_gp_regression, masked_tucker_als, ptucker_als, tensorly_masked_tucker


def _low_rank(gen, shape=(12, 10, 14), ranks=(2, 3, 2)):
    core = torch.randn(*ranks, dtype=torch.float64, generator=gen)
    factors = [torch.randn(n, r, dtype=torch.float64, generator=gen) for n, r in zip(shape, ranks)]
    return TuckerTensor(core, tuple(factors)).to_tensor()


def test_binning_averages_each_cell():
    coords = torch.tensor([[0.1, 0.1], [0.2, 0.15], [0.9, 0.9], [0.6, 0.1]], dtype=torch.float64)
    values = torch.tensor([1.0, 3.0, 5.0, 7.0], dtype=torch.float64)
    b = bin_observations(coords, values, (2, 2), lower=(0, 0), upper=(1, 1))
    torch.testing.assert_close(b.values, torch.tensor([[2.0, 0.0], [7.0, 5.0]], dtype=torch.float64))
    assert b.mask.tolist() == [[True, False], [True, True]]
    with pytest.raises(ValueError, match="bins"):
        bin_observations(coords, values, (2,))


def _masked(gen, x, fraction):
    mask = torch.rand(x.shape, generator=gen) < fraction
    from sciml.tensor.tucker_baselines import BinnedTensor

    return BinnedTensor(torch.where(mask, x, torch.zeros_like(x)), mask, ())


def test_masked_tucker_als_recovers_a_low_rank_tensor_like_tensorly(gen):
    x = _low_rank(gen)
    binned = _masked(gen, x, 0.5)
    ours = masked_tucker_als(binned, (2, 3, 2), n_iter=150, tol=1e-10, on_failure="ignore")
    err = float(torch.linalg.norm(ours.tucker.to_tensor() - x) / torch.linalg.norm(x))
    assert err < 1e-4                                   # the missing half is recovered
    theirs = tensorly_masked_tucker(binned, (2, 3, 2), n_iter=150)
    err_tl = float(torch.linalg.norm(theirs.tucker.to_tensor() - x) / torch.linalg.norm(x))
    assert err <= max(2 * err_tl, 1e-4)


def test_ptucker_als_fits_observed_entries(gen):
    x = _low_rank(gen)
    binned = _masked(gen, x, 0.4)
    fit = ptucker_als(binned, (2, 3, 2), reg=1e-8, n_iter=150, tol=1e-12, generator=gen, on_failure="ignore")
    err = float(torch.linalg.norm(fit.tucker.to_tensor() - x) / torch.linalg.norm(x))
    assert err < 1e-3
    assert fit.history[-1] < 1e-3 * float(x.std())


def test_gp_regression_peer_fits_a_smooth_function(gen):
    pytest.importorskip("gpytorch")
    coords = torch.rand(200, 2, dtype=torch.float64, generator=gen)
    truth = torch.sin(3 * coords[:, 0]) * torch.cos(2 * coords[:, 1])
    y = truth + 0.05 * torch.randn(200, dtype=torch.float64, generator=gen)
    fit = fit_gp_regression(coords[:150], y[:150], n_iter=100, max_train=None)
    mean, var = fit.predict(coords[150:])
    assert float(((mean - truth[150:]) ** 2).mean().sqrt()) < 0.05          # below the noise level
    inside = ((y[150:] - mean).abs() <= 1.96 * var.sqrt()).double().mean()
    assert float(inside) >= 0.85


def test_gp_hyperparameter_subset_then_posterior_on_all_points(gen):
    """Learned on 60 points, conditioned on all 150: the prediction equals the dense GP posterior formula."""
    pytest.importorskip("gpytorch")
    coords = torch.rand(200, 2, dtype=torch.float64, generator=gen)
    y = torch.sin(3 * coords[:, 0]) * torch.cos(2 * coords[:, 1]) + 0.05 * torch.randn(200, dtype=torch.float64,
                                                                                       generator=gen)
    fit = fit_gp_regression(coords[:150], y[:150], n_iter=30, max_train=None, hyper_max_train=60,
                            generator=torch.Generator().manual_seed(0))
    x_train = fit.model.train_inputs[0]
    assert x_train.shape[0] == 150
    kern, noise = fit.model.covar_module, float(fit.likelihood.noise.detach())
    with torch.no_grad():
        k_tt = kern(x_train).to_dense() + noise * torch.eye(150, dtype=torch.float64)
        k_st = kern(coords[150:], x_train).to_dense()
        y_std = (fit.model.train_targets - fit.model.mean_module.constant)
        dense = fit.y_offset + fit.y_scale * (fit.model.mean_module.constant + k_st @ torch.linalg.solve(k_tt, y_std))
    mean, _ = fit.predict(coords[150:])
    assert torch.allclose(mean, dense, atol=1e-8)
