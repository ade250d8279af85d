"""Bures-Wasserstein benchmarks (issue 20 §4), ratios in one process, median of repeats.

1. ``bw_barycenter`` vs pyriemann's ``mean_wasserstein`` (N = 200 matrices, n = 20, condition 1e3): wall time to
   the same answer (both run to a relative change / residual of 1e-10; the answers are compared).
2. GBWBN forward + backward vs the AIRM batch norm (SPDNetBN), batch 30 of 20 x 20, float64.

Run: ``OMP_NUM_THREADS=1 python benchmarks/bench_ot_bures.py`` (state the machine with the numbers).
"""

from __future__ import annotations

import statistics
import time

import torch

from sciml.ot.bures import bw_barycenter
from sciml.ot.gbwbn import AIRMBatchNorm, GBWBatchNorm


def spd_batch(N: int, n: int, cond: float, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    Q, _ = torch.linalg.qr(torch.randn(N, n, n, generator=g, dtype=torch.float64))
    lam = torch.logspace(0, torch.log10(torch.tensor(cond)).item(), n, dtype=torch.float64)
    lam = lam * torch.exp(0.3 * torch.randn(N, n, generator=g, dtype=torch.float64))
    return (Q * lam[:, None, :]) @ Q.mT


def timed(fn, repeats: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def bench_barycenter(repeats: int = 3) -> None:
    from pyriemann.utils.mean import mean_wasserstein

    X = spd_batch(200, 20, 1e3, 0)
    Xn = X.numpy()
    ours_s, ours = timed(lambda: bw_barycenter(X, tol=1e-10, max_iter=500), repeats)
    peer_s, peer = timed(lambda: mean_wasserstein(Xn, tol=1e-10, maxiter=500), repeats)
    peer = torch.from_numpy(peer)
    diff = float((ours.mean - peer).abs().max() / peer.abs().max())
    print(f"barycenter N=200 n=20: ours {ours_s * 1e3:.1f} ms ({ours.n_iter} it, residual {ours.residual:.1e}), "
          f"pyriemann {peer_s * 1e3:.1f} ms; speed-up {peer_s / ours_s:.2f}x; max rel diff {diff:.1e}")


def bench_batchnorm(repeats: int = 5) -> None:
    X = spd_batch(30, 20, 1e3, 1)
    for name, layer in (("GBWBN learn M theta 0.5", GBWBatchNorm(20, theta=0.5)),
                        ("GBWBN M = I theta 1", GBWBatchNorm(20, metric="identity")),
                        ("AIRM BN", AIRMBatchNorm(20))):
        def step():
            Xr = X.clone().requires_grad_(True)
            layer(Xr).pow(2).sum().backward()
        seconds, _ = timed(step, repeats)
        print(f"batch norm fwd+bwd, batch 30 of 20x20: {name}: {seconds * 1e3:.1f} ms")


if __name__ == "__main__":
    torch.set_num_threads(1)
    bench_barycenter()
    bench_batchnorm()
