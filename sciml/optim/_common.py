"""Validation and generator plumbing shared by the optimizers (kept small: each optimizer reads whole)."""

from __future__ import annotations

import math
from typing import Iterable

import torch


def check_lr(lr: float) -> None:
    if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr >= 0):
        raise ValueError(f"lr must be a finite number >= 0, got {lr!r}")


def check_betas(betas: Iterable[float]) -> tuple[float, float]:
    betas = tuple(betas)
    if len(betas) != 2 or not all(isinstance(b, (int, float)) and 0.0 <= b < 1.0 for b in betas):
        raise ValueError(f"betas must be two numbers in [0, 1), got {betas!r}")
    return betas


def check_nonnegative(name: str, value: float) -> None:
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")


def check_positive(name: str, value: float) -> None:
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")


def check_finite_grads(params: Iterable[torch.Tensor], optimizer: str) -> None:
    """Raise on a non-finite gradient: one reduction per tensor, ONE host sync per call."""
    grads = [p.grad for p in params if p.grad is not None]
    # one fused reduction over all gradients (a NaN or Inf anywhere makes the sum of norms non-finite)
    if grads and not bool(torch.isfinite(torch.stack(torch._foreach_norm(grads)).sum())):
        raise ValueError(f"{optimizer}: a gradient contains NaN or Inf; lower the learning rate or check the loss")


def require_graph(params: Iterable[torch.Tensor], optimizer: str) -> None:
    """Curvature optimizers differentiate the gradient: it must carry a graph."""
    for p in params:
        if p.grad is not None and p.grad.grad_fn is None:
            raise ValueError(f"{optimizer} needs the gradient's graph for its Hessian-vector product: call "
                             f"loss.backward(create_graph=True) before step()")


def evaluate_closure(closure):
    """``closure()`` under ``enable_grad`` (``step`` runs under ``no_grad``), or None: torch's optimizer idiom."""
    if closure is None:
        return None
    with torch.enable_grad():
        return closure()


def random_like(p: torch.Tensor, kind: str, generator: torch.Generator | None) -> torch.Tensor:
    """Rademacher or Gaussian probe with ``p``'s shape, dtype and device, drawn from ``generator`` (whose device
    may differ from ``p``'s: the draw happens on the generator's device and is moved)."""
    device = generator.device if generator is not None else p.device
    if kind == "rademacher":
        z = torch.randint(0, 2, p.shape, generator=generator, device=device).to(p.dtype) * 2 - 1
    else:
        z = torch.randn(p.shape, generator=generator, device=device, dtype=p.dtype)
    return z.to(p.device)


class GeneratorStateMixin:
    """``state_dict`` round trips include the probe generator's state, so a resumed run draws the same probes."""

    generator: torch.Generator | None

    def state_dict(self):
        state = super().state_dict()
        if self.generator is not None:
            state["generator_state"] = self.generator.get_state()
        return state

    def load_state_dict(self, state_dict):
        state_dict = dict(state_dict)
        generator_state = state_dict.pop("generator_state", None)
        super().load_state_dict(state_dict)
        if generator_state is not None and self.generator is not None:
            self.generator.set_state(generator_state)
