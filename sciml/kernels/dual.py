"""Dual activations ("V-transforms", spec ssm.md 2.2.2) on 2x2 covariances [[k11, k12], [k12, k22]].

For (u, v) ~ N(0, [[k11, k12], [k12, k22]]): ``V_phi = E[phi(u) phi(v)]`` and ``V_der = E[phi'(u) phi'(v)]``.
Every function here is elementwise over broadcastable tensors ``k11, k12, k22`` (float64 recommended) and
returns ``(V_phi, V_der)`` with their broadcast shape.

* ReLU: arc-cosine kernels (Cho & Saul), cosine clipped to [-1, 1] (rounding pushes it past 1 -> NaN).
* erf: Williams' closed form; ``(1 + 2 k11)(1 + 2 k22) - 4 k12^2 >= 1`` so it is always safe.
* any callable: 2-D Gauss-Hermite quadrature on the Cholesky factor of the 2x2 covariance.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch

Activation = Callable[[torch.Tensor], torch.Tensor]

# Pairs evaluated per Gauss-Hermite chunk (chunk * deg^2 values live at once; 4096 * 64^2 * 8 B = 128 MiB).
_GH_PAIRS_PER_CHUNK = 4096


def relu_v(k11: torch.Tensor, k12: torch.Tensor, k22: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Arc-cosine V-transforms of ReLU: ``sqrt(k11 k22)(sin t + (pi - t) c)/(2 pi)`` and ``(pi - t)/(2 pi)``."""
    norm = torch.sqrt(k11 * k22)
    # A zero-variance input makes phi(u) = 0: V_phi = 0; c is then irrelevant for V_phi, set it to 0 to stay finite.
    c = torch.where(norm > 0, k12 / torch.where(norm > 0, norm, torch.ones_like(norm)), torch.zeros_like(norm))
    theta = torch.arccos(c.clamp(-1.0, 1.0))
    v_phi = norm * (torch.sin(theta) + (math.pi - theta) * c.clamp(-1.0, 1.0)) / (2 * math.pi)
    v_der = (math.pi - theta) / (2 * math.pi)
    return v_phi, v_der


