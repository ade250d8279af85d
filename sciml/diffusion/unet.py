"""A small convolutional UNet noise-prediction network for images (tens of thousands of parameters, CPU-trainable).

``TinyUNet(channels, base)`` maps ``(B, C, H, W)`` images and ``(B,)`` times to a noise prediction of the same shape.
Two resolutions (H x W and H/2 x W/2), one residual block per level, a residual middle block and one skip
connection: the architecture of Ho et al. 2020 (DDPM, arXiv 2006.11239, App. B) cut down to the smallest version
that still has the UNet's multi-scale structure, so that it trains on 16 x 16 digits in minutes on one core.

Each residual block is GroupNorm -> SiLU -> 3x3 conv, plus the time embedding (sinusoidal, then a 2-layer MLP)
projected to a per-channel bias, then GroupNorm -> SiLU -> 3x3 conv, and a 1x1 conv on the shortcut when the
channel count changes. The last conv is zero-initialised (as in DDPM), so an untrained network predicts eps = 0.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from sciml.diffusion.networks import seeded_default_init, sinusoidal_embedding


def _groups(channels: int) -> int:
    """The largest of 8, 4, 2, 1 that divides ``channels`` (GroupNorm needs a divisor)."""
    return next(g for g in (8, 4, 2, 1) if channels % g == 0)


class _ResBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, t_dim: int) -> None:
        super().__init__()
        self.norm1, self.conv1 = nn.GroupNorm(_groups(c_in), c_in), nn.Conv2d(c_in, c_out, 3, padding=1)
        self.time = nn.Linear(t_dim, c_out)
        self.norm2, self.conv2 = nn.GroupNorm(_groups(c_out), c_out), nn.Conv2d(c_out, c_out, 3, padding=1)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x))) + self.time(temb)[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h)))
        return h + self.skip(x)


class TinyUNet(nn.Module):
    """``eps_theta(x, t)`` for images: (B, C, H, W) x (B,) -> (B, C, H, W); H and W must be even.

    Args:
        channels: image channels C.
        base: channels at full resolution (twice that at half resolution). base = 16: ~57 k parameters.
        t_dim: sinusoidal embedding size (even).
        t_scale: times are multiplied by this before the embedding (1 for integer DDPM steps).
        generator: initialises the weights reproducibly (PyTorch's default ranges, drawn from ``generator``).
    """

    def __init__(self, channels: int = 1, base: int = 16, t_dim: int = 32, t_scale: float = 1.0,
                 generator: torch.Generator | None = None) -> None:
        super().__init__()
        if channels < 1 or base < 2 or t_dim < 2 or t_dim % 2:
            raise ValueError(f"need channels >= 1, base >= 2 and an even t_dim >= 2; got {channels}, {base}, {t_dim}")
        self.t_dim, self.t_scale = t_dim, t_scale
        self.time = nn.Sequential(nn.Linear(t_dim, 2 * t_dim), nn.SiLU(), nn.Linear(2 * t_dim, 2 * t_dim))
        td = 2 * t_dim
        self.conv_in = nn.Conv2d(channels, base, 3, padding=1)
        self.down = _ResBlock(base, base, td)
        self.pool = nn.Conv2d(base, base, 3, stride=2, padding=1)
        self.low = _ResBlock(base, 2 * base, td)
        self.mid = _ResBlock(2 * base, 2 * base, td)
        self.up = _ResBlock(3 * base, base, td)          # upsampled low path concatenated with the skip
        self.norm_out = nn.GroupNorm(_groups(base), base)
        self.conv_out = nn.Conv2d(base, channels, 3, padding=1)
        seeded_default_init(self, generator)
        with torch.no_grad():
            self.conv_out.weight.zero_()
            self.conv_out.bias.zero_()

    def embed(self, t: torch.Tensor) -> torch.Tensor:
        return sinusoidal_embedding(t, self.t_dim, self.t_scale)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[-1] % 2 or x.shape[-2] % 2:
            raise ValueError(f"TinyUNet needs (B, C, H, W) input with even H and W, got {tuple(x.shape)}")
        dtype = x.dtype
        temb = self.time(self.embed(t.reshape(-1).expand(x.shape[0])))
        skip = self.down(self.conv_in(x.float()), temb)
        low = self.mid(self.low(self.pool(skip), temb), temb)
        up = F.interpolate(low, scale_factor=2, mode="nearest")
        h = self.up(torch.cat([up, skip], dim=1), temb)
        return self.conv_out(F.silu(self.norm_out(h))).to(dtype)
