"""Cubic-spline transfer of gridded samples to Chebyshev nodes (input variants 2 and 3 of Chebyshev-Tucker).

Data given on a uniform (cell-centred) or any other 1-D tensor grid is interpolated mode by mode to the
Chebyshev-Lobatto nodes with a not-a-knot cubic spline that extrapolates past the outermost samples, as the
authors' MATLAB code does with ``interp1(..., 'spline', 'extrap')``. scipy does the spline on the CPU (float64);
the result returns to the input's device and dtype.

Reference:
    P. Benner, B. N. Khoromskij, V. Khoromskaia, B. Sun, "A mesh-free hybrid Chebyshev-Tucker tensor format with
    applications to multi-particle modelling", arXiv 2503.01696 (2025), Algorithms for grid and CP input.
"""

from __future__ import annotations

import torch

from sciml.core import like


def cell_centres(n: int, interval: tuple[float, float], dtype: torch.dtype = torch.float64,
                 device: torch.device | str | None = None) -> torch.Tensor:
    """The n cell centres ``a + (i + 1/2) (b - a) / n`` of a uniform grid on [a, b] (the paper's convention).

    Shapes: -> (n,).
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    a, b = interval
    i = torch.arange(n, dtype=torch.float64, device=device)
    return (a + (i + 0.5) * (b - a) / n).to(dtype)


def spline_to_nodes(values: torch.Tensor, coords: torch.Tensor, nodes: torch.Tensor, dim: int = 0) -> torch.Tensor:
    """Interpolate samples along mode ``dim`` from ``coords`` to ``nodes`` (not-a-knot cubic spline, extrapolating).

    Args:
        values: samples; mode ``dim`` has ``len(coords)`` entries (>= 4 for a not-a-knot cubic).
        coords: strictly increasing sample coordinates along that mode.
        nodes: target coordinates (e.g. Chebyshev nodes; may lie slightly outside ``coords``).
        dim: the mode to interpolate.

    Returns:
        Values at the nodes. Shapes: values (..., n, ...) -> (..., len(nodes), ...) at mode ``dim``.
    """
    from scipy.interpolate import CubicSpline

    if coords.ndim != 1 or values.shape[dim] != coords.shape[0]:
        raise ValueError(f"coords must be 1-D with {values.shape[dim]} entries (mode {dim} of values), "
                         f"got shape {tuple(coords.shape)}")
    if coords.shape[0] < 4:
        raise ValueError(f"a not-a-knot cubic spline needs >= 4 samples per mode, got {coords.shape[0]}")
    x = coords.detach().cpu().double().numpy()
    if not (x[1:] > x[:-1]).all():
        raise ValueError("coords must be strictly increasing")
    spline = CubicSpline(x, values.detach().cpu().double().numpy(), axis=dim, bc_type="not-a-knot",
                         extrapolate=True)
    out = spline(nodes.detach().cpu().double().numpy())
    return torch.as_tensor(out, **like(values))
