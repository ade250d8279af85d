"""The frozen result of the entropic OT solvers."""

from __future__ import annotations

import dataclasses

import torch

from sciml.core import Result, Status


@dataclasses.dataclass(frozen=True)
class TransportResult(Result):
    """Entropic OT solution ``P = exp(eta (-C + x ⊕ y) - 1)``.

    Fields:
        plan: (n, m) transport plan (zero on zero-mass rows/columns).
        cost: ``<C, P>`` (transport cost without the entropy term).
        dual: potentials ``(x, y)`` of shapes (n,), (m,) in the gauge ``y[last support column] = 0``; ``-inf`` on
            zero-mass rows/columns.
        marginal_error: true ``||g||_1 = ||a - P1||_1 + ||b - P^T 1||_1`` of the returned plan.
        n_iter: total iterations (Sinkhorn sweeps + Newton steps).
        n_sinkhorn, n_newton: the two parts of ``n_iter``.
        history: ``||g||_1`` before each iteration and after the last ((n_iter + 1,) entries; an SNS Sinkhorn sweep
            taken as a fallback after a failed line search is counted in n_sinkhorn but not given its own entry).
        status: CONVERGED only when ``marginal_error <= tol`` was measured on the returned plan.
        method: "sinkhorn" or "sns".
        sparsity_history: entries of P kept in each Newton step's Hessian (SNS only).
        n_direct_solves: Newton systems solved directly (dense Hessian, or CG did not converge) instead of by CG.
    """

    plan: torch.Tensor
    cost: float
    dual: tuple[torch.Tensor, torch.Tensor]
    marginal_error: float
    n_iter: int
    n_sinkhorn: int
    n_newton: int
    history: tuple[float, ...]
    status: Status
    method: str
    eta: float
    tol: float
    sparsity_history: tuple[int, ...] = ()
    n_direct_solves: int = 0

    @property
    def x(self) -> torch.Tensor:
        return self.dual[0]

    @property
    def y(self) -> torch.Tensor:
        return self.dual[1]

    @property
    def converged(self) -> bool:
        return self.status is Status.CONVERGED
