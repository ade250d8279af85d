"""Small named test problems with known structure (seeded by an explicit generator)."""

from __future__ import annotations

import torch


def random_orthogonal(n: int, *, generator: torch.Generator, dtype: torch.dtype = torch.float64,
                      device: torch.device | str = "cpu") -> torch.Tensor:
    """A Haar-ish random orthogonal matrix (QR of a Gaussian matrix with sign fix)."""
    q, r = torch.linalg.qr(torch.randn(n, n, generator=generator, dtype=torch.float64, device=device))
    return (q * torch.sign(torch.diagonal(r))).to(dtype)


def random_spd(n: int, *, cond: float = 100.0, generator: torch.Generator, dtype: torch.dtype = torch.float64,
               device: torch.device | str = "cpu") -> torch.Tensor:
    """A random SPD matrix with eigenvalues log-spaced in [1/cond, 1] (so its condition number is ``cond``)."""
    if cond < 1:
        raise ValueError(f"cond must be >= 1, got {cond}")
    q = random_orthogonal(n, generator=generator, dtype=torch.float64, device=device)
    eigenvalues = torch.logspace(0, -torch.log10(torch.tensor(cond)).item(), n, dtype=torch.float64, device=device)
    a = (q * eigenvalues) @ q.T
    return (0.5 * (a + a.T)).to(dtype)
