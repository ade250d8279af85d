"""Issue 13's bad inputs, each with a clear error: outside the fitted domain, NaN values, ranks < 1, an unsupported
kernel, a lengthscale <= 0 (FunBaT, Chebyshev-Tucker, RHOSVD, the state-space smoother) and non-box domains."""

from __future__ import annotations

import pytest
import torch

from sciml.tensor import ChebyshevTucker, FunBaT, gp_smoother, log_evidence, rhosvd

BOX = [(-1.0, 1.0)] * 3


def test_function_undefined_outside_a_ball_says_the_domain_must_be_a_box():
    ball = lambda x: torch.where((x**2).sum(-1) <= 1.0, torch.exp(x.sum(-1)), torch.nan)
    with pytest.raises(ValueError, match="whole box.*extend it smoothly"):
        ChebyshevTucker.fit(ball, BOX, degree=8)


@pytest.mark.parametrize("ranks", [[0, 2, 2], [2, -1, 2]])
def test_rhosvd_ranks_below_one(ranks):
    factors = [torch.rand(6, 4, dtype=torch.float64) for _ in range(3)]
    with pytest.raises(ValueError, match=r"ranks\[\d\] must be in \[1"):
        rhosvd(torch.ones(4, dtype=torch.float64), factors, ranks=ranks)


def test_nan_samples_and_cp_weights():
    grid = torch.rand(5, 5, 5, dtype=torch.float64)
    grid[1, 2, 3] = torch.nan
    with pytest.raises(ValueError, match="NaN"):
        ChebyshevTucker.fit(grid, BOX)
    weights = torch.tensor([1.0, torch.nan], dtype=torch.float64)
    with pytest.raises(ValueError, match="NaN"):
        ChebyshevTucker.fit((weights, [torch.rand(5, 2, dtype=torch.float64)] * 3), BOX)


@pytest.mark.parametrize("bad", [0.0, -1.0, float("inf")])
def test_funbat_variance_must_be_positive(bad):
    with pytest.raises(ValueError, match="variance"):
        FunBaT(variance=bad)


def test_funbat_predictive_must_be_known():
    with pytest.raises(ValueError, match="predictive must be 'marginal' or 'plugin'"):
        FunBaT(predictive="laplace")


def test_smoother_and_evidence_reject_unsupported_kernels_and_lengthscales():
    coords = torch.linspace(0, 1, 5, dtype=torch.float64)
    prec = torch.eye(1, dtype=torch.float64).expand(5, 1, 1)
    shift = torch.zeros(5, 1, dtype=torch.float64)
    with pytest.raises(ValueError, match="kernel"):
        gp_smoother(coords, prec, shift, kernel="rbf")
    with pytest.raises(ValueError, match="lengthscale"):
        gp_smoother(coords, prec, shift, lengthscale=0.0)
    with pytest.raises(ValueError, match="lengthscale"):
        log_evidence(coords, prec, shift, lengthscale=-1.0)
