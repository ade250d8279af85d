"""M-FAC: exact inverse products with a damped empirical Fisher of m gradients (spec curvature.md B.9).

``F = lambda I + G^T G / m`` for the gradients ``G`` (m, d). By Woodbury,
``F^{-1} = (1/lambda) [I - G^T A^{-1} G / lambda]`` with the small SPD matrix ``A = G G^T / lambda + m I`` (m, m),
factorised by Cholesky. This is the spec's "Cholesky construction": the unpivoted LU ``A = L~ U`` that the paper's
dynamic algorithm needs is ``U = diag(L) L^T`` for ``A = L L^T``, and every quantity of the paper's recursion
(``v_i``, ``den_i``) is a triangular solve with L. Costs: construction O(d m^2), IHVP O(d m + m^2), the inverse
diagonal O(d m^2), an update (ring buffer: the oldest gradient is replaced) O(d m + m^3).

Blocked variant (``block_size=c``, code ``prun.py`` ``HInvFastBlock``): F is taken block-diagonal over contiguous
coordinate blocks of size c (the last may be smaller), each block with its own m x m Cholesky factor, batched.

Reference: Frantar, Kurtic, Alistarh, "M-FAC: Efficient Matrix-Free Approximations of Second-Order Information",
NeurIPS 2021 (arXiv 2107.03356); code IST-DASLab/M-FAC ``optim.py`` (``HInvFastUpMulti``) and ``prun.py``.
Differences: Woodbury + Cholesky instead of the row recursion with ``torch.lu(pivot=False)`` (CUDA-only in torch,
so the official dynamic code fails on the CPU); an empty window is m zero gradients (as the optimizer starts).
"""

from __future__ import annotations

import math

import torch

from sciml.core import check_floating
from sciml.linalg import LinearOperator


