"""Orthogonalised-momentum optimizers for matrix parameters: Muon (with ``torch.optim.Muon``'s semantics), NAMO and
NAMO-D ("Adam Improves Muon", Zhang, Liu, Schaeffer, arXiv 2602.17080; spec optim_numerics section 1).

Directions come from :func:`sciml.linalg.newton_schulz` (quintic NS5; ``ns_dtype`` bf16 by default as Muon) or the
exact polar factor :func:`sciml.linalg.polar` (``orthogonalize="polar"``). Conv kernels are flattened to
``(out, in * kh * kw)``; 1-D tensors are refused (route them to AdamW: :func:`matrix_and_other_params`).

NAMO (the official ``src/namo.py``, ``form="code"``, default): per matrix with gradient G, momentum M,
``v <- mu2 v + (1 - mu2) ||G||_F^2``; Nesterov ``Mt = (1 - mu1) G + mu1 M``; ``O = orth(Mt)``;
``alpha = lr sqrt(1 - mu2^t) / (1 - mu1^t) ||Mt||_F / (sqrt(v) + eps)``; ``W <- W (1 - wd min(alpha, 1))``;
``W <- W - min(alpha scale sqrt(max(m, n)), 1) O`` (Moonlight factor, two clamps, eps after the sqrt).
``form="paper"`` (Algorithm 1): ``W <- W - lr alpha' (O + wd W)`` with ``alpha' = alpha / lr`` and no clamps.
NAMO-D: per-column second moments ``V_j`` and ratios ``d_j = ||Mt[:, j]|| / (sqrt(V_j) + eps)`` clamped to
``[c mean(d), mean(d) / c]`` (NaN-aware mean; no clamp when the mean is not finite and positive), then
``W[:, j] *= max(0, 1 - wd min(base d_j, 1))`` and ``W <- W - O diag(min(base d_j scale sqrt(max(m, n)), 1))``.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from sciml.linalg import newton_schulz, polar
from sciml.optim._common import check_finite_grads, check_lr, check_nonnegative, check_positive, evaluate_closure

NS_COEFFICIENTS = (3.4445, -4.7750, 2.0315)     # Keller Jordan's quintic, also torch.optim.Muon's default


def _check_common(lr, momentum, weight_decay, eps, ns_steps, orthogonalize, ns_dtype) -> None:
    check_lr(lr)
    if not (isinstance(momentum, (int, float)) and 0 <= momentum < 1):
        raise ValueError(f"momentum must be in [0, 1), got {momentum!r}")
    check_nonnegative("weight_decay", weight_decay)
    check_positive("eps", eps)
    if not isinstance(ns_steps, int) or not 0 <= ns_steps < 100:
        raise ValueError(f"ns_steps must be an int in [0, 100), got {ns_steps!r}")
    if orthogonalize not in ("newton_schulz", "polar"):
        raise ValueError(f"orthogonalize must be 'newton_schulz' or 'polar', got {orthogonalize!r}")
    if ns_dtype not in (torch.bfloat16, torch.float16, torch.float32, torch.float64):
        raise ValueError(f"ns_dtype must be a floating torch dtype, got {ns_dtype!r}")


def _as_matrix(t: torch.Tensor, name: str) -> torch.Tensor:
    if t.dim() < 2:
        raise ValueError(f"{name} works on matrices (>= 2-D parameters); a {t.dim()}-D parameter of shape "
                         f"{tuple(t.shape)} must go to AdamW (see matrix_and_other_params)")
    return t.reshape(t.shape[0], -1)


def _check_matrices(optimizer: torch.optim.Optimizer) -> None:
    for group in optimizer.param_groups:
        for p in group["params"]:
            _as_matrix(p, type(optimizer).__name__)


def _orthogonalize(M: torch.Tensor, group: dict) -> torch.Tensor:
    if group["orthogonalize"] == "polar":
        return polar(M).unitary
    return newton_schulz(M, steps=group["ns_steps"], coefficients=group["ns_coefficients"], eps=group["eps"],
                         dtype=group["ns_dtype"])


class Muon(torch.optim.Optimizer):
    """Muon with ``torch.optim.Muon``'s semantics (momentum ``B.lerp_(g, 1 - mu)``, Nesterov ``g.lerp(B, mu)``,
    ``adjust_lr_fn`` None/"original" -> ``sqrt(max(1, m/n))``, "match_rms_adamw" -> ``0.2 sqrt(max(m, n))``),
    ``p.grad`` untouched, plus the exact-polar option and a choice of NS precision."""

    def __init__(self, params, lr: float = 1e-3, weight_decay: float = 0.1, momentum: float = 0.95,
                 nesterov: bool = True, ns_coefficients=NS_COEFFICIENTS, eps: float = 1e-7, ns_steps: int = 5,
                 adjust_lr_fn: str | None = None, orthogonalize: str = "newton_schulz",
                 ns_dtype: torch.dtype = torch.bfloat16) -> None:
        _check_common(lr, momentum, weight_decay, eps, ns_steps, orthogonalize, ns_dtype)
        if adjust_lr_fn not in (None, "original", "match_rms_adamw"):
            raise ValueError(f"adjust_lr_fn must be None, 'original' or 'match_rms_adamw', got {adjust_lr_fn!r}")
        super().__init__(params, dict(lr=lr, weight_decay=weight_decay, momentum=momentum, nesterov=nesterov,
                                      ns_coefficients=tuple(ns_coefficients), eps=eps, ns_steps=ns_steps,
                                      adjust_lr_fn=adjust_lr_fn, orthogonalize=orthogonalize, ns_dtype=ns_dtype))
        _check_matrices(self)

    @torch.no_grad()
    def step(self, closure=None):
        loss = evaluate_closure(closure)
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            check_finite_grads(params, "Muon")
            for p in params:
                grad = _as_matrix(p.grad, "Muon")
                state = self.state[p]
                if "momentum_buffer" not in state:
                    state["momentum_buffer"] = torch.zeros_like(grad)
                buf = state["momentum_buffer"]
                buf.lerp_(grad, 1 - group["momentum"])
                update = grad.lerp(buf, group["momentum"]) if group["nesterov"] else buf
                update = _orthogonalize(update, group)
                m, n = grad.shape
                ratio = 0.2 * math.sqrt(max(m, n)) if group["adjust_lr_fn"] == "match_rms_adamw" \
                    else math.sqrt(max(1.0, m / n))
                p.mul_(1 - group["lr"] * group["weight_decay"])
                p.add_(update.view_as(p), alpha=-group["lr"] * ratio)
        return loss


class NAMO(torch.optim.Optimizer):
    """NAMO: Muon's orthogonal direction times one Adam-style scalar per matrix (see the module docstring)."""

    column_wise = False

    def __init__(self, params, lr: float = 1e-2, momentum: float = 0.95, mu2: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0.1, scale_coeff: float = 0.2, nesterov: bool = True, ns_steps: int = 5,
                 ns_coefficients=NS_COEFFICIENTS, orthogonalize: str = "newton_schulz",
                 ns_dtype: torch.dtype = torch.bfloat16, form: str = "code", col_clamp: float = 0.75) -> None:
        _check_common(lr, momentum, weight_decay, eps, ns_steps, orthogonalize, ns_dtype)
        if not (isinstance(mu2, (int, float)) and 0 <= mu2 < 1):
            raise ValueError(f"mu2 must be in [0, 1), got {mu2!r}")
        check_nonnegative("scale_coeff", scale_coeff)
        if form not in ("code", "paper"):
            raise ValueError(f"form must be 'code' (the official implementation) or 'paper', got {form!r}")
        if not (isinstance(col_clamp, (int, float)) and 0 < col_clamp <= 1):
            raise ValueError(f"col_clamp (c) must be in (0, 1], got {col_clamp!r}")
        super().__init__(params, dict(lr=lr, momentum=momentum, mu2=mu2, eps=eps, weight_decay=weight_decay,
                                      scale_coeff=scale_coeff, nesterov=nesterov, ns_steps=ns_steps,
                                      ns_coefficients=tuple(ns_coefficients), orthogonalize=orthogonalize,
                                      ns_dtype=ns_dtype, form=form, col_clamp=col_clamp))
        _check_matrices(self)

    def _scales(self, grad, Mt, state, group, base):
        """(decay factor, step scale) as tensors broadcastable over the (m, n) matrix."""
        m, n = grad.shape
        shape = group["scale_coeff"] * math.sqrt(max(m, n))
        g32, mt32 = grad.float(), Mt.float()
        if not self.column_wise:
            state["v"].mul_(group["mu2"]).add_(g32.pow(2).sum(), alpha=1 - group["mu2"])
            alpha = base * mt32.norm() / (state["v"].sqrt() + group["eps"])
        else:
            state["v"].mul_(group["mu2"]).add_(g32.pow(2).sum(0), alpha=1 - group["mu2"])
            d = mt32.norm(dim=0) / (state["v"].sqrt() + group["eps"])
            c = group["col_clamp"]
            mean = torch.nanmean(d)
            if bool(torch.isfinite(mean)) and float(mean) > 0:
                d = d.clamp(c * mean, mean / c)
            alpha = base * d                                     # (n,)
        if group["form"] == "paper":
            return None, alpha                                   # Algorithm 1: no clamps, no shape factor
        decay = (1 - group["weight_decay"] * alpha.clamp(max=1.0)).clamp(min=0.0)
        return decay, (alpha * shape).clamp(max=1.0)

    @torch.no_grad()
    def step(self, closure=None):
        loss = evaluate_closure(closure)
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            check_finite_grads(params, type(self).__name__)
            mu1, mu2 = group["momentum"], group["mu2"]
            for p in params:
                grad = _as_matrix(p.grad, type(self).__name__)
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["momentum_buffer"] = torch.zeros_like(grad)
                    state["v"] = torch.zeros(grad.shape[1] if self.column_wise else (), dtype=torch.float32,
                                             device=grad.device)
                state["step"] += 1
                t = state["step"]
                M = state["momentum_buffer"].mul_(mu1).add_(grad, alpha=1 - mu1)
                Mt = (1 - mu1) * grad + mu1 * M if group["nesterov"] else M
                O = _orthogonalize(Mt, group).float()
                base = group["lr"] * math.sqrt(1 - mu2**t) / (1 - mu1**t)
                decay, scale = self._scales(grad, Mt, state, group, base)
                W = p.view(grad.shape)
                if group["form"] == "paper":
                    # Algorithm 1: W <- W - lr a_t (O + wd W); ``scale`` is lr a_t
                    W.sub_(((O + group["weight_decay"] * W.float()) * scale).to(W.dtype))
                else:
                    W.mul_(decay.to(W.dtype))
                    W.sub_((O * scale).to(W.dtype))
        return loss


