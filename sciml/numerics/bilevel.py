"""Multi-block bilevel optimisation: BSVRB v1 / v2, the RSVRB baseline and exact bilevel GD (Hu, Qiu, Guo, Zhang,
Yang, "Blockwise Stochastic Variance-Reduced Methods with Parallel Speedup for Multi-Block Bilevel Optimization",
ICML 2023, arXiv 2305.18730; spec optim_numerics section 5).

Problem: ``min_x F(x) = (1/m) sum_i f_i(x, y_i*(x))``, ``y_i*(x) = argmin_y g_i(x, y)`` strongly convex in ``y``.
A problem is a :class:`MultiBlockBilevel`: it evaluates its derivatives for a set of blocks at once on per-block
minibatches (index tensors, ``None`` = the block's full data). The hypergradient of block ``i`` is
``grad_x f_i - grad^2_xy g_i [grad^2_yy g_i]^-1 grad_y f_i``.

* :func:`exact_hypergradient` / :func:`bilevel_gd`: ground truth (Newton on every lower level, implicit gradient by
  dense solves).
* :func:`bsvrb`: per sampled block an MSVR tracker ``u <- (1-alpha) u + (alpha+gamma) h(z_t) - gamma h(z_{t-1})``
  (both terms on the SAME minibatch) of the lower gradient and of either the Hessian (v1, projected to eigenvalues
  ``>= mu``) or the gradient of ``0.5 v^T H v - v^T grad_y f`` (v2, Hessian-vector products only, ``||v|| <= C_v``);
  a STORM estimator of the hypergradient drives ``x``. Paper vs released code (spec 5.2), each selectable:
  ``gamma="theory"`` ``(m-I)/(I(1-alpha)) + (1-alpha)`` or ``"released"`` (1); ``y_moves="sampled"`` (paper),
  ``"all"`` (released v1: every block moves with its stale tracker) or ``"delay"`` (released v2: a sampled block's
  step is multiplied by the number of iterations since it was last sampled); ``hessian_projection="eig"`` (paper)
  or ``"frobenius"`` (released: rescale H up to Frobenius norm ``h_bound``).
* :func:`rsvrb`: the RSVRB baseline as released: STORM trackers with ``m/I`` weights of ``grad_y g``, ``grad_y f``,
  the full ``grad^2_xy g`` (``d_x x d_y`` per block) and ``H``; unsampled blocks decay by ``(1-beta)``; every ``y``
  moves; the hypergradient uses a second, independent block sample.

Stochastic solvers stop when the TRUE objective (lower levels solved exactly) reaches ``f_target``, checked every
``eval_every`` iterations; otherwise they report MAX_ITER.
"""

from __future__ import annotations

import abc
import dataclasses
import math
import time

import torch

from sciml.core import Result, Status, report_status


class MultiBlockBilevel(abc.ABC):
    """Interface of a multi-block bilevel problem with ``m`` blocks, upper variable ``x`` (dx,) and lower variables
    ``Y`` (m, dy). Every method takes ``blocks`` (I,) and a batch ``(I, B)`` of data indices per block (``None`` =
    full data) and returns one row per block. Subclasses implement every abstract method below (the solvers call
    all of them; ``cross_matrix`` only RSVRB)."""

    m: int
    dx: int
    dy: int
    n_lower_data: int          # data points the lower batches index
    n_upper_data: int          # data points the upper batches index
    mu: float                  # strong-convexity modulus of every g_i (eigenvalue floor for v1)
    dtype: torch.dtype
    device: torch.device

    @abc.abstractmethod
    def lower_grad(self, x, Y, blocks, batch):            # (I, dy)   grad_y g_i
        """The shapes are in the comment after the signature."""

    @abc.abstractmethod
    def lower_hessian(self, x, Y, blocks, batch):         # (I, dy, dy)
        """The shapes are in the comment after the signature."""

    @abc.abstractmethod
    def lower_hvp(self, x, Y, V, blocks, batch):          # (I, dy)   grad^2_yy g_i v_i
        """The shapes are in the comment after the signature."""

    @abc.abstractmethod
    def cross_product(self, x, Y, V, blocks, batch):      # (I, dx)   grad^2_xy g_i v_i
        """The shapes are in the comment after the signature."""

    @abc.abstractmethod
    def cross_matrix(self, x, Y, blocks, batch):          # (I, dx, dy) grad^2_xy g_i (RSVRB only)
        """The shapes are in the comment after the signature."""

    @abc.abstractmethod
    def upper_grad_y(self, x, Y, blocks, batch):          # (I, dy)   grad_y f_i
        """The shapes are in the comment after the signature."""

    @abc.abstractmethod
    def upper_grad_x(self, x, Y, blocks, batch):          # (I, dx)   grad_x f_i
        """The shapes are in the comment after the signature."""

    @abc.abstractmethod
    def upper_values(self, x, Y, blocks):                 # (I,)      f_i on the full upper data
        """The shapes are in the comment after the signature."""

    def all_blocks(self) -> torch.Tensor:
        return torch.arange(self.m, device=self.device)


