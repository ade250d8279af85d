"""The LV-HBA paper's test problems (spec optim_numerics 6.3 / 6.5) as callables for
:func:`sciml.numerics.lvhba.lv_hba`:
the toy with a coupled lower-level equality constraint (closed-form solution), the non-convex toy with a lower-level
equality constraint on generated arrays (ground truth: the reduced single-level problem, since its lower level has
the unique solution ``y*(x)`` in closed form) and the linear SVM with one hyper-parameter ``C_i`` per training
sample on scikit-learn's breast cancer data."""

from __future__ import annotations

import dataclasses

import torch

from sciml.numerics.lvhba import LVHBAResult, lv_hba



@dataclasses.dataclass(frozen=True)
class CoupledToy:
    """Spec 6.3 toy with a coupled lower-level equality constraint, ``x in R^n``, ``y = (y1, y2) in R^{2n}``:
    ``F = 0.5||x - y2||^2 + 0.5||y1 - 1||^2``, ``f = 0.5||y1||^2 - x^T y1 + 1^T y2``,
    ``h = 1^T x + 1^T y1 + 1^T y2 = 0`` (also the set ``C``). Solution ``x* = -0.3``, ``y1* = 0.7``,
    ``y2* = -0.4`` (times 1), LL multiplier ``-1``, ``F* = 0.05 n``. ``start()`` is the official script's start:
    ``x = y = 10``, ``theta = 1``, each passed through its hyperplane shift (giving ``x = -20``, ``y = theta = 10``),
    ``lam = 1``, ``z = -1``."""

    n: int = 100
    dtype: torch.dtype = torch.float64

    def F(self, x, y):
        y1, y2 = y[: self.n], y[self.n:]
        return 0.5 * (x - y2).pow(2).sum() + 0.5 * (y1 - 1).pow(2).sum()

    def f(self, x, y):
        y1, y2 = y[: self.n], y[self.n:]
        return 0.5 * y1.pow(2).sum() - x @ y1 + y2.sum()

    def h(self, x, y):
        return x.sum() + y.sum()

    def project(self, x, y):
        shift = (x.sum() + y.sum()) / (3 * self.n)            # Euclidean projection onto 1^T (x, y) = 0
        return x - shift, y - shift

    def solution(self) -> tuple[torch.Tensor, torch.Tensor]:
        one = torch.ones(self.n, dtype=self.dtype)
        return -0.3 * one, torch.cat([0.7 * one, -0.4 * one])

    def start(self) -> dict:
        n, kw = self.n, dict(dtype=self.dtype)
        x = torch.full((n,), 10.0, **kw) - (10.0 * n + 20.0 * n) / n           # official proj1(x, sum(y))
        y = torch.full((2 * n,), 10.0, **kw) - (20.0 * n + float(x.sum())) / (2 * n)
        theta = torch.ones(2 * n, **kw) - (2.0 * n + float(x.sum())) / (2 * n)
        return dict(x0=x, y0=y, theta0=theta, lam0=torch.tensor(1.0, **kw), z0=torch.tensor(-1.0, **kw))

    def relative_error(self, x) -> float:
        x_star = self.solution()[0]
        return float((x - x_star).norm() / x_star.norm())

    def run(self, *, released: bool = False, constraint: str = "eq", **overrides) -> LVHBAResult:
        """LV-HBA on the toy from the official start. ``released=True``: the official script's defaults
        (alpha 0.008, beta 0.02, eta 0.01, gamma1 = gamma2 = 10, c_k = 0.025 (k+1)^0.3, U = 1000), else the spec's
        working setting (alpha = eta = 0.01, beta 0.02, gamma1 10, gamma2 0.1, c_k = (k+1)^0.3)."""
        setting = (dict(alpha=0.008, beta=0.02, eta=0.01, gamma1=10.0, gamma2=10.0, c0=0.025, p=0.3, U=1000.0)
                   if released else dict(alpha=0.01, beta=0.02, eta=0.01, gamma1=10.0, gamma2=0.1, c0=1.0, p=0.3,
                                         U=1000.0))
        setting.update(overrides)
        setting.setdefault("tol", 0.0)
        setting.setdefault("on_failure", "ignore")
        return lv_hba(self.F, self.f, self.h, constraint=constraint, project_xy=self.project,
                      metric=lambda x, y: self.relative_error(x), **self.start(), **setting)

    def scalar_errors(self, n_iter: int, *, constraint: str = "eq", alpha: float, beta: float, eta: float,
                      gamma1: float, gamma2: float, c0: float, p: float, U: float) -> torch.Tensor:
        """The same iteration reduced by hand to 7 scalars (spec 6.5: from the official start every vector stays
        in span{1}, sums become n times the value): the relative error of ``x`` after every iteration (index 0 =
        start). An independent derivation of :meth:`run`'s dynamics (the tests hold them equal to 1e-10) that
        runs 30k iterations in a fraction of a second."""
        n, low = self.n, (-U if constraint == "eq" else 0.0)
        x, y1, y2, th1, th2, lam, z = -20.0, 10.0, 10.0, 10.0, 10.0, min(max(1.0, low), U), max(-1.0, low)
        errors = [abs(x + 0.3) / 0.3]
        for k in range(1, n_iter + 1):
            c = c0 * k ** p
            d_th1 = (th1 - x) + lam + (th1 - y1) / gamma1               # grad_y1 f + lam * 1 + prox
            d_th2 = 1.0 + lam + (th2 - y2) / gamma1
            d_lam = -n * (x + th1 + th2) + (lam - z) / gamma2
            th1, th2 = th1 - eta * d_th1, th2 - eta * d_th2
            lam = min(max(lam - eta * d_lam, low), U)
            d_x = (x - y2) / c - y1 + th1 - lam
            d_y1 = (y1 - 1) / c + (y1 - x) - (y1 - th1) / gamma1
            d_y2 = (y2 - x) / c + 1.0 - (y2 - th2) / gamma1
            x, y1, y2 = x - alpha * d_x, y1 - alpha * d_y1, y2 - alpha * d_y2
            shift = (x + y1 + y2) / 3                                   # projection onto the hyperplane
            x, y1, y2 = x - shift, y1 - shift, y2 - shift
            z = min(max(z + beta * (lam - z) / gamma2, low), U)
            errors.append(abs(x + 0.3) / 0.3)
        return torch.tensor(errors, dtype=torch.float64)