class NAMOD(NAMO):
    """NAMO-D: per-column (input-neuron) Adam-norm scales clamped to ``[c mean, mean / c]`` (``col_clamp``)."""

    column_wise = True

    def __init__(self, params, lr: float = 9e-3, col_clamp: float = 0.75, **kwargs) -> None:
        super().__init__(params, lr=lr, col_clamp=col_clamp, **kwargs)


def matrix_and_other_params(model: nn.Module, exclude: tuple[str, ...] = ("embed", "wte", "wpe", "lm_head")):
    """Route parameters as the reference training scripts: >= 2-D weights whose names contain none of ``exclude``
    to the matrix optimizer, everything else (biases, norms, embeddings, tied heads) to AdamW.

    Returns (matrix_params, other_params)."""
    matrix, other = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (matrix if p.dim() >= 2 and not any(e in name for e in exclude) else other).append(p)
    return matrix, other


class WithAdamW(torch.optim.Optimizer):
    """A matrix optimizer for ``matrix_params`` and AdamW for the rest, stepped together; as the reference the
    AdamW part uses the same lr by default (betas (0.9, 0.95), eps 1e-8, weight decay 0)."""

    def __init__(self, matrix_optimizer: torch.optim.Optimizer, other_params, lr: float | None = None,
                 betas=(0.9, 0.95), eps: float = 1e-8, weight_decay: float = 0.0) -> None:
        lr = matrix_optimizer.param_groups[0]["lr"] if lr is None else lr
        self.matrix = matrix_optimizer
        other_params = list(other_params)
        self.adamw = torch.optim.AdamW(other_params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay) \
            if other_params else None
        groups = list(matrix_optimizer.param_groups) + (list(self.adamw.param_groups) if self.adamw else [])
        self.param_groups, self.defaults, self.state = groups, {}, {}

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.matrix.zero_grad(set_to_none)
        if self.adamw:
            self.adamw.zero_grad(set_to_none)

    def step(self, closure=None):
        loss = evaluate_closure(closure)
        self.matrix.step()
        if self.adamw:
            self.adamw.step()
        return loss

    def state_dict(self):
        return {"matrix": self.matrix.state_dict(), "adamw": self.adamw.state_dict() if self.adamw else None}

    def load_state_dict(self, state_dict):
        self.matrix.load_state_dict(state_dict["matrix"])
        if self.adamw and state_dict["adamw"] is not None:
            self.adamw.load_state_dict(state_dict["adamw"])
