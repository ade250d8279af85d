"""The quadratic games of the SGN paper's experiments (spec quantum_games.md B3).

Random draws use numpy's ``default_rng`` in the authors' order (LQ_GAMES/generate_game.py, random_suite.py), so the
ensemble fractions can be compared one to one; the matrices are returned as torch float64 tensors.
"""

from __future__ import annotations

import numpy as np
import torch

LQ_SEED = 12345


def scalar_game(mu1: float = 1.0, mu2: float = 1.0, a: float = 10.0, b: float = 0.05,
                dtype: torch.dtype = torch.float64, device=None) -> torch.Tensor:
    """Jacobian of the 2-D game f_1 = mu_1 x_1^2/2 + a x_1 x_2, f_2 = mu_2 x_2^2/2 + b x_1 x_2: [[mu_1, a], [b, mu_2]]
    (so L_12 = |a|, L_21 = |b|)."""
    return torch.tensor([[mu1, a], [b, mu2]], dtype=dtype, device=device)


def orthogonal_coupling(d: int, seed: int = LQ_SEED) -> torch.Tensor:
    """Random orthogonal d x d block (QR of a Gaussian, columns signed so that diag(R_qr) > 0)."""
    if d < 1:
        raise ValueError(f"d must be >= 1, got {d}")
    g = np.random.default_rng(seed).standard_normal((d, d))
    q, r = np.linalg.qr(g)
    signs = np.sign(np.diag(r))
    signs[signs == 0] = 1.0
    return torch.from_numpy(q * signs)


def coupled_game(Q1: torch.Tensor, Q2: torch.Tensor, R: torch.Tensor, lam: float, a: float = 10.0,
                 b: float = 0.05) -> torch.Tensor:
    """H(lam) = [[Q_1, lam a R], [lam b R^T, Q_2]]: player 1's gradient Q_1 x_1 + lam a R x_2, player 2's
    Q_2 x_2 + lam b R^T x_1."""
    top = torch.cat([Q1, lam * a * R], dim=1)
    bottom = torch.cat([lam * b * R.T, Q2], dim=1)
    return torch.cat([top, bottom], dim=0)


def lq_game(lam: float, a: float = 10.0, b: float = 0.05, d: int = 64, mu0: float = 1.0,
            seed: int = LQ_SEED) -> torch.Tensor:
    """The 64-D LQ game: Q_i = mu0 I, orthogonal R. Closed forms: eig(H) = mu0 +- lam sqrt(ab)."""
    if d % 2:
        raise ValueError(f"d must be even (two equal blocks), got {d}")
    eye = mu0 * torch.eye(d // 2, dtype=torch.float64)
    return coupled_game(eye, eye.clone(), orthogonal_coupling(d // 2, seed), lam, a, b)


def random_lq_blocks(seed: int, d: int = 64, mu0: float = 1.0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Q_i = R_i^T R_i + mu0 I (R_i Gaussian) and a Gaussian R scaled to ||R||_2 = 1, drawn in the authors' order."""
    rng = np.random.default_rng(seed)
    d1, d2 = d // 2, d - d // 2
    R1 = rng.standard_normal((d1, d1))
    R2 = rng.standard_normal((d2, d2))
    Q1 = R1.T @ R1 + mu0 * np.eye(d1)
    Q2 = R2.T @ R2 + mu0 * np.eye(d2)
    base = rng.standard_normal((d1, d2))
    R = base / np.linalg.norm(base, 2)
    return torch.from_numpy(Q1), torch.from_numpy(Q2), torch.from_numpy(R)
