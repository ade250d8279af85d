"""A model + loss + data, checked once and exposed as pure functions of a flat parameter subset.

Every curvature operator and the loss landscape build on :class:`CurvatureProblem`. It owns four decisions that
the papers leave implicit and that change the numbers:

- which parameters (``params``: all trainable ones, a submodule, names or tensors; the rest are constants);
- which data (one ``(X, y)`` batch or a re-iterable of batches; the mean-reduced loss over all batches is
  ``L = sum_b (n_b / N) L_b``, a sum-reduced one ``L = sum_b L_b``);
- train or eval mode, set explicitly for every evaluation and restored afterwards (BatchNorm running statistics
  are never updated by a curvature evaluation; Dropout in train mode is refused: its curvature is random);
- the reduction of the loss (read from ``loss_fn.reduction``; a plain callable is taken to be mean-reduced).
"""

from __future__ import annotations

import contextlib
import math
from typing import Any, Callable, Iterable, Iterator, Sequence

import torch
from torch import nn
from torch.func import functional_call, vmap

Batch = tuple[torch.Tensor, torch.Tensor]
DataLike = Batch | Iterable[Batch]
ParamsLike = nn.Module | Sequence[str] | Sequence[torch.Tensor] | None
MODES = ("eval", "train")
REDUCTIONS = ("mean", "sum")


def _is_batch(data: Any) -> bool:
    return (isinstance(data, (tuple, list)) and len(data) == 2 and isinstance(data[0], torch.Tensor)
            and isinstance(data[1], torch.Tensor))


