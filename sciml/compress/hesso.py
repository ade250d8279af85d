"""HESSO (Chen et al., arXiv 2409.09085): structured pruning while training, standalone (no OTO graph).

It drives a target fraction of zero-invariant groups (:mod:`sciml.compress.groups`: hidden units, conv
channels, residual-stream channels shared by every layer of a stage) to exactly zero while training, so that
:func:`sciml.compress.compact_model` can then delete them without changing the network's function.

The optimizer follows the released ``hesso.py`` (spec B.10): the base step is SGD with momentum (the first
momentum buffer is the gradient itself) or OTO's Adam variant; after ``start_pruning_step`` it runs
``pruning_periods`` periods of ``pruning_steps / pruning_periods`` steps; at the first step of each period it
commits the previous period's groups as pruned and picks the ``K_p`` lowest-saliency live groups; during the
period those groups are scaled by ``(T - t - 1)/(T - t)`` after each step (the product reaches exactly 0);
pruned groups and their optimizer state are re-zeroed after every step. Saliency: five criteria (magnitude,
average magnitude, cosine similarity + 1, |first-order Taylor|, second-order Taylor 1/2 (x^T d)^2), each
normalised by its L2 norm over all groups, weighted 0.2 each. OTO's graph discovery for arbitrary networks and
the CRIC front-end are out of scope; the OTO package itself does not import with current torch.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

from sciml.compress.groups import ZeroInvariantGroup

CRITERIA = ("magnitude", "avg_magnitude", "cosine_similarity", "taylor_first_order", "taylor_second_order")


class HESSO(torch.optim.Optimizer):
    """Train and prune ``target_sparsity`` of the zero-invariant ``groups`` to exactly zero (spec B.10).

    Args:
        params: the model's parameters (all of them are trained).
        groups: the ZIGs (e.g. :func:`zero_invariant_groups`).
        target_sparsity: fraction of groups to prune, in [0, 1).
        lr, momentum, weight_decay: the base SGD step (``variant="sgd"``), or ``variant="adam"``/``"adamw"``
            with ``betas`` (OTO's Adam: first buffers are g and g^2, bias-corrected; eps 1e-8).
        start_pruning_step, pruning_steps, pruning_periods: when pruning starts, how many steps it lasts, and in
            how many periods the groups are chosen.
        importance: weight per criterion (default 0.2 each, see ``CRITERIA``).
        random_selection: a generator here replaces the saliency by uniform random scores (the trivial
            baseline: same schedule, no information about which groups matter).
    """

    def __init__(self, params, groups: Sequence[ZeroInvariantGroup], target_sparsity: float = 0.5, *,
                 lr: float = 0.1, variant: str = "sgd", momentum: float = 0.0, betas=(0.9, 0.999),
                 weight_decay: float = 0.0, start_pruning_step: int = 0, pruning_steps: int = 1,
                 pruning_periods: int = 1, importance: dict[str, float] | None = None,
                 random_selection: torch.Generator | None = None) -> None:
        if not (isinstance(target_sparsity, (int, float)) and 0.0 <= target_sparsity < 1.0):
            raise ValueError(f"target_sparsity must be in [0, 1), got {target_sparsity!r}")
        if not lr >= 0 or not 0 <= momentum < 1 or not weight_decay >= 0:
            raise ValueError(f"need lr >= 0, 0 <= momentum < 1, weight_decay >= 0; got {lr}, {momentum}, "
                             f"{weight_decay}")
        if variant not in ("sgd", "adam", "adamw"):
            raise ValueError(f"variant must be 'sgd', 'adam' or 'adamw', got {variant!r}")
        if pruning_periods < 1 or pruning_steps < pruning_periods or start_pruning_step < 0:
            raise ValueError("need pruning_periods >= 1, pruning_steps >= pruning_periods, start_pruning_step >= 0")
        if not groups:
            raise ValueError("groups is empty: nothing can be pruned")
        importance = dict.fromkeys(CRITERIA, 0.2) if importance is None else dict(importance)
        unknown = set(importance) - set(CRITERIA)
        if unknown:
            raise ValueError(f"unknown criteria {sorted(unknown)}; known: {CRITERIA}")
        super().__init__(params, dict(lr=lr, momentum=momentum, betas=tuple(betas), weight_decay=weight_decay))
        self.variant = variant
        self.groups = list(groups)
        self.importance = importance
        self.start, self.periods = start_pruning_step, pruning_periods
        self.period_length = pruning_steps // pruning_periods
        total = math.floor(len(self.groups) * min(target_sparsity, 0.999))
        per = total // pruning_periods
        self.per_period = [per] * (pruning_periods - 1) + [total - per * (pruning_periods - 1)]
        self.random_selection = random_selection
        self.step_count = 0
        self.period = 0
        self.pruned: set[int] = set()
        self.active: list[int] = []
        self._owner = _owner_maps(self.groups)
        self._pruned_masks: dict[nn.Parameter, torch.Tensor] = {}
        self._active_masks: dict[nn.Parameter, torch.Tensor] = {}

    # -- the base direction -----------------------------------------------------------------------------------
    @torch.no_grad()
    def _directions(self) -> dict[nn.Parameter, torch.Tensor]:
        directions = {}
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad + group["weight_decay"] * p if self.variant != "adamw" else p.grad.clone()
                state = self.state[p]
                if self.variant == "sgd":
                    if group["momentum"] > 0:
                        buf = state.get("momentum_buffer")
                        buf = g.clone() if buf is None else buf.mul_(group["momentum"]).add_(g)
                        state["momentum_buffer"] = buf
                        g = buf
                else:
                    b1, b2 = group["betas"]
                    if "exp_avg" not in state:          # OTO's Adam: first buffers are g and g^2
                        state["exp_avg"], state["exp_avg_sq"], state["t"] = g.clone(), g * g, 0
                    else:
                        state["exp_avg"].mul_(b1).add_(g, alpha=1 - b1)
                        state["exp_avg_sq"].mul_(b2).addcmul_(g, g, value=1 - b2)
                    state["t"] += 1
                    m_hat = state["exp_avg"] / (1 - b1 ** state["t"])
                    v_hat = state["exp_avg_sq"] / (1 - b2 ** state["t"])
                    g = m_hat / (v_hat.sqrt() + 1e-8)
                directions[p] = g
        return directions

    def saliency(self, directions: dict[nn.Parameter, torch.Tensor]) -> torch.Tensor:
        """The weighted, per-criterion-normalised score of every group (low = redundant): per-group sums of
        x*x, d*d, x*d and sizes by one ``index_add`` per parameter, not a loop over groups."""
        sums = None
        for p, owner in self._owner.items():
            member = owner >= 0
            index = owner[member]
            x = p.detach()[member]
            d = directions[p][member] if p in directions else torch.zeros_like(x)
            if sums is None:
                sums = torch.zeros(4, len(self.groups), dtype=x.dtype, device=x.device)
            sums.index_add_(1, index, torch.stack([x * x, d * d, x * d, torch.ones_like(x)]))
        xx, dd, dot, size = sums
        norm_x = xx.sqrt()
        cosine = dot / (norm_x * dd.sqrt()).clamp_min(1e-12)
        table = torch.stack([norm_x, norm_x / size, cosine + 1, dot.abs(), 0.5 * dot**2], dim=1)   # (groups, 5)
        table = table / table.norm(dim=0).clamp_min(1e-12)
        weights = torch.tensor([self.importance.get(c, 0.0) for c in CRITERIA], dtype=table.dtype)
        return table @ weights.to(table.device)

    def _masks(self, indices) -> dict[nn.Parameter, torch.Tensor]:
        """Per parameter holding some of them, the boolean mask of the entries of the groups ``indices``."""
        chosen = torch.tensor(sorted(indices), dtype=torch.int32)
        masks = {p: torch.isin(owner, chosen.to(owner.device)) for p, owner in self._owner.items()}
        return {p: mask for p, mask in masks.items() if bool(mask.any())}      # skip untouched parameters

    @torch.no_grad()
    def _zero_pruned(self) -> None:
        for p, mask in self._pruned_masks.items():
            p.masked_fill_(mask, 0)
            for key in ("momentum_buffer", "exp_avg", "exp_avg_sq"):
                buf = self.state[p].get(key)
                if buf is not None:
                    buf.masked_fill_(mask, 0)

    @torch.no_grad()
    def _scale_active(self, factor: float) -> None:
        for p, mask in self._active_masks.items():
            p.copy_(torch.where(mask, p * factor, p))

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        self.step_count += 1
        step, T = self.step_count, self.period_length
        directions = self._directions()
        if step >= self.start and self.period <= self.periods and (step - self.start - 1) % T == 0:
            self.pruned.update(self.active)                 # commit the previous period's groups
            self.active = []
            if self.period < self.periods:
                scores = (torch.rand(len(self.groups), generator=self.random_selection, dtype=torch.float64)
                          if self.random_selection is not None else self.saliency(directions))
                if self.pruned:
                    scores[list(self.pruned)] = float("inf")
                count = self.per_period[self.period]
                self.active = torch.topk(scores, count, largest=False).indices.tolist() if count else []
            self._pruned_masks = self._masks(self.pruned) if self.pruned else {}
            self._active_masks = self._masks(self.active) if self.active else {}
            self.period += 1
        for group in self.param_groups:
            for p in group["params"]:
                if p in directions:
                    if self.variant == "adamw":
                        p.mul_(1 - group["lr"] * group["weight_decay"])
                    p.add_(directions[p], alpha=-group["lr"])
        if self.active:
            t = (step - self.start) % T
            self._scale_active((T - t - 1) / (T - t) if T - t > 0 else 0.0)
        self._zero_pruned()
        return loss

    @property
    def pruned_groups(self) -> list[ZeroInvariantGroup]:
        return [self.groups[i] for i in sorted(self.pruned)]


def _owner_maps(groups: Sequence[ZeroInvariantGroup]) -> dict[nn.Parameter, torch.Tensor]:
    """Per member parameter, an int32 tensor of its shape holding the index of the group owning each entry (-1:
    none). Raises ValueError when two groups claim the same entry (their zeroing would interfere)."""
    owner: dict[nn.Parameter, torch.Tensor] = {}
    for i, group in enumerate(groups):
        for p, dim, sl in group.members:
            if p not in owner:
                owner[p] = torch.full(p.shape, -1, dtype=torch.int32, device=p.device)
            view = owner[p].narrow(dim, sl.start, sl.stop - sl.start)
            if bool((view >= 0).any()):
                raise ValueError(f"group {group.layer}[{group.index}] overlaps another group's members")
            view.fill_(i)
    return owner