class DataReweighting(MultiBlockBilevel):
    """Spec 5.3 / 5.5 hyper-parameter problem: one weight ``sigmoid(p_j)`` per training point shared by ``m`` tasks,
    task ``i`` a temperature-``sigma_i`` logistic regression,
    ``g_i(p, w) = mean_j sigmoid(p_j) log(1 + exp(-y_j w^T a_j / sigma_i)) + lam/2 ||w||^2`` (train) and
    ``f_i(w) = mean_val log(1 + exp(-y w^T a / sigma_i))``. Features ``a`` must already hold the bias column.
    Derivatives in closed form (checked against autograd in the tests)."""

    def __init__(self, A_train, y_train, A_val, y_val, sigmas, lam: float) -> None:
        A_train = torch.as_tensor(A_train)
        kw = dict(dtype=A_train.dtype if A_train.is_floating_point() else torch.float64, device=A_train.device)
        self.A, self.A_val = torch.as_tensor(A_train, **kw), torch.as_tensor(A_val, **kw)
        self.y, self.y_val = torch.as_tensor(y_train, **kw).reshape(-1), torch.as_tensor(y_val, **kw).reshape(-1)
        self.sigmas = torch.as_tensor(sigmas, **kw).reshape(-1)
        for name, t in (("A_train", self.A), ("A_val", self.A_val), ("y_train", self.y), ("y_val", self.y_val),
                        ("sigmas", self.sigmas)):
            if not bool(torch.isfinite(t).all()):
                raise ValueError(f"{name} contains NaN or Inf")
        if self.A.dim() != 2 or self.A_val.dim() != 2 or self.A.shape[1] != self.A_val.shape[1]:
            raise ValueError("A_train and A_val must be matrices with the same number of columns")
        if self.y.numel() != self.A.shape[0] or self.y_val.numel() != self.A_val.shape[0]:
            raise ValueError("labels must have one entry per row of their feature matrix")
        if not (bool((self.y.abs() == 1).all()) and bool((self.y_val.abs() == 1).all())):
            raise ValueError("labels must be -1 or +1")
        if self.sigmas.numel() < 1 or not bool((self.sigmas > 0).all()):
            raise ValueError("sigmas (task temperatures) must be a non-empty vector of positive numbers")
        if not (isinstance(lam, (int, float)) and lam > 0):
            raise ValueError(f"lam must be > 0 (it makes every lower level strongly convex), got {lam!r}")
        self.lam, self.mu = float(lam), float(lam)
        self.m, self.dy = self.sigmas.numel(), self.A.shape[1]
        self.dx = self.n_lower_data = self.A.shape[0]
        self.n_upper_data = self.A_val.shape[0]
        self.dtype, self.device = self.A.dtype, self.A.device

    def _batch(self, blocks, batch, upper: bool):
        """Features (I, B, d), labels (I, B), indices (I, B) and 1/sigma (I,) of each block's batch."""
        n = self.n_upper_data if upper else self.n_lower_data
        if batch is None:
            batch = torch.arange(n, device=self.device).expand(blocks.numel(), n)
        A, y = (self.A_val, self.y_val) if upper else (self.A, self.y)
        return A[batch], y[batch], batch, 1.0 / self.sigmas[blocks]

    def _margins(self, Y, A, y, inv_sigma):
        return y * torch.einsum("ibd,id->ib", A, Y) * inv_sigma[:, None]              # z = y w^T a / sigma

    def lower_grad(self, x, Y, blocks, batch):
        A, y, idx, inv_s = self._batch(blocks, batch, upper=False)
        coef = -torch.sigmoid(x[idx]) * torch.sigmoid(-self._margins(Y, A, y, inv_s)) * y * inv_s[:, None]
        return torch.einsum("ib,ibd->id", coef, A) / idx.shape[1] + self.lam * Y

    def _curvature(self, x, Y, blocks, batch):
        A, y, idx, inv_s = self._batch(blocks, batch, upper=False)
        z = self._margins(Y, A, y, inv_s)
        return A, torch.sigmoid(x[idx]) * torch.sigmoid(z) * torch.sigmoid(-z) * inv_s[:, None] ** 2 / idx.shape[1]

    def lower_hessian(self, x, Y, blocks, batch):
        A, c = self._curvature(x, Y, blocks, batch)
        eye = torch.eye(self.dy, dtype=self.dtype, device=self.device)
        return torch.einsum("ib,ibd,ibe->ide", c, A, A) + self.lam * eye

    def lower_hvp(self, x, Y, V, blocks, batch):
        A, c = self._curvature(x, Y, blocks, batch)
        return torch.einsum("ib,ibd->id", c * torch.einsum("ibd,id->ib", A, V), A) + self.lam * V

    def _cross_coef(self, x, Y, blocks, batch):
        A, y, idx, inv_s = self._batch(blocks, batch, upper=False)
        s = torch.sigmoid(x[idx])
        coef = -s * (1 - s) * torch.sigmoid(-self._margins(Y, A, y, inv_s)) * y * inv_s[:, None] / idx.shape[1]
        return A, idx, coef                                   # d/dp_j grad_w g = coef_j a_j

    def cross_product(self, x, Y, V, blocks, batch):
        A, idx, coef = self._cross_coef(x, Y, blocks, batch)
        out = torch.zeros(blocks.numel(), self.dx, dtype=self.dtype, device=self.device)
        return out.scatter_add_(1, idx, coef * torch.einsum("ibd,id->ib", A, V))

    def cross_matrix(self, x, Y, blocks, batch):
        A, idx, coef = self._cross_coef(x, Y, blocks, batch)
        out = torch.zeros(blocks.numel(), self.dx, self.dy, dtype=self.dtype, device=self.device)
        return out.scatter_add_(1, idx[:, :, None].expand_as(A), coef[:, :, None] * A)

    def upper_grad_y(self, x, Y, blocks, batch):
        A, y, idx, inv_s = self._batch(blocks, batch, upper=True)
        coef = -torch.sigmoid(-self._margins(Y, A, y, inv_s)) * y * inv_s[:, None]
        return torch.einsum("ib,ibd->id", coef, A) / idx.shape[1]

    def upper_grad_x(self, x, Y, blocks, batch):
        return torch.zeros(blocks.numel(), self.dx, dtype=self.dtype, device=self.device)

    def upper_values(self, x, Y, blocks):
        A, y, _, inv_s = self._batch(blocks, None, upper=True)
        return torch.nn.functional.softplus(-self._margins(Y, A, y, inv_s)).mean(1)

    def lower_values(self, x, Y, blocks):
        """``g_i`` on the full training data (for checks)."""
        A, y, idx, inv_s = self._batch(blocks, None, upper=False)
        loss = torch.sigmoid(x[idx]) * torch.nn.functional.softplus(-self._margins(Y, A, y, inv_s))
        return loss.mean(1) + 0.5 * self.lam * Y.pow(2).sum(1)


