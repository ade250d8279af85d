"""GPU check for sciml.gp_pde (~2-3 min on one H100): same GP-HM runs on cuda and cpu, agreement and timings.

Usage: ``python benchmarks/gpu_check_gp_pde.py``. Uses cuda when available, else runs the cpu path twice.
Prints: objective/gradient agreement (float64) on a 64x64 2-D grid, 1-D sin(100x) Adam run agreement
(2000 steps on cuda, float64), a 2-D 128x128 Adam run's time per step on each device, the default matrix-free Gauss-Newton solve at 256x256 on
each device, and a float32 run's deviation.
"""

from __future__ import annotations

import time

import torch

from sciml.gp_pde import KroneckerGridPrior, SpectralMixture1D, manufactured, poisson, solve
from sciml.gp_pde.solver import GPHMConfig, _Component, _objective, _Setup


def objective_and_grads(device: str, n: int = 64):
    prob = manufactured(poisson(2), lambda x: torch.sin(20 * x[:, 0]) * torch.sin(20 * x[:, 1]), [(0, 1), (0, 1)])
    cfg = GPHMConfig(jitter=1e-6)
    setup = _Setup(prob, (n, n), cfg, device)
    kernels = [SpectralMixture1D("gm", 30, 20.0, device=device) for _ in range(2)]
    U = torch.sin(torch.arange(n * n, dtype=torch.float64)).reshape(n, n).to(device).requires_grad_(True)
    lt = [torch.zeros((), dtype=torch.float64, device=device, requires_grad=True) for _ in range(2)]
    loss = _objective(setup, [KroneckerGridPrior(kernels, setup.axes, cfg.jitter)], [_Component(kernels, U)],
                      [True], lt[0], lt[1], cfg)
    grads = torch.autograd.grad(loss, [U] + kernels[0].parameters())
    return loss.detach().cpu(), [g.cpu() for g in grads]


def main() -> None:
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    print(f"device: {torch.cuda.get_device_name() if dev == 'cuda' else 'cpu (no cuda)'}, torch {torch.__version__}")
    t0 = time.perf_counter()
    l_cpu, g_cpu = objective_and_grads("cpu")
    l_dev, g_dev = objective_and_grads(dev)
    rel = max(float((a - b).norm() / b.norm()) for a, b in zip(g_dev, g_cpu))
    print(f"64x64 objective: cpu {float(l_cpu):.12e}, {dev} {float(l_dev):.12e}, rel diff "
          f"{abs(float(l_dev - l_cpu)) / abs(float(l_cpu)):.2e}; max rel grad diff {rel:.2e}")

    p1 = manufactured(poisson(1), lambda x: torch.sin(100 * x[:, 0]), [(0.0, 1.0)])
    res = {}
    n1 = 2000 if dev == "cuda" else 200          # cpu-only fallback: just check that it runs
    for d in ("cpu", dev):
        start = time.perf_counter()
        res[d] = solve(p1, 100, mode="adam", freq_scale=20.0, steps=n1, eval_every=n1 // 4, device=d)
        res[d + "_s"] = time.perf_counter() - start
    print(f"1-D sin(100x) Adam {n1} steps: relL2 cpu {res['cpu'].rel_l2:.6e} / {dev} {res[dev].rel_l2:.6e}; "
          f"max |U_cpu - U_{dev}| {float((res['cpu'].values - res[dev].values.cpu()).abs().max()):.2e}; "
          f"ms/step cpu {res['cpu_s'] / n1 * 1e3:.2f}, {dev} {res[dev + '_s'] / n1 * 1e3:.2f}")

    q = manufactured(poisson(2), lambda x: torch.sin(20 * x[:, 0]) * torch.sin(20 * x[:, 1]), [(0, 1), (0, 1)])
    for d, n_steps in (("cpu", 30), (dev, 300 if dev == "cuda" else 30)):
        start = time.perf_counter()
        r = solve(q, 128, mode="adam", freq_scale=20.0, steps=n_steps, eval_every=n_steps, device=d, test_points=100)
        print(f"2-D 128x128 Adam on {d}: {(time.perf_counter() - start) / n_steps * 1e3:.1f} ms/step "
              f"(incl. setup), relL2 after {n_steps} steps {r.rel_l2:.3e}")
    for d in ("cpu", dev):                      # matrix-free Gauss-Newton (default mode): same answer, time
        start = time.perf_counter()
        r = solve(q, 256, device=d, test_points=100)
        print(f"2-D 256x256 Gauss-Newton on {d}: {time.perf_counter() - start:.1f} s, {r.n_steps} its, relL2 "
              f"{r.rel_l2:.3e}, {r.status.label}")
    r32 = solve(p1, 100, mode="adam", freq_scale=20.0, steps=n1, eval_every=n1 // 4, device=dev, dtype="float32")
    print(f"float32 1-D run on {dev}: relL2 {r32.rel_l2}, status {r32.status} (float64 gives "
          f"{res[dev].rel_l2:.3e}; float32 is expected to be much worse, see the spec's pitfalls)")
    print(f"total {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
