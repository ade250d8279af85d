"""GPU check of the shared core: the same calls on CUDA agree with CPU float64, and how fast they are.

    python benchmarks/gpu_check_linalg.py            (uses cuda when available; < 60 s on one H100)
    python benchmarks/gpu_check_linalg.py --new      (only the issue-11 checks: float32 Kronecker vs float64,
                                                       sparse batched CG, SPD functions, fused Newton-Schulz)
"""

from __future__ import annotations

import time

import torch

from sciml.linalg import (KroneckerOperator, chebyshev_coefficients, chebyshev_evaluate, chebyshev_nodes,
                          conjugate_gradient, hutchinson_trace, lanczos, newton_schulz, tucker_hosvd)


def timed(fn, device):
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    out = fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return out, time.perf_counter() - start


def issue11_checks(device: torch.device) -> None:
    """The numerics of issue 11 on the device: each line prints the error against a CPU float64 reference."""
    import scipy.sparse as sp

    from sciml.linalg import SparseOperator, spd_sqrtm

    def rbf(n):
        x = torch.linspace(0, 1, n, dtype=torch.float64)
        return torch.exp(-0.5 * (x[:, None] - x[None, :]) ** 2 / 0.2**2)

    g = torch.Generator().manual_seed(0)
    factors = [rbf(n) for n in (64, 65, 66)]
    b = torch.randn(64 * 65 * 66, 2, generator=g, dtype=torch.float64)
    ref = KroneckerOperator(factors).solve(b, 0.1)
    op32 = KroneckerOperator([f.float().to(device) for f in factors])
    x32, t = timed(lambda: op32.solve(b.float().to(device), 0.1), device)
    print(f"float32 Kronecker solve N=274,560 shift 0.1 on {device.type}: {t * 1e3:.2f} ms, rel err vs float64 "
          f"{float((x32.double().cpu() - ref).norm() / ref.norm()):.1e} (condition estimate "
          f"{op32.conditioning(0.1).condition_estimate:.1e})")
    m = 40
    T = sp.diags([-torch.ones(m - 1).numpy(), 2 * torch.ones(m).numpy(), -torch.ones(m - 1).numpy()], [-1, 0, 1])
    eye = sp.identity(m)
    L = (sp.kron(sp.kron(T, eye), eye) + sp.kron(sp.kron(eye, T), eye) + sp.kron(sp.kron(eye, eye), T)).tocsr()
    op = SparseOperator.from_scipy(L, device=device)
    B = torch.randn(m**3, 8, generator=g, dtype=torch.float64).to(device)
    res, t = timed(lambda: conjugate_gradient(op, B, rtol=1e-8), device)
    true = float(((B - op @ res.x).norm(dim=0) / B.norm(dim=0)).max())
    print(f"batched CG 8 rhs, 3-D Laplacian N={m**3} on {device.type}: {t:.3f}s, {res.n_iter} it, {res.status}, "
          f"true rel residual {true:.1e}")
    A = torch.stack([torch.eye(64, dtype=torch.float64) * 2, rbf(64) + 0.1 * torch.eye(64, dtype=torch.float64)])
    leaf = A.to(device).requires_grad_(True)
    out, t = timed(lambda: spd_sqrtm(leaf), device)
    (grad,) = torch.autograd.grad(out.sum(), leaf)
    print(f"spd_sqrtm batch of 2 (one with a 64-fold eigenvalue) on {device.type}: {t * 1e3:.2f} ms, residual "
          f"{float((out @ out - leaf).detach().abs().max()):.1e}, gradient finite: {bool(torch.isfinite(grad).all())}")
    from torch.optim._muon import _zeropower_via_newtonschulz

    G = torch.randn(4096, 1024, generator=g).to(device)
    ref = newton_schulz(G.double(), dtype=torch.float64)
    ours = newton_schulz(G).double()
    theirs = _zeropower_via_newtonschulz(G, (3.4445, -4.7750, 2.0315), 5, 1e-7).double()
    print(f"Newton-Schulz bf16 rel err vs float64 iteration: sciml {float((ours - ref).norm() / ref.norm()):.2e}, "
          f"torch Muon {float((theirs - ref).norm() / ref.norm()):.2e}")


