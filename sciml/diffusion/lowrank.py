"""Per-sample damped low-rank matrix functions: ``(lam I + U U^T)^{-1} g`` and ``(lam I + U U^T)^{-1/2} z``.

Batched over the first axis: ``U`` is (B, d, r), vectors are (B, d), ``lam`` is a scalar or (B,). Cost O(d r²)
per sample; nothing of size d x d is formed. Candidates to move down into ``sciml.linalg`` (a batched
``LowRankPlusDiagonal`` operator) once another module needs them.
"""

from __future__ import annotations

import torch


def _lam(lam, ref: torch.Tensor) -> torch.Tensor:
    lam = torch.as_tensor(lam, dtype=ref.dtype, device=ref.device)
    return lam.reshape(-1, 1) if lam.ndim else lam.reshape(1, 1)


def woodbury_solve(U: torch.Tensor, lam, g: torch.Tensor) -> torch.Tensor:
    """``(lam I + U U^T)^{-1} g = (g - U (lam I_r + U^T U)^{-1} U^T g) / lam`` (Woodbury identity).

    Shapes: U (B, d, r), g (B, d) -> (B, d).
    """
    lam_b = _lam(lam, g)                                                       # (B or 1, 1)
    r = U.shape[-1]
    small = U.transpose(1, 2) @ U + lam_b[:, :, None] * torch.eye(r, dtype=U.dtype, device=U.device)
    coef = torch.linalg.solve(small, (U.transpose(1, 2) @ g[:, :, None]))      # (B, r, 1)
    return (g - (U @ coef)[:, :, 0]) / lam_b


def lowrank_inv_sqrt(U: torch.Tensor, lam, z: torch.Tensor) -> torch.Tensor:
    """``(lam I + U U^T)^{-1/2} z`` from the eigendecomposition of the r x r Gram matrix ``U^T U``.

    With ``U^T U = V diag(m) V^T``, ``Q = U V diag(m)^{-1/2}`` has orthonormal columns spanning range(U) and
    ``(lam I + U U^T)^{-1/2} = lam^{-1/2} I + Q diag((lam + m)^{-1/2} - lam^{-1/2}) Q^T``. Directions with
    ``m <= 1e-12 max(m)`` are dropped (they do not change the matrix). For r = 1 this is the spec's rank-1
    formula ``lam^{-1/2} (z - c u u^T z)`` with ``c = (1 - sqrt(lam / (lam + |u|²))) / |u|²``.

    Shapes: U (B, d, r), z (B, d) -> (B, d).
    """
    lam_b = _lam(lam, z)
    m, V = torch.linalg.eigh(U.transpose(1, 2) @ U)                           # (B, r), (B, r, r)
    keep = m > 1e-12 * m.amax(dim=1, keepdim=True).clamp_min(torch.finfo(m.dtype).tiny)
    m_safe = torch.where(keep, m, torch.ones_like(m))
    Q = (U @ V) / m_safe.sqrt()[:, None, :]                                    # (B, d, r)
    scale = torch.where(keep, (lam_b + m_safe).rsqrt() - lam_b.rsqrt(), torch.zeros_like(m))
    proj = (Q.transpose(1, 2) @ z[:, :, None])[:, :, 0]                       # (B, r)
    return z * lam_b.rsqrt() + (Q @ (scale * proj)[:, :, None])[:, :, 0]


def lowrank_inv_trace(U: torch.Tensor, lam) -> torch.Tensor:
    """``tr (lam I + U U^T)^{-1} = (d - r) / lam + sum_i 1 / (lam + m_i)``, m = eig(U^T U).

    Shapes: (B, d, r) -> (B,)."""
    d, r = U.shape[1], U.shape[2]
    lam_b = _lam(lam, U)[:, 0]
    m = torch.linalg.eigvalsh(U.transpose(1, 2) @ U).clamp_min(0.0)
    return (d - r) / lam_b + (1.0 / (lam_b[:, None] + m)).sum(1)
