"""Step-level samplers: one solver step as an object that carries its own state, and the registry behind
:func:`sciml.diffusion.sample`.

A solver is a subclass of :class:`SolverStep` registered with :func:`register_sampler`. ``sample()`` builds the
time grid, creates one solver object per call (so multistep histories never leak between calls) and calls
``solver.step(x, i)`` for ``i = 0 .. steps - 1``; a new sampler is added by registering a class, without editing
``sample()``. Each class declares:

* ``options``: the ``sample()`` keywords it uses (``eta``, ``order``, ...); passing another one is an error;
* ``hook``: where an ``LMCorrection(mode="code")`` rewrites the update ("eps_direction", "increment",
  "velocity"), or None when the released code has no LM variant (the SDE solvers);
* ``grid_family``: which diffusers ``set_timesteps`` formulas its spacing names follow ("ddim", "multistep",
  "karras"), ``diffusers_spacing`` its diffusers scheduler's default spacing and ``diffusers_end`` its default
  end point;
* ``evals(steps, ends_clean)``: network evaluations for ``steps`` steps.

All steps use the schedule's ``alpha_t, sigma_t`` (Python floats computed once per grid) and stay finite when the
last step lands on ``sigma = 0``.

References: Song, Meng, Ermon 2021 (DDIM, arXiv 2010.02502, eq. 12); Lu et al. 2022 (DPM-Solver, arXiv 2206.00927)
and 2022b (DPM-Solver++, arXiv 2211.01095, Alg. 2, and the SDE-DPM-Solver++ of App. B / diffusers); Karras et al.
2022 (arXiv 2206.00364, Alg. 1); Zhao et al. 2023 (UniPC, arXiv 2302.04867, B(h) = e^h - 1 "bh2"); Liu et al.
2022 (PNDM, arXiv 2202.09778, the PLMS form); Song et al. 2021 (arXiv 2011.13456, predictor-corrector).
Step arithmetic follows diffusers 0.42's schedulers so that parity tests hold to 1e-5.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
import torch

SAMPLER_REGISTRY: dict[str, type[SolverStep]] = {}


def register_sampler(name: str) -> Callable[[type], type]:
    """Class decorator: make a :class:`SolverStep` subclass available as ``sample(..., sampler=name)``."""

    def decorate(cls: type) -> type:
        if name in SAMPLER_REGISTRY:
            raise ValueError(f"sampler {name!r} is registered twice")
        cls.name = name
        SAMPLER_REGISTRY[name] = cls
        return cls

    return decorate


class SolverStep:
    """One solver over a fixed grid. Subclasses implement :meth:`step` (and :meth:`evals` if a step costs more than
    one network evaluation).

    Args (set by ``sample()``):
        schedule: the noise schedule.
        ts: (steps + 1,) float64 grid, decreasing; ``ts[-1]`` is the end time.
        model: ``model(x, t_float) -> eps`` (counts evaluations and checks its output).
        lm: ``lm(d, t) -> d``, the code-mode LM hook (identity without a correction).
        generator: for stochastic steps.
        options: the sampler-specific keywords (only those in ``options``).
    """

    name: ClassVar[str] = ""
    options: ClassVar[tuple[str, ...]] = ()
    defaults: ClassVar[dict[str, Any]] = {}
    hook: ClassVar[str | None] = "eps_direction"
    grid_family: ClassVar[str] = "ddim"
    diffusers_spacing: ClassVar[str] = "leading"
    diffusers_end: ClassVar[str] = "clean"
    needs_flow: ClassVar[bool] = False
    takes_corrector: ClassVar[bool] = True

    def __init__(self, schedule, ts: torch.Tensor, model: Callable, lm: Callable, generator, **options) -> None:
        self.schedule, self.model, self.lm, self.generator = schedule, model, lm, generator
        self.opts = dict(self.defaults) | options
        self.times = ts.tolist()
        self.steps = len(self.times) - 1
        alpha, sigma = schedule.alpha_sigma(ts)
        self.alpha, self.sigma = alpha.tolist(), sigma.tolist()
        # log-SNR; +inf at the clean end (sigma = 0), -inf at a flow path's pure-noise start (alpha = 0)
        self.lam = [math.log(a) - math.log(s) if s > 0 and a > 0 else (math.inf if s == 0 else -math.inf)
                    for a, s in zip(self.alpha, self.sigma)]
        self.check_options()

    def check_options(self) -> None:
        """Validate ``self.opts`` (override to add checks)."""

    @classmethod
    def evals(cls, steps: int, ends_clean: bool, opts: dict) -> int:
        return steps

    def noise(self, x: torch.Tensor) -> torch.Tensor:
        return torch.randn(x.shape, dtype=x.dtype, device=x.device, generator=self.generator)

    def step(self, x: torch.Tensor, i: int) -> torch.Tensor:  # pragma: no cover - abstract
        """Abstract hook: one solver step from grid index ``i``. Every registered solver defines it."""
        raise NotImplementedError(f"{type(self).__name__} must define step")


def _ddim_update(x, eps, a_s, s_s, a_t, s_t, direction):
    """``alpha_t x0(eps) + direction`` where ``x0 = (x - sigma_s eps) / alpha_s``."""
    return a_t * ((x - s_s * eps) / a_s) + direction


@register_sampler("ddim")
class DDIM(SolverStep):
    """DDIM (eq. 12 of Song et al. 2021); ``eta`` > 0 adds the DDPM-like noise (VP schedules only)."""

    options = ("eta",)
    defaults = {"eta": 0.0}

    def check_options(self) -> None:
        eta = self.opts["eta"]
        if not eta >= 0:
            raise ValueError(f"eta must be >= 0, got {eta}")
        if eta > 0 and getattr(self.schedule, "kind", None) == "flow":
            raise ValueError("eta > 0 needs a VP schedule (the DDIM noise formula is variance preserving)")

    def step(self, x, i):
        a_s, s_s, a_t, s_t = self.alpha[i], self.sigma[i], self.alpha[i + 1], self.sigma[i + 1]
        eps = self.model(x, self.times[i])
        std = 0.0
        if self.opts["eta"] > 0:
            std = self.opts["eta"] * math.sqrt((s_t**2 / s_s**2) * (1.0 - a_s**2 / a_t**2))
        x_new = _ddim_update(x, eps, a_s, s_s, a_t, s_t,
                             math.sqrt(max(s_t**2 - std**2, 0.0)) * self.lm(eps, self.times[i]))
        if std > 0:
            x_new = x_new + std * self.noise(x)
        return x_new


@register_sampler("langevin_pc")
class LangevinPC(DDIM):
    """DDIM predictor; ``sample()`` adds the Langevin corrector (``snr``) after every predictor step but the last.
    Its corrector is the point: an LM *operator* (code mode) would silently replace it, so that is an error."""

    options = ("eta", "snr")
    defaults = {"eta": 0.0, "snr": 0.16}


@register_sampler("euler")
class Euler(SolverStep):
    """Euler in Karras variables ``x~ = x / alpha``, ``sigma~ = sigma / alpha``: ``dx~/dsigma~ = eps`` (diffusers'
    ``EulerDiscreteScheduler``; identical to DDIM up to rounding)."""

    hook = "velocity"
    grid_family = "karras"
    diffusers_spacing = "linspace"

    def step(self, x, i):
        a_s, s_s, a_t, s_t = self.alpha[i], self.sigma[i], self.alpha[i + 1], self.sigma[i + 1]
        eps = self.model(x, self.times[i])
        return a_t * (x / a_s + (s_t / a_t - s_s / a_s) * self.lm(eps, self.times[i]))


@register_sampler("heun")
class Heun(SolverStep):
    """Heun's method in Karras variables (Karras et al. Alg. 1; diffusers' ``HeunDiscreteScheduler``): two
    evaluations per step, one (Euler) for a last step onto sigma = 0."""

    hook = "velocity"
    grid_family = "karras"
    diffusers_spacing = "linspace"

    @classmethod
    def evals(cls, steps, ends_clean, opts):
        return 2 * steps - 1 if ends_clean else 2 * steps

    def step(self, x, i):
        a_s, s_s, a_t, s_t = self.alpha[i], self.sigma[i], self.alpha[i + 1], self.sigma[i + 1]
        xs, dsig = x / a_s, s_t / a_t - s_s / a_s
        d = self.model(x, self.times[i])
        if s_t > 0:
            d2 = self.model(a_t * (xs + dsig * d), self.times[i + 1])
            d = 0.5 * (d + d2)
        return a_t * (xs + dsig * self.lm(d, self.times[i]))


@register_sampler("flow_euler")
class FlowEuler(SolverStep):
    """Euler on the linear flow path ``x_t = (1 - t) x_0 + t eps`` with velocity ``eps - x_0`` (FlowSchedule):
    ``x <- x + (t' - t) v`` as diffusers' ``FlowMatchEulerDiscreteScheduler``, which it matches with
    ``spacing="diffusers"`` (grid from t = 1, needs a velocity model) and ``prediction="velocity"``."""

    hook = "velocity"
    needs_flow = True

    def step(self, x, i):
        velocity = getattr(self.model, "velocity", None)
        if velocity is not None:                  # sample()'s model wrapper: the raw velocity of a velocity model
            v = velocity(x, self.times[i])
        else:
            eps = self.model(x, self.times[i])
            v = eps - (x - self.sigma[i] * eps) / self.alpha[i]
        return x + (self.times[i + 1] - self.times[i]) * self.lm(v, self.times[i])


class _Multistep(SolverStep):
    """Shared state of the multistep solvers: the last ``order`` converted model outputs and their log-SNRs."""

    options = ("order", "lower_order_final")
    defaults = {"order": 2, "lower_order_final": True}
    hook = "increment"
    grid_family = "multistep"
    diffusers_spacing = "linspace"
    max_order: ClassVar[int] = 3

    def check_options(self) -> None:
        if self.opts["order"] not in range(1, self.max_order + 1):
            raise ValueError(f"order must be 1..{self.max_order} for {self.name}, got {self.opts['order']!r}")
        self.history: list[tuple[torch.Tensor, float]] = []

    data: ClassVar[bool] = True

    def begin(self, x: torch.Tensor, i: int):
        """Evaluate the model, convert (data or noise prediction), push it to the history and pick the order.
        Returns ``(m0, use, h)`` with ``h`` the log-SNR step."""
        eps = self.model(x, self.times[i])
        m0 = (x - self.sigma[i] * eps) / self.alpha[i] if self.data else eps
        self.history.append((m0, self.lam[i]))
        return m0, self.order_now(i), self.lam[i + 1] - self.lam[i]

    def order_now(self, i: int) -> int:
        """diffusers' warm-up and ``lower_order_final`` rule (first order onto sigma = 0, and on the last step /
        at most second order on the one before when there are fewer than 15 steps)."""
        lof = self.opts["lower_order_final"]
        use = min(self.opts["order"], len(self.history))
        if i == self.steps - 1 and (self.sigma[-1] == 0.0 or (lof and self.steps < 15)):
            return 1
        if i == self.steps - 2 and lof and self.steps < 15:
            return min(use, 2)
        return use


def _differences(history, l_s: float, h: float, use: int):
    """DPM-Solver's scaled divided differences ``(D1_0, D1, D2)`` of the last ``use`` outputs (None if unused)."""
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


