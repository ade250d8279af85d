"""Randomness as an explicit argument: every stochastic routine takes a ``torch.Generator``."""

from __future__ import annotations

import torch


def make_generator(seed: int, device: str | torch.device = "cpu") -> torch.Generator:
    """A fresh generator on ``device`` seeded with ``seed``."""
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    gen = torch.Generator(device=device)
    gen.manual_seed(seed)
    return gen


def spawn(generator: torch.Generator | None, k: int) -> list[torch.Generator]:
    """``k`` independent child generators derived from ``generator`` (deterministic given its state)."""
    if generator is None:
        seeds = torch.randint(0, 2**62, (k,)).tolist()
        device = "cpu"
    else:
        seeds = torch.randint(0, 2**62, (k,), generator=generator, device=generator.device).tolist()
        device = generator.device
    return [make_generator(int(s), device) for s in seeds]


def check_generator(generator: torch.Generator | None, device: torch.device) -> torch.Generator | None:
    """Raise ValueError when a generator lives on another device type than the tensors it will fill."""
    if generator is not None and generator.device.type != torch.device(device).type:
        raise ValueError(f"generator is on {generator.device} but the data is on {device}; "
                         "create the generator on the data's device")
    return generator
