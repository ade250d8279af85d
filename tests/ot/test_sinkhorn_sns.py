"""Log-domain Sinkhorn and Sinkhorn-Newton-Sparse against POT, each other, the LAP limit and closed properties."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from sciml.core import ConvergenceWarning, Status
from sciml.ot import sinkhorn, sinkhorn_newton_sparse


def random_problem(n: int, m: int, seed: int, uniform: bool = False):
    rng = np.random.default_rng(seed)
    C = rng.random((n, m))
    if uniform:
        a, b = np.full(n, 1.0 / n), np.full(m, 1.0 / m)
    else:
        a, b = rng.random(n) + 0.1, rng.random(m) + 0.1
        a, b = a / a.sum(), b / b.sum()
    return torch.tensor(C), torch.tensor(a), torch.tensor(b)


@pytest.mark.parametrize("eta", [10.0, 100.0])
def test_plan_and_cost_match_pot_log_sinkhorn(eta):
    ot = pytest.importorskip("ot")
    C, a, b = random_problem(90, 70, seed=1)
    P_pot = ot.sinkhorn(a.numpy(), b.numpy(), C.numpy(), 1.0 / eta, method="sinkhorn_log", stopThr=1e-14,
                        numItermax=20_000)
    cost_pot = float((C.numpy() * P_pot).sum())
    for result in (sinkhorn(C, a, b, eta, tol=1e-13), sinkhorn_newton_sparse(C, a, b, eta, tol=1e-13)):
        assert result.status is Status.CONVERGED
        assert np.abs(result.plan.numpy() - P_pot).max() <= 1e-10
        assert abs(result.cost - cost_pot) <= 1e-10


def test_marginals_and_reported_error_are_true():
    C, a, b = random_problem(60, 80, seed=2)
    for result in (sinkhorn(C, a, b, 40.0, tol=1e-12), sinkhorn_newton_sparse(C, a, b, 40.0, tol=1e-12)):
        rows, cols = result.plan.sum(1), result.plan.sum(0)
        true_error = float((rows - a).abs().sum() + (cols - b).abs().sum())
        assert result.marginal_error == pytest.approx(true_error, abs=1e-16)
        assert true_error <= 1e-12
        assert bool((result.plan >= 0).all())
        # the plan is the Gibbs form of the returned duals
        x, y = result.dual
        assert torch.allclose(result.plan, torch.exp(40.0 * (x[:, None] + y[None, :] - C) - 1), rtol=1e-12, atol=0)
        assert float(y[-1]) == 0.0  # gauge
        assert result.history[-1] == result.marginal_error and len(result.history) >= 1


def test_sns_and_sinkhorn_reach_the_same_optimum():
    C, a, b = random_problem(80, 80, seed=3)
    eta = 60.0
    s = sinkhorn(C, a, b, eta, tol=1e-13, max_iter=50_000)
    n = sinkhorn_newton_sparse(C, a, b, eta, tol=1e-13)
    assert (s.plan - n.plan).abs().max() <= 1e-12
    # same duals in the common gauge y_last = 0 (the dual optimum is unique up to that shift)
    assert (s.dual[0] - n.dual[0]).abs().max() <= 1e-10 and (s.dual[1] - n.dual[1]).abs().max() <= 1e-10


def test_r1_paper_instance_converges_in_few_newton_steps():
    """Spec §2.6 R1 (paper's Table 1 setting, seed 1): ||g||_1 <= 2e-15 within 15 Newton steps (spec measured 13)."""
    C, a, b = random_problem(500, 500, seed=1, uniform=True)
    sns = sinkhorn_newton_sparse(C, a, b, 1200.0, n_sinkhorn=20, sparsity=5 * 500, tol=2e-15)
    assert sns.status is Status.CONVERGED and sns.marginal_error <= 2e-15
    assert sns.n_newton <= 15 and sns.n_sinkhorn == 20


def test_sns_needs_far_fewer_iterations_than_sinkhorn_at_large_eta():
    """Spec §2.6 at n = 200: capped 2,000 Sinkhorn sweeps stay >= 1e6 x worse, with >= 50x more iterations."""
    C, a, b = random_problem(200, 200, seed=1, uniform=True)
    sns = sinkhorn_newton_sparse(C, a, b, 1200.0, sparsity=5 * 200, tol=1e-14)
    assert sns.status is Status.CONVERGED
    capped = sinkhorn(C, a, b, 1200.0, tol=1e-14, max_iter=2000, on_failure="ignore")
    assert capped.status is Status.MAX_ITER
    assert capped.marginal_error >= 1e6 * sns.marginal_error
    assert capped.n_iter >= 50 * sns.n_iter


def test_large_eta_cost_is_within_the_entropic_gap_of_the_assignment_optimum():
    """0 <= <C,P> - OT <= (log n + 1)/eta (spec §2.6 ground truth 3), OT from the exact LAP (uniform marginals)."""
    scipy_optimize = pytest.importorskip("scipy.optimize")
    n, eta = 150, 1200.0
    C, a, b = random_problem(n, n, seed=4, uniform=True)
    rows, cols = scipy_optimize.linear_sum_assignment(C.numpy())
    ot_cost = float(C.numpy()[rows, cols].sum()) / n
    result = sinkhorn_newton_sparse(C, a, b, eta, tol=1e-14)
    assert result.status is Status.CONVERGED
    assert -1e-12 <= result.cost - ot_cost <= (math.log(n) + 1.0) / eta


def test_diffuse_plan_converges_by_densifying_the_hessian():
    """Small eta: the plan is spread over all entries, k = n entries make a crude Hessian; k must grow."""
    C, a, b = random_problem(100, 90, seed=5)
    eta = 8.0
    result = sinkhorn_newton_sparse(C, a, b, eta, n_sinkhorn=1, sparsity=100, tol=1e-13)
    assert result.status is Status.CONVERGED
    assert max(result.sparsity_history) > 100  # densified at least once
    assert result.sparsity_history == tuple(sorted(result.sparsity_history))
    reference = sinkhorn(C, a, b, eta, tol=1e-14)
    assert (result.plan - reference.plan).abs().max() <= 1e-12


def test_zero_mass_rows_and_columns_are_dropped():
    ot = pytest.importorskip("ot")
    C, a, b = random_problem(40, 30, seed=6)
    a[[3, 17]] = 0.0
    b[[0]] = 0.0
    a, b = a / a.sum(), b / b.sum()
    keep_r, keep_c = a > 0, b > 0
    reduced = ot.sinkhorn(a[keep_r].numpy(), b[keep_c].numpy(), C[keep_r][:, keep_c].numpy(), 1 / 50.0,
                          method="sinkhorn_log", stopThr=1e-14, numItermax=20_000)
    for result in (sinkhorn(C, a, b, 50.0, tol=1e-13), sinkhorn_newton_sparse(C, a, b, 50.0, tol=1e-13)):
        assert result.status is Status.CONVERGED
        assert float(result.plan[~keep_r].abs().max()) == 0.0 and float(result.plan[:, ~keep_c].abs().max()) == 0.0
        assert np.abs(result.plan[keep_r][:, keep_c].numpy() - reduced).max() <= 1e-10
        assert bool(torch.isinf(result.dual[0][~keep_r]).all())


def test_dtype_and_device_follow_the_input(device):
    C, a, b = random_problem(30, 20, seed=7)
    result = sinkhorn_newton_sparse(C.float().to(device), a.float().to(device), b.float().to(device), 20.0,
                                    tol=1e-5)
    assert result.plan.dtype == torch.float32 and result.plan.device.type == device.type
    assert result.status is Status.CONVERGED
    numpy_result = sinkhorn(C.numpy(), a.numpy(), b.numpy(), 20.0, tol=1e-12)  # numpy in -> float64 tensors
    assert numpy_result.plan.dtype == torch.float64
    assert (numpy_result.plan - result.plan.double().cpu()).abs().max() <= 1e-5


def test_budget_exhaustion_warns_and_reports_max_iter():
    C, a, b = random_problem(50, 50, seed=8)
    with pytest.warns(ConvergenceWarning):
        result = sinkhorn(C, a, b, 500.0, tol=1e-14, max_iter=3)
    assert result.status is Status.MAX_ITER and result.n_iter == 3 and result.marginal_error > 1e-14
    with pytest.warns(ConvergenceWarning):
        result = sinkhorn_newton_sparse(C, a, b, 500.0, n_sinkhorn=2, max_newton=1, tol=1e-15)
    assert result.status is Status.MAX_ITER and result.n_newton == 1


@pytest.mark.parametrize("case, message", [
    ("negative_a", "negative"), ("nan_b", "NaN"), ("negative_cost", "negative"), ("nan_cost", "NaN"),
    ("unequal_mass", "sum"), ("shape", "lengths"), ("cost_1d", "2-D"), ("eta_zero", "eta"), ("eta_negative", "eta"),
    ("eta_nan", "eta"), ("zero_mass", "positive total mass"), ("tol", "tol"),
])
@pytest.mark.parametrize("solver", [sinkhorn, sinkhorn_newton_sparse])
def test_bad_input_raises_value_error(solver, case, message):
    C, a, b = random_problem(5, 4, seed=9)
    eta, kwargs = 10.0, {}
    if case == "negative_a":
        a[0] = -0.1
    elif case == "nan_b":
        b[1] = math.nan
    elif case == "negative_cost":
        C[0, 0] = -1.0
    elif case == "nan_cost":
        C[2, 3] = math.nan
    elif case == "unequal_mass":
        b = 2 * b
    elif case == "shape":
        a = a[:-1]
    elif case == "cost_1d":
        C = C[0]
    elif case == "eta_zero":
        eta = 0.0
    elif case == "eta_negative":
        eta = -3.0
    elif case == "eta_nan":
        eta = math.nan
    elif case == "zero_mass":
        a, b = torch.zeros_like(a), torch.zeros_like(b)
    elif case == "tol":
        kwargs = {"tol": 0.0}
    with pytest.raises(ValueError, match=message):
        solver(C, a, b, eta, **kwargs)


def test_sparsity_must_be_a_positive_int():
    C, a, b = random_problem(5, 4, seed=9)
    with pytest.raises(ValueError, match="sparsity"):
        sinkhorn_newton_sparse(C, a, b, 10.0, sparsity=0)


def test_large_eta_plan_matches_regot_safe_sparse_newton_and_our_dense_newton():
    """eta = 1200 is out of reach for Sinkhorn; oracles: RegOT's SSNS (C++ peer) and the dense-Hessian Newton."""
    regot = pytest.importorskip("regot")
    C, a, b = random_problem(150, 150, seed=4, uniform=True)
    ours = sinkhorn_newton_sparse(C, a, b, 1200.0, sparsity=5 * 150, tol=1e-14)
    dense = sinkhorn_newton_sparse(C, a, b, 1200.0, sparsity=150 * 150, tol=1e-14)
    peer = regot.sinkhorn_ssns(C.numpy(), a.numpy(), b.numpy(), 1 / 1200.0, tol=1e-13, max_iter=500)
    assert ours.status is Status.CONVERGED and dense.status is Status.CONVERGED
    assert (ours.plan - dense.plan).abs().max() <= 1e-10
    assert np.abs(ours.plan.numpy() - peer.plan).max() <= 1e-10


def test_unattainable_tol_stops_early_with_a_warning_not_a_false_convergence():
    C, a, b = random_problem(60, 60, seed=10)
    with pytest.warns(ConvergenceWarning, match="attainable"):
        result = sinkhorn_newton_sparse(C.float(), a.float(), b.float(), 200.0, tol=1e-10, max_newton=100)
    assert result.status is Status.MAX_ITER and result.n_newton < 100
    assert result.marginal_error > 1e-10


def _discrete_wpp_1d(a: np.ndarray, b: np.ndarray, x: np.ndarray, p: int) -> float:
    """Exact W_p^p of two discrete measures on the same 1-D grid: integral of |F^-1 - G^-1|^p over the merged
    quantile steps (closed form, independent of any OT solver)."""
    Fa, Fb = np.cumsum(a), np.cumsum(b)
    u = np.unique(np.clip(np.concatenate([[0.0], Fa, Fb]), 0.0, 1.0))
    mid = 0.5 * (u[:-1] + u[1:])
    ia = np.minimum(np.searchsorted(Fa, mid), len(x) - 1)
    ib = np.minimum(np.searchsorted(Fb, mid), len(x) - 1)
    return float((np.diff(u) * np.abs(x[ia] - x[ib]) ** p).sum())


@pytest.mark.parametrize("p", [1, 2])
def test_r3_one_dimensional_wasserstein_within_the_entropic_gap(p):
    """Spec §2.6 R3: N(0.3, 0.05^2) vs 0.5 N(0.6, 0.05^2) + 0.5 N(0.8, 0.03^2) on a grid, eta = 1200."""
    n, eta = 200, 1200.0
    x = np.linspace(0.0, 1.0, n)
    pdf = lambda t, mu, s: np.exp(-0.5 * ((t - mu) / s) ** 2) / s  # noqa: E731
    a = pdf(x, 0.3, 0.05)
    b = 0.5 * pdf(x, 0.6, 0.05) + 0.5 * pdf(x, 0.8, 0.03)
    a, b = a / a.sum(), b / b.sum()
    C = np.abs(x[:, None] - x[None, :]) ** p
    result = sinkhorn_newton_sparse(C, a, b, eta, tol=1e-13)
    exact = _discrete_wpp_1d(a, b, x, p)
    assert result.status is Status.CONVERGED
    assert -1e-12 <= result.cost - exact <= (math.log(n) + 1.0) / eta


def test_r2_digits_pair_converges_through_the_damped_phase():
    """Spec §2.6 R2 at 16x16 (202 x 160 support, L2 cost, eta = 1200): after the warm start ||g||_1 ~ 0.1 and
    Newton spends ~20 damped steps with ||g||_1 not monotone; the run must not be stopped as 'stalled' there.
    Oracle: RegOT's safe sparse Newton (independent C++ solver) and the exact EMD cost bracket."""
    ndimage = pytest.importorskip("scipy.ndimage")
    datasets = pytest.importorskip("sklearn.datasets")
    ot = pytest.importorskip("ot")
    regot = pytest.importorskip("regot")
    from scipy.spatial.distance import cdist

    points, masses = [], []
    for index in (0, 1):
        image = np.clip(ndimage.zoom(datasets.load_digits().images[index], 2.0, order=1), 0.0, None)
        grid = np.stack(np.meshgrid(np.arange(16), np.arange(16), indexing="ij"), -1).reshape(-1, 2) / 15.0
        keep = image.ravel() > 0
        points.append(grid[keep])
        masses.append(image.ravel()[keep] / image.ravel()[keep].sum())
    C = cdist(points[0], points[1])
    a, b = masses
    result = sinkhorn_newton_sparse(C, a, b, 1200.0, n_sinkhorn=200, tol=1e-13)
    assert result.status is Status.CONVERGED
    peer = regot.sinkhorn_ssns(C, a, b, 1 / 1200.0, tol=1e-13, max_iter=2000)
    assert np.abs(result.plan.numpy() - peer.plan).max() <= 1e-10
    exact = float(ot.emd2(a, b, C))
    assert 0.0 <= result.cost - exact <= math.log(len(a) * len(b)) / 1200.0


def test_default_sparsity_is_dense_below_the_measured_crossover_and_sparse_above(monkeypatch):
    import sciml.ot.sns as sns_module

    C, a, b = random_problem(60, 40, seed=2, uniform=True)
    dense = sinkhorn_newton_sparse(C, a, b, 1200.0, tol=1e-13)
    assert dense.sparsity_history[0] == 60 * 40 and dense.n_direct_solves == dense.n_newton > 0
    monkeypatch.setattr(sns_module, "DENSE_NEWTON_MAX_SIZE", 99)  # n + m = 100 is now above the crossover
    sparse = sinkhorn_newton_sparse(C, a, b, 1200.0, tol=1e-13)
    assert sparse.sparsity_history[0] == 5 * 60
    assert dense.converged and sparse.converged
    assert (dense.plan - sparse.plan).abs().max() <= 1e-12


def test_fast_sinkhorn_regime_finishes_with_sweeps_and_keeps_the_plan():
    """Small eta: Sinkhorn contracts fast, so SNS finishes with sweeps (its observed rate predicts <= n_sinkhorn
    more) rather than Newton steps; the plan still equals plain Sinkhorn's."""
    C, a, b = random_problem(80, 80, seed=3, uniform=True)
    plain = sinkhorn(C, a, b, 20.0, tol=1e-14)
    sns = sinkhorn_newton_sparse(C, a, b, 20.0, n_sinkhorn=20, tol=1e-14)
    assert plain.converged and sns.converged and plain.n_sinkhorn <= 40  # the regime: Sinkhorn alone is fast
    assert sns.n_newton == 0 and sns.n_sinkhorn > 20
    assert (sns.plan - plain.plan).abs().max() <= 1e-14
    slow = sinkhorn_newton_sparse(C, a, b, 1200.0, n_sinkhorn=20, tol=1e-14)
    assert slow.converged and slow.n_newton > 0  # large eta: the predicted sweep count is far too high
