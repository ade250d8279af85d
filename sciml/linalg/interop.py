"""Conversion of sciml operators to and from linear_operator (gpytorch's engine) and scipy's LinearOperator.

Both peers are imported lazily, inside the functions: sciml.linalg works without them. Structure is kept where
both sides have it (Kronecker <-> ``KroneckerProductLinearOperator``, dense <-> ``DenseLinearOperator``);
anything else crosses as a matrix-free matvec wrapper, so no N x N matrix is formed by a conversion.

scipy works in numpy on the CPU: ``to_scipy`` copies each block to the host and back (a CUDA operator works,
at the cost of the transfers); ``from_scipy`` applies the scipy operator to host copies and returns tensors
on the requested device.
"""

from __future__ import annotations

from functools import lru_cache

import torch

from sciml.linalg.kronecker import KroneckerOperator
from sciml.linalg.operator import DenseOperator, LinearOperator, MatvecOperator


# ---- linear_operator --------------------------------------------------------------------------------------------
@lru_cache(maxsize=1)
def _matvec_linear_operator_class():
    """A linear_operator subclass around a pair of callables (built once, on first use)."""
    from linear_operator.operators import LinearOperator as PeerOperator

    class SimlMatmulLinearOperator(PeerOperator):
        # linear_operator rebuilds operators from (tensors, kwargs) inside its autograd functions, so the
        # callables travel as keyword arguments and a 0-element tensor carries dtype and device.
        def __init__(self, placeholder: torch.Tensor, matmat=None, rmatmat=None, shape=None):
            super().__init__(placeholder, matmat=matmat, rmatmat=rmatmat, shape=shape)
            self.placeholder = placeholder
            self._fn, self._rfn, self._shape = matmat, rmatmat, torch.Size(shape)

        def _matmul(self, rhs: torch.Tensor) -> torch.Tensor:
            if rhs.ndim == 1:
                return self._fn(rhs[:, None])[:, 0]
            if rhs.ndim > 2:  # batch of blocks (..., n, k): fold the batch into the columns
                moved = rhs.movedim(-2, 0)
                out = self._fn(moved.reshape(rhs.shape[-2], -1))
                return out.reshape(self._shape[0], *moved.shape[1:]).movedim(0, -2)
            return self._fn(rhs)

        def _size(self) -> torch.Size:
            return self._shape

        def _transpose_nonbatch(self):
            return type(self)(self.placeholder, matmat=self._rfn, rmatmat=self._fn,
                              shape=(self._shape[1], self._shape[0]))

    return SimlMatmulLinearOperator


def to_linear_operator(op: LinearOperator):
    """A ``linear_operator`` operator equal to ``op`` (KroneckerProduct / Dense kept, otherwise matrix-free)."""
    if not isinstance(op, LinearOperator):
        raise ValueError(f"to_linear_operator expects a sciml LinearOperator, got {type(op).__name__}")
    from linear_operator.operators import DenseLinearOperator, KroneckerProductLinearOperator

    if isinstance(op, KroneckerOperator):
        return KroneckerProductLinearOperator(*[DenseLinearOperator(f) for f in op.factors])
    if isinstance(op, DenseOperator):
        return DenseLinearOperator(op.matrix)
    transposed = op.T
    cls = _matvec_linear_operator_class()
    return cls(torch.zeros(0, dtype=op.dtype, device=op.device), matmat=op._apply_unchecked,
               rmatmat=transposed._apply_unchecked, shape=op.shape)


def is_linear_operator(obj) -> bool:
    """True when ``obj`` is a linear_operator operator (checked without importing linear_operator)."""
    return any(c.__module__.startswith("linear_operator.") for c in type(obj).__mro__)


def from_linear_operator(lo) -> LinearOperator:
    """A sciml operator equal to a 2-D ``linear_operator`` operator (Kronecker and dense structure kept)."""
    if not is_linear_operator(lo):
        raise ValueError(f"from_linear_operator expects a linear_operator operator, got {type(lo).__name__}")
    from linear_operator.operators import DenseLinearOperator, KroneckerProductLinearOperator

    if lo.dim() != 2:
        raise ValueError(f"only 2-D (non-batched) linear_operator operators convert, got shape {tuple(lo.shape)}")
    if isinstance(lo, KroneckerProductLinearOperator):
        return KroneckerOperator([sub.to_dense() for sub in lo.linear_ops])
    if isinstance(lo, DenseLinearOperator):
        return DenseOperator(lo.tensor)
    return MatvecOperator(lambda X: lo @ X, (int(lo.shape[0]), int(lo.shape[1])), lo.dtype, lo.device)


# ---- scipy ------------------------------------------------------------------------------------------------------
def to_scipy(op: LinearOperator):
    """A ``scipy.sparse.linalg.LinearOperator`` applying ``op`` (numpy in and out, host copies per block)."""
    import numpy as np
    from scipy.sparse.linalg import LinearOperator as ScipyOperator

    if not isinstance(op, LinearOperator):
        raise ValueError(f"to_scipy expects a sciml LinearOperator, got {type(op).__name__}")

    def wrap(apply):
        def numpy_apply(x):
            X = torch.as_tensor(np.asarray(x), dtype=op.dtype, device=op.device)
            with torch.no_grad():
                return apply(X).cpu().numpy()
        return numpy_apply

    transposed = op.T
    dtype = torch.empty(0, dtype=op.dtype).numpy().dtype
    return ScipyOperator(op.shape, matvec=wrap(op._apply_unchecked), matmat=wrap(op._apply_unchecked),
                         rmatvec=wrap(transposed._apply_unchecked), rmatmat=wrap(transposed._apply_unchecked),
                         dtype=dtype)


def is_scipy_operator(obj) -> bool:
    """True for a scipy.sparse.linalg.LinearOperator (checked without importing scipy)."""
    return any(c.__module__.startswith("scipy.sparse.linalg") and c.__name__ == "LinearOperator"
               for c in type(obj).__mro__)


def from_scipy(scipy_op, dtype: torch.dtype | None = None, device: torch.device | str = "cpu") -> LinearOperator:
    """A sciml operator applying a scipy LinearOperator (default dtype: the scipy operator's, as torch)."""
    import numpy as np

    if not is_scipy_operator(scipy_op):
        raise ValueError(f"from_scipy expects a scipy.sparse.linalg.LinearOperator, got {type(scipy_op).__name__}")
    if dtype is None:
        dtype = torch.from_numpy(np.zeros(0, dtype=scipy_op.dtype)).dtype
    if not dtype.is_floating_point:
        raise ValueError(f"from_scipy needs a real floating dtype, got {dtype} (pass dtype=torch.float64)")

    def apply(X: torch.Tensor) -> torch.Tensor:
        out = scipy_op.matmat(X.detach().cpu().numpy())
        return torch.as_tensor(np.asarray(out), dtype=dtype, device=X.device)

    return MatvecOperator(apply, (int(scipy_op.shape[0]), int(scipy_op.shape[1])), dtype, device)