# ---------------------------------------------------------------------------------------------------------------
# Ground truth: exact lower solutions and implicit hypergradient.

def solve_lower(problem: MultiBlockBilevel, x: torch.Tensor, Y0: torch.Tensor | None = None, *, tol: float = 1e-13,
                max_iter: int = 50) -> torch.Tensor:
    """``y_i*(x)`` for every block by Newton's method (batched over blocks), to ``||grad_y g_i|| <= tol * (1 +
    ||grad_y g_i(Y0)||)``. Raises RuntimeError if Newton does not reach the tolerance."""
    blocks = problem.all_blocks()
    Y = torch.zeros(problem.m, problem.dy, dtype=problem.dtype, device=problem.device) if Y0 is None else Y0.clone()
    g = problem.lower_grad(x, Y, blocks, None)
    scale = 1.0 + float(g.norm(dim=1).max())
    for _ in range(max_iter):
        if float(g.norm(dim=1).max()) <= tol * scale:
            return Y
        Y = Y - torch.linalg.solve(problem.lower_hessian(x, Y, blocks, None), g)
        g = problem.lower_grad(x, Y, blocks, None)
    if float(g.norm(dim=1).max()) <= 1e3 * tol * scale:         # Newton stalls at rounding level: accept
        return Y
    raise RuntimeError(f"Newton on the lower levels stopped at ||grad|| = {float(g.norm(dim=1).max()):.3e}")