class EqualityToy:
    """Spec 6.3 non-convex toy with a lower-level equality constraint, on generated arrays (the official ``.npy``
    files are not shipped here; entries U[0, 1) as in its generator, ``c, d ~ N(0, 1)``):
    ``F = sin(c^T x + d^T y) + log(||x + y||^2 + 1)``, ``f = 0.5 ||x - y||^2``, lower constraint ``A y + H x = 0``
    (``A, H`` of shape (p, n)), upper constraint ``B x = 0``. As in the official script, ``C`` is the whole feasible
    set ``{B x = 0, A y + H x = 0}`` and ``theta`` is projected onto ``{A theta + H x = 0}``. The lower level has the
    unique solution ``y*(x) = x - A^T (A A^T)^-1 (A + H) x``, so the bilevel problem is ``min_{Bx = 0} F(x, y*(x))``,
    a smooth single-level problem that :meth:`reference` solves with scipy's L-BFGS on the null space of ``B``."""

    def __init__(self, n: int = 100, p: int = 90, q: int = 45, seed: int = 0, dtype=torch.float64) -> None:
        if not (1 <= p < n and 1 <= q < n):
            raise ValueError(f"need 1 <= p < n and 1 <= q < n, got n={n}, p={p}, q={q}")
        gen = torch.Generator().manual_seed(seed)
        kw = dict(generator=gen, dtype=dtype)
        self.n = n
        self.A, self.H, self.B = torch.rand(p, n, **kw), torch.rand(p, n, **kw), torch.rand(q, n, **kw)
        self.c, self.d = torch.randn(n, **kw), torch.randn(n, **kw)
        eye = torch.eye(n, dtype=dtype)
        self.null_B = torch.linalg.svd(self.B).Vh[q:].T                              # (n, n - q) orthonormal
        self.M = eye - self.A.T @ torch.linalg.solve(self.A @ self.A.T, self.A + self.H)    # y*(x) = M x
        P = torch.cat([torch.cat([self.H, self.A], 1), torch.cat([self.B, torch.zeros(q, n, dtype=dtype)], 1)])
        self.proj_C = torch.eye(2 * n, dtype=dtype) - torch.linalg.pinv(P) @ P
        self.A_pinv = torch.linalg.pinv(self.A)
        # The official start: x = 10 projected onto Bx = 0, y = 10 and theta ~ U[0,1) projected onto Ay = -Hx.
        self.x0 = self.null_B @ (self.null_B.T @ torch.full((n,), 10.0, dtype=dtype))
        self.y0 = self.project_theta(self.x0, torch.full((n,), 10.0, dtype=dtype))
        self.theta0 = self.project_theta(self.x0, torch.rand(n, **kw))

    def F(self, x, y):
        return torch.sin(self.c @ x + self.d @ y) + torch.log((x + y).pow(2).sum() + 1)

    def f(self, x, y):
        return 0.5 * (x - y).pow(2).sum()

    def g(self, x, y):
        return self.A @ y + self.H @ x

    def project(self, x, y):
        xy = self.proj_C @ torch.cat([x, y])
        return xy[: self.n], xy[self.n:]

    def project_theta(self, x, theta):
        return theta - self.A_pinv @ (self.A @ theta + self.H @ x)

    def reduced(self, x) -> float:
        """``F(x, y*(x))`` with the exact lower solution."""
        return float(self.F(x, self.M @ x))

    def reference(self, x_start=None) -> tuple[torch.Tensor, float]:
        """Local minimiser of the reduced problem (scipy L-BFGS on the null space of B, gtol 1e-10) from
        ``x_start`` (default the official start)."""
        import numpy as np
        from scipy.optimize import minimize

        N = self.null_B

        def fun(u):
            x = (N @ torch.as_tensor(u)).requires_grad_()
            val = self.F(x, self.M @ x)
            (grad,) = torch.autograd.grad(val, x)
            return float(val.detach()), (N.T @ grad).numpy()

        u0 = (N.T @ (self.x0 if x_start is None else x_start)).numpy()
        res = minimize(fun, u0, jac=True, method="L-BFGS-B", options={"gtol": 1e-10, "maxiter": 5000})
        x = N @ torch.as_tensor(np.asarray(res.x))
        return x, self.reduced(x)

    def run(self, **settings) -> LVHBAResult:
        """The official setting: alpha 0.02, beta 0.001, eta 0.1, gamma1 = gamma2 = 1, c_k = (k+1)^0.3,
        lam = z = 0, 1000 iterations."""
        setting = dict(alpha=0.02, beta=0.001, eta=0.1, gamma1=1.0, gamma2=1.0, c0=1.0, p=0.3, U=1000.0,
                       n_iter=1000, tol=0.0, on_failure="ignore")
        setting.update(settings)
        return lv_hba(self.F, self.f, self.g, self.x0, self.y0, theta0=self.theta0, constraint="eq",
                      project_xy=self.project, project_theta=self.project_theta, **setting)


