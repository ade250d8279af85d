"""PTD: shipped defaults meet the spec's bounds, backward error, dense-kernel ground truth, solver, bad inputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sciml.ssm import hippo_legs, ptd, ptd_init, shipped_state_sizes


def test_shipped_defaults_cover_powers_of_two():
    assert set(shipped_state_sizes()) >= {2, 4, 8, 16, 32, 64, 128}


@pytest.mark.parametrize("N", [4, 8, 16, 32, 64, pytest.param(128, marks=pytest.mark.slow)])
def test_shipped_ptd_bounds(N):
    A, _ = hippo_legs(N)
    res = ptd(A)
    assert res.source == "shipped"
    # Independent check of A + E = V diag(lambda) V^{-1} (res.backward_error is the same quantity, recomputed).
    M = (A + res.perturbation).to(torch.complex128)
    recon = res.eigenvectors @ torch.diag(res.eigenvalues) @ torch.linalg.inv(res.eigenvectors)
    assert float(torch.linalg.matrix_norm(M - recon, 2) / torch.linalg.matrix_norm(M, 2)) < 1e-12
    assert res.backward_error < 1e-12 and res.n_reflected == 0
    assert res.condition_number <= 10.0                                     # spec target kappa(V~) <= 10
    assert res.perturbation_norm == pytest.approx(float(torch.linalg.matrix_norm(res.perturbation, 2)))
    if N >= 8:
        assert 0.03 <= res.relative_perturbation <= 0.1                     # spec target band
    assert float(res.eigenvalues.real.max()) < 0
    assert torch.is_floating_point(res.perturbation)                        # real E: conjugate pairs kept
    if N >= 32:
        assert res.unperturbed_condition > 1e15                            # while eig(A_H) itself explodes


def _dense_kernel(A, B, C, dt, L):
    """K_l = C expm(dt A)^l Bbar, Bbar from the augmented exponential (ZOH), all dense float64."""
    N = A.shape[0]
    aug = torch.zeros(N + 1, N + 1, dtype=torch.float64)
    aug[:N, :N], aug[:N, N] = dt * A, dt * B
    Ex = torch.linalg.matrix_exp(aug)
    Abar, Bbar = Ex[:N, :N], Ex[:N, N]
    out, x = [], Bbar
    for _ in range(L):
        out.append(C @ x)
        x = Abar @ x
    return torch.stack(out)


def _diag_kernel(lam, Bt, Ct, dt, L, scale=1.0):
    Lbar = torch.exp(dt * lam)
    W = Ct * Bt * (Lbar - 1) / lam
    return scale * (W[None, :] * Lbar[None, :] ** torch.arange(L, dtype=torch.float64)[:, None]).sum(-1).real


def test_ptd_kernel_equals_dense_kernel_of_perturbed_matrix(gen):
    N, dt, L = 32, 0.01, 500
    A, B = hippo_legs(N)
    C = torch.randn(N, dtype=torch.float64, generator=gen)
    res = ptd(A)
    K_dense = _dense_kernel(A + res.perturbation, B, C, dt, L)
    init = ptd_init(N, conj_sym=True)                      # half the modes, 2 Re
    K_diag = _diag_kernel(init.eigenvalues, init.B, C.to(torch.complex128) @ init.eigenvectors, dt, L, 2.0)
    rel = float(torch.linalg.norm(K_diag - K_dense) / torch.linalg.norm(K_dense))
    assert rel < 1e-11                                     # spec: 1.5e-14 with the authors' matrix
    # Regression guard: "simplifying" back to numpy's eig of A_H itself gives garbage (spec: 1.5e4).
    lam, V = np.linalg.eig(A.numpy())
    lam, V = torch.from_numpy(lam).to(torch.complex128), torch.from_numpy(V).to(torch.complex128)
    K_bad = _diag_kernel(lam, torch.linalg.solve(V, B.to(torch.complex128)), C.to(torch.complex128) @ V, dt, L)
    K_exact = _dense_kernel(A, B, C, dt, L)
    assert float(torch.linalg.norm(K_bad - K_exact) / torch.linalg.norm(K_exact)) > 1.0


def test_solver_on_the_fly_reaches_targets():
    A, _ = hippo_legs(10)                                   # not shipped: solved here
    res = ptd(A, gamma=20.0, steps=200, fidelity_steps=40, generator=torch.Generator().manual_seed(0))
    assert res.source == "solved" and res.status.label == "converged"
    assert res.condition_number <= 10 and res.relative_perturbation <= 0.15 and res.backward_error < 1e-12
    assert res.unperturbed_condition > 1e6 and float(res.eigenvalues.real.max()) < 0


def test_solver_warns_when_target_missed():
    from sciml.core import ConvergenceWarning
    A, _ = hippo_legs(16)
    with pytest.warns(ConvergenceWarning, match="cond"):
        res = ptd(A, gamma=20.0, steps=0, fidelity_weight=0.0, generator=torch.Generator().manual_seed(0))
    assert res.status.label == "max_iter"


@pytest.mark.parametrize("bad,match", [({"gamma": 0.0}, "gamma"), ({"gamma": -1.0}, "gamma"),
                                       ({"gamma": float("nan")}, "gamma"), ({"steps": -1}, "steps")])
def test_bad_arguments(bad, match):
    A, _ = hippo_legs(4)
    with pytest.raises(ValueError, match=match):
        ptd(A, **bad)


def test_bad_matrices():
    with pytest.raises(ValueError, match="square"):
        ptd(torch.zeros(3, 4, dtype=torch.float64))
    A, _ = hippo_legs(4)
    A[0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        ptd(A)
    with pytest.raises(ValueError, match="even"):
        ptd_init(5)


def _relative_sup_deviation(res, N, n=400):
    """sup_w |G_PTD - G_H| / sup_w |G_H| with C = ones/sqrt(N), B = B_H, dense solves (independent of ptd's own
    diagnostics), on a log grid, omega = 0 and the eigenfrequencies."""
    from sciml.ssm import transfer_function
    A, B = hippo_legs(N)
    C = torch.ones(N, dtype=torch.float64) / N ** 0.5
    w = torch.cat([torch.zeros(1, dtype=torch.float64), torch.logspace(-3, np.log10(10 * N * N), n, dtype=torch.float64),
                   res.eigenvalues.imag.abs()])
    G_H = transfer_function(A, B, C, 1j * w)
    G_P = transfer_function(A + res.perturbation, B, C, 1j * w)       # dense A + E: also checks the eigenpairs below
    lam, V, Vinv = res.eigenvalues, res.eigenvectors, res.eigenvectors_inv
    G_D = transfer_function(lam, Vinv @ B.to(torch.complex128), C.to(torch.complex128) @ V, 1j * w)
    torch.testing.assert_close(G_D, G_P, rtol=1e-9, atol=1e-9 * float(G_H.abs().max()))
    return float((G_P - G_H).abs().max() / G_H.abs().max()), float(G_P[0].real), float(G_H[0].real)


@pytest.mark.parametrize("N", [32, 64, 128])
def test_shipped_ptd_keeps_the_hippo_transfer_function(N):
    res = ptd(hippo_legs(N)[0])
    dev, dc, dc_ref = _relative_sup_deviation(res, N)
    assert res.condition_number <= 10
    # ptd's own diagnostic uses a 5x finer grid: it may only find a larger sup, and not much larger
    assert 0.999 * dev <= res.transfer_deviation <= 1.1 * dev
    assert max(dev, res.transfer_deviation) <= 0.15     # issue 15: sup|G_PTD - G_H| <= 0.15 sup|G_H| at N = 64, 128
    assert abs(dc - dc_ref) <= 0.15 * dc_ref             # DC gain kept (stage 1 alone: 0.029 vs 0.088 at N = 128)
    # at least as close as the authors' shipped matrices (measured with experiments/ssm_authors_matrices.py:
    # ptbHiPPO32 0.062, S4-PTD ptb.mat (N = 64) 0.059); N = 128: ours 0.108 vs their 0.128 (one flipped eigenvalue)
    authors = {32: 0.062, 64: 0.059, 128: 0.128}[N]
    assert max(dev, res.transfer_deviation) <= authors


def test_fidelity_stage_reduces_transfer_deviation():
    A, _ = hippo_legs(10)
    g = torch.Generator
    plain = ptd(A, gamma=20.0, steps=300, fidelity_weight=0.0, generator=g().manual_seed(0), on_failure="ignore")
    kept = ptd(A, gamma=20.0, steps=0, initial_perturbation=plain.perturbation, fidelity_steps=100,
               on_failure="ignore")
    assert kept.transfer_deviation < 0.5 * plain.transfer_deviation
    assert kept.condition_number <= 10 and kept.n_reflected == 0


def test_float32_hippo_loads_the_shipped_default_and_other_sizes_are_cached():
    A32, _ = hippo_legs(16, dtype=torch.float32)
    res = ptd(A32)
    assert res.source == "shipped" and res.perturbation.dtype == torch.float64
    torch.testing.assert_close(res.perturbation, ptd(hippo_legs(16)[0]).perturbation, rtol=0, atol=0)
    A6, _ = hippo_legs(6)
    first = ptd(A6, gamma=20.0, steps=100, fidelity_steps=20, on_failure="ignore")
    second = ptd(A6.float(), gamma=20.0, steps=100, fidelity_steps=20, on_failure="ignore")
    assert first.source == "solved" and second.source == "solved (cached)"
    torch.testing.assert_close(first.perturbation, second.perturbation, rtol=0, atol=0)
