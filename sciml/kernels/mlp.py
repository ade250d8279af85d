"""Exact infinite-width NNGP and NTK of a fully connected network (spec ssm.md 2.2.1 and 2.2.3).

Network (NTK parameterization, neural-tangents' ``parameterization='ntk'``), fan-in m of each dense layer:
``z = (sigma_w / sqrt(m)) W x + sigma_b b`` with all W, b entries iid N(0, 1); ``depth`` hidden layers of
activation phi, then a scalar readout that also carries ``sigma_w``, ``sigma_b``. Recursion (float64):

    K^1 = sw^2 X1 X2^T / d + sb^2 ;          Theta^1 = K^1
    for l = 1..depth:  Vphi, Vder = V(K^l)
                       K^{l+1} = sw^2 Vphi + sb^2 ;  Theta^{l+1} = K^{l+1} + sw^2 Vder * Theta^l

Standard parameterization (W ~ N(0, sw^2/m), b ~ N(0, sb^2) used directly) has the same NNGP but an NTK whose
weight term is m * (input Gram) + 1 instead of sw^2 (input Gram) + sb^2: it grows with the hidden ``width``,
which must then be given (checked against J J^T of a standard-parameterized FiniteMLP in the tests;
neural-tangents' standard NTK with s = 1 should agree but was not run here).
"""

from __future__ import annotations

import dataclasses

import torch

from sciml.core import Result, check_floating
from sciml.kernels.dual import Activation, resolve_activation

PARAMETERIZATIONS = ("ntk", "standard")


@dataclasses.dataclass(frozen=True)
class MLPKernel(Result):
    """Infinite-width kernels of an MLP between two input sets.

    Attributes:
        nngp: (n1, n2) output covariance of the random network (Gaussian-process limit).
        ntk: (n1, n2) neural tangent kernel at initialization (deterministic limit).
        depth, activation, parameterization: the settings they were computed with.
    """

    nngp: torch.Tensor
    ntk: torch.Tensor
    depth: int
    activation: str
    parameterization: str


def _check_settings(depth: int, sigma_w: float, sigma_b: float, parameterization: str, width: int | None) -> None:
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 0:
        raise ValueError(f"depth (number of hidden layers) must be an integer >= 0, got {depth!r}")
    for name, value in (("sigma_w", sigma_w), ("sigma_b", sigma_b)):
        if not isinstance(value, (int, float)) or not (value >= 0 and value < float("inf")):
            raise ValueError(f"{name} is a standard deviation: a finite number >= 0, got {value!r}")
    if parameterization not in PARAMETERIZATIONS:
        raise ValueError(f"parameterization must be one of {PARAMETERIZATIONS}, got {parameterization!r}")
    if parameterization == "standard" and (isinstance(width, bool) or not isinstance(width, int) or width < 1):
        raise ValueError("parameterization='standard' needs the hidden width (an integer >= 1): its NTK grows "
                         f"with width; got width={width!r}")


def _check_inputs(X1: torch.Tensor, X2: torch.Tensor | None) -> None:
    check_floating(X1, "X1")
    if X1.ndim < 2:
        raise ValueError(f"X1 must have shape (..., n1, d), got {tuple(X1.shape)}")
    if X2 is not None:
        check_floating(X2, "X2")
        if X2.ndim < 2 or X2.shape[-1] != X1.shape[-1]:
            raise ValueError(f"X2 must have shape (..., n2, d) with d = {X1.shape[-1]} like X1, "
                             f"got {tuple(X2.shape)}")
    if X1.is_complex() or (X2 is not None and X2.is_complex()):
        raise ValueError("inputs must be real")


