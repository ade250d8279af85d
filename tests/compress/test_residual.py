"""Residual additions sharing one zero-invariant group: group construction, compact == masked model to 1e-12 in
float64 (residual MLP and residual CNN, with random and HESSO-trained masks), pruned groups exactly zero, the
parameter count of the compact model in closed form, the digits accuracy at target 0.5, and bad input."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from sciml.compress import HESSO, ResidualCNN, ResidualMLP, channel_groups, compact_model, zero_invariant_groups


def _zero(groups, chosen) -> None:
    with torch.no_grad():
        for i in chosen:
            for p, dim, sl in groups[i].members:
                p.narrow(dim, sl.start, sl.stop - sl.start).zero_()


def _randomise_norm_statistics(model: nn.Module, gen: torch.Generator) -> None:
    """Non-trivial BatchNorm running statistics, so that a zero channel only stays zero through the affine part."""
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=gen, dtype=torch.float64))
            m.running_var.copy_(torch.rand(m.num_features, generator=gen, dtype=torch.float64) + 0.5)
            with torch.no_grad():
                m.weight.copy_(torch.randn(m.num_features, generator=gen, dtype=torch.float64))
                m.bias.copy_(torch.randn(m.num_features, generator=gen, dtype=torch.float64))


def test_residual_mlp_groups_span_every_block():
    model = ResidualMLP(10, width=6, hidden=4, num_blocks=3, out_features=2)
    groups = zero_invariant_groups(model)
    stream = [g for g in groups if g.layer == "stream"]
    assert len(stream) == 6 and len(groups) == 6 + 3 * 4
    # the stem and every block's output layer write stream channel j (weight row + bias); every block's input
    # layer and the head read it (one column each)
    assert len(stream[0].members) == 2 * (1 + 3) and len(stream[0].auxiliary) == 3 + 1
    assert {id(p) for p, _, _ in stream[0].members} == {id(p) for m in [model.stem] + [b.outer for b in model.blocks]
                                                        for p in (m.weight, m.bias)}


def test_residual_cnn_groups_follow_the_stages():
    model = ResidualCNN(1, (3, 5), blocks_per_stage=2)
    groups = zero_invariant_groups(model)
    count = {name: sum(g.layer == name for g in groups) for name in {g.layer for g in groups}}
    assert count == {"stage1.stream": 3, "stage2.stream": 5, "stage1.0.inner": 3, "stage1.1.inner": 3,
                     "stage2.0.inner": 5, "stage2.1.inner": 5}
    first = next(g for g in groups if g.layer == "stage2.stream")
    # writers: shortcut conv + 2 conv2 (no bias) and their 3 BatchNorms (scale, shift)
    assert len(first.members) == 3 + 2 * 3 and len(first.auxiliary) == 2   # stage2.1.conv1 and the head


@pytest.mark.parametrize("architecture", ["mlp", "cnn"])
def test_compact_equals_masked_with_random_stream_and_inner_groups(architecture, gen):
    torch.manual_seed(0)
    if architecture == "mlp":
        model = ResidualMLP(12, width=8, hidden=5, num_blocks=3, out_features=4).double()
        x = torch.randn(16, 12, generator=gen, dtype=torch.float64)
    else:
        model = ResidualCNN(2, (4, 6), blocks_per_stage=2, num_classes=3).double()
        _randomise_norm_statistics(model, gen)
        x = torch.randn(7, 2, 8, 8, generator=gen, dtype=torch.float64)
    model.eval()
    groups = zero_invariant_groups(model)
    by_layer: dict[str, list[int]] = {}
    for i, g in enumerate(groups):
        by_layer.setdefault(g.layer, []).append(i)
    # half of every stream and inner layer, never all of one (that would cut the network)
    chosen = [i for idx in by_layer.values() for i in idx[: len(idx) // 2]]
    _zero(groups, chosen)
    small = compact_model(model, groups)
    with torch.no_grad():
        full, compact = model(x), small(x)
    assert compact.abs().max() > 0.01
    torch.testing.assert_close(compact, full, rtol=0, atol=1e-12)
    assert sum(p.numel() for p in small.parameters()) < 0.75 * sum(p.numel() for p in model.parameters())


def test_compact_residual_mlp_parameter_count_in_closed_form():
    """Deleting s of the w stream channels and k_b hidden units of block b leaves a residual MLP of width w - s."""
    torch.manual_seed(0)
    d_in, w, h, blocks, d_out = 9, 7, 5, 2, 3
    model = ResidualMLP(d_in, w, h, blocks, d_out).double()
    groups = zero_invariant_groups(model)
    stream_pruned, hidden_pruned = [0, 3, 6], [[1], [0, 2, 4]]
    chosen = stream_pruned + [w + b * h + j for b, idx in enumerate(hidden_pruned) for j in idx]
    _zero(groups, chosen)
    small = compact_model(model, groups)
    ws = w - len(stream_pruned)
    expected = (d_in + 1) * ws + (ws + 1) * d_out + sum((ws + 1) * (h - len(k)) + (h - len(k) + 1) * ws
                                                         for k in hidden_pruned)
    assert sum(p.numel() for p in small.parameters()) == expected
    assert small.stem.out_features == ws and small.head.in_features == ws
    assert [b.inner.out_features for b in small.blocks] == [h - len(k) for k in hidden_pruned]


def test_hesso_on_a_residual_mlp_keeps_pruned_groups_zero_and_compacts_exactly(gen):
    from experiments.digits_common import digits_split

    (x, y), (xt, _) = digits_split(0, dtype=torch.float64)
    torch.manual_seed(0)
    model = ResidualMLP(64, 32, 32, 2, 10).double()
    groups = zero_invariant_groups(model)
    opt = HESSO(model.parameters(), groups, 0.5, lr=0.1, momentum=0.9, start_pruning_step=10, pruning_steps=20,
                pruning_periods=2)
    owners = [g.layer for g in groups]
    history = []
    for step in range(60):
        idx = torch.randint(0, len(y), (50,), generator=gen)
        opt.zero_grad()
        nn.functional.cross_entropy(model(x[idx]), y[idx]).backward()
        opt.step()
        if step < 10 or step >= 30:                                          # before pruning; after it ends
            history.append(torch.stack([g.flat().detach().abs().max() for g in groups]))
    history = torch.stack(history)
    pruned = sorted(opt.pruned)
    assert len(pruned) == len(groups) // 2
    assert any(owners[i] == "stream" for i in pruned)                       # stream groups are pruned too
    assert torch.all(history[10:, pruned] == 0)                              # through every later momentum step
    assert torch.all(history[:10] > 0)
    buffers = {p: opt.state[p]["momentum_buffer"] for p in model.parameters()}
    assert all(not bool(groups[i].flat(buffers).any()) for i in pruned)      # optimizer state zero too
    small = compact_model(model, groups)
    assert sum(p.numel() for p in small.parameters()) < 0.6 * sum(p.numel() for p in model.parameters())
    with torch.no_grad():
        torch.testing.assert_close(small(xt), model(xt), rtol=0, atol=1e-12)


def test_hesso_on_a_residual_cnn_compacts_exactly(gen):
    from experiments.digits_common import digits_split

    (x, y), (xt, _) = digits_split(0, dtype=torch.float64, images=True)
    torch.manual_seed(0)
    model = ResidualCNN(1, (4, 8), blocks_per_stage=2).double()
    groups = zero_invariant_groups(model)
    opt = HESSO(model.parameters(), groups, 0.4, lr=0.05, momentum=0.9, start_pruning_step=2, pruning_steps=6,
                pruning_periods=2)
    for _ in range(12):
        idx = torch.randint(0, len(y), (32,), generator=gen)
        opt.zero_grad()
        nn.functional.cross_entropy(model(x[idx]), y[idx]).backward()
        opt.step()
    assert len(opt.pruned) == int(0.4 * len(groups))
    assert all(not bool(g.flat().any()) for g in opt.pruned_groups)
    model.eval()
    small = compact_model(model, groups)
    assert sum(p.numel() for p in small.parameters()) < sum(p.numel() for p in model.parameters())
    with torch.no_grad():
        torch.testing.assert_close(small(xt[:100]), model(xt[:100]), rtol=0, atol=1e-12)


def test_residual_mlp_accuracy_at_half_the_groups_matches_dense():
    """The issue's HESSO acceptance on the residual model: target 0.5 within 0.01 of dense (digits; a shorter
    schedule than the experiment's 40 epochs, which gives the same verdict in ``sciml reproduce hesso``)."""
    from experiments.compress_hesso_digits import Config, train_hesso

    cfg = Config(epochs=15, warmup_epochs=3, pruning_epochs=5)
    accs = {}
    for target in (0.0, 0.5):
        model, _, _, (xt, yt) = train_hesso(cfg, target, 0, architecture="residual_mlp")
        with torch.no_grad():
            accs[target] = float((model(xt).argmax(1) == yt).float().mean())
    assert accs[0.0] > 0.96 and accs[0.5] >= accs[0.0] - 0.01, accs


