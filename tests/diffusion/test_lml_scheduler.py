"""The diffusers-compatible LML scheduler against the released arithmetic (re-implemented here as the oracle from
zituitui/LML-diffusion-sampler, scheduler/scheduling_dpmsolver_multistep_lm.py), against diffusers' own
DPM-Solver (lm=False), against sciml's sample() with the released options, and inside a diffusers pipeline."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sciml.diffusion import LMCorrection, LMLScheduler, VPSchedule, gmm_16d_5mode, sample

MIX = gmm_16d_5mode(torch.Generator().manual_seed(0))
SHAPE = (64, 1, 4, 4)                     # the released operator sums over (1, 2, 3): image-shaped tensors


def _released_tables():
    betas = torch.linspace(0.0001, 0.02, 1000, dtype=torch.float32)
    acp = torch.cumprod(1.0 - betas, dim=0)
    alpha, sigma = torch.sqrt(acp), torch.sqrt(1 - acp)
    return acp, alpha, sigma, torch.log(alpha) - torch.log(sigma)


def _model(schedule):
    def eps(x, t):
        return MIX.eps(x.reshape(x.shape[0], 16), t, schedule).reshape(x.shape)
    return eps


def released_dpm_lm(model, x, steps, order, algo, lamb, kappa, lm=True):
    """Oracle: the released DPMSolverMultistepLMScheduler (lm_correct, set_timesteps 'linspace', step with
    prev_timestep = 0 at the end, lower_order_final for < 15 steps, first/second/third-order updates) in float32."""
    _, A, S, L = _released_tables()
    ts = torch.from_numpy(np.linspace(0, 999, steps + 1).round()[::-1][:-1].copy().astype(np.int64))
    outs, prev, lower_nums = [None] * order, None, 0

    def lm_correct(noise):
        ema = noise if prev is None else kappa * prev + (1 - kappa) * noise
        n2 = (noise * noise).sum(dim=(1, 2, 3))[:, None, None, None]
        n2_ema = (ema * ema).sum(dim=(1, 2, 3))[:, None, None, None]
        inner = torch.sum(noise * ema, dim=(1, 2, 3))[:, None, None, None]
        inv = noise - (ema * inner) / (lamb + n2_ema)
        return inv * torch.sqrt(n2) / torch.sqrt((inv * inv).sum(dim=(1, 2, 3))[:, None, None, None])

    for k, s0 in enumerate(ts.tolist()):
        eps = model(x, torch.full((x.shape[0],), float(s0)))
        t = 0 if k == len(ts) - 1 else int(ts[k + 1])
        final = k == len(ts) - 1 and len(ts) < 15
        second = k == len(ts) - 2 and len(ts) < 15
        m = (x - S[s0] * eps) / A[s0] if algo == "dpmsolver++" else eps
        outs = outs[1:] + [m]
        h = L[t] - L[s0]
        if order == 1 or lower_nums < 1 or final:
            D = [m]
        elif order == 2 or lower_nums < 2 or second:
            r0 = (L[s0] - L[int(ts[k - 1])]) / h
            D = [m, (1.0 / r0) * (m - outs[-2])]
        else:
            s1, s2 = int(ts[k - 1]), int(ts[k - 2])
            r0, r1 = (L[s0] - L[s1]) / h, (L[s1] - L[s2]) / h
            D1_0, D1_1 = (1.0 / r0) * (m - outs[-2]), (1.0 / r1) * (outs[-2] - outs[-3])
            D = [m, D1_0 + (r0 / (r0 + r1)) * (D1_0 - D1_1), (1.0 / (r0 + r1)) * (D1_0 - D1_1)]
        if algo == "dpmsolver++":
            base = (S[t] / S[s0]) * x
            noise = -(A[t] * (torch.exp(-h) - 1.0)) * D[0]
            if len(D) == 2:
                noise = noise - 0.5 * (A[t] * (torch.exp(-h) - 1.0)) * D[1]
            elif len(D) == 3:
                noise = (noise + (A[t] * ((torch.exp(-h) - 1.0) / h + 1.0)) * D[1]
                         - (A[t] * ((torch.exp(-h) - 1.0 + h) / h**2 - 0.5)) * D[2])
        else:
            base = (A[t] / A[s0]) * x
            noise = -(S[t] * (torch.exp(h) - 1.0)) * D[0]
            if len(D) == 2:
                noise = noise - 0.5 * (S[t] * (torch.exp(h) - 1.0)) * D[1]
            elif len(D) == 3:
                noise = (noise - (S[t] * ((torch.exp(h) - 1.0) / h - 1.0)) * D[1]
                         - (S[t] * ((torch.exp(h) - 1.0 - h) / h**2 - 0.5)) * D[2])
        x = base + (lm_correct(noise) if lm else noise)
        prev = noise
        lower_nums = min(lower_nums + 1, order)
    return x


def _run_scheduler(scheduler, model, x, steps):
    scheduler.set_timesteps(steps)
    for t in scheduler.timesteps:
        x = scheduler.step(model(scheduler.scale_model_input(x, t), t.expand(x.shape[0])), t, x).prev_sample
    return x


CASES = [("dpmsolver", 3, 8e-4, 0.0), ("dpmsolver", 3, 1.0, 0.3), ("dpmsolver", 3, 1e-2, 0.0),
         ("dpmsolver++", 2, 1.0, 0.3), ("dpmsolver++", 3, 8e-4, 0.0), ("dpmsolver", 1, 5.0, 0.5)]


@pytest.mark.parametrize("steps", [5, 10, 20])
@pytest.mark.parametrize("algo,order,lamb,kappa", CASES)
def test_lml_scheduler_equals_the_released_arithmetic(algo, order, lamb, kappa, steps):
    acp = _released_tables()[0]
    model = _model(VPSchedule.discrete(acp))
    x_init = torch.randn(SHAPE, generator=torch.Generator().manual_seed(steps))
    expected = released_dpm_lm(model, x_init, steps, order, algo, lamb, kappa)
    ours = _run_scheduler(LMLScheduler(solver_order=order, algorithm_type=algo, lamb=lamb, kappa=kappa), model,
                          x_init, steps)
    torch.testing.assert_close(ours, expected, rtol=1e-4, atol=1e-4)
    if kappa > 0:         # the comparison is not vacuous: the operator moves the samples far more than 1e-4
        base = released_dpm_lm(model, x_init, steps, order, algo, lamb, kappa, lm=False)
        assert float((expected - base).abs().max()) > 1e-2


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::FutureWarning")
@pytest.mark.parametrize("steps", [5, 20])
def test_lm_off_equals_diffusers_dpm_solver_ending_at_t0(steps):
    diffusers = pytest.importorskip("diffusers")
    ref = diffusers.DPMSolverMultistepScheduler(algorithm_type="dpmsolver", solver_order=3,
                                                final_sigmas_type="sigma_min")
    model = _model(VPSchedule.discrete(ref.alphas_cumprod))
    x_init = torch.randn(SHAPE, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(_run_scheduler(LMLScheduler(lm=False), model, x_init, steps),
                               _run_scheduler(ref, model, x_init, steps), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("steps", [4, 10, 20])
@pytest.mark.parametrize("kappa,lam", [(0.3, 1.0), (0.5, 5.0)])
def test_sample_with_released_options_equals_the_scheduler(kappa, lam, steps):
    """sciml's own sampler reproduces the released configuration with options (DPM linspace grid, end t = 0,
    order 3 noise form, LM on the increment). Compared with the exact (float64) operator on both sides: the fp32
    operator's cancellation noise (~u |d|² / lam, up to 1e-2 relative on the last step here) is a function of
    the last bits of d, which float32 tables vs float64 coefficients do not share."""
    acp = _released_tables()[0]
    schedule = VPSchedule.discrete(acp)
    model = _model(schedule)
    x_init = torch.randn(SHAPE, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    sch = LMLScheduler(lamb=lam, kappa=kappa, compute_dtype="float64")
    # float64 tables from the same float32 alphas_cumprod: float32 table rounding, amplified by the kappa > 0
    # operator, moves a few entries by ~1e-3; the comparison is about the configuration, not table rounding
    sch.alpha_t, sch.sigma_t = acp.double().sqrt(), (1 - acp.double()).sqrt()
    sch.lambda_t = torch.log(sch.alpha_t) - torch.log(sch.sigma_t)
    expected = _run_scheduler(sch, model, x_init, steps)
    ours = sample(model, schedule, SHAPE, "dpm_solver", nfe=steps, order=3, spacing="linspace", end="zero",
                  x_init=x_init, correction=LMCorrection(lam=lam, kappa=kappa))
    torch.testing.assert_close(ours.samples, expected, rtol=1e-4, atol=1e-4)
    base = sample(model, schedule, SHAPE, "dpm_solver", nfe=steps, order=3, spacing="linspace", end="zero",
                  x_init=x_init)
    assert float((ours.samples - base.samples).abs().max()) > 1e-2


def test_state_is_reset_by_set_timesteps_and_bad_inputs():
    acp = _released_tables()[0]
    model = _model(VPSchedule.discrete(acp))
    x_init = torch.randn(SHAPE, generator=torch.Generator().manual_seed(3))
    sch = LMLScheduler(lamb=1.0, kappa=0.3)
    first = _run_scheduler(sch, model, x_init, 6)
    torch.testing.assert_close(_run_scheduler(sch, model, x_init, 6), first, rtol=0, atol=0)
    sch.set_timesteps(6)
    with pytest.raises(ValueError, match="NaN"):
        sch.step(torch.full(SHAPE, float("nan")), sch.timesteps[0], x_init)
    with pytest.raises(ValueError, match="set_timesteps"):
        LMLScheduler().step(x_init, 999, x_init)
    with pytest.raises(ValueError, match="SDE"):
        LMLScheduler(algorithm_type="sde-dpmsolver++")
    exact = LMLScheduler(lamb=8e-4, compute_dtype="float64")
    torch.testing.assert_close(_run_scheduler(exact, model, x_init.double(), 6),
                               _run_scheduler(LMLScheduler(lm=False), model, x_init.double(), 6), rtol=0, atol=0)


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::FutureWarning")
def test_usable_inside_a_diffusers_pipeline():
    diffusers = pytest.importorskip("diffusers")
    torch.manual_seed(0)
    unet = diffusers.UNet2DModel(sample_size=8, in_channels=1, out_channels=1, block_out_channels=(8, 16),
                                 layers_per_block=1, norm_num_groups=4,
                                 down_block_types=("DownBlock2D", "DownBlock2D"),
                                 up_block_types=("UpBlock2D", "UpBlock2D")).eval()
    pipe = diffusers.DDPMPipeline(unet=unet, scheduler=LMLScheduler(lamb=1.0, kappa=0.3))
    with torch.no_grad():
        images = pipe(batch_size=2, num_inference_steps=5, generator=torch.Generator().manual_seed(4),
                      output_type="np").images
        x = torch.randn((2, 1, 8, 8), generator=torch.Generator().manual_seed(4))
        manual = _run_scheduler(LMLScheduler(lamb=1.0, kappa=0.3), lambda x, t: unet(x, t).sample, x, 5)
    expected = (manual / 2 + 0.5).clamp(0, 1).permute(0, 2, 3, 1).numpy()
    np.testing.assert_allclose(images, expected, rtol=0, atol=1e-5)
