"""A diffusers-compatible LML scheduler: multistep DPM-Solver(++) with the LM operator, in the released configuration.

:class:`LMLScheduler` follows diffusers' scheduler protocol (``set_timesteps``, ``timesteps``, ``step(...)
.prev_sample``, ``init_noise_sigma``, ``scale_model_input``, ``order``, ``config``, ``add_noise``), so it drops
into a diffusers pipeline loop; it is duck-typed (diffusers is never imported here) so ``sciml.diffusion`` imports
without diffusers.

Released configuration it replicates (zituitui/LML-diffusion-sampler, ``scheduling_dpmsolver_multistep_lm.py``):

* tables ``alpha_t, sigma_t, lambda_t`` in float32 from float32 betas (linear 1e-4 .. 0.02, T = 1000);
* DPM-style grid: ``linspace(0, T - 1, N + 1).round()[::-1][:-1]`` ("linspace"; also "leading", "trailing");
* the last step ends at **t = 0** (``prev_timestep = 0``), not at the clean sample;
* lower order on the last step (and at most second order on the one before) when N < 15; warm-up orders;
* the LM operator on the whole increment ``d`` of ``x_t = a x_s + d``, computed in the sample's dtype
  (``compute_dtype="input"``: the released float32 formula with its cancellation noise), previous *uncorrected*
  increment carried as ``prev``; ``lm=False`` gives the baseline solver.

Differs from the released scheduler: ``set_timesteps`` also resets the carried increment (the released one never
resets ``prev_noise``, so with kappa > 0 a second pipeline call starts from the last increment of the first);
``compute_dtype="float64"`` computes the operator exactly (then kappa = 0 is the identity); SDE algorithm types
are refused (the released code applies no LM to them).

Reference: arXiv 2505.24222; diffusers ``DPMSolverMultistepScheduler`` (Lu et al. 2022, 2022b).
"""

from __future__ import annotations

import dataclasses
import math
import types

import numpy as np
import torch

from sciml.diffusion.lml import lm_operator, released_lm_correct

ALGORITHMS = ("dpmsolver", "dpmsolver++")
SPACINGS = ("linspace", "leading", "trailing")


@dataclasses.dataclass(frozen=True)
class LMLSchedulerOutput:
    """diffusers' ``SchedulerOutput`` shape: ``.prev_sample``."""

    prev_sample: torch.Tensor


