"""Kronecker-structured GP prior on a tensor grid: factor Choleskys, log-det, quadratic form, grid derivatives.

With a product kernel ``k(x, x') = prod_j k_j(x_j, x'_j)`` on a grid ``X_1 x ... x X_D`` every covariance is a
Kronecker product, so nothing of size ``M x M`` (``M = prod M_j``) is formed:

* ``log|C| = sum_j (M / M_j) log|C_j|``;
* ``C^{-1} vec(U) = vec(U x_1 C_1^{-1} ... x_D C_D^{-1})`` (one mode product per factor);
* ``d^a u / dx_j^a`` at the grid (posterior mean given U) ``= U x_j (K_j^(a) C_j^{-1})``: the cross-covariance
  is ``K_1 ⊗ .. ⊗ K_j^(a) ⊗ .. ⊗ K_D`` and every other factor cancels against ``C^{-1}``.

The prior's solve and log-determinant go through ``sciml.linalg.KroneckerOperator`` (``method="cholesky"``:
per-factor Cholesky, differentiable); the derivative, prediction and whitening maps use the same operator's
triangular factors (``KroneckerOperator.cholesky_factors``), so there is one Cholesky source.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from sciml.gp_pde.kernels import SpectralMixture1D, is_uniform
from sciml.linalg import KroneckerOperator, mode_product, multi_mode_product


def _along(U: torch.Tensor, mode: int, fn) -> torch.Tensor:
    """Apply ``fn`` ((M_j, K) -> (M_j, K)) to every fibre of mode ``mode`` of U."""
    moved = torch.movedim(U, mode, 0)
    shape = moved.shape
    return torch.movedim(fn(moved.reshape(shape[0], -1)).reshape(shape), 0, mode)


class KroneckerGridPrior:
    """The prior ``vec(U) ~ N(0, C_1 ⊗ ... ⊗ C_D)``, ``C_j = K_j(X_j, X_j) + jitter I``, at fixed parameters.

    Build a fresh one whenever the kernel parameters change (once per optimisation step); everything it
    computes stays differentiable with respect to those parameters.

    Args:
        kernels: one :class:`SpectralMixture1D` per dimension.
        grids: one 1-D tensor of grid coordinates per dimension (uniform grids use the Toeplitz fast path).
        jitter: added to each factor's diagonal (reference code: 1e-6, tuned for float64).
        max_order: highest derivative order whose matrices are evaluated with the factors (uniform grids).
        uniform: per dimension, whether the grid is uniform (checked when omitted; the solver passes it to avoid
            a device synchronisation per step).

    Shapes: U (M_1, ..., M_D).
    """

    def __init__(self, kernels: Sequence[SpectralMixture1D], grids: Sequence[torch.Tensor],
                 jitter: float = 1e-6, max_order: int = 2, uniform: Sequence[bool] | None = None) -> None:
        if len(kernels) != len(grids):
            raise ValueError(f"got {len(kernels)} kernels for {len(grids)} grid dimensions")
        self.kernels, self.grids, self.jitter = list(kernels), list(grids), float(jitter)
        self.sizes = tuple(int(g.numel()) for g in grids)
        self.cov: list[torch.Tensor] = []
        # Kernel matrices of all orders up to max_order from one evaluation per lag (uniform grids).
        self._mats: list[list[torch.Tensor] | None] = []
        if uniform is None:
            uniform = [x.numel() > 2 and is_uniform(x) for x in self.grids]
        for kern, x, uni in zip(self.kernels, self.grids, uniform):
            mats = kern.toeplitz(x, max_order) if uni else None
            self._mats.append(mats)
            K = mats[0] if mats is not None else kern.matrix(x)
            self.cov.append(K + self.jitter * torch.eye(x.numel(), dtype=x.dtype, device=x.device))
        self._deriv: dict[tuple[int, int], torch.Tensor] = {}
        try:
            self._operator = KroneckerOperator(self.cov)
            # one source of truth: the operator's own per-factor Choleskys (the ones its solve/logdet use)
            self.chol = list(self._operator.cholesky_factors())
        except ValueError as err:
            raise ValueError(f"a kernel factor of the grid {self.sizes} is not finite and positive definite even "
                             f"with jitter {self.jitter:g}; raise the jitter or use float64 ({err})") from None

    @property
    def size(self) -> int:
        n = 1
        for s in self.sizes:
            n *= s
        return n

    def operator(self) -> KroneckerOperator:
        """``C`` as a :class:`sciml.linalg.KroneckerOperator` (never formed densely)."""
        return self._operator

    def logdet(self) -> torch.Tensor:
        """``log|C| = sum_j (M / M_j) * 2 sum log diag(L_j)`` (``KroneckerOperator.logdet``, Cholesky route)."""
        return self._operator.logdet(method="cholesky")

    def solve(self, U: torch.Tensor) -> torch.Tensor:
        """``C^{-1} vec(U)`` as a tensor of U's shape (``KroneckerOperator.solve``, Cholesky route)."""
        return self._operator.solve(U.reshape(-1), method="cholesky").reshape(U.shape)

    def quad(self, U: torch.Tensor) -> torch.Tensor:
        """``vec(U)^T C^{-1} vec(U)``."""
        return (U * self.solve(U)).sum()

    def color(self, Z: torch.Tensor) -> torch.Tensor:
        """``(L_1 ⊗ ... ⊗ L_D) vec(Z)``: maps white noise to a draw from the prior."""
        return multi_mode_product(Z, self.chol)

    def whiten(self, U: torch.Tensor) -> torch.Tensor:
        """Inverse of :meth:`color`."""
        for j, L in enumerate(self.chol):
            U = _along(U, j, lambda B, L=L: torch.linalg.solve_triangular(L, B, upper=False))
        return U

    def derivative_matrix(self, dim: int, order: int) -> torch.Tensor:
        """``K_j^(a) C_j^{-1}`` (cached): maps grid values to a-th derivatives along ``dim`` at the grid."""
        key = (dim, order)
        if key not in self._deriv:
            mats = self._mats[dim]
            Ka = mats[order] if mats is not None and order < len(mats) else \
                self.kernels[dim].matrix(self.grids[dim], order=order)
            # K^(a) C^{-1} = (C^{-1} K^(a)T)^T; K^(a) is antisymmetric for odd a, so the transpose matters.
            self._deriv[key] = torch.cholesky_solve(Ka.mT, self.chol[dim]).mT
        return self._deriv[key]

    def derivative(self, U: torch.Tensor, orders: Sequence[int]) -> torch.Tensor:
        """Posterior-mean mixed derivative ``d^{a_1 + .. + a_D} u / dx_1^{a_1} .. dx_D^{a_D}`` at the grid."""
        if len(orders) != len(self.sizes):
            raise ValueError(f"orders {tuple(orders)} must have one entry per dimension ({len(self.sizes)})")
        mats = [self.derivative_matrix(j, a) if a else None for j, a in enumerate(orders)]
        return multi_mode_product(U, mats) if any(m is not None for m in mats) else U

    def cross_matrix(self, dim: int, points: torch.Tensor, order: int = 0) -> torch.Tensor:
        """``K_j^(a)(points, X_j) C_j^{-1}``: interpolation weights for values (order 0) or derivatives.

        Shapes: points (n,) -> (n, M_j).
        """
        Ka = self.kernels[dim].matrix(points, self.grids[dim], order=order)
        return torch.cholesky_solve(Ka.mT, self.chol[dim]).mT

    def midpoint_matrix(self, dim: int, order: int = 0) -> torch.Tensor:
        """``cross_matrix`` at the midpoints of a uniform grid from 2 n - 2 lag evaluations (Toeplitz gather).

        Midpoint i and grid point l differ by ``(i - l + 1/2) h``, so O(n Q) kernel evaluations instead of
        O(n^2 Q) (the dense form holds n^2 Q temporaries: ~300 MB at n = 256, Q = 30). Shapes: -> (n - 1, n).
        """
        x = self.grids[dim]
        n = x.numel()
        h = (x[-1] - x[0]) / (n - 1)
        offsets = torch.arange(-(n - 1), n - 1, device=x.device)            # i - l in [-(n-1), n-2]
        values = self.kernels[dim].values((offsets.to(x.dtype) + 0.5) * h, order)
        i, l = torch.arange(n - 1, device=x.device), torch.arange(n, device=x.device)
        Ka = values[i[:, None] - l[None, :] + (n - 1)]
        return torch.cholesky_solve(Ka.mT, self.chol[dim]).mT

    def predict_grid(self, U: torch.Tensor, axes: Sequence[torch.Tensor],
                     orders: Sequence[int] | None = None) -> torch.Tensor:
        """Posterior mean (or derivative) on the tensor grid ``axes[0] x ... x axes[D-1]``."""
        orders = orders or [0] * len(self.sizes)
        return multi_mode_product(U, [self.cross_matrix(j, a, o) for j, (a, o) in enumerate(zip(axes, orders))])

    def predict_points(self, U: torch.Tensor, points: torch.Tensor,
                       orders: Sequence[int] | None = None) -> torch.Tensor:
        """Posterior mean (or derivative) at scattered points. Shapes: points (n, D) -> (n,)."""
        orders = orders or [0] * len(self.sizes)
        out = None
        for j, o in enumerate(orders):
            A = self.cross_matrix(j, points[:, j], o)                    # (n, M_j)
            if out is None:
                out = mode_product(U, A, 0)                             # (n, M_2, ..., M_D)
            else:
                # contract mode 1 of (n, M_j, ...) with the row of A belonging to the same point
                out = torch.einsum("pi...,pi->p...", out, A)
        return out
