"""HAWQ-V2 (Dong et al., NeurIPS 2020, arXiv 1911.03852): Hessian-aware mixed-precision weight quantization.

Sensitivity of layer ``i`` is its *average* Hessian eigenvalue ``T_i = Tr(H_ii) / n_i`` (Hutchinson on the
diagonal block, from :mod:`sciml.curvature`); the second-order loss increase of a bit configuration
``b = (b_1..b_L)`` is modelled by ``Omega(b) = sum_i T_i * ||Q_{b_i}(W_i) - W_i||^2``. Bits are chosen under a
model-size budget by an exact integer program (``scipy.optimize.milp``, a multiple-choice knapsack) or, for
small cases, by enumerating every configuration (the Pareto frontier of size vs Omega).

Quantizer: uniform symmetric, ``s = max|W| / (2^(b-1) - 1)``, ``Q(W) = s * clamp(round(W/s), -qmax, qmax)``
per tensor, or per output channel; computed with torch's fake-quantize kernels
(``torch.fake_quantize_per_tensor_affine`` / ``..._per_channel_affine``, the ops behind
``torch.ao.quantization.FakeQuantize``).
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import math
from typing import Callable, Iterable, Sequence

import numpy as np
import torch

from sciml.compress.pruning import layer_weights
from sciml.core import Result, Status
from sciml.curvature import HessianOperator, hutchinson_trace, hutchpp_trace

SUPPORTED_BITS = (2, 3, 4, 5, 6, 7, 8)


def _check_bits(bits: Iterable[int]) -> tuple[int, ...]:
    bits = tuple(int(b) for b in bits)
    bad = [b for b in bits if b not in SUPPORTED_BITS]
    if not bits or bad:
        raise ValueError(f"bits must be a non-empty subset of {SUPPORTED_BITS}, got {bits}")
    return tuple(sorted(set(bits)))


def fake_quantize(weight: torch.Tensor, bits: int, per_channel: bool = False) -> torch.Tensor:
    """Symmetric uniform fake quantization of ``weight`` to ``bits`` (per tensor or per output channel, dim 0)."""
    (bits,) = _check_bits([bits])
    if not weight.is_floating_point():
        raise ValueError(f"weight must be floating point, got {weight.dtype}")
    qmax = 2 ** (bits - 1) - 1
    w = weight.detach()
    work = w.float() if w.dtype in (torch.float16, torch.bfloat16) else w
    if per_channel and w.dim() >= 2:
        amax = work.abs().flatten(1).amax(dim=1)
        scale = torch.where(amax > 0, amax / qmax, torch.ones_like(amax))
        zero = torch.zeros_like(scale, dtype=torch.int32)
        # torch's kernel wants float32 scales; quantize in float64 by hand when the weight is float64
        if work.dtype == torch.float64:
            shape = (-1,) + (1,) * (w.dim() - 1)
            out = scale.view(shape) * torch.clamp(torch.round(work / scale.view(shape)), -qmax, qmax)
        else:
            out = torch.fake_quantize_per_channel_affine(work, scale.float(), zero, 0, -qmax, qmax)
    else:
        amax = work.abs().max()
        scale = amax / qmax if amax > 0 else torch.ones((), dtype=work.dtype, device=work.device)
        if work.dtype == torch.float64:
            out = scale * torch.clamp(torch.round(work / scale), -qmax, qmax)
        else:
            out = torch.fake_quantize_per_tensor_affine(work, float(scale), 0, -qmax, qmax)
    return out.to(weight.dtype)


def quantizable_layers(model: torch.nn.Module) -> dict[str, torch.nn.Parameter]:
    """The weights HAWQ quantizes: ``weight`` of every Linear / Conv layer, keyed by module name."""
    return layer_weights(model, "quantize")


@dataclasses.dataclass(frozen=True)
class HAWQSensitivity(Result):
    """Per-layer Hessian traces and quantization perturbations.

    Attributes:
        layers: layer names, in model order.
        num_params: n_i per layer.
        traces, trace_stderr: Hutchinson Tr(H_ii) and its standard error.
        bits: candidate bit widths.
        perturbation: ``||Q_b(W_i) - W_i||^2``, shape (L, len(bits)).
        other_params: parameters that stay in float32 (biases, norms), counted in the model size.
        status: CONVERGED when every trace's relative standard error is below ``rtol``.
    """

    layers: tuple[str, ...]
    num_params: tuple[int, ...]
    traces: tuple[float, ...]
    trace_stderr: tuple[float, ...]
    bits: tuple[int, ...]
    perturbation: np.ndarray
    other_params: int
    per_channel: bool
    status: Status

    @property
    def average_traces(self) -> np.ndarray:
        """``T_i = Tr(H_ii) / n_i``, the paper's sensitivity."""
        return np.asarray(self.traces) / np.asarray(self.num_params)

    def omega(self, config: Sequence[int]) -> float:
        """``Omega(b) = sum_i T_i ||Q_{b_i}(W_i) - W_i||^2`` for a bit configuration (one width per layer)."""
        cols = self._columns(config)
        return float(np.sum(self.average_traces * self.perturbation[np.arange(len(self.layers)), cols]))

    def size_mb(self, config: Sequence[int]) -> float:
        """Model size in MB (1e6 bytes): quantized weights at their bits plus float32 for the rest."""
        self._columns(config)
        bits_total = sum(n * b for n, b in zip(self.num_params, config)) + 32 * self.other_params
        return bits_total / 8 / 1e6

    def uniform_size_mb(self, bits: float) -> float:
        """Size in MB with every quantized layer at ``bits`` (any number: budgets like "average 5 bits")."""
        return (sum(self.num_params) * bits + 32 * self.other_params) / 8 / 1e6

    def _columns(self, config: Sequence[int]) -> np.ndarray:
        if len(config) != len(self.layers):
            raise ValueError(f"a configuration needs one bit width per layer ({len(self.layers)}), got {len(config)}")
        try:
            return np.array([self.bits.index(int(b)) for b in config])
        except ValueError:
            raise ValueError(f"configuration {tuple(config)} uses bits outside the candidates {self.bits}") from None


