"""Functional curvature products on ``torch.func``: ``hvp``, ``ggn_vp``, ``per_sample_grads``, ``per_sample_jacobians``.

``params`` and ``v`` are any pytree of tensors accepted by ``torch.func`` (a tensor, a tuple, a dict) with the
same structure; with ``batched=True`` every leaf of ``v`` carries a leading dimension k and the k products are
``vmap``-ed (one batched pass instead of k).
"""

from __future__ import annotations

from typing import Any, Callable

import torch
from torch import nn
from torch.func import grad, jacrev, jvp, vjp, vmap

from sciml.curvature._problem import CurvatureProblem, ParamsLike


def _leaves(tree: Any) -> list[torch.Tensor]:
    if isinstance(tree, torch.Tensor):
        return [tree]
    if isinstance(tree, dict):
        return [t for v in tree.values() for t in _leaves(v)]
    if isinstance(tree, (tuple, list)):
        return [t for v in tree for t in _leaves(v)]
    raise TypeError(f"expected a tensor, a tuple/list or a dict of tensors, got {type(tree).__name__}")


def _check_tangent(params: Any, v: Any, batched: bool) -> None:
    p, t = _leaves(params), _leaves(v)
    if len(p) != len(t):
        raise ValueError(f"v has {len(t)} tensors, params {len(p)}; give v the structure of params")
    for i, (a, b) in enumerate(zip(p, t)):
        expected = a.shape if not batched else b.shape[:1] + a.shape
        if b.shape != expected or (batched and b.ndim == 0):
            raise ValueError(f"v leaf {i} has shape {tuple(b.shape)}, expected {tuple(expected)}"
                             + (" (leading dim = number of vectors)" if batched else ""))


def hvp(f: Callable[[Any], torch.Tensor], params: Any, v: Any, *, batched: bool = False,
        method: str = "forward") -> Any:
    """Hessian-vector product ``(d^2 f / d params^2) v`` by forward-over-reverse (``jvp`` of ``grad``).

    Reference: Pearlmutter, "Fast exact multiplication by the Hessian", Neural Computation 6 (1994); the
    forward-over-reverse form follows the torch.func tutorial "Jacobians, Hessians, hvp, vhp, and more".

    Args:
        f: scalar function of ``params``.
        params: a tensor or pytree of tensors (the point).
        v: tangent(s) with the structure of ``params``; with ``batched=True`` each leaf has a leading k.
        batched: vmap over the leading dimension of ``v``.
        method: "forward" (forward-over-reverse, default) or "reverse" (``vjp`` of ``grad``; for kernels without
            forward-mode double derivatives, e.g. ``mse_loss`` in torch 2.13).

    Returns: the product(s), with the structure (and leading k) of ``v``.
    """
    _check_tangent(params, v, batched)
    g = grad(f)
    if method == "reverse":
        _, pullback = vjp(g, params)
        one = lambda t: pullback(t)[0]  # noqa: E731  (H symmetric: v^T H = H v)
    elif method == "forward":
        one = lambda t: jvp(g, (params,), (t,))[1]  # noqa: E731
    else:
        raise ValueError(f"method must be 'forward' or 'reverse', got {method!r}")
    return vmap(one)(v) if batched else one(v)


def ggn_vp(output_fn: Callable[[Any], torch.Tensor], loss_of_output: Callable[[torch.Tensor], torch.Tensor],
           params: Any, v: Any, *, batched: bool = False) -> Any:
    """Generalised Gauss-Newton product ``J^T (d^2 l / d f^2) J v`` with ``f = output_fn(params)``.

    One ``jvp`` of the output (``J v``), one reverse-over-reverse product with the output-space Hessian of
    ``loss_of_output`` and one ``vjp`` (spec A.2.2); exact for any twice-differentiable ``loss_of_output``.

    Args:
        output_fn: params -> model output f.
        loss_of_output: f -> scalar loss (targets closed over).
        params, v, batched: as in :func:`hvp`.
    """
    _check_tangent(params, v, batched)
    output, pullback = vjp(output_fn, params)
    _, loss_pullback = vjp(grad(loss_of_output), output.detach())  # output-space Hessian products (symmetric)

    def one(t):
        Jv = jvp(output_fn, (params,), (t,))[1]
        return pullback(loss_pullback(Jv)[0])[0]
    return vmap(one)(v) if batched else one(v)


def _unused_loss(output: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return output.sum()


def per_sample_grads(model: nn.Module, loss_fn: Callable, X: torch.Tensor, y: torch.Tensor,
                     params: ParamsLike = None, *, mode: str = "eval") -> torch.Tensor:
    """Gradients ``g_i`` of ``loss_fn`` on each sample alone (a batch of one), as rows of an ``(N, P)`` matrix.

    Columns follow ``model.named_parameters()`` order of the selected parameters, flattened (as the operators).
    BatchNorm in train mode is not per-sample separable; use mode="eval" for it.
    """
    problem = CurvatureProblem(model, loss_fn, (X, y), params, mode)
    with problem.evaluation_mode():
        theta = problem.theta()

        def one(x: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, ...]:
            return grad(problem.loss_fn_of(x[None], t[None]))(theta)
        grads = vmap(one)(X, y)
    return torch.cat([g.reshape(X.shape[0], -1) for g in grads], 1)


def per_sample_jacobians(model: nn.Module, X: torch.Tensor, params: ParamsLike = None, *,
                         mode: str = "eval") -> torch.Tensor:
    """Jacobians ``J_i = d f(x_i) / d theta`` of the flattened output of each sample. Shapes: (N, C, P)."""
    if not isinstance(X, torch.Tensor) or X.ndim == 0 or X.shape[0] == 0:
        raise ValueError(f"X must be a tensor with a non-empty sample dimension, got {getattr(X, 'shape', X)}")
    dummy_targets = torch.zeros(X.shape[0], device=X.device)
    problem = CurvatureProblem(model, _unused_loss, (X, dummy_targets), params, mode, check=False)
    with problem.evaluation_mode():
        theta = problem.theta()
        jac = vmap(jacrev(lambda th, x: problem.output_fn(x[None])(th).reshape(-1)), in_dims=(None, 0))(theta, X)
    return torch.cat([j.reshape(j.shape[0], j.shape[1], -1) for j in jac], 2)
