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
import statistics
import time

import torch
from torch import nn


def median_time(fn, repeat: int = 7, inner: int = 5) -> float:
    fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(inner):
            fn()
        times.append((time.perf_counter() - start) / inner)
    return statistics.median(times)


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
    bench_hesso()
