"""Finite-width convergence of empirical kernels to the exact ones (spec ssm.md 2.3 table, 2.5.2-2.5.3)."""

from __future__ import annotations

import dataclasses
import math
from typing import Callable

import numpy as np
import torch

from sciml.core import Result
from sciml.kernels.dual import Activation
from sciml.kernels.empirical import FiniteMLP, empirical_nngp, empirical_ntk, relative_frobenius
from sciml.kernels.mlp import mlp_kernel


@dataclasses.dataclass(frozen=True)
class WidthSweep(Result):
    """Relative Frobenius errors of single networks, shape (len(widths), seeds), and fitted log-log slopes."""

    widths: tuple[int, ...]
    nngp_errors: np.ndarray
    ntk_errors: np.ndarray
    nngp_slope: float
    ntk_slope: float


def loglog_slope(widths, errors) -> float:
    """Least-squares slope of log(mean error) against log(width)."""
    return float(np.polyfit(np.log(np.asarray(widths, float)), np.log(np.asarray(errors, float)), 1)[0])


def width_sweep(make_net: Callable[[int, torch.Generator], torch.nn.Module], X: torch.Tensor, exact_nngp: torch.Tensor,
                exact_ntk: torch.Tensor, widths: tuple[int, ...], seeds: int, *, seed: int = 0, groups: int = 1,
                progress=lambda it: it) -> WidthSweep:
    """Empirical NNGP (readout-input Gram) and NTK (J J^T) of ``seeds`` networks ``make_net(width, generator)`` per
    width against exact kernels; relative Frobenius errors and fitted log-log slopes.

    ``groups`` > 1 splits the inputs into that many equal contiguous sets (independent input draws) and averages the
    error of each set's diagonal block: the error constant depends on the inputs, so one draw is a noisy estimate
    of the setting's constant; the same networks serve every set.
    """
    if seeds < 1 or not widths or min(widths) < 1:
        raise ValueError(f"need seeds >= 1 and widths >= 1, got seeds={seeds}, widths={widths}")
    if groups < 1 or X.shape[0] % groups:
        raise ValueError(f"groups must be >= 1 and divide the {X.shape[0]} inputs, got {groups}")
    size = X.shape[0] // groups
    blocks = [slice(g * size, (g + 1) * size) for g in range(groups)]

    def error(K_hat, K):
        return float(np.mean([relative_frobenius(K_hat[b, b], K[b, b]) for b in blocks]))

    nngp_err = np.zeros((len(widths), seeds))
    ntk_err = np.zeros((len(widths), seeds))
    for w_i, width in enumerate(progress(widths)):
        for s in range(seeds):
            net = make_net(width, torch.Generator(device=X.device).manual_seed(seed + 1000 * w_i + s))
            nngp_err[w_i, s] = error(empirical_nngp(net, X), exact_nngp)
            ntk_err[w_i, s] = error(empirical_ntk(net, X), exact_ntk)
    return WidthSweep(tuple(widths), nngp_err, ntk_err, loglog_slope(widths, nngp_err.mean(1)),
                      loglog_slope(widths, ntk_err.mean(1)))


def mlp_width_sweep(X: torch.Tensor, widths: tuple[int, ...], seeds: int, *, depth: int = 2,
                    activation: str | Activation = "relu", sigma_w: float = math.sqrt(2.0), sigma_b: float = 0.1,
                    seed: int = 0, progress=lambda it: it) -> WidthSweep:
    """Empirical NNGP (last-layer Gram) and NTK (J J^T) of ``seeds`` random FiniteMLPs per width against mlp_kernel."""
    settings = dict(depth=depth, activation=activation, sigma_w=sigma_w, sigma_b=sigma_b)
    exact = mlp_kernel(X, **settings)
    return width_sweep(lambda width, gen: FiniteMLP(X.shape[1], width, generator=gen, dtype=X.dtype, device=X.device,
                                                    **settings),
                       X, exact.nngp, exact.ntk, widths, seeds, seed=seed, progress=progress)


def output_covariance_error(X: torch.Tensor, n_networks: int, width: int, *, depth: int = 2,
                            activation: str | Activation = "relu", sigma_w: float = math.sqrt(2.0),
                            sigma_b: float = 0.1, generator: torch.Generator | None = None,
                            batch: int = 100) -> float:
    """||mean_M f f^T - K||_F / ||K||_F over M independent random MLPs (spec 2.5.3; MC error ~ M^{-1/2}).

    The M networks run as one batched forward pass per ``batch`` networks (weights (batch, width, width)).
    """
    if n_networks < 1 or width < 1 or batch < 1:
        raise ValueError("n_networks, width and batch must be >= 1")
    from sciml.kernels.dual import resolve_activation
    phi, _ = resolve_activation(activation)
    K = mlp_kernel(X, depth=depth, activation=activation, sigma_w=sigma_w, sigma_b=sigma_b).nngp.to(torch.float64)
    x = X.to(torch.float64)
    n, d = x.shape
    second_moment = torch.zeros(n, n, dtype=torch.float64, device=X.device)
    kw = {"dtype": torch.float64, "device": X.device, "generator": generator}
    for start in range(0, n_networks, batch):
        m = min(batch, n_networks - start)
        h = x.expand(m, n, d)                                                  # (m, n, fan_in)
        for fan_in, fan_out in [(d, width)] + [(width, width)] * (depth - 1) + [(width if depth else d, 1)]:
            W = torch.randn(m, fan_in, fan_out, **kw)
            b = torch.randn(m, 1, fan_out, **kw)
            h = h @ W * (sigma_w / math.sqrt(fan_in)) + sigma_b * b
            if fan_out != 1:
                h = phi(h)
        f = h.squeeze(-1)                                                      # (m, n)
        second_moment += f.T @ f
    return relative_frobenius(second_moment / n_networks, K)


def ensemble_covariance_error(make_net: Callable[[int, torch.Generator], torch.nn.Module], X: torch.Tensor,
                              exact_nngp: torch.Tensor, n_networks: int, width: int, *, seed: int = 0) -> float:
    """||mean over M independent networks of f f^T - K||_F / ||K||_F for any architecture (one forward pass per
    network; Monte-Carlo error ~ M^{-1/2} plus an O(1/width) bias)."""
    if n_networks < 1 or width < 1:
        raise ValueError("n_networks and width must be >= 1")
    second_moment = torch.zeros(X.shape[0], X.shape[0], dtype=torch.float64, device=X.device)
    with torch.no_grad():
        for m in range(n_networks):
            f = make_net(width, torch.Generator(device=X.device).manual_seed(seed + m))(X).to(torch.float64)
            second_moment += f[:, None] * f[None, :]
    return relative_frobenius(second_moment / n_networks, exact_nngp)
