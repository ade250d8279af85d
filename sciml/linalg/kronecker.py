"""Kronecker-product operators ``A_1 ⊗ A_2 ⊗ ... ⊗ A_d``, applied and solved factor by factor.

The dense ``N x N`` matrix (``N = prod n_k``) is never formed: a matvec reshapes the vector into an
``(n_1, ..., n_d)`` tensor and applies one mode product per factor (``O(N * sum n_k)`` instead of ``O(N^2)``),
and eigen-decompositions, solves and log-determinants come from the factors' eigen-decompositions
(``O(sum n_k^3)``). Index order is row-major: ``vec[i_1 * (n_2 ... n_d) + ... + i_d]``, the same as
``torch.kron(A_1, torch.kron(A_2, ...))``.
"""

from __future__ import annotations

import dataclasses
from functools import cached_property
from typing import Sequence

import torch

from sciml.core import Result, check_floating
from sciml.linalg.operator import LinearOperator
from sciml.linalg.tensor_ops import multi_mode_product


@dataclasses.dataclass(frozen=True)
class KroneckerEigh(Result):
    """Eigen-decomposition of a Kronecker product, kept in factored form.

    ``factor_eigenvalues[k]`` (n_k,) and ``factor_eigenvectors[k]`` (n_k, n_k) decompose ``A_k``; the full
    eigenvalues are their outer product (``eigenvalues``, in Kronecker order, not sorted) and the full
    eigenvectors are ``KroneckerOperator(factor_eigenvectors)``.
    """

    factor_eigenvalues: tuple[torch.Tensor, ...]
    factor_eigenvectors: tuple[torch.Tensor, ...]

    @property
    def eigenvalues(self) -> torch.Tensor:
        return kron_vector(self.factor_eigenvalues)

    @property
    def eigenvectors(self) -> "KroneckerOperator":
        return KroneckerOperator(self.factor_eigenvectors)


def kron_vector(vectors: Sequence[torch.Tensor]) -> torch.Tensor:
    """``v_1 ⊗ v_2 ⊗ ...`` for 1-D tensors, by successive outer products. Shapes: (n_k,) -> (prod n_k,)."""
    out = vectors[0]
    for v in vectors[1:]:
        out = (out[:, None] * v[None, :]).reshape(-1)
    return out


