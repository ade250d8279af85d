"""Diffusion samplers behind one entry point, :func:`sample`, with network-evaluation (NFE) accounting.

Every sampler integrates from pure noise at the grid's first time to its end time using only
``eps_model(x, t)`` (any callable, an ``nn.Module`` included). ``t`` is a (B,) tensor of the schedule's time
values in float32, or float64 when the samples are float64: never in a low-precision sample dtype, so a bf16/fp16
model receives integer timesteps exactly (999, 899, ..., not bf16's 1000, 900, ...).

The solvers themselves are step objects in :mod:`sciml.diffusion.solvers`, looked up in a registry: a new sampler
is a registered class and ``sample()`` does not change.

diffusers conventions (all options, documented per argument of :func:`sample`):

* grids: ``spacing="linspace" | "leading" | "trailing"`` are computed as the *corresponding* diffusers scheduler
  computes them (DDIM/PNDM, DPM-Solver/UniPC and Euler/Heun use three different formulas under the same names;
  see :mod:`sciml.diffusion.schedules`); ``spacing="diffusers"`` picks that scheduler's default spacing and
  ``end="diffusers"`` its default end point (t = 0 for PNDM and the noise-form DPM-Solvers);
* start: ``start="sigma_max"`` starts from ``sigma_T z`` in VP scale, i.e. ``sigma_max z`` in Karras scale, as
  diffusers' Euler/Heun do on linspace/trailing grids; ``start="diffusers"`` picks what the diffusers scheduler
  does; the default ``"vp"`` starts from ``z``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import torch

from sciml.core import Result, Status, check_generator, report_status
from sciml.diffusion.lml import LangevinCorrection
from sciml.diffusion.schedules import FlowSchedule, check_schedule
from sciml.diffusion.solvers import SAMPLER_REGISTRY, SolverStep

PREDICTIONS = ("eps", "velocity")
STARTS = ("vp", "sigma_max", "diffusers")
_UNSET = None


class _SamplerNames:
    """Live, sorted view of the registered sampler names (``"ddim" in SAMPLERS``, ``tuple(SAMPLERS)``)."""

    def __iter__(self):
        return iter(sorted(SAMPLER_REGISTRY))

    def __contains__(self, name: object) -> bool:
        return name in SAMPLER_REGISTRY

    def __len__(self) -> int:
        return len(SAMPLER_REGISTRY)

    def __repr__(self) -> str:
        return repr(tuple(self))


SAMPLERS = _SamplerNames()


@dataclasses.dataclass(frozen=True)
class SampleResult(Result):
    """Samples and what they cost.

    Attributes:
        samples: (shape) final samples.
        nfe: network evaluations actually used (predictor and corrector together).
        timesteps: the (steps + 1,) time grid that was integrated.
        sampler: the sampler's name.
        status: CONVERGED, or NONFINITE when a sample is NaN/Inf.
    """

    samples: torch.Tensor
    nfe: int
    timesteps: torch.Tensor
    sampler: str
    status: Status


class _Counted:
    """Wraps the model: counts evaluations, converts the prediction to eps, checks shape and finiteness."""

    def __init__(self, model: Callable, schedule, prediction: str) -> None:
        self.model, self.schedule, self.prediction, self.count = model, schedule, prediction, 0

    def __call__(self, x: torch.Tensor, t) -> torch.Tensor:
        """The noise prediction eps(x, t)."""
        out = self.raw(x, t)
        if self.prediction == "velocity":                 # flow path: v = eps - x_0, x = (1 - t) x_0 + t eps
            out = x + (1.0 - float(t)) * out
        return out

    def velocity(self, x: torch.Tensor, t) -> torch.Tensor:
        """The flow velocity ``eps - x_0`` (FlowSchedule only): a velocity model's output as it is; from an eps
        model via ``x_0 = (x - t eps) / (1 - t)``, undefined at t = 1."""
        if self.prediction == "velocity":
            return self.raw(x, t)
        if float(t) >= 1.0:
            raise ValueError("an eps model cannot give the flow velocity at t = 1 (x_0 = (x - t eps) / (1 - t)); "
                             "use prediction='velocity' or a grid that starts below t = 1")
        eps = self.raw(x, t)
        return eps - (x - float(t) * eps) / (1.0 - float(t))

    def raw(self, x: torch.Tensor, t) -> torch.Tensor:
        """The model's own output at (x, t), counted and checked, in x's dtype."""
        # float32 represents every integer timestep < 2^24 exactly; bf16 would round 999 to 1000
        t_dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
        t_b = torch.full((x.shape[0],), float(t), dtype=t_dtype, device=x.device)
        out = self.model(x, t_b)
        self.count += 1
        if not isinstance(out, torch.Tensor) or out.shape != x.shape:
            got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise ValueError(f"eps_model must return a tensor of the input's shape {tuple(x.shape)}, got {got}")
        # one reduction instead of an elementwise isfinite (40% of a solver step): a NaN/Inf makes the sum
        # non-finite; only then is the exact check run (a finite sum that overflows is not an error).
        if not math.isfinite(float(out.sum())) and not bool(torch.isfinite(out).all()):
            raise ValueError(f"eps_model returned NaN or Inf at t = {float(t):.6g} (evaluation {self.count}); "
                             "check the model and its input scale")
        return out.to(x.dtype)


def _steps_for(solver: type[SolverStep], nfe: int, corrector_evals: int, ends_clean: bool, opts: dict) -> int:
    """Largest number of predictor steps whose total NFE fits the budget."""
    def evals(n: int) -> int:
        return solver.evals(n, ends_clean, opts) + (n - 1) * corrector_evals

    n = 0
    while evals(n + 1) <= nfe:
        n += 1
    if n == 0:
        raise ValueError(f"nfe={nfe} is too small for sampler {solver.name!r} with this correction "
                         f"(one step needs {evals(1)} evaluations)")
    return n


def _solver_class(sampler: str) -> type[SolverStep]:
    if not isinstance(sampler, str) or sampler not in SAMPLER_REGISTRY:
        raise ValueError(f"unknown sampler {sampler!r}; valid choices: {', '.join(SAMPLERS)}")
    return SAMPLER_REGISTRY[sampler]


def _options(solver: type[SolverStep], given: dict) -> dict:
    """The sampler-specific keywords that were set; one the sampler does not use is an error, not ignored."""
    used = {k: v for k, v in given.items() if v is not _UNSET}
    for key in used:
        if key not in solver.options:
            takes = ", ".join(solver.options) or "none"
            raise ValueError(f"sampler {solver.name!r} does not use {key}={used[key]!r} (it would be ignored); "
                             f"its options: {takes}")
    return used


def sample(eps_model: Callable, schedule, shape: tuple[int, ...], sampler: str = "ddim", nfe: int = 10,
           correction=None, generator: torch.Generator | None = None, *, eta: float | None = None,
           order: int | None = None, spacing: str | None = None, x_init: torch.Tensor | None = None,
           dtype: torch.dtype = torch.float64, device: torch.device | str | None = None, prediction: str = "eps",
           lower_order_final: bool | None = None, snr: float | None = None, start: str = "vp",
           end: str = "clean", steps_offset: int = 0) -> SampleResult:
    """Draw samples by integrating the reverse process with ``nfe`` network evaluations in total.

    Args:
        eps_model: ``eps_model(x, t) -> eps`` (or velocity, see ``prediction``); ``t`` is a (B,) float32 tensor
            (float64 for float64 samples) of the schedule's times: integer DDPM steps, fractional ones on the
            Euler/Heun linspace grid, [0, 1] on continuous schedules.
        schedule: :class:`VPSchedule` or :class:`FlowSchedule`.
        shape: (B, ...) shape of the samples, B >= 1.
        sampler: a registered name (``SAMPLERS``): "ddim", "dpm_solver" (noise prediction), "dpm_solver++" (data
            prediction), "sde_dpm_solver", "sde_dpm_solver++", "unipc", "pndm" (PLMS), "pndm_prk" (PNDM with its
            Runge-Kutta warm-up), "euler", "heun", "flow_euler" (FlowSchedule only), "langevin_pc" (DDIM
            predictor + Langevin corrector).
        nfe: total budget of network evaluations (>= 1). Steps: nfe for one-evaluation samplers; Heun uses
            2 per step (1 for a last step onto sigma = 0); PNDM steps + 1; PNDM-PRK steps + 9 (>= 4 steps);
            each corrector step costs 1.
        correction: None, an ``LMCorrection`` or a corrector (``LangevinCorrection``, ``ExactHessianCorrection``).
        generator: for the initial noise and every stochastic step.
        eta: DDIM / langevin_pc only: stochasticity (0 = deterministic DDIM, 1 = DDPM-like); VP schedules only.
        order: multistep samplers only (DPM-Solver(++) 1-3, UniPC 1-3, SDE-DPM-Solver(++) 1-2); default 2.
        spacing: the grid spacing. Discrete schedules: "trailing" (default), "leading", "linspace" (computed as
            the sampler's diffusers scheduler computes them), "logsnr", or "diffusers" (that scheduler's
            default: DDIM/PNDM leading, DPM-Solver/UniPC/Euler/Heun linspace). Continuous: "logsnr" or "uniform".
            Flow: "uniform", "logsnr" or "diffusers" (``FlowMatchEulerDiscreteScheduler``'s grid, from t = 1, see
            :meth:`FlowSchedule.grid`; the model still receives t in [0, 1], diffusers' timestep / 1000).
        x_init: optional initial noise of ``shape`` (drawn from N(0, I) otherwise), before the ``start`` scaling.
        dtype, device: of the samples (default float64; device of ``x_init`` or cpu).
        prediction: "eps" or "velocity" (flow-matching models, FlowSchedule only).
        lower_order_final: multistep samplers only: diffusers' default True (first order on the last step, at
            most second order on the one before when there are fewer than 15 steps; UniPC: order limited by the
            steps left).
        snr: langevin_pc only: the Langevin corrector's SNR (default 0.16).
        start: "vp" (default: x_T = z), "sigma_max" (x_T = sigma_T z, diffusers' Euler/Heun on linspace/trailing
            grids, i.e. sigma_max z in Karras scale) or "diffusers" (what the sampler's diffusers scheduler does).
        end: discrete schedules: "clean" (default: the last step lands on sigma = 0), "zero" (on t = 0, as
            diffusers' ``set_alpha_to_one=False`` / ``final_sigmas_type="sigma_min"`` and the released LML
            scheduler) or "diffusers" (the sampler's diffusers default).
        steps_offset: diffusers' ``steps_offset`` for "leading" grids.

    Returns:
        :class:`SampleResult` with ``.samples`` and ``.nfe``.

    Differs from diffusers' DDIM on trailing/linspace grids when ``steps`` does not divide T: diffusers steps from
    t to ``t - T // steps`` (not the next grid point); the leading grid (its default) agrees exactly.
    """
    solver = _solver_class(sampler)
    opts = _options(solver, {"eta": eta, "order": order, "lower_order_final": lower_order_final, "snr": snr})
    check_schedule(schedule)
    if not isinstance(nfe, int) or isinstance(nfe, bool) or nfe < 1:
        raise ValueError(f"nfe must be an int >= 1, got {nfe!r}")
    if not callable(eps_model):
        raise ValueError("eps_model must be callable as eps_model(x, t)")
    if prediction not in PREDICTIONS:
        raise ValueError(f"prediction must be one of {PREDICTIONS}, got {prediction!r}")
    if start not in STARTS:
        raise ValueError(f"start must be one of {STARTS}, got {start!r}")
    is_flow = isinstance(schedule, FlowSchedule)
    if (prediction == "velocity" or solver.needs_flow) and not is_flow:
        raise ValueError("prediction='velocity' and sampler='flow_euler' need a FlowSchedule")
    shape = tuple(int(n) for n in shape)
    if len(shape) < 2 or min(shape) < 1:
        raise ValueError(f"shape must be (B, ...) with B >= 1 and no empty axis, got {shape} "
                         "(an empty batch has nothing to sample)")

    kind = getattr(correction, "kind", None)
    if correction is not None and kind not in ("operator", "corrector"):
        raise ValueError("correction must be an LMCorrection, LangevinCorrection or ExactHessianCorrection")
    if sampler == "langevin_pc":
        if kind == "operator":
            raise ValueError("sampler 'langevin_pc' is DDIM + a Langevin corrector; an LM operator "
                             "(LMCorrection(mode='code')) would replace that corrector. Use sampler='ddim' with the "
                             "operator, or pass a corrector (LangevinCorrection, LMCorrection(mode='lm_langevin'))")
        if correction is None:
            correction = LangevinCorrection(snr=opts.get("snr", 0.16))
            kind = "corrector"
    if kind == "operator" and solver.hook is None:
        raise ValueError(f"sampler {sampler!r} has no LM hook (the released LML code has no LM variant of it); "
                         "use an ODE sampler or a corrector")

    if x_init is not None:
        if tuple(x_init.shape) != shape:
            raise ValueError(f"x_init has shape {tuple(x_init.shape)} but shape={shape}")
        x = x_init.clone()
    else:
        dev = torch.device(device) if device is not None else torch.device("cpu")
        check_generator(generator, dev)
        x = torch.randn(shape, dtype=dtype, device=dev, generator=generator)

    if spacing == "diffusers":                 # flow: FlowMatchEulerDiscreteScheduler's grid; continuous VP: default
        spacing = {"discrete": solver.diffusers_spacing, "flow": "diffusers"}.get(getattr(schedule, "kind", ""))
    end = solver.diffusers_end if end == "diffusers" else end
    grid_kw = {"family": solver.grid_family, "end": end, "steps_offset": steps_offset}
    probe = schedule.grid(1, spacing, **grid_kw)
    ends_clean = float(schedule.alpha_sigma(probe[-1])[1]) == 0.0
    corr_evals = getattr(correction, "n_steps", 1) if kind == "corrector" else 0
    steps = _steps_for(solver, nfe, corr_evals, ends_clean, opts)
    ts = schedule.grid(steps, spacing, **grid_kw)
    if is_flow and float(schedule.alpha_sigma(ts[0])[0]) == 0.0 and not (solver.needs_flow and
                                                                       prediction == "velocity"):
        raise ValueError("this flow grid starts at t = 1 (pure noise, x_0 undefined): only sampler='flow_euler' with "
                         "prediction='velocity' can start there; use t_start < 1 otherwise")
    if start == "diffusers":
        start = "sigma_max" if solver.grid_family == "karras" and spacing in ("linspace", "trailing") else "vp"
    if start == "sigma_max":
        x = x * float(schedule.alpha_sigma(ts[0])[1])
    model = _Counted(eps_model, schedule, prediction)
    state = correction.start() if correction is not None else {}

    def lm(d: torch.Tensor, t: float) -> torch.Tensor:
        if kind != "operator":
            return d
        return correction.transform(d, solver.hook, t, schedule.t_max, state)

    stepper = solver(schedule, ts, model, lm, generator, **opts)
    for i in range(stepper.steps):
        x = stepper.step(x, i)
        if kind == "corrector" and i < stepper.steps - 1:
            x = correction.correct(x, torch.tensor(stepper.times[i + 1], dtype=torch.float64), model, schedule,
                                   state, generator)
    status = Status.CONVERGED if bool(torch.isfinite(x).all()) else Status.NONFINITE
    report_status(status, f"sample({sampler})", f"nfe={model.count}")
    return SampleResult(samples=x, nfe=model.count, timesteps=ts, sampler=sampler, status=status)
