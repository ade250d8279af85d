"""Batched functions of symmetric positive-(semi)definite matrices with gradients that stay finite at repeated
eigenvalues: ``spd_sqrtm``, ``spd_inv_sqrtm``, ``spd_power``, ``spd_logm``, and the Lyapunov solve
``A X + X A = C`` in A's eigenbasis.

Why not autograd through ``torch.linalg.eigh``: its backward divides by eigenvalue gaps ``1/(l_i - l_j)``, which is
Inf/NaN for a repeated eigenvalue (an identity block, a rank-deficient covariance) even when ``f(A)`` is smooth
there. The Daleckii-Krein formula gives the derivative of ``f(A) = V f(L) V^T`` along a symmetric direction
``E`` as ``V (F o (V^T E V)) V^T`` with the first divided differences
``F_ij = (f(l_i) - f(l_j)) / (l_i - l_j)`` and ``F_ii = f'(l_i)``. Pairs closer than ``sqrt(eps)`` (relative)
use ``f'((l_i + l_j) / 2)``: the quotient would cancel catastrophically there, and the midpoint derivative is
exact to ``O(gap^2 f''')``.

Reference: Higham, "Functions of Matrices" (SIAM 2008), Thm 3.11 (Daleckii-Krein); Bhatia, "Matrix Analysis",
Sec. V.3. The exact forward passes run in float64 (as ``sciml.linalg.matfun``) and cast back to the input dtype.
Gradients are symmetric: the functions are defined on symmetric matrices, so only the symmetric part of the
incoming gradient matters (dense autograd of a polynomial in A returns an unsymmetrised one; compare sym parts).
"""

from __future__ import annotations

import math
from typing import Callable

import torch

from sciml.core import check_floating

Fn = Callable[[torch.Tensor], torch.Tensor]


