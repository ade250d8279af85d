"""GPU check for sciml.compress (< 90 s on one H200): ``python benchmarks/gpu_check_compress.py``.

On cuda when available (else cpu), float64: HESSO on the residual MLP and residual CNN (stream groups shared
across blocks) keeps pruned groups exactly zero and the compact model equals the masked one to 1e-12; the
saliency on the device equals the CPU one; M-FAC OBS pruning, HAWQ traces and fake quantization run on the
device and agree with the CPU results. Prints each check and its number.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from sciml.compress import (HESSO, ResidualCNN, ResidualMLP, compact_model, hawq_sensitivity, prune, quantize,
                            zero_invariant_groups)


def train_and_compact(model: nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int = 40) -> tuple[float, int]:
    groups = zero_invariant_groups(model)
    opt = HESSO(model.parameters(), groups, 0.5, lr=0.05, momentum=0.9, start_pruning_step=5, pruning_steps=20,
                pruning_periods=2)
    gen = torch.Generator(device=x.device).manual_seed(0)
    for _ in range(steps):
        idx = torch.randint(0, len(y), (64,), generator=gen, device=x.device)
        opt.zero_grad()
        nn.functional.cross_entropy(model(x[idx]), y[idx]).backward()
        opt.step()
    assert all(not bool(g.flat().any()) for g in opt.pruned_groups), "a pruned group is not exactly zero"
    model.eval()
    small = compact_model(model, groups)
    with torch.no_grad():
        diff = float((small(x) - model(x)).abs().max())
    return diff, len(opt.pruned)


def main() -> None:
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    print(f"device: {device} ({torch.cuda.get_device_name() if device.type == 'cuda' else 'no cuda'}), "
          f"torch {torch.__version__}")
    try:
        from sklearn.datasets import load_digits

        d = load_digits()
        x = torch.tensor(d.data / 16.0, dtype=torch.float64, device=device)
        y = torch.tensor(d.target, device=device)
    except ImportError:                                  # a bare GPU machine: random data exercise the same code
        g = torch.Generator().manual_seed(0)
        x = torch.rand(1797, 64, generator=g, dtype=torch.float64).to(device)
        y = torch.randint(0, 10, (1797,), generator=g).to(device)
    torch.manual_seed(0)
    diff, pruned = train_and_compact(ResidualMLP(64, 64, 64, 2, 10).to(device, torch.float64), x, y)
    print(f"residual MLP on {device}: {pruned} groups pruned, max |compact - masked| = {diff:.1e} (<= 1e-12)")
    assert diff <= 1e-12
    torch.manual_seed(0)
    diff, pruned = train_and_compact(ResidualCNN(1, (8, 16), 2).to(device, torch.float64), x.view(-1, 1, 8, 8), y)
    print(f"residual CNN on {device}: {pruned} groups pruned, max |compact - masked| = {diff:.1e} (<= 1e-12)")
    assert diff <= 1e-12

    torch.manual_seed(1)
    model = ResidualMLP(64, 32, 32, 2, 10).double()
    twin = copy.deepcopy(model).to(device)
    directions = {p: torch.randn_like(p) for p in model.parameters()}
    on_cpu = HESSO(model.parameters(), zero_invariant_groups(model), 0.5).saliency(directions)
    moved = {q: directions[p].to(device) for p, q in zip(model.parameters(), twin.parameters())}
    on_dev = HESSO(twin.parameters(), zero_invariant_groups(twin), 0.5).saliency(moved)
    err = float((on_dev.cpu() - on_cpu).abs().max())
    print(f"saliency {device} vs cpu: max diff {err:.1e}")
    assert err <= 1e-12

    mlp = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10)).double()
    results = {}
    for where in ("cpu", device):
        m = copy.deepcopy(mlp).to(where)
        data = (x[:800].to(where), y[:800].to(where))
        res = prune(m, 0.7, data=data, eval_data=(x[800:].to(where), y[800:].to(where)),
                    generator=torch.Generator().manual_seed(0))
        sens = hawq_sensitivity(m, nn.functional.cross_entropy, data, bits=(2, 4, 8), num_probes=50,
                                generator=torch.Generator(device=where).manual_seed(0))
        q = quantize(m, {name: 4 for name in sens.layers})
        results[str(where)] = (res.sparsity, res.accuracy, sens.traces, next(q.parameters()).device.type)
    print(f"OBS (sparsity, accuracy of an untrained MLP) / HAWQ traces / quantize: cpu {results['cpu'][:2]}, {device} {results[str(device)][:2]}; traces cpu "
          f"{[round(t, 4) for t in results['cpu'][2]]} vs {[round(t, 4) for t in results[str(device)][2]]}; "
          f"quantized model on {results[str(device)][3]}")


if __name__ == "__main__":
    main()
