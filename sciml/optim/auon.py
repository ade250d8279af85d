"""AuON (Maity, arXiv 2509.24320; spec optim_numerics section 2): momentum rescaled element-wise by the RMS of
``cosh`` of its Frobenius-normalised entries, O(mn) per matrix; Hybrid-AuON runs Newton-Schulz steps first.

Two versions exist and give different steps (spec 2.2), both implemented:

* ``version="draft"`` (default; paper draft / v1): ``X = Mt / (||Mt||_F + 1e-7)``, ``r = sqrt(mean cosh(X)^2)``,
  ``W <- W - lr sqrt(max(1, m/n)) X / (r + 1e-8)``.
* ``version="head"`` (the code at HEAD): ``r = sqrt(mean cosh(gamma Mt/(||Mt||_F + 1e-7))^2)`` but the step divides
  the *unnormalised* momentum: ``W <- W - lr Mt / (r + 1e-8)``, weight decay ``W *= 1 - lr wd`` first.

Since ``sum X_i^2 = 1``, ``r = 1 + O(1/N)``: draft AuON is Frobenius-normalised Nesterov momentum to O(1/N), head
AuON is SGD with EMA-Nesterov momentum, Hybrid(ns_steps=5, head) is Muon without shape scaling (spec 2.2; the
tests assert these equivalences). Momentum: ``M <- mu M + (1 - mu) g``, ``Mt = (1 - mu) g + mu M``.
The cosh is evaluated in float32 at least (bf16 loses the O(1/N) correction entirely, spec 2.6).
"""

from __future__ import annotations

import math

import torch

from sciml.linalg import newton_schulz
from sciml.optim._common import check_finite_grads, check_lr, check_nonnegative, check_positive, evaluate_closure
from sciml.optim.muon import NS_COEFFICIENTS, _as_matrix, _check_matrices


def cosh_rms(X: torch.Tensor, gamma: float = 1.0) -> torch.Tensor:
    """``sqrt(mean(cosh(gamma X)^2))`` in at least float32 (0-d tensor)."""
    X = X.float() if X.dtype in (torch.bfloat16, torch.float16) else X
    return torch.cosh(gamma * X).pow(2).mean().sqrt()


class AuON(torch.optim.Optimizer):
    """AuON (``version`` "draft" or "head"; see the module docstring)."""

    ns_steps_default = 0

    def __init__(self, params, lr: float = 0.05, momentum: float = 0.95, weight_decay: float = 0.0,
                 version: str = "draft", gamma: float = 1.5, ns_steps: int | None = None,
                 ns_dtype: torch.dtype = torch.float32) -> None:
        check_lr(lr)
        if not (isinstance(momentum, (int, float)) and 0 <= momentum < 1):
            raise ValueError(f"momentum must be in [0, 1), got {momentum!r}")
        check_nonnegative("weight_decay", weight_decay)
        check_positive("gamma", gamma)
        if version not in ("draft", "head"):
            raise ValueError(f"version must be 'draft' (paper v1) or 'head' (the code), got {version!r}")
        ns_steps = self.ns_steps_default if ns_steps is None else ns_steps
        if not isinstance(ns_steps, int) or ns_steps < 0:
            raise ValueError(f"ns_steps must be an int >= 0, got {ns_steps!r}")
        super().__init__(params, dict(lr=lr, momentum=momentum, weight_decay=weight_decay, version=version,
                                      gamma=gamma, ns_steps=ns_steps, ns_dtype=ns_dtype))
        _check_matrices(self)

    def direction(self, Mt: torch.Tensor, group: dict) -> torch.Tensor:
        """The update direction for Nesterov momentum ``Mt`` (before the learning rate)."""
        gamma = 1.0 if group["version"] == "draft" else group["gamma"]
        if group["ns_steps"] > 0:
            X = newton_schulz(Mt, steps=group["ns_steps"], coefficients=NS_COEFFICIENTS, dtype=group["ns_dtype"])
            return X / (cosh_rms(X, gamma) + 1e-8)
        X = Mt / (Mt.norm() + 1e-7)
        r = cosh_rms(X, gamma)
        if group["version"] == "draft":
            m, n = Mt.shape
            return math.sqrt(max(1.0, m / n)) * X / (r + 1e-8)
        return Mt / (r + 1e-8)

    @torch.no_grad()
    def step(self, closure=None):
        loss = evaluate_closure(closure)
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            check_finite_grads(params, type(self).__name__)
            mu = group["momentum"]
            for p in params:
                grad = _as_matrix(p.grad, type(self).__name__)
                state = self.state[p]
                if "momentum_buffer" not in state:
                    state["momentum_buffer"] = torch.zeros_like(grad)
                M = state["momentum_buffer"].lerp_(grad, 1 - mu)
                Mt = grad.lerp(M, mu)
                p.mul_(1 - group["lr"] * group["weight_decay"])
                p.sub_((group["lr"] * self.direction(Mt, group)).to(p.dtype).view_as(p))
        return loss


class HybridAuON(AuON):
    """Hybrid-AuON: ``ns_steps`` Newton-Schulz steps (1 in the draft, 5 in the code) on the normalised momentum,
    then the cosh-RMS division (no shape factor)."""

    ns_steps_default = 1
