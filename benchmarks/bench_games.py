"""Benchmark: SGN certification of the 64-D LQ game (sciml.games.certify_linear: block bounds, weights, one weighted
spectral norm) vs finding the stable Euler / RK4 step by spectral-radius bisection (the authors' ground truth:
form the one-step matrix and its eigenvalues for every trial h).

Both answer "which step sizes are safe"; SGN answers conservatively with one SVD, the peer exactly with ~50 dense
eigenproblems per method. float64, one process, median of repeats.

Also times the weight search (Perron closed form vs cvxpy LMI bisection vs Nelder-Mead) on a random N-player game.

    python benchmarks/bench_games.py [--lam 1.0] [--d 64] [--repeats 5] [--players 8]
"""

from __future__ import annotations

import argparse
import os
import platform

import torch

from sciml.games import certify_linear, spectral_radius, step_matrix
from sciml.games.lq import lq_game
from _timing import median_time


def bisection_threshold(H: torch.Tensor, method: str, h_hi: float, tol: float = 1e-6) -> float:
    """Largest h with rho(step matrix) < 1 by bisection on [0, h_hi] (h_hi must be unstable)."""
    lo, hi = 0.0, h_hi
    while hi - lo > tol:
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if spectral_radius(step_matrix(H, mid, method)) < 1 else (lo, mid)
    return lo


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lam", type=float, default=1.0)
    parser.add_argument("--d", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--players", type=int, default=8, help="players in the weight-search timing")
    args = parser.parse_args()
    H = lq_game(args.lam, d=args.d)
    blocks = [args.d // 2, args.d // 2]
    weights = [0.05 / 10.0, 1.0]
    cert = certify_linear(H, blocks, weights=weights)
    certify_linear(H, blocks)                       # warm-up (first-call overheads)
    h_hi = 4.0 / cert.beta                          # the authors' upper end of the h search (unstable here)
    true_euler = bisection_threshold(H, "euler", h_hi)
    true_rk4 = bisection_threshold(H, "rk4", h_hi)
    t_sgn = median_time(lambda: certify_linear(H, blocks, weights=weights), repeat=args.repeats, warmup=False)
    t_sgn_opt = median_time(lambda: certify_linear(H, blocks), repeat=args.repeats, warmup=False)
    t_bis = median_time(lambda: (bisection_threshold(H, "euler", h_hi), bisection_threshold(H, "rk4", h_hi)),
                         args.repeats)
    print(f"machine: {platform.processor() or platform.machine()}, torch threads {torch.get_num_threads()}, "
          f"load {os.getloadavg()[0]:.1f}")
    print(f"64-D LQ game d={args.d}, lambda={args.lam}, float64")
    print(f"SGN certificate, fixed w=(b/a,1):   {t_sgn * 1e3:8.2f} ms  h_euler {cert.h_euler:.4f}  h_rk4 {cert.h_rk4:.4f}")
    print(f"SGN certificate, optimal weights:   {t_sgn_opt * 1e3:8.2f} ms")
    print(f"spectral-radius bisection (both):   {t_bis * 1e3:8.2f} ms  h_euler {true_euler:.4f}  h_rk4 {true_rk4:.4f}")
    print(f"speed ratio bisection / SGN:        {t_bis / t_sgn:8.1f}x (fixed w), {t_bis / t_sgn_opt:.1f}x (optimal w)")
    print(f"certified / true step: Euler {cert.h_euler / true_euler:.3f}, RK4 {cert.h_rk4 / true_rk4:.3f}")
    _weight_search(args.players, args.repeats)


def _weight_search(n: int, repeats: int) -> None:
    """Weight search on one random n-player game: Perron closed form vs LMI bisection (cvxpy) vs Nelder-Mead."""
    from sciml.games import optimal_weights, small_gain_ratio
    gen = torch.Generator().manual_seed(0)
    mu = 0.5 + torch.rand(n, generator=gen, dtype=torch.float64)
    L = torch.rand(n, n, generator=gen, dtype=torch.float64) * (1 - torch.eye(n, dtype=torch.float64))
    L = L * 0.8 / small_gain_ratio(mu, L)
    methods = ["perron", "nelder_mead"]
    try:
        import cvxpy  # noqa: F401
        methods.append("lmi")
    except ImportError:
        print("cvxpy not installed: LMI weight search not timed")
    times = {m: median_time(lambda m=m: optimal_weights(mu, L, method=m), repeat=repeats) for m in methods}
    sup = optimal_weights(mu, L).alpha_sup
    print(f"weight search, {n} players (small-gain ratio 0.8):")
    for m in methods:
        gap = sup - optimal_weights(mu, L, method=m).alpha
        ratio = times[m] / times["perron"]
        print(f"  {m:12s} {times[m] * 1e3:9.2f} ms  alpha gap to sup {gap:.1e}  ({ratio:.0f}x Perron)")


if __name__ == "__main__":
    main()