def hawq_sensitivity(model: torch.nn.Module, loss_fn: Callable, data, *, bits: Iterable[int] = (2, 3, 4, 8),
                     layers: Sequence[str] | None = None, num_probes: int = 200, per_channel: bool = False,
                     rtol: float = 0.05, estimator: str = "hutchinson",
                     generator: torch.Generator | None = None) -> HAWQSensitivity:
    """Hutchinson traces of each layer's diagonal Hessian block and the quantization perturbation table.

    The model is put in eval mode for the Hessian (BatchNorm uses its running statistics, as the spec asks).
    ``data`` is an ``(inputs, targets)`` batch or an iterable of batches (mean reduction). ``estimator``:
    "hutchinson" (the paper's, ``num_probes`` Rademacher probes) or "hutchpp" (Hutch++ with ``num_probes``
    matrix-vector products: exact for layers with fewer than ``num_probes / 3`` parameters, lower variance
    when a few eigenvalues dominate).
    """
    bits = _check_bits(bits)
    if estimator not in ("hutchinson", "hutchpp"):
        raise ValueError(f"estimator must be 'hutchinson' or 'hutchpp', got {estimator!r}")
    if num_probes < 1:
        raise ValueError(f"num_probes must be >= 1, got {num_probes}")
    all_layers = quantizable_layers(model)
    names = tuple(all_layers) if layers is None else tuple(layers)
    missing = [n for n in names if n not in all_layers]
    if missing:
        raise ValueError(f"unknown layers {missing}; quantizable layers: {list(all_layers)}")
    was_training = model.training
    model.eval()
    traces, stderrs, converged = [], [], True
    try:
        for name in names:
            op = HessianOperator(model, loss_fn, data, params=[all_layers[name]])
            est = (hutchinson_trace(op, num_probes, generator=generator) if estimator == "hutchinson"
                   else hutchpp_trace(op, max(num_probes, 5), generator=generator))
            traces.append(float(est.mean))
            stderrs.append(float(est.stderr))
            converged &= est.stderr <= rtol * abs(est.mean) + 1e-300
    finally:
        model.train(was_training)
    perturbation = np.array([[float((fake_quantize(all_layers[n], b, per_channel) - all_layers[n].detach())
                                    .double().pow(2).sum()) for b in bits] for n in names])
    quantized = {id(all_layers[n]) for n in names}
    other = sum(p.numel() for p in model.parameters() if id(p) not in quantized)
    return HAWQSensitivity(names, tuple(all_layers[n].numel() for n in names), tuple(traces), tuple(stderrs), bits,
                           perturbation, other, per_channel, Status.CONVERGED if converged else Status.MAX_ITER)


