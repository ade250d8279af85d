"""One-dimensional stationary kernels of GP-HM with closed-form derivatives in the lag ``d = x - x'``.

Four kinds share one parameterisation (Q components, log-space weights):

* ``"gm"``  (GP-HM-GM):  ``k(d) = sum_q w_q exp(-rho_q d^2) cos(2 pi mu_q d)``, ``rho_q = exp(logls_q)``;
* ``"stm"`` (GP-HM-StM): ``k(d) = sum_q w_q matern_nu(lambda_q |d|) cos(2 pi mu_q d)``, ``lambda_q = exp(logls_q)``;
* ``"se"``  (GP-SE):     the ``"gm"`` envelope without the cosine;
* ``"matern"`` (GP-Matern): the ``"stm"`` envelope without the cosine.

Frequencies ``mu`` are in cycles per unit length. Derivatives up to order two are closed forms: autograd
through ``|d|`` gives a zero second derivative at ``d = 0`` in torch (``sign(0) = 0``), which would zero the
diagonal of ``K''``. The Matern envelopes are written as ``exp(-t) P(t)`` with ``t = a |d|``; their first
derivative is ``-a^2 d exp(-t) Q(t)``, smooth in ``d``, so no sign function appears anywhere.
"""

from __future__ import annotations

import dataclasses
import math

import torch

KINDS = ("gm", "stm", "se", "matern")
NUS = (2.5, 3.5, 4.5)
MAX_LAG_ELEMENTS = 2**17        # lags x components per block of kernel evaluations (1 MB per float64 temporary)

# Matern-(p + 1/2) envelope exp(-t) P(t) and Q(t) = (P(t) - P'(t)) / t, coefficients in increasing powers of t
# (Rasmussen & Williams 2006, eq. 4.16-4.17; Q derived by hand and checked against finite differences in tests).
_MATERN_P = {2.5: (1.0, 1.0, 1.0 / 3.0),
             3.5: (1.0, 1.0, 2.0 / 5.0, 1.0 / 15.0),
             4.5: (1.0, 1.0, 3.0 / 7.0, 2.0 / 21.0, 1.0 / 105.0)}
_MATERN_Q = {2.5: (1.0 / 3.0, 1.0 / 3.0),
             3.5: (3.0 / 15.0, 3.0 / 15.0, 1.0 / 15.0),
             4.5: (15.0 / 105.0, 15.0 / 105.0, 6.0 / 105.0, 1.0 / 105.0)}


def _poly(coeffs: tuple[float, ...], t: torch.Tensor) -> torch.Tensor:
    out = torch.full_like(t, coeffs[-1])
    for c in reversed(coeffs[:-1]):
        out = out * t + c
    return out


def _poly_deriv(coeffs: tuple[float, ...]) -> tuple[float, ...]:
    return tuple(i * c for i, c in enumerate(coeffs))[1:] or (0.0,)


@dataclasses.dataclass(frozen=True)
class KernelParams:
    """Parameters of one 1-D mixture kernel (leaf tensors; the solver optimises them).

    Shapes: each (Q,). ``mu`` is ignored by the kinds without cosine ("se", "matern").
    """

    logw: torch.Tensor
    logls: torch.Tensor
    mu: torch.Tensor


