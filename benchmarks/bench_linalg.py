"""Benchmarks of the shared linear-algebra core against its peers, in one process.

    python benchmarks/bench_linalg.py [--quick] [--device cpu|cuda] [--out benchmarks/results_linalg.json]

1. Solve + logdet of (K1 ⊗ K2 ⊗ K3 + s I): sciml's KroneckerOperator vs dense Cholesky (every N where dense
   fits) and vs linear_operator's KroneckerProductLinearOperator + constant diagonal (gpytorch's engine).
2. Truncated HOSVD of a 128^3 tensor: sciml.linalg.tucker_hosvd vs tensorly.decomposition.tucker with
   n_iter_max=0 (its HOSVD initialisation, no sweep), and 10 HOOI sweeps of each.
Times are the best of several repeats; the machine is printed with the results.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import torch

from sciml.core.profiling import measure
from sciml.linalg import KroneckerOperator, tucker_hooi, tucker_hosvd


def rbf(n: int, device, lengthscale: float = 0.2) -> torch.Tensor:
    x = torch.linspace(0, 1, n, dtype=torch.float64, device=device)
    return torch.exp(-0.5 * (x[:, None] - x[None, :]) ** 2 / lengthscale**2)


def bench_kronecker(sizes, max_dense_n, device, shift=1e-2):
    from linear_operator.operators import DenseLinearOperator, KroneckerProductLinearOperator

    rows = []
    for n in sizes:
        factors = [rbf(n + k, device) for k in range(3)]
        N = (n) * (n + 1) * (n + 2)
        b = torch.randn(N, 1, dtype=torch.float64, device=device)

        def ours():
            op = KroneckerOperator(factors)
            return op.solve(b, shift=shift), op.logdet(shift=shift)

        def theirs():
            op = KroneckerProductLinearOperator(*[DenseLinearOperator(f) for f in factors]).add_diagonal(
                torch.tensor(shift, dtype=torch.float64, device=device))
            return op.solve(b), op.logdet()

        m_ours = measure(ours, repeat=5, device=device)
        m_lo = measure(theirs, repeat=5, device=device)
        torch.testing.assert_close(m_ours.value[0], m_lo.value[0], rtol=1e-6, atol=1e-8)
        row = {"n": n, "N": N, "sciml_s": m_ours.seconds, "linear_operator_s": m_lo.seconds,
               "ratio_linear_operator_over_sciml": m_lo.seconds / m_ours.seconds,
               "sciml_peak_mb": m_ours.peak_bytes / 2**20}
        if n <= max_dense_n:
            def dense():
                A = torch.kron(torch.kron(factors[0], factors[1]), factors[2])
                A.diagonal().add_(shift)
                L = torch.linalg.cholesky(A)
                return torch.cholesky_solve(b, L), 2 * torch.log(L.diagonal()).sum()

            m_dense = measure(dense, repeat=1, device=device)
            torch.testing.assert_close(m_ours.value[0], m_dense.value[0], rtol=1e-6, atol=1e-8)
            row |= {"dense_s": m_dense.seconds, "ratio_dense_over_sciml": m_dense.seconds / m_ours.seconds,
                    "dense_peak_mb": m_dense.peak_bytes / 2**20}
        rows.append(row)
        print("  " + ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()),
              flush=True)
    return rows


def bench_tucker(n, rank, device):
    import tensorly as tl
    from tensorly.decomposition import tucker

    g = torch.Generator(device=device).manual_seed(0)
    # A low-rank-plus-noise tensor: the HOSVD has a real subspace to find.
    core = torch.randn(rank, rank, rank, dtype=torch.float64, device=device, generator=g)
    fac = [torch.linalg.qr(torch.randn(n, rank, dtype=torch.float64, device=device, generator=g))[0] for _ in range(3)]
    x = torch.einsum("abc,ia,jb,kc->ijk", core, *fac) + 1e-2 * torch.randn(n, n, n, dtype=torch.float64,
                                                                          device=device, generator=g)
    backend = "pytorch"
    tl.set_backend(backend)  # benchmark script only: the library never sets tensorly's backend
    try:
        ours = measure(lambda: tucker_hosvd(x, ranks=rank), repeat=5, device=device)
        # n_iter_max=0: tensorly returns its HOSVD initialisation with no HOOI sweep (the like-for-like peer).
        theirs = measure(lambda: tucker(x, rank=[rank] * 3, init="svd", n_iter_max=0, tol=0), repeat=5,
                         device=device)
        ours_hooi = measure(lambda: tucker_hooi(x, rank, n_iter_max=10, tol=0.0, on_failure="ignore"), repeat=3,
                            device=device)
        theirs_hooi = measure(lambda: tucker(x, rank=[rank] * 3, init="svd", n_iter_max=10, tol=0), repeat=3,
                              device=device)
        err_theirs = float(torch.linalg.norm(x - tl.tucker_to_tensor(theirs_hooi.value)) / torch.linalg.norm(x))
    finally:
        tl.set_backend("numpy")
    return {"n": n, "rank": rank, "sciml_hosvd_s": ours.seconds, "tensorly_hosvd_s": theirs.seconds,
            "ratio_hosvd_tensorly_over_sciml": theirs.seconds / ours.seconds,
            "sciml_hooi10_s": ours_hooi.seconds, "tensorly_hooi10_s": theirs_hooi.seconds,
            "ratio_hooi_tensorly_over_sciml": theirs_hooi.seconds / ours_hooi.seconds,
            "sciml_hooi_rel_error": ours_hooi.value.rel_error, "tensorly_hooi_rel_error": err_theirs}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    device = torch.device(args.device)
    machine = {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
               "cpus": os.cpu_count(), "torch": torch.__version__, "threads": torch.get_num_threads(),
               "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"}
    print("machine:", machine)
    sizes = (8, 12, 16) if args.quick else (8, 12, 16, 20, 32, 64, 128)
    print("Kronecker solve + logdet:")
    kron = bench_kronecker(sizes, 16, device)
    print("Tucker on a 128^3 tensor:")
    tuck = bench_tucker(64 if args.quick else 128, 10, device)
    print("  " + ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in tuck.items()))
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"machine": machine, "kronecker": kron, "tucker": tuck,
                       "date": time.strftime("%Y-%m-%d")}, f, indent=2)


if __name__ == "__main__":
    main()
