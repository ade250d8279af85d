"""Simulated annealing for QUBOs: many independent Metropolis chains, vectorised over chains."""

from __future__ import annotations

import dataclasses
import math

import torch

from sciml.core import Result, check_generator
from sciml.quantum.qubo import QUBO


@dataclasses.dataclass(frozen=True)
class AnnealResult(Result):
    """Best state over all chains and sweeps.

    Attributes:
        x: (n,) int64 best bitstring. energy: its energy. final_energies: (chains,) last-sweep energies.
    """

    x: torch.Tensor
    energy: float
    final_energies: torch.Tensor


def simulated_annealing(qubo: QUBO, num_sweeps: int = 1000, num_chains: int = 32,
                        beta_range: tuple[float, float] | None = None,
                        generator: torch.Generator | None = None) -> AnnealResult:
    """Single-flip Metropolis with a geometric inverse-temperature schedule.

    Reference: Kirkpatrick, Gelatt, Vecchi, Science 220 (1983); the default beta range follows dwave-samplers
    (hot: a typical single-flip change is accepted with probability 1/2; cold: the smallest is rejected with
    probability 1 - 1/100).

    Args:
        qubo: the problem. num_sweeps: sweeps over all variables. num_chains: independent chains.
        beta_range: (beta_hot, beta_cold); default from the coefficient scale.
        generator: torch.Generator for the initial states and acceptances.

    Returns:
        AnnealResult.
    """
    if num_sweeps < 1 or num_chains < 1:
        raise ValueError(f"num_sweeps and num_chains must be >= 1, got {num_sweeps}, {num_chains}")
    Q = qubo.Q
    check_generator(generator, Q.device)
    n = qubo.num_vars
    if beta_range is None:
        field = Q.abs().sum(1) * 2
        nz = Q.abs()[Q.abs() > 0]
        smallest = float(nz.min()) if nz.numel() else 1.0
        beta_range = (math.log(2) / max(float(field.max()), 1e-12), math.log(100) / max(smallest, 1e-12))
    b0, b1 = beta_range
    if not (0 < b0 <= b1):
        raise ValueError(f"beta_range must satisfy 0 < hot <= cold, got {beta_range}")
    x = torch.randint(0, 2, (num_chains, n), generator=generator, device=Q.device).to(torch.float64)
    g = x @ Q                                                       # (chains, n) local fields Q x
    energy = (g * x).sum(1)
    best_e, best_x = energy.min().clone(), x[energy.argmin()].clone()
    betas = torch.logspace(math.log10(b0), math.log10(b1), num_sweeps, dtype=torch.float64)
    diag = torch.diagonal(Q)
    for beta in betas.tolist():
        u = torch.rand(num_chains, n, generator=generator, device=Q.device, dtype=torch.float64)
        for i in range(n):
            d = 1 - 2 * x[:, i]
            delta = d * (2 * g[:, i] + d * diag[i])
            accept = (delta <= 0) | (u[:, i] < torch.exp(-beta * delta.clamp(min=0)))
            step = torch.where(accept, d, torch.zeros_like(d))
            x[:, i] += step
            g += step[:, None] * Q[i][None, :]
            energy += torch.where(accept, delta, torch.zeros_like(delta))
        k = int(energy.argmin())
        if energy[k] < best_e:
            best_e, best_x = energy[k].clone(), x[k].clone()
    return AnnealResult(best_x.to(torch.int64), float(best_e) + qubo.offset, energy + qubo.offset)