class SpectralMixture1D:
    """A 1-D mixture kernel of GP-HM with closed-form first and second derivatives.

    Reference:
        Fang, Cooley, Long, Li, Kirby, Zhe, "Solving High Frequency and Multi-Scale PDEs with Gaussian
        Processes", ICLR 2024, arXiv:2311.04465, Sec. 3 (eqs. for the GM / Student-t mixture spectra and their
        inverse Fourier transforms); Wilson & Adams 2013 (spectral mixture kernel).

    Args:
        kind: "gm", "stm", "se" or "matern" (see the module docstring).
        n_components: Q, the number of mixture components (paper: 30).
        freq_scale: F; initial frequencies are ``linspace(0, 1, Q) * F`` cycles per unit length (reference code).
        nu: Matern smoothness for "stm"/"matern", one of 2.5, 3.5, 4.5 (paper: 2.5).
        dtype, device: of the parameters (float64 recommended: see the module's pitfalls).

    Differs from the paper/reference code:
        - derivatives are closed forms instead of nested autodiff;
        - nu = 7/2 and 9/2 are offered besides the paper's 5/2 (a Matern-5/2 prior is only twice mean-square
          differentiable, so higher-order PDEs need a larger nu).
    """

    def __init__(self, kind: str = "gm", n_components: int = 30, freq_scale: float = 20.0, nu: float = 2.5,
                 dtype: torch.dtype = torch.float64, device: torch.device | str = "cpu") -> None:
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
        if not isinstance(n_components, int) or n_components < 1:
            raise ValueError(f"n_components must be a positive int, got {n_components!r}")
        if not (math.isfinite(freq_scale) and freq_scale >= 0):
            raise ValueError(f"freq_scale must be a finite number >= 0, got {freq_scale!r}")
        if nu not in NUS:
            raise ValueError(f"nu must be one of {NUS}, got {nu!r}")
        self.kind, self.nu, self.n_components, self.freq_scale = kind, float(nu), n_components, float(freq_scale)
        q = n_components
        # Initialisation of the reference code (code/model_GP_solver_1d.py): equal weights, unit log-scales.
        self.params = KernelParams(
            logw=torch.full((q,), math.log(1.0 / q), dtype=dtype, device=device).requires_grad_(),
            logls=torch.zeros(q, dtype=dtype, device=device).requires_grad_(),
            mu=(torch.linspace(0.0, 1.0, q, dtype=dtype, device=device) * freq_scale).requires_grad_(
                self.has_cosine))

    @property
    def has_cosine(self) -> bool:
        return self.kind in ("gm", "stm")

    def parameters(self) -> list[torch.Tensor]:
        p = self.params
        return [p.logw, p.logls] + ([p.mu] if self.has_cosine else [])

    @property
    def weights(self) -> torch.Tensor:
        return self.params.logw.detach().exp()

    @property
    def frequencies(self) -> torch.Tensor:
        """Learned frequencies (cycles per unit length); zeros for the kinds without cosine."""
        mu = self.params.mu.detach()
        return mu if self.has_cosine else torch.zeros_like(mu)

    def _envelope(self, d: torch.Tensor, order: int) -> list[torch.Tensor]:
        """[phi, phi', phi''] (up to ``order``) per component. Shapes: d (L,) -> each (L, Q)."""
        d = d[:, None]
        scale = self.params.logls.exp()[None, :]
        if self.kind in ("gm", "se"):
            phi = torch.exp(-scale * d * d)
            out = [phi]
            if order >= 1:
                out.append(-2.0 * scale * d * phi)
            if order >= 2:
                out.append((4.0 * scale**2 * d * d - 2.0 * scale) * phi)
            return out
        a = math.sqrt(2.0 * self.nu) * scale
        t = a * d.abs()
        e = torch.exp(-t)
        out = [e * _poly(_MATERN_P[self.nu], t)]
        qc = _MATERN_Q[self.nu]
        if order >= 1:
            out.append(-a * a * d * e * _poly(qc, t))
        if order >= 2:
            # d/dd [-a^2 d e^{-t} Q(t)] = -a^2 e^{-t} [Q(t) + t (Q'(t) - Q(t))]
            qv = _poly(qc, t)
            out.append(-a * a * e * (qv + t * (_poly(_poly_deriv(qc), t) - qv)))
        return out

    def values(self, d: torch.Tensor, order: int = 0) -> torch.Tensor:
        """``d^order k / dx^order`` at lags ``d = x - x'`` (order 0, 1 or 2), summed over components.

        Shapes: d (L,) -> (L,). Derivatives with respect to ``x'`` follow by stationarity:
        ``dk/dx' = -k'(d)``, ``d^2k/dx dx' = -k''(d)``.
        """
        return self.values_upto(d, order)[order]

    def values_upto(self, d: torch.Tensor, order: int = 2) -> list[torch.Tensor]:
        """``[k, k', ..., k^(order)]`` at lags d, sharing the envelope and trigonometric evaluations."""
        if order not in (0, 1, 2):
            raise ValueError(f"kernel derivative order must be 0, 1 or 2, got {order!r}")
        env = self._envelope(d, order)
        w = self.params.logw.exp()[None, :]
        if not self.has_cosine:
            return [(w * e).sum(-1) for e in env]
        m = 2.0 * math.pi * self.params.mu[None, :]
        arg = m * d[:, None]
        c = torch.cos(arg)
        wc = w * c
        out = [(wc * env[0]).sum(-1)]
        if order >= 1:
            ms = m * w * torch.sin(arg)
            out.append((wc * env[1] - ms * env[0]).sum(-1))
        if order >= 2:
            out.append((wc * (env[2] - m * m * env[0]) - 2.0 * ms * env[1]).sum(-1))
        return out

    def toeplitz(self, x: torch.Tensor, order: int = 2) -> list[torch.Tensor]:
        """``[K, K', .., K^(order)]`` on a uniform grid x (n,): one kernel evaluation per lag, then a gather.

        Shapes: x (n,) -> each (n, n), ``K^(a)[i, l] = k^(a)(x_i - x_l)``.
        """
        n = x.numel()
        h = (x[-1] - x[0]) / (n - 1)
        lags = torch.arange(-(n - 1), n, dtype=x.dtype, device=x.device) * h
        idx = torch.arange(n, device=x.device)
        gather = idx[:, None] - idx[None, :] + n - 1
        return [v[gather] for v in self.values_upto(lags, order)]

    def matrix(self, x: torch.Tensor, y: torch.Tensor | None = None, order: int = 0) -> torch.Tensor:
        """``[d^order k/dx^order](x_i - y_l)``. Shapes: x (n,), y (m,) -> (n, m); y defaults to x.

        When ``y`` is omitted and ``x`` is uniformly spaced the kernel is evaluated once per lag (2n - 1
        evaluations, Toeplitz) and gathered; otherwise at all n*m differences.
        """
        if y is None and x.numel() > 2 and is_uniform(x):
            return self.toeplitz(x, order)[order]
        y = x if y is None else y
        # Row blocks: every lag holds Q-wide temporaries (~10 of them), so one block of n x m lags would need
        # ~80 n m Q bytes (300 x 256 lags, Q = 30: 150 MB); blocks of MAX_LAG_ELEMENTS keep it at a few MB.
        rows = max(1, MAX_LAG_ELEMENTS // max(1, y.numel() * self.n_components))
        return torch.cat([self.values((x[i:i + rows, None] - y[None, :]).reshape(-1), order).reshape(-1, y.numel())
                          for i in range(0, x.numel(), rows)])


def is_uniform(x: torch.Tensor) -> bool:
    """Whether a 1-D grid is equally spaced (up to rounding)."""
    step = x[1:] - x[:-1]
    return bool(((step - step[0]).abs() <= 1e-9 * step[0].abs().clamp_min(1e-300) + 64 * torch.finfo(x.dtype).eps
                 * x.abs().max()).all())
