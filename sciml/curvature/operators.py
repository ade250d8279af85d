"""Curvature matrices of a model + loss + data as matrix-free ``sciml.linalg`` operators.

``H`` (Hessian), ``G`` (generalised Gauss-Newton), ``F_MC`` (Monte-Carlo Fisher) and ``F_emp`` (empirical
Fisher) of the loss ``L = sum_b w_b L_b`` over the data's batches (``w_b = n_b / N`` for mean reduction), all with
respect to a flat vector of the selected parameters (spec curvature.md A.2). Products go through ``torch.func``:
the Hessian by reverse-over-reverse (``vjp`` of ``grad``; forward-over-reverse and a kept double-backward graph on
request), the other three as ``J^T M J`` with one batched ``jvp`` of the model output, an output-space matrix
``M`` and one batched ``vjp``; the columns of a block ``(P, k)`` are ``vmap``-ed, so a block costs about one
batched forward/backward per data batch, not k.

Reference: curvlinops (``HessianLinearOperator``, ``GGNLinearOperator``, ``FisherMCLinearOperator``,
``EFLinearOperator``) and PyHessian's ``dataloader_hv_product`` (same batch weighting). Differences: products
are vectorised over the block's columns; the mode (train/eval) is explicit; the empirical Fisher is computed as
``J^T (r r^T) J`` from output gradients ``r`` instead of materialised per-sample parameter gradients.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch import nn
from torch.func import grad, jvp, vjp, vmap

from sciml.core import check_generator
from sciml.curvature._problem import CurvatureProblem, DataLike, ParamsLike
from sciml.curvature.losses import fisher_output_samples, output_hessian_product
from sciml.linalg import LinearOperator

DENSE_LIMIT = 20_000  # to_dense() beyond this many parameters needs force=True (P^2 memory)


class CurvatureOperator(LinearOperator):
    """Base class: a symmetric ``(P, P)`` curvature matrix of the selected parameters.

    Args:
        model, loss_fn, data, params, mode: see :class:`sciml.curvature._problem.CurvatureProblem`.
        chunk_size: apply at most this many columns at once (memory cap; default all).

    Attributes: ``problem`` (the checked model/loss/data), ``parameter_names``, ``shape``, ``dtype``, ``device``.
    """

    def __init__(self, model: nn.Module, loss_fn: Callable, data: DataLike, params: ParamsLike = None, *,
                 mode: str = "eval", chunk_size: int | None = None) -> None:
        if chunk_size is not None and (not isinstance(chunk_size, int) or chunk_size < 1):
            raise ValueError(f"chunk_size must be a positive int or None, got {chunk_size!r}")
        self.problem = CurvatureProblem(model, loss_fn, data, params, mode)
        self.shape = (self.problem.P, self.problem.P)
        self.dtype, self.device = self.problem.dtype, self.problem.device
        self.chunk_size = chunk_size

    @property
    def parameter_names(self) -> list[str]:
        return list(self.problem.names)

    def split(self, v: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """A flat vector ``(P,)`` as per-parameter tensors (e.g. an eigenvector as layer-shaped directions)."""
        return tuple(t[0] for t in self.problem.split(v.reshape(-1, 1)))

    def _matmat(self, X: torch.Tensor) -> torch.Tensor:
        step = X.shape[1] if self.chunk_size is None else self.chunk_size
        return torch.cat([self._apply(X[:, i:i + step]) for i in range(0, X.shape[1], step)], 1)

    def _apply(self, V: torch.Tensor) -> torch.Tensor:
        problem = self.problem
        out = torch.zeros_like(V)
        with problem.evaluation_mode():
            theta = problem.theta()
            Vs = problem.split(V)  # per-parameter (k, *shape)
            for index, (X, y, weight) in enumerate(problem.batches()):
                out += weight * problem.join(self._batch_product(index, X, y, theta, Vs))
        return out

    def _batch_product(self, index: int, X: torch.Tensor, y: torch.Tensor, theta: tuple[torch.Tensor, ...],
                       Vs: tuple[torch.Tensor, ...]) -> Sequence[torch.Tensor]:
        """Abstract hook: the products of this batch's curvature with ``Vs``. Every concrete operator defines it."""
        raise NotImplementedError(f"{type(self).__name__} must define _batch_product")

    def to_dense(self, chunk_size: int = 256, force: bool = False) -> torch.Tensor:
        """The exact ``(P, P)`` matrix by products with identity columns, ``chunk_size`` at a time (tests, small P)."""
        P = self.shape[0]
        if P > DENSE_LIMIT and not force:
            raise ValueError(f"to_dense() of a {P}-parameter operator needs {P * P * 8 / 1e9:.1f} GB; pass force=True "
                             "or use the matrix-free estimators")
        eye = torch.eye(P, dtype=self.dtype, device=self.device)
        return torch.cat([self._apply(eye[:, i:i + chunk_size]) for i in range(0, P, chunk_size)], 1)

    def loss(self) -> float:
        """The loss ``L`` at the current parameters."""
        return self.problem.loss()

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(P={self.shape[0]}, params={len(self.problem.names)} tensors, "
                f"N={self.problem.num_samples}, mode={self.problem.mode!r}, dtype={self.dtype})")


