"""Gibbs sampling of the FunBaT posterior: the exact-posterior reference for the message-passing fit, and bands
that cover at their nominal level when the model is right.

The FunBaT model is conditionally conjugate. Given the core W and the other factors, mode k's factor values at
its distinct coordinates are Gaussian: a GP prior (σ_k² K_ℓk ⊗ I_r) times a Gaussian likelihood whose merged
precision and shift per coordinate are exactly the CEP sums of ``funbat_moments`` evaluated at point values.
Given the factors, vec(W) is Gaussian; given everything, the noise precision τ is Gamma. One sweep draws each of
these in turn, then moves along the model's scale gauge: (U_k, W) -> (c U_k, W / c) leaves the likelihood
unchanged, so single-site Gibbs crosses it only by a slow random walk (on prior draws, chains from different
starts disagreed on the extrapolated coverage by 0.82 vs 0.99 without it). c is drawn exactly from its
conditional (a generalised inverse Gaussian; Liu & Sabatti 2000, generalised Gibbs with the multiplicative group).

With ``hyperparameters="sample"`` each mode's ℓ_k (on a log grid around the fit's value) and σ_k² (flat in
log σ², so σ_k² | ℓ, U is inverse Gamma) are drawn too. Then (U_j, σ_j²) -> (c U_j, c² σ_j²) with
(U_k, σ_k²) -> (U_k / c, σ_k² / c²) changes nothing at all (likelihood, priors and Jacobians cancel): the
posterior is flat along these K - 1 gauge directions and an unchecked chain drifts along them without bound (σ²
of 1e11 within 1,000 sweeps). Every sweep therefore puts σ_k² (k < K) back on the fit's values along that orbit,
which changes no prediction, and the overall scale, fixed only by the core's N(0, I) prior, gets its own exact
move (1/c² ~ Gamma(R/2, |W|²/2)).

Predictions average, over the retained draws, the exact conditional of each factor at new coordinates (the GP
conditional given the drawn values at the training coordinates), so extrapolated times carry the prior's
uncertainty beyond the data.

Cost: one dense Cholesky of size S_k r_k per mode and sweep, so modes with many distinct coordinates are refused
(``max_states``; round the coordinates or use the message-passing fit). On the spec-sized data (S = 30, 30, 100,
r = 2, one thread) a sweep takes 3.3-3.7 ms at N = 1,000 and 8.5-10 ms at N = 8,000: the default 1,000 sweeps cost
0.5x and 2.0-2.2x the message-passing fit (``python benchmarks/bench_funbat.py --only gibbs``, three runs).

Measured (issue 13, prior draws at N = 1,000 with the exact model; ``experiments/tensor_funbat_calibration.py``):
held-out latent coverage 0.94-0.95 and extrapolated 0.91-0.96 over three sets of 60-200 draws (standard errors
0.02-0.006), against 0.86 and 0.71-0.79 for the message-passing posterior the chains started from. Chains started
at the truth (``initial``, an exact posterior draw: nominal in expectation whether they mix or not) cover 0.949
and 0.960 ± 0.006 on 200 draws where the chains from the fit cover 0.947 and 0.956: the kernel is right, and
starting at the fit costs 0.002-0.003 (paired).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Literal

import numpy as np
import torch
from scipy.stats import geninvgauss

from sciml.core import Config, Result, Status, check_generator, report_status
from sciml.tensor import funbat_moments as mom
from sciml.tensor.funbat import FunBaTResult, _prediction_coords, _prepare
from sciml.tensor.state_space import matern_kernel

# Relative nugget added to the unit-variance Matérn Gram before its Cholesky: Grams of close coordinates are
# numerically singular in float64; 1e-9 perturbs a draw by ~3e-5 of its scale.
_NUGGET = 1e-9


@dataclasses.dataclass(frozen=True)
class FunBaTGibbs(Config):
    """Gibbs sampler of a FunBaT posterior, started from a message-passing fit (``sample``).

    Args:
        n_samples: draws kept after burn-in.
        burn_in: sweeps discarded first.
        thin: sweeps per kept draw.
        hyperparameters: "sample" draws each mode's Matérn ℓ and σ² (flat priors in log ℓ on the grid and in
            log σ²); "fixed" keeps the fit's values (its learned ones, or the config's with ``learn=()``).
        lengthscale_grid: points of the log ℓ grid, spanning ℓ_fit · e^{±lengthscale_span}.
        lengthscale_span: half-width of that grid in log ℓ.
        max_states: largest S_k r_k (distinct coordinates times rank) sampled densely; above it ``sample``
            raises (the dense Cholesky would cost (S_k r_k)³ per sweep).
        min_ess: effective sample size of the monitored traces (training log-likelihood and f at up to 32
            training coordinates) below which the run is reported MAX_ITER, not CONVERGED.
    """

    n_samples: int = 400
    burn_in: int = 200
    thin: int = 2
    hyperparameters: Literal["sample", "fixed"] = "sample"
    lengthscale_grid: int = 25
    lengthscale_span: float = 2.5
    max_states: int = 2048
    min_ess: float = 50.0

    def validate(self) -> None:
        for name in ("n_samples", "thin", "lengthscale_grid", "max_states"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        if not isinstance(self.burn_in, int) or self.burn_in < 0:
            raise ValueError(f"burn_in must be an int >= 0, got {self.burn_in!r}")
        if self.hyperparameters not in ("sample", "fixed"):
            raise ValueError(f"hyperparameters must be 'sample' or 'fixed', got {self.hyperparameters!r}")
        if not self.lengthscale_span > 0 or not self.min_ess > 0:
            raise ValueError(f"lengthscale_span and min_ess must be > 0, got {self.lengthscale_span}, {self.min_ess}")

    def sample(self, start: FunBaTResult, coords: torch.Tensor, values: torch.Tensor,
               generator: torch.Generator | None = None, on_failure: str = "warn",
               initial: tuple[Sequence[torch.Tensor], torch.Tensor] | None = None) -> FunBaTSamples:
        """Run the chain from ``start`` (a fit of the same ``coords``/``values``) and keep ``n_samples`` draws.

        ``initial`` = (factor values at ``start.grids[k]``, shape (S_k, r_k), core), in the data's units, starts
        the chain there instead of at the fit's means. Started at the truth of a draw from the model's prior
        (an exact posterior draw), a chain whose moves leave the posterior invariant covers at the nominal level
        on average from its first sweep on, mixed or not: the check that separates the sampler's kernel from its
        mixing (``experiments/tensor_funbat_calibration.py``, ``truth_start``).
        """
        model = start.model
        if model.variant == "cp" and self.hyperparameters == "sample":
            raise ValueError("hyperparameters='sample' needs the Tucker variant: with the CP variant's fixed core "
                             "nothing fixes the scale shared between the modes' σ²; use hyperparameters='fixed'")
        data = _prepare(model, coords, values)
        n_fit = round(2.0 * (start.tau_shape - model.a0))      # q(τ) has shape a0 + N / 2
        if n_fit != data.y.shape[0] or len(data.grids) != len(start.grids) or any(
                g.shape != h.shape or not torch.equal(g, h.to(g)) for g, h in zip(data.grids, start.grids)):
            raise ValueError("coords do not match the fit's: sample needs the data the FunBaT fit was run on")
        for k, (g, r) in enumerate(zip(data.grids, data.ranks)):
            if g.shape[0] * r > self.max_states:
                raise ValueError(f"mode {k} has {g.shape[0]} distinct coordinates x rank {r} = {g.shape[0] * r} "
                                 f"states, above max_states={self.max_states} (dense cost grows as the cube); "
                                 f"round the coordinates (FunBaT(round_decimals=...)) or raise max_states")
        if initial is not None:
            factors, core = initial
            if len(factors) != len(start.grids) or any(
                    tuple(u.shape) != (g.shape[0], r) for u, g, r in zip(factors, start.grids, data.ranks)) \
                    or tuple(core.shape) != tuple(start.core_mean.shape):
                raise ValueError(f"initial needs factor values of shapes "
                                 f"{[(g.shape[0], r) for g, r in zip(start.grids, data.ranks)]} (the fit's distinct "
                                 f"coordinates x rank) and a core of shape {tuple(start.core_mean.shape)}")
            if not all(bool(torch.isfinite(t).all()) for t in (*factors, core)):
                raise ValueError("initial holds non-finite values")
            # the fit works on y / y_scale, so the same f needs the core divided by it
            initial = ([u.to(start.core_mean) for u in factors], core.to(start.core_mean) / start.y_scale)
        check_generator(generator, coords.device)
        return _run_chain(self, start, data, generator, on_failure, initial)


@dataclasses.dataclass(frozen=True)
class FunBaTSamples(Result):
    """Retained Gibbs draws (standardised units, as inside ``FunBaT.fit``).

    Shapes: factors[k] (n, S_k, r_k), core (n, r_1..r_K), noise_var (n,), lengthscales[k] and variances[k] (n,).
    ``ess`` is the smallest effective sample size of the monitored traces, ``rhat`` the largest split-R̂.
    """

    model: object                 # the FunBaT config of the fit
    sampler: FunBaTGibbs
    grids: tuple[torch.Tensor, ...]
    factors: tuple[torch.Tensor, ...]
    core: torch.Tensor
    noise_var: torch.Tensor
    lengthscales: tuple[torch.Tensor, ...]
    variances: tuple[torch.Tensor, ...]
    y_offset: float
    y_scale: float
    ess: float
    rhat: float
    status: Status
    reason: str = ""

    @property
    def noise_std(self) -> float:
        """Posterior mean noise standard deviation, original units."""
        return self.y_scale * float(self.noise_var.mean().sqrt())

    def predict(self, coords: torch.Tensor, include_noise: bool = True,
                extrapolate: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior predictive mean and variance of y (``include_noise``) or f at coordinates (n, K)."""
        K = len(self.grids)
        c = _prediction_coords(coords, self.grids, self.model.round_decimals, extrapolate)
        conditionals = [_conditional_maps(self.grids[k], c[:, k], self.lengthscales[k], self.model.kernel)
                        for k in range(K)]
        first = torch.zeros(c.shape[0], dtype=c.dtype, device=c.device)
        second = torch.zeros_like(first)
        n = self.core.shape[0]
        for s in range(n):
            factors = []
            for k in range(K):
                mean, sd = self._conditional(conditionals, k, s)
                r = mean.shape[1]
                root = sd[:, None, None] * torch.eye(r, dtype=c.dtype, device=c.device)
                factors.append(torch.cat([root, mean[..., None]], dim=-1))
            if self.model.variant == "cp":
                f_mean, f_var = mom.cp_predictive(factors)
            else:
                R = self.core[s].numel()
                zero = torch.zeros(R, R, dtype=c.dtype, device=c.device)
                f_mean, f_var = mom.tucker_predictive(self.core[s], zero, factors, self.model.budget)
            if include_noise:
                f_var = f_var + self.noise_var[s]
            first += f_mean
            second += f_var + f_mean**2
        mean = first / n
        var = (second / n - mean**2).clamp(min=0.0)
        return self.y_offset + self.y_scale * mean, self.y_scale**2 * var

    def _conditional(self, conditionals, k: int, s: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Mode k of draw s at the new coordinates: conditional mean (n, r) and per-component sd (n,)."""
        gain, unit_var = conditionals[k][float(self.lengthscales[k][s])]
        return gain @ self.factors[k][s], (self.variances[k][s] * unit_var).sqrt()

    def interval(self, coords: torch.Tensor, level: float = 0.95, include_noise: bool = True,
                 extrapolate: bool = True, generator: torch.Generator | None = None
                 ) -> tuple[torch.Tensor, torch.Tensor]:
        """Equal-tailed credible interval (lower, upper) of y (``include_noise``) or f at coordinates (n, K).

        One predictive draw per retained sample (the factors at new coordinates drawn from their GP conditional),
        then the empirical quantiles. Unlike mean ± z·sd from ``predict`` it follows the predictive's shape, which
        is a scale mixture (heavier tails than a Gaussian) beyond the data. Memory: n_samples × n values.
        """
        if not 0.0 < level < 1.0:
            raise ValueError(f"level must be in (0, 1), got {level}")
        K = len(self.grids)
        c = _prediction_coords(coords, self.grids, self.model.round_decimals, extrapolate)
        check_generator(generator, c.device)
        conditionals = [_conditional_maps(self.grids[k], c[:, k], self.lengthscales[k], self.model.kernel)
                        for k in range(K)]
        every = [torch.arange(c.shape[0], device=c.device)] * K
        draws = torch.empty(self.core.shape[0], c.shape[0], dtype=c.dtype, device=c.device)
        for s in range(self.core.shape[0]):
            rows = []
            for k in range(K):
                mean, sd = self._conditional(conditionals, k, s)
                noise = torch.randn(mean.shape, generator=generator, dtype=c.dtype, device=c.device)
                rows.append(mean + sd[:, None] * noise)
            draws[s] = _predict_points(self.model.variant, rows, every, self.core[s])
            if include_noise:
                draws[s] += self.noise_var[s].sqrt() * torch.randn(c.shape[0], generator=generator, dtype=c.dtype,
                                                                   device=c.device)
        tails = torch.tensor([(1.0 - level) / 2.0, (1.0 + level) / 2.0], dtype=c.dtype, device=c.device)
        lower, upper = torch.quantile(draws, tails, dim=0)
        return self.y_offset + self.y_scale * lower, self.y_offset + self.y_scale * upper


def _conditional_maps(grid: torch.Tensor, points: torch.Tensor, lengthscales: torch.Tensor,
                      kernel: str) -> dict[float, tuple[torch.Tensor, torch.Tensor]]:
    """Per distinct ℓ: the gain K_*ᵀ K⁻¹ (n, S) and the unit-variance conditional variance (n,) at ``points``."""
    out = {}
    for ell in torch.unique(lengthscales).tolist():
        chol = _unit_cholesky(grid, ell, kernel)
        cross = matern_kernel(points[:, None] - grid[None, :], kernel, ell, 1.0)
        half = torch.linalg.solve_triangular(chol, cross.T, upper=False)          # (S, n)
        gain = torch.linalg.solve_triangular(chol.T, half, upper=True).T          # (n, S)
        out[ell] = (gain, (1.0 - (half**2).sum(0)).clamp(min=0.0))
    return out


def _unit_cholesky(grid: torch.Tensor, ell: float, kernel: str) -> torch.Tensor:
    gram = matern_kernel(grid[:, None] - grid[None, :], kernel, ell, 1.0)
    return torch.linalg.cholesky(gram + _NUGGET * torch.eye(grid.shape[0], dtype=grid.dtype, device=grid.device))


def _point_factors(values: torch.Tensor) -> torch.Tensor:
    """Sqrt factors [0, u] of point values (no covariance), the format of ``funbat_moments``."""
    S, r = values.shape
    return torch.cat([torch.zeros(S, r, r, dtype=values.dtype, device=values.device), values[..., None]], dim=-1)


def _draw_factor(chol: torch.Tensor, variance: float, precision: torch.Tensor, shift: torch.Tensor,
                 generator) -> torch.Tensor:
    """One draw of U (S, r) from N(0, σ² K ⊗ I_r) times the Gaussian messages (precision (S, r, r), shift (S, r)).

    Whitened: U = σ L V with V ~ N(0, I) a priori, so the posterior precision of V is I + σ² Lᵀ Λ L (Λ block
    diagonal) and stays well conditioned however close the coordinates are.
    """
    S, r = shift.shape
    scale = math.sqrt(variance)
    # M[(s, i), (u, j)] = σ² Σ_t L[t, s] Λ_t[i, j] L[t, u]
    M = torch.einsum("ts,tij,tu->siuj", chol, precision, chol).reshape(S * r, S * r) * variance
    M = M + torch.eye(S * r, dtype=M.dtype, device=M.device)
    root = torch.linalg.cholesky(0.5 * (M + M.T))
    rhs = scale * (chol.T @ shift).reshape(-1)
    mean = torch.cholesky_solve(rhs[:, None], root)[:, 0]
    noise = torch.randn(S * r, 1, dtype=M.dtype, device=M.device, generator=generator)
    v = mean + torch.linalg.solve_triangular(root.T, noise, upper=True)[:, 0]
    return scale * (chol @ v.reshape(S, r))


def _features(factors: list[torch.Tensor], index: list[torch.Tensor]) -> torch.Tensor:
    """z_n = ⊗_k u^k(i^k_n), shape (N, R)."""
    z = None
    for u, idx in zip(factors, index):
        rows = u[idx]
        z = rows if z is None else (z[:, :, None] * rows[:, None, :]).reshape(rows.shape[0], -1)
    return z


def _predict_points(variant: str, factors: list[torch.Tensor], index: list[torch.Tensor],
                    core: torch.Tensor) -> torch.Tensor:
    if variant == "cp":
        out = None
        for u, idx in zip(factors, index):
            out = u[idx] if out is None else out * u[idx]
        return out.sum(-1)
    return _features(factors, index) @ core.reshape(-1)


def effective_sample_size(trace: torch.Tensor) -> float:
    """ESS of a scalar chain (Geyer's initial positive sequence on the FFT autocorrelation)."""
    x = trace.detach().double().cpu().numpy()
    n = x.shape[0]
    x = x - x.mean()
    if n < 4 or not np.any(x):
        return float(n)
    spectrum = np.fft.rfft(x, 2 * n)
    acov = np.fft.irfft(spectrum * np.conj(spectrum))[:n] / n
    rho = acov / acov[0]
    total = 0.0
    for t in range(0, n - 1, 2):
        pair = rho[t] + rho[t + 1]
        if pair <= 0:
            break
        total += pair
    return float(n / max(2.0 * total - 1.0, 1e-12))


def split_rhat(trace: torch.Tensor) -> float:
    """Split-R̂ of one chain (its halves compared; Gelman et al., BDA3 §11.4)."""
    x = trace.detach().double().cpu()
    half = x.shape[0] // 2
    if half < 2:
        return math.nan
    chains = torch.stack([x[:half], x[half: 2 * half]])
    within = chains.var(dim=1).mean()
    between = half * chains.mean(dim=1).var()
    if float(within) == 0.0:
        return 1.0
    pooled = (half - 1) / half * within + between / half
    return float((pooled / within).sqrt())


def _run_chain(cfg: FunBaTGibbs, start: FunBaTResult, data, generator, on_failure: str,
               initial: tuple[list[torch.Tensor], torch.Tensor] | None) -> FunBaTSamples:
    model = start.model
    K, N, y = len(data.grids), data.y.shape[0], data.y
    kw = {"dtype": y.dtype, "device": y.device}
    seed = int(torch.randint(0, 2**62, (1,), generator=generator, device=y.device).item())
    rng = np.random.default_rng(seed)
    tucker = model.variant == "tucker"
    ranks = data.ranks
    R = math.prod(ranks)

    # ℓ grid per mode (a single point when fixed), the unit-variance Choleskys and their log-determinants
    sample_hyper = cfg.hyperparameters == "sample"
    ell_grids, chols, logdets = [], [], []
    for k, g in enumerate(data.grids):
        centre = math.log(start.lengthscales[k])
        axis = (torch.linspace(centre - cfg.lengthscale_span, centre + cfg.lengthscale_span, cfg.lengthscale_grid,
                               **kw).exp() if sample_hyper else torch.tensor([start.lengthscales[k]], **kw))
        ch = torch.stack([_unit_cholesky(g, float(e), model.kernel) for e in axis])
        ell_grids.append(axis)
        chols.append(ch)
        logdets.append(2.0 * torch.log(torch.diagonal(ch, dim1=-2, dim2=-1)).sum(-1))
    ell_index = [int(torch.argmin((e - start.lengthscales[k]).abs())) for k, e in enumerate(ell_grids)]
    variances = list(start.variances)

    # start at the fit's posterior means, or at the given state
    factors = [m.clone() for m in (start.factor_mean if initial is None else initial[0])]
    core = (start.core_mean if initial is None else initial[1]).clone()
    tau = start.tau_shape / start.tau_rate
    a_tau = model.a0 + 0.5 * N
    monitor = torch.linspace(0, N - 1, min(N, 32), device=y.device).round().long()

    keep_u = [[] for _ in range(K)]
    keep_core, keep_noise, keep_ell, keep_var, traces = [], [], [[] for _ in range(K)], [[] for _ in range(K)], []
    n_sweeps = cfg.burn_in + cfg.n_samples * cfg.thin
    status, detail = Status.CONVERGED, ""
    for sweep in range(n_sweeps):
        points = [_point_factors(u) for u in factors]
        for k in range(K):
            if tucker:
                lam, eta = mom.tucker_mode_messages(core, points, data.index, y, k, data.grids[k].shape[0],
                                                    None, model.budget)
            else:
                lam, eta = mom.cp_mode_messages(points, data.index, y, k, data.grids[k].shape[0])
            chol = chols[k][ell_index[k]]
            factors[k] = _draw_factor(chol, variances[k], tau * lam, tau * eta, generator)
            points[k] = _point_factors(factors[k])
            if sample_hyper:
                ell_index[k], variances[k] = _draw_hyperparameters(chols[k], logdets[k], factors[k], rng)
        if tucker:
            z = _features(factors, data.index)
            gram = z.T @ z
            root = torch.linalg.cholesky(torch.eye(R, **kw) + tau * 0.5 * (gram + gram.T))
            mean = tau * torch.cholesky_solve((z.T @ y)[:, None], root)[:, 0]
            noise = torch.randn(R, 1, generator=generator, **kw)
            core = (mean + torch.linalg.solve_triangular(root.T, noise, upper=True)[:, 0]).reshape(ranks)
            fitted = z @ core.reshape(-1)      # the gauge moves below leave f unchanged
            if sample_hyper:
                # the core's prior is the only thing fixing the overall scale: one exact move for it, through
                # the last mode, then the modes' σ² are put back on the fit's (the gauge orbit left free)
                c = _gauge_scale(None, 0.0, factors[-1], core, True, rng)
                factors[-1], core, variances[-1] = c * factors[-1], core / c, variances[-1] * c * c
                for k in range(K - 1):
                    c = math.sqrt(start.variances[k] / variances[k])
                    factors[k], variances[k] = c * factors[k], start.variances[k]
                    factors[-1], variances[-1] = factors[-1] / c, variances[-1] / (c * c)
            else:
                for k in range(K):
                    c = _gauge_scale(chols[k][ell_index[k]], variances[k], factors[k], core, False, rng)
                    factors[k], core = c * factors[k], core / c
        else:
            for k in range(K - 1):   # CP: trade scale between neighbouring modes
                c = _cp_gauge_scale(chols[k][ell_index[k]], variances[k], factors[k],
                                    chols[k + 1][ell_index[k + 1]], variances[k + 1], factors[k + 1], rng)
                factors[k] = c * factors[k]
                factors[k + 1] = factors[k + 1] / c
        if not tucker:
            fitted = _predict_points(model.variant, factors, data.index, core)
        rss = float(((y - fitted) ** 2).sum())
        tau = float(rng.gamma(a_tau, 1.0 / (model.b0 + 0.5 * rss)))
        if not (math.isfinite(rss) and math.isfinite(tau)):
            status, detail = Status.NONFINITE, f"non-finite draw at sweep {sweep}"
            break
        if sweep >= cfg.burn_in and (sweep - cfg.burn_in) % cfg.thin == cfg.thin - 1:
            for k in range(K):
                keep_u[k].append(factors[k].clone())
                keep_ell[k].append(float(ell_grids[k][ell_index[k]]))
                keep_var[k].append(variances[k])
            keep_core.append(core.clone())
            keep_noise.append(1.0 / tau)
            traces.append(torch.cat([torch.tensor([-0.5 * tau * rss + 0.5 * N * math.log(tau)], **kw),
                                     fitted[monitor]]))
    ess = rhat = math.nan
    if status is Status.CONVERGED:
        trace = torch.stack(traces)
        ess = min(effective_sample_size(trace[:, j]) for j in range(trace.shape[1]))
        rhat = max(split_rhat(trace[:, j]) for j in range(trace.shape[1]))
        detail = f"{n_sweeps} sweeps, {cfg.n_samples} draws kept, min ESS {ess:.0f}, max split-R̂ {rhat:.3f}"
        if ess < cfg.min_ess or rhat > 1.1:
            status = Status.MAX_ITER
            detail += f" (need ESS >= {cfg.min_ess:g} and R̂ <= 1.1: raise n_samples, thin or burn_in)"
        edges = [k for k in range(K) if sample_hyper and any(
            v in (float(ell_grids[k][0]), float(ell_grids[k][-1])) for v in keep_ell[k])]
        if edges:
            detail += f"; ℓ draws reached the grid edge in modes {edges} (raise lengthscale_span)"
    report_status(status, f"FunBaTGibbs.sample ({model.variant})", detail, on_failure)
    if not keep_core:
        raise RuntimeError(f"FunBaTGibbs.sample kept no draws ({detail})")
    return FunBaTSamples(
        model=model, sampler=cfg, grids=tuple(data.grids), factors=tuple(torch.stack(u) for u in keep_u),
        core=torch.stack(keep_core), noise_var=torch.tensor(keep_noise, **kw),
        lengthscales=tuple(torch.tensor(e, **kw) for e in keep_ell),
        variances=tuple(torch.tensor(v, **kw) for v in keep_var), y_offset=data.offset, y_scale=data.scale,
        ess=ess, rhat=rhat, status=status, reason=detail)


def _draw_hyperparameters(chols: torch.Tensor, logdets: torch.Tensor, u: torch.Tensor,
                          rng: np.random.Generator) -> tuple[int, float]:
    """(ℓ index, σ²) from p(ℓ | U) ∝ |K_ℓ|^{-r/2} q_ℓ^{-S r/2} (σ² integrated out) and σ² | ℓ, U ~ IG(S r/2, q_ℓ/2)."""
    S, r = u.shape
    white = torch.linalg.solve_triangular(chols, u.expand(chols.shape[0], S, r), upper=False)
    q = (white**2).sum((-1, -2))
    logp = (-0.5 * r * logdets - 0.5 * S * r * torch.log(q)).double().cpu().numpy()
    p = np.exp(logp - logp.max())
    i = int(rng.choice(p.shape[0], p=p / p.sum()))
    return i, float(q[i]) / (2.0 * rng.gamma(0.5 * S * r))


def _gauge_scale(chol: torch.Tensor, variance: float, u: torch.Tensor, core: torch.Tensor, sample_hyper: bool,
                 rng: np.random.Generator) -> float:
    """c for (U, W) -> (c U, W / c) (and σ² -> c² σ² when σ² is sampled), drawn from its exact conditional.

    Haar measure dc/c and Jacobian c^{S r - R}: with σ² fixed, t = c² ~ GIG(λ = (S r - R)/2, χ = |W|²,
    ψ = q_U / σ²); with σ² moving along (its flat log prior), only the core's prior is left: 1/c² ~ Gamma(R/2,
    |W|²/2).
    """
    b = float((core**2).sum())
    R = core.numel()
    if sample_hyper:
        return 1.0 / math.sqrt(rng.gamma(0.5 * R, 2.0 / b))
    a = _prior_quadratic(chol, variance, u)
    lam = 0.5 * (u.numel() - R)
    t = math.sqrt(b / a) * float(geninvgauss.rvs(lam, math.sqrt(a * b), random_state=rng))
    return math.sqrt(t)


def _cp_gauge_scale(chol_a, var_a, u_a, chol_b, var_b, u_b, rng) -> float:
    """CP variant: c for (U_a, U_b) -> (c U_a, U_b / c); t = c² ~ GIG((S_a - S_b) r / 2, q_b, q_a)."""
    qa, qb = _prior_quadratic(chol_a, var_a, u_a), _prior_quadratic(chol_b, var_b, u_b)
    lam = 0.5 * (u_a.numel() - u_b.numel())
    return math.sqrt(math.sqrt(qb / qa) * float(geninvgauss.rvs(lam, math.sqrt(qa * qb), random_state=rng)))


def _prior_quadratic(chol: torch.Tensor, variance: float, u: torch.Tensor) -> float:
    """tr(Uᵀ (σ² K)⁻¹ U) with K = L Lᵀ: the exponent of U's GP prior."""
    return float((torch.linalg.solve_triangular(chol, u, upper=False) ** 2).sum()) / variance
