"""Diffusion samplers behind one entry point, :func:`sample`, with network-evaluation (NFE) accounting.

Every sampler integrates from pure noise at the grid's first time to its end time using only
``eps_model(x, t)`` (any callable, an ``nn.Module`` included; ``t`` is a (B,) tensor of the schedule's time
values in ``x``'s dtype). All steps are written with the schedule's ``alpha_t, sigma_t`` so that they stay
finite when the last step lands on ``sigma = 0`` (the clean end of a discrete schedule).

Reference: Song, Meng, Ermon 2021 (DDIM, arXiv 2010.02502, eq. 12 and 16); Lu et al. 2022 (DPM-Solver,
arXiv 2206.00927) and 2022b (DPM-Solver++, arXiv 2211.01095, Alg. 2 and App. B, multistep with the "midpoint"
second-order and the third-order formulas as in diffusers' ``DPMSolverMultistepScheduler``); Karras et al. 2022
(arXiv 2206.00364, Alg. 1, Euler/Heun in ``sigma/alpha``); Lipman et al. 2023 (flow matching, Euler);
Song et al. 2021 (arXiv 2011.13456, predictor-corrector with the SNR rule).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import torch

from sciml.core import Result, Status, check_generator, report_status
from sciml.diffusion.lml import LangevinCorrection
from sciml.diffusion.schedules import FlowSchedule, VPSchedule, check_schedule

SAMPLERS = ("ddim", "dpm_solver", "dpm_solver++", "euler", "heun", "flow_euler", "langevin_pc")
PREDICTIONS = ("eps", "velocity")
_HOOK = {"ddim": "eps_direction", "langevin_pc": "eps_direction", "dpm_solver": "increment",
         "dpm_solver++": "increment", "euler": "velocity", "heun": "velocity", "flow_euler": "velocity"}


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
        t_b = torch.full((x.shape[0],), float(t), dtype=x.dtype, device=x.device)
        out = self.model(x, t_b)
        self.count += 1
        if not isinstance(out, torch.Tensor) or out.shape != x.shape:
            got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise ValueError(f"eps_model must return a tensor of the input's shape {tuple(x.shape)}, got {got}")
        # one reduction instead of an elementwise isfinite (40% of a solver step): a NaN/Inf makes the sum
        # non-finite; only then is the exact check run (a finite sum that overflows is not an error).
        if not math.isfinite(float(out.sum())) and not bool(torch.isfinite(out).all()):
            raise ValueError(f"eps_model returned NaN or Inf at t = {float(t):.6g}")
        out = out.to(x.dtype)
        if self.prediction == "velocity":                 # flow path: v = eps - x_0, x = (1 - t) x_0 + t eps
            out = x + (1.0 - float(t)) * out
        return out


def _coefs(schedule, ts: torch.Tensor) -> list[tuple[float, float, float]]:
    """``(alpha, sigma, lambda)`` of every grid time as Python floats (computed once, vectorised)."""
    alpha, sigma = schedule.alpha_sigma(ts)
    out = []
    for a, s in zip(alpha.tolist(), sigma.tolist()):
        out.append((a, s, math.log(a) - math.log(s) if s > 0 else math.inf))
    return out


def _steps_for(sampler: str, nfe: int, corrector_evals: int, ends_clean: bool) -> int:
    """Largest number of predictor steps whose total NFE fits the budget."""
    def evals(n: int) -> int:
        base = (2 * n - 1 if ends_clean else 2 * n) if sampler == "heun" else n
        return base + (n - 1) * corrector_evals

    n = 0
    while evals(n + 1) <= nfe:
        n += 1
    if n == 0:
        raise ValueError(f"nfe={nfe} is too small for sampler {sampler!r} with this correction "
                         f"(one step needs {evals(1)} evaluations)")
    return n


def sample(eps_model: Callable, schedule, shape: tuple[int, ...], sampler: str = "ddim", nfe: int = 10,
           correction=None, generator: torch.Generator | None = None, *, eta: float = 0.0, order: int = 2,
           spacing: str | None = None, x_init: torch.Tensor | None = None, dtype: torch.dtype = torch.float64,
           device: torch.device | str | None = None, prediction: str = "eps", lower_order_final: bool = True,
           snr: float = 0.16) -> SampleResult:
    """Draw samples by integrating the reverse process with ``nfe`` network evaluations in total.

    Args:
        eps_model: ``eps_model(x, t) -> eps`` (or velocity, see ``prediction``); ``t`` is a (B,) tensor.
        schedule: :class:`VPSchedule` or :class:`FlowSchedule`.
        shape: (B, ...) shape of the samples.
        sampler: one of "ddim", "dpm_solver" (noise prediction), "dpm_solver++" (data prediction), "euler",
            "heun", "flow_euler" (FlowSchedule only), "langevin_pc" (DDIM predictor + Langevin corrector).
        nfe: total budget of network evaluations (>= 1). Steps: nfe for one-evaluation samplers; Heun uses
            2 per step (1 for a last step onto sigma = 0); each corrector step costs 1.
        correction: None, an ``LMCorrection`` or a corrector (``LangevinCorrection``, ``ExactHessianCorrection``).
        generator: for the initial noise and every stochastic step.
        eta: DDIM stochasticity (0 = deterministic DDIM, 1 = DDPM-like); VP schedules only.
        order: DPM-Solver multistep order 1, 2 or 3.
        spacing: the schedule's grid spacing (see ``schedule.grid``).
        x_init: optional initial noise of ``shape`` (drawn from N(0, I) otherwise).
        dtype, device: of the samples (default float64; device of ``x_init`` or cpu).
        prediction: "eps" or "velocity" (flow-matching models, FlowSchedule only).
        lower_order_final: DPM-Solver's diffusers default (first order on the last step, at most second order
            on the one before when there are fewer than 15 steps).
        snr: the Langevin corrector's SNR for ``sampler="langevin_pc"`` without an explicit correction.

    Returns:
        :class:`SampleResult` with ``.samples`` and ``.nfe``.

    Differs from diffusers' DDIM: the previous timestep is the next grid point, not ``t - T // steps``; the two
    agree whenever ``steps`` divides T (e.g. 5, 10, 20, 50 of 1000).
    """
    if sampler not in SAMPLERS:
        raise ValueError(f"unknown sampler {sampler!r}; valid choices: {', '.join(SAMPLERS)}")
    check_schedule(schedule)
    if not isinstance(nfe, int) or isinstance(nfe, bool) or nfe < 1:
        raise ValueError(f"nfe must be an int >= 1, got {nfe!r}")
    if not callable(eps_model):
        raise ValueError("eps_model must be callable as eps_model(x, t)")
    if order not in (1, 2, 3):
        raise ValueError(f"order must be 1, 2 or 3, got {order!r}")
    if prediction not in PREDICTIONS:
        raise ValueError(f"prediction must be one of {PREDICTIONS}, got {prediction!r}")
    is_flow = isinstance(schedule, FlowSchedule)
    if (prediction == "velocity" or sampler == "flow_euler") and not is_flow:
        raise ValueError("prediction='velocity' and sampler='flow_euler' need a FlowSchedule")
    if eta < 0 or (eta > 0 and not isinstance(schedule, VPSchedule)):
        raise ValueError(f"eta must be >= 0 (and 0 on a non-VP schedule), got {eta}")
    if sampler == "langevin_pc" and correction is None:
        correction = LangevinCorrection(snr=snr)
    kind = getattr(correction, "kind", None)
    if correction is not None and kind not in ("operator", "corrector"):
        raise ValueError("correction must be an LMCorrection, LangevinCorrection or ExactHessianCorrection")

    if x_init is not None:
        if tuple(x_init.shape) != tuple(shape):
            raise ValueError(f"x_init has shape {tuple(x_init.shape)} but shape={tuple(shape)}")
        x = x_init.clone()
    else:
        dev = torch.device(device) if device is not None else torch.device("cpu")
        check_generator(generator, dev)
        x = torch.randn(tuple(shape), dtype=dtype, device=dev, generator=generator)

    probe = schedule.grid(1, spacing)
    ends_clean = float(schedule.alpha_sigma(probe[-1])[1]) == 0.0
    corr_evals = getattr(correction, "n_steps", 1) if kind == "corrector" else 0
    steps = _steps_for(sampler, nfe, corr_evals, ends_clean)
    ts = schedule.grid(steps, spacing)
    model = _Counted(eps_model, schedule, prediction)
    state = correction.start() if correction is not None else {}
    hook = _HOOK[sampler]

    def lm(d: torch.Tensor, t: float) -> torch.Tensor:
        if kind != "operator":
            return d
        return correction.transform(d, hook, t, schedule.t_max, state)

    history: list[tuple[torch.Tensor, float]] = []       # DPM-Solver: (model output, lambda) of previous steps
    coefs = _coefs(schedule, ts)
    times = ts.tolist()
    for i in range(steps):
        t_s, t_t = times[i], times[i + 1]
        a_s, s_s, l_s = coefs[i]
        a_t, s_t, l_t = coefs[i + 1]
        eps = model(x, t_s)
        if sampler in ("ddim", "langevin_pc"):
            x0 = (x - s_s * eps) / a_s
            std = 0.0
            if eta > 0:
                std = eta * math.sqrt((s_t**2 / s_s**2) * (1.0 - a_s**2 / a_t**2))
            x_new = a_t * x0 + math.sqrt(max(s_t**2 - std**2, 0.0)) * lm(eps, t_s)
            if std > 0:
                x_new = x_new + std * torch.randn(x.shape, dtype=x.dtype, device=x.device, generator=generator)
            x = x_new
        elif sampler in ("euler", "heun"):
            xs, sig_s, sig_t = x / a_s, s_s / a_s, s_t / a_t      # Karras variables: dx~/dsigma~ = eps
            d = eps
            if sampler == "heun" and s_t > 0:
                d2 = model(a_t * (xs + (sig_t - sig_s) * d), t_t)
                d = 0.5 * (d + d2)
            x = a_t * (xs + (sig_t - sig_s) * lm(d, t_s))
        elif sampler == "flow_euler":
            x0 = (x - s_s * eps) / a_s
            x = x + (t_t - t_s) * lm(eps - x0, t_s)
        else:
            x = _dpm_step(sampler, x, eps, history, (a_s, s_s, l_s), (a_t, s_t, l_t), order, i, steps,
                          lower_order_final, ends_clean, lambda d: lm(d, t_s))
        if kind == "corrector" and i < steps - 1:
            x = correction.correct(x, torch.tensor(t_t, dtype=torch.float64), model, schedule, state, generator)
    status = Status.CONVERGED if bool(torch.isfinite(x).all()) else Status.NONFINITE
    report_status(status, f"sample({sampler})", f"nfe={model.count}")
    return SampleResult(samples=x, nfe=model.count, timesteps=ts, sampler=sampler, status=status)


def _dpm_step(sampler, x, eps, history, s_coef, t_coef, order, i, steps, lower_order_final, ends_clean, lm):
    """One DPM-Solver(++) multistep update ``x_t = a x_s + d``; ``d`` goes through the LM hook."""
    a_s, s_s, l_s = s_coef
    a_t, s_t, l_t = t_coef
    data = sampler == "dpm_solver++"
    m0 = (x - s_s * eps) / a_s if data else eps
    history.append((m0, l_s))
    final = i == steps - 1 and (ends_clean or (lower_order_final and steps < 15))
    second_last = i == steps - 2 and lower_order_final and steps < 15
    use = min(order, len(history))
    if final:
        use = 1
    elif second_last:
        use = min(use, 2)
    h = l_t - l_s
    D1_0, D1, D2 = _differences(history, l_s, h, use)
    if data:
        a = s_t / s_s
        phi = -a_t * math.expm1(-h) if math.isfinite(h) else a_t      # alpha_t (1 - e^{-h})
        d = phi * m0
        if use == 2:
            d = d + 0.5 * phi * D1_0
        elif use == 3:
            em = math.expm1(-h)
            d = d + a_t * (em / h + 1.0) * D1 - a_t * ((em + h) / h**2 - 0.5) * D2
    else:
        a = a_t / a_s
        phi = a_t * s_s / a_s - s_t                                     # sigma_t (e^h - 1), finite at sigma_t = 0
        d = -phi * m0
        if use == 2:
            d = d - 0.5 * phi * D1_0
        elif use == 3:
            ep = math.expm1(h)
            d = d - s_t * (ep / h - 1.0) * D1 - s_t * ((ep - h) / h**2 - 0.5) * D2
    if len(history) > 3:
        history.pop(0)
    return a * x + lm(d)


def _differences(history, l_s: float, h: float, use: int):
    """DPM-Solver's scaled divided differences ``(D1_0, D1, D2)`` of the last ``use`` model outputs (None if unused)."""
    if use < 2:
        return None, None, None
    m0, m1, l_1 = history[-1][0], history[-2][0], history[-2][1]
    r0 = (l_s - l_1) / h
    D1_0 = (m0 - m1) / r0
    if use == 2:
        return D1_0, None, None
    m2, l_2 = history[-3]
    r1 = (l_1 - l_2) / h
    D1_1 = (m1 - m2) / r1
    return D1_0, D1_0 + (r0 / (r0 + r1)) * (D1_0 - D1_1), (D1_0 - D1_1) / (r0 + r1)
