"""Checks that turn GP-HM's silent failures into warnings or errors.

* the grid against the source's (and, when known, the solution's) spectrum: fewer than ``MIN_POINTS_PER_PERIOD``
  points per period of the highest significant frequency aliases (paper's resolution study, spec A.3: accuracy
  collapses below ~3-4 points per period);
* the learned spectrum against the grid's Nyquist limit and against the initial ``freq_scale`` ceiling (the
  frequencies start on ``[0, F]`` and rarely move far beyond it: F below the solution's frequency fails);
* prediction points outside the box or not finite.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import torch

from sciml.core import NumericalWarning

MIN_POINTS_PER_PERIOD = 2.5
SIGNIFICANT_AMPLITUDE = 1e-2       # Hann-windowed spectral amplitude (relative to the peak) that counts
SIGNIFICANT_WEIGHT = 1e-3          # learned mixture weight (relative to the largest) that counts as a component
CEILING_FRACTION = 0.9


def highest_frequency(values: torch.Tensor, domain: Sequence[tuple[float, float]]) -> list[float]:
    """Per dimension, the highest frequency (cycles per unit length) with amplitude > SIGNIFICANT_AMPLITUDE x peak.

    A Hann window keeps the leakage of non-periodic signals (the box is not a torus) below the threshold.

    Shapes: values (M_1, .., M_D) sampled on a uniform grid of the box (endpoints included).
    """
    out = []
    for j, (a, b) in enumerate(domain):
        n = values.shape[j]
        moved = torch.movedim(values, j, -1).reshape(-1, n)
        window = torch.hann_window(n, periodic=False, dtype=values.dtype, device=values.device)
        amp = torch.fft.rfft(moved * window, dim=-1).abs().pow(2).sum(0).sqrt()  # (n // 2 + 1,)
        peak = float(amp.max())
        if peak <= 0:
            out.append(0.0)
            continue
        k = int((amp > SIGNIFICANT_AMPLITUDE * peak).nonzero().max())
        out.append(k / ((b - a) * n / (n - 1)))
    return out


def check_resolution(what: str, freqs: Sequence[float], domain, sizes: Sequence[int], stacklevel: int = 3) -> bool:
    """Warn when a grid gives fewer than MIN_POINTS_PER_PERIOD points per period of ``freqs`` (or aliases)."""
    ok = True
    for j, (f, (a, b), m) in enumerate(zip(freqs, domain, sizes)):
        density = (m - 1) / (b - a)                                          # points per unit length
        nyquist_bin = density / 2
        # energy at the grid's own Nyquist bin means the sampled signal is aliased or barely resolved
        if f > 0 and (density / f < MIN_POINTS_PER_PERIOD or f >= 0.95 * nyquist_bin):
            ok = False
            warnings.warn(f"{what}: dimension {j} has significant content at {f:.3g} cycles per unit length but "
                          f"the grid has {density:.3g} points per unit length ({density / f:.2g} per period, need >= "
                          f"{MIN_POINTS_PER_PERIOD}); refine the grid or the answer is aliased", NumericalWarning,
                          stacklevel=stacklevel)
    return ok


def check_learned_spectrum(spectra, domain, sizes: Sequence[int], freq_scale: float, has_cosine: bool,
                           stacklevel: int = 3) -> None:
    """Warn if a significant learned frequency is near the grid's Nyquist limit or the ``freq_scale`` ceiling."""
    if not has_cosine:
        return
    tops, dominant = [], []
    for s in spectra:
        keep = s.weights >= SIGNIFICANT_WEIGHT * s.weights.max()
        tops.append(float(s.frequencies[keep].abs().max()))
        dominant.append(float(s.frequencies[s.weights.argmax()].abs()))
    check_resolution("learned spectrum", tops, domain, sizes, stacklevel + 1)
    for j, top in enumerate(dominant):
        if freq_scale > 0 and top >= CEILING_FRACTION * freq_scale:
            warnings.warn(f"the dominant learned frequency {top:.3g} (dimension {j}) is at {top / freq_scale:.0%} of "
                          f"the initial ceiling freq_scale = {freq_scale:g}: the solution may contain higher "
                          "frequencies than the prior can reach; raise freq_scale (it must exceed the solution's "
                          "highest frequency in cycles per unit length)", NumericalWarning, stacklevel=stacklevel)


