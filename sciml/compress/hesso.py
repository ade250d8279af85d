"""HESSO (Chen et al., arXiv 2409.09085): structured pruning while training, standalone for MLPs and plain CNNs.

A *zero-invariant group* (ZIG) is a hidden unit or conv channel: its incoming weights and bias (and BatchNorm
scale/shift), plus, as the auxiliary part, the matching input slice of the next layer. When the non-auxiliary
part is zero the unit outputs ``act(0) = 0`` (ReLU, tanh, GELU, ...), so deleting the group (rows here, columns
of the next layer) leaves the network's function unchanged: :func:`compact_model` builds that smaller network.

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

import copy
import dataclasses
import math
from typing import Sequence

import torch
from torch import nn

CRITERIA = ("magnitude", "avg_magnitude", "cosine_similarity", "taylor_first_order", "taylor_second_order")
_ACT_ZERO_SAFE = (nn.ReLU, nn.Tanh, nn.GELU, nn.LeakyReLU, nn.ELU, nn.SiLU, nn.Identity, nn.Hardtanh, nn.ReLU6)


@dataclasses.dataclass(frozen=True)
class ZeroInvariantGroup:
    """Unit ``index`` of layer ``layer``: ``members`` are (parameter, dim, slice) triples zeroed together;
    ``auxiliary`` are the consumer's input slices (kept in sync by :func:`compact_model`, not scored)."""

    layer: str
    index: int
    members: tuple[tuple[nn.Parameter, int, slice], ...]
    auxiliary: tuple[tuple[nn.Parameter, int, slice], ...]

    def flat(self, tensors: dict[nn.Parameter, torch.Tensor] | None = None) -> torch.Tensor:
        """The group's (non-auxiliary) entries of the parameters, or of ``tensors[param]``, flattened."""
        parts = []
        for p, dim, sl in self.members:
            t = p if tensors is None else tensors[p]
            parts.append(t.narrow(dim, sl.start, sl.stop - sl.start).reshape(-1))
        return torch.cat(parts)


def _units(module: nn.Module) -> int:
    return module.out_features if isinstance(module, nn.Linear) else module.out_channels


def zero_invariant_groups(model: nn.Sequential) -> list[ZeroInvariantGroup]:
    """ZIGs of a plain ``nn.Sequential`` MLP or CNN: every unit of every Linear/Conv layer except the last.

    Supported between a producer and its consumer: activations with ``act(0) = 0``, BatchNorm (its scale and
    shift join the group), pooling, dropout and Flatten (a conv channel becomes a contiguous block of features).
    Anything else (residual additions, attention) raises: define the groups by hand for such networks.
    """
    if not isinstance(model, nn.Sequential):
        raise ValueError("automatic groups need an nn.Sequential MLP/CNN; build ZeroInvariantGroup lists by hand "
                         "for other architectures")
    names = list(model._modules)
    layers = [i for i, n in enumerate(names) if isinstance(model[i], (nn.Linear, nn.Conv1d, nn.Conv2d))]
    if len(layers) < 2:
        raise ValueError("model needs at least two Linear/Conv layers to have prunable units")
    groups: list[ZeroInvariantGroup] = []
    for producer, consumer in zip(layers, layers[1:]):
        prod = model[producer]
        extras, flatten_factor = [], None
        for i in range(producer + 1, consumer):
            mod = model[i]
            if isinstance(mod, (nn.BatchNorm1d, nn.BatchNorm2d)):
                extras += [p for p in (mod.weight, mod.bias) if p is not None]
            elif isinstance(mod, nn.Flatten):
                flatten_factor = True
            elif not isinstance(mod, _ACT_ZERO_SAFE + (nn.MaxPool1d, nn.MaxPool2d, nn.AvgPool1d, nn.AvgPool2d,
                                                       nn.Dropout, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool1d)):
                raise ValueError(f"module {names[i]} ({type(mod).__name__}) between layers {names[producer]} and "
                                 f"{names[consumer]} is not known to keep zero units at zero")
        cons = model[consumer]
        units = _units(prod)
        in_features = cons.in_features if isinstance(cons, nn.Linear) else cons.in_channels
        if flatten_factor and isinstance(cons, nn.Linear):
            if in_features % units:
                raise ValueError(f"{names[consumer]} has {in_features} inputs, not a multiple of {units} channels")
            width = in_features // units
        else:
            if in_features != units:
                raise ValueError(f"{names[consumer]} expects {in_features} inputs but {names[producer]} has {units}")
            width = 1
        for j in range(units):
            members = [(prod.weight, 0, slice(j, j + 1))]
            if prod.bias is not None:
                members.append((prod.bias, 0, slice(j, j + 1)))
            members += [(p, 0, slice(j, j + 1)) for p in extras]
            aux = ((cons.weight, 1, slice(j * width, (j + 1) * width)),)
            groups.append(ZeroInvariantGroup(names[producer], j, tuple(members), aux))
    return groups


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
        """The weighted, per-criterion-normalised score of every group (low = redundant)."""
        scores = []
        for group in self.groups:
            x = group.flat()
            d = group.flat({p: directions[p] if p in directions else torch.zeros_like(p) for p, _, _ in group.members})
            dot = x @ d
            norm_x = x.norm()
            cosine = dot / (norm_x * d.norm()).clamp_min(1e-12)
            scores.append(torch.stack([norm_x, norm_x / x.numel(), cosine + 1, dot.abs(), 0.5 * dot**2]))
        table = torch.stack(scores)                                             # (groups, 5)
        table = table / table.norm(dim=0).clamp_min(1e-12)
        weights = torch.tensor([self.importance.get(c, 0.0) for c in CRITERIA], dtype=table.dtype)
        return table @ weights.to(table.device)

    @torch.no_grad()
    def _zero_groups(self, indices) -> None:
        for i in indices:
            for p, dim, sl in self.groups[i].members:
                p.narrow(dim, sl.start, sl.stop - sl.start).zero_()
                for key in ("momentum_buffer", "exp_avg", "exp_avg_sq"):
                    buf = self.state[p].get(key)
                    if buf is not None:
                        buf.narrow(dim, sl.start, sl.stop - sl.start).zero_()

    @torch.no_grad()
    def _scale_groups(self, indices, factor: float) -> None:
        for i in indices:
            for p, dim, sl in self.groups[i].members:
                p.narrow(dim, sl.start, sl.stop - sl.start).mul_(factor)

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
            self.period += 1
        for group in self.param_groups:
            for p in group["params"]:
                if p in directions:
                    if self.variant == "adamw":
                        p.mul_(1 - group["lr"] * group["weight_decay"])
                    p.add_(directions[p], alpha=-group["lr"])
        if self.active:
            t = (step - self.start) % T
            self._scale_groups(self.active, (T - t - 1) / (T - t) if T - t > 0 else 0.0)
        self._zero_groups(self.pruned)
        return loss

    @property
    def pruned_groups(self) -> list[ZeroInvariantGroup]:
        return [self.groups[i] for i in sorted(self.pruned)]


