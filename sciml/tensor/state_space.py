"""Matérn Gaussian processes as linear SDEs, their exact discretisation, and a batched Kalman/RTS smoother.

A Matérn-ν GP with ν = p + 1/2 (p = 0, 1, 2) is the first coordinate of a p+1 dimensional linear
time-invariant SDE ``ds = F s dt + L dβ`` with white-noise spectral density ``Qc``. Between two sorted
coordinates a distance Δ apart the state moves by ``A = expm(F Δ)`` with noise ``Q = P∞ - A P∞ Aᵀ`` (exact for
a stationary SDE). Gaussian pseudo-observations given in information form (precision Λ, shift η on H s) are
absorbed by a Kalman filter and an RTS smoother, so the posterior marginals of a GP with a block-diagonal
likelihood cost O(S D³) instead of O((S r)³).

Reference: Hartikainen & Särkkä, "Kalman filtering and smoothing solutions to temporal Gaussian process
regression models" (MLSP 2010), eqs. for F, L, Qc; Särkkä & Solin, "Applied Stochastic Differential Equations"
(2019), ch. 12; Fang et al., "Functional Bayesian Tucker Decomposition", ICLR 2024 (arXiv 2311.04829), Sec. 4.

Conventions: ``r`` independent, identically distributed GP components are stacked with the state ordered
``[u_1..u_r, u'_1..u'_r, ...]``, i.e. ``F = kron(F1, I_r)``, ``H = [I_r, 0, ...]`` (as the FunBaT code does).
All routines accept leading batch dimensions and follow the inputs' dtype and device (use float64).
"""

from __future__ import annotations

import dataclasses
import math

import torch

from sciml.core import Result

KERNELS = {"matern12": 0, "matern32": 1, "matern52": 2}


def _check_kernel(kernel: str) -> int:
    if kernel not in KERNELS:
        raise ValueError(f"kernel must be one of {sorted(KERNELS)}, got {kernel!r}")
    return KERNELS[kernel]


def _check_positive(name: str, value: float) -> float:
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return float(value)


def matern_kernel(delta: torch.Tensor, kernel: str = "matern32", lengthscale: float = 1.0,
                  variance: float = 1.0) -> torch.Tensor:
    """The Matérn covariance k(Δ) (closed form) at distances ``delta`` (any shape)."""
    order = _check_kernel(kernel)
    ell = _check_positive("lengthscale", lengthscale)
    var = _check_positive("variance", variance)
    d = delta.abs()
    if order == 0:
        return var * torch.exp(-d / ell)
    if order == 1:
        x = math.sqrt(3.0) * d / ell
        return var * (1.0 + x) * torch.exp(-x)
    x = math.sqrt(5.0) * d / ell
    return var * (1.0 + x + x * x / 3.0) * torch.exp(-x)


@dataclasses.dataclass(frozen=True)
class MaternSDE(Result):
    """A scalar Matérn GP as a state-space model. Shapes: F (d, d), L (d, 1), Qc scalar, Pinf (d, d), H (1, d)."""

    F: torch.Tensor
    L: torch.Tensor
    Qc: float
    Pinf: torch.Tensor
    H: torch.Tensor

    @property
    def order(self) -> int:
        """State dimension d (1, 2 or 3)."""
        return self.F.shape[0]


