"""GP-HM objective + gradient per iteration: Kronecker (sciml.gp_pde) vs the same objective with a dense N x N covariance.

Usage: ``python benchmarks/bench_gp_pde.py [--quick] [--max-dense N] [--threads T]``. 2-D Poisson on grids from
16^2 upwards, GM kernel with Q = 30 per dimension; the dense version forms ``C = C_1 ⊗ C_2`` and the derivative
cross-covariances ``K''_1 ⊗ C_2``, ``C_1 ⊗ K''_2`` as N x N matrices and uses a Cholesky of C. Prints time per
iteration (forward + backward, best of 3) and peak extra memory for both, their ratio, and the largest grid each
reaches. Both run in this one process on the same data.
"""

from __future__ import annotations

import argparse
import os
import platform

import torch

from sciml.core.profiling import measure
from sciml.gp_pde import KroneckerGridPrior, SpectralMixture1D, manufactured, poisson
from sciml.gp_pde.solver import GPHMConfig, _Component, _objective, _Setup


def _setup(n: int):
    prob = manufactured(poisson(2), lambda x: torch.sin(20 * x[:, 0]) * torch.sin(20 * x[:, 1]), [(0, 1), (0, 1)])
    cfg = GPHMConfig()
    setup = _Setup(prob, (n, n), cfg, "cpu")
    kernels = [SpectralMixture1D("gm", 30, 20.0) for _ in range(2)]
    U = torch.randn(n, n, dtype=torch.float64, generator=torch.Generator().manual_seed(0), requires_grad=True)
    lt = [torch.zeros((), dtype=torch.float64, requires_grad=True) for _ in range(2)]
    return setup, cfg, kernels, U, lt


def kron_step(setup, cfg, kernels, U, lt):
    prior = KroneckerGridPrior(kernels, setup.axes, cfg.jitter, uniform=[True, True])
    loss = _objective(setup, [prior], [_Component(kernels, U)], [True], lt[0], lt[1], cfg)
    loss.backward()
    return float(loss.detach())


def dense_step(setup, cfg, kernels, U, lt):
    eye = [torch.eye(x.numel(), dtype=x.dtype) for x in setup.axes]
    mats = [k.toeplitz(x, 2) for k, x in zip(kernels, setup.axes)]
    C1, C2 = (m[0] + cfg.jitter * e for m, e in zip(mats, eye))
    C = torch.kron(C1, C2)
    L = torch.linalg.cholesky(C)
    u = U.reshape(-1)
    alpha = torch.cholesky_solve(u[:, None], L)[:, 0]
    H = (torch.kron(mats[0][2], C2) + torch.kron(C1, mats[1][2])) @ alpha - setup.F.reshape(-1)
    ub = u[setup.bidx]
    t1, t2 = lt[0].exp(), lt[1].exp()
    loss = (torch.log(torch.diagonal(L)).sum() + 0.5 * u @ alpha
            + cfg.lambda_b * (-0.5 * setup.Nb * lt[0] + 0.5 * t1 * ((ub - setup.g) ** 2).sum())
            - 0.5 * setup.M * lt[1] + 0.5 * t2 * (H**2).sum())
    loss.backward()
    return float(loss.detach())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="grids 16..32 only")
    parser.add_argument("--max-dense", type=int, default=4096, help="largest N for the dense version")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 on a shared CPU)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    sizes = (16, 24, 32) if args.quick else (16, 24, 32, 48, 64, 128, 256)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch "
          f"{torch.__version__}, {torch.get_num_threads()} thread(s), load {os.getloadavg()[0]:.1f}")
    print(f"{'grid':>8} {'N':>7} {'kron ms':>9} {'kron MB':>8} {'dense ms':>9} {'dense MB':>9} {'speedup':>8} "
          f"{'|loss diff|/|loss|':>19}")
    for n in sizes:
        data = _setup(n)
        kron_step(*data)           # warm up
        k = measure(lambda data=data: kron_step(*data), repeat=3)
        row = f"{n:>5}^2 {n * n:>7} {k.seconds * 1e3:>9.2f} {k.peak_bytes / 2**20:>8.1f}"
        if n * n <= args.max_dense:
            d = measure(lambda data=data: dense_step(*data), repeat=1 if n * n > 2000 else 3)
            diff = abs(d.value - k.value) / abs(d.value)
            row += (f" {d.seconds * 1e3:>9.1f} {d.peak_bytes / 2**20:>9.1f} {d.seconds / k.seconds:>7.1f}x "
                    f"{diff:>19.2e}")
        else:
            row += f" {'(too big)':>9}"
        print(row, flush=True)


if __name__ == "__main__":
    main()
