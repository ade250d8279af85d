"""Small residual networks that declare their zero-invariant groups (spec B.10: residual additions share a group).

* :class:`ResidualMLP`: ``h = act(stem(x))``, blocks ``h <- h + W2 act(W1 h + b1) + b2``, ``head(h)``.
  Groups: each channel of the residual stream (the stem's row and every block's W2 row write it; every block's
  W1 column and the head's column read it) and each block's hidden unit (W1 row, W2 column).
* :class:`ResidualCNN`: a two-stage ResNet (stem conv-BN-ReLU; basic blocks ``relu(BN(conv(relu(BN(conv x))))
  + shortcut(x))``; the first block of stage 2 halves the resolution with a 1x1 conv-BN shortcut; global average
  pool; linear head). Groups: each channel of each stage's stream (stem or shortcut, and every block's second
  conv and BN, write it), and each block's inner channel.

A zero stream channel stays zero through every sum (``0 + 0``) and every ReLU, so :func:`compact_model` can
delete it from every layer of the stage at once.
"""

from __future__ import annotations

import torch
from torch import nn

from sciml.compress.groups import ZeroInvariantGroup, channel_groups


def _check_sizes(**sizes: int) -> None:
    bad = {k: v for k, v in sizes.items() if isinstance(v, bool) or not isinstance(v, int) or v < 1}
    if bad:
        raise ValueError(f"sizes must be positive ints, got {bad}")


class ResidualMLPBlock(nn.Module):
    def __init__(self, width: int, hidden: int) -> None:
        super().__init__()
        self.inner, self.outer, self.act = nn.Linear(width, hidden), nn.Linear(hidden, width), nn.ReLU()

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h + self.outer(self.act(self.inner(h)))


class ResidualMLP(nn.Module):
    """``in_features -> width`` stem, ``num_blocks`` residual blocks of hidden size ``hidden``, linear head."""

    def __init__(self, in_features: int, width: int, hidden: int, num_blocks: int, out_features: int) -> None:
        super().__init__()
        _check_sizes(in_features=in_features, width=width, hidden=hidden, num_blocks=num_blocks,
                     out_features=out_features)
        self.stem, self.act = nn.Linear(in_features, width), nn.ReLU()
        self.blocks = nn.ModuleList(ResidualMLPBlock(width, hidden) for _ in range(num_blocks))
        self.head = nn.Linear(width, out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.act(self.stem(x))
        for block in self.blocks:
            h = block(h)
        return self.head(h)

    def zero_invariant_groups(self) -> list[ZeroInvariantGroup]:
        groups = channel_groups("stream", [self.stem] + [b.outer for b in self.blocks],
                                [b.inner for b in self.blocks] + [self.head])
        for i, block in enumerate(self.blocks):
            groups += channel_groups(f"blocks.{i}.hidden", [block.inner], [block.outer])
        return groups


class BasicBlock(nn.Module):
    """``relu(bn2(conv2(relu(bn1(conv1 x)))) + shortcut(x))``; the shortcut is a 1x1 conv + BN when the shape
    changes, the identity otherwise."""

    def __init__(self, in_channels: int, channels: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.shortcut = None
        if stride != 1 or in_channels != channels:
            self.shortcut = nn.Sequential(nn.Conv2d(in_channels, channels, 1, stride, bias=False),
                                          nn.BatchNorm2d(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
        return torch.relu(out + (x if self.shortcut is None else self.shortcut(x)))


class ResidualCNN(nn.Module):
    """Two stages of ``blocks_per_stage`` basic blocks with ``channels = (c1, c2)``; stage 2 halves the
    resolution. Input ``(n, in_channels, H, W)``."""

    def __init__(self, in_channels: int = 1, channels: tuple[int, int] = (8, 16), blocks_per_stage: int = 2,
                 num_classes: int = 10) -> None:
        super().__init__()
        _check_sizes(in_channels=in_channels, c1=channels[0], c2=channels[1], blocks_per_stage=blocks_per_stage,
                     num_classes=num_classes)
        c1, c2 = channels
        self.stem = nn.Sequential(nn.Conv2d(in_channels, c1, 3, 1, 1, bias=False), nn.BatchNorm2d(c1), nn.ReLU())
        self.stage1 = nn.Sequential(*(BasicBlock(c1, c1) for _ in range(blocks_per_stage)))
        self.stage2 = nn.Sequential(BasicBlock(c1, c2, stride=2),
                                    *(BasicBlock(c2, c2) for _ in range(blocks_per_stage - 1)))
        self.head = nn.Linear(c2, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.stage2(self.stage1(self.stem(x)))
        return self.head(h.mean(dim=(2, 3)))

    def zero_invariant_groups(self) -> list[ZeroInvariantGroup]:
        first = self.stage2[0]
        groups = channel_groups("stage1.stream", [self.stem[0]] + [b.conv2 for b in self.stage1],
                                [b.conv1 for b in self.stage1] + [first.conv1, first.shortcut[0]],
                                norms=[self.stem[1]] + [b.bn2 for b in self.stage1])
        groups += channel_groups("stage2.stream", [first.shortcut[0]] + [b.conv2 for b in self.stage2],
                                 [b.conv1 for b in self.stage2[1:]] + [self.head],
                                 norms=[first.shortcut[1]] + [b.bn2 for b in self.stage2])
        for name, stage in (("stage1", self.stage1), ("stage2", self.stage2)):
            for i, block in enumerate(stage):
                groups += channel_groups(f"{name}.{i}.inner", [block.conv1], [block.conv2], norms=[block.bn1])
        return groups