def main() -> None:
    import sys

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if "--new" in sys.argv:
        issue11_checks(device)
        return
    print("device:", torch.cuda.get_device_name() if device.type == "cuda" else "cpu", "torch", torch.__version__)
    g = torch.Generator().manual_seed(0)

    def rbf(n):
        x = torch.linspace(0, 1, n, dtype=torch.float64)
        return torch.exp(-0.5 * (x[:, None] - x[None, :]) ** 2 / 0.2**2)

    for n in (64, 128, 256):
        factors = [rbf(n + k) for k in range(3)]
        N = factors[0].shape[0] * factors[1].shape[0] * factors[2].shape[0]
        b = torch.randn(N, generator=g, dtype=torch.float64)
        cpu_op = KroneckerOperator(factors)
        (x_cpu, ld_cpu), t_cpu = timed(lambda: (KroneckerOperator(factors).solve(b, 1e-2),
                                                KroneckerOperator(factors).logdet(1e-2)), torch.device("cpu"))
        gf = [f.to(device) for f in factors]
        (x_gpu, ld_gpu), t_gpu = timed(lambda: (KroneckerOperator(gf).solve(b.to(device), 1e-2),
                                                KroneckerOperator(gf).logdet(1e-2)), device)
        rel = float((x_gpu.cpu() - x_cpu).norm() / x_cpu.norm())
        print(f"kron solve+logdet N={cpu_op.shape[0]:>9}: cpu {t_cpu:.4f}s  {device.type} {t_gpu:.4f}s  "
              f"rel diff {rel:.2e}  logdet diff {abs(float(ld_gpu) - float(ld_cpu)) / abs(float(ld_cpu)):.2e}")

    x = torch.randn(256, 256, 256, generator=g, dtype=torch.float64)
    fit_cpu, t_cpu = timed(lambda: tucker_hosvd(x, ranks=16), torch.device("cpu"))
    fit_gpu, t_gpu = timed(lambda: tucker_hosvd(x.to(device), ranks=16), device)
    print(f"HOSVD 256^3 rank 16: cpu {t_cpu:.3f}s  {device.type} {t_gpu:.3f}s  "
          f"rel_error cpu {fit_cpu.rel_error:.6f} gpu {fit_gpu.rel_error:.6f}")

    nodes = chebyshev_nodes(65, dtype=torch.float64)
    values = torch.exp(torch.sin(3 * nodes))[:, None, None] * torch.cos(nodes)[None, :, None] / (
        1 + nodes[None, None, :] ** 2)
    coeffs = chebyshev_coefficients(values)
    points = torch.rand(10**6, 3, generator=g, dtype=torch.float64) * 2 - 1
    exact = torch.exp(torch.sin(3 * points[:, 0])) * torch.cos(points[:, 1]) / (1 + points[:, 2] ** 2)
    out, t_gpu = timed(lambda: chebyshev_evaluate(coeffs.to(device), points.to(device)), device)
    print(f"Chebyshev 65^3 evaluate at 1e6 points on {device.type}: {t_gpu:.3f}s, max error "
          f"{float((out.cpu() - exact).abs().max()):.2e}")

    A = torch.randn(2000, 2000, generator=g, dtype=torch.float64)
    A = (A @ A.T / 2000 + torch.eye(2000, dtype=torch.float64)).to(device)
    rhs = torch.randn(2000, 4, generator=g, dtype=torch.float64).to(device)
    sol, t = timed(lambda: conjugate_gradient(A, rhs, rtol=1e-10), device)
    print(f"CG 2000x2000 (4 rhs) on {device.type}: {t:.3f}s, {sol.n_iter} it, residual {sol.residual_norm:.1e}, "
          f"vs solve {float((sol.x - torch.linalg.solve(A, rhs)).norm() / sol.x.norm()):.1e}")
    gdev = torch.Generator(device=device).manual_seed(1)
    top = lanczos(A, k=5, num_iter=200, generator=gdev)
    ref = torch.linalg.eigvalsh(A)[-5:]
    print(f"Lanczos top-5 rel err {float(((top.eigenvalues - ref) / ref).abs().max()):.1e}")
    est = hutchinson_trace(A, num_probes=200, generator=gdev)
    print(f"Hutchinson trace {est.mean:.1f} ± {est.stderr:.1f} (true {float(torch.trace(A)):.1f})")
    G = torch.randn(4096, 1024, device=device, dtype=torch.float32)
    O, t = timed(lambda: newton_schulz(G), device)
    s = torch.linalg.svdvals(O.double())
    print(f"Newton-Schulz bf16 4096x1024 on {device.type}: {t * 1e3:.2f} ms, singular values in "
          f"[{float(s.min()):.3f}, {float(s.max()):.3f}]")
    issue11_checks(device)


if __name__ == "__main__":
    main()
