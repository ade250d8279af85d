"""MetricGrids / Instant-NGP in pure torch (spec tensor §4): the hash-grid gather against brute-force bilinear
interpolation and a pure-Python uint32 hash, tcnn parameter counts, PSNR against numpy."""

import math

import numpy as np
import pytest
import torch

from sciml.tensor.metricgrids import (HashGrid, InstantNGP, MetricGridsINR, fit_image, load_test_image,
                                      pixel_coordinates, psnr)


def brute_force_bilinear(table_level: np.ndarray, res: int, scale: float, phi: np.ndarray) -> np.ndarray:
    """Dense level: features at integer cells (ix, iy) stored at (ix + iy * res) mod size (tcnn wraps the corner
    cells past the last row); bilinear in pos = phi scale + 0.5."""
    size = len(table_level)
    out = np.zeros((len(phi), table_level.shape[1]))
    for n, (x, y) in enumerate(phi):
        px, py = x * scale + 0.5, y * scale + 0.5
        ix, iy = math.floor(px), math.floor(py)
        fx, fy = px - ix, py - iy
        for dx, wx in ((0, 1 - fx), (1, fx)):
            for dy, wy in ((0, 1 - fy), (1, fy)):
                out[n] += wx * wy * table_level[((ix + dx) + (iy + dy) * res) % size]
    return out


def test_dense_level_gather_equals_brute_force_bilinear():
    g = torch.Generator().manual_seed(0)
    grid = HashGrid(2, n_levels=4, n_features=2, log2_table=14, base_resolution=8, finest_resolution=32,
                    dtype=torch.float64, generator=g)
    with torch.no_grad():
        grid.table.copy_(torch.randn_like(grid.table))
    phi = torch.rand(50, 2, generator=g, dtype=torch.float64)
    out = grid(phi).detach().numpy()
    table = grid.table.detach().numpy()
    for level in range(4):
        assert grid.dense[level]  # res^2 <= 2^14 for every level here: no collisions
        rows = table[grid.offsets[level]:grid.offsets[level] + grid.sizes[level]]
        want = brute_force_bilinear(rows, grid.resolutions[level], grid.scales[level], phi.numpy())
        assert np.abs(out[:, 2 * level:2 * level + 2] - want).max() < 1e-12


def test_hashed_indices_equal_a_pure_python_uint32_hash_including_negative_cells():
    grid = HashGrid(2, n_levels=13, log2_table=11, finest_resolution=64)
    level = max(i for i in range(13) if not grid.dense[i])
    cells = torch.tensor([[0, 0], [5, 7], [-1, 3], [-40, -17], [123, -9]], dtype=torch.int64)
    got = grid.level_indices(cells, level).tolist()
    want = [(((x & 0xFFFFFFFF) * 1) ^ (((y & 0xFFFFFFFF) * 2654435761) & 0xFFFFFFFF)) % 2 ** 11 for x, y in
            cells.tolist()]
    assert got == want
    dense = min(i for i in range(13) if grid.dense[i])
    res, size = grid.resolutions[dense], grid.sizes[dense]
    want_dense = [((x + y * res) & 0xFFFFFFFF) % size for x, y in cells.tolist()]
    assert grid.level_indices(cells, dense).tolist() == want_dense


def test_parameter_counts_match_the_released_tcnn_layout():
    assert MetricGridsINR(log2_table=11).grids[0].table.numel() == 30_736
    assert MetricGridsINR(log2_table=14).grids[0].table.numel() == 39_008
    kodak = MetricGridsINR(log2_table=14, finest_resolution=256)
    assert kodak.grids[0].table.numel() == 186_896
    assert sum(p.numel() for n, p in kodak.named_parameters() if not n.startswith("grids")) == 19_779
    assert sum(p.numel() for p in InstantNGP(log2_table=11).parameters()) == 36_819
    separate = MetricGridsINR(log2_table=11, shared_table=False)
    assert sum(g.table.numel() for g in separate.grids) == 3 * 30_736


def test_gradients_reach_the_table_and_a_short_fit_improves():
    image, _ = load_test_image(16)
    model = MetricGridsINR(log2_table=8, finest_resolution=16, n_levels=4, generator=torch.Generator().manual_seed(0))
    history = fit_image(model, image, 30)
    assert history[-1] > history[0] + 3
    assert model.grids[0].table.grad is not None and float(model.grids[0].table.grad.abs().sum()) > 0


def test_psnr_and_coordinates():
    a = torch.rand(8, 8, 3, generator=torch.Generator().manual_seed(1))
    b = (a + 0.01).clamp(0, 1)
    mse = float(np.mean((np.clip(b.numpy(), 0, 1) - a.numpy()) ** 2))
    assert abs(psnr(b, a) - 10 * np.log10(1 / mse)) < 1e-6
    xy = pixel_coordinates(2, 4)
    assert torch.allclose(xy[:4, 0], torch.tensor([-0.75, -0.25, 0.25, 0.75]))
    assert torch.allclose(xy[::4, 1], torch.tensor([-0.5, 0.5]))


def test_bad_input():
    with pytest.raises(ValueError, match="metrics"):
        MetricGridsINR(metrics=("cosine",))
    with pytest.raises(ValueError, match="log2_table"):
        HashGrid(2, log2_table=0)
    with pytest.raises(ValueError, match=r"phi must be \(N, 2\)"):
        HashGrid(2)(torch.zeros(5, 3))
    with pytest.raises(ValueError, match="NaN"):
        HashGrid(2)(torch.full((5, 2), float("nan")))
