"""Unstructured pruning: magnitude (the baseline) and Optimal Brain Surgeon with M-FAC inverse empirical Fisher
(Frantar et al., NeurIPS 2021, spec B.9).

OBS with M-FAC, for the weights ``w`` of the pruned layers (flattened, d entries):
    saliency   rho_q = w_q^2 / (2 [F^-1]_qq)                              (drop the lowest)
    correction delta_w = -F^-1 sum_{q in Q} (w_q / [F^-1]_qq) e_q,  then w_Q = 0 exactly
with ``F = damping I + (1/m) sum_i g_i g_i^T`` from ``m`` gradients of mini-batches. The target sparsity is
reached in ``recomputations`` steps on the geometric schedule ``s_k = 1 - (1 - s)^(k / n)``, recomputing the
gradients and F^-1 at each step (the released code's one-shot mode); no fine-tuning in between unless asked.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Callable, Sequence

import torch

from sciml.curvature.mfac import MFACInverseFisher
from sciml.core import Result

METHODS = ("mfac", "magnitude")
SCOPES = ("global", "layer")


def layer_weights(model: torch.nn.Module, purpose: str = "prune") -> dict[str, torch.nn.Parameter]:
    """``weight`` of every Linear and Conv layer, keyed by module name (what pruning and HAWQ act on)."""
    layers = {name: mod.weight for name, mod in model.named_modules()
              if isinstance(mod, (torch.nn.Linear, torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d))}
    if not layers:
        raise ValueError(f"model has no Linear or Conv layer to {purpose} (no prunable layer)")
    return layers


def prunable_weights(model: torch.nn.Module) -> dict[str, torch.nn.Parameter]:
    """``weight`` of every Linear and Conv layer, keyed by module name."""
    return layer_weights(model, "prune")


def sparsity_schedule(target: float, steps: int) -> list[float]:
    """The geometric schedule ``1 - (1 - target)^(k/steps)``, k = 1..steps (ends exactly at ``target``)."""
    _check_sparsity(target)
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    return [1.0 - (1.0 - target) ** (k / steps) for k in range(1, steps + 1)]


def _check_sparsity(sparsity: float) -> None:
    if not (isinstance(sparsity, (int, float)) and 0.0 <= sparsity < 1.0):
        raise ValueError(f"sparsity must be in [0, 1), got {sparsity!r}")


@dataclasses.dataclass(frozen=True)
class PruneResult(Result):
    """The pruned copy of the model, its masks (True = kept) and what was measured."""

    model: torch.nn.Module
    masks: dict[str, torch.Tensor]
    layer_sparsity: dict[str, float]
    sparsity: float
    method: str
    accuracy: float | None = None

    def to_json(self) -> dict:
        return {"layer_sparsity": self.layer_sparsity, "sparsity": self.sparsity, "method": self.method,
                "accuracy": self.accuracy}


def _flat(weights: Sequence[torch.Tensor]) -> torch.Tensor:
    return torch.cat([w.detach().reshape(-1) for w in weights])


def _batches(data, batch_size: int, count: int, generator: torch.Generator | None):
    """``count`` mini-batches of ``batch_size`` drawn without replacement per pass from a tensor pair."""
    x, y = data
    n = len(y)
    out = []
    while len(out) < count:
        perm = torch.randperm(n, generator=generator)
        out += [perm[i:i + batch_size] for i in range(0, n - batch_size + 1, batch_size)]
    return [(x[i], y[i]) for i in out[:count]]


def _gradients(model, loss_fn, weights, batches) -> torch.Tensor:
    rows = []
    for xb, yb in batches:
        grads = torch.autograd.grad(loss_fn(model(xb), yb), weights)
        rows.append(torch.cat([g.reshape(-1) for g in grads]))
    return torch.stack(rows)


def _select(scores: torch.Tensor, count: int, sizes: Sequence[int], scope: str, target: float) -> torch.Tensor:
    """Boolean mask (True = prune) of the lowest scores: ``count`` globally, or ``target`` of each layer."""
    prune = torch.zeros_like(scores, dtype=torch.bool)
    if scope == "global":
        if count > 0:
            prune[torch.topk(scores, count, largest=False).indices] = True
        return prune
    start = 0
    for size in sizes:
        k = int(round(target * size))
        if k > 0:
            prune[start + torch.topk(scores[start:start + size], k, largest=False).indices] = True
        start += size
    return prune


def prune(model: torch.nn.Module, sparsity: float, *, method: str = "mfac", data=None,
          loss_fn: Callable | None = None, layers: Sequence[str] | None = None, scope: str = "global",
          num_grads: int = 64, grad_batch_size: int = 16, damping: float = 1e-4, recomputations: int = 8,
          block_size: int | None = None, eval_data=None, finetune: Callable | None = None,
          generator: torch.Generator | None = None) -> PruneResult:
    """Prune a copy of ``model`` to ``sparsity`` (fraction of zero weights in the pruned layers).

    Args:
        method: "mfac" (OBS with the M-FAC inverse empirical Fisher; needs ``data``) or "magnitude".
        data: ``(inputs, targets)`` tensors for the gradients; ``eval_data`` for the reported accuracy.
        scope: "global" ranks all pruned weights together; "layer" prunes each layer to ``sparsity``.
        num_grads, grad_batch_size, damping, recomputations, block_size: M-FAC's m, gradient batch size,
            lambda, number of steps of the schedule and optional block-diagonal blocks (spec defaults for
            the digits MLP: 64, 16, 1e-4, 8).
        finetune: optional ``finetune(model, masks)`` called after each step (keep masked weights at zero).
    """
    _check_sparsity(sparsity)
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {SCOPES}, got {scope!r}")
    if method == "mfac":
        if data is None:
            raise ValueError("method='mfac' needs data=(inputs, targets) for the gradients")
        if num_grads < 1 or grad_batch_size < 1 or recomputations < 1:
            raise ValueError("num_grads, grad_batch_size and recomputations must be >= 1")
        if not damping > 0:
            raise ValueError(f"damping must be > 0, got {damping!r}")
    loss_fn = loss_fn or torch.nn.functional.cross_entropy
    pruned = copy.deepcopy(model)
    all_weights = prunable_weights(pruned)
    names = list(all_weights) if layers is None else list(layers)
    unknown = [n for n in names if n not in all_weights]
    if unknown:
        raise ValueError(f"unknown layers {unknown}; prunable layers: {list(all_weights)}")
    weights = [all_weights[n] for n in names]
    sizes = [w.numel() for w in weights]
    keep = torch.ones(sum(sizes), dtype=torch.bool, device=weights[0].device)
    steps = sparsity_schedule(sparsity, recomputations) if method == "mfac" else [sparsity]
    for target in steps:
        w = _flat(weights)
        count = int(round(target * w.numel()))
        if method == "magnitude":
            scores = w.abs().masked_fill(~keep, -1.0)            # already-pruned weights stay pruned
            drop = _select(scores, count, sizes, scope, target)
            new_w = w.masked_fill(drop, 0.0)
        else:
            batches = _batches(data, grad_batch_size, num_grads, generator)
            # Gradients restricted to the weights still alive: pruned coordinates are constrained to zero, so
            # the Fisher of the remaining problem lives on the kept coordinates (as the released code masks).
            grads = _gradients(pruned, loss_fn, weights, batches).to(w.dtype) * keep
            fisher = MFACInverseFisher(grads, damping, block_size=block_size)
            inv_diag = fisher.inverse_diagonal()
            scores = (w.pow(2) / (2 * inv_diag)).masked_fill(~keep, -1.0)
            drop = _select(scores, count, sizes, scope, target)
            newly = drop & keep
            correction = fisher.ihvp(torch.where(newly, w / inv_diag, torch.zeros_like(w)))
            new_w = (w - correction).masked_fill(drop | ~keep, 0.0)
        keep &= ~drop
        with torch.no_grad():
            for param, chunk in zip(weights, new_w.split(sizes)):
                param.copy_(chunk.view_as(param))
        if finetune is not None:
            finetune(pruned, _masks(names, keep, sizes, weights))
            with torch.no_grad():
                for param, mask in zip(weights, keep.split(sizes)):
                    param.mul_(mask.view_as(param))
    masks = _masks(names, keep, sizes, weights)
    layer_sparsity = {n: float(1.0 - m.double().mean()) for n, m in masks.items()}
    total = float(1.0 - keep.double().mean())
    accuracy = None
    if eval_data is not None:
        with torch.no_grad():
            x, y = eval_data
            accuracy = float((pruned(x).argmax(1) == y).double().mean())
    return PruneResult(pruned, masks, layer_sparsity, total, method, accuracy)


def _masks(names, keep, sizes, weights) -> dict[str, torch.Tensor]:
    return {n: m.view_as(w).clone() for n, m, w in zip(names, keep.split(sizes), weights)}
