"""Samplers: NFE accounting, exact identities between samplers, convergence to the exact probability-flow ODE."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from sciml.core import Status
from sciml.diffusion import (
    EpsMLP,
    FlowSchedule,
    GaussianMixture,
    LangevinCorrection,
    LMCorrection,
    VPSchedule,
    gmm_2d_8mode,
    sample,
    sliced_w2,
)
from sciml.linalg import inv_sqrtm_psd, sqrtm_psd

MIX = gmm_2d_8mode()
VP = VPSchedule.continuous()


ROT = torch.tensor([[0.8, -0.6], [0.6, 0.8]], dtype=torch.float64)
GAUSS = GaussianMixture(torch.ones(1), torch.tensor([[1.0, -2.0]], dtype=torch.float64),
                        (ROT @ torch.diag(torch.tensor([0.05, 2.0], dtype=torch.float64)) @ ROT.T)[None])


def _pf_ode_flow(x1: torch.Tensor, t_end: float) -> torch.Tensor:
    """Closed-form probability-flow map of a Gaussian: x_t - a_t mu = S_t^{1/2} S_1^{-1/2} (x_1 - a_1 mu),
    S_t = a_t² Sigma + s_t² I (all S_t share Sigma's eigenbasis, so the linear ODE integrates exactly)."""
    (a1, s1), (at, st) = VP.alpha_sigma(1.0), VP.alpha_sigma(t_end)
    eye = torch.eye(2, dtype=torch.float64)
    S1, St = a1**2 * GAUSS.covs[0] + s1**2 * eye, at**2 * GAUSS.covs[0] + st**2 * eye
    mu = GAUSS.means[0]
    return at * mu + (x1 - a1 * mu) @ (sqrtm_psd(St) @ inv_sqrtm_psd(S1)).T


@pytest.fixture(scope="module")
def ode_pair():
    x_init = torch.randn(16, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    return x_init, _pf_ode_flow(x_init, VP.t_end)


# Third order is checked against 2.5: the lower-order warm-up steps of a multistep method add an O(h^2)
# global term that dominates at these step counts.
@pytest.mark.parametrize("sampler,order,expected_order", [("ddim", None, 1), ("dpm_solver", 1, 1), ("dpm_solver", 2, 2),
                                                          ("dpm_solver", 3, 2.5), ("dpm_solver++", 2, 2),
                                                          ("dpm_solver++", 3, 2.5), ("heun", None, 2),
                                                          ("unipc", 2, 2), ("unipc", 3, 2.5), ("pndm", None, 2.5)])
def test_deterministic_samplers_converge_to_pf_ode_at_their_order(ode_pair, sampler, order, expected_order):
    x_init, ref = ode_pair
    errors = []
    for nfe in (16, 32) if sampler != "heun" else (32, 64):
        out = sample(GAUSS.eps_model(VP), VP, x_init.shape, sampler, nfe=nfe, order=order, x_init=x_init)
        errors.append(float((out.samples - ref).norm(dim=1).max()))
    observed = math.log2(errors[0] / errors[1])
    assert observed > expected_order - 0.5, (errors, observed)


def test_nfe_accounting():
    model = MIX.eps_model(VP)
    for sampler, nfe, expected in (("ddim", 7, 7), ("dpm_solver++", 5, 5), ("heun", 7, 6), ("langevin_pc", 9, 9),
                                   ("langevin_pc", 10, 9)):
        out = sample(model, VP, (8, 2), sampler, nfe=nfe, generator=torch.Generator().manual_seed(0))
        assert out.nfe == expected, (sampler, nfe, out.nfe)
        assert out.nfe <= nfe and out.status is Status.CONVERGED
    ddpm = VPSchedule.ddpm_linear()
    heun = sample(MIX.eps_model(ddpm), ddpm, (8, 2), "heun", nfe=9, generator=torch.Generator().manual_seed(0))
    assert heun.nfe == 9                       # 5 steps, the last one onto sigma = 0 is an Euler step


def test_euler_equals_ddim_and_flow_euler_equals_ddim_on_flow_path():
    x_init = torch.randn(64, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    a = sample(MIX.eps_model(VP), VP, x_init.shape, "euler", nfe=12, x_init=x_init).samples
    b = sample(MIX.eps_model(VP), VP, x_init.shape, "ddim", nfe=12, x_init=x_init).samples
    torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    flow = FlowSchedule()
    c = sample(MIX.eps_model(flow), flow, x_init.shape, "flow_euler", nfe=12, x_init=x_init).samples
    d = sample(MIX.eps_model(flow), flow, x_init.shape, "ddim", nfe=12, x_init=x_init).samples
    torch.testing.assert_close(c, d, rtol=1e-12, atol=1e-12)


def test_velocity_prediction_matches_eps_prediction():
    flow = FlowSchedule()
    eps = MIX.eps_model(flow)

    def velocity(x, t):                        # v = eps - x_0 with x_0 = (x - t eps) / (1 - t)
        e = eps(x, t)
        tt = float(t.reshape(-1)[0])
        return e - (x - tt * e) / (1 - tt)

    x_init = torch.randn(32, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    a = sample(velocity, flow, x_init.shape, "flow_euler", nfe=8, x_init=x_init, prediction="velocity").samples
    b = sample(eps, flow, x_init.shape, "flow_euler", nfe=8, x_init=x_init).samples
    torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


def test_ddim_2d_converges_to_the_sampling_floor():
    ref = MIX.sample(1000, torch.Generator().manual_seed(11))
    floors = [float(sliced_w2(MIX.sample(1000, torch.Generator().manual_seed(20 + k)), ref,
                              generator=torch.Generator().manual_seed(3))) for k in range(3)]
    sw = {}
    for nfe in (5, 50):
        out = sample(MIX.eps_model(VP), VP, (1000, 2), "ddim", nfe=nfe, generator=torch.Generator().manual_seed(4))
        sw[nfe] = float(sliced_w2(out.samples, ref, generator=torch.Generator().manual_seed(3)))
    assert sw[50] < sw[5]
    assert sw[50] < 1.5 * max(floors), (sw, floors)


def test_langevin_corrector_keeps_p_t_invariant():
    """Many plain-Langevin corrector steps on exact samples of p_t stay at p_t (up to the ULA bias)."""
    t = torch.tensor(0.3, dtype=torch.float64)
    alpha, sigma = (float(v) for v in VP.alpha_sigma(t))
    x_t = alpha * MIX.sample(1000, torch.Generator().manual_seed(6)) + sigma * torch.randn(
        1000, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(7))
    fresh = alpha * MIX.sample(1000, torch.Generator().manual_seed(8)) + sigma * torch.randn(
        1000, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(9))
    floor = float(sliced_w2(x_t, fresh, generator=torch.Generator().manual_seed(3)))
    corr = LangevinCorrection(snr=0.05, n_steps=30)
    gen = torch.Generator().manual_seed(10)
    moved = corr.correct(x_t, t, MIX.eps_model(VP), VP, corr.start(), gen)
    assert float((moved - x_t).norm(dim=1).mean()) > 0.05          # it does move
    assert float(sliced_w2(moved, fresh, generator=torch.Generator().manual_seed(3))) < 1.5 * floor + 0.02


def test_nn_module_model_and_float32():
    net = EpsMLP(4, width=16, n_blocks=1, generator=torch.Generator().manual_seed(0))
    sch = VPSchedule.ddpm_linear()
    for sampler in ("ddim", "dpm_solver++", "heun"):
        with torch.no_grad():
            out = sample(net, sch, (5, 4), sampler, nfe=6, dtype=torch.float32,
                         generator=torch.Generator().manual_seed(0), correction=LMCorrection(kappa=0.3))
        assert out.samples.dtype == torch.float32 and out.samples.shape == (5, 4)


def test_stochastic_samplers_are_reproducible_with_a_generator():
    runs = [sample(MIX.eps_model(VP), VP, (16, 2), "ddim", nfe=5, eta=1.0,
                   generator=torch.Generator().manual_seed(3)).samples for _ in range(2)]
    assert torch.equal(runs[0], runs[1])


def test_bad_sampler_inputs():
    model = MIX.eps_model(VP)
    with pytest.raises(ValueError, match="valid choices: ddim, dpm_solver"):
        sample(model, VP, (4, 2), "ddmi")
    with pytest.raises(ValueError, match="nfe must be an int >= 1"):
        sample(model, VP, (4, 2), nfe=0)
    with pytest.raises(ValueError, match="x_init has shape"):
        sample(model, VP, (4, 2), x_init=torch.zeros(3, 2, dtype=torch.float64))
    with pytest.raises(ValueError, match="NaN or Inf"):
        sample(lambda x, t: torch.full_like(x, math.nan), VP, (4, 2))
    with pytest.raises(ValueError, match="input's shape"):
        sample(lambda x, t: x[:, :1], VP, (4, 2))
    with pytest.raises(ValueError, match="order must be"):
        sample(model, VP, (4, 2), "dpm_solver++", order=4)
    with pytest.raises(ValueError, match="FlowSchedule"):
        sample(model, VP, (4, 2), "flow_euler")
    with pytest.raises(ValueError, match="too small"):
        sample(model, VP, (4, 2), "heun", nfe=1)
    with pytest.raises(ValueError, match="lam .* must be > 0"):
        LMCorrection(lam=0.0)
    with pytest.raises(ValueError, match="mode must be one of"):
        LMCorrection(mode="newton")
    with pytest.raises(ValueError, match="apply_to"):
        sample(model, VP, (4, 2), "ddim", correction=LMCorrection(apply_to="increment"))
    assert np.isfinite(float(sample(model, VP, (4, 2), nfe=2).samples.sum()))


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_low_precision_model_receives_integer_exact_timesteps(dtype):
    """bf16 rounds 999 to 1000 (outside a T = 1000 model's range): timesteps must not travel in the sample's dtype."""
    seen = []

    def model(x, t):
        seen.append(t.clone())
        return torch.zeros_like(x)

    sch = VPSchedule.ddpm_linear()
    out = sample(model, sch, (3, 4), "ddim", nfe=10, dtype=dtype, generator=torch.Generator().manual_seed(0))
    assert out.samples.dtype == dtype
    assert all(t.dtype == torch.float32 for t in seen)
    assert [float(t[0]) for t in seen] == [999.0 - 100.0 * k for k in range(10)]


def test_per_sample_langevin_step_does_not_depend_on_the_rest_of_the_batch():
    x_init = torch.randn(8, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    other = x_init.clone()
    other[4:] *= 3.0                                               # change only samples 4..7
    runs = {}
    for rule in ("batch", "per_sample"):
        corr = LangevinCorrection(snr=0.16, step_size=rule)
        runs[rule] = [sample(MIX.eps_model(VP), VP, x.shape, "langevin_pc", nfe=9, correction=corr, x_init=x,
                             generator=torch.Generator().manual_seed(1)).samples[:4] for x in (x_init, other)]
    torch.testing.assert_close(runs["per_sample"][0], runs["per_sample"][1], rtol=0, atol=1e-12)
    assert float((runs["batch"][0] - runs["batch"][1]).abs().max()) > 1e-6


def test_new_bad_inputs_are_clear_errors():
    model = MIX.eps_model(VP)
    with pytest.raises(ValueError, match="does not use eta"):
        sample(model, VP, (4, 2), "dpm_solver++", eta=0.5)
    with pytest.raises(ValueError, match="does not use order"):
        sample(model, VP, (4, 2), "ddim", order=3)
    with pytest.raises(ValueError, match="langevin_pc.*would replace that corrector"):
        sample(model, VP, (4, 2), "langevin_pc", correction=LMCorrection(mode="code", kappa=0.3))
    with pytest.raises(ValueError, match="no LM hook"):
        sample(model, VP, (4, 2), "sde_dpm_solver++", correction=LMCorrection(mode="code", kappa=0.3),
               generator=torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match="empty batch"):
        sample(model, VP, (0, 2), "ddim")
    with pytest.raises(ValueError, match="order must be 1..2"):
        sample(model, VP, (4, 2), "sde_dpm_solver++", order=3)
    with pytest.raises(ValueError, match="start must be one of"):
        sample(model, VP, (4, 2), start="karras")
    with pytest.raises(ValueError, match="step_size must be one of"):
        LangevinCorrection(step_size="each")
    with pytest.raises(ValueError, match=r"NaN or Inf at t = 1 \(evaluation 1\)"):
        sample(lambda x, t: x / 0.0 * 0.0, VP, (4, 2), "unipc")


def test_registry_accepts_a_new_sampler_without_editing_sample():
    from sciml.diffusion.solvers import SAMPLER_REGISTRY, DDIM, register_sampler

    @register_sampler("test_ddim_twice")
    class Twice(DDIM):
        options = ()
        defaults = {"eta": 0.0}

    try:
        a = sample(MIX.eps_model(VP), VP, (8, 2), "test_ddim_twice", nfe=6, generator=torch.Generator().manual_seed(0))
        b = sample(MIX.eps_model(VP), VP, (8, 2), "ddim", nfe=6, generator=torch.Generator().manual_seed(0))
        torch.testing.assert_close(a.samples, b.samples, rtol=0, atol=0)
        with pytest.raises(ValueError, match="registered twice"):
            register_sampler("test_ddim_twice")(Twice)
    finally:
        del SAMPLER_REGISTRY["test_ddim_twice"]
