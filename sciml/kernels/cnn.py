"""Exact NNGP / NTK of convolutional networks with weight sharing (spec ssm.md 2.2.4), 1-D and 2-D.

Network (NTK parameterization; every weight and bias entry N(0, 1)), inputs X of shape (n, P, C) or (n, H, W, C):
``depth`` conv layers of filter size k and stride s (the same in every spatial dim), each
``z = sw / sqrt(k^D fan_in) conv(W, x) + sb b`` followed by phi; then the readout: "gap" (global average pooling and a
dense layer ``sw / sqrt(N)``) or "flatten" (a dense layer on all N P_out features, ``sw / sqrt(N P_out)``), both with
bias sb. Padding (PyTorch's conventions): "circular" / "same" pad k // 2 on both sides (wrapping / zeros; k odd) so
output position p reads inputs s p + j - k // 2, j = 0..k-1, and P_out = ceil(P / s); "valid" pads nothing, output
p reads s p + j and P_out = floor((P - k) / s) + 1. (TF / neural-tangents SAME with s > 1 may place the padding
differently; circular and valid agree with them.)

Kernels live on (n1, n2, *space, *space) tensors. With S(M)[p, q] = k^-D sum_j M[idx(p, j), idx(q, j)] (the same
offset j on both sides: weight sharing; out-of-range terms are 0 under "same"; the 1/k^D normalisation stays):

    K^1 = sw^2 S_k(Gram) + sb^2, Gram[p, q] = x_p . x'_q / C ;   Theta^1 = K^1
    K^{l+1} = sw^2 S_k(Vphi(K^l)) + sb^2 ;   Theta^{l+1} = K^{l+1} + sw^2 S_k(Vder(K^l) * Theta^l)
    GAP:     NNGP = sw^2 mean_{p,q} Vphi + sb^2,  NTK = NNGP + sw^2 mean_{p,q} Vder * Theta
    flatten: the same with the mean over p = q only.
"""

from __future__ import annotations

import dataclasses
import math

import torch
from torch import nn

from sciml.core import Result, check_floating
from sciml.kernels.dual import Activation, resolve_activation

PADDINGS = ("circular", "same", "valid")
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
    stride: int = 1


def _check_cnn_settings(depth, filter_size, padding, readout, sigma_w, sigma_b, stride=1) -> None:
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
        raise ValueError(f"depth (number of conv layers) must be an integer >= 1, got {depth!r}")
    if padding not in PADDINGS:
        raise ValueError(f"padding must be one of {PADDINGS}, got {padding!r}")
    if isinstance(filter_size, bool) or not isinstance(filter_size, int) or filter_size < 1:
        raise ValueError(f"filter_size must be an integer >= 1, got {filter_size!r}")
    if padding != "valid" and filter_size % 2 == 0:
        raise ValueError(f"padding={padding!r} centres the filter: filter_size must be odd, got {filter_size} "
                         "(even sizes work with padding='valid')")
    if isinstance(stride, bool) or not isinstance(stride, int) or stride < 1:
        raise ValueError(f"stride must be an integer >= 1, got {stride!r}")
    if readout not in READOUTS:
        raise ValueError(f"readout must be one of {READOUTS}, got {readout!r}")
    for name, value in (("sigma_w", sigma_w), ("sigma_b", sigma_b)):
        if not isinstance(value, (int, float)) or not (0 <= value < float("inf")):
            raise ValueError(f"{name} is a standard deviation: a finite number >= 0, got {value!r}")


