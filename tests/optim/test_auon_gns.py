"""AuON's equivalences (spec 2.5) and gradient-normalised smoothness against analytic optima and scipy (spec 3.5)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.optimize
import scipy.special
import torch
from torch import nn

from sciml.core import Status
from sciml.optim import AuON, HybridAuON, grad_norm_smooth

COEF = (3.4445, -4.7750, 2.0315)


def _one_step_update(cls, G, **kwargs):
    """The update of one step from zero momentum with mu = 0 (so Mt = G)."""
    w = nn.Parameter(torch.zeros_like(G))
    opt = cls([w], lr=1.0, momentum=0.0, **kwargs)
    w.grad = G.clone()
    opt.step()
    return -w.detach()


@pytest.mark.parametrize("shape", [(64, 64), (40, 90), (90, 40)])
def test_draft_auon_is_frobenius_normalised_momentum_and_head_is_sgd(shape):
    torch.manual_seed(0)
    G = torch.randn(*shape, dtype=torch.float64)
    G[3, 5] *= 1000.0                                                  # a spike (spec: the "brake" case)
    n_entries = G.numel()
    factor = math.sqrt(max(1.0, shape[0] / shape[1]))
    U = _one_step_update(AuON, G) / factor
    assert float((U - G / G.norm()).norm()) <= 2 / n_entries
    assert float(torch.linalg.matrix_norm(U, ord=2)) <= 1.0
    head = _one_step_update(AuON, G, version="head")
    assert float((head - G).norm() / G.norm()) <= 1e-5 * 100          # r = 1 + O(sinh(gamma)^2 / N)


def test_hybrid_singular_values_are_the_ns_polynomial_over_the_cosh_rms():
    torch.manual_seed(1)
    G = torch.randn(20, 30, dtype=torch.float64)
    out = _one_step_update(HybridAuON, G, ns_dtype=torch.float64)     # one NS step (the draft)
    X = G / (G.norm() + 1e-7)                                          # the draft's normalisation, eps included
    s = torch.linalg.svdvals(X)
    a, b, c = COEF
    p = a * s + b * s**3 + c * s**5
    A = X @ X.T
    ns = a * X + (b * A + c * A @ A) @ X
    r = torch.cosh(ns).pow(2).mean().sqrt()
    torch.testing.assert_close(torch.linalg.svdvals(out), torch.sort(p / r, descending=True).values,
                               rtol=1e-8, atol=1e-12)


def test_auon_bad_input():
    with pytest.raises(ValueError, match="version"):
        AuON([nn.Parameter(torch.ones(2, 2))], version="v3")
    with pytest.raises(ValueError, match="AdamW"):
        AuON([nn.Parameter(torch.ones(2))])


# -------------------------------------------------------------------------------- gradient-normalised smoothness
def _logsumexp_problem(n=200, seed=3124):
    """LogSumExp ``log sum exp(A^T x - b) - <g0, x>`` with ``g0 = grad(0)`` subtracted, so x* = 0 exactly and the
    Hessian is unchanged (the repo's zero oracle); metric B = A A^T."""
    rng = np.random.default_rng(seed)
    A = rng.uniform(-1, 1, (n, n))
    b = rng.uniform(-1, 1, n)
    g0 = A @ scipy.special.softmax(-b)
    f = lambda x: float(scipy.special.logsumexp(A.T @ x - b) - g0 @ x)  # noqa: E731

    def grad(x):
        return A @ scipy.special.softmax(A.T @ x - b) - g0

    def hess(x):
        p = scipy.special.softmax(A.T @ x - b)
        Ap = A @ p
        return (A * p) @ A.T - np.outer(Ap, Ap)

    def weighted_gn(x):
        p = scipy.special.softmax(A.T @ x - b)
        return (A * p) @ A.T

    return f, grad, hess, weighted_gn, A @ A.T, f(np.zeros(n))


def test_logsumexp_exact_and_weighted_gauss_newton_iteration_counts():
    f, grad, hess, wgn, B, f_star = _logsumexp_problem()
    x0 = np.ones(200)
    exact = grad_norm_smooth(f, grad, x0, hessian=hess, metric=B, f_star=f_star, max_iters=200)
    gn = grad_norm_smooth(f, grad, x0, hessian=wgn, metric=B, f_star=f_star, max_iters=200)
    assert exact.status is Status.CONVERGED and exact.iterations <= 25, exact.iterations   # spec: 18
    assert gn.status is Status.CONVERGED and gn.iterations <= 45, gn.iterations            # spec: 30
    for res in (exact, gn):
        assert np.all(res.step_lengths <= (res.gammas + 1e-8) * (1 + 1e-9))     # ||dx||_B <= gamma + eps
        assert abs(res.fun - f_star) < 1e-8


def test_logistic_regression_matches_scipy_trust_exact():
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer()
    X = (data.data - data.data.mean(0)) / data.data.std(0)
    X = np.hstack([X, np.ones((len(X), 1))])
    y = 2.0 * data.target - 1
    lam = 1e-3

    def f(w):
        return float(np.mean(np.logaddexp(0, -y * (X @ w))) + lam / 2 * w @ w)

    def grad(w):
        s = scipy.special.expit(-y * (X @ w))
        return -(X.T @ (y * s)) / len(y) + lam * w

    def hess(w):
        s = scipy.special.expit(y * (X @ w))
        return (X * (s * (1 - s))[:, None]).T @ X / len(y) + lam * np.eye(X.shape[1])

    ref = scipy.optimize.minimize(f, np.zeros(31), jac=grad, hess=hess, method="trust-exact", tol=1e-12)
    res = grad_norm_smooth(f, grad, np.zeros(31), hessian=hess, f_star=ref.fun, tol=1e-10, max_iters=50)
    assert res.status is Status.CONVERGED and res.iterations <= 15                      # spec: 9
    assert np.abs(res.x - ref.x).max() < 1e-4 and ref.fun == pytest.approx(0.059829471882, abs=1e-9)


def test_rosenbrock_exact_hessian_within_60_iterations():
    f = lambda x: float((1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2)  # noqa: E731
    grad = lambda x: np.array([-2 * (1 - x[0]) - 400 * x[0] * (x[1] - x[0] ** 2), 200 * (x[1] - x[0] ** 2)])  # noqa
    hess = lambda x: np.array([[2 - 400 * (x[1] - 3 * x[0] ** 2), -400 * x[0]], [-400 * x[0], 200]])  # noqa: E731
    res = grad_norm_smooth(f, grad, np.array([-2.0, 2.0]), hessian=hess, f_star=0.0, max_iters=200)
    assert res.status is Status.CONVERGED and res.iterations <= 60, res.iterations            # spec: 51
    assert res.cholesky_failures >= 0 and np.allclose(res.x, [1, 1], atol=1e-3)


def test_gns_bad_input_and_nonconvergence_is_reported():
    f, g = (lambda x: float(x @ x)), (lambda x: 2 * x)
    with pytest.raises(ValueError, match="gamma0"):
        grad_norm_smooth(f, g, np.ones(2), gamma0=0.0)
    with pytest.raises(ValueError, match="positive definite"):
        grad_norm_smooth(f, g, np.ones(2), metric=-np.eye(2))
    with pytest.raises(ValueError, match="x0"):
        grad_norm_smooth(f, g, np.array([np.nan, 1.0]))
    res = grad_norm_smooth(f, g, np.ones(2), max_iters=2, f_star=0.0, tol=1e-30, on_failure="ignore")
    assert res.status is Status.MAX_ITER and res.iterations == 2 and res.oracle_calls >= 3
