"""Benchmarks of the shared linear-algebra core against its peers, in one process, ratios from interleaved repeats.

    OMP_NUM_THREADS=1 python benchmarks/bench_linalg.py [--quick] [--repeat 7] [--only kron,lanczos,cg,tucker]
                                                       [--out results/bench_linalg.json]

Every comparison runs ours and the peer alternately, ``--repeat`` times (default 7, at least 5; more for
millisecond-scale cases, up to 1 s of samples), and reports the median time of each and the ratio of medians (> 1: sciml faster). Alternating matters on a shared machine: the
load drifts over seconds, and back-to-back blocks of repeats would charge the drift to one side. Answers are
cross-checked in the same run. The machine, thread count and 1-minute load average are printed and saved.

1. Solve + logdet of (K1 ⊗ K2 ⊗ K3 + s I), squared-exponential factors of sizes n, n+1, n+2, s = 1e-2, one
   right-hand side, operator built inside the timed call (each side pays its own factor eigendecompositions):
   sciml KroneckerOperator vs linear_operator's KroneckerProductLinearOperator.add_diagonal (gpytorch's engine).
2. Top-10 eigenpairs of a dense 3000 x 3000 SPD matrix (eigenvalues log-spaced in [1e-3, 1]) to relative
   residual 1e-8: sciml.lanczos (adaptive Krylov size) vs scipy.sparse.linalg.eigsh (ARPACK, which="LA").
3. CG with 8 right-hand sides on the 7-point 3-D Laplacian, 30^3 = 27,000 unknowns, rtol 1e-8: one batched
   sciml.conjugate_gradient on a SparseOperator (torch CSR) vs a loop of scipy.sparse.linalg.cg on the same
   CSR matrix.
4. Tucker on a 128^3 tensor (rank 10 planted + noise): tucker_hosvd / 10 HOOI sweeps vs tensorly.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from typing import Any, Callable

import numpy as np
import torch

from sciml.linalg import KroneckerOperator, SparseOperator, conjugate_gradient, lanczos, tucker_hooi, tucker_hosvd
from sciml.testing import random_spd


def interleaved(ours: Callable[[], Any], theirs: Callable[[], Any], repeat: int,
                budget_s: float = 1.0) -> dict[str, Any]:
    """Median seconds of each, alternating the two calls (after one warm-up call of each).

    At least ``repeat`` pairs, and more (up to 200) while both sides together have used less than ``budget_s``:
    millisecond-scale cases get enough samples for the median to ignore load spikes.
    """
    value_ours, value_theirs = ours(), theirs()
    t_ours: list[float] = []
    t_theirs: list[float] = []
    while len(t_ours) < repeat or (sum(t_ours) + sum(t_theirs) < budget_s and len(t_ours) < 200):
        start = time.perf_counter()
        ours()
        t_ours.append(time.perf_counter() - start)
        start = time.perf_counter()
        theirs()
        t_theirs.append(time.perf_counter() - start)
    m_ours, m_theirs = statistics.median(t_ours), statistics.median(t_theirs)
    return {"sciml_s": m_ours, "peer_s": m_theirs, "ratio_peer_over_sciml": m_theirs / m_ours,
            "ratio_min": min(t_theirs) / max(t_ours), "ratio_max": max(t_theirs) / min(t_ours),
            "value_ours": value_ours, "value_theirs": value_theirs}


def show(row: dict[str, Any]) -> None:
    print("  " + ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()
                           if not k.startswith("value")), flush=True)


def rbf(n: int, lengthscale: float = 0.2) -> torch.Tensor:
    x = torch.linspace(0, 1, n, dtype=torch.float64)
    return torch.exp(-0.5 * (x[:, None] - x[None, :]) ** 2 / lengthscale**2)


def bench_kronecker(sizes, repeat: int, shift: float = 1e-2) -> list[dict]:
    from linear_operator.operators import DenseLinearOperator, KroneckerProductLinearOperator

    rows = []
    for n in sizes:
        factors = [rbf(n + k) for k in range(3)]
        N = n * (n + 1) * (n + 2)
        b = torch.randn(N, 1, dtype=torch.float64, generator=torch.Generator().manual_seed(n))

        def ours():
            op = KroneckerOperator(factors)
            return op.solve(b, shift=shift), op.logdet(shift=shift)

        def theirs():
            op = KroneckerProductLinearOperator(*[DenseLinearOperator(f) for f in factors]).add_diagonal(
                torch.tensor(shift, dtype=torch.float64))
            return op.solve(b), op.logdet()

        r = interleaved(ours, theirs, repeat)
        (x1, l1), (x2, l2) = r.pop("value_ours"), r.pop("value_theirs")
        row = {"n": n, "N": N, **r, "solve_rel_diff": float((x1 - x2).norm() / x2.norm()),
               "logdet_rel_diff": float(abs(l1 - l2) / abs(l2))}
        assert row["solve_rel_diff"] < 1e-6 and row["logdet_rel_diff"] < 1e-8, row
        rows.append(row)
        show(row)
    return rows


def bench_lanczos(n: int, k: int, repeat: int, tol: float = 1e-8) -> dict:
    from scipy.sparse.linalg import eigsh

    A = random_spd(n, cond=1e3, generator=torch.Generator().manual_seed(0))
    A_np = A.numpy()
    exact = torch.linalg.eigvalsh(A)[-k:]
    v0 = np.random.default_rng(1).standard_normal(n)  # both sides start from the same vector

    def ours():
        return lanczos(A, k=k, tol=tol, v0=torch.from_numpy(v0))

    def theirs():
        return eigsh(A_np, k=k, which="LA", tol=tol, v0=v0)

    r = interleaved(ours, theirs, repeat)
    res, (w, _) = r.pop("value_ours"), r.pop("value_theirs")
    row = {"n": n, "k": k, **r, "sciml_krylov_dim": res.num_iter, "sciml_status": str(res.status),
           "sciml_max_abs_err": float((res.eigenvalues - exact).abs().max()),
           "scipy_max_abs_err": float(np.abs(np.sort(w) - exact.numpy()).max())}
    show(row)
    return row


def laplacian_3d(m: int):
    import scipy.sparse as sp

    T = sp.diags([-np.ones(m - 1), 2 * np.ones(m), -np.ones(m - 1)], [-1, 0, 1])
    eye = sp.identity(m)
    return (sp.kron(sp.kron(T, eye), eye) + sp.kron(sp.kron(eye, T), eye) + sp.kron(sp.kron(eye, eye), T)).tocsr()


def bench_cg(m: int, num_rhs: int, repeat: int, rtol: float = 1e-8) -> dict:
    from scipy.sparse.linalg import cg

    L = laplacian_3d(m)
    N = L.shape[0]
    B = np.random.default_rng(0).standard_normal((N, num_rhs))
    op, B_t = SparseOperator.from_scipy(L), torch.from_numpy(B)

    def ours():
        return conjugate_gradient(op, B_t, rtol=rtol)

    def theirs():
        return np.stack([cg(L, B[:, i], rtol=rtol, maxiter=10 * N)[0] for i in range(num_rhs)], 1)

    r = interleaved(ours, theirs, repeat)
    res, X = r.pop("value_ours"), r.pop("value_theirs")
    rel = lambda Y: float((np.linalg.norm(B - L @ Y, axis=0) / np.linalg.norm(B, axis=0)).max())  # noqa: E731
    row = {"N": N, "num_rhs": num_rhs, **r, "sciml_iters": res.n_iter, "sciml_status": str(res.status),
           "sciml_true_rel_residual": rel(res.x.numpy()), "scipy_true_rel_residual": rel(X)}
    show(row)
    return row


def bench_tucker(n: int, rank: int, repeat: int) -> dict:
    import tensorly as tl
    from tensorly.decomposition import tucker

    g = torch.Generator().manual_seed(0)
    core = torch.randn(rank, rank, rank, dtype=torch.float64, generator=g)
    fac = [torch.linalg.qr(torch.randn(n, rank, dtype=torch.float64, generator=g))[0] for _ in range(3)]
    x = torch.einsum("abc,ia,jb,kc->ijk", core, *fac) + 1e-2 * torch.randn(n, n, n, dtype=torch.float64, generator=g)
    tl.set_backend("pytorch")  # benchmark script only: the library never sets tensorly's backend
    try:
        hosvd = interleaved(lambda: tucker_hosvd(x, ranks=rank),
                            lambda: tucker(x, rank=[rank] * 3, init="svd", n_iter_max=0, tol=0), repeat)
        hooi = interleaved(lambda: tucker_hooi(x, rank, n_iter_max=10, tol=0.0, on_failure="ignore"),
                           lambda: tucker(x, rank=[rank] * 3, init="svd", n_iter_max=10, tol=0), max(3, repeat // 2))
        err_theirs = float(torch.linalg.norm(x - tl.tucker_to_tensor(hooi["value_theirs"])) / torch.linalg.norm(x))
    finally:
        tl.set_backend("numpy")
    row = {"n": n, "rank": rank, "hosvd_ratio_tensorly_over_sciml": hosvd["ratio_peer_over_sciml"],
           "hosvd_sciml_s": hosvd["sciml_s"], "hooi10_ratio_tensorly_over_sciml": hooi["ratio_peer_over_sciml"],
           "hooi10_sciml_s": hooi["sciml_s"], "sciml_hooi_rel_error": hooi["value_ours"].rel_error,
           "tensorly_hooi_rel_error": err_theirs}
    show(row)
    return row


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--only", default="kron,lanczos,cg,tucker")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    if args.repeat < 5 and not args.quick:
        parser.error("--repeat must be >= 5 for a reported number")
    only = set(args.only.split(","))
    machine = {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
               "cpus": os.cpu_count(), "torch": torch.__version__, "threads": torch.get_num_threads(),
               "omp_num_threads": os.environ.get("OMP_NUM_THREADS"), "load_avg_1min": os.getloadavg()[0]}
    print("machine:", machine, flush=True)
    out: dict[str, Any] = {"machine": machine, "repeat": args.repeat, "date": time.strftime("%Y-%m-%d %H:%M")}
    if "kron" in only:
        print("Kronecker solve + logdet (ratio = linear_operator / sciml):")
        out["kronecker"] = bench_kronecker((8, 16) if args.quick else (8, 12, 16, 20, 32, 64, 128), args.repeat)
    if "lanczos" in only:
        print("Lanczos top-10 vs scipy eigsh (ratio = eigsh / sciml):")
        out["lanczos"] = bench_lanczos(1000 if args.quick else 3000, 10, args.repeat)
    if "cg" in only:
        print("CG, 8 right-hand sides, 3-D Laplacian (ratio = scipy cg loop / sciml batched):")
        out["cg"] = bench_cg(15 if args.quick else 30, 8, args.repeat)
    if "tucker" in only:
        print("Tucker (ratio = tensorly / sciml):")
        out["tucker"] = bench_tucker(64 if args.quick else 128, 10, args.repeat)
    out["load_avg_1min_end"] = os.getloadavg()[0]
    print("load average (1 min) at the end:", out["load_avg_1min_end"])
    if args.out:
        os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
        with open(args.out, "w") as f:
            json.dump(out, f, indent=2, default=str)


if __name__ == "__main__":
    main()
