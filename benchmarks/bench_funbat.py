"""FunBaT fit time: state-space (Kalman/RTS) vs the dense-GP formulation of the same model vs gpytorch exact GP.

Sweep 1 (N): the spec's generator with fixed 30×30×100 distinct coordinates, N from 1e3 to 1e5 observations;
FunBaT should grow linearly in N. Sweep 2 (S): distinct coordinates per mode S from 50 to 1600 with N = 10 S;
the Kalman smoother is linear in S, the dense GP formulation (same model, same messages) cubic. gpytorch exact
GP regression (20 Adam steps, Cholesky) runs while N <= --gp-max. Every fit runs a fixed number of epochs.

Sweep 3: one smoother pass, parallel scan vs sequential, S = 1e3..1e5 raw coordinates. Then a 4-mode fit on
10^4 raw (unrounded) coordinates per mode.

    python benchmarks/bench_funbat.py [--quick] [--only smoother|four-mode|gibbs|predict]

Run on a shared 2-core machine: compare ratios within one run, not absolute seconds.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import time

import torch

from sciml.tensor import FunBaT, fit_gp_regression, spatiotemporal_tensor
from sciml.tensor.funbat_data import spatiotemporal_truth


def _time(fn, *args, repeat: int = 1, **kwargs) -> float:
    best = math.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn(*args, **kwargs)
        best = min(best, time.perf_counter() - t0)
    return best


def _fit(coords, values, epochs, smoother="parallel"):
    return FunBaT(ranks=2, lengthscale=0.3, smoother=smoother, tol=1e-300, learn=(), restarts=1).fit(
        coords, values, n_iter=epochs, generator=torch.Generator().manual_seed(0), on_failure="ignore")


def _slope(xs, ys) -> float:
    lx = torch.log(torch.tensor(xs, dtype=torch.float64))
    ly = torch.log(torch.tensor(ys, dtype=torch.float64))
    lx = lx - lx.mean()
    return float((lx * (ly - ly.mean())).sum() / (lx * lx).sum())


def sweep_n(sizes, epochs, gp_max, gp_iter):
    print(f"\nSweep 1: N observations, fixed 30x30x100 distinct coordinates, R = 2, {epochs} epochs")
    print(f"{'N':>8} {'funbat_s':>9} {'dense_s':>9} {'gpytorch_s':>11} {'gp/funbat':>10}")
    ns, times = [], []
    for n in sizes:
        d = spatiotemporal_tensor(n, test_fraction=0.01, generator=torch.Generator().manual_seed(0))
        t_fun = _time(_fit, d.train_coords, d.train_values, epochs)
        t_dense = _time(_fit, d.train_coords, d.train_values, epochs, "dense")
        t_gp = math.nan
        if n <= gp_max:
            t_gp = _time(fit_gp_regression, d.train_coords, d.train_values, n_iter=gp_iter, max_train=None)
        ns.append(d.train_coords.shape[0])
        times.append(t_fun)
        print(f"{ns[-1]:>8} {t_fun:>9.3f} {t_dense:>9.3f} {t_gp:>11.3f} {t_gp / t_fun:>10.2f}")
    upper = [i for i, n in enumerate(ns) if n >= 8000] or list(range(len(ns)))
    print(f"growth exponent of FunBaT time in N (all sizes): {_slope(ns, times):.2f}; "
          f"(N >= 8000): {_slope([ns[i] for i in upper], [times[i] for i in upper]):.2f}")


def sweep_s(sizes, epochs):
    print(f"\nSweep 2: S distinct coordinates per mode (N = 10 S), R = 2, {epochs} epochs")
    print(f"{'S':>6} {'N':>7} {'kalman_s':>9} {'dense_s':>9} {'dense/kalman':>13}")
    ss, tk, td = [], [], []
    for s in sizes:
        gen = torch.Generator().manual_seed(s)
        coords = torch.rand(10 * s, 3, dtype=torch.float64, generator=gen)
        coords = torch.round(coords * s) / s      # about S distinct values per mode
        values = spatiotemporal_truth(coords) + 0.1 * torch.randn(10 * s, dtype=torch.float64, generator=gen)
        t_k = _time(_fit, coords, values, epochs)
        t_d = _time(_fit, coords, values, epochs, "dense") if s <= 800 else math.nan
        ss.append(s)
        tk.append(t_k)
        td.append(t_d)
        print(f"{s:>6} {10 * s:>7} {t_k:>9.3f} {t_d:>9.3f} {t_d / t_k:>13.2f}")
    dense_pts = [(s, t) for s, t in zip(ss, td) if math.isfinite(t)]
    print(f"growth exponent in S: kalman {_slope(ss, tk):.2f}, dense "
          f"{_slope(*zip(*dense_pts)) if len(dense_pts) > 1 else math.nan:.2f}")


def sweep_smoother(sizes, device="cpu"):
    """One smoothing pass (r = 2, Matérn-3/2, raw random coordinates): parallel scan vs sequential Kalman/RTS."""
    from sciml.tensor import gp_smoother

    print(f"\nSweep 3: one smoother pass on {device}, S raw distinct coordinates, r = 2 (median of 3)")
    print(f"{'S':>7} {'parallel_s':>11} {'sequential_s':>13} {'seq/par':>8} {'max|diff|':>10}")
    for s in sizes:
        gen = torch.Generator().manual_seed(s)
        x = torch.sort(torch.rand(s, dtype=torch.float64, generator=gen))[0].to(device)
        b = torch.randn(s, 2, 2, dtype=torch.float64, generator=gen).to(device)
        lam, eta = b @ b.mT, torch.randn(s, 2, dtype=torch.float64, generator=gen).to(device)
        times, outs = {}, {}
        for method in ("parallel", "sequential"):
            if method == "sequential" and s > 20000:
                times[method] = math.nan
                continue
            runs = []
            for _ in range(3):
                t0 = time.perf_counter()
                outs[method] = gp_smoother(x, lam, eta, "matern32", 0.1, method=method)
                if device != "cpu":
                    torch.cuda.synchronize()
                runs.append(time.perf_counter() - t0)
            times[method] = sorted(runs)[1]
        diff = (float((outs["parallel"].mean - outs["sequential"].mean).abs().max())
                if "sequential" in outs else math.nan)
        print(f"{s:>7} {times['parallel']:>11.3f} {times['sequential']:>13.3f} "
              f"{times['sequential'] / times['parallel']:>8.1f} {diff:>10.1e}")


def four_mode_raw(n_obs: int, epochs: int) -> None:
    """A 4-mode FunBaT fit on raw (unrounded) coordinates: ~n_obs distinct values per mode, parallel smoother."""
    gen = torch.Generator().manual_seed(0)
    coords = torch.rand(n_obs, 4, dtype=torch.float64, generator=gen)
    truth = (torch.sin(3 * coords[:, 0]) + coords[:, 1]) * torch.cos(2 * coords[:, 2]) * (1 + coords[:, 3])
    values = truth + 0.05 * torch.randn(n_obs, dtype=torch.float64, generator=gen)
    t0 = time.perf_counter()
    # One start: the default restarts=5 (full runs, the best kept) multiply this time by up to 5.
    res = FunBaT(ranks=2, lengthscale=0.3, restarts=1).fit(coords, values, n_iter=epochs, generator=gen,
                                                           on_failure="ignore")
    seconds = time.perf_counter() - t0
    rmse = float(((res.predict(coords, include_noise=False)[0] - truth) ** 2).mean().sqrt())
    print(f"\n4-mode fit on raw coordinates (one start): N = {n_obs}, distinct per mode "
          f"{[g.shape[0] for g in res.grids]}, {res.n_iter} epochs ({res.status.label}) in {seconds:.1f} s, "
          f"train RMSE vs truth {rmse:.4f}, learned lengthscales {[round(v, 3) for v in res.lengthscales]}")


def gibbs_cost(sizes) -> None:
    """FunBaTGibbs (default: 200 burn-in + 400 × 2 sweeps, ℓ/σ² sampled) after a default fit, on prior draws."""
    from sciml.tensor import FunBaTGibbs, prior_draw_tensor

    print("\nGibbs refinement on prior draws (30 x 30 x 100 coordinates, rank 2), one thread")
    print(f"{'N':>6} {'fit_s':>7} {'gibbs_s':>8} {'ms/sweep':>9} {'gibbs/fit':>10} {'min ESS':>8} {'predict_s':>10}")
    for n in sizes:
        d = prior_draw_tensor(n, generator=torch.Generator().manual_seed(0))
        t0 = time.perf_counter()
        fit = FunBaT().fit(d.train_coords, d.train_values, generator=torch.Generator().manual_seed(0),
                           on_failure="ignore")
        t1 = time.perf_counter()
        sampler = FunBaTGibbs()
        post = sampler.sample(fit, d.train_coords, d.train_values, generator=torch.Generator().manual_seed(1),
                              on_failure="ignore")
        t2 = time.perf_counter()
        post.predict(d.extrap_coords)
        t3 = time.perf_counter()
        sweeps = sampler.burn_in + sampler.n_samples * sampler.thin
        print(f"{n:>6} {t1 - t0:>7.1f} {t2 - t1:>8.1f} {1e3 * (t2 - t1) / sweeps:>9.1f} {(t2 - t1) / (t1 - t0):>10.2f} "
              f"{post.ess:>8.0f} {t3 - t2:>10.2f}")


def predict_cost(n_points: tuple[int, ...] = (2000, 20000)) -> None:
    """The marginal predictive (hyperparameters integrated out, up to 64 (ℓ, σ²) pairs per mode): GP bridges
    from the training chain for all pairs at once (``gp_predict``, the default) vs the previous route, one
    smoother pass over the union of training and new coordinates per pair (same moments; max difference shown)."""
    from sciml.tensor import funbat_moments as mom
    from sciml.tensor import prior_draw_tensor
    from sciml.tensor.funbat import _posterior_at, _union_smoother

    d = prior_draw_tensor(1000, generator=torch.Generator().manual_seed(0))
    extrap = torch.rand(max(n_points), 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    extrap[:, 2] = 1.0 + 0.3 * extrap[:, 2]           # as the calibration's extrapolation: t in [1, 1.3]
    fit = FunBaT().fit(d.train_coords, d.train_values, generator=torch.Generator().manual_seed(0), on_failure="ignore")
    pairs = [len(fit.hyperparameter_posterior[k][0]) for k in range(3)]

    def union_route(points):
        out = []
        for k in range(3):
            at = _union_smoother(fit.model, fit.grids[k], fit.precision[k], fit.shift[k], points[:, k].contiguous())
            first = second = 0.0
            for ell, var, w in zip(*fit.hyperparameter_posterior[k]):
                mean, cov = at(ell, var)
                first, second = first + w * mean, second + w * mom.second_moments(mean, cov)
            out.append((first, second - first[:, :, None] * first[:, None, :]))
        return out

    print(f"\nMarginal predictive, prior draw N = 1000 (30 x 30 x 100 coordinates), (ℓ, σ²) pairs per mode {pairs}")
    print(f"{'points':>7} {'bridge_s':>9} {'union_s':>8} {'ratio':>6} {'max |Δmean|':>12}")
    for n in n_points:
        points = extrap[:n]
        runs = {"bridge": [], "union": []}
        for _ in range(3):
            for name, fn in (("bridge", fit.predict), ("union", union_route)):
                t0 = time.perf_counter()
                fn(points)
                runs[name].append(time.perf_counter() - t0)
        theirs = union_route(points)
        diff = max(float((_posterior_at(fit, k, points[:, k].contiguous())[0] - theirs[k][0]).abs().max())
                   for k in range(3))
        b, u = sorted(runs["bridge"])[1], sorted(runs["union"])[1]
        print(f"{n:>7} {b:>9.2f} {u:>8.2f} {u / b:>6.1f} {diff:>12.1e}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes (about a minute)")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--gp-max", type=int, default=2000)
    parser.add_argument("--gp-iter", type=int, default=20)
    parser.add_argument("--only", choices=("all", "smoother", "four-mode", "gibbs", "predict"), default="all")
    args = parser.parse_args()
    torch.set_num_threads(1)    # tiny LAPACK calls stall with 2 OpenMP threads on a loaded machine
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch "
          f"{torch.__version__}, 1 thread, load average {os.getloadavg()[0]:.1f}")
    if args.only == "smoother":
        sweep_smoother([1000, 10000] if args.quick else [1000, 10000, 100000])
        return
    if args.only == "four-mode":
        four_mode_raw(10000, 30 if args.quick else 100)
        return
    if args.only == "gibbs":
        gibbs_cost([1000, 8000])
        return
    if args.only == "predict":
        predict_cost()
        return
    warm = spatiotemporal_tensor(500, generator=torch.Generator().manual_seed(0))
    _fit(warm.train_coords, warm.train_values, 2)                       # first-call overheads out of the timings
    _fit(warm.train_coords, warm.train_values, 2, "dense")
    fit_gp_regression(warm.train_coords, warm.train_values, n_iter=2, max_train=None)
    if args.quick:
        sweep_n([1000, 3000, 10000, 30000], args.epochs, min(args.gp_max, 1000), args.gp_iter)
        sweep_s([50, 100, 200, 400], args.epochs)
    else:
        sweep_n([1000, 2000, 5000, 10000, 30000, 100000], args.epochs, args.gp_max, args.gp_iter)
        sweep_s([50, 100, 200, 400, 800], args.epochs)
    sweep_smoother([1000, 10000] if args.quick else [1000, 10000, 100000])
    four_mode_raw(10000, 30 if args.quick else 100)
    gibbs_cost([1000] if args.quick else [1000, 8000])


if __name__ == "__main__":
    main()