def upper_objective(problem: MultiBlockBilevel, x: torch.Tensor, Y0: torch.Tensor | None = None) -> float:
    """``F(x) = mean_i f_i(x, y_i*(x))`` with every lower level solved exactly."""
    Y = solve_lower(problem, x, Y0)
    return float(problem.upper_values(x, Y, problem.all_blocks()).mean())


def exact_hypergradient(problem: MultiBlockBilevel, x, Y0: torch.Tensor | None = None
                        ) -> tuple[torch.Tensor, torch.Tensor]:
    """``grad F(x)`` by implicit differentiation (dense solves with the exact lower Hessians) and ``Y*(x)``."""
    x = torch.as_tensor(x, dtype=problem.dtype, device=problem.device)
    if x.shape != (problem.dx,) or not bool(torch.isfinite(x).all()):
        raise ValueError(f"x must be a finite vector of length {problem.dx}")
    blocks = problem.all_blocks()
    Y = solve_lower(problem, x, Y0)
    V = torch.linalg.solve(problem.lower_hessian(x, Y, blocks, None),
                           problem.upper_grad_y(x, Y, blocks, None))
    G = problem.upper_grad_x(x, Y, blocks, None) - problem.cross_product(x, Y, V, blocks, None)
    return G.mean(0), Y


@dataclasses.dataclass(frozen=True)
class BilevelResult(Result):
    """``x`` (dx,), lower variables ``Y`` (m, dy) as the method left them, the true objective ``F(x)`` (lower levels
    solved exactly) every ``eval_every`` iterations (``history_iter``, ``history_F``, ``history_time``), ``status``,
    ``iterations``, wall time and the settings used."""

    x: torch.Tensor
    Y: torch.Tensor
    history_iter: torch.Tensor
    history_F: torch.Tensor
    history_time: torch.Tensor
    status: Status
    iterations: int
    seconds: float
    method: str
    settings: dict


class _Monitor:
    """Evaluates the true F every ``every`` iterations; says when to stop (target reached / non-finite)."""

    def __init__(self, problem, every: int, f_target: float | None) -> None:
        self.problem, self.every, self.f_target = problem, every, f_target
        self.iters, self.values, self.times = [], [], []
        self.start = time.perf_counter()
        self.Y_star = None
        self.status = Status.MAX_ITER

    def check(self, k: int, x: torch.Tensor, force: bool = False) -> bool:
        if not (force or k % self.every == 0):
            return False
        if not bool(torch.isfinite(x).all()):
            self.status = Status.NONFINITE
            return True
        self.Y_star = solve_lower(self.problem, x, self.Y_star)
        value = float(self.problem.upper_values(x, self.Y_star, self.problem.all_blocks()).mean())
        self.iters.append(k)
        self.values.append(value)
        self.times.append(time.perf_counter() - self.start)
        if self.f_target is not None and value <= self.f_target:
            self.status = Status.CONVERGED
            return True
        return False

    def result(self, x, Y, k, method, settings, on_failure) -> BilevelResult:
        if not self.iters or self.iters[-1] != k:
            self.check(k, x, force=True)
        detail = f"F = {self.values[-1]:.6g} after {k} iterations" if self.values else "non-finite iterate"
        report_status(self.status, method, detail, on_failure if self.f_target is not None else "ignore")
        return BilevelResult(x, Y, torch.tensor(self.iters), torch.tensor(self.values, dtype=torch.float64),
                             torch.tensor(self.times, dtype=torch.float64), self.status, k,
                             time.perf_counter() - self.start, method, settings)


