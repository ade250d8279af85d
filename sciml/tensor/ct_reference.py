"""The authors' ChebTuck arithmetic for CP input (``ChebTuck.m`` case 3, type 'R'), re-implemented compactly in
NumPy/SciPy as a parity oracle for :class:`sciml.tensor.ChebyshevTucker` (not a fast path).

Steps, as in bonans/ChebTuck (MIT): optional ``CP_normalize`` (weights into the first factor, then unit columns
with the norms as positive weights); each factor column spline-interpolated from the n cell centres of [-1, 1] to
the m Chebyshev-Lobatto points (``interp1(..., 'spline', 'extrap')`` = not-a-knot cubic); chebfun's
``vals2coeffs`` (DCT-I); ``rhosvd.m`` with the absolute rule sqrt(sum_{j>r} s_j^2) <= tol / d on the singular
values of the coefficient factors as they are; core = sum_q lambda_q Y1_q ⊗ Y2_q ⊗ Y3_q.
"""

from __future__ import annotations

import numpy as np
from scipy.fft import dct
from scipy.interpolate import CubicSpline


def cp_normalize(weights: np.ndarray, factors: list[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
    """``CP_normalize.m``: weights into the first factor, unit columns, the product of the norms as weights."""
    factors = [factors[0] * weights] + list(factors[1:])
    norms = [np.linalg.norm(u, axis=0) for u in factors]
    return np.prod(norms, axis=0), [u / n for u, n in zip(factors, norms)]


def vals2coeffs(values: np.ndarray) -> np.ndarray:
    """chebfun's ``chebtech2.vals2coeffs`` along axis 0 (values at ascending Chebyshev-Lobatto points)."""
    m = values.shape[0]
    c = dct(values[::-1], type=1, axis=0) / (m - 1)
    c[0] /= 2
    c[-1] /= 2
    return c


def authors_chebtuck_cp(weights: np.ndarray, factors: list[np.ndarray], m: int = 129, tol: float = 1e-7,
                        normalize: bool = False) -> tuple[np.ndarray, list[np.ndarray]]:
    """Core (r_1, .., r_d) and coefficient-space factors V_l (m, r_l) of the authors' ChebTuck of a CP tensor whose
    factors are sampled at the cell centres of [-1, 1]. Shapes: weights (R,), factors[l] (n_l, R)."""
    if normalize:
        weights, factors = cp_normalize(weights, factors)
    nodes = -np.cos(np.arange(m) * np.pi / (m - 1))
    d = len(factors)
    bases, coords = [], []
    for u in factors:
        n = u.shape[0]
        centres = -1 + (np.arange(n) + 0.5) * 2 / n
        coeffs = vals2coeffs(CubicSpline(centres, u, axis=0, bc_type="not-a-knot", extrapolate=True)(nodes))
        w, s, vt = np.linalg.svd(coeffs, full_matrices=False)
        tails = np.sqrt(np.cumsum((s**2)[::-1])[::-1])
        r = int(np.nonzero(tails > tol / d)[0][-1]) + 1
        bases.append(w[:, :r])
        coords.append(s[:r, None] * vt[:r])
    letters = "abcdefgh"[:d]
    core = np.einsum("q," + ",".join(f"{a}q" for a in letters) + "->" + letters, weights, *coords)
    return core, bases


def evaluate_on_grid(core: np.ndarray, bases: list[np.ndarray], grids: list[np.ndarray]) -> np.ndarray:
    """The format on a tensor grid of [-1, 1]^d: core ×_l (T(x_l) V_l)."""
    out = core
    for axis, (v, x) in enumerate(zip(bases, grids)):
        g = np.polynomial.chebyshev.chebvander(x, v.shape[0] - 1) @ v
        out = np.moveaxis(np.tensordot(g, out, axes=(1, axis)), 0, axis)
    return out
