"""Greedy block coordinate descent (Nutini, Laradji & Schmidt, "Let's Make Block Coordinate Descent Converge
Faster", arXiv 1712.08859, JMLR 2022; spec optim_numerics section 4).

Problems share one structure: ``f`` depends on ``x`` through ``aux = K x`` (``K = A`` for the linear models,
``K = Q`` for the quadratic), so a block step ``x_b += d`` costs ``aux += K[:, b] d`` and the full gradient is one
product with ``K^T``. Every problem gives block gradients, block Lipschitz constants ``L_b = lambda_max(H_b)``
(cached per fixed block, memoised for variable blocks) and the matrix bound ``H_b >= grad^2_bb f``.

Selection: ``random``, ``cyclic``, ``lipschitz`` (P(b) ~ L_b), ``gs`` (argmax ||g_b||_2; ``gs_norm="l1"`` gives the
reference code's sum |g_i|), ``gsl`` (||g_b|| / sqrt(L_b)), ``gsd`` (||g_b||_{D_b^-1}, D_ii = |b| L_i), ``gsq``
(||g_b||_{H_b^-1}). Partitions: ``order`` (contiguous), ``sort`` (by L_i), ``avg`` (large/small L_i alternated) and
``variable`` (blocks re-chosen each step: GS by the tau largest |g_i|, GSD by sorting |g_i|/sqrt(L_i), GSQ by
10 steps of iterative hard thresholding on the quadratic model; with mu = 1/lambda_max on data set A the IHT steps
never leave their GSD start, so there it picks GSD's blocks). "GSL with variable blocks" is combinatorial and
the reference code's plot with that label is GSD (spec 4.6): asking for it raises and says so.

Updates: ``lb`` (1/L_b), ``la`` (1/L with doubling backtracking), ``hb`` (H_b^+ matrix step), ``ls`` (Newton with
the true block Hessian and Armijo line search), ``exact`` (block minimiser; quadratics only). For
:class:`NonNegL1LeastSquares` every update is projected onto ``x >= 0``: ``lb``/``la`` are projected gradient
steps, ``hb``/``ls``/``exact`` are two-metric-projection Newton steps on the block's free variables with a
backtracking arc search (falling back to the projected 1/L_b step, so f never increases).
``gabp`` (Quadratic only): the exact block solve by Gaussian belief propagation; a block whose sparsity graph has a
cycle raises. Not implemented (issue 21): red-black / tree / greedy-forest partitions, data sets B-E generators.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch

from sciml.core import Result, Status, report_status

RULES = ("random", "cyclic", "lipschitz", "gs", "gsl", "gsd", "gsq")
PARTITIONS = ("order", "sort", "avg", "variable")
UPDATES = ("lb", "la", "hb", "ls", "exact", "gabp")
RIDGE = 1e-10          # spec 4.6: H_b is singular for p > n blocks; regularise the solves


def _as_tensor(value, name: str, dtype=None, device=None) -> torch.Tensor:
    """numpy / scipy.sparse / torch (dense or sparse) -> dense floating torch tensor, NaN/Inf rejected."""
    if hasattr(value, "toarray") and not isinstance(value, torch.Tensor):        # scipy.sparse
        value = value.toarray()
    if isinstance(value, torch.Tensor) and value.layout != torch.strided:
        value = value.to_dense()
    t = torch.as_tensor(np.asarray(value) if not isinstance(value, torch.Tensor) else value)
    if not t.is_floating_point():
        t = t.to(torch.float64)
    if dtype is not None or device is not None:
        t = t.to(dtype=dtype or t.dtype, device=device or t.device)
    if not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name} contains NaN or Inf; BCD needs finite data")
    return t


class _Problem:
    """``f(x) = phi(K x)`` (+ linear terms). Subclasses set ``K`` (m x n), ``curvature`` (H = curvature K^T K for
    the linear models) and implement ``value(aux, x)``, ``grad(aux, x)``."""

    K: torch.Tensor
    constrained = False          # True: x >= 0 (projected updates)
    is_quadratic = True

    @property
    def n(self) -> int:
        return self.K.shape[1]

    @property
    def dtype(self) -> torch.dtype:
        return self.K.dtype

    @property
    def device(self) -> torch.device:
        return self.K.device

    def aux(self, x: torch.Tensor) -> torch.Tensor:
        return self.K @ x

    def aux_delta(self, idx: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
        """Change of ``aux`` when ``x[idx] += d``."""
        return self.K[:, idx] @ d

    def f(self, x) -> float:
        x = _as_tensor(x, "x", self.dtype, self.device)
        return float(self.value(self.aux(x), x))

    def gradient(self, x) -> torch.Tensor:
        x = _as_tensor(x, "x", self.dtype, self.device)
        return self.grad(self.aux(x), x)

    # Matrix bounds. Linear models: H = c K^T K; the quadratic overrides.
    def bound_columns(self, idx: torch.Tensor) -> torch.Tensor:          # (..., m, |b|) columns of the factor
        return self.K[:, idx] * math.sqrt(self.curvature)

    def block_bound(self, idx: torch.Tensor) -> torch.Tensor:
        """H_b for one block (|b|,) or a batch of blocks (nb, |b|) -> (|b|, |b|) / (nb, |b|, |b|)."""
        cols = self.bound_columns(idx)                                       # (m, |b|) or (m, nb, |b|)
        if idx.dim() == 1:
            return cols.T @ cols
        return torch.einsum("mbi,mbj->bij", cols, cols)

    def coordinate_lipschitz(self) -> torch.Tensor:                          # (n,) L_i = H_ii
        return self.curvature * self.K.pow(2).sum(0)

    def bound_matvec(self, d: torch.Tensor) -> torch.Tensor:                 # H d (global bound)
        return self.curvature * (self.K.T @ (self.K @ d))

    def bound_lambda_max(self) -> float:
        return self.curvature * float(torch.linalg.matrix_norm(self.K, 2)) ** 2

    def block_hessian(self, aux: torch.Tensor, x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        return self.block_bound(idx)                                        # exact for quadratics


class LeastSquares(_Problem):
    """``f(x) = 0.5 ||A x - b||^2``; ``H_b = A_b^T A_b`` (exact), ``L_i = ||a_i||^2``."""

    curvature = 1.0

    def __init__(self, A, b) -> None:
        self.K = _as_tensor(A, "A")
        if self.K.dim() != 2:
            raise ValueError(f"A must be a matrix, got shape {tuple(self.K.shape)}")
        self.b = _as_tensor(b, "b", self.K.dtype, self.K.device).reshape(-1)
        if self.b.shape[0] != self.K.shape[0]:
            raise ValueError(f"b has {self.b.shape[0]} entries, A has {self.K.shape[0]} rows")

    def value(self, aux, x):
        return 0.5 * (aux - self.b).pow(2).sum()

    def grad(self, aux, x):
        return self.K.T @ (aux - self.b)


class NonNegL1LeastSquares(LeastSquares):
    """``f(x) = 0.5 ||A x - b||^2 + lam * sum(x)`` subject to ``x >= 0`` (spec 4.6: ``lam sum x`` is the L1 norm
    only on the feasible set). Optimality: the projected gradient ``x - max(0, x - grad f)`` vanishes."""

    constrained = True

    def __init__(self, A, b, lam: float) -> None:
        super().__init__(A, b)
        if not (isinstance(lam, (int, float)) and math.isfinite(lam) and lam >= 0):
            raise ValueError(f"lam must be a finite number >= 0, got {lam!r}")
        self.lam = float(lam)

    def value(self, aux, x):
        return super().value(aux, x) + self.lam * x.sum()

    def grad(self, aux, x):
        return super().grad(aux, x) + self.lam


class Logistic(_Problem):
    """``f(x) = sum_i log(1 + exp(-y_i a_i^T x))`` with labels ``y in {-1, +1}``; ``H_b = A_b^T A_b / 4``."""

    curvature = 0.25
    is_quadratic = False

    def __init__(self, A, y) -> None:
        self.K = _as_tensor(A, "A")
        if self.K.dim() != 2:
            raise ValueError(f"A must be a matrix, got shape {tuple(self.K.shape)}")
        self.y = _as_tensor(y, "y", self.K.dtype, self.K.device).reshape(-1)
        if self.y.shape[0] != self.K.shape[0]:
            raise ValueError(f"y has {self.y.shape[0]} entries, A has {self.K.shape[0]} rows")
        if not bool(((self.y == 1) | (self.y == -1)).all()):
            raise ValueError("Logistic labels y must be -1 or +1")

    def value(self, aux, x):
        return torch.nn.functional.softplus(-self.y * aux).sum()

    def grad(self, aux, x):
        return self.K.T @ (-self.y * torch.sigmoid(-self.y * aux))

    def block_hessian(self, aux, x, idx):
        s = torch.sigmoid(aux)
        cols = self.K[:, idx] * torch.sqrt(s * (1 - s))[:, None]
        return cols.T @ cols


class Softmax(_Problem):
    """Multiclass logistic regression, ``f(W) = sum_i [logsumexp(a_i^T W) - a_i^T w_{y_i}]`` with ``W`` of shape
    (features, classes) flattened row-major (spec 4.6): coordinate ``j * k + c`` is ``W[j, c]``. Labels are
    integers in [0, k). Bound: ``diag(p) - p p^T <= I / 2``, so ``H = (A^T A kron I_k) / 2``."""

    curvature = 0.5
    is_quadratic = False

    def __init__(self, A, y, n_classes: int | None = None) -> None:
        self.K = _as_tensor(A, "A")
        if self.K.dim() != 2:
            raise ValueError(f"A must be a matrix, got shape {tuple(self.K.shape)}")
        labels = torch.as_tensor(np.asarray(y) if not isinstance(y, torch.Tensor) else y).reshape(-1)
        if labels.is_floating_point():
            if not bool(torch.isfinite(labels).all()) or not bool((labels == labels.round()).all()):
                raise ValueError("Softmax labels y must be integers in [0, n_classes)")
            labels = labels.long()
        self.k = int(n_classes) if n_classes is not None else int(labels.max()) + 1
        if labels.shape[0] != self.K.shape[0] or self.k < 2 or int(labels.min()) < 0 or int(labels.max()) >= self.k:
            raise ValueError(f"y must hold {self.K.shape[0]} integer labels in [0, n_classes) with n_classes >= 2")
        self.Y = torch.nn.functional.one_hot(labels.to(self.K.device), self.k).to(self.K.dtype)     # (m, k)

    @property
    def n(self) -> int:
        return self.K.shape[1] * self.k

    def aux(self, x):                                                   # (m, k) scores A W
        return self.K @ x.reshape(-1, self.k)

    def aux_delta(self, idx, d):
        feat, cls = idx // self.k, idx % self.k
        delta = torch.zeros(self.k, self.K.shape[0], dtype=self.K.dtype, device=self.K.device)
        delta.index_add_(0, cls, (self.K[:, feat] * d).T)                # class c gets sum of a_j d_(j,c)
        return delta.T

    def value(self, aux, x):
        return (torch.logsumexp(aux, 1) - (aux * self.Y).sum(1)).sum()

    def grad(self, aux, x):
        return (self.K.T @ (torch.softmax(aux, 1) - self.Y)).reshape(-1)

    def block_bound(self, idx):
        feat, cls = idx // self.k, idx % self.k
        cols = self.K[:, feat]                                            # (m, |b|) or (m, nb, |b|)
        same = cls[..., :, None] == cls[..., None, :]
        gram = cols.T @ cols if idx.dim() == 1 else torch.einsum("mbi,mbj->bij", cols, cols)
        return self.curvature * gram * same

    def coordinate_lipschitz(self):
        return (self.curvature * self.K.pow(2).sum(0)).repeat_interleave(self.k)

    def bound_matvec(self, d):
        return self.curvature * (self.K.T @ (self.K @ d.reshape(-1, self.k))).reshape(-1)

    def block_hessian(self, aux, x, idx):
        feat, cls = idx // self.k, idx % self.k
        P = torch.softmax(aux, 1)[:, cls]                                 # (m, |b|)
        cols = self.K[:, feat]
        weighted = cols * P
        return (weighted.T @ cols) * (cls[:, None] == cls[None, :]) - weighted.T @ weighted


class Quadratic(_Problem):
    """``f(x) = 0.5 x^T Q x - c^T x`` with symmetric positive (semi)definite ``Q`` (dense, torch sparse or
    scipy.sparse; stored dense, so meant for n up to a few thousand); ``H_b = Q_bb``, ``L_i = Q_ii``."""

    def __init__(self, Q, c) -> None:
        self.K = _as_tensor(Q, "Q")
        if self.K.dim() != 2 or self.K.shape[0] != self.K.shape[1]:
            raise ValueError(f"Q must be square, got shape {tuple(self.K.shape)}")
        if not torch.allclose(self.K, self.K.T, rtol=1e-10, atol=1e-12 * float(self.K.abs().max())):
            raise ValueError("Q must be symmetric")
        self.c = _as_tensor(c, "c", self.K.dtype, self.K.device).reshape(-1)
        if self.c.shape[0] != self.K.shape[0]:
            raise ValueError(f"c has {self.c.shape[0]} entries, Q is {self.K.shape[0]} x {self.K.shape[0]}")

    def value(self, aux, x):
        return 0.5 * (x @ aux) - self.c @ x

    def grad(self, aux, x):
        return aux - self.c

    def block_bound(self, idx):
        if idx.dim() == 1:
            return self.K[idx][:, idx]
        return self.K[idx[:, :, None], idx[:, None, :]]

    def coordinate_lipschitz(self):
        return torch.diagonal(self.K).clone()

    def bound_matvec(self, d):
        return self.K @ d

    def bound_lambda_max(self):
        return float(torch.linalg.eigvalsh(self.K)[-1])


@dataclasses.dataclass(frozen=True)
class BCDResult(Result):
    """``x`` (n,), ``history`` (iterations + 1,) with f(x0) first, ``selected_blocks`` (iterations, block_size)
    coordinate indices (-1 pads a short last block), ``optimality`` (final ||g||_2 / max(1, ||g(x0)||_2), projected
    gradient when constrained, recomputed from scratch), ``status``, ``iterations`` and the settings used."""

    x: torch.Tensor
    history: torch.Tensor
    selected_blocks: torch.Tensor
    optimality: float
    status: Status
    iterations: int
    rule: str
    partition: str
    update: str


def _padded_partition(order: torch.Tensor, block_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Cut ``order`` into consecutive blocks -> indices (nb, bs) and mask (nb, bs) (last block may be short)."""
    n = order.numel()
    nb = -(-n // block_size)
    pad = nb * block_size - n
    idx = torch.cat([order, order[:1].expand(pad)]).reshape(nb, block_size)
    mask = torch.ones(nb * block_size, dtype=torch.bool, device=order.device)
    mask[n:] = False
    return idx, mask.reshape(nb, block_size)


def make_partition(L: torch.Tensor, block_size: int, partition: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Fixed partitions of spec 4.2 from the coordinate constants ``L`` (n,): ``order``, ``sort``, ``avg``."""
    n = L.numel()
    if partition == "order":
        order = torch.arange(n, device=L.device)
    elif partition == "sort":
        order = torch.argsort(L, descending=True, stable=True)
    elif partition == "avg":
        # Largest, smallest, 2nd largest, 2nd smallest, ...: each contiguous block mixes large and small L_i.
        ranked = torch.argsort(L, descending=True, stable=True)
        half = (n + 1) // 2
        big, small = ranked[:half], ranked[half:].flip(0)
        order = torch.stack([big[: small.numel()], small], 1).reshape(-1)
        order = torch.cat([order, big[small.numel():]])
    else:
        raise ValueError(f"fixed partition must be 'order', 'sort' or 'avg', got {partition!r}")
    return _padded_partition(order, block_size)


def _check_args(problem, rule, partition, update, block_size, max_iter, tol) -> None:
    if not isinstance(problem, _Problem):
        raise TypeError(f"problem must be LeastSquares, Logistic, Softmax, Quadratic or NonNegL1LeastSquares, "
                        f"got {type(problem).__name__}")
    if rule not in RULES:
        raise ValueError(f"rule must be one of {RULES}, got {rule!r}")
    if partition not in PARTITIONS:
        raise ValueError(f"partition must be one of {PARTITIONS}, got {partition!r}")
    if update not in UPDATES:
        raise ValueError(f"update must be one of {UPDATES}, got {update!r}")
    if isinstance(block_size, bool) or not isinstance(block_size, int) or not 1 <= block_size <= problem.n:
        raise ValueError(f"block_size must be an int in [1, n={problem.n}], got {block_size!r}")
    if not isinstance(max_iter, int) or max_iter < 1:
        raise ValueError(f"max_iter must be a positive int, got {max_iter!r}")
    if not (tol >= 0 and math.isfinite(tol)):
        raise ValueError(f"tol must be a finite number >= 0, got {tol!r}")
    if partition == "variable" and rule == "gsl":
        raise ValueError("GSL with variable blocks is combinatorial; the reference code's 'GSL' variable-block "
                         "curve is GSD (spec 4.6): use rule='gsd' (or 'gsq', the IHT approximation)")
    if partition == "variable" and rule == "cyclic":
        raise ValueError("cyclic selection needs a fixed partition ('order', 'sort' or 'avg')")
    if update == "gabp" and (not isinstance(problem, Quadratic) or problem.constrained):
        raise ValueError("update='gabp' needs a Quadratic problem (sparse Q whose blocks are forests)")
    if update == "exact" and not problem.is_quadratic:
        raise ValueError("update='exact' needs a quadratic problem (LeastSquares, Quadratic, NonNegL1); "
                         "use 'ls' (Newton with line search) for Logistic")


def _optimality(problem: _Problem, x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    if problem.constrained:
        return (x - torch.clamp(x - g, min=0)).norm()
    return g.norm()


class _Solver:
    """State of one BCD run: x, aux = K x and the caches of block constants."""

    def __init__(self, problem: _Problem, x: torch.Tensor, block_size: int, gs_norm: str) -> None:
        self.p, self.x, self.tau, self.gs_norm = problem, x, block_size, gs_norm
        self.aux = problem.aux(x)
        self.L_coord = problem.coordinate_lipschitz()                      # (n,)
        self.L_cache: dict[tuple[int, ...], float] = {}
        self.la_estimate: dict[tuple[int, ...], float] = {}

    def f(self) -> float:
        return float(self.p.value(self.aux, self.x))

    def grad(self) -> torch.Tensor:
        return self.p.grad(self.aux, self.x)

    def lipschitz(self, idx: torch.Tensor) -> float:
        key = tuple(sorted(idx.tolist()))
        if key not in self.L_cache:                                          # spec 4.6: lambda_max, not sum L_i
            self.L_cache[key] = float(torch.linalg.eigvalsh(self.p.block_bound(idx))[-1])
        return self.L_cache[key]

    def value_after(self, idx: torch.Tensor, x_new_b: torch.Tensor) -> tuple[float, torch.Tensor]:
        aux = self.aux + self.p.aux_delta(idx, x_new_b - self.x[idx])
        x = self.x.clone()
        x[idx] = x_new_b
        return float(self.p.value(aux, x)), aux

    def move(self, idx: torch.Tensor, x_new_b: torch.Tensor, aux: torch.Tensor | None = None) -> None:
        if aux is None:
            aux = self.aux + self.p.aux_delta(idx, x_new_b - self.x[idx])
        self.aux = aux
        self.x = self.x.clone()
        self.x[idx] = x_new_b

    # ---- updates -------------------------------------------------------------------------------------------
    def step(self, idx: torch.Tensor, g: torch.Tensor, update: str) -> None:
        g_b, x_b = g[idx], self.x[idx]
        proj = (lambda v: torch.clamp(v, min=0)) if self.p.constrained else (lambda v: v)
        if update == "lb":                          # an all-zero block (L_b = 0) has g_b = 0: it stays put
            self.move(idx, proj(x_b - g_b / max(self.lipschitz(idx), torch.finfo(g.dtype).tiny)))
            return
        f0 = self.f()
        if update == "la":
            key = tuple(sorted(idx.tolist()))
            L = self.la_estimate.get(key, 1.0)
            for _ in range(200):
                x_new = proj(x_b - g_b / L)
                f_new, aux = self.value_after(idx, x_new)
                # Sufficient decrease (spec 4.2); for the projected case the step's own length replaces g_b / L.
                if f_new <= f0 - 0.5 * L * (x_new - x_b).pow(2).sum() + 1e-12 * abs(f0):
                    break
                L *= 2.0
            self.la_estimate[key] = L
            self.move(idx, x_new, aux)
            return
        if update == "gabp":                        # exact block solve H_b x_b = H_b x_b - g_b on a forest block
            H = self.p.block_bound(idx)
            self.move(idx, gabp_solve(H, H @ x_b - g_b))
            return
        # Matrix steps: hb uses the bound H_b, ls/exact the true block Hessian (equal for quadratics).
        H = self.p.block_bound(idx) if update == "hb" else self.p.block_hessian(self.aux, self.x, idx)
        if self.p.constrained:
            self._two_metric_step(idx, g_b, x_b, H, f0)
            return
        eye = torch.eye(len(idx), dtype=H.dtype, device=H.device)
        d = -torch.linalg.solve(H + RIDGE * eye * max(1.0, float(H.diagonal().max())), g_b)
        if update == "ls":                                                    # Armijo backtracking on Newton
            t, slope = 1.0, float(g_b @ d)
            for _ in range(50):
                f_new, aux = self.value_after(idx, x_b + t * d)
                if f_new <= f0 + 1e-4 * t * slope:
                    self.move(idx, x_b + t * d, aux)
                    return
                t *= 0.5
            self.move(idx, x_b - g_b / max(self.lipschitz(idx), torch.finfo(g_b.dtype).tiny))   # safe fallback
            return
        self.move(idx, x_b + d)

    def _two_metric_step(self, idx, g_b, x_b, H, f0) -> None:
        """Two-metric projection: Newton on the free variables (x_i > 0 or g_i < 0), gradient on the others,
        projected, with arc backtracking; falls back to the projected 1/L_b step (which always decreases f)."""
        # Bertsekas' epsilon-active set: coordinates within eps of the bound with g_i > 0 are held there, so a
        # tiny positive x_i cannot spoil the Newton step; eps shrinks with the projected-gradient norm.
        eps = min(1e-3, float((x_b - torch.clamp(x_b - g_b, min=0)).norm()))
        free = (x_b > eps) | (g_b < 0)
        fallback = torch.clamp(x_b - g_b / max(self.lipschitz(idx), torch.finfo(g_b.dtype).tiny), min=0)
        if bool(free.any()):
            H_ff = H[free][:, free]
            eye = torch.eye(int(free.sum()), dtype=H.dtype, device=H.device)
            d = -g_b / H.diagonal().clamp_min(torch.finfo(H.dtype).tiny)    # held coordinates: diagonal step
            d[free] = -torch.linalg.solve(H_ff + RIDGE * eye * max(1.0, float(H_ff.diagonal().max())), g_b[free])
            f_fb, aux_fb = self.value_after(idx, fallback)
            t = 1.0
            for _ in range(40):
                x_new = torch.clamp(x_b + t * d, min=0)
                f_new, aux = self.value_after(idx, x_new)
                if f_new <= f_fb:                     # f_fb <= f0: the projected 1/L_b step always decreases f
                    self.move(idx, x_new, aux)
                    return
                t *= 0.5
        self.move(idx, fallback)

    # ---- variable-block GSQ by iterative hard thresholding (spec 4.2, code IHT) ---------------------------
    def iht_block(self, g: torch.Tensor, mu: float) -> torch.Tensor:
        tau = self.tau

        def threshold(v):
            keep = torch.topk(v.abs(), tau).indices
            out = torch.zeros_like(v)
            out[keep] = v[keep]
            return out

        # Start as the reference code does, d = -g / sqrt(L_i) (its top-tau support is the GSD block).
        d = threshold(-g / self.L_coord.clamp_min(torch.finfo(g.dtype).tiny).sqrt())
        for _ in range(10):
            d = threshold(d - mu * (g + self.p.bound_matvec(d)))
        support = torch.nonzero(d, as_tuple=False).reshape(-1)
        if support.numel() < tau:                    # fill up with the best GSD coordinates not yet chosen
            score = g.abs() / self.L_coord.clamp_min(torch.finfo(g.dtype).tiny).sqrt()
            score[support] = -1.0
            support = torch.cat([support, torch.topk(score, tau - support.numel()).indices])
        return support


def bcd(problem: _Problem, x0=None, *, rule: str = "random", partition: str = "order", block_size: int = 5,
        update: str = "lb", max_iter: int = 500, tol: float = 1e-10, gs_norm: str = "l2",
        generator: torch.Generator | None = None, on_failure: str = "warn") -> BCDResult:
    """Block coordinate descent on ``problem`` (spec 4.2).

    Args:
        problem: LeastSquares, Logistic, Softmax, Quadratic or NonNegL1LeastSquares.
        x0: start (n,), default zeros (projected onto x >= 0 for the constrained problem).
        rule, partition, update: see the module docstring.
        block_size: tau, in [1, n].
        max_iter: iteration budget; tol: stop when ||grad f(x)|| <= tol * max(1, ||grad f(x0)||) (projected
            gradient for the constrained problem), checked against a freshly recomputed gradient.
        gs_norm: "l2" (paper) or "l1" (reference code) for the GS score.
        generator: torch.Generator for random / Lipschitz selection.
        on_failure: "warn" (ConvergenceWarning when the budget runs out), "raise" or "ignore".

    Returns a :class:`BCDResult`; ``x`` is a torch tensor in the problem's dtype and device (numpy data: CPU).
    """
    _check_args(problem, rule, partition, update, block_size, max_iter, tol)
    if gs_norm not in ("l2", "l1"):
        raise ValueError(f"gs_norm must be 'l2' or 'l1', got {gs_norm!r}")
    x = (torch.zeros(problem.n, dtype=problem.dtype, device=problem.device) if x0 is None
         else _as_tensor(x0, "x0", problem.dtype, problem.device).reshape(-1).clone())
    if x.numel() != problem.n:
        raise ValueError(f"x0 has {x.numel()} entries, the problem has n = {problem.n}")
    if problem.constrained:
        x = torch.clamp(x, min=0)
    s = _Solver(problem, x, block_size, gs_norm)
    tiny = torch.finfo(problem.dtype).tiny

    if partition != "variable":
        blocks, mask = make_partition(s.L_coord, block_size, partition)         # (nb, bs)
        H = problem.block_bound(blocks)                                          # (nb, bs, bs)
        pad = ~(mask[:, :, None] & mask[:, None, :])
        eye = torch.eye(block_size, dtype=H.dtype, device=H.device).expand_as(H)
        H = torch.where(pad, eye * (~mask[:, :, None]), H)                       # padded coordinates: identity
        L_blocks = torch.linalg.eigvalsh(H)[:, -1]                               # (nb,) cached once
        for b in range(blocks.shape[0]):
            s.L_cache[tuple(sorted(blocks[b][mask[b]].tolist()))] = float(L_blocks[b])
        if rule == "gsq":
            scale = H.diagonal(dim1=1, dim2=2).amax(1).clamp_min(1.0)[:, None, None]
            H_inv = torch.linalg.inv(H + RIDGE * scale * torch.eye(block_size, dtype=H.dtype, device=H.device))
        if rule == "lipschitz":
            probs = L_blocks / L_blocks.sum()
        D_blocks = s.L_coord[blocks] * mask.sum(1, keepdim=True)                 # GSD: D_ii = |b| L_i
    else:
        mu = 1.0 / max(problem.bound_lambda_max(), tiny) if rule == "gsq" else 0.0

    g = s.grad()
    g0 = float(_optimality(problem, s.x, g))
    scale_opt = max(1.0, g0)
    history = [s.f()]
    selected: list[torch.Tensor] = []
    status = Status.MAX_ITER
    opt = g0 / scale_opt
    for k in range(max_iter):
        if opt <= tol:
            # Confirm on the true measure: recompute aux = K x from scratch (the incremental one drifts).
            s.aux = problem.aux(s.x)
            g = s.grad()
            opt = float(_optimality(problem, s.x, g)) / scale_opt
            if opt <= tol:
                status = Status.CONVERGED
                break
        # Greedy scores use the gradient (projected step for the constrained problem).
        score_vec = (s.x - torch.clamp(s.x - g, min=0)) if problem.constrained else g
        if partition == "variable":
            if rule == "random":
                idx = torch.randperm(problem.n, generator=generator)[:block_size].to(problem.device)
            elif rule == "lipschitz":
                idx = torch.multinomial(s.L_coord.cpu(), block_size, replacement=False,
                                        generator=generator).to(problem.device)
            elif rule == "gs":
                idx = torch.topk(score_vec.abs(), block_size).indices
            elif rule == "gsd":
                idx = torch.topk(score_vec.abs() / s.L_coord.clamp_min(tiny).sqrt(), block_size).indices
            else:                                                                  # gsq
                idx = s.iht_block(score_vec, mu)
            padded = idx
        else:
            nb = blocks.shape[0]
            if rule == "random":
                b = int(torch.randint(nb, (1,), generator=generator))
            elif rule == "cyclic":
                b = k % nb
            elif rule == "lipschitz":
                b = int(torch.multinomial(probs.cpu(), 1, generator=generator))
            else:
                G = score_vec[blocks] * mask                                       # (nb, bs)
                if rule == "gs":
                    score = G.abs().sum(1) if gs_norm == "l1" else G.norm(dim=1)
                elif rule == "gsl":
                    score = G.norm(dim=1) / L_blocks.clamp_min(tiny).sqrt()
                elif rule == "gsd":
                    score = (G.pow(2) / D_blocks.clamp_min(tiny)).sum(1)
                else:                                                              # gsq: g_b^T H_b^-1 g_b
                    score = torch.einsum("bi,bij,bj->b", G, H_inv, G)
                b = int(torch.argmax(score))
            idx = blocks[b][mask[b]]
            padded = torch.where(mask[b], blocks[b], torch.full_like(blocks[b], -1))
        s.step(idx, g, update)
        g = s.grad()
        history.append(s.f())
        selected.append(padded.cpu())
        opt = float(_optimality(problem, s.x, g)) / scale_opt
        if not math.isfinite(history[-1]):
            status = Status.NONFINITE
            break
    else:
        if opt <= tol:
            s.aux = problem.aux(s.x)
            opt = float(_optimality(problem, s.x, s.grad())) / scale_opt
            status = Status.CONVERGED if opt <= tol else Status.MAX_ITER

    report_status(status, "bcd", f"rule={rule}, optimality {opt:.3e} after {len(selected)} iterations",
                  on_failure)
    sel = torch.stack(selected) if selected else torch.empty(0, block_size, dtype=torch.long)
    return BCDResult(s.x, torch.tensor(history, dtype=torch.float64), sel, opt, status, len(selected), rule,
                     partition, update)


def _forest_levels(n: int, edges: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Parent (-1 at roots) and depth of every node of an undirected forest given as ``edges`` (E, 2), by a
    level-synchronous BFS over the edge list. Raises ValueError when the graph has a cycle (E != n - components)."""
    device = edges.device
    parent = torch.full((n,), -1, dtype=torch.long, device=device)
    depth = torch.full((n,), -1, dtype=torch.long, device=device)
    both = torch.cat([edges, edges.flip(1)])                              # directed both ways (2E, 2)
    components = 0
    while bool((depth < 0).any()):
        root = int(torch.nonzero(depth < 0)[0])
        components += 1
        depth[root] = 0
        frontier = torch.zeros(n, dtype=torch.bool, device=device)
        frontier[root] = True
        level = 0
        while bool(frontier.any()):
            step = both[frontier[both[:, 0]] & (depth[both[:, 1]] < 0)]      # frontier -> unvisited
            level += 1
            frontier = torch.zeros_like(frontier)
            if step.numel():
                parent[step[:, 1]] = step[:, 0]
                depth[step[:, 1]] = level
                frontier[step[:, 1]] = True
    if edges.shape[0] != n - components:
        raise ValueError(f"GaBP needs a forest (acyclic) sparsity graph: {edges.shape[0]} edges on {n} nodes in "
                         f"{components} components means a cycle (spec 4.6: GaBP on a cyclic block is wrong)")
    return parent, depth


def gabp_solve(Q, c) -> torch.Tensor:
    """Solve ``Q x = c`` exactly by Gaussian belief propagation when the sparsity graph of the symmetric positive
    definite ``Q`` is a forest (spec 4.2: one upward and one downward sweep, O(n) messages). A cyclic graph raises.

    Messages (i -> parent p): precision ``-Q_ip^2 / P_i\\p``, potential ``-Q_ip h_i\\p / P_i\\p``, where
    ``P_i\\p, h_i\\p`` are node i's precision and potential without p's message; then the same from the root down."""
    Q = _as_tensor(Q, "Q")
    c = _as_tensor(c, "c", Q.dtype, Q.device).reshape(-1)
    n = Q.shape[0]
    if Q.dim() != 2 or Q.shape[1] != n or c.numel() != n:
        raise ValueError(f"need a square Q and c of matching length, got {tuple(Q.shape)} and {c.numel()}")
    if not torch.allclose(Q, Q.T, rtol=1e-10, atol=0.0) or not bool((torch.diagonal(Q) > 0).all()):
        raise ValueError("Q must be symmetric with a positive diagonal")
    edges = torch.nonzero(torch.triu(Q, 1) != 0)                          # (E, 2)
    parent, depth = _forest_levels(n, edges)
    diag = torch.diagonal(Q)
    # Upward sweep: leaves first. up_P/up_h accumulate the children's messages at each node.
    up_P, up_h = torch.zeros_like(c), torch.zeros_like(c)
    msg_P, msg_h = torch.zeros_like(c), torch.zeros_like(c)              # message node -> its parent
    q_parent = torch.zeros_like(c)
    has_parent = parent >= 0
    q_parent[has_parent] = Q[has_parent.nonzero().reshape(-1), parent[has_parent]]
    max_depth = int(depth.max())
    for level in range(max_depth, 0, -1):
        nodes = torch.nonzero(depth == level).reshape(-1)
        P_excl, h_excl = diag[nodes] + up_P[nodes], c[nodes] + up_h[nodes]
        if not bool((P_excl > 0).all()):
            raise ValueError("GaBP met a non-positive precision: Q is not positive definite")
        msg_P[nodes] = -q_parent[nodes].pow(2) / P_excl
        msg_h[nodes] = -q_parent[nodes] * h_excl / P_excl
        up_P.index_add_(0, parent[nodes], msg_P[nodes])
        up_h.index_add_(0, parent[nodes], msg_h[nodes])
    # Downward sweep: full beliefs at the roots, then each child gets its parent's belief minus its own message.
    full_P, full_h = diag + up_P, c + up_h
    for level in range(1, max_depth + 1):
        nodes = torch.nonzero(depth == level).reshape(-1)
        p = parent[nodes]
        P_p_excl, h_p_excl = full_P[p] - msg_P[nodes], full_h[p] - msg_h[nodes]
        full_P[nodes] = full_P[nodes] - q_parent[nodes].pow(2) / P_p_excl
        full_h[nodes] = full_h[nodes] - q_parent[nodes] * h_p_excl / P_p_excl
    if not bool((full_P > 0).all()):
        raise ValueError("GaBP met a non-positive precision: Q is not positive definite")
    return full_h / full_P


def dataset_a(n_rows: int = 1000, n_cols: int = 10_000, seed: int = 1, dtype=torch.float64,
              device: str | torch.device = "cpu") -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Spec 4.3 data set A (least squares): ``A`` entries N(0,1)+1, column j scaled by 10 N(0,1), each entry kept
    with probability 10 log(m)/m; ``w`` 10% non-zero N(0,1); ``b = A w + N(0,1)``. numpy ``default_rng(seed)`` as
    in the spec's 4.5 runs (the Matlab original is not available). Returns ``(A, b, w)``."""
    if n_rows < 2 or n_cols < 1:
        raise ValueError(f"need n_rows >= 2 and n_cols >= 1, got {n_rows} x {n_cols}")
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((n_rows, n_cols)) + 1.0
    A *= 10.0 * rng.standard_normal(n_cols)[None, :]
    A *= rng.random((n_rows, n_cols)) < min(1.0, 10.0 * math.log(n_rows) / n_rows)
    w = rng.standard_normal(n_cols) * (rng.random(n_cols) < 0.1)
    b = A @ w + rng.standard_normal(n_rows)
    to = dict(dtype=dtype, device=device)
    return torch.as_tensor(A, **to), torch.as_tensor(b, **to), torch.as_tensor(w, **to)


def dataset_d(n_rows: int = 50, n_cols: int = 50, n_labelled: int = 100, weight: float = 1e5, seed: int = 1,
              dtype=torch.float64, device: str | torch.device = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """Spec 4.3 data set D: label propagation on an ``n_rows x n_cols`` lattice (node i at row ``i % n_rows``,
    column ``i // n_rows``; every lattice edge has weight ``weight``), ``n_labelled`` nodes labelled ``10 N(0,1)``
    drawn by numpy's legacy ``RandomState(seed)`` (choice, then randn, as the reference code). The unlabelled
    nodes solve ``min 0.5 x^T Q x - c^T x`` with ``Q_ii`` = node degree (labelled neighbours included),
    ``Q_ij = -w_ij`` and ``c_i = sum_{labelled j} w_ij y_j``. Returns dense ``(Q, c)``; spec f* = -1045999575.2270696
    at the defaults."""
    n = n_rows * n_cols
    if n_rows < 2 or n_cols < 2 or not 0 < n_labelled < n or not weight > 0:
        raise ValueError("need a lattice of at least 2 x 2, 0 < n_labelled < nodes and weight > 0")
    rng = np.random.RandomState(seed)
    labelled = rng.choice(n, n_labelled, replace=False)
    y = np.zeros(n)
    y[labelled] = rng.randn(n_labelled) * 10.0
    node = np.arange(n)
    down = node[node % n_rows != n_rows - 1]                               # edge (i, i + 1) inside a column
    right = node[node // n_rows != n_cols - 1]                             # edge (i, i + n_rows) to the next column
    src = np.concatenate([down, right])
    dst = np.concatenate([down + 1, right + n_rows])
    W = np.zeros((n, n))
    W[src, dst] = W[dst, src] = weight
    is_labelled = np.zeros(n, dtype=bool)
    is_labelled[labelled] = True
    free = ~is_labelled
    Q = -W[np.ix_(free, free)]
    Q[np.diag_indices_from(Q)] = W[free].sum(1)
    c = W[np.ix_(free, is_labelled)] @ y[is_labelled]
    to = dict(dtype=dtype, device=device)
    return torch.as_tensor(Q, **to), torch.as_tensor(c, **to)