def _check_common(problem, x0, n_iter, eval_every, f_target):
    if not isinstance(problem, MultiBlockBilevel):
        raise TypeError(f"problem must be a MultiBlockBilevel, got {type(problem).__name__}")
    x = torch.as_tensor(x0, dtype=problem.dtype, device=problem.device).reshape(-1).clone()
    if x.numel() != problem.dx or not bool(torch.isfinite(x).all()):
        raise ValueError(f"x0 must be a finite vector of length dx = {problem.dx}")
    if not isinstance(n_iter, int) or n_iter < 0 or not isinstance(eval_every, int) or eval_every < 1:
        raise ValueError(f"need n_iter >= 0 and eval_every >= 1 (ints), got {n_iter!r}, {eval_every!r}")
    if f_target is not None and not math.isfinite(f_target):
        raise ValueError(f"f_target must be a finite number or None, got {f_target!r}")
    return x


def _check_sampling(problem, I, B) -> tuple[int, int | None]:
    if not (isinstance(I, int) and 1 <= I <= problem.m) or not (B is None or (isinstance(B, int) and B >= 1)):
        raise ValueError(f"need an int 1 <= blocks_per_iter <= m = {problem.m} and batch_size an int >= 1 (or None "
                         f"for full batches), got {I!r}, {B!r}")
    return I, B


def bilevel_gd(problem: MultiBlockBilevel, x0, *, step: float = 30.0, n_iter: int = 300, f_target: float | None = None,
               eval_every: int = 1, on_failure: str = "warn") -> BilevelResult:
    """Exact bilevel gradient descent ``x <- x - step * grad F(x)`` (Newton lower levels, implicit hypergradient)."""
    x = _check_common(problem, x0, n_iter, eval_every, f_target)
    if not step > 0:
        raise ValueError(f"step must be > 0, got {step!r}")
    mon = _Monitor(problem, eval_every, f_target)
    Y = None
    k = 0
    for k in range(n_iter + 1):
        if mon.check(k, x) or k == n_iter:
            break
        grad, Y = exact_hypergradient(problem, x, Y)
        x = x - step * grad
    Y = solve_lower(problem, x, Y) if bool(torch.isfinite(x).all()) else Y
    return mon.result(x, Y, k, "bilevel_gd", {"step": step}, on_failure)


# ---------------------------------------------------------------------------------------------------------------
# BSVRB.

def _project_spd(H: torch.Tensor, mode: str, floor: float, h_bound: float) -> torch.Tensor:
    """v1 Hessian tracker projection: eigenvalues clipped to ``>= floor`` (paper) or the released code's rescaling of
    ``H`` up to Frobenius norm ``h_bound`` when smaller (no eigenvalue guarantee)."""
    H = 0.5 * (H + H.mT)
    if mode == "eig":
        w, Q = torch.linalg.eigh(H)
        return (Q * w.clamp_min(floor)[..., None, :]) @ Q.mT
    norm = torch.linalg.matrix_norm(H)[:, None, None]
    return torch.where(norm < h_bound, H * (h_bound / norm.clamp_min(torch.finfo(H.dtype).tiny)), H)


def _sample(problem, I: int, B: int | None, generator):
    """``I`` distinct blocks and, per block, ``B`` lower and ``B`` upper data indices (with replacement; ``B = None``:
    every block's full data)."""
    blocks = torch.randperm(problem.m, generator=generator)[:I].to(problem.device)
    if B is None:
        return blocks, None, None
    low = torch.randint(problem.n_lower_data, (I, B), generator=generator).to(problem.device)
    up = torch.randint(problem.n_upper_data, (I, B), generator=generator).to(problem.device)
    return blocks, low, up


def _new_and_old(fn, x, Yb, x_old, Yb_old, blocks, batch):
    """``fn`` at the new and at the previous iterate on the SAME blocks and minibatch (spec 5.6)."""
    return fn(x, Yb, blocks, batch), fn(x_old, Yb_old, blocks, batch)


def theory_gamma(m: int, blocks_per_iter: int, alpha: float) -> float:
    """MSVR correction weight of the analysis, ``(m - I) / (I (1 - alpha)) + (1 - alpha)``."""
    return (m - blocks_per_iter) / (blocks_per_iter * (1 - alpha)) + (1 - alpha)


