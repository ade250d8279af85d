"""Our DDIM and DPM-Solver++ against diffusers' schedulers on the same eps model and time grid (1e-6)."""

from __future__ import annotations

import pytest
import torch

from sciml.diffusion import GaussianMixture, VPSchedule, gmm_2d_8mode, sample

diffusers = pytest.importorskip("diffusers")
# DPMSolverMultistepScheduler.step upcasts the sample to float32 whatever its dtype, so its result carries float32
# rounding; on the 8-mode mixture, trajectories that pass between modes amplify it to ~1e-5. The 1e-6 parity
# is therefore checked on a well-conditioned model (a 2-D anisotropic Gaussian, linear eps), and the mixture at 1e-4.
GAUSS = GaussianMixture(torch.ones(1), torch.tensor([[1.0, -2.0]], dtype=torch.float64),
                        torch.tensor([[[0.5, 0.3], [0.3, 1.5]]], dtype=torch.float64))
MIX = gmm_2d_8mode()


def _run_diffusers(mix, scheduler, schedule, x_init, steps, after_set=None, **step_kwargs):
    model = mix.eps_model(schedule)
    scheduler.set_timesteps(steps)
    if after_set is not None:
        after_set(scheduler)
    x = x_init.clone()
    for t in scheduler.timesteps:
        x = scheduler.step(model(x, t), t, x, **step_kwargs).prev_sample
    return x


@pytest.mark.parametrize("steps", [5, 20])
@pytest.mark.parametrize("eta", [0.0, 1.0])
def test_ddim_matches_diffusers(steps, eta):
    ref = diffusers.DDIMScheduler(num_train_timesteps=1000, clip_sample=False, timestep_spacing="trailing")
    # diffusers keeps alphas_cumprod in float32 and so forms the step coefficients in float32 (rel. error ~6e-8,
    # amplified to ~4e-6 on trajectories that pass between modes); compare the algorithms in float64.
    ref.alphas_cumprod = ref.alphas_cumprod.double()
    ref.final_alpha_cumprod = ref.final_alpha_cumprod.double()
    schedule = VPSchedule.discrete(ref.alphas_cumprod)
    x_init = torch.randn(256, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    kwargs = {"eta": eta, "generator": torch.Generator().manual_seed(1)} if eta > 0 else {}
    expected = _run_diffusers(GAUSS, ref, schedule, x_init, steps, **kwargs)
    ours = sample(GAUSS.eps_model(schedule), schedule, x_init.shape, "ddim", nfe=steps, eta=eta, x_init=x_init,
                  generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(ours.samples, expected, rtol=1e-6, atol=1e-6)
    assert ours.nfe == steps


@pytest.mark.parametrize("order,steps,problem,tol", [(1, 10, "gauss", 1e-6), (2, 5, "gauss", 1e-6),
                                                    (2, 20, "gauss", 1e-6), (3, 10, "gauss", 1e-6),
                                                    (3, 20, "gauss", 1e-6), (2, 10, "mixture", 1e-4)])
def test_dpm_solver_pp_matches_diffusers(order, steps, problem, tol):
    mix = GAUSS if problem == "gauss" else MIX
    ref = diffusers.DPMSolverMultistepScheduler(num_train_timesteps=1000, algorithm_type="dpmsolver++",
                                                solver_order=order, timestep_spacing="trailing")
    schedule = VPSchedule.discrete(ref.alphas_cumprod)
    x_init = torch.randn(256, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))

    def float64_sigmas(scheduler):
        # diffusers rounds its sigma table to float32 (see the DDIM test); rebuild it with its own formula in float64
        acp = scheduler.alphas_cumprod.double()[scheduler.timesteps]
        scheduler.sigmas = torch.cat([((1 - acp) / acp).sqrt(), torch.zeros(1, dtype=torch.float64)])

    expected = _run_diffusers(mix, ref, schedule, x_init, steps, after_set=float64_sigmas)
    ours = sample(mix.eps_model(schedule), schedule, x_init.shape, "dpm_solver++", nfe=steps, order=order,
                  x_init=x_init)
    torch.testing.assert_close(ours.samples, expected, rtol=tol, atol=tol)
