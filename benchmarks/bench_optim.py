"""Speed of sciml.optim and sciml.compress against their peers: ``python benchmarks/bench_optim.py``.

1. Optimizer step time (backward included, as a user pays it) on the spec's digits CNN, batch 100, median of
   repeated timed blocks in one process: ours vs ``torch.optim.Muon``, torch-optimizer's ``Adahessian``,
   sophia-opt's ``SophiaG``, and AdamW as the common reference.
2. M-FAC inverse-Fisher product vs a dense solve of ``damp I + G^T G / m`` (while the dense matrix fits), and the
   blocked variant, at d = 1e4 .. 1e6, m = 64 .. 1024.
3. HESSO step overhead over plain SGD with momentum on the digits MLP.
Ratios > 1 mean sciml is faster. The machine may be shared: ratios in one process are the claim.
"""

from __future__ import annotations

import platform
import time

import numpy as np

import torch
from torch import nn
from _timing import median_time as shared_median_time


def median_time(fn, repeat: int = 7, inner: int = 5) -> float:
    """The shared timer (benchmarks/_timing.py) with this script's defaults: 5 back-to-back calls per timing."""
    return shared_median_time(fn, repeat=repeat, inner=inner)


def digits_cnn():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(16, 32, 3, padding=1),
                         nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 10))


def step_fn(opt, model, x, y, graph=False, bs=None):
    def step():
        opt.zero_grad(set_to_none=True)
        nn.functional.cross_entropy(model(x), y).backward(create_graph=graph)
        opt.step(bs=bs) if bs is not None else opt.step()
        if graph:
            opt.zero_grad(set_to_none=True)
    return step


def bench_steps() -> None:
    import sophia_opt
    import torch_optimizer

    from sciml.optim import NAMO, AdaHessian, Muon, SophiaG

    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(100, 1, 8, 8, generator=g), torch.randint(0, 10, (100,), generator=g)

    def time_opt(make, graph=False, bs=None, matrices=False):
        model = digits_cnn()
        params = [p for p in model.parameters() if p.dim() == 2] if matrices else model.parameters()
        return median_time(step_fn(make(params), model, x, y, graph, bs))

    adamw = time_opt(lambda p: torch.optim.AdamW(p, lr=1e-3))
    rows = [
        ("AdaHessian vs torch-optimizer Adahessian", time_opt(lambda p: AdaHessian(p), True),
         time_opt(lambda p: torch_optimizer.Adahessian(p, hessian_power=1.0), True)),
        ("SophiaG vs sophia-opt SophiaG", time_opt(lambda p: SophiaG(p), bs=100),
         time_opt(lambda p: sophia_opt.SophiaG(p), bs=100)),
    ]
    if hasattr(torch.optim, "Muon"):
        rows.append(("Muon vs torch.optim.Muon (2-D weights)", time_opt(lambda p: Muon(p, lr=0.02), matrices=True),
                     time_opt(lambda p: torch.optim.Muon(p, lr=0.02), matrices=True)))
        rows.append(("NAMO vs torch.optim.Muon (2-D weights)", time_opt(lambda p: NAMO(p), matrices=True),
                     time_opt(lambda p: torch.optim.Muon(p, lr=0.02), matrices=True)))
    print(f"\n## Optimizer steps, digits CNN, batch 100 (AdamW step: {adamw * 1e3:.2f} ms)\n")
    print("| comparison | ours (ms) | peer (ms) | peer / ours | ours / AdamW |")
    print("|---|---|---|---|---|")
    for name, ours, peer in rows:
        print(f"| {name} | {ours * 1e3:.2f} | {peer * 1e3:.2f} | {peer / ours:.2f} | {ours / adamw:.2f} |")


def bench_mfac() -> None:
    from sciml.curvature.mfac import MFACInverseFisher

    print("\n## M-FAC inverse-Fisher product vs dense solve (float32)\n")
    print("| d | m | build (s) | ihvp (ms) | dense solve (s) | dense / (build + ihvp) | blocked 128: ihvp (ms) |")
    print("|---|---|---|---|---|---|---|")
    for d, m in ((10_000, 64), (10_000, 1024), (100_000, 256), (1_000_000, 64)):
        g = torch.Generator().manual_seed(0)
        G = torch.randn(m, d, generator=g) / d**0.5
        v = torch.randn(d, generator=g)
        start = time.perf_counter()
        inv = MFACInverseFisher(G, 1e-4)
        build = time.perf_counter() - start
        ihvp = median_time(lambda: inv.ihvp(v), repeat=5, inner=3)
        blocked = MFACInverseFisher(G, 1e-4, block_size=128)
        ihvp_b = median_time(lambda: blocked.ihvp(v), repeat=3, inner=2)
        dense = "-"
        ratio = "-"
        if d <= 10_000:
            start = time.perf_counter()
            F = 1e-4 * torch.eye(d) + G.T @ G / m
            torch.linalg.solve(F, v)
            dense_s = time.perf_counter() - start
            dense, ratio = f"{dense_s:.2f}", f"{dense_s / (build + ihvp):.0f}"
        print(f"| {d:,} | {m} | {build:.3f} | {ihvp * 1e3:.2f} | {dense} | {ratio} | {ihvp_b * 1e3:.2f} |")


