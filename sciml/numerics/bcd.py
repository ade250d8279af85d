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
cycle raises. Partitions ``red_black`` / ``tree`` (Quadratic only) take the blocks from the sparsity graph
(:mod:`sciml.numerics.bcd_graphs`: colour classes of a bipartite graph / greedy forests), so GaBP solves each block
exactly. Not implemented: the greedy / random forests grown per iteration (GSTree, RTree, GSExactTree). Data sets
A-E: :mod:`sciml.numerics.bcd_data`.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch

from sciml.core import Result, Status, report_status
from sciml.numerics._tensors import as_dense_tensor as _as_tensor
from sciml.numerics.bcd_data import dataset_a, dataset_b, dataset_c, dataset_d, dataset_e  # noqa: F401 (re-export)
from sciml.numerics.bcd_graphs import ForestGaBP, forest_partition, gabp_solve, red_black_partition  # noqa: F401

RULES = ("random", "cyclic", "lipschitz", "gs", "gsl", "gsd", "gsq")
PARTITIONS = ("order", "sort", "avg", "variable", "red_black", "tree")
UPDATES = ("lb", "la", "hb", "ls", "exact", "gabp")
RIDGE = 1e-10          # spec 4.6: H_b is singular for p > n blocks; regularise the solves


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
        if 4 * idx.numel() > self.K.shape[1]:          # big blocks: one matvec beats gathering the columns
            full = torch.zeros(self.K.shape[1], dtype=d.dtype, device=d.device)
            full[idx] = d
            return self.K @ full
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


def _pad_blocks(groups: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Blocks of unequal sizes -> indices (nb, max size) padded with each block's first index, and the mask."""
    width = max(g.numel() for g in groups)
    idx = torch.stack([torch.cat([g, g[:1].expand(width - g.numel())]) for g in groups])
    mask = torch.arange(width, device=idx.device)[None, :] < torch.tensor([g.numel() for g in groups],
                                                                          device=idx.device)[:, None]
    return idx, mask


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
    if partition in ("red_black", "tree") and not isinstance(problem, Quadratic):
        raise ValueError(f"partition={partition!r} is a graph partition of a Quadratic's sparsity graph")
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
        self.gabp_cache: dict[tuple[int, ...], tuple[torch.Tensor, ForestGaBP]] = {}

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
            key = tuple(idx.tolist())
            if key not in self.gabp_cache:          # fixed blocks: the forest and its precisions once per block
                H = self.p.block_bound(idx)
                self.gabp_cache[key] = (H, ForestGaBP(H))
            H, solver = self.gabp_cache[key]
            self.move(idx, solver.solve(H @ x_b - g_b))
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
        block_size: tau, in [1, n] (ignored by the graph partitions ``red_black`` and ``tree``, whose blocks are
            the colour classes / greedy forests of a Quadratic's sparsity graph: spec 4.2 message passing).
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
        if partition in ("red_black", "tree"):                                   # message-passing partitions
            groups = (red_black_partition if partition == "red_black" else forest_partition)(problem.K)
            blocks, mask = _pad_blocks(groups)
        else:
            blocks, mask = make_partition(s.L_coord, block_size, partition)     # (nb, bs)
        width = blocks.shape[1]
        H = problem.block_bound(blocks)                                          # (nb, bs, bs)
        pad = ~(mask[:, :, None] & mask[:, None, :])
        eye = torch.eye(width, dtype=H.dtype, device=H.device).expand_as(H)
        H = torch.where(pad, eye * (~mask[:, :, None]), H)                       # padded coordinates: identity
        if rule in ("gsl", "lipschitz") or update not in ("gabp", "exact"):   # L_b needed: cache it once
            L_blocks = torch.linalg.eigvalsh(H)[:, -1]                           # (nb,)
            for b in range(blocks.shape[0]):
                s.L_cache[tuple(sorted(blocks[b][mask[b]].tolist()))] = float(L_blocks[b])
        if rule == "gsq":
            scale = H.diagonal(dim1=1, dim2=2).amax(1).clamp_min(1.0)[:, None, None]
            H_inv = torch.linalg.inv(H + RIDGE * scale * torch.eye(width, dtype=H.dtype, device=H.device))
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
