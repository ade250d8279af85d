"""Discrete baselines for continuous-indexed data: binning, masked Tucker-ALS and P-Tucker-style ALS.

The continuous coordinates are binned to a grid (``bin_observations``); cells with several observations hold
their mean, empty cells are missing. ``masked_tucker_als`` is HOOI with EM imputation of the missing cells (what
``tensorly.decomposition.tucker(..., mask=...)`` does); ``ptucker_als`` fits only the observed cells by
row-wise ridge regressions of the factors plus a ridge regression of the core (P-Tucker's objective).

Reference: Kolda & Bader, "Tensor decompositions and applications" (SIAM Review 2009), Sec. 4.2 (HOOI);
Oh, Park, Sael, Kang, "Scalable Tucker factorization for sparse tensors - algorithms and discoveries"
(P-Tucker, ICDE 2018), eq. (4) (row-wise update with λ ||·||² regularisation).

Differs from the references: P-Tucker's QR orthogonalisation after the sweeps is omitted (it only rotates the
factors into the core, the fit is unchanged); the core is updated by ridge regression in every sweep.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import torch

from sciml.core import Result, Status, check_floating, report_status
from sciml.linalg import TuckerTensor, multi_mode_product, tucker_hooi
from sciml.tensor.funbat_moments import contract_modes


@dataclasses.dataclass(frozen=True)
class BinnedTensor(Result):
    """Observations averaged per grid cell. Shapes: values (n_1..n_K) (0 where empty), mask (n_1..n_K) bool,
    edges[k] (n_k + 1,) bin edges."""

    values: torch.Tensor
    mask: torch.Tensor
    edges: tuple[torch.Tensor, ...]

    def cells(self, coords: torch.Tensor) -> torch.Tensor:
        """Cell index per mode for coordinates (n, K); points outside the range go to the end bins."""
        return _cell_index(coords, self.edges)


def _cell_index(coords: torch.Tensor, edges: Sequence[torch.Tensor]) -> torch.Tensor:
    cols = []
    for k, e in enumerate(edges):
        idx = torch.bucketize(coords[:, k].contiguous(), e[1:-1].contiguous(), right=True)
        cols.append(idx.clamp(0, e.shape[0] - 2))
    return torch.stack(cols, dim=-1)


def bin_observations(coords: torch.Tensor, values: torch.Tensor, bins: Sequence[int],
                     lower: Sequence[float] | None = None, upper: Sequence[float] | None = None) -> BinnedTensor:
    """Average observations into a regular grid of ``bins[k]`` cells per mode (range: data min/max or given)."""
    check_floating(coords, "coords")
    check_floating(values, "values")
    if coords.ndim != 2 or values.shape != (coords.shape[0],):
        raise ValueError(f"coords (N, K) and values (N,) must match, got {tuple(coords.shape)}, "
                         f"{tuple(values.shape)}")
    K = coords.shape[1]
    if len(bins) != K or any(int(b) < 1 for b in bins):
        raise ValueError(f"bins must give K = {K} positive counts, got {bins}")
    lo = coords.min(0).values if lower is None else torch.as_tensor(lower, dtype=coords.dtype)
    hi = coords.max(0).values if upper is None else torch.as_tensor(upper, dtype=coords.dtype)
    edges = tuple(torch.linspace(float(lo[k]), float(hi[k]), int(bins[k]) + 1, dtype=coords.dtype,
                                 device=coords.device) for k in range(K))
    cells = _cell_index(coords, edges)
    shape = tuple(int(b) for b in bins)
    flat = torch.zeros(math.prod(shape), dtype=values.dtype, device=values.device)
    count = torch.zeros_like(flat)
    lin = torch.zeros(coords.shape[0], dtype=torch.long, device=coords.device)
    for k in range(K):
        lin = lin * shape[k] + cells[:, k]
    flat.index_add_(0, lin, values)
    count.index_add_(0, lin, torch.ones_like(values))
    mask = count > 0
    flat[mask] /= count[mask]
    return BinnedTensor(flat.reshape(shape), mask.reshape(shape), edges)


@dataclasses.dataclass(frozen=True)
class GridTuckerFit(Result):
    """A Tucker model on the binned grid; ``predict`` looks up the cell of each coordinate."""

    tucker: TuckerTensor
    binned: BinnedTensor
    history: tuple[float, ...]
    status: Status

    def predict(self, coords: torch.Tensor) -> torch.Tensor:
        full = self.tucker.to_tensor()
        cells = self.binned.cells(coords.to(full))
        return full[tuple(cells[:, k] for k in range(cells.shape[1]))]


def masked_tucker_als(binned: BinnedTensor, ranks: int | Sequence[int], n_iter: int = 50, tol: float = 1e-6,
                      on_failure: str = "warn") -> GridTuckerFit:
    """HOOI with EM imputation: missing cells are refilled with the current reconstruction every sweep.

    Equivalent to ``tensorly.decomposition.tucker(values, rank, mask=mask, n_iter_max=n_iter)`` (started from
    the observed entries with zeros elsewhere); the history holds the RMSE on the observed cells.
    """
    if n_iter < 1:
        raise ValueError(f"n_iter must be >= 1, got {n_iter}")
    obs = binned.mask
    x = binned.values.clone()
    ranks = [ranks] * x.ndim if isinstance(ranks, int) else list(ranks)
    fit = None
    history: list[float] = []
    status = Status.MAX_ITER
    for _ in range(n_iter):
        fit = tucker_hooi(x, ranks, n_iter_max=1, init=None if fit is None else fit.tucker, on_failure="ignore")
        recon = fit.tucker.to_tensor()
        history.append(float(torch.sqrt(((recon - binned.values)[obs] ** 2).mean())))
        x = torch.where(obs, binned.values, recon)
        status = _sweep_status(history, tol)
        if status is not Status.MAX_ITER:
            break
    report_status(status, "masked_tucker_als", f"{len(history)} sweeps", on_failure)
    return GridTuckerFit(fit.tucker, binned, tuple(history), status)


def ptucker_als(binned: BinnedTensor, ranks: int | Sequence[int], reg: float = 1e-2, n_iter: int = 50,
                tol: float = 1e-6, generator: torch.Generator | None = None,
                on_failure: str = "warn") -> GridTuckerFit:
    """P-Tucker-style ALS on the observed cells only, with ridge ``reg`` on factor rows and core.

    Each factor row i of mode k solves min Σ_{cells with i_k = i} (x - a_cellᵀ u_i)² + reg ||u_i||² with
    a_cell = W_(k) (⊗_{j≠k} U_j[i_j]); all rows are solved at once as a batch of small SPD systems.
    """
    if reg < 0 or n_iter < 1:
        raise ValueError(f"reg must be >= 0 and n_iter >= 1, got {reg}, {n_iter}")
    x = binned.values
    K, shape = x.ndim, x.shape
    ranks = [ranks] * K if isinstance(ranks, int) else list(ranks)
    obs_idx = binned.mask.nonzero()                         # (M, K)
    y = x[binned.mask]
    kw = {"dtype": x.dtype, "device": x.device}
    factors = [torch.rand(n, r, generator=generator, **kw) for n, r in zip(shape, ranks)]
    core = torch.rand(*ranks, generator=generator, **kw)
    history: list[float] = []
    status = Status.MAX_ITER
    for _ in range(n_iter):
        for k in range(K):
            rows = [factors[j][obs_idx[:, j]] for j in range(K)]
            design = _design(core, rows, skip=k)            # (M, r_k)
            gram = torch.zeros(shape[k], ranks[k], ranks[k], **kw).index_add_(
                0, obs_idx[:, k], design[:, :, None] * design[:, None, :])
            rhs = torch.zeros(shape[k], ranks[k], **kw).index_add_(0, obs_idx[:, k], y[:, None] * design)
            eye = torch.eye(ranks[k], **kw)
            factors[k] = torch.linalg.solve(gram + reg * eye, rhs[..., None])[..., 0]
        rows = [factors[j][obs_idx[:, j]] for j in range(K)]
        z = rows[0]
        for r in rows[1:]:
            z = (z[:, :, None] * r[:, None, :]).reshape(z.shape[0], -1)
        gram = z.T @ z + reg * torch.eye(z.shape[1], **kw)
        core = torch.linalg.solve(gram, z.T @ y).reshape(ranks)
        history.append(float(torch.sqrt(((z @ core.reshape(-1) - y) ** 2).mean())))
        status = _sweep_status(history, tol)
        if status is not Status.MAX_ITER:
            break
    report_status(status, "ptucker_als", f"{len(history)} sweeps", on_failure)
    return GridTuckerFit(TuckerTensor(core, tuple(factors)), binned, tuple(history), status)


def _sweep_status(history: list[float], tol: float) -> Status:
    """NONFINITE, CONVERGED (relative change of the last two values <= tol) or MAX_ITER (keep going)."""
    if not math.isfinite(history[-1]):
        return Status.NONFINITE
    if len(history) > 1 and abs(history[-2] - history[-1]) <= tol * max(history[-1], 1e-300):
        return Status.CONVERGED
    return Status.MAX_ITER


def _design(core: torch.Tensor, rows: Sequence[torch.Tensor], skip: int) -> torch.Tensor:
    """a_m = W_(skip) (⊗_{j≠skip} rows[j][m]) for every observed cell m. Shape (M, r_skip)."""
    mats = [None if j == skip else r[:, :, None] for j, r in enumerate(rows)]
    return contract_modes(core, mats).reshape(rows[0].shape[0], -1)


def tensorly_masked_tucker(binned: BinnedTensor, ranks: int | Sequence[int], n_iter: int = 50) -> GridTuckerFit:
    """tensorly's masked Tucker (``tensorly.decomposition.tucker(..., mask=...)``) on the numpy backend."""
    import numpy as np
    from tensorly.decomposition import tucker

    ranks = [ranks] * binned.values.ndim if isinstance(ranks, int) else list(ranks)
    x = binned.values.detach().cpu().numpy()
    mask = binned.mask.detach().cpu().numpy().astype(x.dtype)
    core, factors = tucker(x, rank=ranks, mask=mask, n_iter_max=n_iter, init="svd", tol=1e-8)
    ref = binned.values
    tt = TuckerTensor(torch.as_tensor(np.asarray(core)).to(ref),
                      tuple(torch.as_tensor(np.asarray(f)).to(ref) for f in factors))
    recon = multi_mode_product(tt.core, list(tt.factors))
    rmse = float(torch.sqrt(((recon - ref)[binned.mask] ** 2).mean()))
    return GridTuckerFit(tt, binned, (rmse,), Status.CONVERGED)


