"""MetricGrids (Wang et al., CVPR 2025, arXiv 2503.10000): elementary metric grids for implicit neural
representations, in pure torch (spec §4), with the Instant-NGP baseline and the linear-only ablation.

* :class:`HashGrid`: a multiresolution hash grid following tiny-cuda-nn's ``Grid/Hash`` conventions (per-level
  scale ``N0 b^l - 1``, cell ``floor(x scale + 0.5)``, dense levels while ``res^D <= T`` with sizes rounded up to a
  multiple of 8, the ``(1, 2654435761, 805459861)`` spatial hash, uint32 wrap of negative cells emulated in int64,
  output ordered level 0 first). One flat table, gathered by ``index_select`` (backward: one scatter-add).
* :class:`MetricGridsINR`: three metric maps (linear, sine, arcsine) indexing ONE shared table (the released
  code) or three separate tables (the paper's wording; ``shared_table=False``), summed, then the
  sin^2-modulated SIREN decoder of the released ``img_sdf/ngp.py``.
* :class:`InstantNGP`: the same hash grid + a ReLU MLP (2 x 64) on the linear map only.

The paper's tables were not retrievable (spec §4.3): the reproduction compares only with the spec's CPU-scale
measurements, marked as such.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from sciml.core import check_floating

PRIMES = (1, 2654435761, 805459861)  # tiny-cuda-nn's spatial hash
UINT32 = 0xFFFFFFFF

METRIC_MAPS = {
    "linear": lambda x: (x + 1) / 2,                                                  # [0, 1]
    "sine": lambda x: (torch.sin(x) - math.sin(1.0)) / (2 * math.sin(1.0)),           # [-1, 0]
    "arcsine": lambda x: (torch.asin(x) - 1.5 * math.pi) / (2 * math.pi),             # [-1, -0.5]
}


class HashGrid(nn.Module):
    """Multiresolution hash encoding ``phi (N, D) -> (N, L F)``, tiny-cuda-nn conventions (spec §4.2).

    Args:
        dim: input dimension D (2 or 3). n_levels: L. n_features: F per level. log2_table: log2 T.
        base_resolution: N0. finest_resolution: N_max (growth ``b = exp((ln N_max - ln N0) / (L - 1))``).
    Inputs may leave [0, 1] (the nonlinear metric maps do): cells are integers and wrap modulo 2^32 as in tcnn.
    """

    def __init__(self, dim: int = 2, n_levels: int = 13, n_features: int = 2, log2_table: int = 11,
                 base_resolution: int = 16, finest_resolution: int = 64, dtype: torch.dtype = torch.float32,
                 device=None, generator: torch.Generator | None = None) -> None:
        super().__init__()
        if dim not in (1, 2, 3):
            raise ValueError(f"dim must be 1, 2 or 3, got {dim!r}")
        for name, value in (("n_levels", n_levels), ("n_features", n_features), ("log2_table", log2_table),
                            ("base_resolution", base_resolution), ("finest_resolution", finest_resolution)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        if finest_resolution < base_resolution:
            raise ValueError("finest_resolution must be >= base_resolution")
        self.dim, self.n_levels, self.n_features = dim, n_levels, n_features
        T = 2 ** log2_table
        growth = math.exp((math.log(finest_resolution) - math.log(base_resolution)) / max(n_levels - 1, 1))
        self.scales, self.resolutions, self.sizes, self.dense, self.offsets = [], [], [], [], []
        offset = 0
        for level in range(n_levels):
            scale = base_resolution * growth ** level - 1.0
            res = math.ceil(scale) + 1
            dense = res ** dim <= T
            size = min(T, math.ceil(res ** dim / 8) * 8)
            self.scales.append(scale)
            self.resolutions.append(res)
            self.sizes.append(size)
            self.dense.append(dense)
            self.offsets.append(offset)
            offset += size
        table = torch.rand(offset, n_features, generator=generator, dtype=dtype) * 2e-4 - 1e-4
        self.table = nn.Parameter(table.to(device))  # U(-1e-4, 1e-4), tcnn's init
        corners = torch.tensor([[(c >> d) & 1 for d in range(dim)] for c in range(2 ** dim)], dtype=torch.int64)
        self.register_buffer("corners", corners, persistent=False)  # (2^D, D)

    @property
    def output_dim(self) -> int:
        return self.n_levels * self.n_features

    def level_indices(self, cells: torch.Tensor, level: int) -> torch.Tensor:
        """Table rows (within the level) of integer cells (..., D), exactly as tcnn computes them."""
        cells = cells & UINT32  # uint32 wrap of negative cells
        if self.dense[level]:
            res = self.resolutions[level]
            idx = torch.zeros_like(cells[..., 0])
            stride = 1
            for d in range(self.dim):
                idx = (idx + cells[..., d] * stride) & UINT32
                stride *= res
        else:
            idx = torch.zeros_like(cells[..., 0])
            for d in range(self.dim):
                idx = idx ^ ((cells[..., d] * PRIMES[d]) & UINT32)  # int64 products wrap; the low 32 bits are right
        return idx % self.sizes[level]

    def forward(self, phi: torch.Tensor) -> torch.Tensor:
        check_floating(phi, "phi")
        if phi.ndim != 2 or phi.shape[1] != self.dim:
            raise ValueError(f"phi must be (N, {self.dim}), got {tuple(phi.shape)}")
        phi = phi.to(self.table.dtype)
        outputs = []
        for level in range(self.n_levels):
            pos = phi * self.scales[level] + 0.5
            cell = torch.floor(pos)
            frac = pos - cell                                          # (N, D)
            cells = cell.to(torch.int64)[:, None, :] + self.corners    # (N, 2^D, D)
            weights = torch.where(self.corners.bool(), frac[:, None, :], 1 - frac[:, None, :]).prod(-1)  # (N, 2^D)
            rows = self.level_indices(cells, level) + self.offsets[level]
            feats = self.table.index_select(0, rows.reshape(-1)).reshape(*rows.shape, self.n_features)
            outputs.append((weights[..., None] * feats).sum(1))        # (N, F)
        return torch.cat(outputs, dim=1)                               # level 0 first


def _siren_init_(layer: nn.Linear, omega0: float, first: bool) -> None:
    fan_in = layer.in_features
    bound = 1 / fan_in if first else math.sqrt(6 / fan_in) / omega0
    with torch.no_grad():
        layer.weight.uniform_(-bound, bound)
        layer.bias.uniform_(-bound, bound)


class MetricGridsINR(nn.Module):
    """MetricGrids image INR: metric-mapped hash grids + the high-order (sin^2-modulated SIREN) decoder.

    Args:
        metrics: metric maps, a subset of ("linear", "sine", "arcsine") (the ablation uses ("linear",)).
        shared_table: True = one hash table for all maps (released code), False = one table per map (paper text).
        hidden, n_layers (decoder layers incl. the head), omega0, out_dim; grid options as :class:`HashGrid`.
    Input: coordinates x in [-1, 1]^2 (N, 2). Output (N, out_dim).
    """

    def __init__(self, metrics: tuple[str, ...] = ("linear", "sine", "arcsine"), shared_table: bool = True,
                 log2_table: int = 11, finest_resolution: int = 64, n_levels: int = 13, n_features: int = 2,
                 base_resolution: int = 16, hidden: int = 64, n_layers: int = 5, omega0: float = 30.0,
                 out_dim: int = 3, generator: torch.Generator | None = None) -> None:
        super().__init__()
        unknown = [m for m in metrics if m not in METRIC_MAPS]
        if unknown or not metrics:
            raise ValueError(f"metrics must be a non-empty subset of {tuple(METRIC_MAPS)}, got {metrics!r}")
        self.metrics, self.omega0 = tuple(metrics), float(omega0)
        grid_args = dict(dim=2, n_levels=n_levels, n_features=n_features, log2_table=log2_table,
                         base_resolution=base_resolution, finest_resolution=finest_resolution, generator=generator)
        n_tables = 1 if shared_table else len(metrics)
        self.grids = nn.ModuleList(HashGrid(**grid_args) for _ in range(n_tables))
        feat = self.grids[0].output_dim
        depth = n_layers - 1
        self.layers = nn.ModuleList(nn.Linear(feat if i == 0 else hidden, hidden) for i in range(depth))
        self.modulators = nn.ModuleList(nn.Linear(2 if i == 0 else feat, hidden) for i in range(depth))
        self.head = nn.Linear(hidden, out_dim)
        for i, layer in enumerate(self.layers):
            _siren_init_(layer, self.omega0, first=i == 0)
        _siren_init_(self.head, self.omega0, first=False)

    def grid_features(self, x: torch.Tensor) -> list[torch.Tensor]:
        return [self.grids[min(i, len(self.grids) - 1)](METRIC_MAPS[name](x)) for i, name in enumerate(self.metrics)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        E = self.grid_features(x)
        h = sum(E)
        for i, (layer, mod) in enumerate(zip(self.layers, self.modulators)):
            source = (x + 1) / 2 if i == 0 else E[min(i, len(E)) - 1]  # layer i >= 1 sees the i-th grid (last reused)
            h = torch.sin(self.omega0 * mod(source)) ** 2 * torch.sin(self.omega0 * layer(h))
        return self.head(h)


class InstantNGP(nn.Module):
    """Instant-NGP baseline: the hash grid on ``(x + 1) / 2`` and a ReLU MLP with two hidden layers of 64."""

    def __init__(self, log2_table: int = 11, finest_resolution: int = 64, n_levels: int = 13, n_features: int = 2,
                 base_resolution: int = 16, hidden: int = 64, out_dim: int = 3,
                 generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.grid = HashGrid(2, n_levels, n_features, log2_table, base_resolution, finest_resolution,
                             generator=generator)
        self.mlp = nn.Sequential(nn.Linear(self.grid.output_dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden),
                                 nn.ReLU(), nn.Linear(hidden, out_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.grid((x + 1) / 2))


def pixel_coordinates(height: int, width: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Pixel centres mapped per axis to [-1, 1] (align_corners=False), (H W, 2) with x = column, y = row."""
    xs = (2 * torch.arange(width, dtype=dtype) + 1) / width - 1
    ys = (2 * torch.arange(height, dtype=dtype) + 1) / height - 1
    yy, xx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([xx, yy], dim=-1).reshape(-1, 2)


