"""A small MLP noise-prediction network and a DDPM training loop (for the learned-score benchmark).

Reference: Ho et al. 2020 (DDPM, arXiv 2006.11239), the simple loss ``|eps - eps_theta(x_t, t)|²`` with t uniform
over the T training steps; sinusoidal time embedding as in Vaswani et al. 2017. Sizes follow the spec's digits
benchmark (64 -> 256 wide, 4 residual SiLU-Linear blocks, 64-dim time embedding, ~0.38 M parameters).
"""

from __future__ import annotations

import copy
import dataclasses
import math

import torch
from torch import nn

from sciml.core import Result, Status, check_floating, check_generator, report_status

def seeded_default_init(model: nn.Module, generator: torch.Generator) -> None:
    """PyTorch's default ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))`` for every Linear/Conv2d weight and bias of
    ``model``, drawn from ``generator`` so that a network is reproducible independently of the global seed."""
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (nn.Linear, nn.Conv2d)):
                bound = 1.0 / math.sqrt(module.weight[0].numel())
                module.weight.uniform_(-bound, bound, generator=generator)
                module.bias.uniform_(-bound, bound, generator=generator)


def sinusoidal_embedding(t: torch.Tensor, t_dim: int, t_scale: float) -> torch.Tensor:
    """Transformer-style time features ``[sin(t s f_k), cos(t s f_k)]``, f_k = 10000^(-k/half), in float32."""
    half = t_dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = (t.float() * t_scale)[:, None] * freqs[None]
    return torch.cat([torch.sin(args), torch.cos(args)], dim=1)



class EpsMLP(nn.Module):
    """``eps_theta(x, t)`` for flat data: (B, dim) x (B,) -> (B, dim).

    Args:
        dim: data dimension.
        width: hidden width.
        n_blocks: residual SiLU-Linear blocks.
        t_dim: sinusoidal embedding size.
        t_scale: time values are multiplied by this before the embedding (1 for integer DDPM timesteps,
            1000 for continuous t in [0, 1]).
        generator: initialises the weights reproducibly (PyTorch's default Linear ranges).
    """

    def __init__(self, dim: int, width: int = 256, n_blocks: int = 4, t_dim: int = 64, t_scale: float = 1.0,
                 generator: torch.Generator | None = None) -> None:
        super().__init__()
        if dim < 1 or width < 1 or n_blocks < 0 or t_dim < 2 or t_dim % 2:
            raise ValueError(f"need dim, width >= 1, n_blocks >= 0 and an even t_dim >= 2; got "
                             f"{dim}, {width}, {n_blocks}, {t_dim}")
        self.t_dim, self.t_scale = t_dim, t_scale
        self.time = nn.Sequential(nn.Linear(t_dim, width), nn.SiLU(), nn.Linear(width, width))
        self.inp = nn.Linear(dim, width)
        self.blocks = nn.ModuleList(nn.Sequential(nn.SiLU(), nn.Linear(width, width)) for _ in range(n_blocks))
        self.out = nn.Sequential(nn.SiLU(), nn.Linear(width, dim))
        seeded_default_init(self, generator)

    def embed(self, t: torch.Tensor) -> torch.Tensor:
        return sinusoidal_embedding(t, self.t_dim, self.t_scale)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        dtype = x.dtype
        h = self.inp(x.float()) + self.time(self.embed(t.reshape(-1).expand(x.shape[0])))
        for block in self.blocks:
            h = h + block(h)
        return self.out(h).to(dtype)


@dataclasses.dataclass(frozen=True)
class TrainResult(Result):
    """The EMA model, the raw model, the loss curve (one value per step) and the status."""

    model: nn.Module
    raw_model: nn.Module
    losses: torch.Tensor
    status: Status


