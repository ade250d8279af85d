"""Discretisation, Vandermonde convolution kernels, FFT convolution, scans and transfer functions.

Reference: S4D (Gu et al., arXiv 2206.11893), Sec. 3 (ZOH / bilinear, Vandermonde kernel); S5 (Smith, Warrington,
Linderman, ICLR 2023, arXiv 2208.04933), Sec. 2-3 (parallel associative scan); PTD (arXiv 2310.01698), Eq. (2)
(transfer function G(s) = C (sI - A)^{-1} B).
"""

from __future__ import annotations

import math

import torch

DISCRETIZATIONS = ("zoh", "bilinear")


def check_method(method: str) -> str:
    if method not in DISCRETIZATIONS:
        raise ValueError(f"discretization must be one of {DISCRETIZATIONS}, got {method!r}")
    return method


def discretize(Lambda: torch.Tensor, dt: torch.Tensor, method: str = "zoh") -> tuple[torch.Tensor, torch.Tensor]:
    """Discrete-time diagonal transition and input factor for x' = Lambda x + B u with step dt.

    ZOH: Lbar = exp(dt Lambda), Bbar = (Lbar - 1)/Lambda * B.  Bilinear: Lbar = (1 + dt Lambda/2)/(1 - dt Lambda/2),
    Bbar = dt/(1 - dt Lambda/2) * B. Returns (Lbar, factor) with Bbar = factor * B.

    Shapes: Lambda and dt broadcast against each other; outputs have the broadcast shape (complex).
    """
    check_method(method)
    dtL = dt * Lambda
    if method == "zoh":
        Lbar = torch.exp(dtL)
        return Lbar, (Lbar - 1) / Lambda
    denom = 1 - dtL / 2
    return (1 + dtL / 2) / denom, dt / denom