class HessianOperator(CurvatureOperator):
    """The Hessian ``H = d^2 L / d theta^2`` (spec A.2.1).

    Methods (``method=``):
        - "reverse" (default): reverse-over-reverse, ``vjp`` of ``grad`` (valid since H is symmetric), the block's
          columns vmapped; on the CPU as fast as "forward" within 10 % (interleaved runs, 85k parameters) and it
          works for every kernel with a double backward;
        - "forward": forward-over-reverse, ``jvp`` of ``grad`` (spec A.2's preferred torch.func form), vmapped;
        - "graph": PyHessian's scheme: the gradient graph (``create_graph=True``) of every batch is built once
          and kept, and each column costs one backward pass through it. Fastest for many single-vector products
          (Lanczos, power iteration) on small and medium models; keeps every batch's double-backward graph in
          memory; rebuilt automatically when a parameter or buffer changes (tracked by tensor version counters).
    Some torch kernels lack a forward-mode double derivative (torch 2.13: ``mse_loss`` raises "ZeroTensors are
    immutable"); "forward" then switches to "reverse" once and keeps it (``self.method`` says which is in use).
    """

    METHODS = ("forward", "reverse", "graph")

    def __init__(self, model: nn.Module, loss_fn: Callable, data: DataLike, params: ParamsLike = None, *,
                 mode: str = "eval", chunk_size: int | None = None, method: str = "reverse") -> None:
        if method not in self.METHODS:
            raise ValueError(f"method must be one of {self.METHODS}, got {method!r}")
        super().__init__(model, loss_fn, data, params, mode=mode, chunk_size=chunk_size)
        self.method = method
        self._graph: tuple[tuple, list] | None = None

    def _apply(self, V: torch.Tensor) -> torch.Tensor:
        if self.method != "graph":
            return super()._apply(V)
        problem = self.problem
        key = tuple((t._version, t.data_ptr()) for t in [*self.problem.model.parameters(),
                                                           *self.problem.model.buffers()])
        if self._graph is None or self._graph[0] != key:
            graphs = []
            with problem.evaluation_mode():
                for X, y, weight in problem.batches():
                    leaves = tuple(t.clone().requires_grad_(True) for t in problem.theta())
                    with torch.enable_grad():
                        grads = torch.autograd.grad(problem.loss_fn_of(X, y)(leaves), leaves, create_graph=True)
                    graphs.append((leaves, grads, weight))
            self._graph = (key, graphs)
        out = torch.zeros_like(V)
        Vs = problem.split(V)
        for leaves, grads, weight in self._graph[1]:
            for i in range(V.shape[1]):
                hv = torch.autograd.grad(grads, leaves, [v[i] for v in Vs], retain_graph=True, allow_unused=True)
                hv = [torch.zeros_like(t) if h is None else h for h, t in zip(hv, leaves)]
                out[:, i] += weight * torch.cat([h.reshape(-1) for h in hv])
        return out

    def _batch_product(self, index, X, y, theta, Vs):
        g = grad(self.problem.loss_fn_of(X, y))
        if self.method == "forward":
            try:
                return vmap(lambda v: jvp(g, (theta,), (v,))[1])(Vs)
            except RuntimeError as err:  # a kernel without forward-over-reverse support
                if "ZeroTensor" not in str(err) and "forward AD" not in str(err):
                    raise
                self.method = "reverse"
        _, pullback = vjp(g, theta)
        return vmap(pullback)(Vs)[0]


