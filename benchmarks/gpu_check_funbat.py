"""GPU check for FunBaT (< 60 s on one H100): CUDA vs CPU agreement and timings, float64.

1. Kalman/RTS smoother on the same inputs (cuda vs cpu, and vs the dense GP posterior on cuda).
2. The CEP messages and core statistics of one epoch (cuda vs cpu).
3. A full fit on the spec's N = 8000 benchmark on each device (random init is drawn on each device, so the
   fits are compared by their accuracy against the truth and by prediction agreement, not bit for bit).

    python benchmarks/gpu_check_funbat.py
"""

from __future__ import annotations

import time

import torch

from sciml.tensor import FunBaT, dense_gp_posterior, gp_smoother, spatiotemporal_tensor
from sciml.tensor import funbat_moments as mom


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    cuda = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    cpu = torch.device("cpu")
    print(f"device: {torch.cuda.get_device_name() if cuda.type == 'cuda' else 'cpu only (no CUDA)'}, "
          f"torch {torch.__version__}")
    gen = torch.Generator().manual_seed(0)
    f64 = torch.float64

    # 1. Smoother agreement.
    S, r = 200, 3
    x = torch.sort(torch.rand(S, dtype=f64, generator=gen))[0]
    B = torch.randn(S, r, r, dtype=f64, generator=gen)
    lam, eta = B @ B.transpose(-1, -2), torch.randn(S, r, dtype=f64, generator=gen)
    ref = gp_smoother(x, lam, eta, "matern32", 0.2)
    t0 = time.perf_counter()
    dev = gp_smoother(x.to(cuda), lam.to(cuda), eta.to(cuda), "matern32", 0.2)
    _sync(cuda)
    t_dev = time.perf_counter() - t0
    dmean, _ = dense_gp_posterior(x.to(cuda), lam.to(cuda), eta.to(cuda), "matern32", 0.2)
    print(f"[smoother] S={S} r={r}: max|mean cuda-cpu| = {(dev.mean.cpu() - ref.mean).abs().max():.2e}, "
          f"max|cov cuda-cpu| = {(dev.cov.cpu() - ref.cov).abs().max():.2e}, "
          f"max|kalman-dense| on cuda = {(dev.mean - dmean).abs().max():.2e}; cuda time {t_dev:.3f}s")

    # 1b. Parallel scan vs sequential smoother on cuda at S = 10^5 raw coordinates (issue 13).
    S = 100_000
    x = torch.sort(torch.rand(S, dtype=f64, generator=gen))[0].to(cuda)
    B = torch.randn(S, 2, 2, dtype=f64, generator=gen).to(cuda)
    lam, eta = B @ B.transpose(-1, -2), torch.randn(S, 2, dtype=f64, generator=gen).to(cuda)
    for method in ("parallel", "sequential"):
        t0 = time.perf_counter()
        out = gp_smoother(x, lam, eta, "matern32", 0.1, method=method)   # sequential: 10^5 small steps
        _sync(cuda)
        print(f"[smoother {method}] S={S} on cuda: {time.perf_counter() - t0:.3f}s")
        if method == "parallel":
            par = out
    print(f"[smoother] parallel vs sequential on cuda: max|mean diff| = {(par.mean - out.mean).abs().max():.2e}")

    # 2. One epoch of messages / core statistics.
    d = spatiotemporal_tensor(8000, generator=torch.Generator().manual_seed(1))
    index = [torch.unique(d.train_coords[:, k], return_inverse=True)[1] for k in range(3)]
    sizes = [int(i.max()) + 1 for i in index]
    factors = [mom.sqrt_factors(torch.rand(s, 3, dtype=f64, generator=gen), 0.1 * torch.eye(3, dtype=f64).expand(s, 3, 3))
               for s in sizes]
    core = torch.randn(3, 3, 3, dtype=f64, generator=gen)
    y = d.train_values
    out = {}
    for device in (cpu, cuda):
        args = ([f.to(device) for f in factors], [i.to(device) for i in index], y.to(device))
        _sync(device)
        t0 = time.perf_counter()
        msgs = mom.tucker_mode_messages(core.to(device), *args, 1, sizes[1])
        stats = mom.tucker_core_stats(*args)
        _sync(device)
        out[device.type] = (msgs, stats, time.perf_counter() - t0)
    (m_c, s_c, t_c), (m_g, s_g, t_g) = out["cpu"], out[cuda.type]
    diff = max(float((a.cpu() - b).abs().max() / b.abs().max()) for a, b in zip(m_g + s_g, m_c + s_c))
    print(f"[moments] N=6400 R=3: max relative diff cuda vs cpu = {diff:.2e}; cpu {t_c:.3f}s, cuda {t_g:.3f}s")

    # 3. Full fits.
    for device in (cpu, cuda):
        g = torch.Generator(device=device).manual_seed(0)
        _sync(device)
        t0 = time.perf_counter()
        res = FunBaT(ranks=2, lengthscale=0.3).fit(d.train_coords.to(device), d.train_values.to(device),
                                                   n_iter=40, generator=g, on_failure="ignore")
        mean, _ = res.predict(d.test_coords.to(device))
        _sync(device)
        seconds = time.perf_counter() - t0
        rmse = float(((mean.cpu() - d.test_values) ** 2).mean().sqrt())
        truth = float(((mean.cpu() - d.test_truth) ** 2).mean().sqrt())
        out[f"fit_{device.type}"] = mean.cpu()
        print(f"[fit] {device.type}: {res.n_iter} epochs ({res.status}), test RMSE {rmse:.4f}, vs truth {truth:.4f}, "
              f"{seconds:.2f}s")
    agree = float((out["fit_cpu"] - out[f"fit_{cuda.type}"]).abs().max())
    print(f"[fit] max |prediction cuda - cpu| = {agree:.2e} (different random init; expect < 1e-2)")


if __name__ == "__main__":
    main()
