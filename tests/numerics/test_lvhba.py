"""LV-HBA (spec optim_numerics section 6): the autograd implementation on the coupled toy against an independent
scalar reduction (spec 6.5: all vectors stay in span{1}), the released defaults / working setting / [0, U] reading,
the SVM projection against its KKT conditions, the non-convex equality toy's feasibility, and bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from sciml.core import ConvergenceWarning, Status
from sciml.numerics.lvhba import lv_hba
from sciml.numerics.lvhba_problems import CoupledToy, EqualityToy, PerSampleSVM

RELEASED = dict(alpha=0.008, beta=0.02, eta=0.01, gamma1=10.0, gamma2=10.0, c0=0.025, p=0.3, U=1000.0)
WORKING = dict(alpha=0.01, beta=0.02, eta=0.01, gamma1=10.0, gamma2=0.1, c0=1.0, p=0.3, U=1000.0)


def scalar_lvhba(n_iter, *, low=None, **setting):
    """The library's hand reduction of the toy to 7 scalars (CoupledToy.scalar_errors) as a numpy array."""
    constraint = "ineq" if low == 0.0 else "eq"
    return CoupledToy().scalar_errors(n_iter, constraint=constraint, **setting).numpy()


@pytest.mark.parametrize("setting,constraint", [(RELEASED, "eq"), (WORKING, "eq"), (WORKING, "ineq")])
def test_vector_implementation_matches_scalar_reduction(setting, constraint):
    toy = CoupledToy()
    res = toy.run(n_iter=300, constraint=constraint, record_every=1, **setting)
    ref = scalar_lvhba(300, low=0.0 if constraint == "ineq" else None, **setting)
    np.testing.assert_allclose(res.history.numpy(), ref, rtol=1e-10, atol=1e-12)
    assert res.iterations == 300 and torch.allclose(res.x, res.x[0].expand_as(res.x), rtol=0, atol=1e-12)


def test_coupled_toy_claims_on_the_scalar_reduction():
    """Spec 6.5 numbers (long runs on the exact scalar reduction; the vector code matches it, above and in the slow
    test): released defaults do not converge (118.6 / 65.8), the working setting reaches < 0.05 by 30k iterations,
    the [0, U] multiplier reading settles at a wrong point (error > 1), larger p converges faster."""
    released = scalar_lvhba(20_000, **RELEASED)
    assert released[1500] == pytest.approx(118.6, abs=0.05) and released[20_000] == pytest.approx(65.8, abs=0.05)
    working = scalar_lvhba(30_000, **WORKING)
    assert working[1000] == pytest.approx(1.74, abs=0.01) and working[3000] == pytest.approx(0.018, abs=0.001)
    assert working[30_000] < 0.05
    wrong = scalar_lvhba(30_000, low=0.0, **WORKING)       # spec: ~1.0 (x ~ 0); ours 1.29, flat from 10k to 100k
    assert wrong[10_000] > 1.0 and abs(wrong[30_000] - wrong[10_000]) < 0.05
    sweep = [scalar_lvhba(30_000, **{**WORKING, "p": p})[-1] for p in (0.1, 0.2, 0.3, 0.49)]
    assert sweep == sorted(sweep, reverse=True)
    np.testing.assert_allclose(sweep, [0.097, 0.038, 0.014, 0.0018], rtol=0.05)


@pytest.mark.slow
def test_vector_toy_30k_iterations():
    toy = CoupledToy()
    res = toy.run(n_iter=30_000, record_every=1000)
    ref = scalar_lvhba(30_000, **WORKING)
    np.testing.assert_allclose(res.history.numpy(), ref[::1000], rtol=1e-8)
    assert res.history[-1] < 0.05
    assert float(res.lam) == pytest.approx(-1.0, abs=0.01)                 # the LL multiplier of the solution
    x_star, y_star = toy.solution()
    assert float((res.y - y_star).norm() / y_star.norm()) < 0.05


