"""The constraint matrix of a standard-form LP as an operator with its adjoint, for the PDHG solvers.

``A`` may be a dense tensor, a torch sparse tensor (COO or CSR) or matrix-free (:class:`LPOperator` with ``matvec``
and ``rmatvec`` callables). The solvers only apply ``A`` and ``A^T`` and count those products; they also need two
spectral numbers, computed here once:

* ``||A||_2`` (largest singular value) for Chambolle-Pock's step condition ``tau sigma ||A||^2 < 1``;
* ``mean_eig = tr(A^T A) / dim(x) = ||A||_F^2 / n``, the average eigenvalue of ``A^T A`` that sets the adaptive
  method's starting steps (spec §3.3).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable

import numpy as np
import torch

# Matrices up to this many rows x columns get an exact spectral norm from a dense SVD; larger ones use power
# iteration on A^T A.
EXACT_NORM_ELEMENTS = 4_000_000
POWER_ITERATIONS = 1000
POWER_RTOL = 1e-10
FROBENIUS_PROBES = 64  # Rademacher probes for ||A||_F^2 of a matrix-free A (E ||A z||^2 = ||A||_F^2)


@dataclasses.dataclass(frozen=True)
class LPOperator:
    """A matrix-free constraint matrix ``A`` (m, n) of an LP.

    Args:
        matvec: ``x (n,) -> A x (m,)``.
        rmatvec: ``y (m,) -> A^T y (n,)``.
        shape: (m, n).
        norm: ``||A||_2`` when known in closed form (else estimated by power iteration).
        fro_norm_sq: ``||A||_F^2`` when known (else a Hutchinson estimate with Rademacher probes).
    """

    matvec: Callable[[torch.Tensor], torch.Tensor]
    rmatvec: Callable[[torch.Tensor], torch.Tensor]
    shape: tuple[int, int]
    norm: float | None = None
    fro_norm_sq: float | None = None

    def __post_init__(self) -> None:
        if not (callable(self.matvec) and callable(self.rmatvec)):
            raise TypeError("LPOperator needs callables matvec (x -> A x) and rmatvec (y -> A^T y)")
        if len(self.shape) != 2 or min(self.shape) < 1:
            raise ValueError(f"LPOperator shape must be (m, n) with m, n >= 1, got {self.shape}")
        for name in ("norm", "fro_norm_sq"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value > 0):
                raise ValueError(f"LPOperator {name} must be a finite number > 0 or None, got {value!r}")


class CountingOperator:
    """``A`` and ``A^T`` with product counters (``n_A``, ``n_AT``), the solvers' cost measure."""

    def __init__(self, A, dtype: torch.dtype, device: torch.device) -> None:
        self.n_A = 0
        self.n_AT = 0
        self.dtype, self.device = dtype, device
        self._norm: float | None = None
        self._fro_sq: float | None = None
        if isinstance(A, LPOperator):
            self.shape = tuple(A.shape)
            self._mv, self._rmv = A.matvec, A.rmatvec
            self._norm, self._fro_sq = A.norm, A.fro_norm_sq
            self.kind = "matrix-free"
            return
        if isinstance(A, np.ndarray):
            A = torch.as_tensor(A)
        elif _is_scipy_sparse(A):
            coo = A.tocoo()
            A = torch.sparse_coo_tensor(np.vstack([coo.row, coo.col]), coo.data, coo.shape, check_invariants=True)
        if not isinstance(A, torch.Tensor):
            raise TypeError(f"A must be a torch tensor (dense or sparse), a numpy/scipy matrix or an LPOperator, "
                            f"got {type(A).__name__}")
        if A.ndim != 2:
            raise ValueError(f"A must be 2-D (m, n), got shape {tuple(A.shape)}")
        if A.is_complex():
            raise ValueError(f"A must be real, got dtype {A.dtype}")
        A = A.to(dtype=dtype, device=device)
        values = A.coalesce().values() if A.layout == torch.sparse_coo else (
            A.values() if A.layout == torch.sparse_csr else A)
        if not bool(torch.isfinite(values).all()):
            raise ValueError("A contains NaN or Inf entries")
        self.shape = (A.shape[0], A.shape[1])
        self.kind = "dense" if A.layout == torch.strided else "sparse"
        self._fro_sq = float((values * values).sum())
        AT = A.mT if self.kind == "dense" else A.to_sparse_coo().transpose(0, 1).coalesce()
        self._mv = lambda v: A @ v
        self._rmv = lambda v: AT @ v
        self._matrix = A

    def matvec(self, x: torch.Tensor) -> torch.Tensor:
        self.n_A += 1
        return self._mv(x)

    def rmatvec(self, y: torch.Tensor) -> torch.Tensor:
        self.n_AT += 1
        return self._rmv(y)

    @property
    def n_products(self) -> int:
        return self.n_A + self.n_AT

    def spectral_norm(self) -> float:
        """``||A||_2``: closed form if given, exact SVD for a modest dense matrix, else power iteration on A^T A
        (not counted in the solver's products: it is set-up)."""
        if self._norm is None:
            m, n = self.shape
            if self.kind == "dense" and m * n <= EXACT_NORM_ELEMENTS:
                self._norm = float(torch.linalg.matrix_norm(self._matrix, ord=2))
            else:
                self._norm = _power_norm(self._mv, self._rmv, n, self.dtype, self.device)
        return self._norm

    def mean_eigenvalue(self) -> float:
        """``tr(A^T A) / n`` (exact for dense/sparse, Hutchinson estimate for matrix-free without a closed form)."""
        if self._fro_sq is None:
            m, n = self.shape
            gen = torch.Generator(device="cpu").manual_seed(0)
            Z = (torch.randint(0, 2, (n, FROBENIUS_PROBES), generator=gen) * 2 - 1).to(self.dtype).to(self.device)
            self._fro_sq = float(sum(float(self._mv(Z[:, j]).square().sum()) for j in range(FROBENIUS_PROBES))
                                 / FROBENIUS_PROBES)
        return self._fro_sq / self.shape[1]