@dataclasses.dataclass(frozen=True)
class GridCPFit(Result):
    """A CP model on the binned grid; ``predict`` looks up the cell of each coordinate."""

    weights: torch.Tensor
    factors: tuple[torch.Tensor, ...]
    binned: BinnedTensor

    def predict(self, coords: torch.Tensor) -> torch.Tensor:
        cells = self.binned.cells(coords.to(self.weights))
        rows = [f[cells[:, k]] for k, f in enumerate(self.factors)]
        out = self.weights.expand(cells.shape[0], -1)
        for r in rows:
            out = out * r
        return out.sum(-1)


def tensorly_masked_cp(binned: BinnedTensor, rank: int, n_iter: int = 100, seed: int = 0) -> GridCPFit:
    """tensorly's masked CP-ALS (``tensorly.decomposition.parafac(..., mask=...)``) on the numpy backend."""
    import numpy as np
    from tensorly.decomposition import parafac

    x = binned.values.detach().cpu().numpy()
    mask = binned.mask.detach().cpu().numpy().astype(x.dtype)
    weights, factors = parafac(x, rank=rank, mask=mask, n_iter_max=n_iter, init="random", tol=1e-8,
                               random_state=seed)
    ref = binned.values
    return GridCPFit(torch.as_tensor(np.asarray(weights)).to(ref),
                     tuple(torch.as_tensor(np.asarray(f)).to(ref) for f in factors), binned)
