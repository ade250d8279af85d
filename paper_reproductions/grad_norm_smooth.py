"""Gradient-Normalized Smoothness for Optimization with Approximate Hessians (Semenov, Jaggi, Doikov, arXiv
2506.13710). The paper reports figures only; the reference values below are iteration counts the spec obtained by
running the authors' code (``epfml/grad-norm-smooth``) on the same problems, marked so. Our instances are drawn
with our own generator (the LogSumExp matrix differs from the notebook's), so those rows are in-band at best.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import scipy.optimize
import scipy.special

from sciml.optim import grad_norm_smooth
from sciml.runner import Measured, Paper, ReproductionConfig, Row, RunContext, reproduction

PAPER = Paper(key="grad_norm_smooth", title="Gradient-Normalized Smoothness for Optimization with Approximate "
              "Hessians", arxiv="2506.13710", venue="ICLR 2026")

_CODE = "authors' code run by the spec (figures only in the paper)"
_LSE = "LogSumExp n = m = 200, A, b ~ U[-1, 1], mu = 1, x* = 0 (gradient at 0 subtracted), x0 = 1, B = A A^T"
_LOGREG = "breast-cancer logistic regression, standardised + bias, lambda = 1e-3, x0 = 0, B = I"
_ROSEN = "Rosenbrock a = 1, b = 100, x0 = (-2, 2), B = I"
_OURS = "same problem, our random instance"

ROWS = (
    Row("lse200/exact/iterations", _CODE, _LSE, "iterations to f - f* < 1e-8, exact Hessian", 18, _OURS,
        expect=(1, 25), note="spec acceptance <= 25"),
    Row("lse200/weighted_gn/iterations", _CODE, _LSE, "iterations, weighted Gauss-Newton (H >= Hess f)", 30, _OURS,
        expect=(1, 45), note="spec acceptance <= 45"),
    Row("lse200/gd_metric/iterations", _CODE, _LSE, "iterations, H = 0 (normalised GD in the B metric)", 74, _OURS,
        note="the first-order baseline at the same stopping rule"),
    Row("logreg/exact/iterations", "spec (verified with scipy)", _LOGREG, "iterations to f - f* < 1e-8", 9,
        "the spec's setting", expect=(1, 15), same_setting=True),
    Row("logreg/fun_minus_trust_exact", "scipy trust-exact", _LOGREG, "f(ours) - f(scipy trust-exact)", None,
        "the spec's setting", expect=(-1e-8, 1e-8)),
    Row("logreg/zero_hessian/iterations", "spec (verified)", _LOGREG, "iterations with H = 0", 260,
        "the spec's setting", note="baseline: no curvature"),
    Row("rosenbrock/exact/iterations", _CODE, _ROSEN, "iterations to f < 1e-8, exact Hessian", 51,
        "the spec's setting", expect=(1, 60), same_setting=True, note="spec acceptance <= 60"),
    Row("all/max_step_over_gamma", "Algorithm 1", "every run above", "max step length / (gamma + 1e-8), B-norm",
        None, "all runs", expect=(0.0, 1.0 + 1e-9),
        note="the trust-radius property: lam = ||g||/(gamma + 1e-8) bounds the step by gamma + 1e-8"),
)


def _lse(n: int, seed: int):
    rng = np.random.default_rng(seed)
    A, b = rng.uniform(-1, 1, (n, n)), rng.uniform(-1, 1, n)
    g0 = A @ scipy.special.softmax(-b)

    def f(x):
        return float(scipy.special.logsumexp(A.T @ x - b) - g0 @ x)

    def grad(x):
        return A @ scipy.special.softmax(A.T @ x - b) - g0

    def wgn(x):
        p = scipy.special.softmax(A.T @ x - b)
        return (A * p) @ A.T

    def hess(x):
        Ap = A @ scipy.special.softmax(A.T @ x - b)
        return wgn(x) - np.outer(Ap, Ap)

    return f, grad, hess, wgn, A @ A.T, f(np.zeros(n))


def _logreg():
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer()
    X = (data.data - data.data.mean(0)) / data.data.std(0)
    X = np.hstack([X, np.ones((len(X), 1))])
    y = 2.0 * data.target - 1

    def f(w):
        return float(np.mean(np.logaddexp(0, -y * (X @ w))) + 5e-4 * w @ w)

    def grad(w):
        return -(X.T @ (y * scipy.special.expit(-y * (X @ w)))) / len(y) + 1e-3 * w

    def hess(w):
        s = scipy.special.expit(y * (X @ w))
        return (X * (s * (1 - s))[:, None]).T @ X / len(y) + 1e-3 * np.eye(X.shape[1])

    return f, grad, hess


@dataclasses.dataclass(frozen=True)
class GNSReproConfig(ReproductionConfig):
    lse_size: int = 200

    @classmethod
    def preset(cls, scale: str) -> "GNSReproConfig":
        return cls(scale=scale, lse_size=40) if scale == "smoke" else cls(scale=scale)


@reproduction(PAPER, rows=ROWS, config=GNSReproConfig,
              summary="Gradient-regularised Newton with approximate Hessians: LogSumExp, logistic, Rosenbrock")
def reproduce(cfg: GNSReproConfig, ctx: RunContext) -> dict[str, Measured]:
    runs = []
    f, grad, hess, wgn, B, f_star = _lse(cfg.lse_size, ctx.seed + 3124)
    out = {}
    scaled = cfg.lse_size != 200
    for key, H in (("exact", hess), ("weighted_gn", wgn), ("gd_metric", None)):
        res = grad_norm_smooth(f, grad, np.ones(cfg.lse_size), hessian=H, metric=B, f_star=f_star, max_iters=1000,
                               on_failure="ignore")
        runs.append(res)
        out[f"lse200/{key}/iterations"] = Measured(res.iterations, f"{res.status}; {res.solves} solves, "
                                                   f"{res.oracle_calls} oracle calls", paper_setting=not scaled)
    f, grad, hess = _logreg()
    ref = scipy.optimize.minimize(f, np.zeros(31), jac=grad, hess=hess, method="trust-exact", tol=1e-12)
    exact = grad_norm_smooth(f, grad, np.zeros(31), hessian=hess, f_star=ref.fun, max_iters=100, on_failure="ignore")
    zero = grad_norm_smooth(f, grad, np.zeros(31), f_star=ref.fun, max_iters=2000, on_failure="ignore")
    runs += [exact, zero]
    out["logreg/exact/iterations"] = Measured(exact.iterations, str(exact.status))
    out["logreg/fun_minus_trust_exact"] = Measured(exact.fun - ref.fun)
    out["logreg/zero_hessian/iterations"] = Measured(zero.iterations, str(zero.status))

    def rf(x):
        return float((1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2)

    def rg(x):
        return np.array([-2 * (1 - x[0]) - 400 * x[0] * (x[1] - x[0] ** 2), 200 * (x[1] - x[0] ** 2)])

    def rh(x):
        return np.array([[2 - 400 * (x[1] - 3 * x[0] ** 2), -400 * x[0]], [-400 * x[0], 200.0]])

    rosen = grad_norm_smooth(rf, rg, np.array([-2.0, 2.0]), hessian=rh, f_star=0.0, max_iters=500,
                             on_failure="ignore")
    runs.append(rosen)
    out["rosenbrock/exact/iterations"] = Measured(rosen.iterations, f"{rosen.status}; "
                                                  f"{rosen.cholesky_failures} Cholesky failures")
    ratio = max(float(np.max(r.step_lengths / (r.gammas + 1e-8))) for r in runs if len(r.step_lengths))
    out["all/max_step_over_gamma"] = Measured(ratio)
    return out
