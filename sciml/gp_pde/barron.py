"""Nonlinear variational PDEs solved by the (I - Laplacian)^{-1}-preconditioned gradient descent of Marwah, Lipton,
Lu & Risteski ("Neural network approximations of PDEs beyond linearity", ICML 2023, arXiv 2210.12101), with the
spectral Barron-norm tracker and the 2-layer-network constructions the paper's argument rests on (spec part B).

The PDE is the Euler-Lagrange equation of ``E(u) = int_Omega L(x, u, grad u) - f u dx`` on ``Omega = [0, 1]^D``:
``DE(u) = -div(d_p L(x, u, grad u)) + d_z L(x, u, grad u) - f = 0``. ``L`` is any torch function ``L(x, z, p)``
(x (..., D), z (...), p (..., D) -> (...)); its partial derivatives come from autograd, gradients and divergences
are spectral. Domains:

* ``"periodic"``: the torus, grid ``x_i = i / N`` with ODD N (with even N the Nyquist mode is annihilated by the
  spectral gradient but still divided by the preconditioner, and the iteration stalls near 1e-8: spec B.6);
* ``"dirichlet"``: ``u = 0`` on the boundary, interior grid ``x_i = i / (N + 1)``, i = 1..N, computed as the odd
  extension to the period-2 torus (so the sine modes are exact eigenfunctions: the DST-I of the spec without a
  separate transform). This needs ``L`` to respect the reflection symmetry of the extension, i.e. ``L(x, -z, p)``
  equal to ``L`` at the reflected point with the reflected gradient; every ``L(z, p)`` even in z and in each p_i
  (all of the spec's examples) does.

The paper has theorems, no experiments: the rates and iteration counts checked here are the spec's own
measurements and the closed-form contraction ``(M - m)/(M + m)``.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable

import torch
from torch import nn

from sciml.core import Result, Status, check_floating, report_status

Lagrangian = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
DOMAINS = ("periodic", "dirichlet")


class VariationalPDE:
    """``-div(d_p L(x, u, grad u)) + d_z L(x, u, grad u) = f`` on ``[0, 1]^D`` (periodic or homogeneous Dirichlet).

    Args:
        L: Lagrangian density ``L(x, z, p)``; x (..., D), z (...), p (..., D) -> (...). Must be twice
            differentiable by torch autograd.
        f: right-hand side, a callable of the grid points x (N,...,N, D) -> (N,...,N), or the grid values.
        domain: "periodic" or "dirichlet".
        D: dimension (>= 1). N: grid points per axis (odd for "periodic"; interior points for "dirichlet").

    Attributes: ``grid`` (N,...,N, D), indexing "ij"; ``f`` (N,...,N); ``symbol`` the eigenvalues of ``-Laplacian``
    on the computational grid (4 pi^2 |k|^2, k in cycles).
    """

    def __init__(self, L: Lagrangian, f, domain: str = "periodic", D: int = 2, N: int = 65, *,
                 dtype: torch.dtype = torch.float64, device=None) -> None:
        if domain not in DOMAINS:
            raise ValueError(f"domain must be one of {DOMAINS}, got {domain!r}")
        if isinstance(D, bool) or not isinstance(D, int) or D < 1:
            raise ValueError(f"D must be an int >= 1, got {D!r}")
        if isinstance(N, bool) or not isinstance(N, int) or N < 3:
            raise ValueError(f"N must be an int >= 3, got {N!r}")
        if domain == "periodic" and N % 2 == 0:
            raise ValueError(f"periodic grids need an odd N (got {N}): with even N the Nyquist mode is killed by "
                             f"the spectral gradient but not by the preconditioner, and the iteration stalls; use "
                             f"N = {N + 1}")
        if not callable(L):
            raise TypeError("L must be a callable L(x, z, p) -> energy density")
        self.L, self.domain, self.D, self.N = L, domain, D, N
        self.dtype, self.device = dtype, device
        axis = (torch.arange(N, dtype=dtype, device=device) / N if domain == "periodic"
                else torch.arange(1, N + 1, dtype=dtype, device=device) / (N + 1))
        self.grid = torch.stack(torch.meshgrid(*([axis] * D), indexing="ij"), dim=-1)  # (N,...,N, D)
        # Computational (periodic) grid: the torus itself, or the period-2 odd extension for Dirichlet.
        self.M = N if domain == "periodic" else 2 * (N + 1)
        period = 1.0 if domain == "periodic" else 2.0
        freq = torch.fft.fftfreq(self.M, d=period / self.M, dtype=dtype, device=device)  # cycles per unit length
        self._freqs = torch.stack(torch.meshgrid(*([freq] * D), indexing="ij"), dim=-1)  # (M,...,M, D)
        self.symbol = (4 * math.pi ** 2) * (self._freqs ** 2).sum(-1)
        ext_axis = torch.arange(self.M, dtype=dtype, device=device) * (period / self.M)
        self._ext_grid = torch.stack(torch.meshgrid(*([ext_axis] * D), indexing="ij"), dim=-1)
        fvals = f(self.grid) if callable(f) else torch.as_tensor(f, dtype=dtype, device=device)
        check_floating(fvals, "f")
        if fvals.shape != self.grid.shape[:-1]:
            raise ValueError(f"f must give values of shape {tuple(self.grid.shape[:-1])} on the grid, got "
                             f"{tuple(fvals.shape)}")
        self.f = fvals.to(dtype)

    # ---- grid <-> computational torus --------------------------------------------------------------------
    def extend(self, u: torch.Tensor) -> torch.Tensor:
        """Grid values -> values on the computational torus (identity for periodic; odd extension otherwise)."""
        if self.domain == "periodic":
            return u
        for axis in range(self.D):
            dim = axis - self.D  # counted from the right so that leading batch dims pass through
            zero = torch.zeros_like(u.narrow(dim, 0, 1))
            u = torch.cat([zero, u, zero, -u.flip(dim)], dim=dim)
        return u

    def restrict(self, v: torch.Tensor) -> torch.Tensor:
        """Computational-torus values -> grid values (the interior points for Dirichlet)."""
        if self.domain == "periodic":
            return v
        for axis in range(self.D):
            v = v.narrow(axis - self.D, 1, self.N)
        return v

    def _check_u(self, u: torch.Tensor) -> torch.Tensor:
        check_floating(u, "u")
        if u.shape != self.grid.shape[:-1]:
            raise ValueError(f"u must have the grid's shape {tuple(self.grid.shape[:-1])}, got {tuple(u.shape)}")
        return u.to(self.dtype)

    # ---- spectral calculus on the computational torus ----------------------------------------------------
    def _fft(self, v: torch.Tensor) -> torch.Tensor:
        return torch.fft.fftn(v, dim=tuple(range(-self.D, 0)))

    def _ifft(self, v: torch.Tensor) -> torch.Tensor:
        return torch.fft.ifftn(v, dim=tuple(range(-self.D, 0))).real

    def _gradient_ext(self, u_ext: torch.Tensor) -> torch.Tensor:
        uh = self._fft(u_ext)
        return torch.stack([self._ifft(2j * math.pi * self._freqs[..., i] * uh) for i in range(self.D)], dim=-1)

    def _divergence_ext(self, q_ext: torch.Tensor) -> torch.Tensor:
        return sum(self._ifft(2j * math.pi * self._freqs[..., i] * self._fft(q_ext[..., i])) for i in range(self.D))

    def gradient(self, u: torch.Tensor) -> torch.Tensor:
        """Spectral gradient on the grid: (N,...,N) -> (N,...,N, D)."""
        return self.restrict_field(self._gradient_ext(self.extend(self._check_u(u))))

    def restrict_field(self, q: torch.Tensor) -> torch.Tensor:
        if self.domain == "periodic":
            return q
        for axis in range(self.D):
            q = q.narrow(axis - self.D - 1, 1, self.N)
        return q

    def precondition(self, r: torch.Tensor) -> torch.Tensor:
        """``(I - Laplacian)^{-1} r``: symbol ``1 / (1 + 4 pi^2 |k|^2)`` (Dirichlet: ``1 / (1 + pi^2 |k|^2)`` in sine
        indices)."""
        return self.restrict(self._ifft(self._fft(self.extend(r)) / (1 + self.symbol)))

    # ---- the PDE -------------------------------------------------------------------------------------------
    def _partials(self, x: torch.Tensor, z: torch.Tensor, p: torch.Tensor):
        with torch.enable_grad():
            z = z.detach().requires_grad_(True)
            p = p.detach().requires_grad_(True)
            density = self.L(x, z, p)
            if density.shape != z.shape:
                raise ValueError(f"L(x, z, p) must return one value per point, shape {tuple(z.shape)}, got "
                                 f"{tuple(density.shape)}")
            dz, dp = torch.autograd.grad(density.sum(), (z, p), allow_unused=True)
        dz = torch.zeros_like(z) if dz is None else dz
        dp = torch.zeros_like(p) if dp is None else dp
        return dz.detach(), dp.detach()

    def DE(self, u: torch.Tensor) -> torch.Tensor:
        """The Euler-Lagrange residual ``-div(d_p L) + d_z L - f`` on the grid (the energy's L2 gradient)."""
        u_ext = self.extend(self._check_u(u))
        grad_ext = self._gradient_ext(u_ext)
        dz, dp = self._partials(self._ext_grid, u_ext, grad_ext)
        residual = -self._divergence_ext(dp) + dz
        return self.restrict(residual) - self.f

    def energy(self, u: torch.Tensor) -> float:
        """``int L(x, u, grad u) - f u dx`` by the periodic trapezoid rule (exact for band-limited integrands)."""
        u_ext = self.extend(self._check_u(u))
        density = self.L(self._ext_grid, u_ext, self._gradient_ext(u_ext)) - self.extend(self.f) * u_ext
        return float(density.mean())


def _semilinear(x, z, p):    # -Lap u + u + tanh u = f
    return 0.5 * (p ** 2).sum(-1) + 0.5 * z ** 2 + torch.log(torch.cosh(z))


def _quasilinear(x, z, p):   # -div(grad u + grad u / sqrt(1 + |grad u|^2)) + u = f
    return 0.5 * (p ** 2).sum(-1) + torch.sqrt(1 + (p ** 2).sum(-1)) + 0.5 * z ** 2


def _u_periodic(x):
    return torch.sin(2 * math.pi * x[..., 0]) * torch.sin(4 * math.pi * x[..., 1]) + 0.3 * torch.cos(6 * math.pi * x[..., 0])


def _f_periodic(x):
    u, pi = _u_periodic(x), math.pi
    return (20 * pi ** 2 * torch.sin(2 * pi * x[..., 0]) * torch.sin(4 * pi * x[..., 1])
            + 10.8 * pi ** 2 * torch.cos(6 * pi * x[..., 0]) + u + torch.tanh(u))


def _u_dirichlet(x):
    pi = math.pi
    return torch.sin(pi * x[..., 0]) * torch.sin(pi * x[..., 1]) + 0.5 * torch.sin(2 * pi * x[..., 0]) * torch.sin(
        3 * pi * x[..., 1])


def _f_dirichlet(x):
    u, pi = _u_dirichlet(x), math.pi
    return (2 * pi ** 2 * torch.sin(pi * x[..., 0]) * torch.sin(pi * x[..., 1])
            + 6.5 * pi ** 2 * torch.sin(2 * pi * x[..., 0]) * torch.sin(3 * pi * x[..., 1]) + u + torch.tanh(u))


def manufactured_example(name: str, N: int) -> tuple[VariationalPDE, torch.Tensor]:
    """The spec's manufactured problems (B.5) with their closed-form solutions on the grid; Hessian bounds (1, 2).

    "A": ``-Lap u + u + tanh u = f`` on the 2-torus, ``u* = sin 2pi x sin 4pi y + 0.3 cos 6pi x`` (odd N).
    "B": ``-div(grad u + grad u / sqrt(1 + |grad u|^2)) + u = f`` on the torus with the same u*, f from the discrete
         operator ("discrete manufactured": u* solves the discretised problem exactly).
    "C": Ex-A's equation with ``u = 0`` on the boundary of [0, 1]^2, ``u* = sin pi x sin pi y + 0.5 sin 2pi x
         sin 3pi y``.
    """
    if name == "A":
        pde = VariationalPDE(_semilinear, _f_periodic, "periodic", 2, N)
        return pde, _u_periodic(pde.grid)
    if name == "B":
        probe = VariationalPDE(_quasilinear, torch.zeros((N, N), dtype=torch.float64), "periodic", 2, N)
        u_star = _u_periodic(probe.grid)
        return VariationalPDE(_quasilinear, probe.DE(u_star), "periodic", 2, N), u_star
    if name == "C":
        pde = VariationalPDE(_semilinear, _f_dirichlet, "dirichlet", 2, N)
        return pde, _u_dirichlet(pde.grid)
    raise ValueError(f"name must be 'A', 'B' or 'C', got {name!r}")


def barron_norm(u: torch.Tensor, domain: str = "periodic") -> float:
    """Spectral Barron norm ``sum_k (1 + 2 pi |k|_2) |c_k|`` of grid values (paper Def. 5, discretised).

    ``c_k = fft(u) / N^D`` with k in cycles on the torus [0, 1)^D. For ``domain="dirichlet"`` (interior values of
    a function vanishing on the boundary) it is computed on the odd extension to the period-2 torus, which gives
    ``sum_k (1 + pi |k|_2) |b_k|`` in the sine coefficients ``b_k`` of ``u = sum_k b_k prod_j sin(pi k_j x_j)``.
    """
    check_floating(u, "u")
    if domain not in DOMAINS:
        raise ValueError(f"domain must be one of {DOMAINS}, got {domain!r}")
    D, N = u.ndim, u.shape[0]
    if D < 1 or any(s != N for s in u.shape):
        raise ValueError(f"u must be grid values of shape (N,...,N), got {tuple(u.shape)}")
    pde_like = VariationalPDE(lambda x, z, p: z, torch.zeros_like(u, dtype=torch.float64), domain=domain, D=D, N=N,
                              dtype=torch.float64, device=u.device) if domain == "dirichlet" else None
    values = pde_like.extend(u.to(torch.float64)) if pde_like is not None else u.to(torch.float64)
    M = values.shape[0]
    period = 2.0 if domain == "dirichlet" else 1.0
    freq = torch.fft.fftfreq(M, d=period / M, dtype=torch.float64, device=u.device)
    k = torch.stack(torch.meshgrid(*([freq] * D), indexing="ij"), dim=-1)
    coeffs = torch.fft.fftn(values) / M ** D
    return float(((1 + 2 * math.pi * k.norm(dim=-1)) * coeffs.abs()).sum())


@dataclasses.dataclass(frozen=True)
class PGDResult(Result):
    """Result of :class:`PreconditionedGD`.

    Fields:
        u: final grid values. iterations: steps taken. status: CONVERGED when the preconditioned residual
            ``rms((I - Lap)^{-1} DE(u))`` of the returned u is <= tol.
        eta: the step size used. rate_bound: the contraction the step size guarantees (``(M - m)/(M + m)`` for the
            optimal step, the theory's ``1 - m^5/((1 + C_p) M^4)`` energy rate for "theory"; nan when unknown).
        history: per iteration (iteration 0 = the start): "energy", "residual" (preconditioned, rms), "step"
            (rms of u_t - u_{t-1}), "barron" (Barron norm of u_t), "error" (rms error vs u_star, if given).
        contraction: median ratio of successive step norms over the geometric phase (measured rate).
    """

    u: torch.Tensor
    iterations: int
    status: Status
    eta: float
    rate_bound: float
    history: dict[str, tuple[float, ...]]
    contraction: float


class PreconditionedGD:
    """``u <- u - eta (I - Laplacian)^{-1} DE(u)`` (spec B.2.2), or plain ``u <- u - eta DE(u)`` (``precond="none"``).

    Args:
        pde: the :class:`VariationalPDE`.
        eta: "optimal" (``2/(m + M)``: contraction ``(M - m)/(M + m)`` per step, independent of N; needs ``bounds``),
            "theory" (the paper's ``m^3/((1 + C_p) M^3)``, ICLR version Lemma 4, with C_p the Poincare constant:
            ``1/(D pi^2)`` for Dirichlet; 0 on the torus, where the u-term of L gives coercivity directly), or a
            float > 0. For ``precond="none"`` "optimal" means ``1 / lambda_max = 1 / (M (1 + 4 pi^2 |k_max|^2))``.
        bounds: (m, M), ``0 < m <= M``: bounds of the preconditioned Hessian of E (for L convex in (z, p) with
            Hessian in [m, M]).
        precond: "I-Lap" or "none". tol: stop when the preconditioned residual's rms is <= tol (> 0).
        max_iter: iteration budget.
    """

    def __init__(self, pde: VariationalPDE, eta: str | float = "optimal", bounds: tuple[float, float] | None = None,
                 precond: str = "I-Lap", tol: float = 1e-12, max_iter: int = 500) -> None:
        if precond not in ("I-Lap", "none"):
            raise ValueError(f"precond must be 'I-Lap' or 'none', got {precond!r}")
        if bounds is not None:
            m, M = bounds
            if not (isinstance(m, (int, float)) and isinstance(M, (int, float)) and 0 < m <= M < math.inf):
                raise ValueError(f"bounds must be (m, M) with 0 < m <= M < inf, got {bounds!r}")
        if isinstance(eta, str):
            if eta not in ("optimal", "theory"):
                raise ValueError(f"eta must be 'optimal', 'theory' or a float > 0, got {eta!r}")
            if bounds is None:
                raise ValueError(f"eta={eta!r} needs bounds=(m, M) on the Hessian of L")
        elif isinstance(eta, bool) or not isinstance(eta, (int, float)) or not 0 < eta < math.inf:
            raise ValueError(f"eta must be 'optimal', 'theory' or a finite float > 0, got {eta!r}")
        if isinstance(tol, bool) or not isinstance(tol, (int, float)) or not 0 < tol < math.inf:
            raise ValueError(f"tol must be a finite number > 0, got {tol!r}")
        if isinstance(max_iter, bool) or not isinstance(max_iter, int) or max_iter < 0:
            raise ValueError(f"max_iter must be an int >= 0, got {max_iter!r}")
        self.pde, self.bounds, self.precond, self.tol, self.max_iter = pde, bounds, precond, float(tol), max_iter
        self.eta, self.rate_bound = self._step_size(eta)

    def _step_size(self, eta) -> tuple[float, float]:
        if not isinstance(eta, str):
            if self.bounds is None:
                return float(eta), math.nan
            m, M = self.bounds
            if self.precond == "none":
                return float(eta), math.nan
            return float(eta), max(abs(1 - eta * m), abs(1 - eta * M))
        m, M = self.bounds
        if self.precond == "none":
            return 1.0 / (M * (1 + float(self.pde.symbol.max()))), math.nan
        if eta == "optimal":
            return 2.0 / (m + M), (M - m) / (M + m)
        poincare = 1.0 / (self.pde.D * math.pi ** 2) if self.pde.domain == "dirichlet" else 0.0
        return m ** 3 / ((1 + poincare) * M ** 3), 1 - m ** 5 / ((1 + poincare) * M ** 4)

    def run(self, u0: torch.Tensor | None = None, u_star: torch.Tensor | None = None,
            on_failure: str = "warn") -> PGDResult:
        pde = self.pde
        u = torch.zeros_like(pde.f) if u0 is None else pde._check_u(u0).clone()
        direction = pde.precondition if self.precond == "I-Lap" else (lambda r: r)
        history: dict[str, list[float]] = {"energy": [], "residual": [], "step": [], "barron": []}
        if u_star is not None:
            u_star = pde._check_u(u_star)
            history["error"] = []

        def rms(v: torch.Tensor) -> float:
            return float(v.pow(2).mean().sqrt())

        def log(u: torch.Tensor, d: torch.Tensor, step: float) -> None:
            history["energy"].append(pde.energy(u))
            history["residual"].append(rms(pde.precondition(d) if self.precond == "none" else d))
            history["step"].append(step)
            history["barron"].append(barron_norm(u, pde.domain))
            if u_star is not None:
                history["error"].append(rms(u - u_star))

        d = direction(pde.DE(u))
        log(u, d, math.nan)
        it = 0
        while history["residual"][-1] > self.tol and it < self.max_iter and math.isfinite(history["residual"][-1]):
            step = self.eta * d
            u = u - step
            d = direction(pde.DE(u))
            it += 1
            log(u, d, rms(step))
        residual = history["residual"][-1]
        status = (Status.CONVERGED if residual <= self.tol else
                  Status.NONFINITE if not math.isfinite(residual) else Status.MAX_ITER)
        report_status(status, "PreconditionedGD", f"preconditioned residual rms {residual:.3e} vs tol "
                      f"{self.tol:.1e} after {it} iterations (eta {self.eta:.3g}, precond {self.precond})", on_failure)
        steps = [s for s in history["step"][1:] if math.isfinite(s) and s > 1e3 * self.tol]
        ratios = [b / a for a, b in zip(steps, steps[1:]) if a > 0]
        contraction = float(torch.tensor(ratios).median()) if ratios else math.nan
        return PGDResult(u=u, iterations=it, status=status, eta=self.eta, rate_bound=self.rate_bound,
                         history={k: tuple(v) for k, v in history.items()}, contraction=contraction)


@dataclasses.dataclass(frozen=True)
class MaureyNetwork(Result):
    """A sampled 2-layer cosine network ``u_m(x) = (S / m) sum_j cos(2 pi k_j . x + phi_j)`` (Barron 1993 / Maurey).

    ``E ||u - u_m||^2_{L2} = (S^2 / 2 - ||u||^2_{L2}) / m`` exactly on the torus when u has no constant mode.
    """

    frequencies: torch.Tensor  # (m, D) integer frequencies in cycles
    phases: torch.Tensor       # (m,)
    scale: float               # S = sum_k |c_k|

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        angles = 2 * math.pi * (x[..., None, :] * self.frequencies).sum(-1) + self.phases  # (..., m)
        return self.scale * torch.cos(angles).mean(-1)


def maurey_two_layer(u: torch.Tensor, m: int, seed: int = 0) -> MaureyNetwork:
    """Sample m neurons from the Fourier representation of periodic grid values u (spec B.2.4(a))."""
    check_floating(u, "u")
    if isinstance(m, bool) or not isinstance(m, int) or m < 1:
        raise ValueError(f"m must be an int >= 1, got {m!r}")
    D, N = u.ndim, u.shape[0]
    coeffs = torch.fft.fftn(u.to(torch.float64)) / N ** D
    freq = torch.fft.fftfreq(N, d=1.0 / N, dtype=torch.float64, device=u.device)
    k = torch.stack(torch.meshgrid(*([freq] * D), indexing="ij"), dim=-1).reshape(-1, D)
    weights = coeffs.abs().reshape(-1)
    scale = float(weights.sum())
    if scale == 0:
        raise ValueError("u is identically zero: nothing to sample")
    g = torch.Generator(device=u.device).manual_seed(seed)
    idx = torch.multinomial(weights / scale, m, replacement=True, generator=g)
    return MaureyNetwork(frequencies=k[idx], phases=torch.angle(coeffs.reshape(-1)[idx]), scale=scale)


@dataclasses.dataclass(frozen=True)
class TwoLayerFit(Result):
    model: nn.Module
    rel_l2: float
    steps: int


class TwoLayerOnDomain(nn.Module):
    """``sum_i c_i sigma(a_i . phi(x) + b_i)`` with the domain built in.

    Periodic: ``phi(x) = (cos 2 pi x, sin 2 pi x)``, so the network is exactly 1-periodic (raw coordinates make a
    tanh layer fit the periodic Ex-A target worse as the width grows: relL2 0.45 / 0.56 / 0.90 at widths 16 / 64
    / 256, against 0.019 / 0.013 / 0.009 with the features). Dirichlet: ``phi(x) = x`` and the output is multiplied
    by ``prod_j x_j (1 - x_j)`` (exact zero boundary values). Input (..., D), output (...).
    """

    def __init__(self, D: int, width: int, activation: str, domain: str) -> None:
        super().__init__()
        acts = {"tanh": nn.Tanh, "relu": nn.ReLU}
        if activation not in acts:
            raise ValueError(f"activation must be one of {tuple(acts)}, got {activation!r}")
        if isinstance(width, bool) or not isinstance(width, int) or width < 1:
            raise ValueError(f"width must be an int >= 1, got {width!r}")
        if domain not in ("periodic", "dirichlet"):
            raise ValueError(f"domain must be 'periodic' or 'dirichlet', got {domain!r}")
        self.domain = domain
        in_dim = 2 * D if domain == "periodic" else D
        self.net = nn.Sequential(nn.Linear(in_dim, width), acts[activation](), nn.Linear(width, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.domain == "periodic":
            return self.net(torch.cat([torch.cos(2 * math.pi * x), torch.sin(2 * math.pi * x)], dim=-1))[..., 0]
        return self.net(x)[..., 0] * (x * (1 - x)).prod(-1)


def _adam_cosine(model: nn.Module, lr: float, steps: int):
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    return opt, torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(steps, 1))


def fit_two_layer(u: torch.Tensor, width: int, activation: str = "tanh", *, domain: str = "periodic",
                  steps: int = 2000, lr: float = 1e-2, seed: int = 0) -> TwoLayerFit:
    """Fit a :class:`TwoLayerOnDomain` network to grid values by full-batch Adam with a cosine learning rate
    (spec B.2.4(b)); reports relL2 on the grid."""
    check_floating(u, "u")
    D, N = u.ndim, u.shape[0]
    pde = VariationalPDE(lambda x, z, p: z, torch.zeros_like(u, dtype=torch.float64), domain=domain, D=D, N=N,
                         dtype=torch.float64, device=u.device)
    torch.manual_seed(seed)
    model = TwoLayerOnDomain(D, width, activation, domain).to(device=u.device, dtype=torch.float64)
    x, target = pde.grid.reshape(-1, D), u.to(torch.float64).reshape(-1)
    opt, schedule = _adam_cosine(model, lr, steps)
    for _ in range(steps):
        opt.zero_grad()
        loss = (model(x) - target).pow(2).mean()
        loss.backward()
        opt.step()
        schedule.step()
    with torch.no_grad():
        rel = float((model(x) - target).norm() / target.norm())
    return TwoLayerFit(model=model, rel_l2=rel, steps=steps)


@dataclasses.dataclass(frozen=True)
class DeepRitzResult(Result):
    model: nn.Module
    u: torch.Tensor               # the network on the PDE's grid
    energy: tuple[float, ...]     # quadrature energy per step
    steps: int


def deep_ritz(pde: VariationalPDE, width: int = 64, steps: int = 2000, lr: float = 5e-3,
              seed: int = 0) -> DeepRitzResult:
    """Deep Ritz (E & Yu 2017): minimise the grid quadrature of ``E(u_theta)`` over a :class:`TwoLayerOnDomain`
    tanh network (periodic features or the Dirichlet envelope). Gradients of u_theta come from autograd, not the
    spectrum.
    """
    D = pde.D
    torch.manual_seed(seed)
    model = TwoLayerOnDomain(D, width, "tanh", pde.domain).to(device=pde.grid.device, dtype=pde.dtype)
    x = pde.grid.reshape(-1, D).clone().requires_grad_(True)
    f = pde.f.reshape(-1)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    energy = []
    for _ in range(steps):
        opt.zero_grad()
        u = model(x)
        (p,) = torch.autograd.grad(u.sum(), x, create_graph=True)
        loss = (pde.L(x, u, p) - f * u).mean()
        loss.backward()
        opt.step()
        energy.append(float(loss.detach()))
    with torch.no_grad():
        values = model(pde.grid.reshape(-1, D)).reshape(pde.f.shape)
    return DeepRitzResult(model=model, u=values, energy=tuple(energy), steps=steps)
