"""Hessian alignment across training environments (spec curvature.md B.4): HGP and Hutchinson penalties.

Reference: Hemati, Zhang, Estiri, Chen, "Understanding Hessian Alignment for Domain Generalization", ICCV 2023
(arXiv 2308.11778); code huawei-noah/Federated-Learning/HessianAlignment, ``domainbed/algorithms.py`` classes
``HGP`` and ``Hutchinson``, and ``cmnist/cmnist_HGP.py`` (annealed penalty weight).

Per environment e (features ``f_e`` from a shared featurizer, the head's parameters w):
``L_e = loss_fn(head(f_e), y_e)``, ``g_e = grad_w L_e`` (kept differentiable), the mean loss ``L = mean_e L_e`` and
``g = grad_w L``. HGP uses ``h_e = H_e g_e = ||g_e|| grad_w ||g_e||`` (two backward passes, no Hessian; the code
adds 1e-16 to every gradient entry inside the norm, kept here, so the derivative of ``||.||`` exists at 0); the
Hutchinson variant uses ``h_e = mean_k z_k * (H_e z_k)``. Penalties (targets detached):
``curvature_penalty = mean_e ||h_e - h||^2``, ``gradient_penalty = mean_e ||g_e - g||^2``.
Difference from the code: the Hutchinson probes are shared by all environments and the mean (same z_k), so
identical environments give exactly zero penalty and the estimate's noise cancels in the differences.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Sequence

import torch
from torch import nn

from sciml.core import check_generator

NORM_EPS = 1e-16  # added to each gradient entry inside ||g|| (released code)
METHODS = ("hgp", "hutchinson")


@dataclasses.dataclass(frozen=True)
class AlignmentTerms:
    """The three differentiable 0-d pieces of the objective (see :func:`alignment_objective`)."""

    loss: torch.Tensor
    curvature_penalty: torch.Tensor
    gradient_penalty: torch.Tensor


def _flat(parts: Sequence[torch.Tensor]) -> torch.Tensor:
    return torch.cat([p.reshape(-1) for p in parts])


def _check_scalar(loss: torch.Tensor) -> None:
    if not isinstance(loss, torch.Tensor) or loss.ndim != 0:
        shape = tuple(loss.shape) if isinstance(loss, torch.Tensor) else type(loss).__name__
        raise ValueError(f"the loss must be a scalar tensor (reduce over the batch), got {shape}")


def hessian_gradient_product(loss: torch.Tensor, params: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """``(H g, g)`` of a scalar loss w.r.t. ``params``, flattened, as ``||g|| grad ||g||`` (differentiable).

    ``||g||`` is the norm of the per-tensor norms of ``g + 1e-16`` (the released code). Shapes: each (P,).
    """
    _check_scalar(loss)
    params = list(params)
    grads = torch.autograd.grad(loss, params, create_graph=True)
    norm = torch.norm(torch.stack([torch.norm(g + NORM_EPS) for g in grads]))
    hg = torch.autograd.grad(norm, params, create_graph=True)
    return norm * _flat(hg), _flat(grads)


def _rademacher(like: torch.Tensor, num_probes: int, generator: torch.Generator | None) -> torch.Tensor:
    check_generator(generator, like.device)
    signs = torch.randint(0, 2, (num_probes, like.numel()), generator=generator, device=like.device)
    return signs.to(like.dtype) * 2 - 1


def _hutchinson(loss: torch.Tensor, params: list[torch.Tensor],
                probes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    grads = torch.autograd.grad(loss, params, create_graph=True)
    g = _flat(grads)
    total = torch.zeros_like(g)
    for z in probes:
        total = total + z * _flat(torch.autograd.grad(g @ z, params, create_graph=True))
    return total / probes.shape[0], g


def hutchinson_hessian_diagonal(loss: torch.Tensor, params: Sequence[torch.Tensor], num_probes: int = 100,
                                generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(D, g)`` with ``D = mean_k z_k * (H z_k)`` (Rademacher z), differentiable; the code uses 300 probes."""
    _check_scalar(loss)
    if isinstance(num_probes, bool) or not isinstance(num_probes, int) or num_probes < 1:
        raise ValueError(f"num_probes must be an int >= 1, got {num_probes!r}")
    params = list(params)
    like = _flat([p.detach() for p in params])
    return _hutchinson(loss, params, _rademacher(like, num_probes, generator))