@register_sampler("dpm_solver++")
class DPMSolverPP(_Multistep):
    """Multistep DPM-Solver++ (data prediction), orders 1-3, "midpoint" second order; ``x_t = a x_s + d`` with the
    increment ``d`` through the LM hook."""

    data = True

    def step(self, x, i):
        a_s, s_s, a_t, s_t = self.alpha[i], self.sigma[i], self.alpha[i + 1], self.sigma[i + 1]
        m0, use, h = self.begin(x, i)
        D1_0, D1, D2 = _differences(self.history, self.lam[i], h, use)
        if self.data:
            a = s_t / s_s
            phi = -a_t * math.expm1(-h) if math.isfinite(h) else a_t        # alpha_t (1 - e^{-h})
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
        if len(self.history) > 3:
            self.history.pop(0)
        return a * x + self.lm(d, self.times[i])


@register_sampler("dpm_solver")
class DPMSolver(DPMSolverPP):
    """Multistep DPM-Solver (noise prediction), orders 1-3. diffusers only allows it with
    ``final_sigmas_type="sigma_min"``, so its diffusers end point is t = 0."""

    data = False
    diffusers_end = "zero"


@register_sampler("sde_dpm_solver++")
class SDEDPMSolverPP(_Multistep):
    """SDE-DPM-Solver++ (data prediction), orders 1-2, "midpoint" (diffusers' ``sde-dpmsolver++``); one N(0, I)
    draw per step from ``generator``. The released LML code has no LM variant of it (``hook = None``)."""

    hook = None
    max_order = 2
    data = True

    def step(self, x, i):
        a_s, s_s, a_t, s_t = self.alpha[i], self.sigma[i], self.alpha[i + 1], self.sigma[i + 1]
        m0, use, h = self.begin(x, i)
        D1_0 = _differences(self.history, self.lam[i], h, use)[0]
        z = self.noise(x)
        if self.data:
            e2 = math.exp(-2.0 * h) if math.isfinite(h) else 0.0
            c = a_t * (1.0 - e2)
            x_new = (s_t / s_s * math.exp(-h) if math.isfinite(h) else 0.0) * x + c * m0
            if use == 2:
                x_new = x_new + 0.5 * c * D1_0
            x_new = x_new + s_t * math.sqrt(1.0 - e2) * z
        else:
            eh = math.expm1(h)
            x_new = (a_t / a_s) * x - 2.0 * s_t * eh * m0
            if use == 2:
                x_new = x_new - s_t * eh * D1_0
            x_new = x_new + s_t * math.sqrt(math.expm1(2.0 * h)) * z
        if len(self.history) > 2:
            self.history.pop(0)
        return x_new


