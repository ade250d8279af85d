"""The linear-operator contract shared by every structured operator and matrix-free algorithm.

A subclass declares ``shape``, ``dtype`` and ``device`` and implements ``_matmat`` (and ``to_dense``). The
public ``matmat`` / ``@`` check shapes once and then call the hook (scipy's public-check -> private-hook
split). Operators are 2-D; right-hand sides may be a vector ``(n,)`` or a batch of columns ``(n, k)``.
Dense fallbacks for ``diagonal``/``solve``/``logdet``/``eigh`` exist so every operator answers every
question, and structured subclasses override them. Nothing switches method behind the caller's back.
"""

from __future__ import annotations

import abc
import math
import numbers
from typing import Callable

import torch

from sciml.core import check_floating


class LinearOperator(abc.ABC):
    """A square or rectangular linear map, applied matrix-free through ``_matmat``."""

    shape: tuple[int, int]
    dtype: torch.dtype
    device: torch.device

    @abc.abstractmethod
    def _matmat(self, X: torch.Tensor) -> torch.Tensor:
        """Apply the operator to a checked ``(n, k)`` block. Shapes: (n, k) -> (m, k)."""

    def to_dense(self) -> torch.Tensor:
        """The dense ``(m, n)`` matrix (default: apply the operator to the identity)."""
        return self._matmat(torch.eye(self.shape[1], dtype=self.dtype, device=self.device))

    # ---- public, checked entry points -------------------------------------------------------------------
    def matmat(self, X: torch.Tensor) -> torch.Tensor:
        """Apply to a vector ``(n,)`` or a block ``(n, k)``; returns ``(m,)`` or ``(m, k)``.

        Checks shape, dtype, device and finiteness (one reduction); algorithms that apply the operator many
        times to vectors they built themselves use the unchecked :meth:`_apply_unchecked`.
        """
        if not isinstance(X, torch.Tensor):
            raise ValueError(f"right-hand side must be a torch.Tensor, got {type(X).__name__}")
        if X.ndim not in (1, 2) or X.shape[0] != self.shape[1]:
            raise ValueError(f"operator of shape {self.shape} cannot act on a tensor of shape {tuple(X.shape)}; "
                             f"expected ({self.shape[1]},) or ({self.shape[1]}, k)")
        if X.device != self.device:
            raise ValueError(f"right-hand side is on {X.device}, operator on {self.device}")
        if X.dtype != self.dtype:
            raise ValueError(f"right-hand side has dtype {X.dtype}, operator {self.dtype}; cast one of them")
        if not bool(torch.isfinite(X).all()):
            raise ValueError("right-hand side contains NaN or Inf entries")
        return self._apply_unchecked(X)

    def _apply_unchecked(self, X: torch.Tensor) -> torch.Tensor:
        """``A X`` for a vector or block already known to be valid (used inside iterative algorithms)."""
        if X.ndim == 1:
            return self._matmat(X[:, None])[:, 0]
        return self._matmat(X)

    def __matmul__(self, X: torch.Tensor) -> torch.Tensor:
        return self.matmat(X)

    @property
    def n(self) -> int:
        """The size of a square operator."""
        self._require_square("n")
        return self.shape[0]

    def _require_square(self, what: str) -> None:
        if self.shape[0] != self.shape[1]:
            raise ValueError(f"{what} needs a square operator, this one is {self.shape}")

    # ---- dense fallbacks, overridden where structure helps -----------------------------------------------
    def diagonal(self) -> torch.Tensor:
        self._require_square("diagonal")
        return torch.diagonal(self.to_dense())

    def _dense_symmetric(self, what: str) -> torch.Tensor:
        dense = self.to_dense()
        scale = dense.detach().abs().max().clamp_min(torch.finfo(dense.dtype).tiny)
        asym = float((dense.detach() - dense.detach().mT).abs().max() / scale)
        if asym > 100 * self.n * torch.finfo(dense.dtype).eps:
            raise ValueError(f"{what} needs a symmetric operator (max |A - A^T| / max |A| = {asym:.2e})")
        return dense

    def eigh(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Eigenvalues (ascending) and eigenvectors of a symmetric operator (dense fallback)."""
        self._require_square("eigh")
        return torch.linalg.eigh(self._dense_symmetric("eigh"))

    def solve(self, B: torch.Tensor, shift: float = 0.0) -> torch.Tensor:
        """Solve ``(A + shift I) X = B`` (dense LU fallback). Shapes: B (n,) or (n, k) -> same."""
        self._require_square("solve")
        shift = check_shift(shift, "solve")
        check_floating(B, "B")
        if B.ndim not in (1, 2) or B.shape[0] != self.n or B.dtype != self.dtype:
            raise ValueError(f"B must be ({self.n},) or ({self.n}, k) of dtype {self.dtype}, got "
                             f"{tuple(B.shape)} {B.dtype}")
        dense = self.to_dense() + shift * torch.eye(self.n, dtype=self.dtype, device=self.device)
        return torch.linalg.solve(dense, B)

    def logdet(self, shift: float = 0.0) -> torch.Tensor:
        """``log det(A + shift I)`` of a symmetric positive-definite operator (dense Cholesky fallback)."""
        self._require_square("logdet")
        shift = check_shift(shift, "logdet")
        dense = self._dense_symmetric("logdet") + shift * torch.eye(self.n, dtype=self.dtype, device=self.device)
        chol, info = torch.linalg.cholesky_ex(dense)
        if int(info) != 0:
            raise ValueError("logdet needs a symmetric positive-definite operator (Cholesky failed)")
        return 2.0 * torch.log(torch.diagonal(chol)).sum()

    # ---- interop (peers imported lazily) -----------------------------------------------------------------
    def to_linear_operator(self):
        """This operator as a ``linear_operator`` operator (Kronecker/dense structure kept)."""
        from sciml.linalg.interop import to_linear_operator

        return to_linear_operator(self)

    def to_scipy(self):
        """This operator as a ``scipy.sparse.linalg.LinearOperator`` (numpy in and out)."""
        from sciml.linalg.interop import to_scipy

        return to_scipy(self)

    @property
    def T(self) -> "LinearOperator":
        return MatvecOperator(lambda X: self.to_dense().mT @ X, (self.shape[1], self.shape[0]),
                              self.dtype, self.device)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(shape={self.shape}, dtype={self.dtype}, device={self.device})"


class DenseOperator(LinearOperator):
    """A dense matrix behind the operator interface."""

    def __init__(self, matrix: torch.Tensor) -> None:
        check_floating(matrix, "matrix")
        if matrix.ndim != 2:
            raise ValueError(f"matrix must be 2-D, got shape {tuple(matrix.shape)}")
        self.matrix = matrix
        self.shape = (matrix.shape[0], matrix.shape[1])
        self.dtype, self.device = matrix.dtype, matrix.device

    def _matmat(self, X: torch.Tensor) -> torch.Tensor:
        return self.matrix @ X

    def to_dense(self) -> torch.Tensor:
        return self.matrix

    @property
    def T(self) -> "DenseOperator":
        return DenseOperator(self.matrix.mT)


class MatvecOperator(LinearOperator):
    """Wraps a callable ``X -> A X`` that accepts ``(n, k)`` blocks (and ideally ``(n,)`` vectors)."""

    def __init__(self, matmat: Callable[[torch.Tensor], torch.Tensor], shape: tuple[int, int] | int,
                 dtype: torch.dtype = torch.float64, device: torch.device | str = "cpu") -> None:
        if not callable(matmat):
            raise ValueError(f"matmat must be a callable X -> A X, got {type(matmat).__name__}")
        if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
            raise ValueError(f"dtype must be a real floating torch.dtype, got {dtype!r}")
        if isinstance(shape, int):
            shape = (shape, shape)
        if len(shape) != 2 or min(shape) < 1:
            raise ValueError(f"shape must be a pair of positive ints, got {shape}")
        self._fn = matmat
        self.shape = (int(shape[0]), int(shape[1]))
        self.dtype, self.device = dtype, torch.device(device)

    def _matmat(self, X: torch.Tensor) -> torch.Tensor:
        out = self._fn(X)
        if out.shape != (self.shape[0], X.shape[1]):
            raise ValueError(f"the matvec callable returned shape {tuple(out.shape)} for an input of shape "
                             f"{tuple(X.shape)}; expected ({self.shape[0]}, {X.shape[1]})")
        return out


def as_operator(op: LinearOperator | torch.Tensor | Callable, n: int | None = None,
                dtype: torch.dtype = torch.float64, device: torch.device | str = "cpu") -> LinearOperator:
    """Accept an operator, a dense matrix, a matvec callable (then ``n=`` gives the size), a linear_operator
    operator, or a ``scipy.sparse.linalg.LinearOperator`` (dtype from scipy, tensors on ``device``)."""
    from sciml.linalg import interop

    if isinstance(op, LinearOperator):
        if n is not None and op.shape != (n, n):
            raise ValueError(f"n={n} given but the operator has shape {op.shape}")
        return op
    if isinstance(op, torch.Tensor):
        if op.layout != torch.strided:
            from sciml.linalg.sparse import SparseOperator

            return as_operator(SparseOperator(op), n=n)
        return DenseOperator(op)
    if interop.is_linear_operator(op):
        return as_operator(interop.from_linear_operator(op), n=n)
    if interop.is_scipy_operator(op):
        return as_operator(interop.from_scipy(op, device=device), n=n)
    if callable(op):
        if n is None:
            raise ValueError("a matvec callable needs n= (the operator's size)")
        return MatvecOperator(op, (n, n), dtype, device)
    raise ValueError(f"expected a LinearOperator, a tensor or a callable, got {type(op).__name__}")


def check_shift(shift: float | torch.Tensor, what: str) -> float | torch.Tensor:
    """A real, finite scalar shift (Python number or 0-d real tensor, which may carry a gradient)."""
    if isinstance(shift, torch.Tensor):
        if shift.ndim != 0 or not shift.is_floating_point():
            raise ValueError(f"{what}: shift must be a real scalar (a number or a 0-d floating tensor), got a "
                             f"tensor of shape {tuple(shift.shape)} and dtype {shift.dtype}")
        if not bool(torch.isfinite(shift)):
            raise ValueError(f"{what}: shift must be finite, got {float(shift)}")
        return shift
    if isinstance(shift, bool) or not isinstance(shift, numbers.Real):
        raise ValueError(f"{what}: shift must be a real number, got {shift!r}")
    if not math.isfinite(float(shift)):
        raise ValueError(f"{what}: shift must be finite, got {shift}")
    return float(shift)
