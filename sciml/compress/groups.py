"""Zero-invariant groups (ZIGs, spec B.10) and the compact model built by deleting the pruned ones.

A ZIG is one channel of a tensor that flows between layers: a hidden unit, a conv channel, or a channel of a
residual stream. Its *members* are every parameter entry that writes that channel (a producer's row and bias, a
BatchNorm's scale and shift); its *auxiliary* part is every consumer's input slice that reads it. When all
members are zero the channel carries ``act(0) = 0`` (ReLU, tanh, GELU, ...; an affine BatchNorm with zero scale
and shift outputs 0 whatever its statistics), and a residual sum of zero channels stays zero. So deleting the
members' rows and the consumers' columns leaves the function unchanged: :func:`compact_model` builds that
smaller network for any module made of Linear / Conv / BatchNorm layers, sequential or residual.

A residual addition forces every layer that writes into the sum to share one group per channel (spec B.10): the
stem and every block's last layer of a stage are the producers of one stream, every block's first layer and the
next stage (or the head) its consumers. :func:`channel_groups` builds such groups from the producers, norms and
consumers of one stream; :func:`zero_invariant_groups` derives them for ``nn.Sequential`` models and for models
that declare their streams (a ``zero_invariant_groups()`` method, e.g. :mod:`sciml.compress.residual`).
"""

from __future__ import annotations

import collections
import copy
import dataclasses
from typing import Sequence

import torch
from torch import nn

_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d)
_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d)
ZERO_SAFE = (nn.ReLU, nn.Tanh, nn.GELU, nn.LeakyReLU, nn.ELU, nn.SiLU, nn.Identity, nn.Hardtanh, nn.ReLU6)
_SHAPE_ONLY = (nn.MaxPool1d, nn.MaxPool2d, nn.AvgPool1d, nn.AvgPool2d, nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d,
               nn.Dropout)


@dataclasses.dataclass(frozen=True)
class ZeroInvariantGroup:
    """Channel ``index`` of the tensor ``layer`` names: ``members`` are (parameter, dim, slice) triples zeroed
    together; ``auxiliary`` are the consumers' input slices (deleted by :func:`compact_model`, not scored)."""

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


def _out_units(module: nn.Module) -> int:
    return module.out_features if isinstance(module, nn.Linear) else module.out_channels


def _in_units(module: nn.Module) -> int:
    return module.in_features if isinstance(module, nn.Linear) else module.in_channels


def _check_layer(module: nn.Module, role: str) -> None:
    if not isinstance(module, _LAYERS):
        raise TypeError(f"{role} must be nn.Linear, nn.Conv1d or nn.Conv2d, got {type(module).__name__}")
    if not isinstance(module, nn.Linear) and module.groups != 1:
        raise ValueError(f"grouped convolutions (groups={module.groups}) are not supported as {role}")