def compact_model(model: nn.Sequential, groups: Sequence[ZeroInvariantGroup],
                  pruned: Sequence[ZeroInvariantGroup] | None = None) -> nn.Sequential:
    """A smaller copy of ``model`` with the pruned groups' rows (and their BatchNorm entries) and the consumers'
    matching input columns deleted. ``pruned`` defaults to the groups whose parameters are exactly zero."""
    if pruned is None:
        pruned = [g for g in groups if not bool(g.flat().any())]
    drop: dict[str, set[int]] = {}
    for g in pruned:
        drop.setdefault(g.layer, set()).add(g.index)
    small = copy.deepcopy(model)
    names = list(model._modules)
    layers = [i for i, n in enumerate(names) if isinstance(model[i], (nn.Linear, nn.Conv1d, nn.Conv2d))]
    with torch.no_grad():
        for producer, consumer in zip(layers, layers[1:]):
            removed = drop.get(names[producer], set())
            if not removed:
                continue
            prod, cons = small[producer], small[consumer]
            units = _units(prod)
            keep = torch.tensor([j for j in range(units) if j not in removed], dtype=torch.long)
            if len(keep) == 0:
                raise ValueError(f"every unit of {names[producer]} is pruned; the network would be cut in two")
            _keep_rows(prod, keep)
            for i in range(producer + 1, consumer):
                mod = small[i]
                if isinstance(mod, (nn.BatchNorm1d, nn.BatchNorm2d)):
                    mod.weight = nn.Parameter(mod.weight[keep].clone()) if mod.weight is not None else None
                    mod.bias = nn.Parameter(mod.bias[keep].clone()) if mod.bias is not None else None
                    mod.running_mean, mod.running_var = mod.running_mean[keep].clone(), mod.running_var[keep].clone()
                    mod.num_features = len(keep)
            in_features = cons.in_features if isinstance(cons, nn.Linear) else cons.in_channels
            width = in_features // units
            cols = (keep[:, None] * width + torch.arange(width)[None, :]).reshape(-1)
            cons.weight = nn.Parameter(cons.weight.index_select(1, cols).clone())
            if isinstance(cons, nn.Linear):
                cons.in_features = len(cols)
            else:
                cons.in_channels = len(keep)
    return small


def _keep_rows(layer: nn.Module, keep: torch.Tensor) -> None:
    layer.weight = nn.Parameter(layer.weight.index_select(0, keep).clone())
    if layer.bias is not None:
        layer.bias = nn.Parameter(layer.bias.index_select(0, keep).clone())
    if isinstance(layer, nn.Linear):
        layer.out_features = len(keep)
    else:
        layer.out_channels = len(keep)