def bsvrb(problem: MultiBlockBilevel, x0, *, version: str = "v2", blocks_per_iter: int = 3,
          batch_size: int | None = 32,
          n_iter: int = 3000, eta: float = 30.0, tau: float = 0.5, tau_v: float | None = None, alpha: float = 0.9,
          beta: float = 0.9, gamma: float | str = "theory", y_moves: str = "sampled",
          hessian_projection: str = "eig", h_bound: float = 10.0, v_bound: float = 10.0, Y0=None,
          f_target: float | None = None, eval_every: int = 100, generator: torch.Generator | None = None,
          on_failure: str = "warn") -> BilevelResult:
    """BSVRB v1 / v2 (module docstring). Estimators and ``z`` start from one full-data pass at ``(x0, Y0)``
    (spec 5.6: with the theory gamma a cold start can blow up); ``Y0`` defaults to zeros, ``V`` starts at zero.
    ``batch_size=None`` uses every block's full data; with ``blocks_per_iter = m`` and the theory gamma
    (``= 1 - alpha`` then) every tracker equals its exact value, i.e. the method is deterministic alternating GD.

    Defaults are the spec 5.5 setting (I = 3, B = 32, eta = 30, tau = tau_v = 0.5, alpha = beta = 0.9, theory
    gamma, C_v = 10, 3000 iterations); the released code's defaults are ``gamma="released"``, ``y_moves="all"``
    (v1) / ``"delay"`` (v2), ``hessian_projection="frobenius"``, ``eta=1e-3``, ``tau=0.5`` (v1) / ``1`` (v2)."""
    x = _check_common(problem, x0, n_iter, eval_every, f_target)
    if version not in ("v1", "v2"):
        raise ValueError(f"version must be 'v1' (Hessian tracker) or 'v2' (Hessian-vector products), got {version!r}")
    if y_moves not in ("sampled", "all", "delay"):
        raise ValueError(f"y_moves must be 'sampled' (paper), 'all' (released v1) or 'delay' (released v2), "
                         f"got {y_moves!r}")
    if hessian_projection not in ("eig", "frobenius"):
        raise ValueError(f"hessian_projection must be 'eig' or 'frobenius', got {hessian_projection!r}")
    I, B = _check_sampling(problem, blocks_per_iter, batch_size)
    tau_v = tau if tau_v is None else tau_v
    for name, val in (("eta", eta), ("tau", tau), ("tau_v", tau_v), ("v_bound", v_bound), ("h_bound", h_bound)):
        if not val > 0:
            raise ValueError(f"{name} must be > 0, got {val!r}")
    if not (0 < alpha < 1 and 0 < beta <= 1):
        raise ValueError(f"need 0 < alpha < 1 and 0 < beta <= 1, got alpha={alpha!r}, beta={beta!r}")
    if gamma == "theory":
        gamma = theory_gamma(problem.m, I, alpha)
    elif gamma == "released":
        gamma = 1.0
    elif not (isinstance(gamma, (int, float)) and gamma >= 0):
        raise ValueError(f"gamma must be 'theory', 'released' or a number >= 0, got {gamma!r}")
    kw = dict(dtype=problem.dtype, device=problem.device)
    Y = torch.zeros(problem.m, problem.dy, **kw) if Y0 is None else torch.as_tensor(Y0, **kw).clone()
    allb = problem.all_blocks()
    # Warm start: every tracker from one full-data pass at (x0, Y0).
    s = problem.lower_grad(x, Y, allb, None)
    V = torch.zeros_like(Y)
    if version == "v1":
        H = _project_spd(problem.lower_hessian(x, Y, allb, None), hessian_projection, problem.mu, h_bound)
        G0 = problem.upper_grad_x(x, Y, allb, None) - problem.cross_product(
            x, Y, torch.linalg.solve(H, problem.upper_grad_y(x, Y, allb, None)), allb, None)
    else:
        u = problem.lower_hvp(x, Y, V, allb, None) - problem.upper_grad_y(x, Y, allb, None)
        G0 = problem.upper_grad_x(x, Y, allb, None) - problem.cross_product(x, Y, V, allb, None)
    z = G0.mean(0)
    x_old, Y_old, V_old = x.clone(), Y.clone(), V.clone()
    skipped = torch.zeros(problem.m, **kw)
    mon = _Monitor(problem, eval_every, f_target)
    k = 0
    for k in range(n_iter + 1):
        if mon.check(k, x) or k == n_iter:
            break
        blocks, low, up = _sample(problem, I, B, generator)
        Yb, Yb_old = Y[blocks], Y_old[blocks]
        at = (x, Yb, x_old, Yb_old, blocks)                     # new and old iterates, same blocks and batches
        g_new, g_old = _new_and_old(problem.lower_grad, *at, low)
        s[blocks] = (1 - alpha) * s[blocks] + (alpha + gamma) * g_new - gamma * g_old
        fy_new, fy_old = _new_and_old(problem.upper_grad_y, *at, up)
        fx_new, fx_old = _new_and_old(problem.upper_grad_x, *at, up)
        if version == "v1":
            h_new, h_old = _new_and_old(problem.lower_hessian, *at, low)
            H_prev = H.clone()
            H[blocks] = _project_spd((1 - alpha) * H[blocks] + (alpha + gamma) * h_new - gamma * h_old,
                                     hessian_projection, problem.mu, h_bound)
            # Old term with the tracker as it stood at the old iterate (spec 5.5: the faithful v1).
            Gn = fx_new - problem.cross_product(x, Yb, torch.linalg.solve(H[blocks], fy_new), blocks, low)
            Go = fx_old - problem.cross_product(x_old, Yb_old, torch.linalg.solve(H_prev[blocks], fy_old), blocks,
                                                low)
        else:
            Vb, Vb_old = V[blocks], V_old[blocks]
            q_new = problem.lower_hvp(x, Yb, Vb, blocks, low) - fy_new
            q_old = problem.lower_hvp(x_old, Yb_old, Vb_old, blocks, low) - fy_old
            u[blocks] = (1 - alpha) * u[blocks] + (alpha + gamma) * q_new - gamma * q_old
            Gn = fx_new - problem.cross_product(x, Yb, Vb, blocks, low)
            Go = fx_old - problem.cross_product(x_old, Yb_old, Vb_old, blocks, low)
        z = (1 - beta) * (z - Go.mean(0)) + Gn.mean(0)                       # STORM
        x_old, Y_old, V_old = x, Y.clone(), V.clone()
        x = x - eta * z
        skipped += 1
        factor = skipped[blocks, None] if y_moves == "delay" else 1.0
        skipped[blocks] = 0
        if y_moves == "all":
            Y = Y - tau * s
        else:
            Y[blocks] = Y[blocks] - tau * factor * s[blocks]
        if version == "v2":
            step = V[blocks] - tau_v * factor * u[blocks]
            norm = step.norm(dim=1, keepdim=True)
            V[blocks] = torch.where(norm > v_bound, step * (v_bound / norm.clamp_min(1e-300)), step)
    settings = dict(version=version, blocks_per_iter=I, batch_size=B, eta=eta, tau=tau, tau_v=tau_v, alpha=alpha,
                    beta=beta, gamma=gamma, y_moves=y_moves, hessian_projection=hessian_projection)
    return mon.result(x, Y, k, f"bsvrb_{version}", settings, on_failure)