def channel_groups(name: str, producers: Sequence[nn.Module], consumers: Sequence[nn.Module],
                   norms: Sequence[nn.Module] = ()) -> list[ZeroInvariantGroup]:
    """One ZIG per channel of a tensor written by ``producers`` (summed, for a residual stream), normalised by
    the affine BatchNorms ``norms`` and read by ``consumers``.

    A consumer reading a flattened conv tensor (``in_features = channels * h * w``) gets the contiguous block of
    ``h * w`` inputs of each channel. Raises ValueError when the shapes do not agree.
    """
    if not producers or not consumers:
        raise ValueError(f"stream {name!r} needs at least one producer and one consumer")
    for module in producers:
        _check_layer(module, "a producer")
    for module in consumers:
        _check_layer(module, "a consumer")
    units = _out_units(producers[0])
    if any(_out_units(m) != units for m in producers):
        raise ValueError(f"producers of stream {name!r} write {[_out_units(m) for m in producers]} channels; "
                         "a residual sum needs the same number")
    for norm in norms:
        if not isinstance(norm, _NORMS) or not norm.affine or norm.num_features != units:
            raise ValueError(f"norms of stream {name!r} must be affine BatchNorms with {units} features (a "
                             "non-affine norm maps a zero channel to -mean/std, not 0)")
    widths = []
    for module in consumers:
        if _in_units(module) % units:
            raise ValueError(f"a consumer of stream {name!r} has {_in_units(module)} inputs, not a multiple of "
                             f"its {units} channels")
        widths.append(_in_units(module) // units)
    writers = [p for m in producers for p in (m.weight, m.bias) if p is not None]
    writers += [p for n in norms for p in (n.weight, n.bias)]
    return [ZeroInvariantGroup(name, j, tuple((p, 0, slice(j, j + 1)) for p in writers),
                               tuple((m.weight, 1, slice(j * w, (j + 1) * w)) for m, w in zip(consumers, widths)))
            for j in range(units)]


def zero_invariant_groups(model: nn.Module) -> list[ZeroInvariantGroup]:
    """ZIGs of a model: every unit of every Linear/Conv layer except the last.

    ``nn.Sequential`` MLPs and plain CNNs are read layer by layer; between a producer and its consumer are
    allowed: activations with ``act(0) = 0``, affine BatchNorm (its scale and shift join the group), pooling,
    dropout and Flatten. Other models must declare their streams with a ``zero_invariant_groups()`` method (the
    residual models of :mod:`sciml.compress.residual` do); graph discovery for arbitrary networks is out of scope.
    """
    if not isinstance(model, nn.Sequential):
        declared = getattr(model, "zero_invariant_groups", None)
        if callable(declared):
            return declared()
        raise ValueError(f"automatic groups need an nn.Sequential MLP/CNN or a model with a zero_invariant_groups() "
                         f"method (e.g. sciml.compress.ResidualMLP), got {type(model).__name__}")
    names = list(model._modules)
    layers = [i for i, n in enumerate(names) if isinstance(model[i], _LAYERS)]
    if len(layers) < 2:
        raise ValueError("model needs at least two Linear/Conv layers to have prunable units")
    groups: list[ZeroInvariantGroup] = []
    for producer, consumer in zip(layers, layers[1:]):
        norms, flattened = [], False
        for i in range(producer + 1, consumer):
            mod = model[i]
            if isinstance(mod, _NORMS):
                norms.append(mod)
            elif isinstance(mod, nn.Flatten):
                flattened = True
            elif not isinstance(mod, ZERO_SAFE + _SHAPE_ONLY):
                raise ValueError(f"module {names[i]} ({type(mod).__name__}) between layers {names[producer]} and "
                                 f"{names[consumer]} is not known to keep zero units at zero")
        prod, cons = model[producer], model[consumer]
        if not (flattened and isinstance(cons, nn.Linear)) and _in_units(cons) != _out_units(prod):
            raise ValueError(f"{names[consumer]} expects {_in_units(cons)} inputs but {names[producer]} has "
                             f"{_out_units(prod)}")
        groups += channel_groups(names[producer], [prod], [cons], norms)
    return groups


def _deletions(model: nn.Module, pruned: Sequence[ZeroInvariantGroup]) -> dict[tuple[str, int], set[int]]:
    """(parameter name, dim) -> indices to delete, from the members and auxiliary slices of ``pruned``."""
    names = {p: n for n, p in model.named_parameters()}
    drop: dict[tuple[str, int], set[int]] = {}
    for group in pruned:
        for p, dim, sl in group.members + group.auxiliary:
            if p not in names:
                raise ValueError(f"group {group.layer}[{group.index}] refers to a parameter that is not in the model")
            drop.setdefault((names[p], dim), set()).update(range(sl.start, sl.stop))
    return drop


def _leave_one_per_emptied_tensor(groups: Sequence[ZeroInvariantGroup],
                                  pruned: Sequence[ZeroInvariantGroup]) -> list[ZeroInvariantGroup]:
    """``pruned`` less one group of every tensor (``layer``) whose channels are all pruned: that channel stays as
    an all-zero unit, so no layer gets zero width (Conv/BatchNorm cannot) and the function is unchanged."""
    total = collections.Counter(g.layer for g in groups)
    pruned_per_layer = collections.Counter(g.layer for g in pruned)
    kept_back = {layer for layer, count in pruned_per_layer.items() if count == total[layer]}
    out = []
    for g in pruned:
        if g.layer in kept_back:
            kept_back.discard(g.layer)      # the first pruned group of an emptied tensor stays (as zeros)
            continue
        out.append(g)
    return out


def _keep(size: int, removed: set[int], what: str) -> torch.Tensor:
    keep = torch.tensor(sorted(set(range(size)) - removed), dtype=torch.long)
    if len(keep) == 0:
        raise ValueError(f"every channel along {what} is pruned; pass every group of the model as ``groups`` so that "
                         "one zero channel is kept")
    return keep


@torch.no_grad()
def compact_model(model: nn.Module, groups: Sequence[ZeroInvariantGroup],
                  pruned: Sequence[ZeroInvariantGroup] | None = None) -> nn.Module:
    """A smaller copy of ``model`` with the pruned groups' members (rows, BatchNorm entries and running
    statistics) and auxiliary slices (the consumers' input columns) deleted; works across residual sums when the
    groups span every producer and consumer of the stream. ``pruned`` defaults to the groups whose members are
    exactly zero. A tensor whose every channel is pruned keeps one (all-zero) channel. ``groups`` must be the full
    list the model was partitioned into. Supported layers: Linear, Conv1d/2d (groups=1), BatchNorm1d/2d."""
    if pruned is None:
        pruned = [g for g in groups if not bool(g.flat().any())]
    drop = _deletions(model, _leave_one_per_emptied_tensor(groups, pruned))
    small = copy.deepcopy(model)
    modules = dict(small.named_modules())
    touched: dict[str, nn.Module] = {}
    for (pname, dim), removed in sorted(drop.items()):
        mname, _, attr = pname.rpartition(".")
        module = modules[mname]
        if not isinstance(module, _LAYERS + _NORMS):
            raise ValueError(f"cannot resize {mname} ({type(module).__name__}); supported: Linear, Conv, BatchNorm")
        param = getattr(module, attr)
        keep = _keep(param.shape[dim], removed, f"dim {dim} of {pname}").to(param.device)
        setattr(module, attr, nn.Parameter(param.index_select(dim, keep).clone(), requires_grad=param.requires_grad))
        if isinstance(module, _NORMS) and attr == "weight":
            module.running_mean = module.running_mean[keep].clone()
            module.running_var = module.running_var[keep].clone()
        touched[mname] = module
    for mname, module in touched.items():
        _sync_shape(mname, module)
    return small


def _sync_shape(name: str, module: nn.Module) -> None:
    """Make a resized layer's size attributes agree with its parameters (and its parameters with each other)."""
    weight, bias = module.weight, getattr(module, "bias", None)
    if bias is not None and bias.shape[0] != weight.shape[0]:
        raise ValueError(f"{name}: weight and bias lost different rows; its groups must delete both together")
    if isinstance(module, nn.Linear):
        module.out_features, module.in_features = weight.shape
    elif isinstance(module, _NORMS):
        if module.running_mean.shape[0] != weight.shape[0]:
            raise ValueError(f"{name}: BatchNorm statistics and scale disagree after pruning")
        module.num_features = weight.shape[0]
    else:
        module.out_channels, module.in_channels = weight.shape[0], weight.shape[1]