class LMLScheduler:
    """Multistep DPM-Solver(++) + LM operator with diffusers' scheduler interface.

    Args:
        num_train_timesteps, beta_start, beta_end: DDPM linear betas (float32, as diffusers and the repo).
        trained_betas: optional explicit betas (overrides the linear ones).
        solver_order: 1, 2 or 3 (the released CIFAR-10 scripts use 3).
        algorithm_type: "dpmsolver" (noise form; the released ``dpm_lm``) or "dpmsolver++" (data form).
        lower_order_final: diffusers' rule for fewer than 15 steps.
        timestep_spacing: "linspace" (released default), "leading" or "trailing", DPM-Solver's formulas.
        steps_offset: added to a "leading" grid.
        lamb: LM damping lambda > 0 (README table: 8e-4 for CIFAR-10 at NFE 5).
        kappa: EMA weight in [0, 1] of the previous increment (released default 0).
        lm: apply the operator (False: the baseline solver, same arithmetic).
        compute_dtype: "input" (released: the operator in the sample's dtype) or "float64" (exact operator).
    """

    order = 1
    init_noise_sigma = 1.0

    def __init__(self, num_train_timesteps: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02,
                 trained_betas=None, solver_order: int = 3, algorithm_type: str = "dpmsolver",
                 lower_order_final: bool = True, timestep_spacing: str = "linspace", steps_offset: int = 0,
                 lamb: float = 8e-4, kappa: float = 0.0, lm: bool = True, compute_dtype: str = "input") -> None:
        if algorithm_type not in ALGORITHMS:
            raise ValueError(f"algorithm_type must be one of {ALGORITHMS} (the released code applies no LM to the "
                             f"SDE variants), got {algorithm_type!r}")
        if solver_order not in (1, 2, 3):
            raise ValueError(f"solver_order must be 1, 2 or 3, got {solver_order!r}")
        if timestep_spacing not in SPACINGS:
            raise ValueError(f"timestep_spacing must be one of {SPACINGS}, got {timestep_spacing!r}")
        if not lamb > 0:
            raise ValueError(f"lamb must be > 0, got {lamb}")
        if not 0.0 <= kappa <= 1.0:
            raise ValueError(f"kappa must be in [0, 1], got {kappa}")
        if compute_dtype not in ("input", "float64"):
            raise ValueError(f"compute_dtype must be 'input' or 'float64', got {compute_dtype!r}")
        if num_train_timesteps < 2:
            raise ValueError(f"num_train_timesteps must be >= 2, got {num_train_timesteps}")
        self.config = types.SimpleNamespace(
            num_train_timesteps=num_train_timesteps, beta_start=beta_start, beta_end=beta_end,
            solver_order=solver_order, algorithm_type=algorithm_type, lower_order_final=lower_order_final,
            timestep_spacing=timestep_spacing, steps_offset=steps_offset, lamb=lamb, kappa=kappa, lm=lm,
            compute_dtype=compute_dtype, prediction_type="epsilon")
        if trained_betas is not None:
            betas = torch.as_tensor(trained_betas, dtype=torch.float32)
        else:
            betas = torch.linspace(beta_start, beta_end, num_train_timesteps, dtype=torch.float32)
        self.alphas_cumprod = torch.cumprod(1.0 - betas, dim=0)                  # float32, as the repo
        self.alpha_t = torch.sqrt(self.alphas_cumprod)
        self.sigma_t = torch.sqrt(1 - self.alphas_cumprod)
        self.lambda_t = torch.log(self.alpha_t) - torch.log(self.sigma_t)
        self.num_inference_steps: int | None = None
        self.timesteps = torch.arange(num_train_timesteps - 1, -1, -1)
        self._reset()

    def _reset(self) -> None:
        self.model_outputs: list[torch.Tensor | None] = [None] * self.config.solver_order
        self.lower_order_nums = 0
        self.prev_increment: torch.Tensor | None = None

    def set_timesteps(self, num_inference_steps: int, device: torch.device | str | None = None) -> None:
        """DPM-Solver's grid of ``num_inference_steps`` integer timesteps; resets every carried state."""
        T, N = self.config.num_train_timesteps, num_inference_steps
        if not isinstance(N, int) or not 1 <= N <= T:
            raise ValueError(f"num_inference_steps must be an int in [1, {T}], got {N!r}")
        if self.config.timestep_spacing == "linspace":
            ts = np.linspace(0, T - 1, N + 1).round()[::-1][:-1].astype(np.int64)
        elif self.config.timestep_spacing == "leading":
            ts = (np.arange(0, N + 1) * (T // (N + 1))).round()[::-1][:-1].astype(np.int64) + self.config.steps_offset
        else:
            ts = np.arange(T, 0, -T / N).round().astype(np.int64) - 1
        _, first = np.unique(ts, return_index=True)
        ts = ts[np.sort(first)]
        self.timesteps = torch.from_numpy(ts.copy()).to(device)
        self.num_inference_steps = len(ts)
        self._reset()

    def scale_model_input(self, sample: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        return sample

    def _lm(self, d: torch.Tensor) -> torch.Tensor:
        cfg = self.config
        if not cfg.lm:
            return d
        if self.prev_increment is not None and self.prev_increment.shape != d.shape:
            raise ValueError(f"the carried increment has shape {tuple(self.prev_increment.shape)} but this step's is "
                             f"{tuple(d.shape)}; call set_timesteps before a new batch")
        if cfg.compute_dtype == "input":
            return released_lm_correct(d, self.prev_increment, cfg.lamb, cfg.kappa)
        return lm_operator(d, self.prev_increment, cfg.lamb, cfg.kappa, torch.float64)

    def step(self, model_output: torch.Tensor, timestep, sample: torch.Tensor, generator=None,
             return_dict: bool = True):
        """One multistep update from ``timestep`` to the next grid point (t = 0 after the last)."""
        if self.num_inference_steps is None:
            raise ValueError("call set_timesteps(num_inference_steps) before step()")
        if model_output.shape != sample.shape:
            raise ValueError(f"model_output has shape {tuple(model_output.shape)} but sample {tuple(sample.shape)}")
        # one reduction first (an elementwise isfinite costs as much as the whole update); exact check only then
        if not math.isfinite(float(model_output.sum())) and not bool(torch.isfinite(model_output).all()):
            raise ValueError(f"model_output contains NaN or Inf at timestep {int(timestep)}")
        cfg, ts = self.config, self.timesteps
        t_now = torch.as_tensor(timestep).to(ts.device)
        found = (ts == t_now).nonzero()
        i = int(found[0]) if len(found) else len(ts) - 1
        n = len(ts)
        t = 0 if i == n - 1 else int(ts[i + 1])
        s0 = int(ts[i])
        lower_final = i == n - 1 and cfg.lower_order_final and n < 15
        lower_second = i == n - 2 and cfg.lower_order_final and n < 15
        data = cfg.algorithm_type == "dpmsolver++"
        m = (sample - self.sigma_t[s0] * model_output) / self.alpha_t[s0] if data else model_output
        self.model_outputs = self.model_outputs[1:] + [m]
        if cfg.solver_order == 1 or self.lower_order_nums < 1 or lower_final:
            use = 1
        elif cfg.solver_order == 2 or self.lower_order_nums < 2 or lower_second:
            use = 2
        else:
            use = 3
        a_t, a_s, s_t, s_s = self.alpha_t[t], self.alpha_t[s0], self.sigma_t[t], self.sigma_t[s0]
        h = self.lambda_t[t] - self.lambda_t[s0]
        D0 = m
        if use >= 2:
            s1 = int(ts[i - 1])
            r0 = (self.lambda_t[s0] - self.lambda_t[s1]) / h
            D1_0 = (1.0 / r0) * (m - self.model_outputs[-2])
        if use == 3:
            s2 = int(ts[i - 2])
            r1 = (self.lambda_t[s1] - self.lambda_t[s2]) / h
            D1_1 = (1.0 / r1) * (self.model_outputs[-2] - self.model_outputs[-3])
            D1 = D1_0 + (r0 / (r0 + r1)) * (D1_0 - D1_1)
            D2 = (1.0 / (r0 + r1)) * (D1_0 - D1_1)
        # the increment d of x_t = coef x_s + d, written as the released code writes it (midpoint 2nd order)
        if data:
            coef = s_t / s_s
            em = torch.exp(-h) - 1.0
            d = -(a_t * em) * D0
            if use == 2:
                d = d - 0.5 * (a_t * em) * D1_0
            elif use == 3:
                d = d + (a_t * (em / h + 1.0)) * D1 - (a_t * ((em + h) / h**2 - 0.5)) * D2
        else:
            coef = a_t / a_s
            ep = torch.exp(h) - 1.0
            d = -(s_t * ep) * D0
            if use == 2:
                d = d - 0.5 * (s_t * ep) * D1_0
            elif use == 3:
                d = d - (s_t * (ep / h - 1.0)) * D1 - (s_t * ((ep - h) / h**2 - 0.5)) * D2
        prev_sample = coef * sample + self._lm(d)
        self.prev_increment = d
        if self.lower_order_nums < cfg.solver_order:
            self.lower_order_nums += 1
        return LMLSchedulerOutput(prev_sample) if return_dict else (prev_sample,)

    def add_noise(self, original: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
        """Forward process ``sqrt(acp_t) x_0 + sqrt(1 - acp_t) eps`` (diffusers' ``add_noise``)."""
        acp = self.alphas_cumprod.to(device=original.device, dtype=original.dtype)[timesteps.to(original.device)]
        shape = (-1,) + (1,) * (original.ndim - 1)
        return acp.sqrt().reshape(shape) * original + (1 - acp).sqrt().reshape(shape) * noise

    def __len__(self) -> int:
        return self.config.num_train_timesteps
