"""Matrix functions: Newton-Schulz orthogonalisation, polar factor, and PSD square root / inverse root / log.

The exact functions upcast to float64 internally (SVD / ``eigh``) and cast back to the input's dtype; the
Newton-Schulz iteration runs in the low precision it was tuned for. All functions batch over leading dims.
Imports only torch and ``sciml.core``.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable

import torch

from sciml.core import Result, Status, check_floating

# Quintic Newton-Schulz coefficients (a, b, c) and step count from Keller Jordan's Muon
# (github.com/KellerJordan/Muon, muon.py, zeropower_via_newtonschulz5); see shared/specs/optim_numerics.md 1.2.
NS_QUINTIC: tuple[float, float, float] = (3.4445, -4.7750, 2.0315)
NS_STEPS = 5
NS_EPS = 1e-7  # added to the Frobenius norm before dividing (same source)
NS_DTYPES = (torch.bfloat16, torch.float16, torch.float32, torch.float64)


@dataclasses.dataclass(frozen=True)
class PolarResult(Result):
    """Right polar decomposition ``G = unitary @ positive``. Shapes: unitary (..., m, n), positive (..., n, n)."""

    unitary: torch.Tensor
    positive: torch.Tensor
    status: Status = Status.CONVERGED


def newton_schulz(G: torch.Tensor, steps: int = NS_STEPS,
                  coefficients: tuple[float, float, float] = NS_QUINTIC, eps: float = NS_EPS,
                  dtype: torch.dtype = torch.bfloat16) -> torch.Tensor:
    """Approximate orthogonal polar factor ``U V^T`` of ``G`` by the quintic Newton-Schulz iteration ("NS5").

    Reference:
        K. Jordan et al., "Muon: An optimizer for hidden layers in neural networks" (2024),
        ``zeropower_via_newtonschulz5``. Each step applies ``p(s) = a s + b s^3 + c s^5`` to every singular value
        of the Frobenius-normalised input. The coefficients maximise the slope at 0 and do NOT converge to 1:
        after 5 steps singular values above ~1.5e-3 of ``||G||_F`` land roughly in [0.7, 1.2]; smaller ones are
        not orthogonalised.

    Args:
        G: matrix or batch of matrices, finite, floating.
        steps: number of quintic steps (>= 0).
        coefficients: (a, b, c) of the odd polynomial.
        eps: added to the Frobenius norm in the pre-normalisation.
        dtype: precision of the iteration (bfloat16 as in Muon; float32/float64 for reference runs).

    Returns:
        A tensor of G's shape and dtype.

    Shapes: (..., m, n) -> (..., m, n); the iteration works on the wide orientation (rows <= cols) so the Gram
    matrix is ``min(m, n)`` square.
    """
    _check_real_matrix(G, "G")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise ValueError(f"steps must be a non-negative int, got {steps!r}")
    if len(coefficients) != 3:
        raise ValueError(f"coefficients must be a triple (a, b, c), got {coefficients!r}")
    if dtype not in NS_DTYPES:
        raise ValueError(f"dtype must be one of {NS_DTYPES}, got {dtype}")
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not 0 <= eps < math.inf:
        raise ValueError(f"eps must be a finite number >= 0, got {eps!r}")
    a, b, c = coefficients
    X = G.to(dtype)
    tall = G.shape[-2] > G.shape[-1]
    if tall:
        X = X.mT  # (..., n, m) wide
    X = X / (X.norm(dim=(-2, -1), keepdim=True) + eps)  # spectral norm <= Frobenius norm = 1
    batch = X.shape[:-2]
    X = X.reshape(-1, *X.shape[-2:]) if batch else X  # (B, r, c) or (r, c)
    # Fused like torch.optim.Muon's _zeropower_via_newtonschulz: B = b A + c A^2 and X = a X + B X each in
    # one addmm/baddbmm (a GEMM with the scaled add folded in: one rounding to bf16 per step instead of two).
    mm, gemm = (torch.bmm, torch.baddbmm) if batch else (torch.mm, torch.addmm)
    for _ in range(steps):
        A = mm(X, X.mT)  # (..., r, r), r = min(m, n)
        B = gemm(A, A, A, beta=b, alpha=c)
        X = gemm(X, B, X, beta=a)
    if batch:
        X = X.reshape(*batch, *X.shape[-2:])
    if tall:
        X = X.mT
    return X.to(G.dtype)


def _check_real_matrix(G: torch.Tensor, name: str) -> None:
    check_floating(G, name)
    if G.is_complex():
        raise ValueError(f"{name} must be real, got dtype {G.dtype}")
    if G.ndim < 2:
        raise ValueError(f"{name} must have at least 2 dims (..., m, n), got shape {tuple(G.shape)}")


def polar(G: torch.Tensor) -> PolarResult:
    """Exact right polar decomposition ``G = U P`` via a float64 thin SVD ``G = W S V^T``: ``U = W V^T``,
    ``P = V S V^T``. Matches ``scipy.linalg.polar(G, side="right")``; results are cast back to G's dtype.

    Shapes: G (..., m, n) -> unitary (..., m, n), positive (..., n, n).
    """
    _check_real_matrix(G, "G")
    W, S, Vh = torch.linalg.svd(G.to(torch.float64), full_matrices=False)
    unitary = W @ Vh
    positive = Vh.mT @ (S[..., :, None] * Vh)
    return PolarResult(unitary=unitary.to(G.dtype), positive=positive.to(G.dtype))


def _psd_function(A: torch.Tensor, f: Callable[[torch.Tensor], torch.Tensor], name: str,
                  tol: float | None, floor: float = 0.0) -> torch.Tensor:
    """``V f(clip(Lambda)) V^T`` from a float64 ``eigh``, cast back to A's dtype.

    Eigenvalues in ``[-tol * max|lambda|, 0)`` are rounding noise and clipped to 0; more negative ones mean A is
    not PSD (ValueError). ``floor``: the clipped eigenvalues must exceed it (functions singular at 0).
    """
    check_floating(A, "A")
    if A.is_complex():
        raise ValueError(f"{name} needs a real symmetric matrix, got dtype {A.dtype}")
    if A.ndim < 2 or A.shape[-1] != A.shape[-2]:
        raise ValueError(f"{name} needs square matrices (..., n, n), got shape {tuple(A.shape)}")
    n = A.shape[-1]
    if tol is not None and (isinstance(tol, bool) or not isinstance(tol, (int, float)) or not 0 <= tol < 1):
        raise ValueError(f"tol must be a number in [0, 1) (relative size of negligible eigenvalues), got {tol!r}")
    if tol is None:
        tol = 10 * n * torch.finfo(A.dtype).eps  # eigh's backward error is ~ n eps ||A||
    A64 = A.to(torch.float64)
    scale = A64.abs().amax(dim=(-2, -1), keepdim=True).clamp_min(torch.finfo(torch.float64).tiny)
    if bool(((A64 - A64.mT).abs() > tol * scale).any()):
        raise ValueError(f"{name} needs a symmetric matrix; max |A - A^T| = "
                         f"{float((A64 - A64.mT).abs().max()):.3e}")
    lam, V = torch.linalg.eigh((A64 + A64.mT) / 2)  # symmetrise: only the rounding asymmetry is removed
    top = lam.abs().amax(dim=-1, keepdim=True)
    if bool((lam < -tol * top).any()):
        raise ValueError(f"{name}: the matrix is not positive semi-definite (smallest eigenvalue "
                         f"{float(lam.min()):.3e}, largest magnitude {float(top.max()):.3e})")
    lam = lam.clamp_min(0.0)
    if bool((lam <= floor).any()):
        raise ValueError(f"{name}: the matrix is singular (smallest eigenvalue {float(lam.min()):.3e}); "
                         "pass eps > 0 to regularise")
    return (V * f(lam)[..., None, :]) @ V.mT  # (..., n, n)


def sqrtm_psd(A: torch.Tensor, tol: float | None = None) -> torch.Tensor:
    """Principal square root of a symmetric PSD matrix (float64 ``eigh`` inside, result in A's dtype).

    Args:
        A: symmetric positive semi-definite (..., n, n).
        tol: relative size of negative eigenvalues treated as rounding (default ``10 n eps(A.dtype)``).

    Shapes: (..., n, n) -> (..., n, n).
    """
    return _psd_function(A, torch.sqrt, "sqrtm_psd", tol, floor=-1.0).to(A.dtype)


def inv_sqrtm_psd(A: torch.Tensor, eps: float = 0.0, tol: float | None = None) -> torch.Tensor:
    """``(A + eps I)^{-1/2}`` of a symmetric PSD matrix (float64 ``eigh`` inside, result in A's dtype).

    Raises ValueError when ``A + eps I`` is singular. Shapes: (..., n, n) -> (..., n, n).
    """
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not 0 <= eps < math.inf:
        raise ValueError(f"eps must be a finite number >= 0, got {eps!r}")
    return _psd_function(A, lambda lam: (lam + eps).rsqrt(), "inv_sqrtm_psd", tol, floor=-eps).to(A.dtype)


def logm_psd(A: torch.Tensor, eps: float = 0.0, tol: float | None = None) -> torch.Tensor:
    """Principal logarithm ``log(A + eps I)`` of a symmetric positive-definite matrix (float64 ``eigh`` inside).

    Raises ValueError when ``A + eps I`` is singular. Shapes: (..., n, n) -> (..., n, n).
    """
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not 0 <= eps < math.inf:
        raise ValueError(f"eps must be a finite number >= 0, got {eps!r}")
    return _psd_function(A, lambda lam: torch.log(lam + eps), "logm_psd", tol, floor=-eps).to(A.dtype)