def train_eps_model(model: nn.Module, data: torch.Tensor, schedule, steps: int = 6000, batch_size: int = 256,
                    lr: float = 1e-3, ema: float = 0.999, generator: torch.Generator | None = None,
                    lr_schedule: str = "constant", warmup: int = 0) -> TrainResult:
    """Train ``model`` with the DDPM noise-prediction loss on a discrete schedule (Adam, EMA of weights).

    Args:
        model: an ``eps_theta(x, t)`` module (trained in place; the EMA copy is returned as ``.model``).
        data: (N, ...) training data (flat vectors or images).
        schedule: a discrete :class:`~sciml.diffusion.VPSchedule` (t is drawn uniformly from 0..T-1).
        steps, batch_size, lr, ema: the spec's digits settings (6000, 256, 1e-3, 0.999); the EMA decay is
            warmed up as ``min(ema, (1 + k) / (10 + k))`` at step k (as diffusers' ``EMAModel``).
        generator: draws the batches, times and noise (on ``data``'s device).
        lr_schedule: ``"constant"`` or ``"cosine"`` (decay from ``lr`` to 0 over ``steps``, after ``warmup``
            linear warm-up steps): a short CPU run ends at a low lr, where the weights settle instead of
            jittering at the Adam noise level of a constant lr.
        warmup: linear warm-up steps (0 <= warmup < steps).

    Returns:
        :class:`TrainResult`; status NONFINITE (with a ConvergenceWarning) if the loss became NaN.
    """
    check_floating(data, "data")
    if getattr(schedule, "kind", None) != "discrete":
        raise ValueError("train_eps_model needs a discrete VPSchedule (e.g. VPSchedule.ddpm_linear())")
    if steps < 1 or batch_size < 1 or not lr > 0 or not 0 <= ema < 1:
        raise ValueError(f"need steps, batch_size >= 1, lr > 0, 0 <= ema < 1; got {steps}, {batch_size}, {lr}, {ema}")
    if lr_schedule not in ("constant", "cosine"):
        raise ValueError(f"lr_schedule must be 'constant' or 'cosine', got {lr_schedule!r}")
    if not 0 <= warmup < steps:
        raise ValueError(f"warmup must be in [0, steps), got {warmup} with steps = {steps}")
    check_generator(generator, data.device)
    acp = torch.tensor(schedule.alphas_cumprod, dtype=data.dtype, device=data.device)
    T = acp.shape[0]
    ema_model = copy.deepcopy(model)
    for p in ema_model.parameters():
        p.requires_grad_(False)
    opt = torch.optim.Adam(model.parameters(), lr=lr)

    def lr_factor(k: int) -> float:
        if k < warmup:
            return (k + 1) / warmup
        if lr_schedule == "constant":
            return 1.0
        return 0.5 * (1.0 + math.cos(math.pi * (k - warmup) / (steps - warmup)))

    scheduler = torch.optim.lr_scheduler.LambdaLR(opt, lr_factor)
    losses = torch.empty(steps)
    status = Status.CONVERGED
    for step in range(steps):
        idx = torch.randint(0, data.shape[0], (batch_size,), device=data.device, generator=generator)
        t = torch.randint(0, T, (batch_size,), device=data.device, generator=generator)
        noise = torch.randn((batch_size,) + tuple(data.shape[1:]), dtype=data.dtype, device=data.device,
                            generator=generator)
        a2 = acp[t].reshape((-1,) + (1,) * (data.ndim - 1))
        x_t = a2.sqrt() * data[idx] + (1 - a2).sqrt() * noise
        loss = ((model(x_t, t.to(data.dtype)) - noise) ** 2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        scheduler.step()
        # EMA with the usual warm-up, min(ema, (1 + k) / (10 + k)): without it a short run's EMA would still be
        # mostly the random initial weights (0.999^800 = 45 %).
        decay = min(ema, (1.0 + step) / (10.0 + step))
        with torch.no_grad():
            for pe, p in zip(ema_model.parameters(), model.parameters()):
                pe.lerp_(p, 1.0 - decay)
        losses[step] = loss.detach()
        if not math.isfinite(float(losses[step])):
            status = Status.NONFINITE
            break
    report_status(status, "train_eps_model", f"step {step}")
    return TrainResult(model=ema_model.eval(), raw_model=model, losses=losses[: step + 1], status=status)