@register_sampler("sde_dpm_solver")
class SDEDPMSolver(SDEDPMSolverPP):
    """SDE-DPM-Solver (noise prediction), orders 1-2 (diffusers' ``sde-dpmsolver``; end point t = 0 there)."""

    data = False
    diffusers_end = "zero"


@register_sampler("unipc")
class UniPC(_Multistep):
    """UniPC multistep (data prediction, B(h) = e^h - 1, "bh2"), orders 1-3: the UniP predictor, and the UniC
    corrector applied at the start of every step but the first with the model output just computed (no extra
    evaluation), as diffusers' ``UniPCMultistepScheduler`` (``disable_corrector=[]``; ``lower_order_final``
    lowers the order to the number of remaining steps whatever their count)."""

    def check_options(self) -> None:
        super().check_options()
        self.last_x: torch.Tensor | None = None
        self.prev_order = 0

    def _coefficients(self, rks: list[float], h: float, order: int):
        """(h_phi_1, B_h, R, b) of UniPC's linear system (hh = -h for data prediction)."""
        hh = -h
        h_phi_1 = math.expm1(hh)
        h_phi_k = h_phi_1 / hh - 1.0
        factorial = 1
        B_h = math.expm1(hh)
        R, b = [], []
        rk = np.array(rks + [1.0])
        for k in range(1, order + 1):
            R.append(rk ** (k - 1))
            b.append(h_phi_k * factorial / B_h)
            factorial *= k + 1
            h_phi_k = h_phi_k / hh - 1.0 / factorial
        return h_phi_1, B_h, np.array(R), np.array(b)

    def _update(self, x, base: int, target: int, order: int, model_t=None):
        """Predictor (``model_t`` None) or corrector from grid point ``base`` to ``target``, with the history's
        last entry being the output at ``base``."""
        m0, l_s0 = self.history[-1]
        a_t, s_t, l_t = self.alpha[target], self.sigma[target], self.lam[target]
        h = l_t - l_s0
        rks, D1s = [], []
        for k in range(1, order):
            m_k, l_k = self.history[-(k + 1)]
            rks.append((l_k - l_s0) / h)
            D1s.append((m_k - m0) / rks[-1])
        h_phi_1, B_h, R, b = self._coefficients(rks, h, order)
        x_t = (s_t / self.sigma[base]) * x - a_t * h_phi_1 * m0
        if model_t is None:
            if not D1s:
                return x_t
            rhos = [0.5] if order == 2 else np.linalg.solve(R[:-1, :-1], b[:-1]).tolist()
            res = sum(r * d for r, d in zip(rhos, D1s))
            return x_t - a_t * B_h * res
        rhos = [0.5] if order == 1 else np.linalg.solve(R, b).tolist()
        res = sum(r * d for r, d in zip(rhos[:-1], D1s)) if D1s else 0.0
        return x_t - a_t * B_h * (res + rhos[-1] * (model_t - m0))

    def step(self, x, i):
        a_s, s_s = self.alpha[i], self.sigma[i]
        m = (x - s_s * self.model(x, self.times[i])) / a_s
        if i > 0 and self.last_x is not None:                           # UniC on the previous step
            x = self._update(self.last_x, i - 1, i, self.prev_order, model_t=m)
        self.history.append((m, self.lam[i]))
        if len(self.history) > self.opts["order"]:
            self.history.pop(0)
        order = min(self.opts["order"], self.steps - i) if self.opts["lower_order_final"] else self.opts["order"]
        order = min(order, i + 1)
        self.prev_order, self.last_x = order, x
        x_next = self._update(x, i, i + 1, order)
        d = x_next - (self.sigma[i + 1] / s_s) * x
        return (self.sigma[i + 1] / s_s) * x + self.lm(d, self.times[i])


