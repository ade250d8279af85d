"""Loss-landscape slices ``L(theta + a d_1 [+ b d_2])`` with direction normalisation (spec B.5).

Reference: Li, Xu, Taylor, Studer, Goldstein, "Visualizing the Loss Landscape of Neural Nets", NeurIPS 2018
(arXiv 1712.09913), filter normalisation; LLA (GabdullinN/loss-landscape-analysis, ``random_plane`` and
``model_parameters.py``) for the other normalisations and for treating 1-D tensors (biases, BatchNorm) as one
filter. Differences: directions are Gaussian by default (LLA draws U[0,1), which has a non-zero mean: pass
``distribution="uniform"`` to reproduce its figures); the grid is symmetric and inclusive (``span``).
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Sequence

import torch
from torch import nn

from sciml.core import Result, Status, check_generator
from sciml.curvature._problem import CurvatureProblem, DataLike, ParamsLike

NORMALIZATIONS = ("filter", "layer", "model", "weight", "none")


@dataclasses.dataclass(frozen=True)
class Landscape(Result):
    """Loss on a 1-D line or a 2-D plane through ``theta``.

    Shapes: coordinates: one (n_a,) tensor per direction; losses (n_a,) or (n_a, n_b) (``losses[i, j]`` at
    ``a_i, b_j``); directions (P, d), already normalised; center_loss is ``L(theta)``.
    """

    coordinates: tuple[torch.Tensor, ...]
    losses: torch.Tensor
    directions: torch.Tensor
    center_loss: float
    normalization: str
    status: Status


def normalize_direction(direction: Sequence[torch.Tensor], theta: Sequence[torch.Tensor], normalization: str = "filter",
                        *, one_dim: str = "scale") -> list[torch.Tensor]:
    """Rescale a direction (per-parameter tensors) relative to the weights ``theta``.

    - "filter": each first-axis slice (conv output filter / Linear row) gets the norm of the same slice of theta;
      1-D tensors (biases, BatchNorm) are one filter (``one_dim="scale"``, LLA) or zeroed (``one_dim="zero"``,
      Li et al.);
    - "layer": each tensor gets its weight tensor's norm; "model": one global factor ``||theta|| / ||d||``;
    - "weight": elementwise ``d * theta``; "none": unchanged.
    The factor is ``||theta_f|| / (||d_f|| + 1e-10)`` (LLA), so a zero slice stays zero.
    """
    if normalization not in NORMALIZATIONS:
        raise ValueError(f"normalization must be one of {NORMALIZATIONS}, got {normalization!r}")
    if one_dim not in ("scale", "zero"):
        raise ValueError(f"one_dim must be 'scale' or 'zero', got {one_dim!r}")
    if normalization == "none":
        return [d.clone() for d in direction]
    if normalization == "weight":
        return [d * t for d, t in zip(direction, theta)]
    if normalization == "model":
        dn = torch.sqrt(sum((d * d).sum() for d in direction))
        tn = torch.sqrt(sum((t * t).sum() for t in theta))
        return [d * (tn / (dn + 1e-10)) for d in direction]
    out = []
    for d, t in zip(direction, theta):
        if normalization == "layer" or d.ndim <= 1:
            if normalization == "filter" and d.ndim <= 1 and one_dim == "zero":
                out.append(torch.zeros_like(d))
            else:
                out.append(d * (t.norm() / (d.norm() + 1e-10)))
            continue
        dn = d.reshape(d.shape[0], -1).norm(dim=1)
        tn = t.reshape(t.shape[0], -1).norm(dim=1)
        out.append(d * (tn / (dn + 1e-10)).reshape(-1, *([1] * (d.ndim - 1))))
    return out


def loss_landscape(model: nn.Module, loss_fn: Callable, data: DataLike, directions: int | str | torch.Tensor = 2,
                   normalization: str = "filter", *, steps: int = 21, span: tuple[float, float] = (-1.0, 1.0),
                   generator: torch.Generator | None = None, params: ParamsLike = None, mode: str = "eval",
                   distribution: str = "gaussian", one_dim: str = "scale") -> Landscape:
    """Loss along 1 or 2 directions through the current parameters.

    Args:
        model, loss_fn, data, params, mode: as for the curvature operators (the loss is the full weighted loss
            over every batch; LLA evaluates one fixed batch: pass that batch).
        directions: 1 or 2 (random, drawn from ``generator``), "hessian" (top-2 Hessian eigenvectors, by
            Lanczos), or a tensor ``(P,)`` / ``(P, d)`` with ``d <= 2`` of flat directions.
        normalization: see :func:`normalize_direction` ("filter" default).
        steps: grid points per axis (>= 2); span: coordinate range, inclusive.
        distribution: "gaussian" or "uniform" (LLA's U[0,1)) for random directions.
        one_dim: how filter normalisation treats 1-D tensors ("scale" or "zero").

    Returns: :class:`Landscape`.
    """
    problem = CurvatureProblem(model, loss_fn, data, params, mode)
    check_generator(generator, problem.device)
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 2:
        raise ValueError(f"steps must be an int >= 2, got {steps!r}")
    if len(span) != 2 or not span[0] < span[1]:
        raise ValueError(f"span must be (low, high) with low < high, got {span}")
    P = problem.P
    if isinstance(directions, str):
        if directions != "hessian":
            raise ValueError(f"directions must be 1, 2, 'hessian' or a tensor, got {directions!r}")
        from sciml.curvature.estimators import top_eigenvalues
        from sciml.curvature.operators import HessianOperator
        D = top_eigenvalues(HessianOperator(model, loss_fn, data, params, mode=mode), min(2, P), generator).eigenvectors
    elif isinstance(directions, torch.Tensor):
        D = directions[:, None] if directions.ndim == 1 else directions
        if D.ndim != 2 or D.shape[0] != P or not 1 <= D.shape[1] <= 2:
            raise ValueError(f"direction tensor must be (P,) or (P, d<=2) with P={P}, got {tuple(directions.shape)}")
        D = D.to(problem.dtype)
    elif isinstance(directions, int) and not isinstance(directions, bool) and directions in (1, 2):
        shape = (P, directions)
        if distribution == "gaussian":
            D = torch.randn(shape, generator=generator, dtype=problem.dtype, device=problem.device)
        elif distribution == "uniform":
            D = torch.rand(shape, generator=generator, dtype=problem.dtype, device=problem.device)
        else:
            raise ValueError(f"distribution must be 'gaussian' or 'uniform', got {distribution!r}")
    else:
        raise ValueError(f"directions must be 1, 2, 'hessian' or a tensor, got {directions!r}")
    theta = problem.theta()
    normalized = [problem.join([t.unsqueeze(0) for t in
                                normalize_direction([p[0] for p in problem.split(D[:, i:i + 1])], theta,
                                                    normalization, one_dim=one_dim)])[:, 0]
                  for i in range(D.shape[1])]
    D = torch.stack(normalized, 1)  # (P, d)
    coords = torch.linspace(span[0], span[1], steps, dtype=problem.dtype, device=problem.device)
    axes = tuple(coords for _ in range(D.shape[1]))
    mesh = torch.stack(torch.meshgrid(*axes, indexing="ij"), -1).reshape(-1, D.shape[1])  # (n, d)
    center = problem.flat_theta()
    losses = problem.losses_at(center + mesh @ D.T).reshape(*(steps,) * D.shape[1])
    status = Status.CONVERGED if bool(torch.isfinite(losses).all()) else Status.NONFINITE
    return Landscape(coordinates=axes, losses=losses, directions=D, center_loss=problem.loss(),
                     normalization=normalization, status=status)
