"""Discretisation, Vandermonde convolution kernels, FFT convolution, scans and transfer functions.

Reference: S4D (Gu et al., arXiv 2206.11893), Sec. 3 (ZOH / bilinear, Vandermonde kernel); S5 (Smith, Warrington,
Linderman, ICLR 2023, arXiv 2208.04933), Sec. 2-3 (parallel associative scan); PTD (arXiv 2310.01698), Eq. (2)
(transfer function G(s) = C (sI - A)^{-1} B).
"""

from __future__ import annotations

import math

import torch

DISCRETIZATIONS = ("zoh", "bilinear")

# Real parts of log(Lbar) below this are clamped: exp(l * x) for l >= 1 underflows to 0 in float64 either way
# (exp(-746) == 0), so the clamp changes no representable value, while -inf (from log(0)) would give
# 0 * (-inf) = NaN at lag 0.
LOG_DECAY_FLOOR = -1000.0


def check_method(method: str) -> str:
    if method not in DISCRETIZATIONS:
        raise ValueError(f"discretization must be one of {DISCRETIZATIONS}, got {method!r}")
    return method


def complex_expm1(z: torch.Tensor) -> torch.Tensor:
    """exp(z) - 1 without cancellation for small |z| (torch's complex expm1 is exp(z) - 1 on CPU).

    exp(a + ib) - 1 = (expm1(a) cos b - 2 sin^2(b/2)) + i exp(a) sin b.
    """
    a, b = z.real, z.imag
    return torch.complex(torch.expm1(a) * torch.cos(b) - 2 * torch.sin(b / 2) ** 2, torch.exp(a) * torch.sin(b))


def discretize(Lambda: torch.Tensor, dt: torch.Tensor, method: str = "zoh") -> tuple[torch.Tensor, torch.Tensor]:
    """Discrete-time diagonal transition and input factor for x' = Lambda x + B u with step dt.

    ZOH: Lbar = exp(dt Lambda), Bbar = (Lbar - 1)/Lambda * B.  Bilinear: Lbar = (1 + dt Lambda/2)/(1 - dt Lambda/2),
    Bbar = dt/(1 - dt Lambda/2) * B. Returns (Lbar, factor) with Bbar = factor * B. The ZOH factor uses an
    expm1 (exact for tiny dt Lambda in float32, where exp(x) - 1 cancels to 0); Lbar may underflow to 0 (fine).

    Shapes: Lambda and dt broadcast against each other; outputs have the broadcast shape (complex).
    """
    check_method(method)
    dtL = dt * Lambda
    if method == "zoh":
        return torch.exp(dtL), complex_expm1(dtL) / Lambda
    denom = 1 - dtL / 2
    return (1 + dtL / 2) / denom, dt / denom


def log_transition(Lambda: torch.Tensor, dt: torch.Tensor, method: str = "zoh") -> torch.Tensor:
    """log(Lbar), computed without forming Lbar (no log(0) = -inf when the decay underflows), real part clamped
    at LOG_DECAY_FLOOR. ZOH: dt Lambda. Bilinear: log(1 + dt Lambda/2) - log(1 - dt Lambda/2).

    Shapes: broadcast of Lambda and dt (complex).
    """
    check_method(method)
    dtL = dt * Lambda
    if method == "bilinear":
        dtL = torch.log(1 + dtL / 2) - torch.log(1 - dtL / 2)
    return torch.complex(dtL.real.clamp_min(LOG_DECAY_FLOOR), dtL.imag)