@register_sampler("pndm")
class PNDM(SolverStep):
    """Pseudo linear multistep (PLMS) form of PNDM, as diffusers' ``PNDMScheduler(skip_prk_steps=True)``: the
    first step is a pseudo-Heun step (2 evaluations), then Adams-Bashforth combinations of up to 4 past noise
    predictions fed to the DDIM transfer (the pseudo-numerical method of Liu et al. 2022, eq. 9). The original
    PNDM with its Runge-Kutta warm-up is ``"pndm_prk"``. diffusers' default end is t = 0
    (``set_alpha_to_one=False``), where the last step is the identity (its evaluation is spent, as in diffusers)."""

    diffusers_end = "zero"

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.ets: list[torch.Tensor] = []

    @classmethod
    def evals(cls, steps, ends_clean, opts):
        return steps + 1 if steps > 1 else 1

    def _transfer(self, x, eps, i):
        """The DDIM/PNDM transfer from grid point i to i + 1 with the LM hook on the direction."""
        direction = self.sigma[i + 1] * self.lm(eps, self.times[i])
        return _ddim_update(x, eps, self.alpha[i], self.sigma[i], self.alpha[i + 1], self.sigma[i + 1], direction)

    def _plms(self, x, e, i):
        """Adams-Bashforth combination of the stored noise predictions (order by how many there are)."""
        self.ets = self.ets[-3:] + [e]
        n = len(self.ets)
        if n == 1:
            combo = e
        elif n == 2:
            combo = (3 * self.ets[-1] - self.ets[-2]) / 2
        elif n == 3:
            combo = (23 * self.ets[-1] - 16 * self.ets[-2] + 5 * self.ets[-3]) / 12
        else:
            combo = (55 * self.ets[-1] - 59 * self.ets[-2] + 37 * self.ets[-3] - 9 * self.ets[-4]) / 24
        return self._transfer(x, combo, i)

    def step(self, x, i):
        e = self.model(x, self.times[i])
        if self.steps == 1:
            return self._transfer(x, e, 0)
        if i == 0:
            # pseudo-Heun: the stage is a plain transfer (no LM hook, which would also advance the LM state)
            x_stage = _ddim_update(x, e, self.alpha[0], self.sigma[0], self.alpha[1], self.sigma[1], self.sigma[1] * e)
            e1 = self.model(x_stage, self.times[1])
            self.ets.append(e)
            return self._transfer(x, 0.5 * (e + e1), 0)
        return self._plms(x, e, i)


