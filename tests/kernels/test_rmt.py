"""Spec 2.2.7: semicircle (Catalan moments, Kolmogorov distance) and Marchenko-Pastur moments/edges."""

from __future__ import annotations

import torch

from sciml.kernels.rmt import (catalan, kolmogorov_to_semicircle, marchenko_pastur_edges, marchenko_pastur_moments,
                               program_moments, spectral_moments, wigner)


def test_semicircle_moments_and_distance():
    gen = torch.Generator().manual_seed(0)
    W = wigner(1000, gen)
    lam = torch.linalg.eigvalsh(W)
    moments = spectral_moments(lam, (2, 4, 6, 8))
    # spec (one draw, n = 1000): 1.002, 2.008, 5.033, 14.13; finite-n bias is O(1/n) relative, fluctuation small
    for k, m in zip(range(1, 5), moments):
        assert abs(m - catalan(k)) / catalan(k) < 0.03, (k, m)
    assert kolmogorov_to_semicircle(lam) < 0.01                      # spec: 0.0038 at n = 1000
    # tensor-program view: one vector chain; fluctuation O(n^-1/2) per moment
    for k, m in zip(range(1, 4), program_moments(W, 3, gen)):
        assert abs(m - catalan(k)) / catalan(k) < 0.15, (k, m)


def test_marchenko_pastur():
    gen = torch.Generator().manual_seed(0)
    n, lam = 1000, 0.25
    A = torch.randn(n, int(n / lam), generator=gen, dtype=torch.float64)
    ev = torch.linalg.eigvalsh(A @ A.T / A.shape[1])
    for m, ref in zip(spectral_moments(ev, (1, 2, 3)), marchenko_pastur_moments(lam)):
        assert abs(m - ref) / ref < 0.01
    lo, hi = marchenko_pastur_edges(lam)                             # 0.25, 2.25 (Tracy-Widom edge ~ n^-2/3)
    assert abs(float(ev.min()) - lo) < 0.03 and abs(float(ev.max()) - hi) < 0.06
