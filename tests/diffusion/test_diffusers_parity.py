"""Every sciml sampler against its diffusers scheduler on an exact-score Gaussian mixture, with diffusers' default
grids, start and end conventions (out of the box: diffusers' float32 tables are used as they are), to 1e-5."""

from __future__ import annotations

import warnings

import pytest
import torch

from sciml.diffusion import GaussianMixture, VPSchedule, sample
from sciml.diffusion.solvers import SAMPLER_REGISTRY

diffusers = pytest.importorskip("diffusers")
# numpy 2 notice inside diffusers; diffusers' deprecation of its noise-form "dpmsolver" algorithm types
pytestmark = [pytest.mark.filterwarnings("ignore::DeprecationWarning"),
              pytest.mark.filterwarnings("ignore::FutureWarning")]

# A 3-mode mixture whose probability-flow trajectories do not pass between far-apart modes: diffusers computes its
# tables (and DPM-Solver its whole step) in float32, and on the spec's 8-mode mixture trajectories between modes
# amplify that rounding to ~1e-5; here it stays below 3e-6.
MIX = GaussianMixture(torch.tensor([0.5, 0.3, 0.2]),
                      torch.tensor([[1.0, 0.5], [-1.0, 0.8], [0.2, -1.0]], dtype=torch.float64),
                      torch.stack([torch.tensor([[0.3, 0.1], [0.1, 0.2]]), 0.25 * torch.eye(2),
                                   torch.tensor([[0.2, -0.05], [-0.05, 0.3]])]).double())
TOL = 1e-5


def _run_diffusers(scheduler, schedule, x_init, steps, generator=None):
    """The standard diffusers loop: init_noise_sigma, scale_model_input, step."""
    model = MIX.eps_model(schedule)
    scheduler.set_timesteps(steps)
    x = x_init.clone() * scheduler.init_noise_sigma
    kwargs = {"generator": generator} if generator is not None else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        for t in scheduler.timesteps:
            eps = model(scheduler.scale_model_input(x, t), t.expand(x.shape[0]))
            x = scheduler.step(eps, t, x, **kwargs).prev_sample
    return x


def _ours(name, schedule, x_init, steps, generator=None, **kwargs):
    cls = SAMPLER_REGISTRY[name]
    nfe = cls.evals(steps, cls.diffusers_end == "clean", {})
    return sample(MIX.eps_model(schedule), schedule, x_init.shape, name, nfe=nfe, x_init=x_init,
                  spacing="diffusers", end="diffusers", start="diffusers", generator=generator, **kwargs)


CASES = {
    "ddim": (lambda: diffusers.DDIMScheduler(clip_sample=False), {}),
    "dpm++1": (lambda: diffusers.DPMSolverMultistepScheduler(solver_order=1), {"order": 1}),
    "dpm++2": (lambda: diffusers.DPMSolverMultistepScheduler(solver_order=2), {"order": 2}),
    "dpm++3": (lambda: diffusers.DPMSolverMultistepScheduler(solver_order=3), {"order": 3}),
    # diffusers allows the noise form only with final_sigmas_type="sigma_min" (ends at t = 0)
    "dpm1": (lambda: diffusers.DPMSolverMultistepScheduler(algorithm_type="dpmsolver", solver_order=1,
                                                           final_sigmas_type="sigma_min"), {"order": 1}),
    "dpm2": (lambda: diffusers.DPMSolverMultistepScheduler(algorithm_type="dpmsolver", solver_order=2,
                                                           final_sigmas_type="sigma_min"), {"order": 2}),
    "dpm3": (lambda: diffusers.DPMSolverMultistepScheduler(algorithm_type="dpmsolver", solver_order=3,
                                                           final_sigmas_type="sigma_min"), {"order": 3}),
    "euler": (lambda: diffusers.EulerDiscreteScheduler(), {}),
    "heun": (lambda: diffusers.HeunDiscreteScheduler(), {}),
    "unipc1": (lambda: diffusers.UniPCMultistepScheduler(solver_order=1), {"order": 1}),
    "unipc2": (lambda: diffusers.UniPCMultistepScheduler(solver_order=2), {"order": 2}),
    "unipc3": (lambda: diffusers.UniPCMultistepScheduler(solver_order=3), {"order": 3}),
    "pndm": (lambda: diffusers.PNDMScheduler(skip_prk_steps=True), {}),
}
SAMPLER_OF = {"ddim": "ddim", "euler": "euler", "heun": "heun", "pndm": "pndm"} | {
    f"dpm++{k}": "dpm_solver++" for k in (1, 2, 3)} | {f"dpm{k}": "dpm_solver" for k in (1, 2, 3)} | {
    f"unipc{k}": "unipc" for k in (1, 2, 3)}