@pytest.mark.parametrize("architecture", ["mlp", "cnn"])
def test_a_fully_pruned_tensor_keeps_one_zero_channel(architecture, gen):
    """HESSO may prune every hidden unit of a block (the block then adds a constant) or a whole stream: the
    compact model keeps one zero channel there and still equals the masked model."""
    torch.manual_seed(0)
    if architecture == "mlp":
        model, x = ResidualMLP(5, 4, 3, 2, 2).double(), torch.randn(6, 5, generator=gen, dtype=torch.float64)
        emptied = ("blocks.0.hidden", "stream")
    else:
        model = ResidualCNN(1, (3, 4), blocks_per_stage=1, num_classes=2).double()
        x = torch.randn(3, 1, 8, 8, generator=gen, dtype=torch.float64)
        emptied = ("stage1.0.inner", "stage2.stream")
    model.eval()
    groups = zero_invariant_groups(model)
    _zero(groups, [i for i, g in enumerate(groups) if g.layer in emptied])
    small = compact_model(model, groups)
    with torch.no_grad():
        torch.testing.assert_close(small(x), model(x), rtol=0, atol=1e-12)
    widths = [m.out_features if isinstance(m, nn.Linear) else m.out_channels for m in small.modules()
              if isinstance(m, (nn.Linear, nn.Conv2d))]
    assert min(widths) == 1


