"""Synthetic data with known truth for FunBaT: the spec's spatio-temporal tensor and the authors' 2-mode generator.

Reference: spec ``tensor.md`` §2.5 (generator of the CPU-scale benchmark) and the authors' notebook
``data/synthetic/simu_data_generate_CP_r1.ipynb`` (u₁(t) = sin²(2πt)cos(2πt), u₂(t) = e^{-2t} sin(1.5πt)).
"""

from __future__ import annotations

import dataclasses
import math

import torch

from sciml.core import Result


@dataclasses.dataclass(frozen=True)
class SyntheticTensor(Result):
    """Observations with their noise-free truth, split into train and test.

    Shapes: train_coords (N_train, K), train_values (N_train,), train_truth (N_train,), likewise for test;
    grids[k] (S_k,) the distinct coordinates the cells were drawn from.
    """

    train_coords: torch.Tensor
    train_values: torch.Tensor
    train_truth: torch.Tensor
    test_coords: torch.Tensor
    test_values: torch.Tensor
    test_truth: torch.Tensor
    grids: tuple[torch.Tensor, ...]
    noise_std: float


def spatiotemporal_factors(mode: int, s: torch.Tensor) -> torch.Tensor:
    """The true factor functions u^mode(s) of the spec's benchmark, shape (n, 2)."""
    pi = math.pi
    if mode == 0:
        return torch.stack([torch.sin(pi * s), torch.cos(2 * pi * s) * torch.exp(-s)], dim=-1)
    if mode == 1:
        return torch.stack([torch.cos(pi * s), 0.5 * torch.sin(3 * pi * s) + s], dim=-1)
    if mode == 2:
        return torch.stack([torch.sin(2 * pi * s) + 0.3, torch.cos(4 * pi * s) * torch.exp(-s)], dim=-1)
    raise ValueError(f"mode must be 0, 1 or 2, got {mode}")


def spatiotemporal_core(dtype: torch.dtype = torch.float64, device: torch.device | str = "cpu") -> torch.Tensor:
    """The spec's 2×2×2 core: W000 = 1.5, W111 = -1, W010 = 0.7, W101 = 0.5."""
    core = torch.zeros(2, 2, 2, dtype=dtype, device=device)
    core[0, 0, 0], core[1, 1, 1], core[0, 1, 0], core[1, 0, 1] = 1.5, -1.0, 0.7, 0.5
    return core


def spatiotemporal_truth(coords: torch.Tensor) -> torch.Tensor:
    """Noise-free f at coordinates (n, 3): W ×_k u^k(coords[:, k])."""
    core = spatiotemporal_core(coords.dtype, coords.device)
    u = [spatiotemporal_factors(k, coords[:, k]) for k in range(3)]
    return torch.einsum("abc,na,nb,nc->n", core, *u)


def spatiotemporal_tensor(n_obs: int = 8000, grid_sizes: tuple[int, int, int] = (30, 30, 100),
                          noise_std: float = 0.1, test_fraction: float = 0.2,
                          generator: torch.Generator | None = None, dtype: torch.dtype = torch.float64,
                          device: torch.device | str = "cpu") -> SyntheticTensor:
    """The spec's pollutant-like tensor over (latitude, longitude, time) on irregular grids in [0, 1].

    Distinct coordinates are sorted U(0, 1) draws (30, 30, 100); ``n_obs`` cells are drawn with replacement,
    y = f + noise_std · ε, and a random ``test_fraction`` is held out.
    """
    if n_obs < 10 or not 0 < test_fraction < 1 or noise_std < 0:
        raise ValueError(f"need n_obs >= 10, 0 < test_fraction < 1, noise_std >= 0; got {n_obs}, "
                         f"{test_fraction}, {noise_std}")
    kw = {"dtype": dtype, "device": device}
    grids = tuple(torch.sort(torch.rand(n, generator=generator, **kw))[0] for n in grid_sizes)
    cells = [torch.randint(0, n, (n_obs,), generator=generator, device=device) for n in grid_sizes]
    coords = torch.stack([g[c] for g, c in zip(grids, cells)], dim=-1)
    truth = spatiotemporal_truth(coords)
    values = truth + noise_std * torch.randn(n_obs, generator=generator, **kw)
    return _split(coords, values, truth, grids, noise_std, test_fraction, generator)