def bench_peers_curvature() -> None:
    """M-FAC vs curvlinops' empirical-Fisher operator + CG, and HAWQ's traces vs PyHessian's ``trace()``."""
    try:
        from curvlinops import EFLinearOperator
        from pyhessian import hessian as pyhessian_hessian
    except ImportError as err:
        print(f"\n(skipping the curvlinops / PyHessian comparisons: {err})")
        return
    from sciml.compress import hawq_sensitivity
    from sciml.curvature import HessianOperator, hutchinson_trace
    from sciml.curvature.mfac import MFACInverseFisher
    from sciml.linalg import MatvecOperator, conjugate_gradient

    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 128), nn.Tanh(), nn.Linear(128, 10)).double()
    params = [p for p in model.parameters()]
    d = sum(p.numel() for p in params)
    m, damp = 64, 1e-3
    x, y = torch.randn(m, 64, generator=g, dtype=torch.float64), torch.randint(0, 10, (m,), generator=g)
    v = torch.randn(d, generator=g, dtype=torch.float64)

    def mfac():
        grads = []
        for i in range(m):                  # one gradient per sample: the empirical Fisher of these m samples
            gi = torch.autograd.grad(nn.functional.cross_entropy(model(x[i:i + 1]), y[i:i + 1]), params)
            grads.append(torch.cat([t.reshape(-1) for t in gi]))
        return MFACInverseFisher(torch.stack(grads), damp).ihvp(v)

    ef = EFLinearOperator(model, nn.CrossEntropyLoss(), params, [(x[i:i + 1], y[i:i + 1]) for i in range(m)],
                          check_deterministic=False)

    def ef_cg():
        op = MatvecOperator(lambda U: ef @ U + damp * U, (d, d), dtype=torch.float64)   # (EF + damp I)
        return conjugate_gradient(op, v, rtol=1e-10, max_iter=2000, check_symmetry=False, on_failure="ignore")

    ours, peer = median_time(mfac, repeat=3, inner=1), median_time(ef_cg, repeat=3, inner=1)
    err = float((mfac() - ef_cg().x).norm() / mfac().norm())
    print(f"\n## M-FAC inverse-Fisher product vs curvlinops EFLinearOperator + CG (d = {d}, m = {m}, damp {damp})\n")
    print(f"M-FAC (gradients + build + product) {ours:.3f} s; curvlinops EF + CG to rtol 1e-10 {peer:.3f} s; "
          f"ratio {peer / ours:.1f}; answers agree to {err:.1e}")

    cnn = digits_cnn().double()
    xc, yc = torch.randn(400, 1, 8, 8, generator=g, dtype=torch.float64), torch.randint(0, 10, (400,), generator=g)
    probes = 100

    def ours_trace():
        return hutchinson_trace(HessianOperator(cnn, nn.functional.cross_entropy, (xc, yc)), probes,
                                generator=torch.Generator().manual_seed(1)).mean

    used = []

    def peer_trace():
        h = pyhessian_hessian(cnn, nn.CrossEntropyLoss(), data=(xc, yc), cuda=False)
        samples = h.trace(maxIter=probes, tol=0.0)
        used.append(len(samples))       # PyPI 0.1 stops early when its running mean is negative (spec A.5 bug)
        return float(np.mean(samples))

    def hawq():
        return hawq_sensitivity(cnn, nn.functional.cross_entropy, (xc, yc), num_probes=probes,
                                generator=torch.Generator().manual_seed(1))

    t_ours, t_peer, t_hawq = (median_time(f, repeat=3, inner=1) for f in (ours_trace, peer_trace, hawq))
    print(f"\n## Hessian trace, digits CNN, 400 samples, {probes} probes (float64)\n")
    peer_value, peer_probes = peer_trace(), used[-1]
    print(f"sciml hutchinson_trace: {t_ours / probes * 1e3:.1f} ms per probe (trace {float(ours_trace()):.3f}, "
          f"{probes} probes); PyHessian trace(): {t_peer / peer_probes * 1e3:.1f} ms per probe (trace {peer_value:.3f}, "
          f"stopped after {peer_probes} of {probes} probes); per-probe ratio {t_peer / peer_probes / (t_ours / probes):.2f}."
          f" HAWQ per-layer traces (4 layers x {probes} probes, one block HVP each): {t_hawq:.2f} s")


def bench_hesso() -> None:
    from sciml.compress import HESSO, zero_invariant_groups

    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(50, 64, generator=g), torch.randint(0, 10, (50,), generator=g)

    def make_model():
        torch.manual_seed(0)
        return nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(), nn.Linear(128, 10))

    m1, m2 = make_model(), make_model()
    sgd = median_time(step_fn(torch.optim.SGD(m1.parameters(), lr=0.1, momentum=0.9), m1, x, y))
    hesso_opt = HESSO(m2.parameters(), zero_invariant_groups(m2), 0.5, lr=0.1, momentum=0.9, start_pruning_step=0,
                      pruning_steps=10_000, pruning_periods=5)
    hesso = median_time(step_fn(hesso_opt, m2, x, y))
    print(f"\n## HESSO step vs SGD (digits MLP 64-128-128-10, batch 50): {hesso * 1e3:.2f} ms vs {sgd * 1e3:.2f} ms "
          f"= {hesso / sgd:.2f}x (one saliency pass per period is not in this median)")


if __name__ == "__main__":
    torch.set_num_threads(1)
    print(f"machine: {platform.machine()}, {torch.get_num_threads()} torch thread, torch {torch.__version__}")
    bench_steps()
    bench_mfac()
    bench_peers_curvature()
    bench_hesso()