class KroneckerOperator(LinearOperator):
    """``A_1 ⊗ ... ⊗ A_d`` for square factors of any sizes (same dtype and device).

    Args:
        factors: square matrices ``A_k`` of shape (n_k, n_k). ``eigh``, ``solve`` and ``logdet`` assume
            they are symmetric (checked on first use) and, for ``logdet``, that the shifted operator is
            positive definite.

    Shapes: operator (N, N) with N = prod n_k; right-hand sides (N,) or (N, K).

    Differs from linear_operator's ``KroneckerProductLinearOperator``: no batch of operators, no hidden
    size threshold; solve and logdet always go through the factor eigen-decompositions (exact, and they
    take a scalar shift ``s`` for ``A + s I`` which a Cholesky of the factors cannot).
    """

    def __init__(self, factors: Sequence[torch.Tensor]) -> None:
        factors = tuple(factors)
        if not factors:
            raise ValueError("KroneckerOperator needs at least one factor")
        for k, f in enumerate(factors):
            check_floating(f, f"factors[{k}]")
            if f.ndim != 2 or f.shape[0] != f.shape[1]:
                raise ValueError(f"factors[{k}] must be a square matrix, got shape {tuple(f.shape)}")
            if f.dtype != factors[0].dtype or f.device != factors[0].device:
                raise ValueError(f"factors[{k}] has dtype {f.dtype} on {f.device}, but factors[0] has "
                                 f"{factors[0].dtype} on {factors[0].device}; all factors must match")
        self.factors = factors
        self.sizes = tuple(f.shape[0] for f in factors)
        n = 1
        for s in self.sizes:
            n *= s
        self.shape = (n, n)
        self.dtype, self.device = factors[0].dtype, factors[0].device

    def _apply(self, matrices: Sequence[torch.Tensor], X: torch.Tensor, transpose: bool = False) -> torch.Tensor:
        # (N, K) -> (n_1, ..., n_d, K): one mode product per factor, the RHS batch riding along as a last mode.
        tensor = X.reshape(*self.sizes, X.shape[1])
        tensor = multi_mode_product(tensor, list(matrices), modes=range(len(matrices)), transpose=transpose)
        return tensor.reshape(self.shape[0], X.shape[1])

    def _matmat(self, X: torch.Tensor) -> torch.Tensor:
        return self._apply(self.factors, X)

    def to_dense(self) -> torch.Tensor:
        out = self.factors[0]
        for f in self.factors[1:]:
            out = torch.kron(out, f)
        return out

    @property
    def T(self) -> "KroneckerOperator":
        return KroneckerOperator([f.mT for f in self.factors])

    def diagonal(self) -> torch.Tensor:
        return kron_vector([torch.diagonal(f) for f in self.factors])

    def _check_symmetric(self) -> None:
        for k, f in enumerate(self.factors):
            f = f.detach()
            scale = f.abs().max().clamp_min(torch.finfo(f.dtype).tiny)
            if float((f - f.mT).abs().max() / scale) > 100 * torch.finfo(f.dtype).eps:
                raise ValueError(f"factors[{k}] is not symmetric; eigh/solve/logdet need symmetric factors")

    @cached_property
    def _eigh(self) -> KroneckerEigh:
        self._check_symmetric()
        pairs = [torch.linalg.eigh(f) for f in self.factors]
        return KroneckerEigh(tuple(p.eigenvalues for p in pairs), tuple(p.eigenvectors for p in pairs))

    def eigh(self) -> KroneckerEigh:  # type: ignore[override]
        """Factored eigen-decomposition (see :class:`KroneckerEigh`); computed once and cached."""
        return self._eigh

    def _shifted_eigenvalues(self, shift: float, what: str) -> torch.Tensor:
        values = self._eigh.eigenvalues + shift
        scale = values.detach().abs().max()
        # A shift that (nearly) cancels an eigenvalue makes the system singular: refuse rather than return Inf.
        if float(values.detach().abs().min()) <= self.shape[0] * torch.finfo(self.dtype).eps * float(scale):
            raise ValueError(f"{what}: A + {shift} I is singular (an eigenvalue of A is {-shift:g} up to "
                             "rounding); choose another shift")
        return values

    def solve(self, B: torch.Tensor, shift: float = 0.0) -> torch.Tensor:
        """Solve ``(A_1 ⊗ ... ⊗ A_d + shift I) X = B`` exactly via ``Q (Λ + s)^{-1} Qᵀ B``.

        Shapes: B (N,) or (N, K) -> same. Raises ValueError when ``A + shift I`` is singular.
        """
        check_floating(B, "B")
        values = self._shifted_eigenvalues(shift, "solve")
        vectors = self._eigh.factor_eigenvectors
        squeeze = B.ndim == 1
        B2 = self._check_rhs(B)
        rotated = self._apply(vectors, B2, transpose=True)              # Qᵀ B
        scaled = rotated / values[:, None]
        X = self._apply(vectors, scaled)                                # Q (Λ + s)^{-1} Qᵀ B
        return X[:, 0] if squeeze else X

    def _check_rhs(self, B: torch.Tensor) -> torch.Tensor:
        if B.ndim not in (1, 2) or B.shape[0] != self.shape[0]:
            raise ValueError(f"right-hand side of shape {tuple(B.shape)} does not match the operator "
                             f"{self.shape}; expected ({self.shape[0]},) or ({self.shape[0]}, K)")
        if B.dtype != self.dtype or B.device != self.device:
            raise ValueError(f"right-hand side is {B.dtype} on {B.device}, operator {self.dtype} on {self.device}")
        return B[:, None] if B.ndim == 1 else B

    def logdet(self, shift: float = 0.0) -> torch.Tensor:
        """``log det(A_1 ⊗ ... ⊗ A_d + shift I)`` for a positive-definite result.

        Without a shift it uses the closed form ``sum_k (N / n_k) log det A_k``; with one, the sum of
        ``log(λ + s)`` over the outer-product eigenvalues. Raises ValueError if ``A + shift I`` is not PD.
        """
        values = self._shifted_eigenvalues(shift, "logdet")
        smallest = float(values.detach().min())
        if smallest <= 0:
            raise ValueError(f"logdet: A + {shift} I is not positive definite (smallest eigenvalue {smallest:.3g})")
        if shift == 0.0:
            n = self.shape[0]
            return sum((n // s) * torch.log(ev).sum() for s, ev in zip(self.sizes, self._eigh.factor_eigenvalues))
        return torch.log(values).sum()