def psnr(prediction: torch.Tensor, target: torch.Tensor) -> float:
    """PSNR (dB, peak 1) of ``clamp(prediction, 0, 1)`` against target in [0, 1]."""
    mse = float((prediction.clamp(0, 1) - target).pow(2).mean())
    return math.inf if mse == 0 else -10 * math.log10(mse)


def load_test_image(size: int = 128, name: str = "auto") -> tuple[torch.Tensor, str]:
    """A bundled RGB test image resized (anti-aliased) to size x size, float32 in [0, 1], and its name.

    "astronaut" needs scikit-image (bundled in its wheel); "china" is scikit-learn's bundled photo (centre-cropped
    to a square); "auto" takes astronaut when scikit-image is installed, else china.
    """
    if name not in ("auto", "astronaut", "china"):
        raise ValueError(f"name must be 'auto', 'astronaut' or 'china', got {name!r}")
    if name in ("auto", "astronaut"):
        try:
            from skimage import data as skdata

            image, name = skdata.astronaut(), "astronaut"
        except ImportError:
            if name == "astronaut":
                raise ImportError("the astronaut image needs scikit-image (pip install scikit-image)") from None
            name = "china"
    if name == "china":
        from sklearn.datasets import load_sample_image

        image = load_sample_image("china.jpg")
        h, w = image.shape[:2]
        side = min(h, w)
        image = image[(h - side) // 2:(h - side) // 2 + side, (w - side) // 2:(w - side) // 2 + side]
    tensor = torch.from_numpy(image.astype("float32") / 255.0).permute(2, 0, 1)[None]
    resized = torch.nn.functional.interpolate(tensor, size=(size, size), mode="bilinear", antialias=True,
                                              align_corners=False)
    return resized[0].permute(1, 2, 0).clamp(0, 1).contiguous(), name


def fit_image(model: nn.Module, image: torch.Tensor, steps: int, lr: float = 1e-3) -> list[float]:
    """Full-batch fit of an (H, W, 3) image (the released trainer: Adam betas (0.9, 0.99), eps 1e-15, cosine decay
    to lr / 100). Returns the PSNR after every step's update, measured on the full image."""
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be an int >= 1, got {steps!r}")
    H, W, C = image.shape
    coords = pixel_coordinates(H, W)
    target = image.reshape(-1, C)
    opt = torch.optim.Adam(model.parameters(), lr=lr, betas=(0.9, 0.99), eps=1e-15)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps, eta_min=lr / 100)
    history = []
    for _ in range(steps):
        opt.zero_grad()
        out = model(coords)
        loss = (out - target).pow(2).mean()
        loss.backward()
        opt.step()
        sched.step()
        history.append(psnr(out.detach(), target))
    return history