def matern_sde(kernel: str = "matern32", lengthscale: float = 1.0, variance: float = 1.0, *,
               dtype: torch.dtype = torch.float64, device: torch.device | str = "cpu") -> MaternSDE:
    """Feedback matrix F, noise gain L, spectral density Qc and stationary covariance P∞ of a Matérn GP.

    Reference: Hartikainen & Särkkä (2010), Sec. 3: with λ = sqrt(2ν)/ℓ the spectral density of a Matérn-ν GP
    is that of an all-pole filter (s + λ)^{-(p+1)}; P∞ solves F P + P Fᵀ + L Qc Lᵀ = 0.

    Args:
        kernel: "matern12" | "matern32" | "matern52".
        lengthscale: ℓ > 0, in the units of the coordinates.
        variance: σ² > 0, the marginal variance k(0).
    """
    order = _check_kernel(kernel)
    ell = _check_positive("lengthscale", lengthscale)
    var = _check_positive("variance", variance)
    kw = {"dtype": dtype, "device": device}
    if order == 0:
        lam = 1.0 / ell
        F = torch.tensor([[-lam]], **kw)
        qc = 2.0 * var * lam
        Pinf = torch.tensor([[var]], **kw)
    elif order == 1:
        lam = math.sqrt(3.0) / ell
        F = torch.tensor([[0.0, 1.0], [-lam**2, -2.0 * lam]], **kw)
        qc = 4.0 * var * lam**3
        Pinf = torch.tensor([[var, 0.0], [0.0, var * lam**2]], **kw)
    else:
        lam = math.sqrt(5.0) / ell
        F = torch.tensor([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [-lam**3, -3.0 * lam**2, -3.0 * lam]], **kw)
        qc = 16.0 / 3.0 * var * lam**5
        kappa = var * lam**2 / 3.0
        Pinf = torch.tensor([[var, 0.0, -kappa], [0.0, kappa, 0.0], [-kappa, 0.0, var * lam**4]], **kw)
    d = F.shape[0]
    L = torch.zeros(d, 1, **kw)
    L[-1, 0] = 1.0
    H = torch.zeros(1, d, **kw)
    H[0, 0] = 1.0
    return MaternSDE(F, L, qc, Pinf, H)


