"""Tensor algebra and Tucker decompositions against planted truth and tensorly."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sciml.linalg import (TuckerTensor, fold, khatri_rao, mode_product, multi_mode_product, tucker_hooi, tucker_hosvd,
                          unfold)
from sciml.testing import random_orthogonal, tol

tl = pytest.importorskip("tensorly")


def planted(gen, shape=(10, 12, 14), ranks=(3, 4, 5), dtype=torch.float64):
    core = torch.randn(*ranks, generator=gen, dtype=dtype)
    factors = [random_orthogonal(n, generator=gen, dtype=dtype)[:, :r] for n, r in zip(shape, ranks)]
    return TuckerTensor(core, tuple(factors))


def test_unfold_fold_match_tensorly(gen):
    x = torch.randn(3, 4, 5, 2, generator=gen, dtype=torch.float64)
    for mode in range(4):
        np.testing.assert_array_equal(unfold(x, mode).numpy(), tl.unfold(x.numpy(), mode))
        torch.testing.assert_close(fold(unfold(x, mode), mode, x.shape), x, rtol=0, atol=0)


def test_mode_products_match_tensorly(gen):
    x = torch.randn(3, 4, 5, generator=gen, dtype=torch.float64)
    mats = [torch.randn(r, n, generator=gen, dtype=torch.float64) for r, n in ((2, 3), (6, 4), (5, 5))]
    expected = tl.tenalg.multi_mode_dot(x.numpy(), [m.numpy() for m in mats])
    torch.testing.assert_close(multi_mode_product(x, mats), torch.from_numpy(expected), **tol(torch.float64))
    torch.testing.assert_close(mode_product(x, mats[1], 1),
                               torch.from_numpy(tl.tenalg.mode_dot(x.numpy(), mats[1].numpy(), 1)))
    torch.testing.assert_close(mode_product(x, mats[1].T, 1, transpose=True), mode_product(x, mats[1], 1))


def test_khatri_rao_matches_tensorly(gen):
    mats = [torch.randn(n, 3, generator=gen, dtype=torch.float64) for n in (2, 4, 3)]
    expected = tl.tenalg.khatri_rao([m.numpy() for m in mats])
    torch.testing.assert_close(khatri_rao(mats), torch.from_numpy(expected), **tol(torch.float64))


@pytest.mark.parametrize("method", ["svd", "gram"])
def test_hosvd_recovers_planted_tucker(gen, method):
    truth = planted(gen)
    fit = tucker_hosvd(truth.to_tensor(), ranks=(3, 4, 5), method=method)
    assert fit.ranks == (3, 4, 5)
    assert fit.rel_error < 1e-12
    torch.testing.assert_close(fit.tucker.to_tensor(), truth.to_tensor(), **tol(torch.float64, "solve"))


def test_hosvd_tolerance_picks_ranks_and_meets_bound(gen):
    truth = planted(gen)
    exact = tucker_hosvd(truth.to_tensor(), tol=1e-10)
    assert exact.ranks == (3, 4, 5) and exact.method == "svd"
    noisy = truth.to_tensor() + 1e-3 * torch.randn(10, 12, 14, generator=gen, dtype=torch.float64)
    for target in (1e-1, 1e-2, 1e-4):
        fit = tucker_hosvd(noisy, tol=target)
        assert fit.rel_error <= target


def test_hooi_no_worse_than_tensorly_on_noisy_data(gen):
    from tensorly.decomposition import tucker

    truth = planted(gen, ranks=(4, 4, 4))
    noisy = truth.to_tensor() + 0.1 * torch.randn(10, 12, 14, generator=gen, dtype=torch.float64)
    ours = tucker_hooi(noisy, (4, 4, 4), tol=1e-10)
    core, factors = tucker(noisy.numpy(), rank=[4, 4, 4], init="svd", n_iter_max=100, tol=1e-10)
    theirs = np.linalg.norm(noisy.numpy() - tl.tucker_to_tensor((core, factors))) / np.linalg.norm(noisy.numpy())
    assert ours.converged
    assert ours.rel_error <= theirs * (1 + 1e-8)
    assert ours.history == tuple(sorted(ours.history, reverse=True))  # HOOI never increases the error
    assert tucker_hosvd(noisy, (4, 4, 4)).rel_error >= ours.rel_error - 1e-12


def test_tensorly_round_trip(gen):
    truth = planted(gen)
    back = TuckerTensor.from_tensorly(truth.to_tensorly())
    torch.testing.assert_close(back.to_tensor(), truth.to_tensor(), **tol(torch.float64))
    assert truth.storage == 3 * 4 * 5 + 10 * 3 + 12 * 4 + 14 * 5


def test_float32_path(gen):
    truth = planted(gen, dtype=torch.float32)
    fit = tucker_hosvd(truth.to_tensor(), ranks=(3, 4, 5))
    assert fit.core.dtype == torch.float32 and fit.rel_error < 1e-5


@pytest.mark.parametrize("kwargs, match", [
    ({"ranks": (3, 4, 99)}, "between 1 and the mode size"),
    ({"ranks": (3, 4)}, "got 2 ranks"),
    ({"ranks": None, "tol": 2.0}, "tol must be"),
    ({"ranks": 2, "method": "qr"}, "method must be"),
])
def test_bad_tucker_inputs(gen, kwargs, match):
    with pytest.raises(ValueError, match=match):
        tucker_hosvd(torch.randn(5, 6, 7, generator=gen, dtype=torch.float64), **kwargs)


def test_nan_and_shape_errors():
    with pytest.raises(ValueError, match="NaN"):
        tucker_hosvd(torch.full((3, 3, 3), float("nan"), dtype=torch.float64), ranks=2)
    with pytest.raises(ValueError, match="does not match"):
        mode_product(torch.ones(2, 3), torch.ones(4, 5), 1)
    with pytest.raises(ValueError, match="mode must be"):
        unfold(torch.ones(2, 3), 2)
    with pytest.raises(ValueError, match="expected"):
        TuckerTensor(torch.ones(2, 2), (torch.ones(4, 3), torch.ones(4, 2)))
