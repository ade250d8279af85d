"""Speed of sciml.compress's HESSO: ``OMP_NUM_THREADS=1 python benchmarks/bench_compress.py [--device cuda]``.

1. HESSO step overhead over plain ``torch.optim.SGD`` with the same momentum (backward included, as a user pays
   it), while pruning is in progress (chosen groups decaying, earlier groups re-zeroed every step), on the digits
   MLP, the residual MLP (stream groups spanning three layers) and the residual CNN; batch 50.
2. The period-boundary step (saliency of every group + selection) against the same steady step.
3. The saliency pass (one ``index_add`` per parameter) against scoring the groups one by one from
   ``group.flat()`` (the straightforward loop, the same numbers).
Medians of 7 blocks of 5 calls in one process (synchronised on a GPU); ratios in one process are the claim (the
machine may be shared).
"""

from __future__ import annotations

import argparse
import platform

import torch
from torch import nn

from sciml.compress import CRITERIA, HESSO, ResidualCNN, ResidualMLP, zero_invariant_groups
from _timing import median_time as shared_median_time


def median_time(fn, repeat: int = 7, inner: int = 5) -> float:
    """The shared timer (benchmarks/_timing.py) with this script's defaults: 5 back-to-back calls per timing."""
    return shared_median_time(fn, repeat=repeat, inner=inner)


def models(device: torch.device, batch: int = 50) -> dict[str, tuple]:
    g = torch.Generator().manual_seed(0)
    flat = (torch.randn(batch, 64, generator=g).to(device), torch.randint(0, 10, (batch,), generator=g).to(device))
    images = (torch.randn(batch, 1, 8, 8, generator=g).to(device),
              torch.randint(0, 10, (batch,), generator=g).to(device))
    return {
        "digits MLP 64-128-128-10": (lambda: nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 128),
                                                           nn.ReLU(), nn.Linear(128, 10)).to(device), flat),
        "residual MLP (64 stream, 2 blocks of 64)": (lambda: ResidualMLP(64, 64, 64, 2, 10).to(device), flat),
        "residual CNN (8, 16) x 2 blocks": (lambda: ResidualCNN(1, (8, 16), 2, 10).to(device), images),
    }


def step_fn(opt, model, x, y):
    def step():
        opt.zero_grad(set_to_none=True)
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    return step


def loop_saliency(groups, directions, importance) -> torch.Tensor:
    """The reference: the five criteria group by group."""
    rows = []
    for group in groups:       # one small reduction per group: the cost the index_add form avoids
        x, d = group.flat().detach(), group.flat(directions)
        dot, norm_x = x @ d, x.norm()
        rows.append(torch.stack([norm_x, norm_x / x.numel(), dot / (norm_x * d.norm()).clamp_min(1e-12) + 1,
                                 dot.abs(), 0.5 * dot**2]))
    table = torch.stack(rows)
    table = table / table.norm(dim=0).clamp_min(1e-12)
    return table @ torch.tensor([importance[c] for c in CRITERIA], dtype=table.dtype, device=table.device)


def hesso_steady_step(make, data, pruning_steps: int) -> tuple[float, HESSO]:
    """Median HESSO step time once the schedule is in the regime ``pruning_steps`` gives (see :func:`bench`)."""
    torch.manual_seed(0)
    model = make()
    opt = HESSO(model.parameters(), zero_invariant_groups(model), 0.5, lr=0.01, momentum=0.9, start_pruning_step=0,
                pruning_steps=pruning_steps, pruning_periods=2)
    step = step_fn(opt, model, *data)
    for _ in range(6):
        step()
    return median_time(step), opt


def bench(name: str, make, data) -> None:
    torch.manual_seed(0)
    m_sgd = make()
    sgd = median_time(step_fn(torch.optim.SGD(m_sgd.parameters(), lr=0.01, momentum=0.9), m_sgd, *data))
    # 10^6 pruning steps: the timed steps are inside period 1 (half the target decaying every step);
    # 4 steps in 2 periods: pruning is over by step 5, the timed steps re-zero the pruned half (the long tail)
    decaying, opt_decay = hesso_steady_step(make, data, 10**6)
    after, opt_after = hesso_steady_step(make, data, 4)
    groups = opt_after.groups
    params = [p for g in opt_after.param_groups for p in g["params"]]
    directions = {p: torch.randn_like(p) for p in params}
    vectorised = median_time(lambda: opt_after.saliency(directions))
    loop = median_time(lambda: loop_saliency(groups, directions, opt_after.importance), repeat=3, inner=2)
    err = float((opt_after.saliency(directions) - loop_saliency(groups, directions, opt_after.importance)).abs().max())
    print(f"\n## {name}: {len(groups)} groups, {sum(p.numel() for p in params):,} parameters, batch {len(data[1])}")
    print(f"SGD-momentum step {sgd * 1e3:.2f} ms; HESSO step while {len(opt_decay.active)} groups decay "
          f"{decaying * 1e3:.2f} ms = {decaying / sgd:.2f}x; after pruning ({len(opt_after.pruned)} groups re-zeroed) "
          f"{after * 1e3:.2f} ms = {after / sgd:.2f}x")
    print(f"saliency pass (once per period) {vectorised * 1e3:.2f} ms = {vectorised / sgd:.2f} SGD steps; "
          f"per-group loop {loop * 1e3:.1f} ms ({loop / vectorised:.0f}x slower, same scores to {err:.1e})")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch", type=int, default=50)
    args = parser.parse_args()
    torch.set_num_threads(1)
    device = torch.device(args.device)
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu"
    print(f"machine: {platform.machine()} ({where}), device {device}, 1 torch thread, torch {torch.__version__}")
    for name, (make, data) in models(device, args.batch).items():
        bench(name, make, data)