def discretize(sde: MaternSDE, deltas: torch.Tensor, n_components: int = 1,
               jitter: float = 1e-10) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact transitions between consecutive sorted coordinates for ``n_components`` stacked GPs.

    Args:
        sde: the scalar model from :func:`matern_sde`.
        deltas: gaps Δ_j >= 0 between consecutive coordinates, shape (..., S-1).
        n_components: r, the number of i.i.d. GP components stacked as ``kron(·, I_r)``.
        jitter: ``jitter · P∞`` is added to every Q (tiny Δ makes Q ill-conditioned; Δ = 0 gives Q = 0).

    Returns:
        ``(A, Q)``, each of shape (..., S-1, D, D) with D = d·r.
    """
    if bool((deltas < 0).any()):
        raise ValueError("deltas must be >= 0 (sort the coordinates first)")
    F = sde.F.to(deltas)
    Pinf = sde.Pinf.to(deltas)
    A1 = torch.linalg.matrix_exp(F * deltas[..., None, None])
    Q1 = Pinf - A1 @ Pinf @ A1.transpose(-1, -2)
    Q1 = 0.5 * (Q1 + Q1.transpose(-1, -2)) + jitter * Pinf
    eye = torch.eye(n_components, dtype=deltas.dtype, device=deltas.device)
    return _kron_eye(A1, eye), _kron_eye(Q1, eye)


def stationary_cov(sde: MaternSDE, n_components: int = 1, like: torch.Tensor | None = None) -> torch.Tensor:
    """P∞ of the stacked state, ``kron(P∞, I_r)``, shape (D, D)."""
    Pinf = sde.Pinf if like is None else sde.Pinf.to(like)
    return _kron_eye(Pinf, torch.eye(n_components, dtype=Pinf.dtype, device=Pinf.device))


def _kron_eye(block: torch.Tensor, eye: torch.Tensor) -> torch.Tensor:
    """kron(block, I_r) over the last two dims of ``block``."""
    d, r = block.shape[-1], eye.shape[0]
    out = block[..., :, None, :, None] * eye[:, None, :]
    return out.reshape(*block.shape[:-2], d * r, d * r)


@dataclasses.dataclass(frozen=True)
class SmootherResult(Result):
    """Smoothed marginals of the observed block u = H s at every chain position.

    Shapes: mean (..., S, r), cov (..., S, r, r); state_mean (..., S, D), state_cov (..., S, D, D).
    """

    mean: torch.Tensor
    cov: torch.Tensor
    state_mean: torch.Tensor
    state_cov: torch.Tensor


def _sym(x: torch.Tensor) -> torch.Tensor:
    return 0.5 * (x + x.transpose(-1, -2))


def kalman_rts(A: torch.Tensor, Q: torch.Tensor, P0: torch.Tensor, precision: torch.Tensor,
               shift: torch.Tensor) -> SmootherResult:
    """Kalman filter + RTS smoother with Gaussian pseudo-observations in information form.

    The prior is s_1 ~ N(0, P0), s_{j+1} | s_j ~ N(A_j s_j, Q_j). Position j carries the factor
    exp(-½ uᵀ Λ_j u + η_jᵀ u) with u = H s = s[..., :r]. Λ_j may be singular (zero = no data there), so the
    update never inverts Λ: with S = H P Hᵀ and J = (I + Λ S)^{-1}, the gain is K = P Hᵀ J Λ and the covariance
    update is the Joseph form (I - K H) P (I - K H)ᵀ + (P Hᵀ J) Λ (P Hᵀ J)ᵀ, a sum of two PSD terms.

    Args:
        A, Q: transitions, shape (..., S-1, D, D).
        P0: the initial (stationary) state covariance, shape (..., D, D) or (D, D).
        precision: Λ_j, shape (..., S, r, r), symmetric PSD.
        shift: η_j, shape (..., S, r).

    Returns:
        :class:`SmootherResult` with the smoothed marginals.
    """
    S, r = precision.shape[-3], precision.shape[-1]
    D = P0.shape[-1]
    if A.shape[-3] != S - 1 or Q.shape[-3] != S - 1:
        raise ValueError(f"A and Q need S-1 = {S - 1} transitions, got {A.shape[-3]} and {Q.shape[-3]}")
    if r > D or shift.shape[-2:] != (S, r):
        raise ValueError(f"precision (..., {S}, {r}, {r}) and shift (..., {S}, {r}) must match, D = {D}")
    batch = torch.broadcast_shapes(precision.shape[:-3], shift.shape[:-2], A.shape[:-3], P0.shape[:-2])
    eye_r = torch.eye(r, dtype=P0.dtype, device=P0.device)
    m = torch.zeros(*batch, D, dtype=P0.dtype, device=P0.device)
    P = P0.expand(*batch, D, D)
    filt_m, filt_P, pred_m, pred_P = [], [], [], []
    for j in range(S):
        if j > 0:
            m = (A[..., j - 1, :, :] @ m[..., None])[..., 0]
            P = _sym(A[..., j - 1, :, :] @ P @ A[..., j - 1, :, :].transpose(-1, -2) + Q[..., j - 1, :, :])
        pred_m.append(m)
        pred_P.append(P)
        lam, eta = precision[..., j, :, :], shift[..., j, :]
        PHt = P[..., :, :r]                                   # P Hᵀ, (..., D, r)
        # P Hᵀ J with J = (I + Λ S)^{-1} (eigenvalues of ΛS are >= 0, so this is well conditioned), as one
        # solve with (I + Λ S)ᵀ = I + S Λ. Small unbatched solves avoid LAPACK's threaded batched paths.
        PHtJ = torch.linalg.solve(eye_r + PHt[..., :r, :] @ lam, PHt.transpose(-1, -2)).transpose(-1, -2)
        K = PHtJ @ lam
        IKH = torch.eye(D, dtype=P.dtype, device=P.device) - _pad_cols(K, D)
        P = _sym(IKH @ P @ IKH.transpose(-1, -2) + PHtJ @ lam @ PHtJ.transpose(-1, -2))
        # m⁺ = m + P⁺ Hᵀ (η - Λ H m): the information-form mean update written without P^{-1}.
        m = m + (P[..., :, :r] @ (eta - (lam @ m[..., :r, None])[..., 0])[..., None])[..., 0]
        filt_m.append(m)
        filt_P.append(P)
    sm_m, sm_P = [filt_m[-1]], [filt_P[-1]]
    for j in range(S - 2, -1, -1):
        Aj = A[..., j, :, :]
        Pp = pred_P[j + 1]
        G = torch.linalg.solve(Pp, Aj @ filt_P[j]).transpose(-1, -2)   # P_f Aᵀ P_pred^{-1} (P_pred SPD)
        ms = filt_m[j] + (G @ (sm_m[-1] - pred_m[j + 1])[..., None])[..., 0]
        Ps = _sym(filt_P[j] + G @ (sm_P[-1] - Pp) @ G.transpose(-1, -2))
        sm_m.append(ms)
        sm_P.append(Ps)
    state_mean = torch.stack(sm_m[::-1], dim=-2)
    state_cov = torch.stack(sm_P[::-1], dim=-3)
    return SmootherResult(state_mean[..., :r], state_cov[..., :r, :r], state_mean, state_cov)


def _pad_cols(x: torch.Tensor, D: int) -> torch.Tensor:
    """Embed an (..., D, r) block as the first r columns of an (..., D, D) matrix (K H for H = [I_r, 0])."""
    r = x.shape[-1]
    if r == D:
        return x
    return torch.cat([x, torch.zeros(*x.shape[:-1], D - r, dtype=x.dtype, device=x.device)], dim=-1)


def gp_smoother(coords: torch.Tensor, precision: torch.Tensor, shift: torch.Tensor, kernel: str = "matern32",
                lengthscale: float = 1.0, variance: float = 1.0, jitter: float = 1e-10) -> SmootherResult:
    """Posterior marginals of r i.i.d. Matérn GPs at sorted coordinates given information-form messages.

    Equivalent to the dense posterior Σ = (K⁻¹ ⊗ I_r + blockdiag Λ)⁻¹, μ = Σ η with K the Matérn Gram matrix of
    ``coords`` (see the tests), at O(S D³) cost.

    Args:
        coords: sorted (non-decreasing) coordinates, shape (S,).
        precision: Λ_j, shape (..., S, r, r).
        shift: η_j, shape (..., S, r).
    """
    if coords.ndim != 1 or coords.shape[0] != precision.shape[-3]:
        raise ValueError(f"coords must have shape ({precision.shape[-3]},), got {tuple(coords.shape)}")
    r = precision.shape[-1]
    sde = matern_sde(kernel, lengthscale, variance, dtype=coords.dtype, device=coords.device)
    A, Q = discretize(sde, torch.diff(coords), r, jitter)
    return kalman_rts(A, Q, stationary_cov(sde, r), precision, shift)


def dense_gp_posterior(coords: torch.Tensor, precision: torch.Tensor, shift: torch.Tensor,
                       kernel: str = "matern32", lengthscale: float = 1.0,
                       variance: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """The same posterior as :func:`gp_smoother` through the dense O((S r)³) formulation.

    Σ = (K⁻¹ ⊗ I_r + blockdiag Λ)⁻¹ is evaluated as K - K (I + Λ K)⁻¹ Λ K so that Λ may be singular; μ = Σ η.
    Used as the independent reference in tests and as the "dense GP" peer in benchmarks.

    Returns:
        ``(mean, cov)`` of the marginals, shapes (S, r) and (S, r, r).
    """
    S, r = precision.shape[-3], precision.shape[-1]
    gram = matern_kernel(coords[:, None] - coords[None, :], kernel, lengthscale, variance)
    K = torch.kron(gram, torch.eye(r, dtype=coords.dtype, device=coords.device))
    lam = torch.block_diag(*precision)
    eye = torch.eye(S * r, dtype=coords.dtype, device=coords.device)
    cov = K - K @ torch.linalg.solve(eye + lam @ K, lam @ K)
    cov = _sym(cov)
    mean = cov @ shift.reshape(-1)
    blocks = cov.reshape(S, r, S, r).diagonal(dim1=0, dim2=2).permute(2, 0, 1)
    return mean.reshape(S, r), blocks
