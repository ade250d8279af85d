"""Sophia (Liu, Li, Hall, Liang, Ma, ICLR 2024, arXiv 2305.14342; spec B.8): momentum divided by an EMA of a
diagonal curvature estimate refreshed every ``k`` steps, clipped per coordinate.

Three conventions, selectable (they differ in the clip threshold by orders of magnitude, spec B.8):

* ``"code"`` (the official ``SophiaG``, default there): ``p <- p(1 - lr wd)``; ``m <- b1 m + (1 - b1) g``;
  ``p <- p - lr sign(m) min(|m| / (rho bs h + 1e-15), 1)``; ``update_hessian()`` sets ``h <- b2 h + (1 - b2) g^2``
  from the gradient of the sampled-label loss (no x B). Before the first Hessian update the step is
  ``lr sign(m)``. Guard added here: ``max(h, 0)`` in the denominator, so h <= 0 (possible with Sophia-H's
  Gaussian probes) gives the bounded ``lr sign(m)`` step instead of a step in the wrong direction.
* ``"paper"``: ``p <- p - lr clip(m / max(gamma h, eps), 1)`` with ``h`` an EMA of the raw estimate
  (GNB: ``B g_hat^2``; Hutchinson: ``u * Hu``), decoupled weight decay, no bias correction.
* ``"levanter"``: as the paper, but each raw estimate is clipped to [-1, 1] before the EMA and m is bias-corrected.
"""

from __future__ import annotations

import torch

from sciml.optim._common import (GeneratorStateMixin, check_betas, check_finite_grads, check_lr, check_nonnegative,
                                 check_positive, evaluate_closure, random_like, require_graph)

CONVENTIONS = ("code", "paper", "levanter")