class MFACInverseFisher(LinearOperator):
    """The damped empirical Fisher ``F = lambda I + G^T G / m`` (as a ``(d, d)`` operator) and its inverse.

    Args:
        grads: the m gradients as rows, shape (m, d); or an int m for an empty window of m zero gradients (then
            ``dim`` = d, and ``dtype``/``device``, default float64 on the CPU).
        damping: lambda > 0.
        block_size: treat F as block-diagonal over contiguous blocks of this many coordinates (None: one block).

    ``self @ x`` applies F; :meth:`ihvp` applies ``F^{-1}``; :meth:`inverse_diagonal` gives ``diag(F^{-1})``;
    :meth:`update` replaces the oldest gradient (ring buffer, pointer ``_next``). ``grads`` is the window (m, d).
    """

    def __init__(self, grads: torch.Tensor | int, damping: float, *, dim: int | None = None,
                 dtype: torch.dtype | None = None, device: torch.device | str | None = None,
                 block_size: int | None = None) -> None:
        if isinstance(grads, int) and not isinstance(grads, bool):
            if grads < 1:
                raise ValueError(f"the window size must be an int m >= 1, got {grads}")
            if not isinstance(dim, int) or dim < 1:
                raise ValueError(f"an empty window needs dim = the gradient length (int >= 1), got {dim!r}")
            grads = torch.zeros(grads, dim, dtype=dtype or torch.float64, device=device)
        check_floating(grads, "grads")
        if grads.ndim != 2 or min(grads.shape) < 1:
            raise ValueError(f"grads must be a non-empty (m, d) matrix of gradients as rows, got {tuple(grads.shape)}")
        if not (isinstance(damping, (int, float)) and math.isfinite(damping) and damping > 0):
            raise ValueError(f"damping must be a finite number > 0, got {damping!r}")
        self.m, self.d = grads.shape
        if block_size is None:
            block_size = self.d
        if isinstance(block_size, bool) or not isinstance(block_size, int) or block_size < 1:
            raise ValueError(f"block_size must be a positive int or None, got {block_size!r}")
        self.block_size = min(block_size, self.d)
        self.damping = float(damping)
        self.shape = (self.d, self.d)
        self.dtype, self.device = grads.dtype, grads.device
        self.num_blocks = -(-self.d // self.block_size)
        self._pad = self.num_blocks * self.block_size - self.d
        self._blocks = self._blocked(grads.clone())  # (nb, m, c): zero-padded last block
        self._gram = self._blocks @ self._blocks.mT  # (nb, m, m)
        self._next = 0
        self._factor()

    # ---- layout ------------------------------------------------------------------------------------------------
    def _blocked(self, X: torch.Tensor) -> torch.Tensor:
        """(k, d) -> (nb, k, c) with zero padding."""
        X = torch.nn.functional.pad(X, (0, self._pad))
        return X.reshape(X.shape[0], self.num_blocks, self.block_size).transpose(0, 1)

    def _unblocked(self, Xb: torch.Tensor) -> torch.Tensor:
        """(nb, k, c) -> (k, d)."""
        return Xb.transpose(0, 1).reshape(Xb.shape[1], -1)[:, :self.d]

    @property
    def grads(self) -> torch.Tensor:
        """The gradient window, shape (m, d)."""
        return self._unblocked(self._blocks)

    def _factor(self) -> None:
        eye = torch.eye(self.m, dtype=self.dtype, device=self.device)
        A = self._gram / self.damping + self.m * eye  # (nb, m, m), SPD
        self._chol, info = torch.linalg.cholesky_ex(0.5 * (A + A.mT))
        if bool((info != 0).any()):
            raise ValueError("G G^T / lambda + m I is not numerically positive definite; raise damping or use float64")

    # ---- products -----------------------------------------------------------------------------------------------
    def _matmat(self, X: torch.Tensor) -> torch.Tensor:
        """F X, block-diagonal. Shapes: (d, k) -> (d, k)."""
        Xb = self._blocked(X.mT)  # (nb, k, c)
        GX = Xb @ self._blocks.mT  # (nb, k, m)
        return (self.damping * X.mT + self._unblocked(GX @ self._blocks) / self.m).mT

    def ihvp(self, x: torch.Tensor) -> torch.Tensor:
        """``F^{-1} x`` for x of shape (d,) or (d, k)."""
        if not isinstance(x, torch.Tensor) or x.ndim not in (1, 2) or x.shape[0] != self.d:
            raise ValueError(f"x must have shape ({self.d},) or ({self.d}, k), got {getattr(x, 'shape', x)}")
        X = x.reshape(self.d, -1).to(self.dtype)
        Xb = self._blocked(X.mT)  # (nb, k, c)
        q = torch.cholesky_solve(self._blocks @ Xb.mT, self._chol)  # A^{-1} G x per block, (nb, m, k)
        out = X.mT / self.damping - self._unblocked((self._blocks.mT @ q).mT) / self.damping ** 2
        return out.mT.reshape(x.shape)

    def inverse_diagonal(self) -> torch.Tensor:
        """``diag(F^{-1}) = 1/lambda - colsum((L^{-1} G)^2) / lambda^2`` (OBS saliencies). Shape (d,)."""
        Z = torch.linalg.solve_triangular(self._chol, self._blocks, upper=False)  # (nb, m, c)
        return 1.0 / self.damping - self._unblocked((Z * Z).sum(1, keepdim=True))[0] / self.damping ** 2

    def update(self, g: torch.Tensor) -> None:
        """Replace the oldest gradient by ``g`` (d,): one row/column of each block's Gram matrix, new factors."""
        if not isinstance(g, torch.Tensor) or g.shape != (self.d,):
            raise ValueError(f"g must have shape ({self.d},), got {getattr(g, 'shape', g)}")
        if not bool(torch.isfinite(g).all()):
            raise ValueError("g contains NaN or Inf")
        i = self._next
        gb = self._blocked(g.to(self.dtype)[None])  # (nb, 1, c)
        self._blocks[:, i] = gb[:, 0]
        row = (self._blocks @ gb.mT)[..., 0]  # (nb, m)
        self._gram[:, i, :] = row
        self._gram[:, :, i] = row
        self._next = (i + 1) % self.m
        self._factor()

    def update_ihvp(self, g: torch.Tensor) -> torch.Tensor:
        """Insert ``g`` into the window, then return ``F^{-1} g`` (one M-FAC optimizer direction)."""
        self.update(g)
        return self.ihvp(g)
