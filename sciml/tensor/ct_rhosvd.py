"""Reduced HOSVD (RHOSVD): Tucker compression of a CP tensor from its factor matrices alone.

The CP tensor ``sum_q w_q u^1_q ⊗ ... ⊗ u^d_q`` (rank R, possibly 10^4) is never formed: each mode's factor
matrix (n_l, R) is truncated by a thin SVD and the small core is assembled from the right singular vectors.
Imports only torch and sciml.core / sciml.linalg.

Reference:
    B. N. Khoromskij, V. Khoromskaia, "Multigrid accelerated tensor approximation of function related
    multidimensional arrays", SIAM J. Sci. Comput. 31 (2009) (RHOSVD); V. Khoromskaia, B. N. Khoromskij,
    "Reduced higher order SVD: ubiquitous rank-reduction method in tensor-based scientific computing",
    arXiv 2201.12663 (2022), Thm. 2.3 (error bound).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import torch

from sciml.core import Result, check_floating
from sciml.linalg import TuckerTensor, khatri_rao

_RULES = ("relative", "absolute")


@dataclasses.dataclass(frozen=True)
class RHOSVDFit(Result):
    """Tucker tensor from RHOSVD with the a-priori error bound.

    Attributes:
        tucker: ``core ×_l V_l`` with orthonormal ``V_l`` (n_l, r_l).
        error_bound: ``||lambda||_2 * sum_l tail_l`` (absolute Frobenius bound, columns normalised).
        singular_values: per mode, the singular values of the column-normalised factor matrix.
        rule: "relative" or "absolute".
    """

    tucker: TuckerTensor
    error_bound: float
    singular_values: tuple[torch.Tensor, ...]
    rule: str

    @property
    def ranks(self) -> tuple[int, ...]:
        return self.tucker.ranks


def _tails(s: torch.Tensor) -> torch.Tensor:
    """``tails[r]`` = norm of the singular values dropped when keeping r of them, r = 0..len(s)."""
    tails = torch.sqrt(torch.flip(torch.cumsum(torch.flip(s**2, [0]), 0), [0]))
    return torch.cat([tails, tails.new_zeros(1)])


def _rank_from_tails(tails: torch.Tensor, threshold: float) -> int:
    return max(1, int(torch.nonzero(tails <= threshold)[0]))


def _left_svd(u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Left singular vectors and values of a wide (n, R) matrix via QR of its transpose.

    ``u^T = Q T`` makes ``u = T^T Q^T`` and the SVD of the small n x n ``T^T`` gives u's left factors and singular
    values to full accuracy (unlike eigh of ``u u^T``), without the n x R right factor an SVD of u would build.
    """
    if u.shape[1] > u.shape[0]:
        tri = torch.linalg.qr(u.mT, mode="r")[1]  # (n, n)
        u = tri.mT
    w, s, _ = torch.linalg.svd(u, full_matrices=False)
    return w, s


def rhosvd(weights: torch.Tensor, factors: Sequence[torch.Tensor], tol: float = 1e-7,
           rule: str = "relative", ranks: Sequence[int] | None = None) -> RHOSVDFit:
    """Reduced HOSVD of the CP tensor ``sum_q weights[q] factors[0][:, q] ⊗ ... ⊗ factors[d-1][:, q]``.

    Args:
        weights: CP weights (signs allowed; they stay in the core, never square-rooted).
        factors: d factor matrices with R columns each.
        tol: truncation tolerance (> 0). rule="relative": columns are normalised to unit length (norms moved into
            the weights) and each mode keeps the smallest r with ``sqrt(sum_{j>r} s_j^2) <= tol * s_1``.
            rule="absolute" (the authors' MATLAB rule): the unnormalised factor's singular values,
            ``sqrt(sum_{j>r} s_j^2) <= tol / d``; scale dependent.
        rule: "relative" or "absolute".
        ranks: optional fixed ranks (override ``tol``).

    Returns:
        RHOSVDFit with orthonormal factors (n_l, r_l) and a core (r_1, ..., r_d).

    Shapes:
        weights (R,), factors[l] (n_l, R) -> core (r_1..r_d), factors (n_l, r_l).

    Cost: d thin SVDs of n_l x R matrices, O(d n^2 R), plus O(R prod r) for the core; no n^d array.
    """
    check_floating(weights, "weights")
    if rule not in _RULES:
        raise ValueError(f"rule must be one of {_RULES}, got {rule!r}")
    if not (isinstance(tol, (int, float)) and math.isfinite(tol) and tol > 0):
        raise ValueError(f"tol must be a finite number > 0, got {tol!r}")
    factors = list(factors)
    if len(factors) < 1:
        raise ValueError("rhosvd needs at least one factor matrix")
    if weights.ndim != 1:
        raise ValueError(f"weights must have shape (R,), got {tuple(weights.shape)}")
    big_r = weights.shape[0]
    for k, u in enumerate(factors):
        check_floating(u, f"factors[{k}]")
        if u.ndim != 2 or u.shape[1] != big_r:
            raise ValueError(f"factors[{k}] must have shape (n_{k}, {big_r}), got {tuple(u.shape)}")
    if ranks is not None and len(ranks) != len(factors):
        raise ValueError(f"ranks must have one entry per mode ({len(factors)}), got {ranks}")
    d = len(factors)
    col_norms = [torch.linalg.vector_norm(u, dim=0) for u in factors]
    lam_normalised = weights * math.prod(col_norms)
    if rule == "relative":
        factors = [u / torch.where(c > 0, c, torch.ones_like(c)) for u, c in zip(factors, col_norms)]
        lam = lam_normalised
    else:
        lam = weights
    bases, coords, spectra, bound_tails = [], [], [], []
    for k, u in enumerate(factors):
        w, s = _left_svd(u)  # (n, p), (p,)
        tails = _tails(s)
        if ranks is not None:
            r = int(ranks[k])
            if not 1 <= r <= s.shape[0]:
                raise ValueError(f"ranks[{k}] must be in [1, {s.shape[0]}], got {r}")
        else:
            threshold = tol * float(s[0]) if rule == "relative" else tol / d
            r = _rank_from_tails(tails, threshold)
        bases.append(w[:, :r])
        coords.append(w[:, :r].mT @ u)  # (r, R): projections of the columns on the kept basis
        spectra.append(s)
        if rule == "relative":
            bound_tails.append(float(tails[r]))
        else:
            # The bound is stated for unit columns: the part of each normalised column outside span(V_l).
            unit = u / torch.where(col_norms[k] > 0, col_norms[k], torch.ones_like(col_norms[k]))
            residual = unit - w[:, :r] @ (w[:, :r].mT @ unit)
            bound_tails.append(float(torch.linalg.matrix_norm(residual)))
    # core = sum_q lam_q Y1[:, q] ⊗ ... ⊗ Yd[:, q], one matmul with a Khatri-Rao product (first matrix slowest,
    # so the reshape is C order); O(R prod r) flops, no (d+1)-index einsum.
    first = coords[0] * lam  # (r_1, R)
    if d == 1:
        core = first.sum(dim=1)
    else:
        core = (first @ khatri_rao(coords[1:]).mT).reshape(*[c.shape[0] for c in coords])
    bound = float(torch.linalg.vector_norm(lam_normalised)) * sum(bound_tails)
    return RHOSVDFit(TuckerTensor(core, tuple(bases)), bound, tuple(spectra), rule)
