"""Exact NNGP / NTK of an Elman RNN with weight sharing across time (spec ssm.md 2.2.5).

Network (NTK parameterization, all entries N(0, 1)), sequences x^1..x^T in R^d, width N:
``h^1 = su U x^1 / sqrt(d) + sb b``, ``h^t = sw W s^{t-1} / sqrt(N) + su U x^t / sqrt(d) + sb b``, ``s^t = phi(h^t)``,
last-state readout ``f = sv v . s^T / sqrt(N)``. Forward kernel on (n1, n2, T, T) tensors, filled causally:

    H(t, r) = su^2 x^t . x'^r / d + sb^2 + [t > 1 and r > 1] sw^2 Vphi(H)(t-1, r-1)
    NNGP    = sv^2 Vphi(H)(T, T)

Backward (gradient independence is valid: v is fresh, zero-mean and unused in the forward pass): with equal lengths
only time-aligned pairs survive, Ds = sv^2; for t = T..1: Dh(t) = Vder(H)(t, t) Ds, Ds = sw^2 Dh(t); and
NTK = NNGP + sum_t Dh(t) H(t, t). (Weight sharing over time makes H(t, r), t != r, nonzero in the forward pass.)
"""

from __future__ import annotations

import dataclasses
import math

import torch
from torch import nn

from sciml.core import Result, check_floating
from sciml.kernels.dual import Activation, resolve_activation


@dataclasses.dataclass(frozen=True)
class RNNKernel(Result):
    """Infinite-width kernels (n1, n2) of an Elman RNN with last-state readout, and the forward kernel H."""

    nngp: torch.Tensor
    ntk: torch.Tensor
    forward_kernel: torch.Tensor        # (n1, n2, T, T)


def _check_rnn(X1: torch.Tensor, X2: torch.Tensor | None, stds: dict) -> None:
    check_floating(X1, "X1")
    if X1.is_complex() or X1.ndim != 3 or X1.shape[1] < 1:
        raise ValueError(f"X1 must be real sequences of shape (n, T, d) with T >= 1, got {tuple(X1.shape)}")
    if X2 is not None:
        check_floating(X2, "X2")
        if X2.ndim != 3 or X2.shape[2] != X1.shape[2]:
            raise ValueError(f"X2 must have shape (n2, T, d) with d = {X1.shape[2]}, got {tuple(X2.shape)}")
        if X2.shape[1] != X1.shape[1]:
            raise ValueError(f"sequences must have equal lengths, got T = {X1.shape[1]} and {X2.shape[1]}")
    for name, value in stds.items():
        if not isinstance(value, (int, float)) or not (0 <= value < float("inf")):
            raise ValueError(f"{name} is a standard deviation: a finite number >= 0, got {value!r}")


def rnn_kernel(X1: torch.Tensor, X2: torch.Tensor | None = None, *, activation: str | Activation = "erf",
               sigma_w: float = 1.0, sigma_u: float = 1.0, sigma_b: float = 0.0, sigma_v: float = 1.0,
               deg: int = 64) -> RNNKernel:
    """Exact NNGP and NTK of the Elman RNN above between sequences X1 (n1, T, d) and X2 (n2, T, d)."""
    _check_rnn(X1, X2, {"sigma_w": sigma_w, "sigma_u": sigma_u, "sigma_b": sigma_b, "sigma_v": sigma_v})
    _, V = resolve_activation(activation, deg)
    x1 = X1.to(torch.float64)
    x2 = x1 if X2 is None else X2.to(device=X1.device, dtype=torch.float64)
    n1, T, d = x1.shape
    n2 = x2.shape[0]
    sw2, su2, sb2, sv2 = sigma_w ** 2, sigma_u ** 2, sigma_b ** 2, sigma_v ** 2
    base = su2 * torch.einsum("itc,jrc->ijtr", x1, x2) / d + sb2           # (n1, n2, T, T)
    base1 = su2 * (x1 * x1).sum(-1) / d + sb2                              # (n1, T) self variances
    base2 = su2 * (x2 * x2).sum(-1) / d + sb2
    # Self variances h_i(t, t) first: each needs only the previous time step.
    var1, var2 = [base1[:, 0]], [base2[:, 0]]
    for t in range(1, T):
        var1.append(base1[:, t] + sw2 * V(var1[-1], var1[-1], var1[-1])[0])
        var2.append(base2[:, t] + sw2 * V(var2[-1], var2[-1], var2[-1])[0])
    var1, var2 = torch.stack(var1, 1), torch.stack(var2, 1)                # (n, T)
    v1 = var1.reshape(n1, 1, T, 1)
    v2 = var2.reshape(1, n2, 1, T)
    # Cross kernel: H(t, r) depends on H(t-1, r-1); T - 1 causal sweeps reach the fixed point.
    H = base.clone()
    for _ in range(T - 1):
        v_phi = V(v1[:, :, :-1], H[:, :, :-1, :-1], v2[:, :, :, :-1])[0]
        H = base.clone()
        H[:, :, 1:, 1:] += sw2 * v_phi
    v_phi, v_der = V(v1, H, v2)
    nngp = sv2 * v_phi[:, :, -1, -1]
    ntk = nngp.clone()
    ds = sv2
    for t in range(T - 1, -1, -1):
        dh = v_der[:, :, t, t] * ds
        ntk = ntk + dh * H[:, :, t, t]
        ds = sw2 * dh
    if X2 is None:
        nngp, ntk = (nngp + nngp.T) / 2, (ntk + ntk.T) / 2
    out = {"dtype": X1.dtype, "device": X1.device}
    return RNNKernel(nngp.to(**out), ntk.to(**out), H.to(**out))


class FiniteRNN(nn.Module):
    """The finite Elman RNN whose limit :func:`rnn_kernel` computes (same settings), width N; inputs (n, T, d)."""

    def __init__(self, d_in: int, width: int, activation: str | Activation = "erf", sigma_w: float = 1.0,
                 sigma_u: float = 1.0, sigma_b: float = 0.0, sigma_v: float = 1.0,
                 generator: torch.Generator | None = None, dtype: torch.dtype = torch.float64,
                 device: torch.device | str = "cpu") -> None:
        super().__init__()
        if d_in < 1 or width < 1:
            raise ValueError("d_in and width must be >= 1")
        self.phi, _ = resolve_activation(activation)
        self.sigma_w, self.sigma_u, self.sigma_b = float(sigma_w), float(sigma_u), float(sigma_b)
        self.readout_std, self.readout_bias_std = float(sigma_v), 0.0          # read by empirical_nngp
        kw = {"generator": generator, "dtype": dtype, "device": device}
        self.U = nn.Parameter(torch.randn(width, d_in, **kw))
        self.W = nn.Parameter(torch.randn(width, width, **kw))
        self.b = nn.Parameter(torch.randn(width, **kw))
        self.v = nn.Parameter(torch.randn(width, **kw))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """s^T = phi(h^T): (n, width)."""
        N, d = self.W.shape[0], self.U.shape[1]
        inputs = x @ self.U.T * (self.sigma_u / math.sqrt(d)) + self.sigma_b * self.b      # (n, T, N)
        h = inputs[:, 0]
        for t in range(1, x.shape[1]):
            h = self.phi(h) @ self.W.T * (self.sigma_w / math.sqrt(N)) + inputs[:, t]
        return self.phi(h)

    def forward(self, x: torch.Tensor) -> torch.Tensor:                    # (n, T, d) -> (n,)
        s = self.features(x)
        return s @ self.v * (self.readout_std / math.sqrt(s.shape[1]))