def erf_v(k11: torch.Tensor, k12: torch.Tensor, k22: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Closed-form V-transforms of erf: ``(2/pi) asin(2 k12 / sqrt(a b))`` and ``(4/pi) (a b - 4 k12^2)^(-1/2)``
    with ``a = 1 + 2 k11``, ``b = 1 + 2 k22``."""
    ab = (1 + 2 * k11) * (1 + 2 * k22)
    v_phi = (2 / math.pi) * torch.arcsin((2 * k12 / torch.sqrt(ab)).clamp(-1.0, 1.0))
    v_der = (4 / math.pi) / torch.sqrt((ab - 4 * k12 * k12).clamp_min(1.0))   # >= 1 in exact arithmetic
    return v_phi, v_der


def hermite_nodes(deg: int, dtype: torch.dtype = torch.float64,
                  device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """Nodes z and weights w with ``sum_i w_i f(z_i) ~= E f(Z)``, Z ~ N(0, 1) (probabilists' scaling)."""
    if not isinstance(deg, int) or deg < 2:
        raise ValueError(f"deg must be an integer >= 2, got {deg!r}")
    t, w = np.polynomial.hermite.hermgauss(deg)
    return (torch.as_tensor(t * math.sqrt(2.0), dtype=dtype, device=device),
            torch.as_tensor(w / math.sqrt(math.pi), dtype=dtype, device=device))


def derivative(phi: Activation) -> Activation:
    """phi' of an elementwise activation, by autograd (phi must be differentiable almost everywhere in torch)."""
    def dphi(x: torch.Tensor) -> torch.Tensor:
        with torch.enable_grad():
            x = x.detach().requires_grad_(True)
            y = phi(x)
            (g,) = torch.autograd.grad(y.sum(), x, allow_unused=True)
        return torch.zeros_like(x) if g is None else g.detach()
    return dphi


def gauss_hermite_v(phi: Activation, k11: torch.Tensor, k12: torch.Tensor, k22: torch.Tensor, *,
                    deg: int = 64, dphi: Activation | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """V-transforms of any elementwise ``phi`` by a deg x deg Gauss-Hermite rule.

    u = sqrt(k11) z1, v = (k12 / sqrt(k11)) z1 + sqrt(k22 - k12^2/k11) z2. Exact for polynomial phi of degree
    < 2 deg; for kinked phi (ReLU) it converges slowly: use the closed forms there.
    """
    k11, k12, k22 = torch.broadcast_tensors(k11, k12, k22)
    shape = k12.shape
    k11, k12, k22 = k11.reshape(-1), k12.reshape(-1), k22.reshape(-1)
    dphi = dphi or derivative(phi)
    z, w = hermite_nodes(deg, k12.dtype, k12.device)                    # (deg,)
    weight2 = w[:, None] * w[None, :]                                   # (deg, deg)
    s11 = torch.sqrt(k11.clamp_min(0))
    safe = torch.where(s11 > 0, s11, torch.ones_like(s11))
    a = torch.where(s11 > 0, k12 / safe, torch.zeros_like(s11))         # loading of v on z1
    b = torch.sqrt((k22 - a * a).clamp_min(0))                          # loading of v on z2
    v_phi, v_der = [], []
    for start in range(0, k12.numel(), _GH_PAIRS_PER_CHUNK):            # chunks bound memory, not elementwise
        sl = slice(start, start + _GH_PAIRS_PER_CHUNK)
        u = s11[sl, None, None] * z[None, :, None]                      # (m, deg, 1)
        v = a[sl, None, None] * z[None, :, None] + b[sl, None, None] * z[None, None, :]   # (m, deg, deg)
        v_phi.append((phi(u) * phi(v) * weight2).sum(dim=(1, 2)))
        v_der.append((dphi(u) * dphi(v) * weight2).sum(dim=(1, 2)))
    return torch.cat(v_phi).reshape(shape), torch.cat(v_der).reshape(shape)


def monte_carlo_v(phi: Activation, k11: float, k12: float, k22: float, n_samples: int,
                  generator: torch.Generator, dphi: Activation | None = None
                  ) -> tuple[float, float, float, float]:
    """Monte Carlo V-transforms of one 2x2 covariance: (V_phi, its standard error, V_der, its standard error)."""
    cov = torch.tensor([[k11, k12], [k12, k22]], dtype=torch.float64)
    chol = torch.linalg.cholesky(cov)
    uv = torch.randn(n_samples, 2, dtype=torch.float64, generator=generator) @ chol.T   # (N, 2)
    dphi = dphi or derivative(phi)
    prod = phi(uv[:, 0]) * phi(uv[:, 1])
    prod_der = dphi(uv[:, 0]) * dphi(uv[:, 1])
    se = lambda t: float(t.std() / math.sqrt(n_samples))  # noqa: E731
    return float(prod.mean()), se(prod), float(prod_der.mean()), se(prod_der)


ACTIVATIONS: dict[str, tuple[Activation, Callable]] = {
    "relu": (torch.relu, relu_v),
    "erf": (torch.erf, erf_v),
}


def resolve_activation(activation: str | Activation, deg: int = 64
                       ) -> tuple[Activation, Callable[[torch.Tensor, torch.Tensor, torch.Tensor],
                                                       tuple[torch.Tensor, torch.Tensor]]]:
    """(phi, V) for "relu", "erf" or a callable (whose V is Gauss-Hermite of degree ``deg``)."""
    if isinstance(activation, str):
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; allowed: {sorted(ACTIVATIONS)} or a callable")
        return ACTIVATIONS[activation]
    if callable(activation):
        dphi = derivative(activation)
        return activation, lambda k11, k12, k22: gauss_hermite_v(activation, k11, k12, k22, deg=deg, dphi=dphi)
    raise ValueError(f"activation must be 'relu', 'erf' or a callable, got {type(activation).__name__}")
