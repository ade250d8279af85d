"""Radial kernels, their range separation, and multi-particle potentials as CP tensors.

Kernels (Newton 1/r, Slater exp(-a r), Yukawa exp(-k r)/r, Gaussian exp(-r^2/(2 s^2))) are written as sinc-
quadrature sums of Gaussians ``sum_k a_k exp(-t_k^2 r^2)``; each Gaussian is separable, so the potential of N
charges is a CP tensor of rank N * (number of terms). Splitting the terms by exponent gives the range-separated
(RS) format: small t_k = smooth long-range part (low Tucker rank, what Chebyshev-Tucker compresses), large t_k =
short-range part (localised at each particle). The mesh-free erf split ``1/r = erf(r/s)/r + erfc(r/s)/r`` is
provided too. Imports only torch and sciml.core.

Reference:
    P. Benner, V. Khoromskaia, B. N. Khoromskij, "Range-separated tensor formats for numerical modeling of
    many-particle interaction potentials", arXiv 1606.09218 (2016) (RS format; sinc quadrature of 1/r with
    t = sinh(u)); Benner, Khoromskij, Khoromskaia, Sun, arXiv 2503.01696 (2025) (long-range input to
    Chebyshev-Tucker); the spec's sec. 1.2 (authors' sinc parameters, checked against their data files).
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Sequence

import torch

from sciml.core import Result, check_floating

__all__ = [
    "NEWTON_LONG_TERMS",
    "NEWTON_SINC_H",
    "NEWTON_SINC_M",
    "Charges",
    "GaussianSum",
    "cell_averaged_factors",
    "direct_sum",
    "gaussian",
    "gaussian_sum_cp",
    "lattice_charges",
    "newton",
    "newton_long",
    "newton_short",
    "random_charges",
    "sinc_gaussian_sum",
    "slater",
    "yukawa",
]

# Sinc step and number of terms used in the authors' Newton data for n = 256 (spec sec. 1.2; checked against
# their files): h = 0.262122, M = 25, long-range part = first R_l = 10 terms.
NEWTON_SINC_H = 0.262122
NEWTON_SINC_M = 25
NEWTON_LONG_TERMS = 10
# Points per block in the direct sums (bounds the (block, N) distance matrix).
_DIRECT_BLOCK = 2 ** 21


def _radius(x: torch.Tensor) -> torch.Tensor:
    check_floating(x, "x")
    if x.ndim < 1:
        raise ValueError("points must have shape (..., d), got a 0-d tensor")
    return torch.linalg.vector_norm(x, dim=-1)


def _positive(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


# ------------------------------------------------------------------------------------------------------- kernels

def newton(x: torch.Tensor) -> torch.Tensor:
    """Newton (Coulomb) kernel ``1 / |x|``; infinite at 0. Shapes: (..., d) -> (...)."""
    return 1.0 / _radius(x)


def slater(x: torch.Tensor, alpha: float = 1.0) -> torch.Tensor:
    """Slater kernel ``exp(-alpha |x|)``. Shapes: (..., d) -> (...)."""
    return torch.exp(-_positive(alpha, "alpha") * _radius(x))


def yukawa(x: torch.Tensor, kappa: float = 1.0) -> torch.Tensor:
    """Yukawa (screened Coulomb) kernel ``exp(-kappa |x|) / |x|``. Shapes: (..., d) -> (...)."""
    r = _radius(x)
    return torch.exp(-_positive(kappa, "kappa") * r) / r


def gaussian(x: torch.Tensor, sigma: float = 1.0) -> torch.Tensor:
    """Gaussian kernel ``exp(-|x|^2 / (2 sigma^2))``. Shapes: (..., d) -> (...)."""
    check_floating(x, "x")
    return torch.exp(-(x**2).sum(-1) / (2 * _positive(sigma, "sigma") ** 2))


def newton_long(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Smooth long-range part of 1/r: ``erf(|x| / sigma) / |x|``, with its limit ``2 / (sqrt(pi) sigma)`` at 0.

    Near 0 the 0/0 is replaced by the Taylor series ``(2/(sqrt(pi) s)) (1 - r^2/(3 s^2))`` (error O(r^4)), so the
    function is smooth (entire) and differentiable everywhere. Shapes: (..., d) -> (...).
    """
    sigma = _positive(sigma, "sigma")
    r = _radius(x)
    small = r < 1e-4 * sigma
    safe = torch.where(small, torch.ones_like(r), r)
    series = (2 / (math.sqrt(math.pi) * sigma)) * (1 - r**2 / (3 * sigma**2))
    return torch.where(small, series, torch.erf(safe / sigma) / safe)


