"""A small sequence model built from S4D / S5 layers, and the usual optimiser parameter groups.

Reference: the S4/S4D example model (state-spaces/s4 ``example.py``: encoder, [SSM -> GELU -> dropout ->
Conv1x1 -> GLU, residual, norm] x n_layers, mean pooling, decoder) and its ``_optim`` convention (SSM parameters:
small lr, no weight decay).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import torch
from torch import nn

from sciml.ssm.layers import S4D, S5

LAYERS = {"s4d": S4D, "s5": S5}

# A perturbation applied to the input of every SSM layer: (layer, z (batch, L, H)) -> z'.
Perturb = Callable[[nn.Module, torch.Tensor], torch.Tensor]


class SSMBlock(nn.Module):
    """z = norm(x) (prenorm); z = GLU(Linear(H, 2H)(dropout(GELU(SSM(z))))); x = x + z; norm(x) (postnorm).

    Shapes: (batch, L, H) -> (batch, L, H); ``step``: (batch, H) -> (batch, H).
    """

    def __init__(self, ssm: nn.Module, d_model: int, dropout: float = 0.0, prenorm: bool = False,
                 dtype: torch.dtype | None = None, device: torch.device | str | None = None) -> None:
        super().__init__()
        self.ssm = ssm
        self.mix = nn.Linear(d_model, 2 * d_model, dtype=dtype, device=device)
        self.norm = nn.LayerNorm(d_model, dtype=dtype, device=device)
        self.drop = nn.Dropout(dropout)
        self.prenorm = prenorm

    def _post(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        z = nn.functional.glu(self.mix(self.drop(nn.functional.gelu(z))), dim=-1)
        x = x + z
        return x if self.prenorm else self.norm(x)

    def forward(self, x: torch.Tensor, perturb: Perturb | None = None, state: torch.Tensor | None = None,
                return_state: bool = False) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        z = self.norm(x) if self.prenorm else x
        if perturb is not None:
            z = perturb(self.ssm, z)
        if return_state or state is not None:
            z, new_state = self.ssm(z, state=state, return_state=True)
            out = self._post(x, z)
            return (out, new_state) if return_state else out
        return self._post(x, self.ssm(z))

    def step(self, x_t: torch.Tensor, state: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.norm(x_t) if self.prenorm else x_t
        z, state = self.ssm.step(z, state)
        return self._post(x_t, z), state


@dataclasses.dataclass(frozen=True)
class SequenceState:
    """Recurrent state of a SequenceModel after some steps.

    Attributes:
        layers: one SSM state per block ((batch, H, M) for S4D, (batch, M) for S5).
        pooled: (batch, H) sum of the last block's outputs so far (mean pooling) or the last one ("last").
        length: number of steps consumed.
    """

    layers: tuple[torch.Tensor, ...]
    pooled: torch.Tensor
    length: int


class SequenceModel(nn.Module):
    """Encoder Linear(d_input, H) -> n_layers SSMBlocks -> pool over time -> Linear(H, d_output).

    ``forward(x, return_state=True)`` also returns a SequenceState; ``step(x_t, state)`` consumes one more time
    step and returns the model output for the whole prefix so far (what ``forward`` gives for that prefix), so a
    prompt can be processed in parallel and continued step by step.

    Args:
        d_input, d_output: input features per step and number of outputs (classes).
        d_model: H.  n_layers: number of blocks.  layer: "s4d" | "s5".
        dropout, prenorm: block options.
        pool: "mean" over time or "last" step (causal readout for recall tasks).
        dtype, device: of all parameters.
        generator: for the SSM layers' initialisation (linear layers use torch's default init).
        **layer_kwargs: passed to S4D / S5 (d_state, init, discretization, dt_min, dt_max, bidirectional, ...).

    Shapes: forward x (batch, L, d_input) -> (batch, d_output); step x_t (batch, d_input) -> (batch, d_output).
    """

    def __init__(self, d_input: int, d_output: int, d_model: int = 64, n_layers: int = 2, layer: str = "s4d",
                 dropout: float = 0.0, prenorm: bool = False, pool: str = "mean",
                 dtype: torch.dtype = torch.float32, device: torch.device | str | None = None,
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
        kw = dict(dtype=dtype, device=device)
        self.encoder = nn.Linear(d_input, d_model, **kw)
        self.blocks = nn.ModuleList(
            SSMBlock(LAYERS[layer](d_model, generator=generator, **kw, **layer_kwargs), d_model, dropout, prenorm,
                     **kw)
            for _ in range(n_layers))
        self.decoder = nn.Linear(d_model, d_output, **kw)

    def _check(self, x: torch.Tensor, ndim: int) -> None:
        if not isinstance(x, torch.Tensor) or not x.is_floating_point():
            raise ValueError(f"x must be a real floating-point tensor, got {getattr(x, 'dtype', type(x))}")
        shape = "(batch, length, d_input" if ndim == 3 else "(batch, d_input"
        if x.ndim != ndim or x.shape[-1] != self.d_input:
            raise ValueError(f"x must have shape {shape}={self.d_input}), got {tuple(x.shape)}")

    def forward(self, x: torch.Tensor, perturb: Perturb | None = None,
                return_state: bool = False) -> torch.Tensor | tuple[torch.Tensor, SequenceState]:
        self._check(x, 3)
        h = self.encoder(x)
        states = []
        for block in self.blocks:
            if return_state:
                h, st = block(h, perturb, return_state=True)
                states.append(st)
            else:
                h = block(h, perturb)
        pooled = h.sum(dim=1) if self.pool == "mean" else h[:, -1]
        out = self.decoder(pooled / x.shape[1] if self.pool == "mean" else pooled)
        return (out, SequenceState(tuple(states), pooled, x.shape[1])) if return_state else out

    def step(self, x_t: torch.Tensor, state: SequenceState | None = None) -> tuple[torch.Tensor, SequenceState]:
        """One more time step. Shapes: x_t (batch, d_input) -> (output (batch, d_output), new state)."""
        self._check(x_t, 2)
        h = self.encoder(x_t)
        layer_states = (None,) * len(self.blocks) if state is None else state.layers
        new = []
        for block, st in zip(self.blocks, layer_states):
            h, st = block.step(h, st)
            new.append(st)
        n = 1 if state is None else state.length + 1
        pooled = h if self.pool == "last" else (h if state is None else state.pooled + h)
        out = self.decoder(pooled / n if self.pool == "mean" else pooled)
        return out, SequenceState(tuple(new), pooled, n)


def ssm_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The SSM parameters (A, B, dt) of every layer in ``model``: those named in a module's ``SSM_PARAMETERS``
    (plus any parameter carrying a truthy ``_ssm`` attribute, for user layers)."""
    seen, out = set(), []
    for module in model.modules():
        for name in getattr(module, "SSM_PARAMETERS", ()):
            p = getattr(module, name, None)
            if isinstance(p, nn.Parameter) and id(p) not in seen:
                seen.add(id(p))
                out.append(p)
    for p in model.parameters():
        if getattr(p, "_ssm", False) and id(p) not in seen:
            seen.add(id(p))
            out.append(p)
    return out


