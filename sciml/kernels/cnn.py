"""Exact NNGP / NTK of convolutional networks with weight sharing (spec ssm.md 2.2.4), 1-D and 2-D.

Network (NTK parameterization; every weight and bias entry N(0, 1)), inputs X of shape (n, P, C) or (n, H, W, C):
``depth`` conv layers of odd filter size k, stride 1, ``padding`` "circular" or "same" (zero padding), each
``z = sw / sqrt(k^D fan_in) conv(W, x) + sb b`` followed by phi; then the readout: "gap" (global average pooling and a
dense layer ``sw / sqrt(N)``) or "flatten" (a dense layer on all N P features, ``sw / sqrt(N P)``), both with bias sb.

Kernels live on (n1, n2, *space, *space) tensors. With S_k(M)[p, q] = k^-D sum_delta M[p + delta, q + delta]
(out-of-range terms are 0 under "same"; the 1/k^D normalisation stays):

    K^1 = sw^2 S_k(Gram) + sb^2, Gram[p, q] = x_p . x'_q / C ;   Theta^1 = K^1
    K^{l+1} = sw^2 S_k(Vphi(K^l)) + sb^2 ;   Theta^{l+1} = K^{l+1} + sw^2 S_k(Vder(K^l) * Theta^l)
    GAP:     NNGP = sw^2 mean_{p,q} Vphi + sb^2,  NTK = NNGP + sw^2 mean_{p,q} Vder * Theta
    flatten: the same with the mean over p = q only.
"""

from __future__ import annotations

import dataclasses
import itertools
import math

import torch
from torch import nn

from sciml.core import Result, check_floating
from sciml.kernels.dual import Activation, resolve_activation

PADDINGS = ("circular", "same")
READOUTS = ("gap", "flatten")


@dataclasses.dataclass(frozen=True)
class CNNKernel(Result):
    """Infinite-width kernels (n1, n2) of a CNN and the settings they were computed with."""

    nngp: torch.Tensor
    ntk: torch.Tensor
    depth: int
    filter_size: int
    padding: str
    readout: str


def _check_cnn_settings(depth, filter_size, padding, readout, sigma_w, sigma_b) -> None:
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
        raise ValueError(f"depth (number of conv layers) must be an integer >= 1, got {depth!r}")
    if isinstance(filter_size, bool) or not isinstance(filter_size, int) or filter_size < 1 or filter_size % 2 == 0:
        raise ValueError(f"filter_size must be an odd integer >= 1 (centred filters), got {filter_size!r}")
    if padding not in PADDINGS:
        raise ValueError(f"padding must be one of {PADDINGS}, got {padding!r}")
    if readout not in READOUTS:
        raise ValueError(f"readout must be one of {READOUTS}, got {readout!r}")
    for name, value in (("sigma_w", sigma_w), ("sigma_b", sigma_b)):
        if not isinstance(value, (int, float)) or not (0 <= value < float("inf")):
            raise ValueError(f"{name} is a standard deviation: a finite number >= 0, got {value!r}")


def _check_images(X1: torch.Tensor, X2: torch.Tensor | None) -> int:
    """Spatial rank D (1 or 2) of inputs (n, *space, C)."""
    check_floating(X1, "X1")
    if X1.is_complex() or X1.ndim not in (3, 4):
        raise ValueError(f"X1 must be real with shape (n, P, C) or (n, H, W, C), got {tuple(X1.shape)}")
    if X2 is not None:
        check_floating(X2, "X2")
        if X2.shape[1:] != X1.shape[1:]:
            raise ValueError(f"X2 must have the per-sample shape {tuple(X1.shape[1:])} of X1, got {tuple(X2.shape[1:])}")
    return X1.ndim - 2


def _shift(M: torch.Tensor, delta: int, dim: int, circular: bool) -> torch.Tensor:
    """out[..., p, ...] = M[..., p + delta, ...] along ``dim`` (wrapping, or 0 when p + delta is out of range)."""
    if delta == 0:
        return M
    out = torch.roll(M, -delta, dims=dim)
    if not circular:
        size = M.shape[dim]
        idx = torch.arange(size, device=M.device)
        keep = ((idx + delta >= 0) & (idx + delta < size)).to(M.dtype)
        shape = [1] * M.ndim
        shape[dim] = size
        out = out * keep.reshape(shape)
    return out


def _offsets(k: int, D: int):
    half = k // 2
    return list(itertools.product(range(-half, half + 1), repeat=D))


def _smooth(M: torch.Tensor, k: int, D: int, space_dims: list[tuple[int, ...]], circular: bool) -> torch.Tensor:
    """S_k: average of M shifted by the same offset on every group of spatial dims (weight sharing)."""
    out = torch.zeros_like(M)
    for delta in _offsets(k, D):
        shifted = M
        for dims in space_dims:
            for axis, d in zip(dims, delta):
                shifted = _shift(shifted, d, axis, circular)
        out = out + shifted
    return out / k ** D