def newton_short(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Short-range part of 1/r: ``erfc(|x| / sigma) / |x|`` (singular at 0, negligible beyond ~6 sigma)."""
    r = _radius(x)
    return torch.erfc(r / _positive(sigma, "sigma")) / r


# ------------------------------------------------------------------------------------ sinc-quadrature Gaussian sums

@dataclasses.dataclass(frozen=True)
class GaussianSum(Result):
    """``K(r) ~ sum_k weights[k] exp(-exponents[k] r^2)``, terms sorted by increasing exponent.

    Shapes: weights (M + 1,), exponents (M + 1,).
    """

    weights: torch.Tensor
    exponents: torch.Tensor
    kernel: str

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Evaluate at points. Shapes: (..., d) -> (...)."""
        r2 = (x**2).sum(-1)
        return torch.exp(-r2[..., None] * self.exponents.to(x)) @ self.weights.to(x)

    @property
    def n_terms(self) -> int:
        return self.weights.shape[0]

    def split(self, n_long: int) -> tuple[GaussianSum, GaussianSum]:
        """(long-range, short-range): the ``n_long`` terms with the smallest exponents, and the rest."""
        if isinstance(n_long, bool) or not isinstance(n_long, numbers.Integral) or not 1 <= n_long <= self.n_terms:
            raise ValueError(f"n_long must be an integer in [1, {self.n_terms}], got {n_long!r}")
        long = GaussianSum(self.weights[:n_long], self.exponents[:n_long], self.kernel + "/long")
        short = GaussianSum(self.weights[n_long:], self.exponents[n_long:], self.kernel + "/short")
        return long, short


_KERNELS = ("newton", "yukawa", "slater")


def sinc_gaussian_sum(kernel: str = "newton", h: float = NEWTON_SINC_H, n_terms: int = NEWTON_SINC_M + 1,
                      param: float = 1.0, dtype: torch.dtype = torch.float64,
                      device: torch.device | str | None = None) -> GaussianSum:
    """Sinc quadrature of a radial kernel's Gaussian integral representation.

    * newton: ``1/r = (2/sqrt(pi)) int_0^inf exp(-r^2 t^2) dt``, with ``t = sinh(u)``: ``t_k = sinh(k h)``,
      ``a_0 = h/sqrt(pi)``, ``a_k = 2 h cosh(k h)/sqrt(pi)`` (k >= 1; the even integrand summed over k in Z);
    * yukawa: ``exp(-k r)/r = (2/sqrt(pi)) int_0^inf exp(-r^2 t^2 - k^2/(4 t^2)) dt`` (param = k);
    * slater: ``exp(-a r) = (a/sqrt(pi)) int_0^inf t^-2 exp(-a^2/(4 t^2) - r^2 t^2) dt`` (param = a).

    For yukawa and slater the factor ``exp(-k^2/(4 t^2))`` is not analytic at t = 0, so ``t = sinh(u)`` would
    converge slowly; they use ``t = exp(u)`` instead, with nodes ``u_k = log(param / 13) + k h`` (the first node
    sits where that factor is ~1e-19) and weights ``h t_k g(t_k)``. Both rules converge exponentially in 1/h.

    Args:
        kernel: "newton", "yukawa" or "slater".
        h: sinc step (> 0); the authors' n = 256 Newton data use 0.262122.
        n_terms: number of terms (>= 1). Larger ``n_terms * h`` resolves smaller r (down to ~7 / t_max).
        param: kappa (yukawa) or alpha (slater); ignored for newton.

    Returns:
        GaussianSum with weights a_k and exponents t_k^2 (increasing).

    Differs from the paper/reference data: the authors modify the weight of the last Newton term; we use the plain
    rule. The last term is never part of the long-range part, so long-range results are unaffected.
    """
    if kernel not in _KERNELS:
        raise ValueError(f"kernel must be one of {_KERNELS}, got {kernel!r}")
    h = _positive(h, "h")
    param = _positive(param, "param")
    if isinstance(n_terms, bool) or not isinstance(n_terms, numbers.Integral) or n_terms < 1:
        raise ValueError(f"n_terms must be an integer >= 1, got {n_terms!r}")
    k = torch.arange(n_terms, dtype=torch.float64, device=device)
    if kernel == "newton":
        t = torch.sinh(k * h)
        step = torch.where(k == 0, torch.full_like(k, h / 2), h * torch.cosh(k * h))  # dt = cosh(u) du
        a = (2 / math.sqrt(math.pi)) * step
    else:
        t = torch.exp(math.log(param / 13.0) + k * h)
        step = h * t  # dt = t du
        screen = torch.exp(-param**2 / (4 * t**2))
        a = (2 / math.sqrt(math.pi)) * step * screen if kernel == "yukawa" else \
            (param / math.sqrt(math.pi)) * step * screen / t**2
    return GaussianSum(a.to(dtype), (t**2).to(dtype), kernel)


# ----------------------------------------------------------------------------------------- multi-particle systems

@dataclasses.dataclass(frozen=True)
class Charges(Result):
    """Point charges: positions (N, d) and charges (N,)."""

    positions: torch.Tensor
    charges: torch.Tensor

    def __post_init__(self) -> None:
        check_floating(self.positions, "positions")
        check_floating(self.charges, "charges")
        if self.positions.ndim != 2 or self.charges.shape != (self.positions.shape[0],):
            raise ValueError(f"positions must be (N, d) and charges (N,), got {tuple(self.positions.shape)} and "
                             f"{tuple(self.charges.shape)}")

    @property
    def n(self) -> int:
        return self.positions.shape[0]


def lattice_charges(sites: Sequence[int] = (8, 8, 8), extent: float = 0.7, vacancies: float = 0.0,
                    alternating: bool = False, generator: torch.Generator | None = None,
                    dtype: torch.dtype = torch.float64, device: torch.device | str | None = None) -> Charges:
    """Unit charges on a regular lattice filling ``[-extent, extent]^d``, optionally with random vacancies.

    Args:
        sites: sites per dimension.
        extent: half-width of the lattice (the box is usually [-1, 1]^d).
        vacancies: fraction of sites removed at random (0 <= v < 1).
        alternating: charges (-1)^(i+j+k) (rock-salt) instead of all +1.
        generator: for the vacancies.
    """
    if not 0 <= vacancies < 1:
        raise ValueError(f"vacancies must be in [0, 1), got {vacancies}")
    axes = [torch.linspace(-extent, extent, s, dtype=dtype, device=device) for s in sites]
    idx = torch.stack(torch.meshgrid(*[torch.arange(s, device=device) for s in sites], indexing="ij"), -1)
    pos = torch.stack(torch.meshgrid(*axes, indexing="ij"), -1).reshape(-1, len(sites))
    q = (1.0 - 2.0 * (idx.sum(-1) % 2)).reshape(-1) if alternating else torch.ones(pos.shape[0], device=device)
    q = q.to(dtype)
    if vacancies > 0:
        keep = torch.rand(pos.shape[0], generator=generator, device=device) >= vacancies
        pos, q = pos[keep], q[keep]
    return Charges(pos, q)


def random_charges(n: int, d: int = 3, extent: float = 0.6, generator: torch.Generator | None = None,
                   dtype: torch.dtype = torch.float64, device: torch.device | str | None = None) -> Charges:
    """A protein-like random cluster: n charges of random sign +-1, uniform in ``[-extent, extent]^d``.

    The spec's multi-particle table uses N random unit charges +-1 in [-0.6, 0.6]^3.
    """
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
        raise ValueError(f"n must be an integer >= 1, got {n!r}")
    pos = (2 * torch.rand(n, d, generator=generator, dtype=torch.float64, device=device) - 1) * extent
    sign = torch.randint(0, 2, (n,), generator=generator, device=device).to(torch.float64) * 2 - 1
    return Charges(pos.to(dtype), sign.to(dtype))


def gaussian_sum_cp(charges: Charges, terms: GaussianSum, nodes: Sequence[torch.Tensor]
                    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """CP factors of ``P(x) = sum_nu z_nu sum_k a_k prod_l exp(-t_k^2 (x_l - x_{nu,l})^2)`` on given 1-D nodes.

    Columns are ordered (particle, term); the weights ``a_k`` are split as ``|a_k|^(1/d)`` per mode (sign kept
    in the CP weight), so the factors are well scaled. Rank N * K, no grid of size n^d.

    Returns:
        (weights (N K,), [factor (len(nodes[l]), N K) for each mode]).
    """
    d = charges.positions.shape[1]
    if len(nodes) != d:
        raise ValueError(f"need {d} node vectors (one per mode), got {len(nodes)}")
    a, t2 = terms.weights.to(charges.positions), terms.exponents.to(charges.positions)
    root = a.abs() ** (1.0 / d)
    factors = []
    for mode, x in enumerate(nodes):
        diff2 = (x[:, None] - charges.positions[None, :, mode]) ** 2  # (m, N)
        factors.append((torch.exp(-diff2[:, :, None] * t2) * root).reshape(x.shape[0], -1))  # (m, N*K)
    weights = (charges.charges[:, None] * torch.sign(a)).reshape(-1)
    return weights, factors


def direct_sum(points: torch.Tensor, charges: Charges, kernel) -> torch.Tensor:
    """``sum_nu z_nu K(x - x_nu)`` by brute force, in blocks of points (the ground truth).

    Args:
        points: evaluation points. Shapes: (P, d) -> (P,).
        charges: the particles.
        kernel: a callable of difference vectors (..., d) -> (...), e.g. :func:`newton` or a GaussianSum.
    """
    check_floating(points, "points")
    if points.ndim != 2 or points.shape[1] != charges.positions.shape[1]:
        raise ValueError(f"points must have shape (P, {charges.positions.shape[1]}), got {tuple(points.shape)}")
    q = charges.charges.to(points)
    block = max(1, _DIRECT_BLOCK // max(1, charges.n * 8))
    out = []
    for start in range(0, points.shape[0], block):
        diff = points[start:start + block, None, :] - charges.positions.to(points)[None]  # (B, N, d)
        out.append(kernel(diff) @ q)
    return torch.cat(out) if out else points.new_zeros(0)




def cell_averaged_factors(terms: GaussianSum, n: int, interval: tuple[float, float] = (-1.0, 1.0), d: int = 3
                          ) -> tuple[torch.Tensor, torch.Tensor]:
    """Canonical vectors of a Gaussian sum centred at 0, averaged over the n cells of a uniform grid.

    ``u_k[i] = |a_k|^(1/d) (1/h) int_{cell i} exp(-t_k^2 x^2) dx`` (closed form with erf), the collocation used
    for the authors' Newton data (spec sec. 1.2); the CP tensor ``sum_k sign(a_k) u_k ⊗ ... ⊗ u_k`` approximates
    the kernel's cell averages.

    Returns:
        (weights (K,) = sign(a_k), factor (n, K), the same for every mode).
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    a, t2 = terms.weights, terms.exponents
    lo, hi = interval
    hg = (hi - lo) / n
    x = lo + (torch.arange(n, dtype=a.dtype, device=a.device) + 0.5) * hg  # cell centres
    t = torch.sqrt(t2)
    t_safe = torch.where(t > 0, t, torch.ones_like(t))
    avg = (math.sqrt(math.pi) / (2 * t_safe * hg)) * (torch.erf(t_safe * (x[:, None] + hg / 2))
                                                     - torch.erf(t_safe * (x[:, None] - hg / 2)))
    avg = torch.where(t > 0, avg, torch.ones_like(avg))  # exp(0) = 1 averages to 1
    return torch.sign(a), avg * a.abs() ** (1.0 / d)