def output_shape(space: tuple[int, ...], depth: int, filter_size: int, padding: str,
                 stride: int = 1) -> tuple[int, ...]:
    """Spatial shape after ``depth`` conv layers; ValueError when a "valid" layer gets fewer than k positions."""
    for layer in range(depth):
        if padding == "valid":
            if min(space) < filter_size:
                raise ValueError(f"padding='valid' needs at least filter_size={filter_size} positions per spatial "
                                 f"dim, but conv layer {layer + 1} gets {space}")
            space = tuple((size - filter_size) // stride + 1 for size in space)
        else:
            space = tuple(-(-size // stride) for size in space)
    return space


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


def _selections(size: int, k: int, padding: str, stride: int, like: torch.Tensor) -> torch.Tensor:
    """E (k, P_out, P_in): E[j, p, idx(p, j)] = 1 with idx(p, j) the input read by output p at filter tap j (0 rows
    for zero padding). One spatial dim; 2-D offsets are product sets, so S factorises over the dims."""
    n_out = output_shape((size,), 1, k, padding, stride)[0]
    start = 0 if padding == "valid" else -(k // 2)
    taps = torch.arange(k, device=like.device)[:, None]
    idx = stride * torch.arange(n_out, device=like.device)[None, :] + taps + start
    inside = (idx >= 0) & (idx < size)
    if padding == "circular":
        idx, inside = idx % size, torch.ones_like(inside)
    E = torch.zeros(k, n_out, size, dtype=like.dtype, device=like.device)
    E.scatter_(2, idx.clamp(0, size - 1)[..., None], inside[..., None].to(like.dtype))
    return E


def _smooth(M: torch.Tensor, selections: list[torch.Tensor], space_dims: list[tuple[int, ...]]) -> torch.Tensor:
    """S: for each spatial dim d, M <- k^-1 sum_j E_j M E_j^T on the axes of d in every group of ``space_dims``
    (one group for variances (n, *space), two for cross covariances (n1, n2, *space, *space))."""
    for d, E in enumerate(selections):
        axes = [dims[d] for dims in space_dims]
        moved = M.movedim(axes, list(range(-len(axes), 0)))
        if len(axes) == 1:
            out = torch.einsum("jpa,...a->...p", E, moved)
        else:
            out = torch.einsum("jpa,...ab,jqb->...pq", E, moved, E)
        M = out.movedim(list(range(-len(axes), 0)), axes) / E.shape[0]
    return M


def cnn_kernel(X1: torch.Tensor, X2: torch.Tensor | None = None, *, depth: int = 1, filter_size: int = 3,
               padding: str = "circular", readout: str = "gap", activation: str | Activation = "relu",
               sigma_w: float = 1.0, sigma_b: float = 0.0, stride: int = 1, deg: int = 64) -> CNNKernel:
    """Exact NNGP and NTK of a CNN (module docstring) between inputs (n1, *space, C) and (n2, *space, C).

    ``padding`` "circular" | "same" | "valid", ``stride`` >= 1 in every conv layer. Memory O(n1 n2 P^2) with P the
    number of input positions (8 x 8 images: P^2 = 4096 numbers per pair).
    """
    _check_cnn_settings(depth, filter_size, padding, readout, sigma_w, sigma_b, stride)
    D = _check_images(X1, X2)
    output_shape(tuple(X1.shape[1:-1]), depth, filter_size, padding, stride)     # too few positions: ValueError now
    _, V = resolve_activation(activation, deg)
    sw2, sb2 = sigma_w ** 2, sigma_b ** 2
    x1 = X1.to(torch.float64)
    x2 = x1 if X2 is None else X2.to(device=X1.device, dtype=torch.float64)
    n1, n2, space, C = x1.shape[0], x2.shape[0], tuple(x1.shape[1:-1]), x1.shape[-1]
    P = math.prod(space)
    cross_dims = [tuple(range(2, 2 + D)), tuple(range(2 + D, 2 + 2 * D))]
    var_dims = [tuple(range(1, 1 + D))]
    ones = (1,) * D

    def conv(K_in, var1_in, var2_in, space_in):
        """One conv layer on the input covariances: (cross, variances 1, variances 2, output spatial shape)."""
        E = [_selections(size, filter_size, padding, stride, x1) for size in space_in]
        return (sw2 * _smooth(K_in, E, cross_dims) + sb2, sw2 * _smooth(var1_in, E, var_dims) + sb2,
                sw2 * _smooth(var2_in, E, var_dims) + sb2, E)

    gram = torch.einsum("ipc,jqc->ijpq", x1.reshape(n1, P, C), x2.reshape(n2, P, C)) / C
    K, var1, var2, E = conv(gram.reshape(n1, n2, *space, *space), (x1 * x1).sum(-1) / C, (x2 * x2).sum(-1) / C, space)
    space = tuple(e.shape[1] for e in E)
    Theta = K

    def transforms(K, var1, var2):
        return V(var1.reshape(n1, 1, *space, *ones), K, var2.reshape(1, n2, *ones, *space))

    for _ in range(depth - 1):
        v_phi, v_der = transforms(K, var1, var2)
        K, var1, var2, E = conv(v_phi, V(var1, var1, var1)[0], V(var2, var2, var2)[0], space)
        Theta = K + sw2 * _smooth(v_der * Theta, E, cross_dims)
        space = tuple(e.shape[1] for e in E)
    v_phi, v_der = transforms(K, var1, var2)
    P = math.prod(space)
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
    return CNNKernel(nngp.to(**out), ntk.to(**out), depth, filter_size, padding, readout, stride)


class FiniteCNN(nn.Module):
    """The finite network whose limit :func:`cnn_kernel` computes (NTK parameterization, same settings), with
    ``width`` channels per conv layer; inputs (n, *space, C). A flatten readout needs the input ``spatial_shape``
    (its fan-in is width x output positions); ``n_positions`` (input positions) is accepted when the spatial size
    does not change (stride 1, padding "circular" / "same")."""

    def __init__(self, in_channels: int, width: int, depth: int = 1, filter_size: int = 3, padding: str = "circular",
                 readout: str = "gap", activation: str | Activation = "relu", sigma_w: float = 1.0,
                 sigma_b: float = 0.0, spatial_dims: int = 1, n_positions: int | None = None,
                 stride: int = 1, spatial_shape: tuple[int, ...] | None = None,
                 generator: torch.Generator | None = None, dtype: torch.dtype = torch.float64,
                 device: torch.device | str = "cpu") -> None:
        super().__init__()
        _check_cnn_settings(depth, filter_size, padding, readout, sigma_w, sigma_b, stride)
        if spatial_dims not in (1, 2) or width < 1 or in_channels < 1:
            raise ValueError("spatial_dims must be 1 or 2 and width, in_channels >= 1")
        if spatial_shape is not None:
            if len(spatial_shape) != spatial_dims:
                raise ValueError(f"spatial_shape {spatial_shape} must have spatial_dims={spatial_dims} entries")
            n_positions = math.prod(output_shape(tuple(spatial_shape), depth, filter_size, padding, stride))
        elif n_positions and (stride != 1 or padding == "valid"):
            raise ValueError("with stride > 1 or padding='valid' pass spatial_shape (the input's), not n_positions")
        if readout == "flatten" and not n_positions:
            raise ValueError("readout='flatten' needs spatial_shape (the readout's fan-in is width x output positions)")
        self.phi, _ = resolve_activation(activation)
        self.D, self.k, self.padding, self.readout, self.stride = spatial_dims, filter_size, padding, readout, stride
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
            if self.padding != "valid":
                h = F.pad(h, pad, mode="circular" if self.padding == "circular" else "constant")
            fan_in = W.shape[1] * self.k ** self.D
            z = (conv(h, W, stride=self.stride) * (self.sigma_w / math.sqrt(fan_in))
                 + self.sigma_b * b.reshape(-1, *[1] * self.D))
            h = self.phi(z)
        if self.readout == "gap":
            return h.flatten(2).mean(-1)
        return h.flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:               # (n, *space, C) -> (n,)
        f = self.features(x)
        return f @ self.v * (self.readout_std / math.sqrt(f.shape[1])) + self.readout_bias_std * self.v_bias