def hessian_alignment_penalty(head: nn.Module, features: Sequence[torch.Tensor], targets: Sequence[torch.Tensor],
                              loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], *, method: str = "hgp",
                              num_probes: int = 20, generator: torch.Generator | None = None) -> AlignmentTerms:
    """Alignment penalties of the head's gradients and curvature across >= 2 environments.

    Args:
        head: the classifier head (its trainable parameters are w).
        features: one feature batch per environment (from the featurizer; gradients flow back into it).
        targets: one target batch per environment.
        loss_fn: ``loss_fn(head(f), y) -> scalar``.
        method: "hgp" (Hessian-gradient products) or "hutchinson" (Hutchinson diagonals, ``num_probes``).
        generator: probes of the Hutchinson variant.

    Returns: :class:`AlignmentTerms` (mean loss, curvature penalty, gradient penalty), all differentiable.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    features, targets = list(features), list(targets)
    if len(features) < 2 or len(features) != len(targets):
        raise ValueError(f"need >= 2 environments with one feature and one target batch each, got {len(features)} "
                         f"feature and {len(targets)} target batches")
    params = [p for p in head.parameters() if p.requires_grad]
    if not params:
        raise ValueError("the head has no trainable parameters (requires_grad=False everywhere)")
    losses = []
    for e, (f, y) in enumerate(zip(features, targets)):
        loss = loss_fn(head(f), y)
        _check_scalar(loss)
        if not bool(torch.isfinite(loss)):
            raise ValueError(f"the loss of environment {e} is not finite ({float(loss)})")
        losses.append(loss)
    mean_loss = torch.stack(losses).mean()
    if method == "hgp":
        def curvature(loss):
            return hessian_gradient_product(loss, params)
    else:
        if isinstance(num_probes, bool) or not isinstance(num_probes, int) or num_probes < 1:
            raise ValueError(f"num_probes must be an int >= 1, got {num_probes!r}")
        probes = _rademacher(_flat([p.detach() for p in params]), num_probes, generator)

        def curvature(loss):
            return _hutchinson(loss, params, probes)
    h_mean, g_mean = (t.detach() for t in curvature(mean_loss))
    curv_terms, grad_terms = [], []
    for loss in losses:
        h, g = curvature(loss)
        curv_terms.append(((h - h_mean) ** 2).sum())
        grad_terms.append(((g - g_mean) ** 2).sum())
    return AlignmentTerms(loss=mean_loss, curvature_penalty=torch.stack(curv_terms).mean(),
                          gradient_penalty=torch.stack(grad_terms).mean())


def alignment_objective(terms: AlignmentTerms, step: int, *, weight: float, start_step: int,
                        regulariser: torch.Tensor | float = 0.0) -> torch.Tensor:
    """The annealed objective of the code: penalty weight 1 before ``start_step``, ``weight`` from then on, and the
    whole loss divided by the weight when it exceeds 1 (Fishr / IRM protocol).

    ``objective = (loss + regulariser + w (curvature_penalty + gradient_penalty)) / max(w, 1)``.
    """
    if not weight >= 0:
        raise ValueError(f"weight must be >= 0, got {weight!r}")
    if not isinstance(step, int) or not isinstance(start_step, int) or start_step < 0:
        raise ValueError(f"step and start_step must be ints (start_step >= 0), got {step!r}, {start_step!r}")
    w = 1.0 if step < start_step else float(weight)
    total = terms.loss + regulariser + w * (terms.curvature_penalty + terms.gradient_penalty)
    return total / w if w > 1 else total