@dataclasses.dataclass(frozen=True)
class BitAllocation(Result):
    """A chosen bit configuration: ``bits[name]``, its Omega and size, and how it was found."""

    bits: dict[str, int]
    omega: float
    size_mb: float
    budget_mb: float
    method: str


def allocate_bits(sensitivity: HAWQSensitivity, budget_mb: float, *, method: str = "milp") -> BitAllocation:
    """``argmin Omega(b)`` subject to ``size(b) <= budget_mb``.

    ``method="milp"``: exact multiple-choice knapsack with ``scipy.optimize.milp``; ``"enumerate"``: every
    configuration (``len(bits) ** L``, refused above 1e6), i.e. the exact Pareto frontier.
    """
    if not (isinstance(budget_mb, (int, float)) and math.isfinite(budget_mb) and budget_mb > 0):
        raise ValueError(f"budget_mb must be a positive number, got {budget_mb!r}")
    smallest = sensitivity.size_mb([min(sensitivity.bits)] * len(sensitivity.layers))
    if budget_mb < smallest:
        raise ValueError(f"budget {budget_mb:.6g} MB is below the smallest configuration "
                         f"({min(sensitivity.bits)} bits everywhere: {smallest:.6g} MB)")
    if method == "milp":
        config = _milp(sensitivity, budget_mb)
    elif method == "enumerate":
        config = min(pareto_configurations(sensitivity, budget_mb), key=sensitivity.omega)
    else:
        raise ValueError(f"method must be 'milp' or 'enumerate', got {method!r}")
    return BitAllocation(dict(zip(sensitivity.layers, config)), sensitivity.omega(config),
                         sensitivity.size_mb(config), float(budget_mb), method)


def pareto_configurations(sensitivity: HAWQSensitivity, budget_mb: float | None = None) -> list[tuple[int, ...]]:
    """Every configuration within ``budget_mb`` (all of them when None); refuses more than 1e6."""
    count = len(sensitivity.bits) ** len(sensitivity.layers)
    if count > 1_000_000:
        raise ValueError(f"{count} configurations are too many to enumerate; use method='milp'")
    configs = itertools.product(sensitivity.bits, repeat=len(sensitivity.layers))
    return [c for c in configs if budget_mb is None or sensitivity.size_mb(c) <= budget_mb * (1 + 1e-12)]


def _milp(sensitivity: HAWQSensitivity, budget_mb: float) -> tuple[int, ...]:
    from scipy.optimize import Bounds, LinearConstraint, milp

    num_layers, num_bits = len(sensitivity.layers), len(sensitivity.bits)
    # x[i, k] = 1 when layer i uses bits[k]; flattened row-major.
    cost = (sensitivity.average_traces[:, None] * sensitivity.perturbation).ravel()
    one_per_layer = np.kron(np.eye(num_layers), np.ones(num_bits))
    size_row = (np.asarray(sensitivity.num_params, float)[:, None] * np.asarray(sensitivity.bits)[None, :]
                ).ravel() / 8 / 1e6
    budget_left = budget_mb - 32 * sensitivity.other_params / 8 / 1e6
    res = milp(cost, constraints=[LinearConstraint(one_per_layer, 1, 1),
                                  LinearConstraint(size_row[None, :], -np.inf, budget_left * (1 + 1e-12))],
               integrality=np.ones_like(cost), bounds=Bounds(0, 1))
    if not res.success:
        raise RuntimeError(f"bit allocation MILP failed: {res.message}")
    choice = res.x.reshape(num_layers, num_bits).argmax(axis=1)
    return tuple(sensitivity.bits[k] for k in choice)


def quantize(model: torch.nn.Module, bits: dict[str, int] | BitAllocation, *,
             per_channel: bool = False) -> torch.nn.Module:
    """A copy of ``model`` whose listed layers' weights are fake-quantized to their bits (the input is untouched)."""
    if isinstance(bits, BitAllocation):
        bits = bits.bits
    layers = quantizable_layers(model)
    unknown = [n for n in bits if n not in layers]
    if unknown:
        raise ValueError(f"unknown layers {unknown}; quantizable layers: {list(layers)}")
    _check_bits(bits.values())
    copy_ = copy.deepcopy(model)
    copied = quantizable_layers(copy_)
    with torch.no_grad():
        for name, b in bits.items():
            copied[name].copy_(fake_quantize(copied[name], b, per_channel))
    return copy_