class PerSampleSVM:
    """Spec 6.3 / 6.5 hyper-parameter learning of a linear SVM with one weight ``exp(C_i)`` per training sample.
    Lower level over ``y = (w, b, xi)``: ``0.5||w||^2 + 0.5 sum_i exp(C_i) xi_i^2`` s.t.
    ``1 - xi_i - y_i (w^T a_i + b) <= 0``; upper level: the smoothed validation error
    ``sum LeakyReLU(2 sigmoid(-5 y (w^T a + b) / ||w||) - 1)`` (the official script's). ``C`` (the upper variable)
    is free; ``C`` of LV-HBA is the lower-feasible set ``{(C, w, b, xi): xi_i + y_i (w^T a_i + b) >= 1}``, onto which
    :meth:`project` projects exactly (the official script does it with a cvxpy/ECOS QP every iteration; here the
    dual, a non-negative least-squares problem, is solved by ``scipy.optimize.nnls``).
    Data: scikit-learn's breast cancer, standardised, rows permuted by numpy ``default_rng(seed)``, 300 / 150 / 119
    train / validation / test (spec 6.5)."""

    def __init__(self, seed: int = 0, n_train: int = 300, n_val: int = 150, dtype=torch.float64) -> None:
        import numpy as np
        from sklearn.datasets import load_breast_cancer

        X, y = load_breast_cancer(return_X_y=True)
        X = (X - X.mean(0)) / X.std(0)
        perm = np.random.default_rng(seed).permutation(len(y))
        X, y = torch.as_tensor(X[perm], dtype=dtype), torch.as_tensor(np.where(y[perm] == 1, 1.0, -1.0), dtype=dtype)
        cut = (n_train, n_train + n_val)
        self.Z, self.Zv, self.Zt = X[:cut[0]], X[cut[0]:cut[1]], X[cut[1]:]
        self.yt, self.yv, self.ytest = y[:cut[0]], y[cut[0]:cut[1]], y[cut[1]:]
        self.d, self.n, self.seed = X.shape[1], n_train, seed
        # Constraint rows a_i = (y_i z_i, y_i, e_i): the lower-feasible set is {a_i^T (w, b, xi) >= 1}.
        self.rows = torch.cat([self.yt[:, None] * self.Z, self.yt[:, None], torch.eye(n_train, dtype=dtype)], 1)
        self.gram_chol = torch.linalg.cholesky(self.rows @ self.rows.T)

    def split(self, y):
        return y[: self.d], y[self.d], y[self.d + 1:]

    def F(self, C, y):
        w, b, _ = self.split(y)
        margin = self.yv * (self.Zv @ w + b) / w.norm()
        return torch.nn.functional.leaky_relu(2 * torch.sigmoid(-5 * margin) - 1).sum()

    def f(self, C, y):
        w, _, xi = self.split(y)
        return 0.5 * w @ w + 0.5 * (torch.exp(C) * xi.pow(2)).sum()

    def g(self, C, y):
        w, b, xi = self.split(y)
        return 1 - xi - self.yt * (self.Z @ w + b)

    def project(self, C, y):
        """Euclidean projection of ``y`` onto ``{a_i^T y >= 1}``: ``y + A^T mu`` with ``mu >= 0`` minimising
        ``0.5 mu^T A A^T mu - mu^T r`` (``r = 1 - A y``), written as ``nnls(A^T, A^T (A A^T)^-1 r)``."""
        from scipy.optimize import nnls

        r = 1 - self.rows @ y
        if bool((r <= 0).all()):
            return C, y
        target = self.rows.T @ torch.cholesky_solve(r[:, None], self.gram_chol)[:, 0]
        mu, _ = nnls(self.rows.T.numpy(), target.numpy(), maxiter=50 * self.n)
        return C, y + self.rows.T @ torch.as_tensor(mu, dtype=y.dtype)

    def accuracy(self, y, which: str = "test") -> float:
        w, b, _ = self.split(y)
        Z, labels = (self.Zt, self.ytest) if which == "test" else (self.Zv, self.yv)
        return float(((Z @ w + b) * labels > 0).double().mean())

    def start(self) -> dict:
        """The official start: ``C ~ U(-6, -5)`` (torch generator seeded with ``seed``), ``w = 1``, ``b = 0``,
        ``xi = 1``, ``theta = (w, b, xi)``, ``lam = z = 1``."""
        gen = torch.Generator().manual_seed(self.seed)
        C = -6 + torch.rand(self.n, generator=gen, dtype=self.Z.dtype)
        y = torch.cat([torch.ones(self.d + 1, dtype=C.dtype), torch.ones(self.n, dtype=C.dtype)])
        y[self.d] = 0.0
        ones = torch.ones(self.n, dtype=C.dtype)
        return dict(x0=C, y0=y, theta0=y.clone(), lam0=ones, z0=ones.clone())

    def run(self, **settings) -> LVHBAResult:
        """The official SVM setting (alpha 0.01, beta 0.1, eta 0.01, gamma1 = gamma2 = 10, 80 iterations) with
        ``c_k = (k+1)^0.49`` (the script's ``1/sqrt(k+1)`` is the excluded end point p = 1/2)."""
        setting = dict(alpha=0.01, beta=0.1, eta=0.01, gamma1=10.0, gamma2=10.0, c0=1.0, p=0.49, U=1000.0,
                       n_iter=80, tol=0.0, on_failure="ignore")
        setting.update(settings)
        return lv_hba(self.F, self.f, self.g, constraint="ineq", project_xy=self.project, **self.start(), **setting)

    def linear_svc_grid(self, grid=(1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0)) -> dict:
        """Baseline: scikit-learn LinearSVC (squared hinge, the same lower-level loss) with one global C chosen by
        validation accuracy; returns the chosen C and its validation / test accuracy."""
        from sklearn.svm import LinearSVC

        best = None
        for C in grid:
            clf = LinearSVC(C=C, loss="squared_hinge", max_iter=100_000, tol=1e-8).fit(self.Z.numpy(),
                                                                                        self.yt.numpy())
            val = clf.score(self.Zv.numpy(), self.yv.numpy())
            if best is None or val > best["val"]:
                best = dict(C=C, val=val, test=clf.score(self.Zt.numpy(), self.ytest.numpy()))
        return best