class _OutputSpaceOperator(CurvatureOperator):
    """``sum_b w_b J_b^T M_b J_b`` for an output-space matrix ``M_b`` given by :meth:`_output_product`."""

    def _batch_product(self, index, X, y, theta, Vs):
        f = self.problem.output_fn(X)
        output, pullback = vjp(f, theta)
        JV = vmap(lambda v: jvp(f, (theta,), (v,))[1])(Vs)  # (k, N, ...)
        MJV = self._output_product(index, output.detach(), y, JV)
        return vmap(pullback)(MJV)[0]

    def _output_product(self, index: int, output: torch.Tensor, y: torch.Tensor, U: torch.Tensor) -> torch.Tensor:
        """Abstract hook: the output-space matrix applied to ``U``. GGN, Fisher-MC and empirical Fisher define it."""
        raise NotImplementedError(f"{type(self).__name__} must define _output_product")


class GGNOperator(_OutputSpaceOperator):
    """The generalised Gauss-Newton ``G = sum_b w_b J_b^T Lambda_b J_b`` (PSD when the loss is convex in the output).

    ``Lambda_b`` is the Hessian of the batch loss in output space: closed form for ``nn.CrossEntropyLoss``,
    ``nn.MSELoss`` and ``nn.BCEWithLogitsLoss`` (see :mod:`sciml.curvature.losses`), exact autograd otherwise.
    """

    def _output_product(self, index, output, y, U):
        return output_hessian_product(self.problem.loss_fn, self.problem.reduction, output, y, U)


class FisherMCOperator(_OutputSpaceOperator):
    """Monte-Carlo Fisher ``F_MC = sum_b w_b J_b^T (1/M sum_m s_m s_m^T) J_b`` with ``E[s s^T] = Lambda``.

    Labels are sampled from the model's predictive distribution once, at construction (``mc_samples`` per data
    point, from ``generator``), so the operator is a fixed symmetric PSD matrix and ``E[F_MC] = G`` exactly for the
    three supported losses (canonical links). The batches are materialised into a list so that every pass pairs a
    batch with its own samples (a shuffling DataLoader would not).

    Args:
        mc_samples: labels drawn per data point (>= 1).
        generator: source of the sampled labels (on the parameters' device).
    """

    def __init__(self, model: nn.Module, loss_fn: Callable, data: DataLike, params: ParamsLike = None, *,
                 generator: torch.Generator | None = None, mc_samples: int = 1, mode: str = "eval",
                 chunk_size: int | None = None) -> None:
        super().__init__(model, loss_fn, data, params, mode=mode, chunk_size=chunk_size)
        if not isinstance(mc_samples, int) or mc_samples < 1:
            raise ValueError(f"mc_samples must be a positive int, got {mc_samples!r}")
        check_generator(generator, self.device)
        problem = self.problem
        problem._batches = [(X, y) for X, y in problem._batches]
        self.mc_samples = mc_samples
        self._samples = []
        with torch.no_grad(), problem.evaluation_mode():
            theta = problem.theta()
            for X, _, _ in problem.batches():
                output = problem.output_fn(X)(theta)
                self._samples.append(fisher_output_samples(problem.loss_fn, problem.reduction, output,
                                                           mc_samples, generator))

    def _output_product(self, index, output, y, U):
        S = self._samples[index].reshape(self.mc_samples, output.shape[0], -1)  # (M, N, D)
        coef = torch.einsum("mnd,knd->kmn", S, U.reshape(U.shape[0], output.shape[0], -1))
        return (torch.einsum("kmn,mnd->knd", coef, S) / self.mc_samples).reshape(U.shape)


class EmpiricalFisherOperator(_OutputSpaceOperator):
    """Empirical Fisher ``F_emp = (1/N) sum_i g_i g_i^T`` with the TRUE labels (spec notation; not G or F).

    ``g_i`` is the gradient of the loss of sample i alone (``loss_fn`` on a batch of one), so for mean reduction
    ``F_emp = sum_b w_b n_b sum_{i in b} J_i^T r_i r_i^T J_i`` with ``r_i = dL_b / df_i``; for sum reduction the
    factor ``n_b`` is dropped (``F_emp = sum_i g_i g_i^T``). A plain callable loss is taken to be mean-reduced.
    """

    def _output_product(self, index, output, y, U):
        r = grad(lambda out: self.problem.loss_fn(out, y))(output)  # (N, ...): dL_b / df
        N = output.shape[0]
        factor = float(N) if self.problem.reduction == "mean" else 1.0
        R = r.reshape(N, -1)
        coef = torch.einsum("nd,knd->kn", R, U.reshape(U.shape[0], N, -1))
        return factor * (coef[:, :, None] * R).reshape(U.shape)
