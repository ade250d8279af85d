"""Time to relL2 <= 1e-4 on 2-D Poisson u = sin(20x) sin(20y), [0, 1]^2: structured GN vs dense GN, Adam, peers.

Usage: ``python benchmarks/bench_gp_pde.py [--sizes 64 128 256] [--adam-steps N] [--threads T]``.

Methods (one process, same problem, one core by default):
  * structured GN: ``solve(mode="gauss_newton")`` (matrix-free CG U-step, all defaults);
  * dense GN: the same outer loop with the dense U-step (``u_step="dense"``: forward-mode M x M Jacobian + dense
    least squares, with the structured run's F), only while M <= 4096;
  * faithful Adam: the paper's joint Adam (F = 20, lr 1e-2, constant) for ``--adam-steps`` steps;
  * Chen et al. GP collocation (Gaussian kernel, random points, Gauss-Newton) with N interior points;
  * PINN (tanh 3 x 100, Adam 1e-3, residual loss divided by mean(f^2)) for ``--pinn-steps`` steps.
Each row prints the wall time at which the test relL2 first reached 1e-4 (checkpoint resolution) or "not
reached" with the best relL2 and the time spent. Timings are single runs on whatever load the machine has.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import time
import warnings

import torch

from sciml.core import ConvergenceWarning
from sciml.gp_pde import gp_collocation, manufactured, poisson, solve, train_pinn

TARGET = 1e-4


def _problem():
    return manufactured(poisson(2), lambda x: torch.sin(20 * x[:, 0]) * torch.sin(20 * x[:, 1]), [(0, 1), (0, 1)])


def _first_hit(history) -> tuple[float | None, float]:
    best = min(e for e in history["rel_l2"] if math.isfinite(e))
    for e, t in zip(history["rel_l2"], history["seconds"]):
        if e <= TARGET:
            return t, best
    return None, best


def _row(name: str, n: int, hit: float | None, best: float, total: float) -> None:
    when = f"{hit:9.1f} s" if hit is not None else "not reached"
    print(f"{name:<16} {n:>4}^2 {when:>12}   best relL2 {best:.2e}   total {total:7.1f} s", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 128, 256])
    parser.add_argument("--adam-steps", type=int, default=4000)
    parser.add_argument("--pinn-steps", type=int, default=2000)
    parser.add_argument("--dense-steps", type=int, default=4, help="outer iterations of the dense GN run")
    parser.add_argument("--dense-freq-scale", type=float, default=5.36, help="F of the dense run without a GN run "
                        "(5.36 = what freq_scale=None picks at 64^2)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--skip", nargs="*", default=[], help="methods to skip: gn dense adam chen pinn")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore", ConvergenceWarning)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"{torch.get_num_threads()} thread(s), load {os.getloadavg()[0]:.1f}")
    prob = _problem()
    for n in args.sizes:
        gn = None
        if "gn" not in args.skip:
            start = time.perf_counter()
            gn = solve(prob, n, test_points=100, eval_every=1)
            _row("structured GN", n, *_first_hit(gn.history), time.perf_counter() - start)
        if "dense" not in args.skip and n * n <= 4096:
            opts = {"freq_scale": gn.config.freq_scale if gn is not None else args.dense_freq_scale}
            start = time.perf_counter()
            r = solve(prob, n, u_step="dense", steps=args.dense_steps, eval_every=1, test_points=100, **opts)
            _row("dense GN", n, *_first_hit(r.history), time.perf_counter() - start)
        if "adam" not in args.skip:
            start = time.perf_counter()
            r = solve(prob, n, mode="adam", freq_scale=20.0, steps=args.adam_steps,
                      eval_every=max(1, args.adam_steps // 40), test_points=100)
            _row("faithful Adam", n, *_first_hit(r.history), time.perf_counter() - start)
        if "chen" not in args.skip:
            # one collocation point per grid point (capped: the Gram matrix is (2N + N_b)^2 dense)
            N = min(n * n, 1600)
            start = time.perf_counter()
            c = gp_collocation(lambda v: 0.0 * v, lambda x: -prob.source(x), prob.boundary, [(0, 1), (0, 1)], N,
                               max(8, int(4 * math.sqrt(N))), sigma=0.05, generator=torch.Generator().manual_seed(0))
            g = torch.linspace(0, 1, 100, dtype=torch.float64)
            pts = torch.stack(torch.meshgrid(g, g, indexing="ij"), -1).reshape(-1, 2)
            exact = prob.solution(pts)
            err = float((c.predict(pts) - exact).norm() / exact.norm())
            total = time.perf_counter() - start
            _row(f"Chen N={N}", n, total if err <= TARGET else None, err, total)
        if "pinn" not in args.skip:
            x = torch.rand(1000, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
            scale = float(prob.source(x).pow(2).mean())
            start = time.perf_counter()
            p = train_pinn(prob, steps=args.pinn_steps, n_collocation=min(n * n, 4000), boundary_weight=scale,
                           test_points=100, generator=torch.Generator().manual_seed(0))
            total = time.perf_counter() - start
            hit = None
            for e, s in zip(p.history["rel_l2"], p.history["step"]):
                if e <= TARGET:
                    hit = total * s / args.pinn_steps
                    break
            _row("PINN", n, hit, p.best_rel_l2, total)


if __name__ == "__main__":
    main()
