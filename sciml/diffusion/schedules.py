"""Noise schedules: discrete DDPM, continuous VP and the linear flow-matching path, with time grids.

A schedule maps a time ``t`` to ``alpha_t`` and ``sigma_t`` with ``x_t = alpha_t x_0 + sigma_t eps``. Samplers
only use :meth:`Schedule.alpha_sigma` and :meth:`Schedule.grid`; the model is called with the schedule's own time
values (integer timesteps for the discrete DDPM schedule, floats in [0, 1] otherwise).

The grid's last entry is the *end* time: for the discrete schedule it is ``-1`` (the clean sample, alpha = 1,
sigma = 0, diffusers' ``set_alpha_to_one=True`` / ``final_sigmas_type="zero"``) or, with ``end="zero"``, the
first training step ``t = 0`` (diffusers' ``set_alpha_to_one=False`` / ``final_sigmas_type="sigma_min"``, and the
released LML DPM-Solver scheduler); for the continuous schedules it is ``t_end`` (default 1e-3, where sigma is
~0.01), as in DPM-Solver's reference code.

Discrete grids follow diffusers' ``set_timesteps`` formulas, which differ between scheduler families (same
spacing name, different grids), so :meth:`VPSchedule.grid` takes the family:

* ``"ddim"`` (``DDIMScheduler``, ``PNDMScheduler``): N integer timesteps, linspace rounded;
* ``"multistep"`` (``DPMSolverMultistepScheduler``, ``UniPCMultistepScheduler``): N + 1 points of which the last is
  dropped (linspace of 5 steps: [999, 799, 599, 400, 200], where the DDIM family gives [999, 749, 500, 250, 0]);
* ``"karras"`` (``EulerDiscreteScheduler``, ``HeunDiscreteScheduler``): like "ddim" but linspace is *not*
  rounded (fractional float32 timesteps; the model sees them and alpha/sigma are interpolated, see below).

Fractional discrete times (the "karras" linspace grid) use diffusers' interpolation: the Karras sigma
``sqrt((1 - acp) / acp)`` is interpolated linearly in t and converted back by ``alpha = 1 / sqrt(1 + s²)``.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np
import torch

DISCRETE_SPACINGS = ("trailing", "leading", "linspace", "logsnr")
CONTINUOUS_SPACINGS = ("uniform", "logsnr")
GRID_FAMILIES = ("ddim", "multistep", "karras")
ENDS = ("clean", "zero")


@dataclasses.dataclass(frozen=True)
class VPSchedule:
    """Variance-preserving schedule (``alpha² + sigma² = 1``), discrete or continuous.

    Build it with :meth:`continuous` or :meth:`ddpm_linear` (or :meth:`discrete` from any ``alphas_cumprod``).

    Reference: Ho et al. 2020 (DDPM, arXiv 2006.11239) for the discrete linear-beta schedule; Song et al. 2021
    (arXiv 2011.13456) eq. 33 and Lu et al. 2022 (DPM-Solver, arXiv 2206.00927) App. D for the continuous one,
    ``log alpha_t = -t² (beta_max - beta_min)/4 - t beta_min/2`` and its closed-form inverse of the log-SNR.
    """

    kind: str                                   # "continuous" | "discrete"
    beta_min: float = 0.1
    beta_max: float = 20.0
    t_end: float = 1e-3
    alphas_cumprod: tuple[float, ...] = ()      # discrete only (float64 values)

    def __post_init__(self) -> None:
        if self.kind not in ("continuous", "discrete"):
            raise ValueError(f"kind must be 'continuous' or 'discrete', got {self.kind!r}")
        if self.kind == "continuous":
            if not 0 <= self.beta_min < self.beta_max:
                raise ValueError(f"need 0 <= beta_min < beta_max, got {self.beta_min}, {self.beta_max}")
            if not 0 < self.t_end < 1:
                raise ValueError(f"t_end must be in (0, 1), got {self.t_end}")
        else:
            acp = np.asarray(self.alphas_cumprod)
            if acp.ndim != 1 or acp.size < 2 or not np.all((acp > 0) & (acp < 1)) or np.any(np.diff(acp) > 0):
                raise ValueError("alphas_cumprod must be a non-increasing sequence in (0, 1) of length >= 2")

    # ----------------------------------------------------------------- constructors
    @classmethod
    def continuous(cls, beta_min: float = 0.1, beta_max: float = 20.0, t_end: float = 1e-3) -> VPSchedule:
        """Linear ``beta(t) = beta_min + t (beta_max - beta_min)`` on t in [0, 1] (Song et al. 2021 defaults)."""
        return cls("continuous", beta_min=beta_min, beta_max=beta_max, t_end=t_end)

    @classmethod
    def ddpm_linear(cls, T: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02) -> VPSchedule:
        """DDPM linear betas (Ho et al. 2020: T = 1000, beta 1e-4 .. 0.02), cumulative product in float64.

        Differs from diffusers: diffusers builds the betas and their cumulative product in float32; use
        :meth:`discrete` with ``scheduler.alphas_cumprod`` to reproduce a diffusers run bit for bit.
        """
        if T < 2:
            raise ValueError(f"T must be >= 2, got {T}")
        betas = np.linspace(beta_start, beta_end, T, dtype=np.float64)
        return cls.discrete(np.cumprod(1.0 - betas))

    @classmethod
    def discrete(cls, alphas_cumprod) -> VPSchedule:
        """A discrete schedule from any ``alphas_cumprod`` (array, list or tensor of length T)."""
        values = torch.as_tensor(alphas_cumprod).detach().cpu().double().numpy()
        return cls("discrete", alphas_cumprod=tuple(float(v) for v in values))

    # ----------------------------------------------------------------- coefficients
    @functools.cached_property
    def _acp_table(self) -> torch.Tensor:
        """``[1, alphas_cumprod...]`` so that index ``t + 1`` serves t = -1 (the clean end) too."""
        return torch.tensor((1.0,) + self.alphas_cumprod, dtype=torch.float64)

    @property
    def num_train_timesteps(self) -> int:
        return len(self.alphas_cumprod)

    @property
    def t_max(self) -> float:
        """The largest time: T for the discrete schedule (diffusers' convention for ``freeze``), 1 otherwise."""
        return float(self.num_train_timesteps) if self.kind == "discrete" else 1.0

    def alpha_sigma(self, t: torch.Tensor | float) -> tuple[torch.Tensor, torch.Tensor]:
        """``(alpha_t, sigma_t)`` as float64 tensors of t's shape (t = -1 on a discrete schedule: (1, 0))."""
        t = torch.as_tensor(t, dtype=torch.float64)
        if self.kind == "continuous":
            log_alpha = -0.25 * t**2 * (self.beta_max - self.beta_min) - 0.5 * t * self.beta_min
            alpha = torch.exp(log_alpha)
            sigma = torch.sqrt(-torch.expm1(2.0 * log_alpha))
            return alpha, sigma
        acp = self._acp_table.to(t.device)
        if bool(((t < -1) | (t > self.num_train_timesteps - 1)).any()):
            raise ValueError(f"discrete timesteps must lie in [-1, {self.num_train_timesteps - 1}]")
        whole = t == t.round()
        a2 = acp[t.round().long() + 1]
        alpha, sigma = a2.sqrt(), (1.0 - a2).sqrt()
        if bool(whole.all()):
            return alpha, sigma
        # fractional t in [0, T - 1]: diffusers' np.interp of the Karras sigma between the neighbouring steps
        lo = t.floor().clamp(0, self.num_train_timesteps - 2)
        w = t - lo
        s_table = ((1.0 - acp[1:]) / acp[1:]).sqrt()
        s_k = (1.0 - w) * s_table[lo.long()] + w * s_table[lo.long() + 1]
        a_k = torch.rsqrt(1.0 + s_k**2)
        return torch.where(whole, alpha, a_k), torch.where(whole, sigma, s_k * a_k)

    def log_snr(self, t: torch.Tensor | float) -> torch.Tensor:
        """``lambda_t = log(alpha_t / sigma_t)`` (+inf at the clean end of a discrete schedule)."""
        alpha, sigma = self.alpha_sigma(t)
        return torch.log(alpha) - torch.log(sigma)

    def t_of_log_snr(self, lam: torch.Tensor) -> torch.Tensor:
        """Inverse of :meth:`log_snr` (continuous: closed form; discrete: nearest timestep, as a float)."""
        lam = torch.as_tensor(lam, dtype=torch.float64)
        if self.kind == "continuous":
            L = torch.nn.functional.softplus(-2.0 * lam)                  # log(1 + e^{-2 lambda}) = -2 log alpha
            delta = self.beta_max - self.beta_min
            return 2.0 * L / (self.beta_min + torch.sqrt(self.beta_min**2 + 2.0 * delta * L))
        table = self.log_snr(torch.arange(self.num_train_timesteps, dtype=torch.float64))
        return (table[None, :] - lam.reshape(-1, 1)).abs().argmin(dim=1).double().reshape(lam.shape)

    def grid(self, steps: int, spacing: str | None = None, family: str = "ddim", end: str = "clean",
             steps_offset: int = 0) -> torch.Tensor:
        """``steps + 1`` decreasing times from the start (pure noise) to the end time.

        Args:
            steps: number of solver steps (>= 1).
            spacing: discrete: "trailing" (default), "leading", "linspace" (diffusers' names, computed as the
                diffusers scheduler of ``family`` computes them) or "logsnr" (uniform in log-SNR, rounded);
                continuous: "logsnr" (default) or "uniform".
            family: discrete only: "ddim", "multistep" or "karras" (see the module docstring).
            end: discrete only: "clean" (t = -1, sigma = 0) or "zero" (t = 0, sigma = sigma_min).
            steps_offset: diffusers' ``steps_offset``, added to a "leading" grid.

        Returns:
            float64 tensor of shape (steps + 1,) (shorter when a "multistep" grid repeats a timestep, which
            diffusers removes as well).
        """
        if not isinstance(steps, (int, np.integer)) or steps < 1:
            raise ValueError(f"steps must be an int >= 1, got {steps!r}")
        if self.kind == "continuous":
            spacing = spacing or "logsnr"
            if spacing not in CONTINUOUS_SPACINGS:
                raise ValueError(f"spacing must be one of {CONTINUOUS_SPACINGS} for a continuous schedule, "
                                 f"got {spacing!r}")
            if spacing == "uniform":
                return torch.linspace(1.0, self.t_end, steps + 1, dtype=torch.float64)
            lam = torch.linspace(float(self.log_snr(1.0)), float(self.log_snr(self.t_end)), steps + 1,
                                 dtype=torch.float64)
            ts = self.t_of_log_snr(lam)
            ts[0], ts[-1] = 1.0, self.t_end
            return ts
        spacing = spacing or "trailing"
        if spacing not in DISCRETE_SPACINGS:
            raise ValueError(f"spacing must be one of {DISCRETE_SPACINGS} for a discrete schedule, got {spacing!r}")
        if family not in GRID_FAMILIES:
            raise ValueError(f"family must be one of {GRID_FAMILIES}, got {family!r}")
        if end not in ENDS:
            raise ValueError(f"end must be one of {ENDS}, got {end!r}")
        T = self.num_train_timesteps
        if steps > T:
            raise ValueError(f"steps ({steps}) cannot exceed the {T} training timesteps")
        if spacing == "trailing":
            ts = np.round(np.arange(T, 0, -T / steps)).astype(np.int64) - 1
        elif spacing == "leading" and family == "multistep":
            ts = (np.arange(0, steps + 1) * (T // (steps + 1))).round()[::-1][:-1].astype(np.int64) + steps_offset
        elif spacing == "leading":
            ts = (np.arange(0, steps) * (T // steps))[::-1].astype(np.int64) + steps_offset
        elif spacing == "linspace" and family == "multistep":
            ts = np.linspace(0, T - 1, steps + 1).round()[::-1][:-1].astype(np.int64)
        elif spacing == "linspace" and family == "karras":
            ts = np.linspace(0, T - 1, steps, dtype=np.float32)[::-1].astype(np.float64)
        elif spacing == "linspace":
            ts = np.linspace(0, T - 1, steps).round()[::-1].astype(np.int64)
        else:
            lam = torch.linspace(float(self.log_snr(T - 1.0)), float(self.log_snr(0.0)), steps, dtype=torch.float64)
            ts = self.t_of_log_snr(lam).numpy().astype(np.int64)
            if len(set(ts.tolist())) != steps:
                raise ValueError(f"logsnr spacing with {steps} steps repeats a discrete timestep; use fewer steps")
        if family == "multistep":                          # diffusers drops repeated timesteps (steps ~ T)
            _, first = np.unique(ts, return_index=True)
            ts = ts[np.sort(first)]
        return torch.tensor(np.append(ts, -1 if end == "clean" else 0), dtype=torch.float64)


@dataclasses.dataclass(frozen=True)
class FlowSchedule:
    """Linear (rectified-flow / flow-matching) path ``x_t = (1 - t) x_0 + t eps`` on t in [t_end, 1].

    Not variance preserving. A velocity model ``v = eps - x_0`` converts to noise prediction by
    ``eps = x + (1 - t) v`` (see :func:`sciml.diffusion.samplers.sample`, ``prediction="velocity"``).

    Reference: Lipman et al. 2023 (arXiv 2210.02747); Liu et al. 2023 (arXiv 2209.03003).
    """

    t_end: float = 1e-3
    t_start: float = 0.999      # < 1 so that x_0 = (x - t eps)/(1 - t) stays finite at the first step (eps models)
    num_train_timesteps: int = 1000     # the "diffusers" grid only: its smallest non-zero time is 1 / T
    shift: float = 1.0                  # the "diffusers" grid only: diffusers' time shift (SD3 uses 3.0)

    def __post_init__(self) -> None:
        if not 0 <= self.t_end < self.t_start <= 1:
            raise ValueError(f"need 0 <= t_end < t_start <= 1, got {self.t_end}, {self.t_start}")
        if not isinstance(self.num_train_timesteps, int) or self.num_train_timesteps < 2 or not self.shift > 0:
            raise ValueError(f"need an int num_train_timesteps >= 2 and shift > 0, got {self.num_train_timesteps}, "
                             f"{self.shift}")

    kind = "flow"

    @property
    def t_max(self) -> float:
        return 1.0

    def alpha_sigma(self, t: torch.Tensor | float) -> tuple[torch.Tensor, torch.Tensor]:
        t = torch.as_tensor(t, dtype=torch.float64)
        return 1.0 - t, t

    def log_snr(self, t: torch.Tensor | float) -> torch.Tensor:
        t = torch.as_tensor(t, dtype=torch.float64)
        return torch.log1p(-t) - torch.log(t)

    def t_of_log_snr(self, lam: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(-torch.as_tensor(lam, dtype=torch.float64))

    def grid(self, steps: int, spacing: str | None = None, family: str = "ddim", end: str = "clean",
             steps_offset: int = 0) -> torch.Tensor:
        """``steps + 1`` times from ``t_start`` to ``t_end``: "uniform" (default) or "logsnr"; or "diffusers":
        ``FlowMatchEulerDiscreteScheduler.set_timesteps(steps)`` with its defaults, i.e. ``linspace(1, f(1/T), steps)``
        mapped by the time shift ``f(s) = shift s / (1 + (shift - 1) s)`` (diffusers shifts its training sigmas and
        then the grid again) and then 0, *ignoring* ``t_start`` and
        ``t_end`` (a velocity model is needed at t = 1). ``family``, ``end`` and ``steps_offset`` are
        discrete-schedule options, ignored here."""
        if not isinstance(steps, (int, np.integer)) or steps < 1:
            raise ValueError(f"steps must be an int >= 1, got {steps!r}")
        spacing = spacing or "uniform"
        if spacing == "diffusers":
            shifted = lambda s: self.shift * s / (1.0 + (self.shift - 1.0) * s)
            s_min = shifted(1.0 / self.num_train_timesteps)        # diffusers shifts its training sigmas first
            s = shifted(torch.from_numpy(np.linspace(1.0, s_min, steps)).double())
            return torch.cat([s, torch.zeros(1, dtype=torch.float64)])
        if spacing not in CONTINUOUS_SPACINGS:
            raise ValueError(f"spacing must be one of {CONTINUOUS_SPACINGS + ('diffusers',)} for a flow schedule, "
                             f"got {spacing!r}")
        if spacing == "uniform":
            return torch.linspace(self.t_start, self.t_end, steps + 1, dtype=torch.float64)
        lam = torch.linspace(float(self.log_snr(self.t_start)), float(self.log_snr(self.t_end)), steps + 1,
                             dtype=torch.float64)
        return self.t_of_log_snr(lam)


Schedule = VPSchedule | FlowSchedule


def check_schedule(schedule) -> None:
    if not isinstance(schedule, (VPSchedule, FlowSchedule)):
        raise ValueError(f"schedule must be a VPSchedule or FlowSchedule, got {type(schedule).__name__}")
