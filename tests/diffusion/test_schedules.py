"""Schedules against closed forms, quadrature and diffusers' timestep grids."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.integrate
import torch

from sciml.diffusion import FlowSchedule, VPSchedule


def test_continuous_alpha_is_exp_of_half_integrated_beta():
    sch = VPSchedule.continuous(0.1, 20.0)
    for t in (0.01, 0.3, 0.77, 1.0):
        integral, _ = scipy.integrate.quad(lambda s: 0.1 + s * (20.0 - 0.1), 0.0, t)
        alpha, sigma = sch.alpha_sigma(t)
        assert abs(float(alpha) - math.exp(-0.5 * integral)) < 1e-13
        assert abs(float(alpha) ** 2 + float(sigma) ** 2 - 1.0) < 1e-14


def test_log_snr_inverse_round_trip():
    sch = VPSchedule.continuous()
    t = torch.linspace(1e-3, 1.0, 57, dtype=torch.float64)
    torch.testing.assert_close(sch.t_of_log_snr(sch.log_snr(t)), t, rtol=1e-11, atol=1e-12)
    flow = FlowSchedule()
    torch.testing.assert_close(flow.t_of_log_snr(flow.log_snr(t[:-1])), t[:-1], rtol=1e-12, atol=1e-12)


def test_logsnr_grid_is_uniform_in_log_snr():
    sch = VPSchedule.continuous()
    lam = sch.log_snr(sch.grid(10, "logsnr"))
    steps = torch.diff(lam)
    torch.testing.assert_close(steps, steps.mean().expand(10), rtol=1e-9, atol=1e-10)
    assert lam[0] < lam[-1]


def test_ddpm_linear_matches_cumprod_of_betas():
    sch = VPSchedule.ddpm_linear(1000)
    betas = np.linspace(1e-4, 0.02, 1000)
    alpha, sigma = sch.alpha_sigma(torch.tensor([0.0, 499.0, 999.0, -1.0]))
    expected = np.sqrt(np.cumprod(1 - betas)[[0, 499, 999]])
    np.testing.assert_allclose(alpha[:3].numpy(), expected, rtol=1e-14)
    assert float(alpha[3]) == 1.0 and float(sigma[3]) == 0.0


@pytest.mark.parametrize("spacing", ["trailing", "leading", "linspace"])
@pytest.mark.parametrize("steps", [5, 10, 20, 7])
def test_discrete_grids_match_diffusers(spacing, steps):
    diffusers = pytest.importorskip("diffusers")
    ref = diffusers.DDIMScheduler(num_train_timesteps=1000, timestep_spacing=spacing)
    ref.set_timesteps(steps)
    ours = VPSchedule.ddpm_linear().grid(steps, spacing)
    assert ours[:-1].long().tolist() == ref.timesteps.tolist() and float(ours[-1]) == -1.0


@pytest.mark.parametrize("spacing", ["trailing", "leading", "linspace"])
@pytest.mark.parametrize("steps", [5, 10, 7])
@pytest.mark.parametrize("family", ["multistep", "karras"])
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_multistep_and_karras_grids_match_diffusers(family, spacing, steps):
    """The issue's example: 5 linspace steps are [999, 799, 599, 400, 200] for DPM-Solver, not DDIM's grid."""
    diffusers = pytest.importorskip("diffusers")
    cls = diffusers.DPMSolverMultistepScheduler if family == "multistep" else diffusers.EulerDiscreteScheduler
    ref = cls(num_train_timesteps=1000, timestep_spacing=spacing)
    ref.set_timesteps(steps)
    ours = VPSchedule.ddpm_linear().grid(steps, spacing, family=family)
    assert ours[:-1].tolist() == ref.timesteps.double().tolist() and float(ours[-1]) == -1.0
    if family == "karras":      # fractional timesteps: sigma interpolated as diffusers does (float32 there)
        sch = VPSchedule.discrete(ref.alphas_cumprod)
        alpha, sigma = sch.alpha_sigma(ours[:-1])
        torch.testing.assert_close((sigma / alpha).float(), ref.sigmas[:-1], rtol=1e-6, atol=0)


def test_dpm_linspace_grid_of_the_issue():
    grid = VPSchedule.ddpm_linear().grid(5, "linspace", family="multistep", end="zero")
    assert grid.tolist() == [999, 799, 599, 400, 200, 0]
    assert VPSchedule.ddpm_linear().grid(5, "linspace").tolist() == [999, 749, 500, 250, 0, -1]


def test_bad_schedule_inputs():
    with pytest.raises(ValueError, match="beta_min < beta_max"):
        VPSchedule.continuous(1.0, 0.5)
    with pytest.raises(ValueError, match="spacing must be one of"):
        VPSchedule.continuous().grid(5, "trailing")
    with pytest.raises(ValueError, match="steps must be"):
        VPSchedule.ddpm_linear().grid(0)
    with pytest.raises(ValueError, match="cannot exceed"):
        VPSchedule.ddpm_linear(10).grid(11)
    with pytest.raises(ValueError, match="family must be one of"):
        VPSchedule.ddpm_linear().grid(5, family="dpm")
    with pytest.raises(ValueError, match="end must be one of"):
        VPSchedule.ddpm_linear().grid(5, end="t0")
    with pytest.raises(ValueError, match="must lie in"):
        VPSchedule.ddpm_linear().alpha_sigma(1000.5)