@dataclasses.dataclass(frozen=True)
class PriorDrawTensor(SyntheticTensor):
    """A :class:`SyntheticTensor` whose truth is a draw from FunBaT's own prior, with truth at extrapolated points.

    Shapes: extrap_coords (n_extrap, K), extrap_truth (n_extrap,); factors[k] (S_k, R) the drawn factor values at
    grids[k] and core (R, ..., R): the truth itself, e.g. to start a sampler at an exact posterior draw.
    """

    extrap_coords: torch.Tensor
    extrap_truth: torch.Tensor
    factors: tuple[torch.Tensor, ...] = ()
    core: torch.Tensor | None = None


def prior_draw_tensor(n_obs: int = 8000, grid_sizes: tuple[int, ...] = (30, 30, 100), rank: int = 2,
                      kernel: str = "matern32", lengthscale: float = 0.3, noise_std: float = 0.1,
                      n_extrap: int = 2000, extrap_span: float = 0.3, test_fraction: float = 0.2,
                      generator: torch.Generator | None = None) -> PriorDrawTensor:
    """Data the FunBaT model is exactly right for (the calibration check of issue 13).

    Every factor component u^k_j is drawn from the Matérn GP prior (variance 1, ``lengthscale``) jointly at the
    mode's distinct coordinates (sorted U(0, 1) draws) and at ``n_extrap`` extrapolation points, whose last mode
    lies in [1, 1 + extrap_span] (beyond the training range) and the others in U(0, 1); the core is N(0, I) and
    y = f + noise_std · ε. Under a correctly specified model a Bayesian 95% band covers 95% of the latent f in
    expectation over such draws; on a fixed smooth truth (the spec's benchmark) it need not.
    """
    from sciml.tensor.state_space import matern_kernel

    if n_obs < 10 or rank < 1 or not (0 < test_fraction < 1) or noise_std < 0 or n_extrap < 1 or extrap_span <= 0:
        raise ValueError(f"need n_obs >= 10, rank >= 1, 0 < test_fraction < 1, noise_std >= 0, n_extrap >= 1 and "
                         f"extrap_span > 0; got {n_obs}, {rank}, {test_fraction}, {noise_std}, {n_extrap}, "
                         f"{extrap_span}")
    kw = {"dtype": torch.float64}
    K = len(grid_sizes)
    grids = tuple(torch.sort(torch.rand(n, generator=generator, **kw))[0] for n in grid_sizes)
    extrap = torch.rand(n_extrap, K, generator=generator, **kw)
    extrap[:, -1] = 1.0 + extrap_span * extrap[:, -1]
    factors = []
    for k, grid in enumerate(grids):
        points = torch.cat([grid, extrap[:, k]])
        gram = matern_kernel(points[:, None] - points[None, :], kernel, lengthscale, 1.0)
        # a 1e-9 nugget: the Gram of ~2,000 points is numerically singular; it perturbs each draw by ~3e-5
        root = torch.linalg.cholesky(gram + 1e-9 * torch.eye(points.shape[0], **kw))
        factors.append(root @ torch.randn(points.shape[0], rank, generator=generator, **kw))
    core = torch.randn((rank,) * K, generator=generator, **kw)
    cells = [torch.randint(0, n, (n_obs,), generator=generator) for n in grid_sizes]
    coords = torch.stack([g[c] for g, c in zip(grids, cells)], dim=-1)
    truth = _tucker_eval(core, [u[c] for u, c in zip(factors, cells)])
    extrap_truth = _tucker_eval(core, [u[g.shape[0]:] for u, g in zip(factors, grids)])
    values = truth + noise_std * torch.randn(n_obs, generator=generator, **kw)
    split = _split(coords, values, truth, grids, noise_std, test_fraction, generator)
    return PriorDrawTensor(**{f.name: getattr(split, f.name) for f in dataclasses.fields(split)},
                           extrap_coords=extrap, extrap_truth=extrap_truth,
                           factors=tuple(u[:g.shape[0]] for u, g in zip(factors, grids)), core=core)


def _tucker_eval(core: torch.Tensor, rows: list[torch.Tensor]) -> torch.Tensor:
    """f_n = vec(core)ᵀ (rows[0][n] ⊗ ... ⊗ rows[K-1][n]), rows[k] of shape (n, r_k)."""
    z = rows[0]
    for u in rows[1:]:
        z = (z[:, :, None] * u[:, None, :]).reshape(z.shape[0], -1)
    return z @ core.reshape(-1)


