"""AdaHessian (Yao et al., AAAI 2021, arXiv 2006.00719; spec B.7).

Adam whose second moment is an EMA of the squared Hutchinson Hessian diagonal (one Rademacher probe per
Hessian update), spatially averaged, bias-corrected, raised to the Hessian power ``k``:

    D_t   = |H z| (the code; ``diagonal="signed"`` uses the paper's z * H z), block-averaged
    m_t   = b1 m + (1 - b1) g;  v_t = b2 v + (1 - b2) D_t^2
    denom = (sqrt(v_t) / sqrt(1 - b2^t))^k + eps
    p    <- p - lr (m_t / (1 - b1^t) / denom + weight_decay p)

Differences from the peers, on purpose: the default ``hessian_power=1`` is the paper's (torch-optimizer uses 0.5);
``p.grad`` is never modified (torch-optimizer detaches it in place); probes come from an explicit generator whose
state is part of ``state_dict``; ``block_size`` averages any tensor in blocks of that size (default: the code's
convention, conv kernels over their spatial dims, other tensors not averaged); ``update_interval`` > 1 reuses the
last Hessian diagonal between updates (the "delayed Hessian update"), updating ``v`` only when it is re-estimated.
"""

from __future__ import annotations

import math

import torch

from sciml.optim._common import (GeneratorStateMixin, check_betas, check_finite_grads, check_lr, check_nonnegative,
                                 evaluate_closure, random_like, require_graph)


def spatial_average(d: torch.Tensor, block_size: int | None) -> torch.Tensor:
    """Block averages of ``d`` broadcast back to its shape: the code's convention when ``block_size`` is None
    (4-D conv kernels over the kh x kw dims, 3-D over the last dim, else none), else blocks of ``block_size``
    consecutive entries (a shorter last block is averaged on its own)."""
    if block_size is None:
        if d.dim() == 4:
            return d.mean(dim=(2, 3), keepdim=True).expand_as(d)
        if d.dim() == 3:
            return d.mean(dim=2, keepdim=True).expand_as(d)
        return d
    flat = d.reshape(-1)
    full = flat.numel() // block_size * block_size
    head = flat[:full].reshape(-1, block_size).mean(1, keepdim=True).expand(-1, block_size).reshape(-1)
    tail = flat[full:]
    tail = tail.mean().expand_as(tail) if tail.numel() else tail
    return torch.cat([head, tail]).reshape(d.shape)


class AdaHessian(GeneratorStateMixin, torch.optim.Optimizer):
    """AdaHessian. Call ``loss.backward(create_graph=True)`` before ``step()``.

    Args:
        params: parameters or param groups.
        lr, betas, eps, weight_decay: as above (code defaults: 0.15, (0.9, 0.999), 1e-4, 0).
        hessian_power: k in (0, 1].
        block_size: spatial-averaging block (None: the code's convention).
        update_interval: re-estimate the Hessian diagonal every this many steps.
        diagonal: "abs" (|Hz|, the code) or "signed" (z * Hz, the paper).
        generator: torch.Generator for the Rademacher probes.
    """

    def __init__(self, params, lr: float = 0.15, betas=(0.9, 0.999), eps: float = 1e-4, weight_decay: float = 0.0,
                 hessian_power: float = 1.0, block_size: int | None = None, update_interval: int = 1,
                 diagonal: str = "abs", generator: torch.Generator | None = None) -> None:
        check_lr(lr)
        betas = check_betas(betas)
        check_nonnegative("eps", eps)
        check_nonnegative("weight_decay", weight_decay)
        if not (isinstance(hessian_power, (int, float)) and 0 < hessian_power <= 1):
            raise ValueError(f"hessian_power must be in (0, 1], got {hessian_power!r}")
        if block_size is not None and (not isinstance(block_size, int) or block_size < 1):
            raise ValueError(f"block_size must be None or an int >= 1, got {block_size!r}")
        if not isinstance(update_interval, int) or update_interval < 1:
            raise ValueError(f"update_interval must be an int >= 1, got {update_interval!r}")
        if diagonal not in ("abs", "signed"):
            raise ValueError(f"diagonal must be 'abs' (the code) or 'signed' (the paper), got {diagonal!r}")
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                                      hessian_power=hessian_power, block_size=block_size))
        self.update_interval, self.diagonal, self.generator = update_interval, diagonal, generator
        self._steps = 0

    def _hessian_diagonals(self, params: list[torch.Tensor], probes: list[torch.Tensor] | None):
        require_graph(params, "AdaHessian")
        z = probes if probes is not None else [random_like(p, "rademacher", self.generator) for p in params]
        hz = torch.autograd.grad([p.grad for p in params], params, grad_outputs=z, retain_graph=True)
        return [h.abs() if self.diagonal == "abs" else zi * h for zi, h in zip(z, hz)]

    @torch.no_grad()
    def step(self, closure=None, *, probes: list[torch.Tensor] | None = None):
        """One step. ``probes``: Rademacher vectors to use instead of drawing (one per parameter with a gradient,
        in param-group order; for deterministic comparisons)."""
        loss = evaluate_closure(closure)
        params = [p for g in self.param_groups for p in g["params"] if p.grad is not None]
        check_finite_grads(params, "AdaHessian")
        refresh = self._steps % self.update_interval == 0
        self._steps += 1
        diagonals = None
        if refresh:
            with torch.enable_grad():
                diagonals = dict(zip(params, self._hessian_diagonals(params, probes)))
        for group in self.param_groups:
            b1, b2 = group["betas"]
            k = group["hessian_power"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad.detach()
                state = self.state[p]
                if not state:
                    state["step"], state["hessian_step"] = 0, 0
                    state["exp_avg"] = torch.zeros_like(p)
                    state["exp_hessian_diag_sq"] = torch.zeros_like(p)
                state["step"] += 1
                state["exp_avg"].mul_(b1).add_(grad, alpha=1 - b1)
                if diagonals is not None:
                    d = spatial_average(diagonals[p].detach(), group["block_size"])
                    state["hessian_step"] += 1
                    state["exp_hessian_diag_sq"].mul_(b2).addcmul_(d, d, value=1 - b2)
                bias1 = 1 - b1 ** state["step"]
                bias2 = 1 - b2 ** max(state["hessian_step"], 1)
                denom = (state["exp_hessian_diag_sq"].sqrt() / math.sqrt(bias2)).pow(k).add_(group["eps"])
                p.sub_(group["lr"] * (state["exp_avg"] / bias1 / denom + group["weight_decay"] * p))
        return loss