def sample_labels(logits: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Labels drawn from the model's own softmax (Sophia-G's Gauss-Newton-Bartlett estimator), shape logits[..., 0]."""
    probs = torch.softmax(logits.detach().float(), dim=-1).reshape(-1, logits.shape[-1])
    draws = torch.multinomial(probs.to(generator.device if generator is not None else probs.device), 1,
                              generator=generator)
    return draws.reshape(logits.shape[:-1]).to(logits.device)


class _Sophia(torch.optim.Optimizer):
    def __init__(self, params, lr, betas, weight_decay, convention, rho, gamma, eps) -> None:
        check_lr(lr)
        betas = check_betas(betas)
        check_nonnegative("weight_decay", weight_decay)
        check_nonnegative("rho", rho)
        check_positive("gamma", gamma)
        check_positive("eps", eps)
        if convention not in CONVENTIONS:
            raise ValueError(f"convention must be one of {CONVENTIONS}, got {convention!r}")
        super().__init__(params, dict(lr=lr, betas=betas, weight_decay=weight_decay, rho=rho, gamma=gamma, eps=eps))
        self.convention = convention

    def _state(self, p):
        state = self.state[p]
        if not state:
            state["step"] = 0
            state["exp_avg"] = torch.zeros_like(p)
            state["hessian"] = torch.zeros_like(p)
        return state

    @torch.no_grad()
    def _ema_hessian(self, estimates: dict[torch.Tensor, torch.Tensor]) -> None:
        for group in self.param_groups:
            b2 = group["betas"][1]
            for p in group["params"]:
                if p in estimates:
                    h_hat = estimates[p].detach()
                    if self.convention == "levanter":
                        h_hat = h_hat.clamp(-1.0, 1.0)
                    self._state(p)["hessian"].mul_(b2).add_(h_hat, alpha=1 - b2)

    @torch.no_grad()
    def _update(self, bs: float, checked: bool = False) -> None:
        if not checked:
            check_finite_grads([p for g in self.param_groups for p in g["params"] if p.grad is not None],
                               type(self).__name__)
        for group in self.param_groups:
            b1 = group["betas"][0]
            lr = group["lr"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self._state(p)
                state["step"] += 1
                p.mul_(1 - lr * group["weight_decay"])
                m, h = state["exp_avg"], state["hessian"]
                m.mul_(b1).add_(p.grad.detach(), alpha=1 - b1)
                if self.convention == "code":
                    denom = h.clamp_min(0).mul_(group["rho"] * bs).add_(1e-15)     # guard: h <= 0 -> lr sign(m)
                    ratio = m.abs().div_(denom).clamp_(max=1.0)
                    p.addcmul_(m.sign(), ratio, value=-lr)
                else:
                    m_eff = m / (1 - b1 ** state["step"]) if self.convention == "levanter" else m
                    step = (m_eff / (group["gamma"] * h).clamp_min(group["eps"])).clamp(-1.0, 1.0)
                    p.add_(step, alpha=-lr)


class SophiaG(_Sophia):
    """Sophia-G. Per step: ``loss.backward(); opt.step(bs=...)``; every ``k`` steps: backward the loss on labels
    from :func:`sample_labels` and call ``opt.update_hessian(bs=...)`` (the official loop).

    Args:
        convention: "code" (default; ``rho`` and ``step(bs)`` as the official code), "paper" or "levanter"
            (``gamma``, ``eps``; the GNB estimate is ``bs * g^2``).
    """

    def __init__(self, params, lr: float = 1e-4, betas=(0.965, 0.99), rho: float = 0.04, weight_decay: float = 1e-1,
                 *, convention: str = "code", gamma: float = 0.05, eps: float = 1e-12) -> None:
        super().__init__(params, lr, betas, weight_decay, convention, rho, gamma, eps)

    @torch.no_grad()
    def update_hessian(self, bs: int | None = None) -> None:
        """EMA update of h from the current gradients (those of the sampled-label loss)."""
        if self.convention != "code" and bs is None:
            raise ValueError(f"convention {self.convention!r} needs bs (the GNB estimate is bs * g^2)")
        scale = 1.0 if self.convention == "code" else float(bs)
        self._ema_hessian({p: scale * p.grad * p.grad for g in self.param_groups for p in g["params"]
                           if p.grad is not None})

    @torch.no_grad()
    def step(self, closure=None, bs: int = 5120):
        loss = evaluate_closure(closure)
        self._update(bs)
        return loss


class SophiaH(GeneratorStateMixin, _Sophia):
    """Sophia-H: Gaussian Hutchinson ``u * Hu`` every ``update_interval`` steps (needs
    ``loss.backward(create_graph=True)`` on those steps: :attr:`hessian_due` says when).

    Defaults follow levanter's Sophia-H (gamma 0.01, eps 1e-12) in the paper's convention.
    """

    def __init__(self, params, lr: float = 1e-4, betas=(0.965, 0.99), gamma: float = 0.01, eps: float = 1e-12,
                 weight_decay: float = 0.2, update_interval: int = 10, generator: torch.Generator | None = None, *,
                 convention: str = "paper", rho: float = 0.04) -> None:
        if not isinstance(update_interval, int) or update_interval < 1:
            raise ValueError(f"update_interval must be an int >= 1, got {update_interval!r}")
        super().__init__(params, lr, betas, weight_decay, convention, rho, gamma, eps)
        self.update_interval, self.generator = update_interval, generator
        self._steps = 0

    @property
    def hessian_due(self) -> bool:
        """True when the next ``step()`` estimates the curvature (backward with create_graph=True then)."""
        return self._steps % self.update_interval == 0

    @torch.no_grad()
    def step(self, closure=None, bs: int = 1):
        loss = evaluate_closure(closure)
        params = [p for g in self.param_groups for p in g["params"] if p.grad is not None]
        check_finite_grads(params, "SophiaH")
        if self.hessian_due:
            require_graph(params, "SophiaH")
            with torch.enable_grad():
                u = [random_like(p, "gaussian", self.generator) for p in params]
                hu = torch.autograd.grad([p.grad for p in params], params, grad_outputs=u, retain_graph=True)
            self._ema_hessian({p: ui * h for p, ui, h in zip(params, u, hu)})
        self._steps += 1
        self._update(bs, checked=True)
        return loss
