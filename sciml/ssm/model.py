"""A small sequence model built from S4D / S5 layers, and the usual optimiser parameter groups.

Reference: the S4/S4D example model (state-spaces/s4 ``example.py``: encoder, [SSM -> GELU -> dropout ->
Conv1x1 -> GLU, residual, norm] x n_layers, mean pooling, decoder) and its ``_optim`` convention (SSM parameters:
small lr, no weight decay).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from sciml.core import check_floating
from sciml.ssm.layers import S4D, S5

LAYERS = {"s4d": S4D, "s5": S5}

# A perturbation applied to the input of every SSM layer: (layer, z (batch, L, H)) -> z'.
Perturb = Callable[[nn.Module, torch.Tensor], torch.Tensor]


class SSMBlock(nn.Module):
    """z = norm(x) (prenorm); z = GLU(Linear(H, 2H)(dropout(GELU(SSM(z))))); x = x + z; norm(x) (postnorm).

    Shapes: (batch, L, H) -> (batch, L, H).
    """

    def __init__(self, ssm: nn.Module, d_model: int, dropout: float = 0.0, prenorm: bool = False) -> None:
        super().__init__()
        self.ssm = ssm
        self.mix = nn.Linear(d_model, 2 * d_model)
        self.norm = nn.LayerNorm(d_model)
        self.drop = nn.Dropout(dropout)
        self.prenorm = prenorm

    def forward(self, x: torch.Tensor, perturb: Perturb | None = None) -> torch.Tensor:
        z = self.norm(x) if self.prenorm else x
        if perturb is not None:
            z = perturb(self.ssm, z)
        z = self.drop(nn.functional.gelu(self.ssm(z)))
        z = nn.functional.glu(self.mix(z), dim=-1)
        x = x + z
        return x if self.prenorm else self.norm(x)


class SequenceModel(nn.Module):
    """Encoder Linear(d_input, H) -> n_layers SSMBlocks -> pool over time -> Linear(H, d_output).

    Args:
        d_input, d_output: input features per step and number of outputs (classes).
        d_model: H.  n_layers: number of blocks.  layer: "s4d" | "s5".
        dropout, prenorm: block options.
        pool: "mean" over time or "last" step (causal readout for recall tasks).
        generator: for the SSM layers' initialisation (linear layers use torch's default init).
        **layer_kwargs: passed to S4D / S5 (d_state, init, discretization, dt_min, dt_max, ...).

    Shapes: forward x (batch, L, d_input) -> (batch, d_output).
    """

    def __init__(self, d_input: int, d_output: int, d_model: int = 64, n_layers: int = 2, layer: str = "s4d",
                 dropout: float = 0.0, prenorm: bool = False, pool: str = "mean",
                 generator: torch.Generator | None = None, **layer_kwargs) -> None:
        super().__init__()
        if layer not in LAYERS:
            raise ValueError(f"layer must be one of {sorted(LAYERS)}, got {layer!r}")
        if pool not in ("mean", "last"):
            raise ValueError(f"pool must be 'mean' or 'last', got {pool!r}")
        self.pool = pool
        for name, value in (("d_input", d_input), ("d_output", d_output), ("n_layers", n_layers)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        self.d_input = d_input
        self.encoder = nn.Linear(d_input, d_model)
        self.blocks = nn.ModuleList(
            SSMBlock(LAYERS[layer](d_model, generator=generator, **layer_kwargs), d_model, dropout, prenorm)
            for _ in range(n_layers))
        self.decoder = nn.Linear(d_model, d_output)

    def forward(self, x: torch.Tensor, perturb: Perturb | None = None) -> torch.Tensor:
        check_floating(x, "x")
        if x.ndim != 3 or x.shape[-1] != self.d_input:
            raise ValueError(f"x must have shape (batch, length, d_input={self.d_input}), got {tuple(x.shape)}")
        h = self.encoder(x)
        for block in self.blocks:
            h = block(h, perturb)
        return self.decoder(h.mean(dim=1) if self.pool == "mean" else h[:, -1])


def ssm_param_groups(model: nn.Module, lr: float, ssm_lr: float, weight_decay: float) -> list[dict]:
    """Optimiser groups: SSM parameters (A, B, dt) get ``ssm_lr`` and no weight decay; other matrices get
    ``lr`` and ``weight_decay``; vectors (biases, norms, D) get ``lr`` and no weight decay. Frozen parameters
    are left out.

    Reference: S4/S4D/S5 convention (state-spaces/s4 ``example.py::setup_optimizer``; S5 ``ssm_lr``).

    Returns:
        A list of torch.optim param-group dicts (empty groups dropped).
    """
    for name, value in (("lr", lr), ("ssm_lr", ssm_lr)):
        if not value > 0:
            raise ValueError(f"{name} must be > 0, got {value!r}")
    if weight_decay < 0:
        raise ValueError(f"weight_decay must be >= 0, got {weight_decay!r}")
    ssm, decay, no_decay = [], [], []
    for p in model.parameters():
        if not p.requires_grad:
            continue
        if getattr(p, "_ssm", False):
            ssm.append(p)
        elif p.ndim >= 2:
            decay.append(p)
        else:
            no_decay.append(p)
    groups = [{"params": ssm, "lr": ssm_lr, "weight_decay": 0.0},
              {"params": decay, "lr": lr, "weight_decay": weight_decay},
              {"params": no_decay, "lr": lr, "weight_decay": 0.0}]
    return [g for g in groups if g["params"]]
