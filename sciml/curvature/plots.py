"""Figures a curvature study expects; matplotlib is imported inside each function (optional dependency).

Each function draws on ``ax`` when given (else a new figure) and returns the figure.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import torch


def _axes(ax):
    import matplotlib.pyplot as plt  # lazy: optional dependency
    if ax is None:
        fig, ax = plt.subplots(figsize=(5, 3.5))
        return fig, ax
    return ax.figure, ax


def _np(t):
    return t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else t


def plot_spectral_density(result, ax=None, *, label: str | None = None, floor: float = 1e-8):
    """SLQ density on a log scale (a :class:`~sciml.curvature.estimators.DensityResult`)."""
    fig, ax = _axes(ax)
    ax.semilogy(_np(result.grid), _np(result.density.clamp_min(floor)), label=label)
    ax.set_xlabel("eigenvalue")
    ax.set_ylabel("density (log)")
    ax.set_title(f"SLQ: m={result.num_steps}, probes={result.num_probes}")
    if label:
        ax.legend()
    return fig


def largest_log_gap(eigenvalues: torch.Tensor, max_index: int | None = None) -> int:
    """Number of outliers by the largest ``log(lambda_i / lambda_{i+1})`` gap among positive sorted eigenvalues
    (spec B.1 statistic; i counted from 1, searched over i <= max_index)."""
    lam = torch.sort(eigenvalues, descending=True).values
    lam = lam[lam > 0]
    if lam.numel() < 2:
        return 0
    gaps = torch.log(lam[:-1] / lam[1:])
    if max_index is not None:
        gaps = gaps[:max_index]
    return int(torch.argmax(gaps)) + 1


def plot_sorted_spectrum(eigenvalues: torch.Tensor, ax=None, *, num_outliers: int | None = None, label=None):
    """Sorted eigenvalues (descending, symlog y) with the outliers (largest log-gap by default) marked."""
    fig, ax = _axes(ax)
    lam = torch.sort(eigenvalues.detach(), descending=True).values
    k = largest_log_gap(lam) if num_outliers is None else num_outliers
    idx = torch.arange(1, lam.numel() + 1)
    ax.plot(_np(idx), _np(lam), ".", ms=3, label=label)
    ax.plot(_np(idx[:k]), _np(lam[:k]), "o", mfc="none", color="C3", label=f"{k} outliers")
    ax.set_yscale("symlog", linthresh=1e-4)
    ax.set_xscale("log")
    ax.set_xlabel("index")
    ax.set_ylabel("eigenvalue")
    ax.legend()
    return fig


def plot_landscape(landscape, ax=None, *, levels: int = 30, log: bool = False):
    """A 1-D loss curve or 2-D contour plot of a :class:`~sciml.curvature.landscape.Landscape`."""
    fig, ax = _axes(ax)
    losses = landscape.losses.log() if log else landscape.losses
    if losses.ndim == 1:
        ax.plot(_np(landscape.coordinates[0]), _np(losses))
        ax.set_xlabel("alpha")
        ax.set_ylabel("log loss" if log else "loss")
    else:
        a, b = landscape.coordinates
        cs = ax.contour(_np(a), _np(b), _np(losses.T), levels=levels)
        ax.clabel(cs, fontsize=6)
        ax.plot([0], [0], "k+")
        ax.set_xlabel("alpha")
        ax.set_ylabel("beta")
    ax.set_title(f"loss landscape ({landscape.normalization} normalisation)")
    return fig


def plot_curvature_history(steps: Sequence[float], series: Mapping[str, Sequence[float]], ax=None, *,
                           thresholds: Mapping[str, float] | None = None, log: bool = True):
    """Curvature measures along training (e.g. ``{"lambda_max": [...], "trace": [...]}``) with horizontal
    reference lines (e.g. ``{"2 / lr": 2 / lr}`` for the edge of stability)."""
    fig, ax = _axes(ax)
    for name, values in series.items():
        ax.plot(list(steps), [float(v) for v in values], label=name)
    for name, value in (thresholds or {}).items():
        ax.axhline(float(value), ls="--", color="k", lw=0.8, label=name)
    if log:
        ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("curvature")
    ax.legend()
    return fig