def _split(L: int) -> tuple[int, int]:
    """l = b*s + j with s ~ sqrt(L): (s, number of blocks nb)."""
    s = max(1, math.isqrt(max(L - 1, 0)) + 1)
    return s, -(-L // s)


def transition_powers(log_Lbar: torch.Tensor, n: int, stride: int = 1, cdtype: torch.dtype = torch.complex128) -> torch.Tensor:
    """Lbar^(stride * j), j = 0..n-1, from log(Lbar) in complex128 (phases exact to float64 before the cast).

    Exponents below -708 are flushed to exactly 0 instead of float64 subnormals (a 2x CPU slowdown, and
    below 1e-307 relative to the lag-0 term anyway).

    Shapes: (..., M) -> (..., M, n).
    """
    x = log_Lbar.to(torch.complex128)
    x = torch.complex(x.real.clamp_min(LOG_DECAY_FLOOR), x.imag)          # log(0) = -inf -> finite floor
    arg = x[..., None] * (stride * torch.arange(n, device=x.device, dtype=torch.float64))
    re = torch.where(arg.real < -708.0, torch.full_like(arg.real, -math.inf), arg.real)
    return torch.exp(torch.complex(re, arg.imag)).to(cdtype)


def _check_length(L: int) -> None:
    if isinstance(L, bool) or not isinstance(L, int) or L < 1:
        raise ValueError(f"sequence length L must be a positive int, got {L!r}")


def vandermonde_kernel(W: torch.Tensor, Lbar: torch.Tensor | None, L: int, conj_sym: bool = True, *,
                       log_Lbar: torch.Tensor | None = None) -> torch.Tensor:
    """K[..., l] = Re(c * sum_n W[..., n] Lbar[..., n]^l), c = 2 with conjugate symmetry else 1.

    Powers come from exp(l log Lbar) (no error accumulation), split as l = b*s + j with s ~ sqrt(L):
    K[b*s + j] = sum_n (W_n Lbar_n^(b s)) Lbar_n^j, one batched matrix product. Only O(M sqrt(L)) complex
    exponentials are evaluated (in complex128, so the phases l Im(log Lbar) stay accurate for long L even for a
    complex64 kernel) instead of O(M L); the multiply-adds stay O(M L), in W's dtype.

    Pass ``log_Lbar`` (e.g. from ``log_transition``) instead of ``Lbar`` when decays may underflow: log(0) = -inf
    would otherwise be clamped to a decay of exp(-1000) per step (still exact: such powers underflow to 0).

    Shapes: W, Lbar / log_Lbar (..., M) complex, broadcastable (powers are built once for log_Lbar's own shape)
        -> K (broadcast ..., L) real (the real dtype of W).
    """
    _check_length(L)
    if log_Lbar is None:
        if Lbar is None:
            raise ValueError("give Lbar or log_Lbar")
        log_Lbar = torch.log(Lbar.to(torch.complex128))
    s, nb = _split(L)
    inner = transition_powers(log_Lbar, s, 1, W.dtype)                                  # (..., M, s)
    outer = W[..., None, :] * transition_powers(log_Lbar, nb, s, W.dtype).transpose(-1, -2)   # (..., nb, M)
    K = (outer @ inner).real.flatten(-2)[..., :L]                             # (..., L)
    return 2 * K if conj_sym else K


def vandermonde_state(u: torch.Tensor, log_Lbar: torch.Tensor) -> torch.Tensor:
    """Final state of x_k = Lbar x_{k-1} + u_k (x_{-1} = 0) per mode: S[..., m] = sum_k u[..., k] Lbar_m^(L-1-k).

    Same sqrt(L) split as ``vandermonde_kernel``: O(M L) multiply-adds, O(M sqrt(L)) exponentials.

    Shapes: u (..., L) real or complex, log_Lbar (H..., M) broadcastable against u's leading dims -> (..., M).
    """
    L = u.shape[-1]
    _check_length(L)
    s, nb = _split(L)
    wide = u.dtype in (torch.float64, torch.complex128) or log_Lbar.dtype == torch.complex128
    cd = torch.complex128 if wide else torch.complex64
    v = torch.nn.functional.pad(u.flip(-1), (0, nb * s - L)).to(cd).unflatten(-1, (nb, s))   # (..., nb, s): r = b s + j
    inner = transition_powers(log_Lbar, s, 1, cd)                                       # (..., M, s)
    outer = transition_powers(log_Lbar, nb, s, cd)                                      # (..., M, nb)
    T = v @ inner.transpose(-1, -2)                                           # (..., nb, M)
    return (T * outer.transpose(-1, -2)).sum(-2)


def _conv_dtype(dtype: torch.dtype) -> torch.dtype:
    """FFTs of half-precision inputs run in float32 (bf16 has no FFT; fp16 FFT needs powers of two, loses digits)."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def fft_conv(u: torch.Tensor, K: torch.Tensor, K_backward: torch.Tensor | None = None) -> torch.Tensor:
    """Causal (linear, not circular) convolution y[l] = sum_{j<=l} K[j] u[l-j] along the last axis via rFFT on 2L.

    With ``K_backward`` the convolution is two-sided (bidirectional layers, state-spaces/s4 convention):
    y[l] += sum_{j>=1} K_backward[j-1] u[l+j]. Half-precision inputs are transformed in float32 and the result
    cast back to u's dtype.

    Shapes: u (..., L), K, K_backward (..., L) broadcastable -> (..., L).
    """
    L = u.shape[-1]
    _check_length(L)
    if u.numel() == 0:
        raise ValueError(f"u is empty (shape {tuple(u.shape)}): need batch >= 1")
    cd = _conv_dtype(u.dtype)
    n = 2 * L
    k = K.to(cd)
    if K_backward is not None:
        k = torch.nn.functional.pad(k, (0, L)) + torch.nn.functional.pad(K_backward.to(cd).flip(-1), (L, 0))
    y = torch.fft.irfft(torch.fft.rfft(u.to(cd), n=n) * torch.fft.rfft(k, n=n), n=n)[..., :L]
    return y.to(u.dtype)


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
