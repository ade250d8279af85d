"""Moment algebra of FunBaT: per-mode conditional-EP messages, core sufficient statistics, predictive moments.

Conventions (fixed once, tested against the full contraction): ``vec(W)`` is the C-order flattening of the
core (r_0, ..., r_{K-1}), ``z = u⁰ ⊗ u¹ ⊗ ... ⊗ u^{K-1}`` with the first factor slowest, and the mode-k
unfolding ``W_(k) = moveaxis(W, k, 0).reshape(r_k, -1)`` lists the other modes in increasing order. Then
``u^kᵀ (W_(k) ⊗_{j≠k} u^j) = vec(W)ᵀ z`` for every k.

Nothing here stores per-observation r^{2K} arrays: second moments of ``z`` enter through square-root factors
``F = [Σ^{1/2}, μ]`` (so ``E[u uᵀ] = F Fᵀ``) and every sum over observations is done in chunks whose size is
bounded by ``budget`` elements.

Reference: Fang et al., ICLR 2024 (arXiv 2311.04829), Sec. 4.2 (CEP messages of the latent factors, eqs. of
q(W) and q(τ)); Wang & Zhe, "Conditional expectation propagation" (UAI 2019).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

DEFAULT_BUDGET = 1 << 22  # elements per chunk (32 MiB in float64)


def sqrt_factors(mean: torch.Tensor, cov: torch.Tensor) -> torch.Tensor:
    """F = [Σ^{1/2}, μ] with F Fᵀ = Σ + μ μᵀ. Shapes: mean (S, r), cov (S, r, r) -> (S, r, r+1)."""
    evals, evecs = torch.linalg.eigh(cov)
    root = evecs * evals.clamp(min=0.0).sqrt()[..., None, :]
    return torch.cat([root, mean[..., None]], dim=-1)


def second_moments(mean: torch.Tensor, cov: torch.Tensor) -> torch.Tensor:
    """E[u uᵀ] = Σ + μ μᵀ. Shapes: (S, r), (S, r, r) -> (S, r, r)."""
    return cov + mean[..., :, None] * mean[..., None, :]


def _chunks(n: int, per_row: int, budget: int) -> list[slice]:
    """Row slices of at most ``budget // per_row`` rows (at least one row each)."""
    step = max(1, min(n, budget // max(per_row, 1)))
    return [slice(lo, min(lo + step, n)) for lo in range(0, n, step)]


def contract_modes(core: torch.Tensor, mats: Sequence[torch.Tensor | None]) -> torch.Tensor:
    """Batched ``core ×_j mats[j]ᵀ`` over the modes j with a matrix; mats[j] has shape (n, r_j, p_j).

    Returns shape (n, q_0, ..., q_{K-1}) with q_j = p_j where a matrix is given, else r_j.
    """
    out = core.unsqueeze(0)
    for j, m in enumerate(mats):
        if m is None:
            continue
        moved = torch.movedim(out, j + 1, -1)                  # (n|1, ..., r_j)
        lead = moved.shape[:-1]
        prod = torch.matmul(moved.reshape(lead[0], -1, moved.shape[-1]), m)   # (n, M, p_j)
        out = torch.movedim(prod.reshape(m.shape[0], *lead[1:], m.shape[-1]), -1, j + 1)
    return out


def tucker_mode_messages(core: torch.Tensor, factors: Sequence[torch.Tensor], index: Sequence[torch.Tensor],
                         y: torch.Tensor, mode: int, n_values: int, core_cov: torch.Tensor | None = None,
                         budget: int = DEFAULT_BUDGET) -> tuple[torch.Tensor, torch.Tensor]:
    """Merged CEP sums Σ_{n: i_n^k = s} E[a_n a_nᵀ] and Σ_{n: i_n^k = s} y_n E[a_n] for mode ``mode``.

    a_n = W_(k) (⊗_{j≠k} u^j(i^j_n)) is the coefficient of u^k(i^k_n) in the prediction. With the mean core
    (``core_cov=None``, the authors' choice) E[a aᵀ] = W̄_(k) E[z zᵀ] W̄_(k)ᵀ; with ``core_cov`` = Cov(vec W)
    the exact term Σ_{i,i'} Cov(W_(k)[p,i], W_(k)[q,i']) E[z_i z_i'] is added.

    Args:
        core: W̄, shape (r_0, ..., r_{K-1}).
        factors: sqrt factors per mode, shape (S_j, r_j, r_j + 1) (see :func:`sqrt_factors`).
        index: per mode, the position of each observation in that mode's grid, shape (N,).
        y: targets, shape (N,).
        mode: k.
        n_values: S_k.
        core_cov: optional Cov(vec W), shape (R, R).

    Returns:
        ``(precision_sum, shift_sum)`` of shapes (S_k, r_k, r_k) and (S_k, r_k) (not yet scaled by E[τ]).
    """
    K, rk, N = core.ndim, core.shape[mode], y.shape[0]
    prec = torch.zeros(n_values, rk, rk, dtype=y.dtype, device=y.device)
    shift = torch.zeros(n_values, rk, dtype=y.dtype, device=y.device)
    width = 1
    for j in range(K):
        width *= core.shape[j] + 1 if j != mode else core.shape[j]
    for sl in _chunks(N, width + rk * rk, budget):
        gathered = [None if j == mode else factors[j][index[j][sl]] for j in range(K)]
        B = torch.movedim(contract_modes(core, gathered), mode + 1, 1)
        B = B.reshape(B.shape[0], rk, -1)                      # (n, r_k, Π_{j≠k}(r_j + 1))
        prec.index_add_(0, index[mode][sl], B @ B.transpose(-1, -2))
        shift.index_add_(0, index[mode][sl], y[sl, None] * B[:, :, -1])   # all-μ column = E[a_n]
    if core_cov is not None:
        prec = prec + _core_cov_term(core, factors, index, mode, n_values, core_cov, budget)
    return prec, shift


def _core_cov_term(core: torch.Tensor, factors: Sequence[torch.Tensor], index: Sequence[torch.Tensor],
                   mode: int, n_values: int, core_cov: torch.Tensor, budget: int) -> torch.Tensor:
    """Σ_{n∈s} Σ_{i,i'} Cov(W_(k)[p,i], W_(k)[q,i']) E[z_{¬k} z_{¬k}ᵀ]_{i i'}, shape (S_k, r_k, r_k)."""
    K, ranks = core.ndim, core.shape
    others = [j for j in range(K) if j != mode]
    moments = [factors[j] @ factors[j].transpose(-1, -2) for j in others]    # E[u uᵀ] per grid value
    width = 1
    for j in others:
        width *= ranks[j] ** 2
    zsum = torch.zeros(n_values, width, dtype=core.dtype, device=core.device)
    N = index[0].shape[0]
    for sl in _chunks(N, width, budget):
        kron = None
        for j, m in zip(others, moments):
            g = m[index[j][sl]]
            kron = g if kron is None else _batched_kron(kron, g)
        zsum.index_add_(0, index[mode][sl], kron.reshape(kron.shape[0], -1))
    Rp = _prod(ranks[j] for j in others)
    cov = core_cov.reshape(*ranks, *ranks)
    cov = torch.movedim(cov, (mode, K + mode), (0, K)).reshape(ranks[mode], Rp, ranks[mode], Rp)
    return torch.einsum("piqj,sij->spq", cov, zsum.reshape(n_values, Rp, Rp))


def _batched_kron(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Kronecker product of matching batches of matrices: (n, p, q), (n, s, t) -> (n, p s, q t)."""
    n, p, q = a.shape
    _, s, t = b.shape
    return (a[:, :, None, :, None] * b[:, None, :, None, :]).reshape(n, p * s, q * t)


def tucker_core_stats(factors: Sequence[torch.Tensor], index: Sequence[torch.Tensor], y: torch.Tensor,
                      budget: int = DEFAULT_BUDGET) -> tuple[torch.Tensor, torch.Tensor]:
    """Σ_n E[z_n z_nᵀ] (R, R) and Σ_n y_n E[z_n] (R,) with E[z zᵀ] = ⊗_k E[u^k u^kᵀ], R = Π r_k.

    The sum of Kronecker products is a sum of rank-one outer products of the vectorised per-mode moments,
    Σ_n ⊗_k vec(M_k,n), evaluated as one GEMM per chunk and rearranged to (i_0..i_{K-1}, j_0..j_{K-1}).
    """
    K = len(factors)
    ranks = [f.shape[1] for f in factors]
    moments = [f @ f.transpose(-1, -2) for f in factors]
    means = [f[..., -1] for f in factors]
    R = 1
    for r in ranks:
        R *= r
    N = y.shape[0]
    acc = torch.zeros(R * R, dtype=y.dtype, device=y.device)
    data = torch.zeros(R, dtype=y.dtype, device=y.device)
    head_width = R * R // (ranks[-1] ** 2)
    for sl in _chunks(N, head_width + R, budget):
        head = None
        zmean = None
        for k in range(K):
            v = moments[k][index[k][sl]].reshape(-1, ranks[k] ** 2)
            m = means[k][index[k][sl]]
            zmean = m if zmean is None else (zmean[:, :, None] * m[:, None, :]).reshape(m.shape[0], -1)
            if k < K - 1:
                head = v if head is None else (head[:, :, None] * v[:, None, :]).reshape(v.shape[0], -1)
        acc += (v.sum(0) if head is None else head.transpose(0, 1) @ v).reshape(-1)
        data += y[sl] @ zmean
    # (i0 j0, i1 j1, ...) -> (i0, i1, ..., j0, j1, ...)
    shape = [d for r in ranks for d in (r, r)]
    perm = [2 * k for k in range(K)] + [2 * k + 1 for k in range(K)]
    return acc.reshape(shape).permute(perm).reshape(R, R), data


def tucker_predictive(core: torch.Tensor, core_cov: torch.Tensor, factors: Sequence[torch.Tensor],
                      budget: int = DEFAULT_BUDGET) -> tuple[torch.Tensor, torch.Tensor]:
    """E[f] and Var[f] of f = vec(W)ᵀ z at points whose per-mode sqrt factors are given (n, r_k, r_k+1)."""
    n = factors[0].shape[0]
    ranks = list(core.shape)
    R = core.numel()
    mean = torch.empty(n, dtype=core.dtype, device=core.device)
    second = torch.empty(n, dtype=core.dtype, device=core.device)
    for sl in _chunks(n, R * R, budget):
        B = contract_modes(core, [f[sl] for f in factors]).reshape(-1, _prod(r + 1 for r in ranks))
        mean[sl] = B[:, -1]
        kron = None
        for f in factors:
            m = f[sl] @ f[sl].transpose(-1, -2)
            kron = m if kron is None else _batched_kron(kron, m)
        second[sl] = (B * B).sum(-1) + (kron.reshape(-1, R, R) * core_cov).sum((-1, -2))
    return mean, (second - mean**2).clamp(min=0.0)


def cp_mode_messages(factors: Sequence[torch.Tensor], index: Sequence[torch.Tensor], y: torch.Tensor,
                     mode: int, n_values: int) -> tuple[torch.Tensor, torch.Tensor]:
    """CP variant (W = superdiagonal of ones): a_n = ∘_{j≠k} u^j, E[a aᵀ] = ∘_{j≠k} E[u^j u^jᵀ] (Hadamard)."""
    r = factors[0].shape[1]
    mean = torch.ones(y.shape[0], r, dtype=y.dtype, device=y.device)
    second = torch.ones(y.shape[0], r, r, dtype=y.dtype, device=y.device)
    for j, f in enumerate(factors):
        if j == mode:
            continue
        g = f[index[j]]
        mean = mean * g[..., -1]
        second = second * (g @ g.transpose(-1, -2))
    prec = torch.zeros(n_values, r, r, dtype=y.dtype, device=y.device).index_add_(0, index[mode], second)
    shift = torch.zeros(n_values, r, dtype=y.dtype, device=y.device).index_add_(0, index[mode], y[:, None] * mean)
    return prec, shift


def cp_predictive(factors: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """E[f] and Var[f] for f = Σ_r Π_k u^k_r at points with sqrt factors (n, r, r+1)."""
    mean = None
    second = None
    for f in factors:
        m, s = f[..., -1], f @ f.transpose(-1, -2)
        mean = m if mean is None else mean * m
        second = s if second is None else second * s
    mu = mean.sum(-1)
    return mu, (second.sum((-1, -2)) - mu**2).clamp(min=0.0)


def _prod(values) -> int:
    out = 1
    for v in values:
        out *= v
    return out