def test_bad_groups_and_models():
    a, b = nn.Linear(3, 4), nn.Linear(5, 2)
    with pytest.raises(ValueError, match="not a multiple"):
        channel_groups("s", [a], [nn.Linear(6, 2)])
    with pytest.raises(ValueError, match="same number"):
        channel_groups("s", [a, nn.Linear(3, 5)], [b])
    with pytest.raises(ValueError, match="affine"):
        channel_groups("s", [a], [nn.Linear(4, 2)], norms=[nn.BatchNorm1d(4, affine=False)])
    with pytest.raises(TypeError, match="producer"):
        channel_groups("s", [nn.ReLU()], [b])
    with pytest.raises(ValueError, match="grouped"):
        channel_groups("s", [nn.Conv2d(4, 4, 3, groups=2)], [nn.Conv2d(4, 2, 1)])
    with pytest.raises(ValueError, match="zero_invariant_groups"):
        zero_invariant_groups(nn.Linear(3, 4))
    with pytest.raises(ValueError, match="positive ints"):
        ResidualMLP(3, 0, 2, 1, 2)
    model = ResidualMLP(3, 2, 2, 1, 2)
    groups = zero_invariant_groups(model)
    with pytest.raises(ValueError, match="overlaps"):
        HESSO(model.parameters(), groups + groups[:1], 0.5)
    with pytest.raises(ValueError, match="pass every group"):              # the stream, without the full list
        compact_model(model, groups[2:], pruned=groups[:2])
    other = ResidualMLP(3, 2, 2, 1, 2)
    with pytest.raises(ValueError, match="not in the model"):
        compact_model(other, groups, pruned=groups[:1])