def rsvrb(problem: MultiBlockBilevel, x0, *, blocks_per_iter: int = 3, batch_size: int | None = 32,
          n_iter: int = 3000,
          eta: float = 30.0, tau: float = 0.5, beta: float = 0.9, Y0=None, f_target: float | None = None,
          eval_every: int = 100, generator: torch.Generator | None = None, on_failure: str = "warn") -> BilevelResult:
    """RSVRB baseline as released (module docstring). The Hessian trackers are projected to eigenvalues ``>= mu``
    (the release rescales by Frobenius norm); all trackers start from one full-data pass at ``(x0, Y0)``."""
    x = _check_common(problem, x0, n_iter, eval_every, f_target)
    I, B = _check_sampling(problem, blocks_per_iter, batch_size)
    if not (eta > 0 and tau > 0 and 0 < beta <= 1):
        raise ValueError(f"need eta > 0, tau > 0, 0 < beta <= 1; got {eta!r}, {tau!r}, {beta!r}")
    kw = dict(dtype=problem.dtype, device=problem.device)
    Y = torch.zeros(problem.m, problem.dy, **kw) if Y0 is None else torch.as_tensor(Y0, **kw).clone()
    allb = problem.all_blocks()
    s = problem.lower_grad(x, Y, allb, None)
    fy = problem.upper_grad_y(x, Y, allb, None)
    fx = problem.upper_grad_x(x, Y, allb, None)
    C = problem.cross_matrix(x, Y, allb, None)                              # (m, dx, dy)
    H = _project_spd(problem.lower_hessian(x, Y, allb, None), "eig", problem.mu, 0.0)

    def hypergrad(blocks):
        return fx[blocks] - torch.einsum("ixy,iy->ix", C[blocks], torch.linalg.solve(H[blocks], fy[blocks]))

    d = hypergrad(allb).mean(0)
    x_old, Y_old = x.clone(), Y.clone()
    w = problem.m / I
    mon = _Monitor(problem, eval_every, f_target)
    k = 0
    for k in range(n_iter + 1):
        if mon.check(k, x) or k == n_iter:
            break
        blocks, low, up = _sample(problem, I, B, generator)
        second = torch.randperm(problem.m, generator=generator)[:I].to(problem.device)
        Go = hypergrad(second)
        keep = torch.zeros(problem.m, dtype=torch.bool, device=problem.device)
        keep[blocks] = True
        Yb, Yb_old = Y[blocks], Y_old[blocks]
        for tracker, fn, batch in ((s, problem.lower_grad, low), (fy, problem.upper_grad_y, up),
                                   (fx, problem.upper_grad_x, up), (C, problem.cross_matrix, low),
                                   (H, problem.lower_hessian, low)):
            new, old = _new_and_old(fn, x, Yb, x_old, Yb_old, blocks, batch)
            tracker[~keep] *= (1 - beta)
            tracker[blocks] = (1 - beta) * (tracker[blocks] - w * old) + w * new
        H[blocks] = _project_spd(H[blocks], "eig", problem.mu, 0.0)
        Gn = hypergrad(second)
        d = (1 - beta) * (d - Go.mean(0)) + Gn.mean(0)
        x_old, Y_old = x, Y.clone()
        x = x - eta * d
        Y = Y - tau * s
    settings = dict(blocks_per_iter=I, batch_size=B, eta=eta, tau=tau, beta=beta)
    return mon.result(x, Y, k, "rsvrb", settings, on_failure)