def check_points(points: torch.Tensor, domain: Sequence[tuple[float, float]]) -> None:
    """Raise for prediction points that are not finite or lie outside the box (GP-HM extrapolates badly)."""
    if not bool(torch.isfinite(points).all()):
        bad = int((~torch.isfinite(points).all(-1)).sum())
        raise ValueError(f"{bad} of {points.shape[0]} prediction points contain NaN or Inf")
    lo = torch.tensor([a for a, _ in domain], dtype=points.dtype, device=points.device)
    hi = torch.tensor([b for _, b in domain], dtype=points.dtype, device=points.device)
    tol = 1e-12 * (hi - lo)
    outside = ((points < lo - tol) | (points > hi + tol)).any(-1)
    if bool(outside.any()):
        first = points[outside][0].tolist()
        raise ValueError(f"{int(outside.sum())} of {points.shape[0]} prediction points lie outside the domain "
                         f"{[tuple(d) for d in domain]} (first: {[round(v, 6) for v in first]}); the GP solution is "
                         "only defined on the box it was solved on")


def relative(a: float, b: float) -> float:
    return abs(a - b) / max(abs(b), 1e-300) if math.isfinite(a) and math.isfinite(b) else math.inf


def data_frequencies(source: torch.Tensor, boundary: torch.Tensor, domain: Sequence[tuple[float, float]],
                     sizes: Sequence[int]) -> list[float]:
    """Per dimension, the highest significant frequency of the source and of the boundary data on each face.

    ``boundary`` lists the faces in ``boundary_indices`` order (x_j = a_j, then x_j = b_j, for each j); a face
    normal to j tells the frequencies along the other dimensions (advection: the source is 0, the data is not).
    """
    tops = highest_frequency(source, domain)
    D, start = len(sizes), 0
    for j in range(D):
        face_sizes = [m for k, m in enumerate(sizes) if k != j]
        count = math.prod(face_sizes)
        for _ in range(2):
            face = boundary[start:start + count].reshape(face_sizes) if face_sizes else None
            start += count
            if face is None or min(face_sizes) < 3:
                continue
            sub = highest_frequency(face, [d for k, d in enumerate(domain) if k != j])
            others = [k for k in range(D) if k != j]
            for k, f in zip(others, sub):
                tops[k] = max(tops[k], f)
    return tops


def default_freq_scale(tops: Sequence[float], domain: Sequence[tuple[float, float]], sizes: Sequence[int]) -> float:
    """Initial frequency ceiling F from the data's spectrum (``data_frequencies``), used when freq_scale=None.

    ``F = 1.5 * (f_top - 3 / L) + 1 / L`` over dimensions, ``f_top`` the highest significant Hann-windowed
    frequency (window main lobe plus the leakage of a non-periodic signal reach ~3 / L past the true
    frequency, L the box length), capped at a quarter of the
    grid's points per unit length. The paper's F (20-100 for 16-80 cycles per unit) is 1.25-1.6 times the
    solution's frequency; a smooth source gives F ~ 1 / L (measured on the README example, 12 x 14 grid:
    relL2 5.9e-4 with F = 2.75, 5.1e-6 with F = 1, 9.4e-7 with F = 0.5).
    """
    lengths = [b - a for a, b in domain]
    wanted = max(1.5 * max(f - 3.0 / L, 0.0) + 1.0 / L for f, L in zip(tops, lengths))
    cap = min((m - 1) / L / 4 for m, L in zip(sizes, lengths))
    return float(min(wanted, cap))


def check_ceiling(tops: Sequence[float], domain: Sequence[tuple[float, float]], freq_scale: float) -> None:
    """Warn when the data (source, boundary values) holds frequencies above the initial ceiling ``freq_scale``.

    The Hann window's main lobe and a non-periodic signal's leakage reach ~3 / L past a true frequency, so only
    ``f_top - 3 / L > freq_scale`` counts (sin(100x) on [0, 1] with freq_scale = 5: 15.9 cycles vs 5).
    """
    for j, (f, (a, b)) in enumerate(zip(tops, domain)):
        if f - 3.0 / (b - a) > freq_scale:
            warnings.warn(f"the source / boundary data has content up to ~{f:.3g} cycles per unit length along "
                          f"dimension {j}, above the initial frequency ceiling freq_scale = {freq_scale:g}; the "
                          "spectral mixture starts on [0, freq_scale] and cannot reach it: raise freq_scale (or leave "
                          "it None to choose it from the data)", NumericalWarning, stacklevel=4)
