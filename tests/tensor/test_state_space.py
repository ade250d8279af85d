"""Matérn state-space GPs: SDE vs closed-form kernel, Kalman/RTS vs the dense GP posterior (float64)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.linalg
import scipy.special
import torch

from sciml.tensor.state_space import (
    dense_gp_posterior,
    discretize,
    fit_hyperparameters,
    gp_predict,
    gp_smoother,
    kalman_rts,
    log_evidence,
    log_evidence_grid,
    matern_kernel,
    matern_sde,
    stationary_cov,
)

KERNELS = ["matern12", "matern32", "matern52"]
NU = {"matern12": 0.5, "matern32": 1.5, "matern52": 2.5}


@pytest.mark.parametrize("kernel", KERNELS)
def test_sde_stationary_covariance_is_the_matern_kernel(kernel):
    sde = matern_sde(kernel, lengthscale=0.37, variance=1.7)
    # P∞ solves the Lyapunov equation F P + P Fᵀ + L Qc Lᵀ = 0 (scipy as the independent solver).
    F, L = sde.F.numpy(), sde.L.numpy()
    expected = scipy.linalg.solve_continuous_lyapunov(F, -sde.Qc * L @ L.T)
    np.testing.assert_allclose(sde.Pinf.numpy(), expected, rtol=1e-10, atol=1e-10)
    # Cov(u(t + Δ), u(t)) = H expm(F Δ) P∞ Hᵀ must equal the general Matérn formula
    # σ² 2^{1-ν}/Γ(ν) (√(2ν) Δ/ℓ)^ν K_ν(√(2ν) Δ/ℓ) (scipy's Bessel K_ν as the independent oracle).
    deltas = torch.tensor([0.0, 1e-3, 0.05, 0.2, 0.37, 0.9, 2.5], dtype=torch.float64)
    A, _ = discretize(sde, deltas, jitter=0.0)
    cov = (A @ sde.Pinf)[:, 0, 0]
    nu = NU[kernel]
    z = np.sqrt(2 * nu) * deltas.numpy()[1:] / 0.37
    bessel = 1.7 * 2 ** (1 - nu) / scipy.special.gamma(nu) * z**nu * scipy.special.kv(nu, z)
    ref = torch.from_numpy(np.concatenate([[1.7], bessel]))
    torch.testing.assert_close(cov, ref, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(matern_kernel(deltas, kernel, 0.37, 1.7), ref, rtol=1e-12, atol=1e-14)


def _dense_reference(x, precision, shift, kernel, ell, var):
    """(K⁻¹ ⊗ I + blockdiag Λ)⁻¹ with an explicit inverse of the Gram matrix: the textbook formula."""
    S, r = precision.shape[0], precision.shape[-1]
    K = matern_kernel(x[:, None] - x[None, :], kernel, ell, var)
    prior_prec = torch.kron(torch.linalg.inv(K).contiguous(), torch.eye(r, dtype=x.dtype))
    cov = torch.linalg.inv(prior_prec + torch.block_diag(*precision))
    mean = (cov @ shift.reshape(-1)).reshape(S, r)
    blocks = torch.stack([cov[i * r:(i + 1) * r, i * r:(i + 1) * r] for i in range(S)])
    return mean, blocks


@pytest.mark.parametrize("kernel", KERNELS)
def test_kalman_rts_equals_dense_gp_posterior(kernel, gen):
    # Irregular inputs, r = 2 coupled components, some positions without data (Λ = 0), one duplicate-free grid.
    S, r = 40, 2
    x = torch.sort(torch.rand(S, dtype=torch.float64, generator=gen))[0] * 3.0
    B = torch.randn(S, r, r, dtype=torch.float64, generator=gen)
    lam = B @ B.transpose(-1, -2)
    lam[::4] = 0.0
    eta = torch.randn(S, r, dtype=torch.float64, generator=gen)
    res = gp_smoother(x, lam, eta, kernel, lengthscale=0.3, variance=1.3, jitter=0.0)
    mean, cov = _dense_reference(x, lam, eta, kernel, 0.3, 1.3)  # cond(K) <~ 1e6 here
    torch.testing.assert_close(res.mean, mean, rtol=1e-8, atol=1e-8)
    torch.testing.assert_close(res.cov, cov, rtol=1e-8, atol=1e-8)
    dmean, dcov = dense_gp_posterior(x, lam, eta, kernel, 0.3, 1.3)
    torch.testing.assert_close(dmean, mean, rtol=1e-8, atol=1e-8)
    torch.testing.assert_close(dcov, cov, rtol=1e-8, atol=1e-8)


@pytest.mark.parametrize("kernel", KERNELS)
def test_smoother_is_gp_regression_with_noisy_observations(kernel, gen):
    # Scalar GP, y_j = u(x_j) + N(0, s²): posterior mean K (K + s² I)⁻¹ y, variance diag(K - K (K + s² I)⁻¹ K).
    S, noise = 30, 0.05
    x = torch.sort(torch.rand(S, dtype=torch.float64, generator=gen))[0]
    y = torch.sin(6 * x) + math.sqrt(noise) * torch.randn(S, dtype=torch.float64, generator=gen)
    lam = torch.full((S, 1, 1), 1.0 / noise, dtype=torch.float64)
    res = gp_smoother(x, lam, (y / noise)[:, None], kernel, lengthscale=0.3, jitter=0.0)
    K = matern_kernel(x[:, None] - x[None, :], kernel, 0.3, 1.0)
    Ky = K + noise * torch.eye(S, dtype=torch.float64)
    torch.testing.assert_close(res.mean[:, 0], K @ torch.linalg.solve(Ky, y), rtol=1e-8, atol=1e-9)
    torch.testing.assert_close(res.cov[:, 0, 0], torch.diagonal(K - K @ torch.linalg.solve(Ky, K)),
                               rtol=1e-8, atol=1e-9)


def test_batched_chains_match_one_by_one(gen):
    S, r, batch = 12, 2, 3
    x = torch.sort(torch.rand(S, dtype=torch.float64, generator=gen))[0]
    sde = matern_sde("matern32", 0.4)
    A, Q = discretize(sde, torch.diff(x), r)
    B = torch.randn(batch, S, r, r, dtype=torch.float64, generator=gen)
    lam, eta = B @ B.transpose(-1, -2), torch.randn(batch, S, r, dtype=torch.float64, generator=gen)
    together = kalman_rts(A, Q, stationary_cov(sde, r), lam, eta)
    for b in range(batch):
        alone = kalman_rts(A, Q, stationary_cov(sde, r), lam[b], eta[b])
        torch.testing.assert_close(together.mean[b], alone.mean, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(together.cov[b], alone.cov, rtol=1e-12, atol=1e-12)


def test_duplicate_coordinates_and_strong_data_stay_positive_definite(gen):
    # Δ = 0 (A = I, Q = jitter) and very informative messages: covariances must stay symmetric PSD.
    x = torch.tensor([0.0, 0.1, 0.1, 0.1 + 1e-9, 0.5, 0.5, 1.0], dtype=torch.float64)
    lam = torch.full((7, 1, 1), 1e8, dtype=torch.float64)
    res = gp_smoother(x, lam, torch.zeros(7, 1, dtype=torch.float64), "matern52", 0.1)
    evals = torch.linalg.eigvalsh(res.state_cov)
    assert bool((evals > -1e-12 * evals.abs().max()).all())
    assert bool(torch.isfinite(res.mean).all())


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="kernel"):
        matern_sde("matern72")
    with pytest.raises(ValueError, match="lengthscale"):
        matern_sde("matern32", lengthscale=0.0)
    with pytest.raises(ValueError, match="deltas"):
        discretize(matern_sde(), torch.tensor([0.1, -0.2], dtype=torch.float64))
    with pytest.raises(ValueError, match="coords"):
        gp_smoother(torch.zeros(3, dtype=torch.float64), torch.zeros(4, 1, 1, dtype=torch.float64),
                    torch.zeros(4, 1, dtype=torch.float64))


@pytest.mark.parametrize("kernel", KERNELS)
def test_parallel_scan_equals_sequential_smoother(kernel, gen):
    # Batched (leading dim 2), r = 3 coupled components, data gaps; the associative scan must reproduce the
    # sequential Kalman/RTS recursion to rounding.
    S, r = 257, 3
    x = torch.sort(torch.rand(S, dtype=torch.float64, generator=gen))[0] * 2.0
    B = torch.randn(2, S, r, r, dtype=torch.float64, generator=gen)
    lam = B @ B.transpose(-1, -2)
    lam[:, 5:40] = 0.0
    eta = torch.randn(2, S, r, dtype=torch.float64, generator=gen)
    seq = gp_smoother(x, lam, eta, kernel, 0.2, 0.7, method="sequential")
    par = gp_smoother(x, lam, eta, kernel, 0.2, 0.7, method="parallel")
    torch.testing.assert_close(par.mean, seq.mean, rtol=1e-10, atol=1e-11)
    torch.testing.assert_close(par.cov, seq.cov, rtol=1e-10, atol=1e-11)
    torch.testing.assert_close(par.state_cov, seq.state_cov, rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("kernel", ["matern12", "matern32"])
def test_transition_noise_accurate_for_tiny_gaps(kernel):
    # Closed forms (no cancellation): Matérn-1/2 Q = -σ² expm1(-2Δ/ℓ); Matérn-3/2 Q = P∞ - A P∞ Aᵀ expanded with
    # expm1 (entries of order Δ³, Δ², Δ). The old P∞ - A P∞ Aᵀ had no correct digit at Δ = 1e-6.
    ell, var = 0.3, 1.7
    deltas = torch.tensor([1e-9, 1e-6, 1e-4, 1e-2, 0.5, 3.0], dtype=torch.float64)
    _, Q = discretize(matern_sde(kernel, ell, var), deltas)
    if kernel == "matern12":
        ref = -var * torch.expm1(-2 * deltas / ell)
        torch.testing.assert_close(Q[:, 0, 0], ref, rtol=1e-12, atol=0)
    else:
        lam = math.sqrt(3.0) / ell
        x = lam * deltas
        e2 = torch.exp(-2 * x)
        # Q11 = σ²(1 - e^{-2x}(1 + 2x + 2x²)), Q22 = σ²λ²(1 - e^{-2x}(1 - 2x + 2x²)), Q12 = 2σ²λ x² e^{-2x}.
        q11 = var * (-torch.expm1(-2 * x) - e2 * (2 * x + 2 * x**2))
        q22 = var * lam**2 * (-torch.expm1(-2 * x) - e2 * (-2 * x + 2 * x**2))
        q12 = 2 * var * lam * x**2 * e2
        small = deltas <= 1e-4  # the closed form itself cancels in q11/q22 for larger x; compare where it is exact
        torch.testing.assert_close(Q[small, 0, 1], q12[small], rtol=1e-9, atol=0)
        torch.testing.assert_close(Q[:, 0, 1], q12, rtol=1e-9, atol=1e-15)
        assert bool((torch.linalg.eigvalsh(Q) > 0).all())
        torch.testing.assert_close(Q[~small, 1, 1], q22[~small], rtol=1e-9, atol=0)


@pytest.mark.parametrize("kernel", KERNELS)
def test_default_jitter_moves_the_mean_by_less_than_1e8(kernel, gen):
    # The spec's bound, at the DEFAULT settings, on raw (unrounded) coordinates with gaps down to 1e-7: the
    # smoother against the dense posterior K - K (I + ΛK)^{-1} Λ K, which has no jitter and no transition noise.
    S, r = 60, 2
    x = torch.sort(torch.rand(S, dtype=torch.float64, generator=gen))[0]
    x[1::3] = x[0::3][: x[1::3].shape[0]] + 1e-7 * torch.rand(x[1::3].shape[0], dtype=torch.float64, generator=gen)
    x = torch.sort(x)[0]
    B = torch.randn(S, r, r, dtype=torch.float64, generator=gen)
    lam = 0.5 * B @ B.transpose(-1, -2)
    eta = torch.randn(S, r, dtype=torch.float64, generator=gen)
    res = gp_smoother(x, lam, eta, kernel, lengthscale=0.3)
    dmean, dcov = dense_gp_posterior(x, lam, eta, kernel, 0.3)
    assert float((res.mean - dmean).abs().max()) < 1e-8
    assert float((res.cov - dcov).abs().max()) < 1e-8


@pytest.mark.parametrize("kernel", KERNELS)
def test_log_evidence_equals_gaussian_marginal_likelihood(kernel, gen):
    # Scalar messages Λ = 1/s², η = y/s² are Gaussian observations y ~ N(u, s²): the evidence is
    # log N(y; 0, K + s² I) + Σ_j [½ log(2π s²) + y_j²/(2 s²)] (the site normalisers); torch's MVN as the oracle.
    S, s2 = 40, 0.02
    x = torch.sort(torch.rand(S, dtype=torch.float64, generator=gen))[0]
    y = torch.sin(5 * x) + 0.1 * torch.randn(S, dtype=torch.float64, generator=gen)
    lam = torch.full((S, 1, 1), 1 / s2, dtype=torch.float64)
    for ell, var in ((0.15, 0.8), (0.6, 2.5)):
        K = matern_kernel(x[:, None] - x[None, :], kernel, ell, var) + s2 * torch.eye(S, dtype=torch.float64)
        ref = torch.distributions.MultivariateNormal(torch.zeros(S, dtype=torch.float64), K).log_prob(y)
        ref = ref + S * 0.5 * math.log(2 * math.pi * s2) + float((y**2).sum()) / (2 * s2)
        got = log_evidence(x, lam, (y / s2)[:, None], kernel, ell, var)
        assert abs(float(got) - float(ref)) < 1e-6 * abs(float(ref))
        batched = log_evidence_grid(x, lam, (y / s2)[:, None], kernel, torch.tensor([ell, 0.3], dtype=torch.float64),
                                    torch.tensor([var, 1.0], dtype=torch.float64))
        assert abs(float(batched[0]) - float(ref)) < 1e-6 * abs(float(ref))
    # Type-II ML moves towards the data-generating scale: better evidence than the start, finite values.
    ell, var, best = fit_hyperparameters(x, lam, (y / s2)[:, None], kernel, 0.05, 5.0)
    assert best > float(log_evidence(x, lam, (y / s2)[:, None], kernel, 0.05, 5.0)) and 0.05 < ell < 5


@pytest.mark.parametrize("kernel", KERNELS)
def test_closed_form_transitions_match_van_loan(kernel):
    # Independent oracle: scipy's expm of F Δ, and for Q Van Loan's block [[-F, L Qc Lᵀ], [0, Fᵀ]] Δ, whose
    # top-right block is A⁻¹ Q, where λΔ < 1 (beyond it e^{λΔ} in the block costs the reference its digits), and
    # P∞ - A P∞ Aᵀ beyond (no cancellation once Q is of the order of P∞).
    sde = matern_sde(kernel, 0.37, 1.7)
    F, L = sde.F.numpy(), sde.L.numpy()
    d = F.shape[0]
    deltas = torch.tensor([1e-3, 0.02, 0.1, 0.37, 1.0, 2.0], dtype=torch.float64)
    A, Q = discretize(sde, deltas)
    for j, delta in enumerate(deltas.tolist()):
        block = np.block([[-F, sde.Qc * L @ L.T], [np.zeros((d, d)), F.T]]) * delta
        E = scipy.linalg.expm(block)
        A_ref = scipy.linalg.expm(F * delta)
        np.testing.assert_allclose(A[j].numpy(), A_ref, rtol=1e-11, atol=1e-13)
        lam_delta = -np.trace(F) / d * delta
        Pinf = sde.Pinf.numpy()
        Q_ref = A_ref @ E[:d, d:] if lam_delta < 1 else Pinf - A_ref @ Pinf @ A_ref.T
        np.testing.assert_allclose(Q[j].numpy(), Q_ref, rtol=1e-8, atol=1e-13)


@pytest.mark.parametrize("kernel", KERNELS)
def test_gp_predict_equals_smoothing_the_union(kernel, gen):
    # Prediction from the training chain by GP bridges must equal the dense GP posterior over training and new
    # coordinates together (zero information at the new ones): points before, between, on and beyond the
    # training coordinates, for two hyperparameter pairs at once (a batch) and one by one.
    S, r = 15, 2
    x = torch.sort(torch.rand(S, dtype=torch.float64, generator=gen))[0]
    B = torch.randn(S, r, r, dtype=torch.float64, generator=gen)
    lam, eta = B @ B.transpose(-1, -2) + 0.1 * torch.eye(r, dtype=torch.float64), torch.randn(S, r, dtype=torch.float64,
                                                                                               generator=gen)
    points = torch.cat([torch.tensor([-0.4, x[0].item(), x[3].item(), x[-1].item(), 1.3], dtype=torch.float64),
                        torch.rand(20, dtype=torch.float64, generator=gen) * 1.4 - 0.2])
    ells, variances = torch.tensor([0.3, 0.8], dtype=torch.float64), torch.tensor([1.7, 0.6], dtype=torch.float64)
    batched = gp_predict(x, gp_smoother(x, lam, eta, kernel, ells, variances), points, kernel, ells, variances,
                         budget=64)                      # chunks of a few points: the chunking is exercised too
    for g in range(2):
        ell, var = float(ells[g]), float(variances[g])
        union, inverse = torch.unique(torch.cat([x, points]), sorted=True, return_inverse=True)
        prec = torch.zeros(union.shape[0], r, r, dtype=torch.float64)
        shift = torch.zeros(union.shape[0], r, dtype=torch.float64)
        prec[inverse[:S]], shift[inverse[:S]] = lam, eta
        mean, cov = _dense_reference(union, prec, shift, kernel, ell, var)
        mean, cov = mean[inverse[S:]], cov[inverse[S:]]
        for method in ("parallel", "sequential"):
            one = gp_predict(x, gp_smoother(x, lam, eta, kernel, ell, var, method=method), points, kernel, ell, var)
            torch.testing.assert_close(one[0], mean, rtol=1e-7, atol=1e-8)
            torch.testing.assert_close(one[1], cov, rtol=1e-7, atol=1e-8)
        torch.testing.assert_close(batched[0][g], mean, rtol=1e-7, atol=1e-8)
        torch.testing.assert_close(batched[1][g], cov, rtol=1e-7, atol=1e-8)
    with pytest.raises(ValueError, match="1-D of one length"):
        gp_smoother(x, lam, eta, kernel, ells, variances[:1])
    with pytest.raises(ValueError, match="positive"):
        gp_smoother(x, lam, eta, kernel, -ells, variances)
