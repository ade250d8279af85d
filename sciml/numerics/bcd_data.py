"""Data set generators of the BCD experiments (Nutini, Laradji & Schmidt; spec optim_numerics 4.3), sizes as
arguments. A, D follow the spec's verified runs; B and C draw in the reference code's order (numpy legacy
``RandomState(seed)``); E regenerates the two-moons graph (the reference code loads it from a ``W_y.mat`` that is not
shipped, so its ``f* = -717.708822011346`` is not expected here: check against ``spsolve``)."""

from __future__ import annotations

import math

import numpy as np
import torch


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


def _reference_design(rng: np.random.RandomState, n_rows: int, n_cols: int) -> np.ndarray:
    """The reference code's A for data sets B and C: (N(0,1) + 1) * 10 N(0,1) per column, kept w.p. 10 log(n)/n."""
    A = rng.randn(n_rows, n_cols) + 1.0
    A = A * (10.0 * rng.randn(n_cols))[None, :]
    return A * (rng.rand(n_rows, n_cols) < 10.0 * np.log(n_rows) / n_rows)


def dataset_b(n_rows: int = 1000, n_cols: int = 10_000, seed: int = 1, dtype=torch.float64,
              device: str | torch.device = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """Spec 4.3 data set B (binary logistic): A as data set A, ``w`` 10% non-zero N(0,1), labels ``sign(A w)`` each
    flipped with probability 0.1 (reference code's draws). Returns ``(A, y)`` with ``y`` in {-1, +1} (a zero margin,
    possible for an all-zero row, is labelled +1)."""
    if n_rows < 2 or n_cols < 1:
        raise ValueError(f"need n_rows >= 2 and n_cols >= 1, got {n_rows} x {n_cols}")
    rng = np.random.RandomState(seed)
    A = _reference_design(rng, n_rows, n_cols)
    w = rng.randn(n_cols) * (rng.rand(n_cols) < 0.1)
    y = np.where(A @ w >= 0, 1.0, -1.0) * np.sign(rng.rand(n_rows) - 0.1)
    to = dict(dtype=dtype, device=device)
    return torch.as_tensor(A, **to), torch.as_tensor(y, **to)


def dataset_c(n_rows: int = 1000, n_cols: int = 1000, n_classes: int = 50, seed: int = 1, dtype=torch.float64,
              device: str | torch.device = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """Spec 4.3 data set C (softmax): A as data set A (``n_cols`` features), ``W ~ N(0,1)`` (features x classes),
    labels ``argmax(A W + N(0,1))`` (reference code's draws). Returns ``(A, labels)``."""
    if n_rows < 2 or n_cols < 1 or n_classes < 2:
        raise ValueError(f"need n_rows >= 2, n_cols >= 1 and n_classes >= 2, got {n_rows}, {n_cols}, {n_classes}")
    rng = np.random.RandomState(seed)
    A = _reference_design(rng, n_rows, n_cols)
    W = rng.randn(n_cols, n_classes)
    scores = A @ W + rng.randn(n_rows, n_classes)
    return torch.as_tensor(A, dtype=dtype, device=device), torch.as_tensor(scores.argmax(1), device=device)


def dataset_e(n_nodes: int = 2000, n_labelled: int = 100, n_neighbours: int = 5, noise: float = 0.1,
              seed: int = 1, dtype=torch.float64,
              device: str | torch.device = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """Spec 4.3 data set E: label propagation on scikit-learn's two moons (``n_nodes`` points, ``noise``), each
    node joined to its ``n_neighbours`` nearest neighbours (symmetrised, weights 1), ``n_labelled`` random nodes
    labelled with their moon (+-1). The unlabelled nodes solve ``min 0.5 x^T Q x - c^T x`` with ``Q`` the graph
    Laplacian restricted to them (labelled neighbours on the diagonal) and ``c = W_{UL} y_L``. Raises if a connected
    component holds no labelled node (``Q`` singular)."""
    from sklearn.datasets import make_moons

    if not (3 <= n_neighbours + 1 < n_nodes and 0 < n_labelled < n_nodes):
        raise ValueError("need 2 <= n_neighbours < n_nodes - 1 and 0 < n_labelled < n_nodes")
    points, moon = make_moons(n_nodes, noise=noise, random_state=seed)
    pts = torch.as_tensor(points, dtype=torch.float64)
    dist = torch.cdist(pts, pts)
    dist.fill_diagonal_(math.inf)
    nearest = torch.topk(dist, n_neighbours, largest=False).indices                  # (n, k)
    W = torch.zeros(n_nodes, n_nodes, dtype=torch.float64)
    W[torch.arange(n_nodes)[:, None], nearest] = 1.0
    W = torch.maximum(W, W.T)
    rng = np.random.RandomState(seed)
    labelled = torch.zeros(n_nodes, dtype=torch.bool)
    labelled[torch.as_tensor(rng.choice(n_nodes, n_labelled, replace=False))] = True
    y = torch.as_tensor(np.where(moon == 1, 1.0, -1.0))
    free = ~labelled
    Q = -W[free][:, free]
    Q[range(Q.shape[0]), range(Q.shape[0])] = W[free].sum(1)
    c = W[free][:, labelled] @ y[labelled]
    if bool(torch.linalg.cholesky_ex(Q).info):
        raise ValueError("a connected component of the k-NN graph has no labelled node (Q singular); change seed, "
                         "n_labelled or n_neighbours")
    return Q.to(dtype=dtype, device=device), c.to(dtype=dtype, device=device)