def vandermonde_kernel(W: torch.Tensor, Lbar: torch.Tensor, L: int, conj_sym: bool = True) -> torch.Tensor:
    """K[..., l] = Re(c * sum_n W[..., n] Lbar[..., n]^l), c = 2 with conjugate symmetry else 1.

    Powers come from exp(l log Lbar) (no error accumulation), split as l = b*s + j with s ~ sqrt(L):
    K[b*s + j] = sum_n (W_n Lbar_n^(b s)) Lbar_n^j, one batched matrix product. Only O(M sqrt(L)) complex
    exponentials are evaluated instead of O(M L) (complex exp is the bottleneck of the plain Vandermonde product
    on CPU); the multiply-adds stay O(M L).

    Shapes: W, Lbar (..., M) complex (broadcastable) -> K (..., L) real (the real dtype of W).
    """
    W, Lbar = torch.broadcast_tensors(W, Lbar)
    logL = torch.log(Lbar)
    s = max(1, math.isqrt(L - 1) + 1) if L > 1 else 1
    nb = -(-L // s)
    rdt = logL.real.dtype
    inner = torch.exp(logL[..., :, None] * torch.arange(s, device=W.device, dtype=rdt))            # (..., M, s)
    outer = W[..., None, :] * torch.exp(logL[..., None, :] * (s * torch.arange(nb, device=W.device, dtype=rdt))[:, None])
    K = (outer @ inner).real.flatten(-2)[..., :L]                                                  # (..., L)
    return 2 * K if conj_sym else K


def fft_conv(u: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
    """Causal (linear, not circular) convolution y[l] = sum_{j<=l} K[j] u[l-j] along the last axis via rFFT on 2L.

    Shapes: u (..., L), K (..., L) broadcastable -> (..., L).
    """
    L = u.shape[-1]
    n = 2 * L
    return torch.fft.irfft(torch.fft.rfft(u, n=n) * torch.fft.rfft(K, n=n), n=n)[..., :L]


def linear_scan(a: torch.Tensor, b: torch.Tensor, dim: int = 0) -> torch.Tensor:
    """x_k = a_k x_{k-1} + b_k (x_{-1} = 0) along ``dim`` by a Hillis-Steele associative scan (log2 L sweeps).

    The operator (a1, b1) o (a2, b2) = (a2 a1, a2 b1 + b2) is associative, so the prefix "sums" equal the
    sequential recursion. Work O(L log L), depth O(log L).

    Shapes: a, b broadcastable, same shape along ``dim`` -> x with the broadcast shape.
    """
    a, b = torch.broadcast_tensors(a, b)
    a = a.movedim(dim, 0)
    b = b.movedim(dim, 0)
    L = a.shape[0]
    shift = 1
    while shift < L:
        # new (a, b)[k] = (a, b)[k - shift] o (a, b)[k] for k >= shift
        b = torch.cat([b[:shift], a[shift:] * b[:-shift] + b[shift:]], dim=0)
        a = torch.cat([a[:shift], a[shift:] * a[:-shift]], dim=0)
        shift *= 2
    return b.movedim(0, dim)


def sequential_scan(a: torch.Tensor, b: torch.Tensor, dim: int = 0) -> torch.Tensor:
    """The same recursion as ``linear_scan`` as a plain loop over time (reference; O(L) steps)."""
    a, b = torch.broadcast_tensors(a, b)
    a = a.movedim(dim, 0)
    b = b.movedim(dim, 0)
    xs = []
    x = torch.zeros_like(b[0])
    for k in range(b.shape[0]):
        x = a[k] * x + b[k]
        xs.append(x)
    return torch.stack(xs, 0).movedim(0, dim)


def transfer_function(A: torch.Tensor, B: torch.Tensor, C: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """G(s) = C (sI - A)^{-1} B evaluated at the points s (complex128 inside).

    ``A`` may be a dense (N, N) matrix or the (N,) diagonal of a diagonal system (then G(s) = sum C_n B_n/(s - A_n)).

    Reference: arXiv 2310.01698, Sec. 2 (transfer function; H-infinity norm = sup_omega |G(i omega)|).

    Args:
        A: (N, N) or (N,) state matrix.
        B: (N,) input vector or (N, H) input matrix.
        C: (N,) output vector or (P, N) output matrix.
        s: (S,) points (complex; use 1j * omega for the imaginary axis).

    Returns:
        (S,) for SISO, (S, P, H) for MIMO (dimensions of size-one vectors dropped as given), complex128.
    """
    for name, t in (("A", A), ("B", B), ("C", C), ("s", s)):
        if not isinstance(t, torch.Tensor):
            raise ValueError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
        if not bool(torch.isfinite(t).all()):
            raise ValueError(f"{name} contains NaN or Inf entries")
    if A.ndim not in (1, 2) or (A.ndim == 2 and A.shape[0] != A.shape[1]):
        raise ValueError(f"A must be (N, N) or a diagonal (N,), got shape {tuple(A.shape)}")
    N = A.shape[0]
    if B.shape[0] != N or B.ndim > 2:
        raise ValueError(f"B must be (N,) or (N, H) with N={N}, got shape {tuple(B.shape)}")
    if C.shape[-1] != N or C.ndim > 2:
        raise ValueError(f"C must be (N,) or (P, N) with N={N}, got shape {tuple(C.shape)}")
    if s.ndim != 1:
        raise ValueError(f"s must be a 1-D tensor of points, got shape {tuple(s.shape)}")
    c128 = torch.complex128
    A, B, C, s = A.to(c128), B.to(c128), C.to(c128), s.to(c128)
    Bm = B if B.ndim == 2 else B[:, None]
    Cm = C if C.ndim == 2 else C[None, :]
    if A.ndim == 1:
        X = Bm[None] / (s[:, None, None] - A[None, :, None])                     # (S, N, H)
    else:
        eye = torch.eye(N, dtype=c128, device=A.device)
        X = torch.linalg.solve(s[:, None, None] * eye - A, Bm.expand(s.shape[0], N, Bm.shape[1]))
    G = Cm[None] @ X                                                             # (S, P, H)
    if B.ndim == 1:
        G = G[..., 0]
    if C.ndim == 1:
        G = G[..., 0, :] if B.ndim == 2 else G[..., 0]
    return G
