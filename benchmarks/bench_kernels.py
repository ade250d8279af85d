"""Benchmark: exact infinite-width NTK (sciml.kernels.mlp_kernel) vs a jacrev+vmap empirical NTK of one finite net.

n = 500 inputs in R^16, ReLU MLP with 1 hidden layer of width 1024 (NTK parameterization), float64, one process,
median of repeats. neural-tangents is not benchmarked (it does not import with current jax; spec 2.4).

    python benchmarks/bench_kernels.py [--n 500] [--width 1024] [--depth 1] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import platform

import torch

from sciml.kernels import FiniteMLP, empirical_ntk, mlp_kernel, relative_frobenius
from _timing import median_time


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--d", type=int, default=16)
    parser.add_argument("--width", type=int, default=1024)
    parser.add_argument("--depth", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--chunk", type=int, default=None, help="Jacobian chunk (memory: chunk x #params); "
                        "default: all n at once")
    args = parser.parse_args()
    torch.manual_seed(0)
    X = torch.randn(args.n, args.d, dtype=torch.float64)
    settings = dict(depth=args.depth, activation="relu", sigma_w=2 ** 0.5, sigma_b=0.1)
    net = FiniteMLP(args.d, args.width, generator=torch.Generator().manual_seed(1), **settings)
    exact = mlp_kernel(X, **settings).ntk
    emp = empirical_ntk(net, X, chunk_size=args.chunk)
    t_exact = median_time(lambda: mlp_kernel(X, **settings), repeat=args.repeats, warmup=False)
    t_emp = median_time(lambda: empirical_ntk(net, X, chunk_size=args.chunk), repeat=args.repeats, warmup=False)
    n_params = sum(p.numel() for p in net.parameters())
    print(f"machine: {platform.processor() or platform.machine()}, torch threads {torch.get_num_threads()}, "
          f"load {os.getloadavg()[0]:.1f}")
    print(f"n={args.n}, d={args.d}, width={args.width}, depth={args.depth}, params={n_params}, float64")
    print(f"mlp_kernel (exact NTK+NNGP):  {t_exact * 1e3:9.1f} ms (median of {args.repeats})")
    print(f"empirical NTK (jacrev+vmap):  {t_emp * 1e3:9.1f} ms (median of {args.repeats})")
    print(f"speed ratio empirical/exact:  {t_emp / t_exact:9.1f}x")
    print(f"relative Frobenius gap empirical vs exact at this width: {relative_frobenius(emp, exact):.4f}")


if __name__ == "__main__":
    main()