def select_parameters(model: nn.Module, params: ParamsLike) -> list[str]:
    """Names (in ``model.named_parameters()`` order) of the parameters to differentiate.

    ``params`` may be None (every parameter with ``requires_grad``), a submodule of ``model`` (one layer: its
    trainable parameters), a sequence of parameter names, or a sequence of the parameter tensors themselves.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    named = dict(model.named_parameters())
    if params is None:
        names = [n for n, p in named.items() if p.requires_grad]
    elif isinstance(params, nn.Module):
        ids = {id(p) for p in params.parameters() if p.requires_grad}
        names = [n for n, p in named.items() if id(p) in ids]
        if ids and len(names) != len(ids):
            raise ValueError("params is a module whose parameters are not all parameters of model")
    else:
        items = list(params)
        if all(isinstance(p, str) for p in items):
            unknown = [p for p in items if p not in named]
            if unknown:
                raise ValueError(f"unknown parameter names {unknown}; model has {list(named)}")
            wanted = set(items)
        elif all(isinstance(p, torch.Tensor) for p in items):
            by_id = {id(p): n for n, p in named.items()}
            missing = [i for i, p in enumerate(items) if id(p) not in by_id]
            if missing:
                raise ValueError(f"params entries {missing} are not parameters of model")
            wanted = {by_id[id(p)] for p in items}
        else:
            raise TypeError("params must be None, a submodule, a sequence of names or a sequence of parameter tensors")
        names = [n for n in named if n in wanted]
    if not names:
        raise ValueError("no trainable parameters selected: the model has no parameter with requires_grad=True "
                         "(or params selected none); curvature needs at least one")
    dtypes = {named[n].dtype for n in names}
    devices = {named[n].device for n in names}
    if len(dtypes) != 1 or len(devices) != 1:
        raise ValueError(f"selected parameters must share one dtype and device, got {dtypes} on {devices}")
    dtype = dtypes.pop()
    if not dtype.is_floating_point:
        raise ValueError(f"parameters must be floating point, got {dtype}")
    return names


class CurvatureProblem:
    """Model, loss and data, validated once; evaluation as pure functions of the selected parameters.

    Args:
        model: a torch module mapping ``X`` to the loss's first argument.
        loss_fn: ``loss_fn(output, y) -> scalar`` (an ``nn.Module`` loss or any callable; mean reduction assumed
            for a callable without a ``reduction`` attribute).
        data: one batch ``(X, y)`` or a re-iterable (list, DataLoader) of batches; a one-shot iterator is refused.
        params: see :func:`select_parameters`.
        mode: "eval" (default; PyHessian's choice) or "train" (BatchNorm uses batch statistics, running
            statistics are left untouched).
        check: evaluate the loss on every batch now, so wrong shapes and non-finite losses fail here.
    """

    def __init__(self, model: nn.Module, loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
                 data: DataLike, params: ParamsLike = None, mode: str = "eval", check: bool = True) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if not callable(loss_fn):
            raise TypeError(f"loss_fn must be callable, got {type(loss_fn).__name__}")
        self.model, self.loss_fn, self.mode = model, loss_fn, mode
        self.names = select_parameters(model, params)
        named = dict(model.named_parameters())
        self.shapes = [tuple(named[n].shape) for n in self.names]
        self.numels = [named[n].numel() for n in self.names]
        self.P = sum(self.numels)
        self.dtype, self.device = named[self.names[0]].dtype, named[self.names[0]].device
        reduction = getattr(loss_fn, "reduction", "mean")
        if reduction not in REDUCTIONS:
            raise ValueError(f"loss_fn.reduction must be one of {REDUCTIONS} (a scalar loss), got {reduction!r}")
        self.reduction = reduction
        if mode == "train":
            dropout = [type(m).__name__ for m in model.modules() if isinstance(m, nn.modules.dropout._DropoutNd)
                       and m.p > 0]
            if dropout:
                raise ValueError(f"mode='train' with active dropout ({dropout}) makes the loss random, so its "
                                 "curvature is undefined; use mode='eval' or set p=0")
        if _is_batch(data):
            self._batches: Iterable[Batch] = [(data[0], data[1])]
        elif isinstance(data, Iterator):
            raise ValueError("data is a one-shot iterator; curvature operators pass over the data once per "
                             "product, so give a list of (X, y) batches or a DataLoader")
        elif isinstance(data, Iterable) and not isinstance(data, torch.Tensor):
            self._batches = data
        else:
            raise ValueError(f"data must be a batch (X, y) of tensors or an iterable of such batches, got "
                             f"{type(data).__name__}")
        sizes = []
        for i, batch in enumerate(self._batches):  # one pass: shapes, and (check) a finite scalar loss per batch
            sizes.append(self._check_batch(batch, i))
            if check:
                self.loss_value(*batch)
        if not sizes:
            raise ValueError("data holds no batch")
        self.num_samples = sum(sizes)

    # ---- data ------------------------------------------------------------------------------------------------------
    def _check_batch(self, batch: Any, index: int) -> int:
        if not _is_batch(batch):
            raise ValueError(f"batch {index} must be a pair (X, y) of tensors, got {type(batch).__name__}")
        X, y = batch
        if X.ndim == 0 or y.ndim == 0 or X.shape[0] != y.shape[0] or X.shape[0] == 0:
            raise ValueError(f"batch {index}: X and y need the same non-zero first (sample) dimension, got "
                             f"X {tuple(X.shape)} and y {tuple(y.shape)}")
        if X.device != self.device or y.device != self.device:
            raise ValueError(f"batch {index} is on {X.device}/{y.device}, the parameters on {self.device}")
        if X.is_floating_point() and X.dtype != self.dtype:
            raise ValueError(f"batch {index}: X has dtype {X.dtype}, the parameters {self.dtype}; cast one of them")
        return int(X.shape[0])

    def batches(self) -> Iterator[tuple[torch.Tensor, torch.Tensor, float]]:
        """``(X, y, weight)`` with ``L = sum weight * L_b`` (weight n_b/N for mean reduction, 1 for sum)."""
        for X, y in self._batches:
            yield X, y, (X.shape[0] / self.num_samples if self.reduction == "mean" else 1.0)

    # ---- parameters ------------------------------------------------------------------------------------------------
    def theta(self) -> tuple[torch.Tensor, ...]:
        """Current values of the selected parameters (detached)."""
        named = dict(self.model.named_parameters())
        return tuple(named[n].detach() for n in self.names)

    def flat_theta(self) -> torch.Tensor:
        return torch.cat([t.reshape(-1) for t in self.theta()])

    def split(self, V: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Flat block ``(P, k)`` -> per-parameter tensors ``(k, *shape)``."""
        k = V.shape[1]
        return tuple(c.T.reshape(k, *s) for c, s in zip(torch.split(V, self.numels, 0), self.shapes))

    def join(self, parts: Sequence[torch.Tensor]) -> torch.Tensor:
        """Per-parameter ``(k, *shape)`` -> flat block ``(P, k)``."""
        k = parts[0].shape[0]
        return torch.cat([p.reshape(k, -1) for p in parts], 1).T

    def _constants(self) -> dict[str, torch.Tensor]:
        selected = set(self.names)
        consts = {n: p.detach() for n, p in self.model.named_parameters() if n not in selected}
        # buffers are passed as clones so that nothing a forward pass does to them reaches the model
        consts.update({n: b.clone() for n, b in self.model.named_buffers()})
        return consts

    # ---- evaluation ------------------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def evaluation_mode(self) -> Iterator[None]:
        """Put the model in the requested mode; in train mode BatchNorm uses batch statistics without updating
        its running estimates. Restores everything afterwards."""
        was_training = {m: m.training for m in self.model.modules()}
        bn_tracking = {m: m.track_running_stats for m in self.model.modules()
                       if isinstance(m, nn.modules.batchnorm._BatchNorm)}
        self.model.train(self.mode == "train")
        if self.mode == "train":
            for m in bn_tracking:
                m.track_running_stats = False
        try:
            yield
        finally:
            for m, t in was_training.items():
                m.training = t
            for m, t in bn_tracking.items():
                m.track_running_stats = t

    def output_fn(self, X: torch.Tensor) -> Callable[[tuple[torch.Tensor, ...]], torch.Tensor]:
        """``theta -> model(X)`` with the other parameters and the buffers held fixed (call inside
        :meth:`evaluation_mode`)."""
        consts = self._constants()
        names = self.names

        def f(theta: tuple[torch.Tensor, ...]) -> torch.Tensor:
            return functional_call(self.model, {**consts, **dict(zip(names, theta))}, (X,))
        return f

    def loss_fn_of(self, X: torch.Tensor, y: torch.Tensor) -> Callable[[tuple[torch.Tensor, ...]], torch.Tensor]:
        """``theta -> loss_fn(model(X), y)``."""
        f = self.output_fn(X)
        return lambda theta: self.loss_fn(f(theta), y)

    def loss_value(self, X: torch.Tensor, y: torch.Tensor) -> float:
        """The batch loss at the current parameters, checked (scalar, finite)."""
        with torch.no_grad(), self.evaluation_mode():
            try:
                out = self.output_fn(X)(self.theta())
            except (RuntimeError, ValueError, IndexError) as err:
                raise ValueError(f"the model failed on data X of shape {tuple(X.shape)}: {err}") from err
            try:
                loss = self.loss_fn(out, y)
            except (RuntimeError, ValueError, IndexError) as err:
                raise ValueError(f"loss_fn failed on output {tuple(out.shape)} and y {tuple(y.shape)}: {err}") from err
        if not isinstance(loss, torch.Tensor) or loss.ndim != 0:
            shape = tuple(loss.shape) if isinstance(loss, torch.Tensor) else type(loss).__name__
            raise ValueError(f"loss_fn must return a scalar tensor (reduction 'mean' or 'sum'), got {shape}")
        value = float(loss)
        if not math.isfinite(value):
            raise ValueError(f"the loss is not finite ({value}) at the current parameters; curvature is undefined")
        return value

    def loss(self) -> float:
        """The full loss ``L`` over all batches (weighted as in :meth:`batches`)."""
        return sum(w * self.loss_value(X, y) for X, y, w in self.batches())

    def losses_at(self, thetas: torch.Tensor, chunk_size: int = 64) -> torch.Tensor:
        """The full loss at each row of ``thetas`` (flat parameter vectors), ``chunk_size`` rows vmapped at once
        (a plain loop where a module does not support vmap). Shapes: (n, P) -> (n,)."""
        out = torch.zeros(thetas.shape[0], dtype=self.dtype, device=self.device)
        with torch.no_grad(), self.evaluation_mode():
            for X, y, w in self.batches():
                loss = self.loss_fn_of(X, y)

                def at(flat: torch.Tensor) -> torch.Tensor:
                    return loss(tuple(c.reshape(s) for c, s in zip(torch.split(flat, self.numels), self.shapes)))
                values = []
                for chunk in torch.split(thetas, chunk_size):
                    try:
                        values.append(vmap(at)(chunk))
                    except (RuntimeError, ValueError):  # e.g. in-place buffer updates of a custom module
                        values.append(torch.stack([at(t) for t in chunk]))
                out += w * torch.cat(values)
        return out
