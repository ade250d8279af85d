"""Benchmark: greedy BCD (sciml.numerics.bcd) against scikit-learn's coordinate descent, in one process.

    OMP_NUM_THREADS=1 python benchmarks/bench_numerics.py [--quick] [--repeat 5] [--out results/bench_numerics.json]

Problem: non-negative L1 least squares on data set A (spec 4.3), ``0.5 ||A x - b||^2 + lam sum(x)``, ``x >= 0``.
sklearn's ``ElasticNet(l1_ratio=1, positive=True, alpha=lam/m, fit_intercept=False)`` minimises the same objective
divided by m, so both have the same minimiser. Same tolerance: each side stops on its own criterion at ``tol``
(ours: projected-gradient norm relative to the start; sklearn: duality gap relative to ||b||^2 / m), and both
answers are checked against a tight reference (our TMP run at tol 1e-13): the relative objective gap each reached
is printed beside the time. Timings: ours and the peer alternately, ``--repeat`` pairs after one warm-up each,
median of each and the ratio of medians (> 1: sciml faster). Machine, thread count and load average are printed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import warnings

import torch

from bench_linalg import interleaved          # benchmarks/ is sys.path[0] when run as a script
from sciml.numerics.bcd import NonNegL1LeastSquares, bcd, dataset_a


def bench(n_rows: int, n_cols: int, lam_per_row: float, tol: float, repeat: int, configs) -> list[dict]:
    from sklearn.exceptions import ConvergenceWarning as SkConvergenceWarning
    from sklearn.linear_model import ElasticNet

    A, b, _ = dataset_a(n_rows, n_cols, seed=1)
    lam = lam_per_row * n_rows
    problem = NonNegL1LeastSquares(A, b, lam)
    reference = bcd(problem, rule="gsd", partition="variable", block_size=100, update="hb", max_iter=20_000,
                    tol=1e-13, on_failure="ignore")
    f_star = reference.history[-1].item()
    A_np, b_np = A.numpy(), b.numpy()

    def peer():
        model = ElasticNet(alpha=lam / n_rows, l1_ratio=1.0, positive=True, fit_intercept=False, tol=tol,
                           max_iter=100_000, selection="cyclic")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SkConvergenceWarning)
            model.fit(A_np, b_np)
        return model.coef_, model.n_iter_

    rows = []
    for rule, partition, block_size, update in configs:
        def ours():
            res = bcd(problem, rule=rule, partition=partition, block_size=block_size, update=update,
                      max_iter=200_000, tol=tol, on_failure="ignore")
            return res.x, res.iterations

        timing = interleaved(ours, peer, repeat, budget_s=0.0)        # alternating pairs, medians
        t_ours, t_peer = timing["sciml_s"], timing["peer_s"]
        (x_ours, it_ours), (x_peer, it_peer) = timing["value_ours"], timing["value_theirs"]
        gap = lambda x: (problem.f(x) - f_star) / abs(f_star)           # noqa: E731
        row = {"size": f"{n_rows}x{n_cols}", "lam": lam, "tol": tol,
               "ours": f"{rule}/{partition}/{block_size}/{update}",
               "sciml_s": t_ours, "sklearn_s": t_peer, "ratio_sklearn_over_sciml": t_peer / t_ours,
               "sciml_iterations": it_ours, "sklearn_epochs": int(it_peer),
               "sciml_rel_gap": gap(x_ours), "sklearn_rel_gap": gap(torch.as_tensor(x_peer))}
        print("  " + ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()),
              flush=True)
        rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="300 x 1500 only")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--out", default="results/bench_numerics.json")
    args = parser.parse_args()
    if args.repeat < 3:
        parser.error("--repeat must be >= 3 (medians)")
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    machine = {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
               "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
               "omp_num_threads": os.environ.get("OMP_NUM_THREADS"), "load_avg_1min": os.getloadavg()[0]}
    print(json.dumps(machine))
    configs = [("gsd", "variable", 50, "hb"), ("gsq", "sort", 5, "lb")]
    sizes = [(300, 1500)] if args.quick else [(300, 1500), (1000, 10_000)]
    out = {"machine": machine, "rows": []}
    for n_rows, n_cols in sizes:
        print(f"data set A {n_rows} x {n_cols}, non-negative L1 (lam = 50 m), tol 1e-8")
        out["rows"] += bench(n_rows, n_cols, 50.0, 1e-8, args.repeat, configs)
    out["load_avg_1min_end"] = os.getloadavg()[0]
    print("load average (1 min) at the end:", out["load_avg_1min_end"])
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w") as fh:
        json.dump(out, fh, indent=1)


if __name__ == "__main__":
    main()
