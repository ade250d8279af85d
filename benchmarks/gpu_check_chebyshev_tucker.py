"""GPU check for Chebyshev-Tucker (< 60 s on one H100; falls back to CPU when CUDA is absent).

Builds the same formats on CPU and on the GPU (float64) from (1) a callable (erf(r/s)/r, adaptive degree) and
(2) the CP long-range potential of 2000 random charges (RHOSVD), then compares ranks, evaluations at 10^6 points,
integrals and grid samples between devices, the float32 evaluation error, and timings.

    python benchmarks/gpu_check_chebyshev_tucker.py
"""

from __future__ import annotations

import time

import torch

from sciml.linalg import chebyshev_nodes
from sciml.tensor import ChebyshevTucker, direct_sum, gaussian_sum_cp, newton_long, random_charges, sinc_gaussian_sum

BOX = [(-1.0, 1.0)] * 3


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(fn, device: torch.device, repeat: int = 3):
    if device.type == "cuda":  # warm-up (kernel launch, caches); the CPU side runs once to stay under a minute
        fn()
        _sync(device)
    else:
        repeat = 1
    best, value = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        value = fn()
        _sync(device)
        best = min(best, time.perf_counter() - start)
    return value, best


def _build(device: torch.device):
    f = lambda x: newton_long(x, 0.3)
    ct_f, t_f = _timed(lambda: ChebyshevTucker.fit(f, BOX, tol=1e-9, device=device), device, repeat=2)
    charges = random_charges(2000, generator=torch.Generator().manual_seed(0))
    charges = type(charges)(charges.positions.to(device), charges.charges.to(device))
    long, _ = sinc_gaussian_sum(device=device).split(10)
    nodes = [chebyshev_nodes(65, device=device)] * 3
    ct_cp, t_cp = _timed(lambda: ChebyshevTucker.fit(gaussian_sum_cp(charges, long, nodes), BOX, tol=1e-7),
                         device, repeat=2)
    return f, charges, long, (ct_f, t_f), (ct_cp, t_cp)


def main() -> None:
    gpu = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    cpu = torch.device("cpu")
    print(f"device: {torch.cuda.get_device_name(gpu) if gpu.type == 'cuda' else 'cpu (no CUDA)'}, "
          f"torch {torch.__version__}")
    f, charges_c, long_c, (ctf_c, tf_c), (ctcp_c, tcp_c) = _build(cpu)
    _, _, _, (ctf_g, tf_g), (ctcp_g, tcp_g) = _build(gpu)
    print(f"callable fit: ranks cpu {ctf_c.ranks} gpu {ctf_g.ranks}, degrees {ctf_c.degrees}/{ctf_g.degrees}; "
          f"time cpu {tf_c:.3f}s gpu {tf_g:.3f}s")
    print(f"CP fit (N=2000, CP rank 20000): ranks cpu {ctcp_c.ranks} gpu {ctcp_g.ranks}; "
          f"time cpu {tcp_c:.3f}s gpu {tcp_g:.3f}s")
    pts_c = 2 * torch.rand(10**6, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64) - 1
    pts_g = pts_c.to(gpu)
    n_cpu = 200_000  # the CPU reference runs on a subset to stay well under a minute
    for name, ct_c, ct_g in (("callable", ctf_c, ctf_g), ("cp", ctcp_c, ctcp_g)):
        v_c, e_c = _timed(lambda c=ct_c: c.evaluate(pts_c[:n_cpu]), cpu)
        v_g, e_g = _timed(lambda c=ct_g: c.evaluate(pts_g), gpu)
        agree = float((v_g[:n_cpu].cpu() - v_c).abs().max() / v_c.abs().max())
        v32 = ct_g.to(dtype=torch.float32).evaluate(pts_g[:n_cpu].float())
        err32 = float((v32.double().cpu() - v_c).abs().max() / v_c.abs().max())
        integral = float(ct_g.integrate().cpu() - ct_c.integrate()) / float(ct_c.integrate())
        rate_c, rate_g = n_cpu / e_c / 1e6, pts_g.shape[0] / e_g / 1e6
        print(f"{name}: evaluate cpu {rate_c:.2f} M points/s ({n_cpu} points), gpu {rate_g:.2f} M points/s "
              f"(10^6 points), speedup {rate_g / rate_c:.1f}x; gpu-vs-cpu rel max diff {agree:.1e}; "
              f"float32 rel err {err32:.1e}; integral rel diff {integral:.1e}")
    truth = direct_sum(pts_c[:5000], charges_c, long_c)
    err_g = float((ctcp_g.evaluate(pts_g[:5000]).cpu() - truth).abs().max() / truth.abs().max())
    print(f"cp vs direct summation (5000 points): rel max err {err_g:.1e} (tol 1e-7)")
    x = torch.linspace(-1, 1, 256, dtype=torch.float64)
    grid_c = ctf_c.to_grid([x] * 3).to_tensor()
    grid_g = ctf_g.to_grid([x.to(gpu)] * 3).to_tensor().cpu()
    exact = f(torch.stack(torch.meshgrid(x, x, x, indexing="ij"), -1))
    scale = grid_c.abs().max()
    print(f"to_grid 256^3: gpu-vs-cpu rel max diff {float((grid_g - grid_c).abs().max() / scale):.1e}; "
          f"vs f rel max err {float((grid_c - exact).abs().max() / scale):.1e}")


if __name__ == "__main__":
    main()
