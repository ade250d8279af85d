"""HiPPO-LegS matrix, its normal-plus-low-rank (NPLR) split, and the diagonal S4D initialisations.

Reference: Gu, Dao, Ermon, Rudra, Re, "HiPPO: Recurrent Memory with Optimal Polynomial Projections"
(NeurIPS 2020, arXiv 2008.07669, Eq. (2) LegS); Gu, Goel, Re, "Efficiently Modeling Long Sequences with Structured
State Spaces" (ICLR 2022, arXiv 2111.00396, Thm. 1: NPLR form); Gu, Gupta, Goel, Re, "On the Parameterization and
Initialization of Diagonal State Space Models" (NeurIPS 2022, arXiv 2206.11893, S4D-LegS / S4D-Lin / S4D-Inv).
"""

from __future__ import annotations

import dataclasses
import math

import torch

from sciml.core import Result


def _check_state_size(N: int, name: str = "N", even: bool = False) -> None:
    if isinstance(N, bool) or not isinstance(N, int) or N < 1:
        raise ValueError(f"{name} must be a positive int, got {N!r}")
    if even and N % 2:
        raise ValueError(f"{name} must be even (conjugate pairs are kept as N/2 modes), got {N}")


def hippo_legs(N: int, dtype: torch.dtype = torch.float64,
               device: torch.device | str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The HiPPO-LegS state matrix and input vector (the sign convention x' = A x + B u, A stable).

    A[n, k] = -sqrt(2n+1) sqrt(2k+1) for n > k, -(n+1) for n = k, 0 for n < k;  B[n] = sqrt(2n+1).
    A is lower triangular with the exact eigenvalues -1, ..., -N.

    Reference: HiPPO (arXiv 2008.07669), Eq. (2) / Appendix D.3 (LegS).

    Args:
        N: state size (>= 1).
        dtype, device: of the returned tensors (float64 recommended).

    Returns:
        (A, B) with shapes (N, N) and (N,).
    """
    _check_state_size(N)
    r = torch.sqrt(2 * torch.arange(N, dtype=torch.float64) + 1)
    A = -torch.tril(r[:, None] * r[None, :], diagonal=-1) - torch.diag(torch.arange(1, N + 1, dtype=torch.float64))
    return A.to(dtype=dtype, device=device), r.to(dtype=dtype, device=device)


@dataclasses.dataclass(frozen=True)
class NPLR(Result):
    """A_H = A_N - p p^T with A_N normal (A_N = -I/2 + skew), and B_H = sqrt(2) p.

    Attributes:
        A: the HiPPO-LegS matrix A_H, (N, N).
        B: the HiPPO-LegS input vector, (N,).
        normal: A_N = A_H + p p^T, (N, N).
        p: the low-rank factor sqrt(n + 1/2), (N,).
    """

    A: torch.Tensor
    B: torch.Tensor
    normal: torch.Tensor
    p: torch.Tensor


def hippo_legs_nplr(N: int, dtype: torch.dtype = torch.float64,
                    device: torch.device | str | None = None) -> NPLR:
    """HiPPO-LegS in normal-plus-low-rank form (S4, arXiv 2111.00396, Thm. 1 / Cor. 1).

    Shapes: A, normal (N, N); B, p (N,).
    """
    A, B = hippo_legs(N, dtype, device)
    p = torch.sqrt(torch.arange(N, dtype=dtype, device=device) + 0.5)
    return NPLR(A=A, B=B, normal=A + p[:, None] * p[None, :], p=p)


@dataclasses.dataclass(frozen=True)
class DiagonalInit(Result):
    """A diagonal SSM initialisation: x' = diag(eigenvalues) x + B u, y = Re(C x).

    The basis change A = V diag(eigenvalues) V^{-1} has been applied: ``B = V^{-1} B_H`` restricted to the stored
    modes. Layers draw C (and S5's MIMO B) in the original basis and rotate them with ``eigenvectors`` /
    ``eigenvectors_inv`` when those are given, otherwise directly in the eigenbasis.

    Attributes:
        eigenvalues: (M,) complex128 continuous-time eigenvalues (the stored modes).
        B: (M,) complex128 rotated input vector V^{-1} B_H restricted to the stored modes (ones for Lin/Inv).
        eigenvectors: (N, M) complex128 columns of V for the stored modes, or None.
        eigenvectors_inv: (M, N) complex128 matching rows of V^{-1} (halved for real modes under conj_sym), or None.
        conj_sym: True when only one member of each conjugate pair is stored and the layer takes 2 Re(.).
        name: "legs" | "lin" | "inv" | "ptd".
    """

    eigenvalues: torch.Tensor
    B: torch.Tensor
    eigenvectors: torch.Tensor | None
    eigenvectors_inv: torch.Tensor | None
    conj_sym: bool
    name: str


def s4d_legs(N: int, conj_sym: bool = True) -> DiagonalInit:
    """S4D-LegS ("HiPPO-N" / LegS-D): the diagonalised *normal part* of HiPPO-LegS, rank-one term dropped.

    A_N = -I/2 + S with S skew-symmetric, so A_N = V diag(-1/2 + i w) V^* with unitary V, obtained from the
    Hermitian eigenproblem of -i S (stable; no ill-conditioning). B~ = V^* B_H.

    Reference: S4D (arXiv 2206.11893), Sec. 4 "S4D-LegS"; S5 code ``make_DPLR_HiPPO``.

    Args:
        N: state size of the (N, N) matrix (even when ``conj_sym``).
        conj_sym: keep the N/2 eigenvalues with positive imaginary part (layer uses 2 Re); otherwise all N.

    Returns:
        DiagonalInit with N/2 (or N) modes; real parts exactly -1/2.
    """
    _check_state_size(N, even=conj_sym)
    nplr = hippo_legs_nplr(N)
    S = nplr.normal + 0.5 * torch.eye(N, dtype=torch.float64)
    w, V = torch.linalg.eigh(-1j * S.to(torch.complex128))        # S = V diag(i w) V^*
    lam = torch.complex(torch.full_like(w, -0.5), w)
    Bt = V.conj().T @ nplr.B.to(torch.complex128)
    if conj_sym:
        keep = torch.argsort(w, descending=True)[: N // 2]         # w > 0 half; w's come in +- pairs
        lam, Bt, V = lam[keep], Bt[keep], V[:, keep]
    return DiagonalInit(eigenvalues=lam, B=Bt, eigenvectors=V, eigenvectors_inv=V.conj().T, conj_sym=conj_sym,
                        name="legs")


def _with_conjugates(init: DiagonalInit, conj_sym: bool) -> DiagonalInit:
    """The full spectrum (each stored mode and its conjugate, B conjugated) when conj_sym is False."""
    if conj_sym:
        return init
    return dataclasses.replace(init, eigenvalues=torch.cat([init.eigenvalues, init.eigenvalues.conj()]),
                               B=torch.cat([init.B, init.B.conj()]), conj_sym=False)


def s4d_lin(N: int, conj_sym: bool = True) -> DiagonalInit:
    """S4D-Lin: lambda_n = -1/2 + i pi n, n = 0..N/2-1 (N/2 modes, conjugate symmetric), B = 1.

    ``conj_sym=False`` returns all N modes (the N/2 above and their conjugates).

    Reference: S4D (arXiv 2206.11893), Sec. 4, Eq. (9).
    """
    _check_state_size(N, even=True)
    n = torch.arange(N // 2, dtype=torch.float64)
    lam = torch.complex(torch.full_like(n, -0.5), math.pi * n)
    return _with_conjugates(DiagonalInit(eigenvalues=lam, B=torch.ones(N // 2, dtype=torch.complex128),
                                         eigenvectors=None, eigenvectors_inv=None, conj_sym=True, name="lin"),
                            conj_sym)


def s4d_inv(N: int, conj_sym: bool = True) -> DiagonalInit:
    """S4D-Inv: lambda_n = -1/2 + i (N/pi)(N/(2n+1) - 1), n = 0..N/2-1, B = 1 (all N modes without conj_sym).

    Reference: S4D (arXiv 2206.11893), Sec. 4, Eq. (8).
    """
    _check_state_size(N, even=True)
    n = torch.arange(N // 2, dtype=torch.float64)
    lam = torch.complex(torch.full_like(n, -0.5), (N / math.pi) * (N / (2 * n + 1) - 1))
    return _with_conjugates(DiagonalInit(eigenvalues=lam, B=torch.ones(N // 2, dtype=torch.complex128),
                                         eigenvectors=None, eigenvectors_inv=None, conj_sym=True, name="inv"),
                            conj_sym)


def eigenvector_condition(A: torch.Tensor) -> float:
    """2-norm condition number of the unit-column eigenvector matrix that ``torch.linalg.eig`` returns for A.

    For HiPPO-LegS this saturates near 1/eps in float64 for N >= ~24 (the true value grows like 2^(2.45 N));
    see ``eigenvector_condition_exact`` for the exact value.
    """
    _, V = torch.linalg.eig(A.to(torch.complex128) if not A.is_complex() else A)
    return float(torch.linalg.cond(V))