def breast_cancer_reweighting(*, n_train: int = 300, n_val: int = 150, flip: float = 0.2, n_tasks: int = 10,
                              lam: float = 1e-2, seed: int = 0, dtype=torch.float64,
                              device: str | torch.device = "cpu") -> tuple[DataReweighting, torch.Tensor]:
    """Spec 5.5 instance: scikit-learn's breast cancer (569 x 30), standardised, bias column (d = 31), rows permuted
    by numpy ``default_rng(seed)``, train = first ``n_train``, validation = next ``n_val`` (disjoint, spec 5.6), each
    training label flipped with probability ``flip`` (the same generator: this reproduces the spec's F(0) = 0.3761),
    ``sigma_i = linspace(1, 10, n_tasks)``. Returns the problem and
    the boolean mask of flipped training points (the weights ``p`` should rank them last)."""
    import numpy as np
    from sklearn.datasets import load_breast_cancer

    X, y = load_breast_cancer(return_X_y=True)
    if n_train + n_val > X.shape[0] or n_train < 1 or n_val < 1 or not 0 <= flip < 1:
        raise ValueError(f"need n_train, n_val >= 1 with n_train + n_val <= {X.shape[0]} and 0 <= flip < 1")
    X = (X - X.mean(0)) / X.std(0)
    A = np.hstack([np.ones((X.shape[0], 1)), X])
    labels = np.where(y == 1, 1.0, -1.0)
    rng = np.random.default_rng(seed)
    perm = rng.permutation(X.shape[0])
    A, labels = A[perm], labels[perm]
    flipped = rng.random(n_train) < flip          # each label flipped with probability flip (F(0) = 0.3761, spec)
    y_train = np.where(flipped, -labels[:n_train], labels[:n_train])
    kw = dict(dtype=dtype, device=device)
    problem = DataReweighting(torch.as_tensor(A[:n_train], **kw), torch.as_tensor(y_train, **kw),
                              torch.as_tensor(A[n_train:n_train + n_val], **kw),
                              torch.as_tensor(labels[n_train:n_train + n_val], **kw),
                              torch.linspace(1, 10, n_tasks, **kw), lam)
    return problem, torch.as_tensor(flipped, device=device)