def _check_symmetric_batch(A: torch.Tensor, name: str, *,
                           positive: bool | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Validate and decompose: float64 eigenvalues (..., n) and eigenvectors (..., n, n) of sym(A).

    ``positive``: True requires PD, False PSD (eigenvalues clamped at 0), None any symmetric matrix."""
    check_floating(A, name)
    if A.is_complex():
        raise ValueError(f"{name} needs a real symmetric matrix, got dtype {A.dtype}")
    if A.ndim < 2 or A.shape[-1] != A.shape[-2]:
        raise ValueError(f"{name} needs square matrices (..., n, n), got shape {tuple(A.shape)}")
    n = A.shape[-1]
    A64 = A.detach().to(torch.float64)
    scale = A64.abs().amax(dim=(-2, -1), keepdim=True).clamp_min(torch.finfo(torch.float64).tiny)
    tol = 10 * n * torch.finfo(A.dtype).eps
    asym = ((A64 - A64.mT).abs() / scale).max()
    if float(asym) > tol:
        raise ValueError(f"{name} needs a symmetric matrix; max |A - A^T| / max |A| = {float(asym):.2e}")
    lam, V = torch.linalg.eigh((A64 + A64.mT) / 2)
    if positive is None:
        return lam, V
    top = lam.abs().amax(dim=-1, keepdim=True)
    floor = -tol * top if not positive else tol * top
    bad = lam < floor if not positive else lam <= floor
    if bool(bad.any()):
        kind = "positive definite" if positive else "positive semi-definite"
        raise ValueError(f"{name}: the matrix is not {kind} (smallest eigenvalue {float(lam.min()):.3e}, "
                         f"largest magnitude {float(top.max()):.3e})")
    return lam.clamp_min(0.0), V


def divided_differences(lam: torch.Tensor, f: Fn, df: Fn) -> torch.Tensor:
    """First divided differences of ``f`` on the eigenvalues, with ``f'`` where they (nearly) coincide.

    Shapes: lam (..., n) -> (..., n, n).
    """
    if not isinstance(lam, torch.Tensor) or not lam.is_floating_point() or lam.ndim < 1:
        raise ValueError(f"lam must be a real floating tensor of eigenvalues (..., n), got {type(lam).__name__}")
    li, lj = lam[..., :, None], lam[..., None, :]
    gap = li - lj
    scale = torch.maximum(li.abs(), lj.abs()).clamp_min(torch.finfo(lam.dtype).tiny)
    close = gap.abs() <= math.sqrt(torch.finfo(lam.dtype).eps) * scale
    fl = f(lam)
    quotient = (fl[..., :, None] - fl[..., None, :]) / torch.where(close, torch.ones_like(gap), gap)
    return torch.where(close, df((li + lj) / 2), quotient)


class _SpectralFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, A: torch.Tensor, lam: torch.Tensor, V: torch.Tensor, f: Fn, df: Fn) -> torch.Tensor:
        ctx.save_for_backward(lam, V)
        ctx.f, ctx.df, ctx.dtype = f, df, A.dtype
        return ((V * f(lam)[..., None, :]) @ V.mT).to(A.dtype)

    @staticmethod
    def backward(ctx, G: torch.Tensor):
        lam, V = ctx.saved_tensors
        G64 = G.to(torch.float64)
        M = V.mT @ ((G64 + G64.mT) / 2) @ V  # (..., n, n) incoming gradient in the eigenbasis
        grad = V @ (divided_differences(lam, ctx.f, ctx.df) * M) @ V.mT
        return grad.to(ctx.dtype), None, None, None, None


def spd_matrix_function(A: torch.Tensor, f: Fn, df: Fn, *, name: str = "spd_matrix_function",
                        positive: bool = False) -> torch.Tensor:
    """``V f(L) V^T`` for symmetric PSD (``positive=True``: PD) matrices, Daleckii-Krein backward.

    ``f`` and ``df`` (its derivative) act elementwise on float64 eigenvalues. Shapes: (..., n, n) -> same.
    """
    lam, V = _check_symmetric_batch(A, name, positive=positive)
    return _SpectralFunction.apply(A, lam, V, f, df)


def spd_sqrtm(A: torch.Tensor) -> torch.Tensor:
    """Principal square root of symmetric PD matrices (PSD with a singular direction: the gradient there is
    infinite, so PD is required). Shapes: (..., n, n) -> same."""
    return spd_matrix_function(A, torch.sqrt, lambda x: 0.5 / torch.sqrt(x), name="spd_sqrtm", positive=True)


def spd_inv_sqrtm(A: torch.Tensor) -> torch.Tensor:
    """``A^{-1/2}`` of symmetric PD matrices. Shapes: (..., n, n) -> same."""
    return spd_matrix_function(A, torch.rsqrt, lambda x: -0.5 * x ** -1.5, name="spd_inv_sqrtm", positive=True)


def spd_power(A: torch.Tensor, p: float) -> torch.Tensor:
    """``A^p`` (real p) of symmetric PD matrices. Shapes: (..., n, n) -> same."""
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not math.isfinite(p):
        raise ValueError(f"p must be a finite real number, got {p!r}")
    return spd_matrix_function(A, lambda x: x ** p, lambda x: p * x ** (p - 1), name="spd_power", positive=True)


def eigenvalue_clamp(A: torch.Tensor, floor: float) -> torch.Tensor:
    """``V max(L, floor) V^T`` of any symmetric matrix (SPDNet's ReEig; an SPD projection for ``floor > 0``).

    The gradient is the Daleckii-Krein one of ``max(x, floor)`` (derivative 1 above the floor, 0 below), finite
    at repeated eigenvalues. Shapes: (..., n, n) -> same.
    """
    if isinstance(floor, bool) or not isinstance(floor, (int, float)) or not math.isfinite(floor):
        raise ValueError(f"floor must be a finite real number, got {floor!r}")
    lam, V = _check_symmetric_batch(A, "eigenvalue_clamp", positive=None)
    return _SpectralFunction.apply(A, lam, V, lambda x: x.clamp_min(floor), lambda x: (x > floor).to(x.dtype))


def spd_logm(A: torch.Tensor) -> torch.Tensor:
    """Principal logarithm of symmetric PD matrices. Shapes: (..., n, n) -> same."""
    return spd_matrix_function(A, torch.log, torch.reciprocal, name="spd_logm", positive=True)


class _Lyapunov(torch.autograd.Function):
    """``X = L^{-1}(C)`` with ``L(X) = A X + X A``; L is self-adjoint for symmetric A."""

    @staticmethod
    def forward(ctx, A: torch.Tensor, C: torch.Tensor, lam: torch.Tensor, V: torch.Tensor) -> torch.Tensor:
        denom = lam[..., :, None] + lam[..., None, :]  # (..., n, n), > 0 for PD A
        X = V @ ((V.mT @ C.to(torch.float64) @ V) / denom) @ V.mT
        ctx.save_for_backward(X, lam, V)
        ctx.dtypes = (A.dtype, C.dtype)
        return X.to(C.dtype)

    @staticmethod
    def backward(ctx, G: torch.Tensor):
        X, lam, V = ctx.saved_tensors
        denom = lam[..., :, None] + lam[..., None, :]
        # dL = <G, dX>, dX = L^{-1}(dC - dA X - X dA)  =>  grad_C = L^{-1}(G), grad_A = -(grad_C X^T + X^T grad_C)
        grad_C = V @ ((V.mT @ G.to(torch.float64) @ V) / denom) @ V.mT
        grad_A = -(grad_C @ X.mT + X.mT @ grad_C)
        return grad_A.to(ctx.dtypes[0]), grad_C.to(ctx.dtypes[1]), None, None


def lyapunov_solve(A: torch.Tensor, C: torch.Tensor) -> torch.Tensor:
    """Solve ``A X + X A = C`` for symmetric positive-definite A (batched), in A's eigenbasis.

    ``X = V ((V^T C V) / (l_i + l_j)) V^T``; the backward solves the same equation with the incoming gradient
    (no eigenvalue gaps anywhere). C may be any real matrix (X is symmetric when C is).
    Shapes: A (..., n, n), C (..., n, n) (broadcast over the batch) -> (..., n, n).
    """
    lam, V = _check_symmetric_batch(A, "lyapunov_solve", positive=True)
    check_floating(C, "C")
    if C.is_complex() or C.ndim < 2 or C.shape[-2:] != A.shape[-2:]:
        raise ValueError(f"C must be real with trailing shape {tuple(A.shape[-2:])}, got {tuple(C.shape)} "
                         f"{C.dtype}")
    return _Lyapunov.apply(A, C, lam, V)