@register_sampler("pndm_prk")
class PNDMRungeKutta(PNDM):
    """The original PNDM (Liu et al. 2022, Alg. 1): three pseudo Runge-Kutta (4th order) steps of 4 evaluations
    each, then PLMS with the 4th-order Adams-Bashforth combination from the first PLMS step on; diffusers'
    ``PNDMScheduler(skip_prk_steps=False)``, its default. Needs >= 4 steps; ``steps + 9`` evaluations.

    Each RK step from grid time ``t`` to ``t'`` evaluates at ``t``, twice at a midpoint and at ``t'``, combines
    ``(e1 + 2 e2 + 2 e3 + e4) / 6`` and applies the DDIM transfer ``t -> t'``. As diffusers does, the half step is
    ``T // steps // 2`` timesteps: the midpoint where the model is evaluated is ``t' + half`` and the first stage
    lands at ``t - half`` (the same point on diffusers' default "leading" grid, where ``t - t' = 2 half``).
    The LM hook (if any) acts on the combined direction of each step, not on the stages. Equal to diffusers on
    its default leading grid and whenever ``steps`` divides T; otherwise diffusers steps from t to
    ``t - T // steps`` rather than to the next grid point (the same difference as for DDIM, see ``sample()``)."""

    prk_steps: ClassVar[int] = 3

    @classmethod
    def evals(cls, steps, ends_clean, opts):
        return steps + 3 * cls.prk_steps

    def check_options(self) -> None:
        if self.steps < self.prk_steps + 1:
            raise ValueError(f"pndm_prk needs >= {self.prk_steps + 1} steps (nfe >= {self.prk_steps + 1 + 9}), "
                             f"got {self.steps} steps; use 'pndm' (PLMS only) for fewer evaluations")
        if getattr(self.schedule, "kind", None) != "discrete":
            raise ValueError("pndm_prk follows diffusers' integer half steps and needs a discrete VPSchedule")
        self.half = self.schedule.num_train_timesteps // self.steps // 2

    def _stage(self, x, eps, t_from, t_to):
        a_s, s_s = (float(v) for v in self.schedule.alpha_sigma(t_from))
        a_t, s_t = (float(v) for v in self.schedule.alpha_sigma(t_to))
        return _ddim_update(x, eps, a_s, s_s, a_t, s_t, s_t * eps)

    def step(self, x, i):
        if i >= self.prk_steps:
            return self._plms(x, self.model(x, self.times[i]), i)
        t, t_next = self.times[i], self.times[i + 1]
        mid = t_next + self.half
        e1 = self.model(x, t)
        self.ets.append(e1)
        e2 = self.model(self._stage(x, e1, t, t - self.half), mid)
        e3 = self.model(self._stage(x, e2, t, mid), mid)
        e4 = self.model(self._stage(x, e3, t, t_next), t_next)
        return self._transfer(x, (e1 + 2 * e2 + 2 * e3 + e4) / 6, i)
