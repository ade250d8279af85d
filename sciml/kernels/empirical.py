"""Finite-width (empirical) kernels of torch networks (spec ssm.md 2.2.8).

* :func:`empirical_ntk`: ``Theta_hat = J1 J2^T`` with ``J = d f(X) / d theta`` from ``torch.func.jacrev`` + ``vmap``
  over samples, for any ``nn.Module`` with a scalar (or (1,)) output per sample.
* :func:`empirical_nngp`: the single-network last-layer Gram ``sw^2 phi(h) phi(h')^T / n + sb^2`` (converges at
  rate n^{-1/2}; the output covariance over a few networks would be Monte-Carlo dominated, spec 2.6).
* :class:`FiniteMLP`: the network whose limit :func:`sciml.kernels.mlp_kernel` computes (same settings).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from sciml.core import check_floating
from sciml.kernels.dual import Activation, resolve_activation
from sciml.kernels.mlp import _check_settings


class FiniteMLP(nn.Module):
    """``depth`` hidden layers of ``width`` units and a scalar readout, in NTK or standard parameterization.

    NTK: weights/biases N(0, 1) and ``z = sw/sqrt(m) W x + sb b``; standard: W ~ N(0, sw^2/m), b ~ N(0, sb^2),
    ``z = W x + b``. Same forward distribution, different gradients (hence NTKs).
    """

    def __init__(self, d_in: int, width: int, depth: int, activation: str | Activation = "relu",
                 sigma_w: float = 1.0, sigma_b: float = 0.0, parameterization: str = "ntk",
                 generator: torch.Generator | None = None, dtype: torch.dtype = torch.float64,
                 device: torch.device | str = "cpu") -> None:
        super().__init__()
        _check_settings(depth, sigma_w, sigma_b, parameterization, width)
        if d_in < 1:
            raise ValueError(f"d_in must be >= 1, got {d_in}")
        self.phi, _ = resolve_activation(activation)
        self.sigma_w, self.sigma_b, self.parameterization = float(sigma_w), float(sigma_b), parameterization
        fans = [d_in] + [width] * depth
        outs = [width] * depth + [1]
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for fan_in, fan_out in zip(fans, outs):
            w = torch.randn(fan_out, fan_in, generator=generator, dtype=dtype, device=device)
            b = torch.randn(fan_out, generator=generator, dtype=dtype, device=device)
            if parameterization == "standard":   # the scale lives in the parameters, not in the forward pass
                w, b = w * (sigma_w / math.sqrt(fan_in)), b * sigma_b
            self.weights.append(nn.Parameter(w))
            self.biases.append(nn.Parameter(b))

    def _dense(self, i: int, x: torch.Tensor) -> torch.Tensor:
        w, b = self.weights[i], self.biases[i]
        if self.parameterization == "ntk":
            return x @ w.T * (self.sigma_w / math.sqrt(w.shape[1])) + self.sigma_b * b
        return x @ w.T + b

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """phi(h^depth): (n, width) input of the readout (x itself when depth = 0)."""
        for i in range(len(self.weights) - 1):
            x = self.phi(self._dense(i, x))
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:       # (n, d) -> (n,)
        return self._dense(len(self.weights) - 1, self.features(x)).squeeze(-1)


def _check_pair(X1: torch.Tensor, X2: torch.Tensor | None) -> torch.Tensor:
    check_floating(X1, "X1")
    if X2 is None:
        return X1
    check_floating(X2, "X2")
    if X1.shape[1:] != X2.shape[1:]:
        raise ValueError(f"X1 and X2 must share their per-sample shape, got {tuple(X1.shape)} and {tuple(X2.shape)}")
    return X2


def _jacobian(model: nn.Module, params: dict, X: torch.Tensor) -> torch.Tensor:
    """(n, P): d f(x_i) / d theta, flattened over all parameters, from jacrev vmapped over samples."""
    from torch.func import functional_call, jacrev, vmap

    def f(p: dict, x: torch.Tensor) -> torch.Tensor:
        out = functional_call(model, p, (x.unsqueeze(0),))
        if out.numel() != 1:
            raise ValueError(f"empirical_ntk needs a scalar output per sample, got shape {tuple(out.shape)}")
        return out.reshape(())

    jac = vmap(jacrev(f), in_dims=(None, 0))(params, X)       # dict of (n, *param.shape)
    return torch.cat([j.reshape(X.shape[0], -1) for j in jac.values()], dim=1)


def empirical_ntk(model: nn.Module, X1: torch.Tensor, X2: torch.Tensor | None = None, *,
                  chunk_size: int | None = None) -> torch.Tensor:
    """Empirical NTK ``J(X1) J(X2)^T`` (n1, n2) of ``model`` at its current parameters.

    ``chunk_size`` bounds memory: Jacobians of that many samples at a time (J of all n samples takes n x P numbers).
    """
    X2v = _check_pair(X1, X2)
    params = {k: v.detach() for k, v in model.named_parameters() if v.requires_grad}
    if not params:
        raise ValueError("model has no trainable parameters")
    if chunk_size is not None and chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    step = chunk_size or max(X1.shape[0], X2v.shape[0])
    starts1, starts2 = range(0, X1.shape[0], step), range(0, X2v.shape[0], step)
    blocks: dict[tuple[int, int], torch.Tensor] = {}
    for i in starts1:
        J1 = _jacobian(model, params, X1[i:i + step])
        for j in starts2:
            if X2 is None and j < i:            # symmetric: the lower blocks are transposes of the upper ones
                blocks[i, j] = blocks[j, i].T
            elif X2 is None and j == i:
                blocks[i, j] = J1 @ J1.T
            else:
                blocks[i, j] = J1 @ _jacobian(model, params, X2v[j:j + step]).T
    rows = [torch.cat([blocks[i, j] for j in starts2], dim=1) for i in starts1]
    return torch.cat(rows, dim=0).detach()


def empirical_nngp(model: nn.Module, X1: torch.Tensor, X2: torch.Tensor | None = None) -> torch.Tensor:
    """Single-network NNGP estimate ``s^2 f(X1) f(X2)^T / m + s_b^2`` (n1, n2) from the readout's input f (m
    features) and the readout's weight / bias stds s, s_b (FiniteMLP: sigma_w, sigma_b; FiniteCNN / FiniteRNN:
    their ``readout_std``, ``readout_bias_std``)."""
    if isinstance(model, FiniteMLP):
        std, bias_std = model.sigma_w, model.sigma_b
    elif hasattr(model, "features") and hasattr(model, "readout_std"):
        std, bias_std = model.readout_std, model.readout_bias_std
    else:
        raise TypeError("empirical_nngp needs a FiniteMLP, FiniteCNN or FiniteRNN (it reads the readout's input "
                        "and its standard deviations)")
    X2v = _check_pair(X1, X2)
    with torch.no_grad():
        f1 = model.features(X1)
        f2 = f1 if X2 is None else model.features(X2v)
        return std ** 2 * f1 @ f2.T / f1.shape[1] + bias_std ** 2


def relative_frobenius(estimate: torch.Tensor, exact: torch.Tensor) -> float:
    """||estimate - exact||_F / ||exact||_F (the 2.2.8 metric)."""
    return float(torch.linalg.norm(estimate - exact) / torch.linalg.norm(exact))