def test_svm_projection_is_euclidean_and_run_is_feasible():
    svm = PerSampleSVM()
    gen = torch.Generator().manual_seed(0)
    y0 = torch.randn(svm.d + 1 + svm.n, generator=gen, dtype=torch.float64)
    C0 = torch.zeros(svm.n, dtype=torch.float64)
    C, y = svm.project(C0, y0)
    # KKT of min ||y - y0||^2 s.t. A y >= 1: y - y0 = A^T mu, mu >= 0, mu_i (a_i^T y - 1) = 0.
    slack = svm.rows @ y - 1
    mu = torch.linalg.lstsq(svm.rows.T, (y - y0)[:, None]).solution[:, 0]
    assert float(slack.min()) >= -1e-9 and torch.equal(C, C0)
    torch.testing.assert_close(svm.rows.T @ mu, y - y0, rtol=0, atol=1e-9)
    assert float(mu.min()) >= -1e-9 and float((mu * slack).abs().max()) <= 1e-8
    res = svm.run(n_iter=20, record_every=20)
    assert float(svm.g(res.x, res.y).max()) <= 1e-9                       # (x, y) stays lower-feasible
    assert res.history[-1] < res.history[0]                              # smoothed validation error decreased
    assert svm.accuracy(res.y, "val") >= 0.9


def test_equality_toy_stays_feasible_and_decreases_reduced_objective():
    toy = EqualityToy()
    res = toy.run(n_iter=200, record_every=200)
    assert float((toy.B @ res.x).norm()) <= 1e-10 and float(toy.g(res.x, res.y).norm()) <= 1e-10
    assert toy.reduced(res.x) < toy.reduced(toy.x0)
    # y* map: A y* + H x = 0 and y* minimises 0.5||x - y||^2 on that set (x - y* in the row space of A).
    y_star = toy.M @ res.x
    assert float((toy.A @ y_star + toy.H @ res.x).norm()) <= 1e-9
    residual = torch.linalg.lstsq(toy.A.T, (res.x - y_star)[:, None]).solution[:, 0]
    torch.testing.assert_close(toy.A.T @ residual, res.x - y_star, rtol=0, atol=1e-9)


def test_bad_input():
    toy = CoupledToy()
    call = dict(F=toy.F, f=toy.f, g=toy.h, x0=torch.zeros(100, dtype=torch.float64),
                y0=torch.zeros(200, dtype=torch.float64))
    for kwargs, words in (({"p": 0.5}, "p must"), ({"p": 0.0}, "p must"), ({"p": -0.1}, "p must"),
                          ({"constraint": "box"}, "constraint"), ({"alpha": 0.0}, "alpha"),
                          ({"eta": -1.0}, "eta"), ({"gamma2": math.inf}, "gamma2"), ({"U": 0.0}, "U"),
                          ({"n_iter": -1}, "n_iter")):
        with pytest.raises(ValueError, match=words):
            lv_hba(**call, **kwargs)
    with pytest.raises(ValueError, match="NaN"):
        lv_hba(**{**call, "x0": torch.full((100,), math.nan)})
    with pytest.raises(TypeError, match="callables"):
        lv_hba(**{**call, "F": 3.0})
    with pytest.raises(ValueError, match="shape"):
        lv_hba(**call, lam0=torch.zeros(3))


def test_tolerance_stop_and_budget_status():
    # F = 0.5||x - 1||^2 + 0.5||y||^2, f = 0.5||y - x||^2, g = -1 - y <= 0 (inactive): solution x = y = 0.5, reached
    # up to the O(1/c_k) penalty bias; the run stops on the step residual.
    problem = (lambda x, y: 0.5 * (x - 1).pow(2).sum() + 0.5 * y.pow(2).sum(),
               lambda x, y: 0.5 * (y - x).pow(2).sum(), lambda x, y: -1.0 - y,
               torch.zeros(3, dtype=torch.float64), torch.zeros(3, dtype=torch.float64))
    setting = dict(alpha=0.1, eta=0.1, gamma1=1.0, gamma2=1.0, beta=0.1, p=0.3)
    res = lv_hba(*problem, **setting, n_iter=5000, tol=1e-3)
    assert res.status is Status.CONVERGED and res.residual <= 1e-3 and res.iterations < 5000
    assert float((res.x - 0.5).abs().max()) < 0.1 and float((res.y - 0.5).abs().max()) < 0.1
    with pytest.warns(ConvergenceWarning, match="max_iter"):
        short = lv_hba(*problem, **setting, n_iter=5, tol=1e-3)
    assert short.status is Status.MAX_ITER and short.history.shape == (6,)
