"""Output-space second-order information of a loss: products with its Hessian, Monte-Carlo Fisher samples.

Everything here is per batch and includes the batch loss's reduction, i.e. it describes
``Lambda = d^2 L_b / d f^2`` for the batch output ``f`` (block diagonal over samples). Closed forms
(spec A notation):

- softmax cross-entropy (``nn.CrossEntropyLoss``, logits ``(N, C)``): ``Lambda_i u = p * u - p (p^T u)``;
- squared error (``nn.MSELoss``): ``Lambda = 2 I`` per element;
- binary logistic (``nn.BCEWithLogitsLoss``): ``Lambda = sigma(f) (1 - sigma(f))`` per element;

each times ``1/N`` (cross-entropy, mean), ``1/numel(f)`` (MSE and BCE, mean: torch averages over elements) or 1
(sum). Any other callable (or one of these with class weights) uses the exact autograd product
``Lambda u`` (reverse-over-reverse: ``vjp`` of ``grad_f L_b``).
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import nn
from torch.func import grad, vjp, vmap

KINDS = ("cross_entropy", "mse", "binary_logistic")


def loss_kind(loss_fn: Callable, output: torch.Tensor) -> str | None:
    """"cross_entropy", "mse" or "binary_logistic" when a closed form applies to this loss and output, else None."""
    if isinstance(loss_fn, nn.CrossEntropyLoss) and loss_fn.weight is None and output.ndim == 2:
        return "cross_entropy"
    if isinstance(loss_fn, nn.MSELoss):
        return "mse"
    if isinstance(loss_fn, nn.BCEWithLogitsLoss) and loss_fn.weight is None and loss_fn.pos_weight is None:
        return "binary_logistic"
    return None


def _scale(kind: str, reduction: str, output: torch.Tensor) -> float:
    if reduction == "sum":
        return 1.0
    return 1.0 / (output.shape[0] if kind == "cross_entropy" else output.numel())


def output_hessian_product(loss_fn: Callable, reduction: str, output: torch.Tensor, y: torch.Tensor,
                           U: torch.Tensor) -> torch.Tensor:
    """``Lambda u`` for every ``u`` in ``U``. Shapes: output (N, ...); U (k, N, ...) -> (k, N, ...)."""
    kind = loss_kind(loss_fn, output)
    if kind is None:
        # reverse-over-reverse (Lambda is symmetric); forward-over-reverse fails on some kernels (mse_loss)
        _, pullback = vjp(grad(lambda out: loss_fn(out, y)), output)
        return vmap(pullback)(U)[0]
    scale = _scale(kind, reduction, output)
    if kind == "cross_entropy":
        p = torch.softmax(output, dim=1)  # (N, C)
        return scale * (p * U - p * (p * U).sum(-1, keepdim=True))
    if kind == "mse":
        return (2.0 * scale) * U
    s = torch.sigmoid(output)
    return scale * (s * (1 - s)) * U


def output_hessian_blocks(loss_fn: Callable, reduction: str, output: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The per-sample blocks ``Lambda_i`` of the batch loss's output Hessian. Shapes: output (N, C) -> (N, C, C)."""
    N = output.shape[0]
    C = output[0].numel()
    kind = loss_kind(loss_fn, output)
    if kind == "cross_entropy":
        p = torch.softmax(output, dim=1)
        return _scale(kind, reduction, output) * (torch.diag_embed(p) - p[:, :, None] * p[:, None, :])
    # apply Lambda to the C unit vectors placed in every sample at once: U[c] has e_c in each sample's row
    eye = torch.eye(C, dtype=output.dtype, device=output.device)
    U = eye[:, None, :].expand(C, N, C).reshape(C, *output.shape)
    cols = output_hessian_product(loss_fn, reduction, output, y, U).reshape(C, N, C)  # cols[c, i] = Lambda_i e_c
    return cols.permute(1, 2, 0)


def fisher_output_samples(loss_fn: Callable, reduction: str, output: torch.Tensor, num_samples: int,
                          generator: torch.Generator | None) -> torch.Tensor:
    """Sampled output gradients ``s`` with ``E[s s^T] = Lambda`` (the model's predictive distribution).

    Cross-entropy: ``s = sqrt(c) (p - onehot(yhat))``, ``yhat ~ Categorical(p)``; MSE: ``s = sqrt(2c) eps``,
    ``eps ~ N(0, I)`` (the Gaussian likelihood whose Fisher is the GGN); binary logistic:
    ``s = sqrt(c) (sigma(f) - yhat)``, ``yhat ~ Bernoulli(sigma(f))``; c the reduction scale.

    Shapes: output (N, ...) -> (num_samples, N, ...).
    """
    kind = loss_kind(loss_fn, output)
    if kind is None:
        raise ValueError("the Monte-Carlo Fisher needs a likelihood: loss_fn must be nn.CrossEntropyLoss (logits "
                         "(N, C), no class weights), nn.MSELoss or nn.BCEWithLogitsLoss (no weights); got "
                         f"{type(loss_fn).__name__}")
    c = _scale(kind, reduction, output)
    out = output.detach()
    if kind == "cross_entropy":
        p = torch.softmax(out, dim=1)  # (N, C)
        idx = torch.multinomial(p, num_samples, replacement=True, generator=generator).T  # (M, N)
        onehot = torch.nn.functional.one_hot(idx, p.shape[1]).to(p.dtype)
        return math.sqrt(c) * (p - onehot)
    if kind == "mse":
        eps = torch.randn((num_samples, *out.shape), generator=generator, dtype=out.dtype, device=out.device)
        return math.sqrt(2.0 * c) * eps
    s = torch.sigmoid(out)
    yhat = (torch.rand((num_samples, *out.shape), generator=generator, dtype=out.dtype, device=out.device) < s)
    return math.sqrt(c) * (s - yhat.to(out.dtype))
