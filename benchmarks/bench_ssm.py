"""Speed of the ssm module: ``python benchmarks/bench_ssm.py [--quick] [--kernels] [--step] [--grid]``.

0. (``--kernels``: this section only.) Kernel generation alone vs state-spaces/s4's production CPU path
   (``src/models/functional/vandermonde.py::log_vandermonde_naive``, what ``SSMKernelDiag`` calls without the
   pykeops / CUDA extensions: exp(log Lbar * arange(L)) materialised as (H, M, L), einsum, 2 Re; re-implemented
   below), and the whole layer forward vs the s4d.py design in the same dtype, L = 1k .. 64k, complex64 and
   complex128; then ``step`` throughput, cached vs re-discretised every step vs a naive recurrence with
   precomputed (Lbar, Bbar).
1. S4D kernel generation + FFT convolution vs the naive recurrence and vs the standalone S4D reference design
   (state-spaces/s4 ``models/s4/s4d.py``: complex64 Vandermonde kernel, no chunking; re-implemented here with the
   same shapes), L = 1k .. 16k.
2. S5 parallel (Hillis-Steele) scan vs the sequential scan vs the per-state FFT convolution.
3. Forward + backward throughput of a 4-layer SequenceModel (S4D-LegS, S4-PTD, S5).
Ratios are within one process; the machine may be shared, so absolute times are indicative only.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import time

import torch

from sciml.ssm import S4D, S5, SequenceModel, sequential_scan, vandermonde_kernel


def timeit(fn, repeat: int = 3) -> float:
    fn()
    best = math.inf
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def reference_s4d(layer: S4D, u: torch.Tensor) -> torch.Tensor:
    """The s4d.py design on our layer's parameters (in their dtype): kernel from exp(dtA * arange(L)) materialised as
    (H, M, L), einsum, rFFT conv on 2L, + D u. Input (batch, H, L)."""
    dt = torch.exp(layer.log_dt)
    C = torch.view_as_complex(layer.C) * torch.view_as_complex(layer.B)
    A = -torch.exp(layer.log_A_real) + 1j * layer.A_imag
    dtA = A * dt[:, None]
    L = u.shape[-1]
    K = dtA.unsqueeze(-1) * torch.arange(L, device=A.device)
    C = C * (torch.exp(dtA) - 1.0) / A
    k = 2 * torch.einsum("hn,hnl->hl", C, torch.exp(K)).real
    k_f = torch.fft.rfft(k, n=2 * L)
    u_f = torch.fft.rfft(u, n=2 * L)
    return torch.fft.irfft(u_f * k_f, n=2 * L)[..., :L] + u * layer.D[:, None]


def s4_log_vandermonde_naive(v: torch.Tensor, x: torch.Tensor, L: int) -> torch.Tensor:
    """state-spaces/s4 ``log_vandermonde_naive(v, x, L, conj=True)``: 2 Re(sum_n v_n exp(x_n l)), the path its
    S4D kernel takes without the pykeops / CUDA extensions (its CPU default)."""
    vandermonde_matrix = torch.exp(x.unsqueeze(-1) * torch.arange(L).to(x))          # (..., N, L)
    return 2 * torch.einsum("...n,...nl->...l", v, vandermonde_matrix).real


def median_time(fn, repeat: int = 3) -> float:
    fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def kernel_and_step_section(quick: bool, gen: torch.Generator) -> None:
    H, N, Bsz = 8, 64, 2
    lengths = (1024, 4096, 16384) if quick else (1024, 4096, 16384, 65536)
    print(f"\n[0] H {H}, N {N} (32 modes), median of 3 (s). Kernel generation alone: ours vs state-spaces/s4's "
          f"production CPU path (log_vandermonde_naive); whole layer forward (kernel + FFT conv + D u, batch {Bsz}): "
          f"ours vs the s4d.py design in the same dtype. ratio = theirs / ours (> 1: ours faster)")
    print("  L       dtype       kernel ours  s4 log-vand  ratio  max|dK|/max|K|   forward ours  s4d.py  ratio")
    layer = S4D(H, N, dtype=torch.float64, generator=gen)
    with torch.no_grad():
        log_Lbar, Bbar, C = layer._discrete(torch.float64)
        for L in lengths:
            u64 = torch.randn(Bsz, L, H, dtype=torch.float64, generator=gen)
            for cd in (torch.complex64, torch.complex128):
                rd = torch.float32 if cd == torch.complex64 else torch.float64
                W, x = (C * Bbar).to(cd), log_Lbar.to(cd)
                t_ours = median_time(lambda: vandermonde_kernel(W, None, L, log_Lbar=x))
                t_s4 = median_time(lambda: s4_log_vandermonde_naive(W, x, L))
                K, K4 = vandermonde_kernel(W, None, L, log_Lbar=x), s4_log_vandermonde_naive(W, x, L)
                err = float((K.double() - K4.double()).abs().max() / K4.double().abs().max())
                lay = S4D(H, N, kernel_dtype=rd, dtype=rd)
                lay.load_state_dict(layer.state_dict())
                u, uT = u64.to(rd), u64.to(rd).transpose(1, 2).contiguous()
                tf_ours = median_time(lambda: lay(u))
                tf_ref = median_time(lambda: reference_s4d(lay, uT))
                print(f"  {L:<7d} {str(cd)[6:]:10s} {t_ours:11.4f}  {t_s4:11.4f}  {t_s4 / t_ours:5.1f}  {err:.1e}"
                      f"          {tf_ours:11.4f}  {tf_ref:7.4f}  {tf_ref / tf_ours:5.1f}")
    step_throughput(gen, 200 if quick else 1000)


def step_throughput(gen: torch.Generator, n: int) -> None:
    """``step`` steps/s at batch 1, 16 and 64 (H 64, N 64, float32 parameters, float64 system): cached vs
    re-discretised every call vs a fair naive recurrence (system precomputed once, complex128), interleaved
    repeats, median of 5, thread CPU time."""
    print("\n  step throughput (H 64, N 64; steps/s): cached | re-discretised each step | naive peer "
          "(naive time / ours: > 1 ours faster)")
    layer = S4D(64, 64, generator=gen)
    with torch.no_grad():
        log_Lbar, Bbar, C = layer._discrete(torch.float64)
        Lbar, D = torch.exp(log_Lbar), layer.D.double()
    for batch in (1, 16, 64):
        u = torch.randn(batch, 64, generator=gen)
        m = n if batch < 64 else n // 4

        def run_cached():
            state = None
            with torch.no_grad():
                for _ in range(m):
                    _, state = layer.step(u, state)

        def run_uncached():
            state = None
            with torch.no_grad():
                for _ in range(m):
                    layer._cache.key = None                  # what the old step did: discretise every call
                    _, state = layer.step(u, state)

        def run_naive():                                     # fair naive recurrence: system precomputed once
            x = torch.zeros(batch, 64, Lbar.shape[-1], dtype=torch.complex128)
            for _ in range(m):
                x = Lbar * x + Bbar * u.double()[..., None]
                _ = (2 * (x * C).sum(-1).real + D * u.double()).float()

        times = {"cached": [], "uncached": [], "naive": []}
        for fn in (run_cached, run_uncached, run_naive):
            fn()                                             # warm-up
        # interleaved, so load changes hit all three; CPU time of this thread (one torch thread), not wall time:
        # on a shared machine the wall time mostly measures the wait for a core
        for _ in range(5):
            for key, fn in (("cached", run_cached), ("uncached", run_uncached), ("naive", run_naive)):
                start = time.thread_time()
                fn()
                times[key].append(time.thread_time() - start)
        tc, tu, tn = (sorted(times[k])[2] for k in ("cached", "uncached", "naive"))
        print(f"  batch {batch:<3d} {m / tc:9.0f} | {m / tu:9.0f} ({tu / tc:.2f}x slower) | {m / tn:9.0f} "
              f"(naive / ours {tn / tc:.2f})")


def nan_grid() -> None:
    """The full no-NaN / float32-vs-float64 grid that tests/ssm/test_kernels.py samples: every layer (S4D, S5,
    bidirectional), init family and mode, dt in {1e-4, 1e-2, 1, 10}, L in {3, 4096, 65536}, both discretisations."""
    print("\n[grid] L, dt, layer, discretisation, mode: finite in f64/f32/bf16/fp16/autocast?, rel f32 error")
    gen = torch.Generator().manual_seed(0)
    worst = 0.0
    for L in (3, 4096, 65536):
        for dt in (1e-4, 1e-2, 1.0, 10.0):
            for method in ("zoh", "bilinear"):
                step = dict(dt_min=dt, dt_max=dt, discretization=method)
                cases = [("s4d-ptd128", S4D(2, 128, init="ptd", **step), None),
                         ("s4d-legs", S4D(2, 64, init="legs", **step), None),
                         ("s4d-bidir", S4D(2, 32, init="lin", bidirectional=True, **step), None),
                         *(("s5-ptd", S5(2, 32, init="ptd", conj_sym=False, **step), m) for m in ("scan", "fft")),
                         ("s5-legs", S5(2, 32, init="legs", **step), "sequential"),
                         ("s5-bidir", S5(2, 32, init="inv", bidirectional=True, **step), "scan")]
                for name, layer, mode in cases:
                    kw = {} if mode is None else {"mode": mode}
                    u = torch.randn(1, L, 2, generator=gen)
                    with torch.no_grad():
                        y64 = layer.double()(u.double(), **kw)
                        layer.float()
                        ys = [layer(u.to(d), **kw) for d in (torch.float32, torch.bfloat16, torch.float16)]
                        with torch.autocast("cpu", dtype=torch.bfloat16):
                            ys.append(layer(u, **kw))
                    finite = all(bool(torch.isfinite(y).all()) for y in [y64, *ys])
                    rel = float((ys[0].double() - y64).norm() / y64.norm())
                    worst = max(worst, rel)
                    print(f"  {L:<6d} {dt:<7g} {name:11s} {method:9s} {mode or '-':5s} finite={finite} rel={rel:.1e}")
    print(f"  worst float32 relative error {worst:.1e}")


def naive_recurrence(layer: S4D, u: torch.Tensor) -> torch.Tensor:
    state, ys = None, []
    for k in range(u.shape[1]):
        y, state = layer.step(u[:, k], state)
        ys.append(y)
    return torch.stack(ys, 1)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--grid", action="store_true", help="only the no-NaN dtype grid")
    parser.add_argument("--kernels", action="store_true", help="only section [0] (kernels, forward, step)")
    parser.add_argument("--step", action="store_true", help="only the step throughput (batch 1 / 16 / 64)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (default 1: stable ratios on a shared machine; 0 = torch's default)")
    args = parser.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    print(f"machine: {platform.platform()}, {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cpus, torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"load avg {os.getloadavg()[0]:.1f}")
    gen = torch.Generator().manual_seed(0)
    if args.grid:
        nan_grid()
        return
    if args.step:
        step_throughput(gen, 1000)
        return
    kernel_and_step_section(args.quick, gen)
    if args.kernels:
        return
    Bsz, H, N = 4, 64, 64
    lengths = (1024, 4096) if args.quick else (1024, 4096, 16384)
    print(f"\n[1] S4D layer forward, batch {Bsz}, H {H}, N {N} (32 modes); seconds and ratios (others / ours)")
    print("  L      ours f64-kernel  ours f32-kernel  s4d.py design  naive recurrence  naive/ours  ref/ours(f32)")
    with torch.no_grad():
        for L in lengths:
            layer64 = S4D(H, N, generator=gen)
            layer32 = S4D(H, N, kernel_dtype=torch.float32, generator=gen)
            layer32.load_state_dict(layer64.state_dict())
            u = torch.randn(Bsz, L, H, generator=gen)
            t64 = timeit(lambda: layer64(u))
            t32 = timeit(lambda: layer32(u))
            uT = u.transpose(1, 2).contiguous()
            tref = timeit(lambda: reference_s4d(layer32, uT))
            err = float((reference_s4d(layer32, uT).transpose(1, 2) - layer64(u)).abs().max())
            n_naive = min(L, 4096)
            tn = timeit(lambda: naive_recurrence(layer32, u[:, :n_naive]), repeat=1) * L / n_naive
            print(f"  {L:<6d} {t64:14.4f}  {t32:15.4f}  {tref:13.4f}  {tn:16.3f}  {tn / t32:10.1f}  "
                  f"{tref / t32:12.2f}   (max |ref - ours| {err:.1e}{', naive extrapolated' if n_naive < L else ''})")

    print(f"\n[2] S5 forward, batch {Bsz}, H {H}, P {N} (32 modes): seconds")
    print("  L      scan      fft       sequential  seq/scan  seq/fft")
    with torch.no_grad():
        for L in lengths:
            layer = S5(H, N, generator=gen)
            u = torch.randn(Bsz, L, H, generator=gen)
            ts = timeit(lambda: layer(u, mode="scan"))
            tf = timeit(lambda: layer(u, mode="fft"))
            tq = timeit(lambda: layer(u, mode="sequential"), repeat=1)
            print(f"  {L:<6d} {ts:8.4f}  {tf:8.4f}  {tq:10.4f}  {tq / ts:8.1f}  {tq / tf:7.1f}")
        a = torch.rand(2048, 32, dtype=torch.complex64, generator=gen)
        b = torch.randn(8, 2048, 32, dtype=torch.complex64, generator=gen)
        from sciml.ssm import linear_scan
        t_par = timeit(lambda: linear_scan(a, b, dim=1))
        t_seq = timeit(lambda: sequential_scan(a.expand_as(b), b, dim=1), repeat=1)
        print(f"  raw scan (L 2048, 8 x 32 complex64): parallel {t_par:.4f}s, sequential {t_seq:.4f}s, "
              f"ratio {t_seq / t_par:.1f}")

    L, Bsz, H, layers = (1024, 8, 64, 4) if args.quick else (1024, 16, 128, 4)
    print(f"\n[3] 4-layer model forward+backward, batch {Bsz}, L {L}, H {H}, N 64: tokens/s")
    x = torch.randn(Bsz, L, 1, generator=gen)
    y = torch.randint(0, 10, (Bsz,), generator=gen)
    for name, kw in (("s4d legs", dict(layer="s4d", init="legs")), ("s4d ptd", dict(layer="s4d", init="ptd")),
                     ("s4d legs, f32 kernel", dict(layer="s4d", init="legs", kernel_dtype=torch.float32)),
                     ("s5 legs (scan)", dict(layer="s5", init="legs"))):
        model = SequenceModel(1, 10, d_model=H, n_layers=layers, d_state=64, generator=gen, **kw)

        def step():
            loss = torch.nn.functional.cross_entropy(model(x), y)
            loss.backward()

        t = timeit(step, repeat=2)
        print(f"  {name:22s} {Bsz * L / t:10.0f} tokens/s ({t:.3f} s per step)")


if __name__ == "__main__":
    main()