@pytest.mark.parametrize("steps", [5, 20])
@pytest.mark.parametrize("case", list(CASES))
def test_sampler_matches_diffusers_with_its_default_grid(case, steps):
    make, kwargs = CASES[case]
    ref = make()
    schedule = VPSchedule.discrete(ref.alphas_cumprod)
    x_init = torch.randn(256, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    expected = _run_diffusers(ref, schedule, x_init, steps)
    ours = _ours(SAMPLER_OF[case], schedule, x_init, steps, **kwargs)
    visited = list(dict.fromkeys(ref.timesteps.double().tolist()))        # Heun and PLMS evaluate some t twice
    assert ours.timesteps[:-1].tolist() == pytest.approx(visited)
    assert ours.nfe == len(ref.timesteps)
    torch.testing.assert_close(ours.samples, expected, rtol=TOL, atol=TOL)


@pytest.mark.parametrize("spacing", ["leading", "trailing", "linspace"])
@pytest.mark.parametrize("case", ["euler", "dpm++2", "unipc2"])
def test_other_diffusers_spacings(case, spacing):
    make, kwargs = CASES[case]
    ref = make()
    ref.register_to_config(timestep_spacing=spacing)
    schedule = VPSchedule.discrete(ref.alphas_cumprod)
    x_init = torch.randn(128, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    expected = _run_diffusers(ref, schedule, x_init, 7)
    start = "diffusers"
    ours = sample(MIX.eps_model(schedule), schedule, x_init.shape, SAMPLER_OF[case], nfe=7, x_init=x_init,
                  spacing=spacing, start=start, **kwargs)
    torch.testing.assert_close(ours.samples, expected, rtol=TOL, atol=TOL)


@pytest.mark.parametrize("eta", [0.5, 1.0])
def test_stochastic_ddim_matches_diffusers(eta):
    ref = diffusers.DDIMScheduler(clip_sample=False)
    schedule = VPSchedule.discrete(ref.alphas_cumprod)
    x_init = torch.randn(256, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    model = MIX.eps_model(schedule)
    ref.set_timesteps(10)
    x, gen = x_init.clone(), torch.Generator().manual_seed(1)
    for t in ref.timesteps:
        x = ref.step(model(x, t), t, x, eta=eta, generator=gen).prev_sample
    # DDIM draws its noise on every step but the last (sigma_t = 0 there); diffusers draws on every step
    ours = sample(model, schedule, x_init.shape, "ddim", nfe=10, eta=eta, x_init=x_init, spacing="leading",
                  generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(ours.samples, x, rtol=TOL, atol=TOL)


@pytest.mark.parametrize("order", [1, 2])
@pytest.mark.parametrize("form", ["sde_dpm_solver++", "sde_dpm_solver"])
def test_sde_dpm_solver_matches_diffusers(form, order):
    # diffusers draws its SDE noise in float32, so both sides run in float32 from the same generator
    algo = "sde-dpmsolver++" if form.endswith("++") else "sde-dpmsolver"
    final = "zero" if form.endswith("++") else "sigma_min"
    ref = diffusers.DPMSolverMultistepScheduler(algorithm_type=algo, solver_order=order, final_sigmas_type=final)
    schedule = VPSchedule.discrete(ref.alphas_cumprod)
    x_init = torch.randn(256, 2, generator=torch.Generator().manual_seed(0))
    expected = _run_diffusers(ref, schedule, x_init, 10, generator=torch.Generator().manual_seed(5))
    ours = _ours(form, schedule, x_init, 10, generator=torch.Generator().manual_seed(5), order=order)
    torch.testing.assert_close(ours.samples, expected, rtol=1e-4, atol=1e-4)


# trailing with 7 steps is left out: there diffusers steps from t to t - T // steps, off the grid (as for DDIM)
@pytest.mark.parametrize("steps,spacing", [(4, "leading"), (7, "leading"), (10, "leading"), (20, "leading"),
                                           (4, "trailing"), (10, "trailing"), (20, "trailing")])
def test_pndm_with_runge_kutta_warmup_matches_diffusers(steps, spacing):
    # diffusers' default PNDMScheduler (skip_prk_steps=False): 3 pseudo-RK4 steps of 4 evaluations, then PLMS
    ref = diffusers.PNDMScheduler(timestep_spacing=spacing)
    assert not ref.config.skip_prk_steps
    schedule = VPSchedule.discrete(ref.alphas_cumprod)
    x_init = torch.randn(256, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    expected = _run_diffusers(ref, schedule, x_init, steps)
    ours = sample(MIX.eps_model(schedule), schedule, x_init.shape, "pndm_prk", nfe=steps + 9, x_init=x_init,
                  spacing=spacing, end="diffusers")
    assert ours.nfe == len(ref.timesteps) == steps + 9
    torch.testing.assert_close(ours.samples, expected, rtol=TOL, atol=TOL)
    if steps == 4:                           # the warm-up is not PLMS's pseudo-Heun (equal only as steps grow)
        plms = sample(MIX.eps_model(schedule), schedule, x_init.shape, "pndm", nfe=steps + 1, x_init=x_init,
                      spacing=spacing, end="diffusers").samples
        assert float((plms - ours.samples).abs().max()) > 100 * TOL


def test_pndm_prk_needs_four_steps():
    schedule = VPSchedule.ddpm_linear()
    with pytest.raises(ValueError, match="needs >= 4 steps"):
        sample(MIX.eps_model(schedule), schedule, (8, 2), "pndm_prk", nfe=12)


def _flow_velocity(t, x):
    """Exact flow-matching velocity E[eps - x_0 | x_t = x] of MIX on x_t = (1 - t) x_0 + t eps, written from the
    Gaussian posterior of each component (independent of the library's eps): v = (x - E[x_0 | x]) / t."""
    a, s = 1.0 - t, t
    S = a**2 * MIX.covs + s**2 * torch.eye(2, dtype=torch.float64)                # (K, 2, 2)
    r = x[:, None, :] - a * MIX.means[None]                                        # (n, K, 2)
    sol = torch.linalg.solve(S[None], r[..., None])[..., 0]                        # S_k^{-1} (x - a mu_k)
    logw = (torch.log(MIX.weights)[None] - 0.5 * (r * sol).sum(-1) - 0.5 * torch.logdet(S)[None])
    w = torch.softmax(logw, dim=1)
    post_mean = MIX.means[None] + a * torch.einsum("kij,nkj->nki", MIX.covs, sol)  # E[x_0 | x, k]
    x0 = (w[..., None] * post_mean).sum(1)
    return (x - x0) / s


@pytest.mark.parametrize("shift", [1.0, 3.0])
@pytest.mark.parametrize("steps", [5, 20])
def test_flow_euler_matches_diffusers_flow_match_euler(steps, shift):
    from sciml.diffusion import FlowSchedule

    ref = diffusers.FlowMatchEulerDiscreteScheduler(shift=shift)
    ref.set_timesteps(steps)
    x = torch.randn(256, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    x_init = x.clone()
    for t in ref.timesteps:                  # diffusers' model sees timestep = 1000 sigma
        x = ref.step(_flow_velocity(float(t) / 1000.0, x), t, x).prev_sample
    schedule = FlowSchedule(t_start=1.0, t_end=0.0, shift=shift)
    model = lambda x, t: _flow_velocity(float(t[0]), x)
    ours = sample(model, schedule, x_init.shape, "flow_euler", nfe=steps, x_init=x_init, spacing="diffusers",
                  prediction="velocity")
    assert ours.timesteps[:-1].tolist() == pytest.approx((ref.timesteps.double() / 1000).tolist(), rel=1e-6)
    # diffusers casts the sample to float32 in every step: agreement to float32 rounding
    torch.testing.assert_close(ours.samples, x, rtol=TOL, atol=TOL)


def test_flow_grid_from_t1_needs_a_velocity_model():
    from sciml.diffusion import FlowSchedule

    schedule = FlowSchedule(t_start=1.0, t_end=0.0)
    model = lambda x, t: _flow_velocity(float(t[0]), x)
    with pytest.raises(ValueError, match="starts at t = 1"):
        sample(model, schedule, (8, 2), "flow_euler", nfe=5, spacing="diffusers")
    with pytest.raises(ValueError, match="starts at t = 1"):
        sample(model, schedule, (8, 2), "ddim", nfe=5, spacing="diffusers", prediction="velocity")