def _power_norm(mv, rmv, n: int, dtype: torch.dtype, device: torch.device) -> float:
    gen = torch.Generator(device="cpu").manual_seed(0)
    v = torch.randn(n, generator=gen, dtype=dtype).to(device)
    v = v / v.norm()
    estimate = 0.0
    for _ in range(POWER_ITERATIONS):
        w = rmv(mv(v))
        new = float(w.norm())
        if new == 0.0:
            return 0.0
        v = w / new
        if abs(new - estimate) <= POWER_RTOL * new:
            estimate = new
            break
        estimate = new
    # power iteration approaches from below; a 1e-6 relative pad keeps CP's tau sigma ||A||^2 < 1 safe
    return math.sqrt(estimate) * (1.0 + 1e-6)


def _is_scipy_sparse(A) -> bool:
    try:
        import scipy.sparse
    except ImportError:  # pragma: no cover - scipy is a core dependency
        return False
    return scipy.sparse.issparse(A)


def assignment_operator(n: int) -> LPOperator:
    """Row- and column-sum constraints of the n x n assignment LP on ``x = vec(X)`` (row-major), never formed.

    ``A x = [X 1; X^T 1]`` (2n,), ``A^T y = vec(y_row ⊕ y_col)`` (n^2,). Closed forms (spec §3.4):
    ``A A^T = [[n I, 1 1^T], [1 1^T, n I]]`` has eigenvalues 2n, n (2n - 2 times), 0, so ``||A||_2 = sqrt(2n)``,
    and ``||A||_F^2 = 2 n^2`` (two ones per column), so the average eigenvalue of ``A^T A`` is 2.
    """

    def matvec(x: torch.Tensor) -> torch.Tensor:
        X = x.view(n, n)
        return torch.cat([X.sum(1), X.sum(0)])

    def rmatvec(y: torch.Tensor) -> torch.Tensor:
        return (y[:n, None] + y[None, n:]).reshape(-1)

    return LPOperator(matvec, rmatvec, (2 * n, n * n), norm=math.sqrt(2 * n), fro_norm_sq=2.0 * n * n)