def mlp_kernel(X1: torch.Tensor, X2: torch.Tensor | None = None, *, depth: int = 1,
               activation: str | Activation = "relu", sigma_w: float = 1.0, sigma_b: float = 0.0,
               parameterization: str = "ntk", width: int | None = None, deg: int = 64) -> MLPKernel:
    """Exact NNGP and NTK of an MLP with ``depth`` hidden layers (see the module docstring).

    Args:
        X1: (n1, d) inputs (leading batch dims allowed); X2: (n2, d) or None (= X1).
        depth: number of hidden layers (0 = a linear model).
        activation: "relu", "erf" (closed forms) or an elementwise torch callable (Gauss-Hermite, ``deg`` nodes
            per axis; its derivative by autograd).
        sigma_w, sigma_b: weight and bias standard deviations of every layer, the readout included.
        parameterization: "ntk" (default) or "standard" (then ``width`` = hidden width is required).

    Returns:
        :class:`MLPKernel` with ``nngp`` and ``ntk`` of shape (n1, n2) in X1's dtype and device.
    """
    _check_settings(depth, sigma_w, sigma_b, parameterization, width)
    _check_inputs(X1, X2)
    _, V = resolve_activation(activation, deg)
    name = activation if isinstance(activation, str) else getattr(activation, "__name__", "callable")
    x1 = X1.to(torch.float64)
    x2 = x1 if X2 is None else X2.to(device=X1.device, dtype=torch.float64)
    d = x1.shape[-1]
    k12 = x1 @ x2.transpose(-1, -2) / d                       # (..., n1, n2) input Gram
    k11 = (x1 * x1).sum(-1).unsqueeze(-1) / d                 # (..., n1, 1)
    k22 = (x2 * x2).sum(-1).unsqueeze(-2) / d                 # (..., 1, n2)
    nngp, ntk = propagate((k11, k12, k22), V, depth, sigma_w, sigma_b, parameterization, width, d)
    if X2 is None:   # symmetric: make it exactly so (rounding in arccos/arcsin is not symmetric)
        nngp, ntk = (nngp + nngp.transpose(-1, -2)) / 2, (ntk + ntk.transpose(-1, -2)) / 2
    out = {"dtype": X1.dtype, "device": X1.device}
    return MLPKernel(nngp.to(**out), ntk.to(**out), depth, name, parameterization)


def mlp_kernel_diag(X: torch.Tensor, **settings) -> MLPKernel:
    """Diagonals k(x_i, x_i) only (shape (..., n)), O(n (d + depth)); same keyword arguments as mlp_kernel."""
    _check_settings(settings.get("depth", 1), settings.get("sigma_w", 1.0), settings.get("sigma_b", 0.0),
                    settings.get("parameterization", "ntk"), settings.get("width"))
    _check_inputs(X, None)
    activation = settings.get("activation", "relu")
    _, V = resolve_activation(activation, settings.get("deg", 64))
    x = X.to(torch.float64)
    k = (x * x).sum(-1) / x.shape[-1]                         # (..., n)
    nngp, ntk = propagate((k, k, k), V, settings.get("depth", 1), settings.get("sigma_w", 1.0),
                          settings.get("sigma_b", 0.0), settings.get("parameterization", "ntk"),
                          settings.get("width"), x.shape[-1])
    name = activation if isinstance(activation, str) else getattr(activation, "__name__", "callable")
    return MLPKernel(nngp.to(X.dtype), ntk.to(X.dtype), settings.get("depth", 1), name,
                     settings.get("parameterization", "ntk"))


def propagate(gram: tuple[torch.Tensor, torch.Tensor, torch.Tensor], V, depth: int, sigma_w: float,
              sigma_b: float, parameterization: str, width: int | None, d_in: int
              ) -> tuple[torch.Tensor, torch.Tensor]:
    """Run the 2.2.3 recursion on (diag1, cross, diag2) input Grams (x.x'/d); returns (NNGP, NTK) of the cross part.

    The diagonals travel with the cross term because every V needs k11 and k22 of its pair.
    """
    sw2, sb2 = sigma_w ** 2, sigma_b ** 2

    def weight_term(g: torch.Tensor, fan_in: int) -> torch.Tensor:
        # d output / d (that layer's weights and bias), summed: NTK param sw^2 g + sb^2; standard m g + 1.
        return sw2 * g + sb2 if parameterization == "ntk" else fan_in * g + 1.0

    K = tuple(sw2 * g + sb2 for g in gram)
    Theta = tuple(weight_term(g, d_in) for g in gram)
    for _ in range(depth):
        (v11, d11), (v12, d12), (v22, d22) = V(K[0], K[0], K[0]), V(*K), V(K[2], K[2], K[2])
        V_phi, V_der = (v11, v12, v22), (d11, d12, d22)
        K = tuple(sw2 * v + sb2 for v in V_phi)
        Theta = tuple(weight_term(v, width or 0) + sw2 * dv * t for v, dv, t in zip(V_phi, V_der, Theta))
    return K[1], Theta[1]
