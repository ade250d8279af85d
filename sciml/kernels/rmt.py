"""Random-matrix sanity checks of the tensor-program limit (spec ssm.md 2.2.7): semicircle and Marchenko-Pastur.

* Wigner W = (G + G^T)/sqrt(2n): (1/n) tr W^{2k} -> Catalan(k); tensor-program view: v^k = W v^{k-1},
  (1/n) v^0 . v^{2k} -> Catalan(k) (a program with one shared, transposed-equal matrix).
* Marchenko-Pastur S = A A^T / m, A (n x m), lambda = n/m <= 1: moments 1, 1 + lambda, 1 + 3 lambda + lambda^2;
  support [(1 - sqrt(lambda))^2, (1 + sqrt(lambda))^2].
"""

from __future__ import annotations

import math

import torch


def catalan(k: int) -> int:
    return math.comb(2 * k, k) // (k + 1)


def wigner(n: int, generator: torch.Generator, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """(n, n) GOE-normalized Wigner matrix (G + G^T)/sqrt(2n) (ESD -> semicircle on [-2, 2])."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    G = torch.randn(n, n, generator=generator, dtype=dtype)
    return (G + G.T) / math.sqrt(2 * n)


def spectral_moments(eigenvalues: torch.Tensor, orders: tuple[int, ...]) -> list[float]:
    """(1/n) sum lambda^p for each p in ``orders``."""
    return [float((eigenvalues ** p).mean()) for p in orders]


def semicircle_cdf(x: torch.Tensor) -> torch.Tensor:
    """CDF of the semicircle law on [-2, 2]: 1/2 + (x sqrt(4 - x^2))/(4 pi) + asin(x/2)/pi."""
    x = x.clamp(-2.0, 2.0)
    return 0.5 + x * torch.sqrt(4 - x * x) / (4 * math.pi) + torch.arcsin(x / 2) / math.pi


def kolmogorov_to_semicircle(eigenvalues: torch.Tensor) -> float:
    """sup |ESD CDF - semicircle CDF| (evaluated at the jumps of the empirical CDF)."""
    lam, _ = torch.sort(eigenvalues)
    n = lam.numel()
    F = semicircle_cdf(lam)
    upper = torch.arange(1, n + 1, dtype=lam.dtype, device=lam.device) / n
    return float(torch.maximum((upper - F).abs(), (upper - 1.0 / n - F).abs()).max())


def program_moments(W: torch.Tensor, k_max: int, generator: torch.Generator) -> list[float]:
    """Tensor-program estimate (1/n) v^0 . W^{2k} v^0, k = 1..k_max, with v^0 ~ N(0, I) (one matvec chain)."""
    v0 = torch.randn(W.shape[0], generator=generator, dtype=W.dtype)
    v, out = v0, []
    for _ in range(k_max):
        v = W @ (W @ v)
        out.append(float(v0 @ v / W.shape[0]))
    return out


def marchenko_pastur_moments(lam: float) -> tuple[float, float, float]:
    """First three moments of the MP law with ratio lam = n/m (unit variance)."""
    return 1.0, 1.0 + lam, 1.0 + 3 * lam + lam * lam


def marchenko_pastur_edges(lam: float) -> tuple[float, float]:
    return (1 - math.sqrt(lam)) ** 2, (1 + math.sqrt(lam)) ** 2
