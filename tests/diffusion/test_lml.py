"""LM corrections: the kappa = 0 identity, the operator against a dense solve, the float32 cancellation, the
low-rank formulas against dense matrix functions, and the corrector oracles."""

from __future__ import annotations

import pytest
import torch

from sciml.diffusion import (
    ExactHessianCorrection,
    FlowSchedule,
    GaussianMixture,
    LMCorrection,
    VPSchedule,
    gmm_2d_8mode,
    lm_operator,
    lowrank_inv_sqrt,
    sample,
    woodbury_solve,
)
from sciml.diffusion.lowrank import lowrank_inv_trace
from sciml.linalg import inv_sqrtm_psd

MIX = gmm_2d_8mode()
VP = VPSchedule.continuous()
DDPM = VPSchedule.ddpm_linear()


@pytest.mark.parametrize("sampler,order,schedule", [("ddim", None, VP), ("dpm_solver", 3, DDPM),
                                                    ("dpm_solver++", 1, VP), ("dpm_solver++", 2, DDPM),
                                                    ("dpm_solver++", 3, VP), ("unipc", 3, DDPM), ("pndm", None, DDPM),
                                                    ("euler", None, VP), ("heun", None, DDPM),
                                                    ("flow_euler", None, FlowSchedule())])
def test_code_mode_with_kappa_zero_is_the_identity(sampler, order, schedule):
    lam = 8e-4
    x_init = torch.randn(64, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    base = sample(MIX.eps_model(schedule), schedule, x_init.shape, sampler, nfe=10, order=order, x_init=x_init)
    lm = sample(MIX.eps_model(schedule), schedule, x_init.shape, sampler, nfe=10, order=order, x_init=x_init,
                correction=LMCorrection(mode="code", lam=lam, kappa=0.0))
    torch.testing.assert_close(lm.samples, base.samples, rtol=0.0, atol=1e-12)
    assert lm.nfe == base.nfe


def test_kappa_positive_changes_samples_and_freeze_one_disables_it():
    x_init = torch.randn(64, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    run = lambda corr: sample(MIX.eps_model(DDPM), DDPM, x_init.shape, "ddim", nfe=10, x_init=x_init,
                              correction=corr).samples
    base = run(None)
    assert float((run(LMCorrection(lam=1.0, kappa=0.3)) - base).abs().max()) > 1e-3
    torch.testing.assert_close(run(LMCorrection(lam=1.0, kappa=0.3, freeze=1.0)), base, rtol=0, atol=0)


def test_operator_matches_dense_levenberg_marquardt_solve(gen):
    d = torch.randn(6, 3, 4, 4, dtype=torch.float64, generator=gen)
    prev = torch.randn(6, 3, 4, 4, dtype=torch.float64, generator=gen)
    lam, kappa = 0.7, 0.4
    out = lm_operator(d, prev, lam, kappa)
    D, P = d.reshape(6, -1), prev.reshape(6, -1)
    v = kappa * P + (1 - kappa) * D
    eye = torch.eye(D.shape[1], dtype=torch.float64)
    p = torch.linalg.solve(lam * eye + v[:, :, None] * v[:, None, :], lam * D[:, :, None])[:, :, 0]
    expected = p * D.norm(dim=1, keepdim=True) / p.norm(dim=1, keepdim=True)
    torch.testing.assert_close(out.reshape(6, -1), expected, rtol=1e-12, atol=1e-12)


def test_kappa_zero_formula_is_identity_up_to_the_cancellation_bound(gen):
    """Without the exact short-cut, the released formula returns d up to u (lam + |d|²) / lam per entry; in float32
    (the released code) that is visible noise, in float64 it is below 1e-9 here."""
    d = torch.randn(4, 3, 32, 32, generator=gen)                          # |d|² ~ 3072
    lam = 8e-4
    ratio = (lam + (d.reshape(4, -1) ** 2).sum(1)) / lam                    # ~ 4e6
    for dtype, u in ((torch.float32, 2.0**-24), (torch.float64, 2.0**-53)):
        x = d.to(dtype)
        out = lm_operator(x, x, lam, 0.5, compute_dtype=None)               # v = d, computed as in the repo
        rel = ((out - x).reshape(4, -1).norm(dim=1) / x.reshape(4, -1).norm(dim=1)).double()
        assert bool((rel < 10 * u * ratio).all()), (dtype, rel)
        if dtype == torch.float32:
            assert bool((rel > 0.01 * u * ratio).all())                    # the noise is really there
    exact = lm_operator(d.double(), None, lam, 0.0)
    assert torch.equal(exact, d.double())


def test_fp32_compat_mode_perturbs_sampler_output():
    x_init = torch.randn(64, 2, generator=torch.Generator().manual_seed(0))
    model = MIX.eps_model(DDPM)
    base = sample(model, DDPM, x_init.shape, "ddim", nfe=10, x_init=x_init, dtype=torch.float32).samples
    noisy = sample(model, DDPM, x_init.shape, "ddim", nfe=10, x_init=x_init,
                   correction=LMCorrection(lam=8e-4, compute_dtype="input", kappa=0.0)).samples
    exact = sample(model, DDPM, x_init.shape, "ddim", nfe=10, x_init=x_init,
                   correction=LMCorrection(lam=8e-4, kappa=0.0)).samples
    assert torch.equal(exact, base)
    # the released fp32 formula injects relative noise ~ u (lam + |eps|²) / lam ~ 1e-4 per step (|eps|² ~ 2)
    change = float((noisy - base).abs().max())
    assert 1e-6 < change < 0.1, change


@pytest.mark.parametrize("rank", [1, 2, 3])
def test_woodbury_and_inverse_sqrt_match_dense(rank, gen):
    U = torch.randn(5, 9, rank, dtype=torch.float64, generator=gen)
    g = torch.randn(5, 9, dtype=torch.float64, generator=gen)
    lam = torch.tensor([0.1, 1.0, 3.0, 0.02, 7.0], dtype=torch.float64)
    dense = lam[:, None, None] * torch.eye(9, dtype=torch.float64) + U @ U.transpose(1, 2)
    torch.testing.assert_close(woodbury_solve(U, lam, g), torch.linalg.solve(dense, g[:, :, None])[:, :, 0],
                               rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(lowrank_inv_sqrt(U, lam, g), (inv_sqrtm_psd(dense) @ g[:, :, None])[:, :, 0],
                               rtol=1e-10, atol=1e-10)
    if rank == 1:                                                          # the spec's rank-1 formula
        u = U[:, :, 0]
        nu2 = (u * u).sum(1, keepdim=True)
        c = (1 - torch.sqrt(lam[:, None] / (lam[:, None] + nu2))) / nu2
        rank1 = (g - c * u * (u * g).sum(1, keepdim=True)) / lam[:, None].sqrt()
        torch.testing.assert_close(lowrank_inv_sqrt(U, lam, g), rank1, rtol=1e-12, atol=1e-12)


def test_lowrank_inv_sqrt_with_dependent_columns(gen):
    u = torch.randn(3, 6, 1, dtype=torch.float64, generator=gen)
    U = torch.cat([u, 2 * u], dim=2)                                       # rank-deficient Gram matrix
    z = torch.randn(3, 6, dtype=torch.float64, generator=gen)
    dense = 0.5 * torch.eye(6, dtype=torch.float64) + U @ U.transpose(1, 2)
    torch.testing.assert_close(lowrank_inv_sqrt(U, 0.5, z), (inv_sqrtm_psd(dense) @ z[:, :, None])[:, :, 0],
                               rtol=1e-9, atol=1e-9)


def test_lm_langevin_counts_evaluations_and_keeps_history():
    corr = LMCorrection(mode="lm_langevin", lam=1.0, rank=2)
    out = sample(MIX.eps_model(VP), VP, (32, 2), "ddim", nfe=10, correction=corr,
                 generator=torch.Generator().manual_seed(0))
    assert out.nfe == 9 and bool(torch.isfinite(out.samples).all())
    state = corr.start()
    t = torch.tensor(0.5, dtype=torch.float64)
    x = torch.randn(8, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    corr.correct(x, t, MIX.eps_model(VP), VP, state, torch.Generator().manual_seed(2))
    corr.correct(x, t, MIX.eps_model(VP), VP, state, torch.Generator().manual_seed(2))
    assert len(state["history"]) == 1


def test_exact_hessian_corrector_samples_a_gaussian():
    """With one Gaussian the clipped exact Hessian is the constant S_t^{-1}: preconditioned Langevin from a wrong
    start must reach N(alpha mu, S_t) (mean and covariance within sampling error + ULA bias)."""
    cov = torch.tensor([[[0.05, 0.0], [0.0, 2.0]]], dtype=torch.float64)
    gauss = GaussianMixture(torch.ones(1), torch.tensor([[1.0, -1.0]], dtype=torch.float64), cov)
    t = torch.tensor(0.05, dtype=torch.float64)
    alpha, sigma = (float(v) for v in VP.alpha_sigma(t))
    corr = ExactHessianCorrection(gauss, lam=1e-3, snr=0.2, n_steps=40, step_rule="preconditioned")
    x = torch.randn(3000, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    x = corr.correct(x, t, gauss.eps_model(VP), VP, corr.start(), torch.Generator().manual_seed(1))
    S = alpha**2 * cov[0] + sigma**2 * torch.eye(2, dtype=torch.float64)
    torch.testing.assert_close(x.mean(0), alpha * gauss.means[0], rtol=0, atol=0.08)
    torch.testing.assert_close(torch.cov(x.T), S, rtol=0.15, atol=0.01)


def test_exact_hessian_needs_a_hessian():
    with pytest.raises(ValueError, match="hessian"):
        ExactHessianCorrection(model=lambda x, t: x)
    with pytest.raises(ValueError, match="step_rule must be one of"):
        LMCorrection(mode="lm_langevin", step_rule="snr2")


def test_lowrank_inverse_trace_matches_dense(gen):
    U = torch.randn(4, 7, 2, dtype=torch.float64, generator=gen)
    lam = torch.tensor([0.3, 1.0, 2.0, 5.0], dtype=torch.float64)
    dense = lam[:, None, None] * torch.eye(7, dtype=torch.float64) + U @ U.transpose(1, 2)
    torch.testing.assert_close(lowrank_inv_trace(U, lam), torch.linalg.inv(dense).diagonal(dim1=1, dim2=2).sum(1),
                               rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("step_rule", ["plain", "preconditioned"])
def test_lm_langevin_step_rules_run(step_rule):
    corr = LMCorrection(mode="lm_langevin", lam=1.0, rank=2, step_rule=step_rule)
    out = sample(MIX.eps_model(VP), VP, (64, 2), "ddim", nfe=7, correction=corr,
                 generator=torch.Generator().manual_seed(0))
    assert out.nfe == 7 and bool(torch.isfinite(out.samples).all())


@pytest.mark.parametrize("structure", ["isotropic", "multiplicative"])
def test_rounding_noise_control_matches_the_fp32_perturbation_size(structure, gen):
    from sciml.diffusion import RoundingNoiseControl, released_lm_correct

    d = torch.randn(6, 3, 8, 8, generator=gen)
    ctrl = RoundingNoiseControl(lam=8e-4, seed=1, structure=structure)
    out = ctrl.transform(d, "increment", 0.5, 1.0, ctrl.start())
    flat = d.reshape(6, -1)
    delta = (released_lm_correct(d, None, 8e-4, 0.0) - d).reshape(6, -1).norm(dim=1)
    # (d + e) renormalised to |d| with |e| = |delta|: |out| = |d| and <out, d> = |d| (|d|² + <e, d>) / |d + e|
    torch.testing.assert_close(out.reshape(6, -1).norm(dim=1), flat.norm(dim=1), rtol=1e-5, atol=0)
    cos = (out.reshape(6, -1) * flat).sum(1) / flat.norm(dim=1) ** 2
    # the component along d shrinks by about 1 / sqrt(1 + (|delta| / |d|)²) (the noise is nearly orthogonal to d)
    torch.testing.assert_close(cos, 1 / torch.sqrt(1 + (delta / flat.norm(dim=1)) ** 2), rtol=0, atol=0.05)
    assert float(delta.min()) > 0                                          # fp32 cancellation noise is there
    with pytest.raises(ValueError, match="structure"):
        RoundingNoiseControl(structure="gaussian")