def cnn_kernel(X1: torch.Tensor, X2: torch.Tensor | None = None, *, depth: int = 1, filter_size: int = 3,
               padding: str = "circular", readout: str = "gap", activation: str | Activation = "relu",
               sigma_w: float = 1.0, sigma_b: float = 0.0, deg: int = 64) -> CNNKernel:
    """Exact NNGP and NTK of a CNN (module docstring) between inputs (n1, *space, C) and (n2, *space, C).

    Memory O(n1 n2 P^2) with P the number of positions (8 x 8 images: P^2 = 4096 numbers per pair).
    """
    _check_cnn_settings(depth, filter_size, padding, readout, sigma_w, sigma_b)
    D = _check_images(X1, X2)
    _, V = resolve_activation(activation, deg)
    circ = padding == "circular"
    sw2, sb2 = sigma_w ** 2, sigma_b ** 2
    x1 = X1.to(torch.float64)
    x2 = x1 if X2 is None else X2.to(device=X1.device, dtype=torch.float64)
    n1, n2, space, C = x1.shape[0], x2.shape[0], tuple(x1.shape[1:-1]), x1.shape[-1]
    P = math.prod(space)
    cross_dims = [tuple(range(2, 2 + D)), tuple(range(2 + D, 2 + 2 * D))]
    var_dims = [tuple(range(1, 1 + D))]
    gram = torch.einsum("ipc,jqc->ijpq", x1.reshape(n1, P, C), x2.reshape(n2, P, C)) / C
    K = sw2 * _smooth(gram.reshape(n1, n2, *space, *space), filter_size, D, cross_dims, circ) + sb2
    var1 = sw2 * _smooth((x1 * x1).sum(-1) / C, filter_size, D, var_dims, circ) + sb2       # (n1, *space)
    var2 = sw2 * _smooth((x2 * x2).sum(-1) / C, filter_size, D, var_dims, circ) + sb2
    Theta = K
    ones = (1,) * D

    def transforms(K, var1, var2):
        v_phi, v_der = V(var1.reshape(n1, 1, *space, *ones), K, var2.reshape(1, n2, *ones, *space))
        d1 = V(var1, var1, var1)[0]
        d2 = V(var2, var2, var2)[0]
        return v_phi, v_der, d1, d2

    for _ in range(depth - 1):
        v_phi, v_der, d1, d2 = transforms(K, var1, var2)
        K = sw2 * _smooth(v_phi, filter_size, D, cross_dims, circ) + sb2
        Theta = K + sw2 * _smooth(v_der * Theta, filter_size, D, cross_dims, circ)
        var1 = sw2 * _smooth(d1, filter_size, D, var_dims, circ) + sb2
        var2 = sw2 * _smooth(d2, filter_size, D, var_dims, circ) + sb2
    v_phi, v_der, _, _ = transforms(K, var1, var2)
    v_phi, prod = v_phi.reshape(n1, n2, P, P), (v_der * Theta).reshape(n1, n2, P, P)
    if readout == "gap":
        pool = lambda M: M.mean(dim=(-1, -2))  # noqa: E731
    else:
        pool = lambda M: torch.diagonal(M, dim1=-2, dim2=-1).mean(-1)  # noqa: E731
    nngp = sw2 * pool(v_phi) + sb2
    ntk = nngp + sw2 * pool(prod)
    if X2 is None:
        nngp, ntk = (nngp + nngp.T) / 2, (ntk + ntk.T) / 2
    out = {"dtype": X1.dtype, "device": X1.device}
    return CNNKernel(nngp.to(**out), ntk.to(**out), depth, filter_size, padding, readout)


class FiniteCNN(nn.Module):
    """The finite network whose limit :func:`cnn_kernel` computes (NTK parameterization, same settings), with
    ``width`` channels per conv layer; inputs (n, *space, C)."""

    def __init__(self, in_channels: int, width: int, depth: int = 1, filter_size: int = 3, padding: str = "circular",
                 readout: str = "gap", activation: str | Activation = "relu", sigma_w: float = 1.0,
                 sigma_b: float = 0.0, spatial_dims: int = 1, n_positions: int | None = None,
                 generator: torch.Generator | None = None, dtype: torch.dtype = torch.float64,
                 device: torch.device | str = "cpu") -> None:
        super().__init__()
        _check_cnn_settings(depth, filter_size, padding, readout, sigma_w, sigma_b)
        if spatial_dims not in (1, 2) or width < 1 or in_channels < 1:
            raise ValueError("spatial_dims must be 1 or 2 and width, in_channels >= 1")
        if readout == "flatten" and not n_positions:
            raise ValueError("readout='flatten' needs n_positions (the readout's fan-in is width x positions)")
        self.phi, _ = resolve_activation(activation)
        self.D, self.k, self.padding, self.readout = spatial_dims, filter_size, padding, readout
        self.sigma_w, self.sigma_b = float(sigma_w), float(sigma_b)
        self.readout_std, self.readout_bias_std = self.sigma_w, self.sigma_b   # read by empirical_nngp
        kw = {"generator": generator, "dtype": dtype, "device": device}
        fans = [in_channels] + [width] * (depth - 1)
        self.weights = nn.ParameterList(
            [nn.Parameter(torch.randn(width, f, *([filter_size] * spatial_dims), **kw)) for f in fans])
        self.biases = nn.ParameterList([nn.Parameter(torch.randn(width, **kw)) for _ in fans])
        fan_out = width * (n_positions if readout == "flatten" else 1)
        self.v = nn.Parameter(torch.randn(fan_out, **kw))
        self.v_bias = nn.Parameter(torch.randn((), **kw))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Input of the readout: (n, width) pooled or (n, width * positions) flattened."""
        import torch.nn.functional as F

        h = x.movedim(-1, 1)                                          # (n, C, *space)
        conv = F.conv1d if self.D == 1 else F.conv2d
        pad = [self.k // 2] * (2 * self.D)
        for W, b in zip(self.weights, self.biases):
            h = F.pad(h, pad, mode="circular" if self.padding == "circular" else "constant")
            fan_in = W.shape[1] * self.k ** self.D
            z = conv(h, W) * (self.sigma_w / math.sqrt(fan_in)) + self.sigma_b * b.reshape(-1, *[1] * self.D)
            h = self.phi(z)
        if self.readout == "gap":
            return h.flatten(2).mean(-1)
        return h.flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:               # (n, *space, C) -> (n,)
        f = self.features(x)
        return f @ self.v * (self.readout_std / math.sqrt(f.shape[1])) + self.readout_bias_std * self.v_bias
