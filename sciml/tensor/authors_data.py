"""The papers' own data files, shipped in ``data/tensor`` (see its README for provenance, hashes and licences).

* ChebTuck (bonans/ChebTuck, MIT): the sinc CP tensors of the Newton kernel 1/|x| on n = 256 / 512 / 1024
  cell-centred grids (``data/Newton_CP_-1_1/Newt_canon_{n}.mat``, field U1r = U2r = U3r) and the 24 × 24 × 4
  lattice of 2304 charges on n = 960 (``data/lattice/Lattice_n960_ParticlesNumber_2304_Rank_50.mat``, fields
  Ldip.Ut1..3 and the lattice extents), the input of the paper's Fig. 9.
* FunBaT (xuangu-fang/Functional-Bayesian-Tucker-Decomposition, MIT): the 2-mode rank-1 synthetic data set and
  its train/test split (``data/synthetic/simulation_r1.npy``, fold 0), the input of the paper's Sec. 5.1 run.

The arrays were converted losslessly (float64) to ``.npz``; the loaders apply the authors' own scalings.
"""

from __future__ import annotations

from pathlib import Path

import torch

from sciml.tensor.chebyshev_tucker import CPTensor
from sciml.tensor.funbat_data import SyntheticTensor

NEWTON_GRIDS = (256, 512, 1024)


def data_dir() -> Path:
    """``<repo>/data/tensor``."""
    return Path(__file__).resolve().parents[2] / "data" / "tensor"


def _load(name: str) -> dict:
    import numpy as np

    path = data_dir() / name
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing; it ships with the repository (data/tensor, see its README)")
    with np.load(path) as archive:
        return {k: archive[k] for k in archive.files}


def chebtuck_newton(n: int) -> CPTensor:
    """The authors' CP tensor of 1/|x| on the n³ cell-centred grid of [-1, 1]³ (all sinc terms, unit weights).

    The factor columns are cell averages of the Gaussians (their file stores h·u; we divide by h = 2/n as
    ``newton_tabs.m`` does). The long-range part is the first ``ceil(R/2) - 3`` columns. Shapes: factors (n, R).
    """
    if n not in NEWTON_GRIDS:
        raise ValueError(f"n must be one of {NEWTON_GRIDS} (the shipped files), got {n!r}")
    u = torch.from_numpy(_load(f"chebtuck_newton_n{n}.npz")["u1r"]) / (2.0 / n)
    return CPTensor(torch.ones(u.shape[1], dtype=u.dtype), (u, u, u))


def chebtuck_lattice(n_short: int = 11) -> CPTensor:
    """The authors' 24 × 24 × 4 lattice potential (2304 charges) on n = 960, long-range part, as in
    ``lattice_plots.m``: columns rescaled by 2/L_x, 2/L_y, 1/L_z, weights +1 for the 25 positive and -1 for the
    25 negative terms, and the ``n_short`` most localised terms of each sign (the last ones) removed.

    Shapes: weights (50 - 2 n_short,), factors (960, 50 - 2 n_short).
    """
    raw = _load("chebtuck_lattice_n960_2304.npz")
    n_pos = int(raw["n_positive"])
    total = raw["ut1"].shape[1]
    if not (isinstance(n_short, int) and 0 <= n_short < min(n_pos, total - n_pos)):
        raise ValueError(f"n_short must be an int in [0, {min(n_pos, total - n_pos)}), got {n_short!r}")
    keep = list(range(n_pos - n_short)) + list(range(n_pos, total - n_short))
    scale = (2.0 / raw["extent"][0], 2.0 / raw["extent"][1], 1.0 / raw["extent"][2])
    factors = tuple(torch.from_numpy(raw[f"ut{k + 1}"][:, keep] / scale[k]) for k in range(3))
    signs = torch.tensor([1.0] * (n_pos - n_short) + [-1.0] * (total - n_pos - n_short), dtype=torch.float64)
    return CPTensor(signs, factors)


def funbat_simulation_r1() -> SyntheticTensor:
    """The authors' 2-mode rank-1 synthetic data (1,350 points, 90 distinct values per mode, noise-free) with
    their 50/50 split. ``truth`` equals ``values`` (noise-free)."""
    raw = {k: torch.from_numpy(v) for k, v in _load("funbat_simulation_r1.npz").items()}
    grids = tuple(torch.unique(torch.cat([raw["train_coords"][:, k], raw["test_coords"][:, k]])) for k in range(2))
    return SyntheticTensor(raw["train_coords"], raw["train_values"], raw["train_values"].clone(), raw["test_coords"],
                           raw["test_values"], raw["test_values"].clone(), grids, 0.0)