def authors_cp_rank1(n_grids: int = 6, grid_size: int = 15, train_fraction: float = 0.5,
                     generator: torch.Generator | None = None, dtype: torch.dtype = torch.float64,
                     device: torch.device | str = "cpu") -> SyntheticTensor:
    """The authors' 2-mode rank-1 generator: f(x, y) = u₁(x) u₂(y) on six random 15×15 grids in [0, 1]², noise-free."""
    kw = {"dtype": dtype, "device": device}
    xs, ys = [], []
    for _ in range(n_grids):
        gx = torch.rand(grid_size, generator=generator, **kw)
        gy = torch.rand(grid_size, generator=generator, **kw)
        mx, my = torch.meshgrid(gx, gy, indexing="ij")
        xs.append(mx.reshape(-1))
        ys.append(my.reshape(-1))
    coords = torch.stack([torch.cat(xs), torch.cat(ys)], dim=-1)
    truth = authors_u1(coords[:, 0]) * authors_u2(coords[:, 1])
    grids = (torch.unique(coords[:, 0]), torch.unique(coords[:, 1]))
    return _split(coords, truth.clone(), truth, grids, 0.0, 1.0 - train_fraction, generator)


def authors_u1(t: torch.Tensor) -> torch.Tensor:
    return torch.sin(2 * math.pi * t) ** 2 * torch.cos(2 * math.pi * t)


def authors_u2(t: torch.Tensor) -> torch.Tensor:
    return torch.exp(-2 * t) * torch.sin(1.5 * math.pi * t)


def _split(coords, values, truth, grids, noise_std, test_fraction, generator) -> SyntheticTensor:
    n = coords.shape[0]
    perm = torch.randperm(n, generator=generator, device=coords.device)
    n_test = max(1, round(test_fraction * n))
    te, tr = perm[:n_test], perm[n_test:]
    return SyntheticTensor(coords[tr], values[tr], truth[tr], coords[te], values[te], truth[te], grids, noise_std)


# Real continuous-indexed data that ship inside a pip package (no download at run time).
# vega_datasets 0.9.0 (MIT licence) bundles these CSVs as package data (read by ``vega_datasets.local_data``); they
# come from the vega/vega-datasets repository (BSD-3-Clause), whose README documents their source. Hourly air
# temperature (°F) over 2010; the curves are very smooth (they look like hourly climate normals, not raw readings).
HOURLY_TEMPERATURES = {"seattle": "seattle_temps", "san_francisco": "sf_temps"}


def hourly_temperatures(city: str = "seattle", test_fraction: float = 0.2, keep_fraction: float = 1.0,
                        generator: torch.Generator | None = None) -> SyntheticTensor:
    """A 2-mode continuous-indexed tensor: temperature at (day of year, hour of day), both scaled to [0, 1].

    Coordinates are continuous (day = (timestamp - Jan 1) / 365 days, hour = hour / 23); every (day, hour) pair
    is observed once (8,759 values), so a random ``keep_fraction`` of the entries (missing data) and then a random
    ``test_fraction`` of those are held out, as in the paper's random 80/20 splits. ``truth`` fields hold the
    observed values (the noise-free truth is unknown for real data).

    Requires ``vega_datasets`` (optional; reads its bundled CSV, no network).
    """
    if city not in HOURLY_TEMPERATURES:
        raise ValueError(f"city must be one of {sorted(HOURLY_TEMPERATURES)}, got {city!r}")
    if not (0 < test_fraction < 1 and 0 < keep_fraction <= 1):
        raise ValueError(f"need 0 < test_fraction < 1 and 0 < keep_fraction <= 1, got {test_fraction}, "
                         f"{keep_fraction}")
    from vega_datasets import local_data

    frame = getattr(local_data, HOURLY_TEMPERATURES[city])()
    stamps = frame["date"]
    day = torch.tensor(((stamps - stamps.min()).dt.total_seconds() // 86400).to_numpy(), dtype=torch.float64)
    hour = torch.tensor(stamps.dt.hour.to_numpy(), dtype=torch.float64)
    coords = torch.stack([day / 365.0, hour / 23.0], dim=1)
    values = torch.tensor(frame["temp"].to_numpy(), dtype=torch.float64)
    if keep_fraction < 1:
        keep = torch.randperm(values.shape[0], generator=generator)[: int(keep_fraction * values.shape[0])]
        coords, values = coords[keep], values[keep]
    grids = tuple(torch.unique(coords[:, k]) for k in range(2))
    return _split(coords, values, values.clone(), grids, float("nan"), test_fraction, generator)