def ssm_param_groups(model: nn.Module, lr: float, ssm_lr: float, weight_decay: float) -> list[dict]:
    """Optimiser groups: SSM parameters (A, B, dt) get ``ssm_lr`` and no weight decay; other matrices get
    ``lr`` and ``weight_decay``; vectors (biases, norms, D) get ``lr`` and no weight decay. Frozen parameters
    are left out. Works after ``copy.deepcopy`` / pickling (the SSM parameters are found by name).

    Reference: S4/S4D/S5 convention (state-spaces/s4 ``example.py::setup_optimizer``; S5 ``ssm_lr``).

    Returns:
        A list of torch.optim param-group dicts (empty groups dropped).
    """
    for name, value in (("lr", lr), ("ssm_lr", ssm_lr)):
        if not value > 0:
            raise ValueError(f"{name} must be > 0, got {value!r}")
    if weight_decay < 0:
        raise ValueError(f"weight_decay must be >= 0, got {weight_decay!r}")
    ssm_ids = {id(p) for p in ssm_parameters(model)}
    ssm, decay, no_decay = [], [], []
    for p in model.parameters():
        if not p.requires_grad:
            continue
        if id(p) in ssm_ids:
            ssm.append(p)
        elif p.ndim >= 2:
            decay.append(p)
        else:
            no_decay.append(p)
    groups = [{"params": ssm, "lr": ssm_lr, "weight_decay": 0.0},
              {"params": decay, "lr": lr, "weight_decay": weight_decay},
              {"params": no_decay, "lr": lr, "weight_decay": 0.0}]
    return [g for g in groups if g["params"]]
