"""The M-FAC optimizer (Frantar, Kurtic, Alistarh, NeurIPS 2021, arXiv 2107.03356; spec B.9, dynamic algorithm).

Per param group, the gradients of all its parameters are one vector ``g`` (plus ``weight_decay * p``); it is
inserted into a ring buffer of the last ``ngrads`` gradients (zeros at the start) and the step is
``u = (damp I + G^T G / m)^{-1} g`` from :class:`sciml.curvature.mfac.MFACInverseFisher`; with momentum
``v <- momentum v + (1 - momentum) u``; ``p <- p - lr u`` (or ``v``). At step 1 ``u = m g / (damp m + |g|^2)``:
a normalised step, large early on, so keep ``lr`` small (1e-3 / 1e-4 in the paper's runs).
"""

from __future__ import annotations

import torch

from sciml.curvature.mfac import MFACInverseFisher
from sciml.optim._common import check_finite_grads, check_lr, check_nonnegative, check_positive, evaluate_closure


class MFAC(torch.optim.Optimizer):
    """M-FAC. State (the gradient window, its Gram matrix) lives on the parameters' device in their dtype."""

    def __init__(self, params, lr: float = 1e-3, momentum: float = 0.0, weight_decay: float = 0.0,
                 ngrads: int = 1024, damp: float = 1e-5) -> None:
        check_lr(lr)
        if not (isinstance(momentum, (int, float)) and 0 <= momentum < 1):
            raise ValueError(f"momentum must be in [0, 1), got {momentum!r}")
        check_nonnegative("weight_decay", weight_decay)
        if not isinstance(ngrads, int) or ngrads < 1:
            raise ValueError(f"ngrads must be an int >= 1, got {ngrads!r}")
        check_positive("damp", damp)
        super().__init__(params, dict(lr=lr, momentum=momentum, weight_decay=weight_decay, ngrads=ngrads, damp=damp))
        self._inverses: dict[int, MFACInverseFisher] = {}

    @torch.no_grad()
    def step(self, closure=None):
        loss = evaluate_closure(closure)
        for index, group in enumerate(self.param_groups):
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            check_finite_grads(params, "MFAC")
            g = torch.cat([(p.grad.detach() + group["weight_decay"] * p).reshape(-1) for p in params])
            inverse = self._inverses.get(index)
            if inverse is None or inverse.d != g.numel():
                inverse = MFACInverseFisher(group["ngrads"], group["damp"], dim=g.numel(), dtype=g.dtype,
                                            device=g.device)
                self._inverses[index] = inverse
            inverse.update(g)
            u = inverse.ihvp(g)
            if group["momentum"] > 0:
                state = self.state[params[0]]
                v = state.get("mfac_momentum")
                v = u.clone() if v is None else v.mul_(group["momentum"]).add_(u, alpha=1 - group["momentum"])
                state["mfac_momentum"] = v
                u = v
            offset = 0
            for p in params:
                p.sub_(group["lr"] * u[offset:offset + p.numel()].view_as(p))
                offset += p.numel()
        return loss

    def state_dict(self):
        state = super().state_dict()
        state["mfac_windows"] = {i: {"grads": inv.grads.clone(), "next": inv._next}
                                 for i, inv in self._inverses.items()}
        return state

    def load_state_dict(self, state_dict):
        state_dict = dict(state_dict)
        windows = state_dict.pop("mfac_windows", {})
        super().load_state_dict(state_dict)
        self._inverses = {}
        for index, window in windows.items():
            group = self.param_groups[int(index)]
            inverse = MFACInverseFisher(window["grads"], group["damp"])
            inverse._next = window["next"]
            self._inverses[int(index)] = inverse
