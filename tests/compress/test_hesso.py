"""HESSO: groups of an MLP/CNN, the decay schedule, exact zeros, compact == masked model, accuracy at 0.5."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from sciml.compress import HESSO, compact_model, zero_invariant_groups


def _mlp(dtype=torch.float64):
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(), nn.Linear(128, 10)).to(dtype)


def _train(model, target, data, epochs, gen, warmup=1, prune_epochs=4, periods=4, steps_per_epoch=28,
           record_all=False):
    (x, y) = data
    groups = zero_invariant_groups(model)
    opt = HESSO(model.parameters(), groups, target, lr=0.1, momentum=0.9,
                start_pruning_step=warmup * steps_per_epoch, pruning_steps=prune_epochs * steps_per_epoch,
                pruning_periods=periods)
    history: list[list[float]] = []
    for _ in range(epochs):
        for idx in torch.randperm(len(y), generator=gen).split(50):
            opt.zero_grad()
            nn.functional.cross_entropy(model(x[idx]), y[idx]).backward()
            opt.step()
            if not history or len(history) % 7 == 0 or record_all:
                history.append([float(g.flat().detach().abs().max()) for g in groups])
            else:
                history.append(history[-1])     # record every 7th step only (the loop over groups is slow)
    return groups, opt, torch.tensor(history)


def test_groups_of_an_mlp_and_a_cnn():
    assert len(zero_invariant_groups(_mlp())) == 256                       # spec: 256 prunable neuron groups
    cnn = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
                        nn.Conv2d(4, 6, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(6 * 16, 10))
    groups = zero_invariant_groups(cnn)
    assert len(groups) == 10 and groups[4].auxiliary[0][2] == slice(0, 16)   # channel 0 -> 16 features
    with pytest.raises(ValueError, match="not known to keep zero units"):
        zero_invariant_groups(nn.Sequential(nn.Linear(3, 4), nn.Sigmoid(), nn.Linear(4, 2)))
    with pytest.raises(ValueError, match="nn.Sequential"):
        zero_invariant_groups(nn.Linear(3, 4))
    with pytest.raises(ValueError, match="at least two"):                  # no prunable unit
        zero_invariant_groups(nn.Sequential(nn.Linear(3, 4), nn.ReLU()))


@pytest.mark.parametrize("kwargs,match", [(dict(target_sparsity=1.0), r"\[0, 1\)"),
                                          (dict(target_sparsity=-0.1), r"\[0, 1\)"),
                                          (dict(lr=-1.0), "lr >= 0"), (dict(variant="lion"), "variant"),
                                          (dict(pruning_periods=0), "pruning_periods"),
                                          (dict(importance={"curvature": 1.0}), "unknown criteria")])
def test_bad_input(kwargs, match):
    model = _mlp()
    with pytest.raises(ValueError, match=match):
        HESSO(model.parameters(), zero_invariant_groups(model), **kwargs)


def test_compact_model_equals_the_masked_model_and_pruned_groups_stay_zero(gen):
    from experiments.digits_common import digits_split

    train, test = digits_split(0, dtype=torch.float64)
    model = _mlp()
    groups, opt, history = _train(model, 0.5, train, epochs=6, gen=gen)
    pruned = sorted(opt.pruned)
    assert len(pruned) == 128
    end_of_pruning = 28 * (1 + 4)
    assert torch.all(history[end_of_pruning:, pruned] == 0)               # exactly zero through momentum steps
    assert torch.all(history[:28, :] > 0)                                  # nothing zero before pruning starts
    small = compact_model(model, groups)
    assert sum(p.numel() for p in small.parameters()) < 0.5 * sum(p.numel() for p in model.parameters())
    with torch.no_grad():
        torch.testing.assert_close(small(test[0]), model(test[0]), rtol=0, atol=1e-12)


def test_decay_reaches_zero_at_the_period_end():
    """Within a period the chosen groups are scaled by (T-t-1)/(T-t): a product that hits 0 at t = T-1."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2)).double()
    groups = zero_invariant_groups(model)
    opt = HESSO(model.parameters(), groups, 0.5, lr=0.0, start_pruning_step=0, pruning_steps=5, pruning_periods=1)
    x = torch.randn(8, 3, dtype=torch.float64)
    norms = []
    for _ in range(6):
        opt.zero_grad()
        model(x).pow(2).sum().backward()
        opt.step()
        norms.append([float(groups[i].flat().detach().norm()) for i in range(4)])
    chosen = opt.active or sorted(opt.pruned)
    start = [float(groups[i].flat().norm()) for i in chosen]
    assert len(chosen) == 2
    ratios = torch.tensor(norms, dtype=torch.float64)[:, chosen]
    assert torch.all(ratios[3] == 0) and torch.all(ratios[:3] > 0)        # lr = 0: only the decay acts
    torch.testing.assert_close(ratios[1] / ratios[0], torch.full((2,), 2 / 3, dtype=torch.float64))
    assert start == [0.0, 0.0]


def test_accuracy_at_half_the_groups_matches_dense():
    """Spec B.10: at target 0.5 the test accuracy is within 0.01 of dense (spec 0.982 vs 0.982)."""
    from experiments.digits_common import digits_split

    train, test = digits_split(0, dtype=torch.float32)
    accs = {}
    for target in (0.0, 0.5):
        model = _mlp(torch.float32)
        _train(model, target, train, epochs=15, gen=torch.Generator().manual_seed(0), warmup=3, prune_epochs=5,
               periods=5)
        with torch.no_grad():
            accs[target] = float((model(test[0]).argmax(1) == test[1]).float().mean())
    assert accs[0.0] > 0.96 and accs[0.5] >= accs[0.0] - 0.01, accs


def test_saliency_equals_the_per_group_formulas(gen):
    """The vectorised scores equal the spec's five criteria computed group by group from ``group.flat()``."""
    from sciml.compress import CRITERIA, ResidualMLP

    torch.manual_seed(0)
    model = ResidualMLP(6, 5, 4, 2, 3).double()              # stream groups span three layers
    groups = zero_invariant_groups(model)
    importance = dict(zip(CRITERIA, (0.1, 0.3, 0.2, 0.25, 0.15)))
    opt = HESSO(model.parameters(), groups, 0.5, importance=importance)
    directions = {p: torch.randn(p.shape, generator=gen, dtype=torch.float64) for p in model.parameters()}
    rows = []
    for g in groups:
        x, d = g.flat().detach(), g.flat(directions)
        rows.append([x.norm(), x.norm() / x.numel(), x @ d / (x.norm() * d.norm()) + 1, (x @ d).abs(),
                     0.5 * (x @ d) ** 2])
    table = torch.tensor(rows, dtype=torch.float64)
    expected = (table / table.norm(dim=0)) @ torch.tensor([importance[c] for c in CRITERIA], dtype=torch.float64)
    torch.testing.assert_close(opt.saliency(directions), expected, rtol=1e-12, atol=0)
