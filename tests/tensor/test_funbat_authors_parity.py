"""FunBaT against the authors' code arithmetic (NumPy port, sciml.tensor.funbat_reference) on their data."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from sciml.tensor import FunBaT, gp_smoother
from sciml.tensor.authors_data import funbat_simulation_r1
from sciml.tensor.funbat_reference import (AUTHORS_CP_AS_FUNBAT, AuthorsCPSettings, authors_funbat_cp,
                                          authors_kalman_smoother, state_space_matrices, transitions)



def _rmse(pred, truth) -> float:
    return float(np.sqrt(np.mean((np.asarray(pred) - np.asarray(truth)) ** 2)))


@pytest.mark.parametrize("kernel", ["matern12", "matern32"])
def test_one_smoothing_step_equals_the_authors_kalman_filter(kernel):
    # Their pseudo-observation N((ΣΛ + I/v)⁻¹Ση, (ΣΛ + I/v)⁻¹) in a covariance-form filter equals our information-form
    # smoother given precision ΣΛ + I/v and shift Ση (their random first mean set to 0).
    rng = np.random.default_rng(0)
    S, r, v = 40, 2, 1.0
    grid = np.sort(rng.random(S))
    a = rng.standard_normal((S, r, r))
    prec = a @ a.transpose(0, 2, 1) * 0.5
    shift = rng.standard_normal((S, r))
    F, H, P_inf = state_space_matrices(kernel, r, 0.2, 0.7)
    obs_cov = np.linalg.inv(prec + np.eye(r) / v)
    obs_mean = np.einsum("sab,sb->sa", obs_cov, shift)
    mean, cov = authors_kalman_smoother(transitions(grid, F), obs_mean, obs_cov, H, P_inf, np.zeros(F.shape[0]))
    ours = gp_smoother(torch.from_numpy(grid), torch.from_numpy(prec + np.eye(r) / v), torch.from_numpy(shift),
                       kernel, 0.2, 0.7)
    np.testing.assert_allclose(ours.mean.numpy(), mean, rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(ours.cov.numpy(), cov, rtol=1e-9, atol=1e-10)


def test_oracle_rejects_unseen_test_coordinates():
    d = funbat_simulation_r1()
    with pytest.raises(ValueError, match="not seen"):
        authors_funbat_cp(d.train_coords.numpy(), d.train_values.numpy(), d.test_coords.numpy()[:3] + 1e-3,
                          AuthorsCPSettings(epochs=1))


@pytest.mark.slow
def test_authors_code_and_ours_on_their_synthetic_run():
    d = funbat_simulation_r1()
    args = (d.train_coords.numpy(), d.train_values.numpy(), d.test_coords.numpy())
    # The authors' arithmetic with their exact settings: the paper's 0.004 (one significant digit).
    theirs = _rmse(authors_funbat_cp(*args, AuthorsCPSettings()), d.test_values)
    assert 0.0035 <= theirs < 0.0045
    # Ours with their settings: within 5% of their arithmetic once the N(0, vI) prior they count a second time in
    # every pseudo-observation is removed (their random first chain mean set to 0); that prior is the whole gap.
    without_double_prior = _rmse(authors_funbat_cp(*args, AuthorsCPSettings(prior_v=math.inf, random_m0=False)),
                                 d.test_values)
    res = FunBaT(**AUTHORS_CP_AS_FUNBAT).fit(d.train_coords, d.train_values, n_iter=100,
                                     generator=torch.Generator().manual_seed(0), on_failure="ignore")
    ours = _rmse(res.predict(d.test_coords)[0], d.test_values)
    assert abs(ours / without_double_prior - 1) < 0.05
    assert ours < 0.9 * theirs
    # Our defaults (learned hyperparameters, restarts, standardised y, exact unseen-state posterior) go far lower.
    default = FunBaT(ranks=1, variant="cp", kernel="matern32", lengthscale=0.1, variance=0.5).fit(
        d.train_coords, d.train_values, n_iter=100, generator=torch.Generator().manual_seed(0), on_failure="ignore")
    assert _rmse(default.predict(d.test_coords)[0], d.test_values) < 0.1 * theirs
