"""gpytorch wrappers of the exact MLP kernels (imported lazily: gpytorch is an optional dependency).

``NNGPKernel(depth=2, activation="relu", sigma_w=..., sigma_b=..., parameterization="ntk")`` and ``NTKKernel``
take mlp_kernel's keyword arguments; the settings are fixed (not learned) hyperparameters this round. Wrap in
``gpytorch.kernels.ScaleKernel`` for a learned output scale.
"""

from __future__ import annotations

import gpytorch
import torch

from sciml.kernels.dual import resolve_activation
from sciml.kernels.mlp import _check_settings, mlp_kernel, mlp_kernel_diag


class _MLPKernelBase(gpytorch.kernels.Kernel):
    _which = "nngp"
    is_stationary = False

    def __init__(self, *, depth: int = 1, activation="relu", sigma_w: float = 1.0, sigma_b: float = 0.0,
                 parameterization: str = "ntk", width: int | None = None, deg: int = 64, **kwargs) -> None:
        _check_settings(depth, sigma_w, sigma_b, parameterization, width)
        resolve_activation(activation, deg)           # fail now on an unknown activation
        super().__init__(**kwargs)
        self.settings = dict(depth=depth, activation=activation, sigma_w=sigma_w, sigma_b=sigma_b,
                             parameterization=parameterization, width=width, deg=deg)

    def forward(self, x1: torch.Tensor, x2: torch.Tensor, diag: bool = False,
                last_dim_is_batch: bool = False, **params) -> torch.Tensor:
        if last_dim_is_batch:
            raise ValueError("last_dim_is_batch is not supported by the MLP kernels")
        if diag:
            if x1.shape != x2.shape or not torch.equal(x1, x2):
                # k(x1_i, x2_i) for distinct points: the i-th diagonal of the cross kernel
                full = getattr(mlp_kernel(x1, x2, **self.settings), self._which)
                return torch.diagonal(full, dim1=-2, dim2=-1)
            return getattr(mlp_kernel_diag(x1, **self.settings), self._which)
        same = x1 is x2 or (x1.shape == x2.shape and torch.equal(x1, x2))
        return getattr(mlp_kernel(x1, None if same else x2, **self.settings), self._which)


class NNGPKernel(_MLPKernelBase):
    """Infinite-width NNGP kernel of an MLP as a gpytorch kernel (see sciml.kernels.mlp_kernel)."""

    _which = "nngp"


class NTKKernel(_MLPKernelBase):
    """Infinite-width NTK of an MLP as a gpytorch kernel (see sciml.kernels.mlp_kernel)."""

    _which = "ntk"
