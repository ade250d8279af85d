"""Tests for sciml.linalg.krylov: CG, Lanczos, power iteration and SLQ against dense torch.linalg oracles."""

from __future__ import annotations

import pytest
import torch

from sciml.core import ConvergenceWarning, Status
from sciml.linalg.krylov import conjugate_gradient, lanczos, power_iteration, slq_density
from sciml.linalg.operator import DenseOperator

F64 = torch.float64


def make_gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def spd(n: int, eigenvalues: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """``Q diag(eigenvalues) Q^T`` with a random orthogonal Q (condition number = max/min eigenvalue)."""
    Q = torch.linalg.qr(torch.randn(n, n, generator=gen, dtype=F64)).Q
    A = (Q * eigenvalues) @ Q.T
    return (A + A.T) / 2


# ---- conjugate gradient ----------------------------------------------------------------------------------------
def test_cg_matches_dense_solve_single_and_batched():
    gen = make_gen(0)
    A = spd(60, torch.logspace(0, 3, 60, dtype=F64), gen)  # cond = 1e3
    b = torch.randn(60, generator=gen, dtype=F64)
    B = torch.randn(60, 4, generator=gen, dtype=F64)
    single = conjugate_gradient(A, b)
    batched = conjugate_gradient(DenseOperator(A), B)
    assert single.converged and batched.converged and single.method == "cg"
    assert single.x.shape == (60,) and batched.x.shape == (60, 4)
    # rtol 1e-10 on the residual bounds the relative error by cond * 1e-10 = 1e-7
    torch.testing.assert_close(single.x, torch.linalg.solve(A, b), rtol=1e-7, atol=1e-7)
    torch.testing.assert_close(batched.x, torch.linalg.solve(A, B), rtol=1e-7, atol=1e-7)
    assert single.history[0] == pytest.approx(1.0) and len(single.history) == single.n_iter + 1
    assert single.history[-1] <= 1e-10


def test_cg_batched_columns_match_individual_solves_and_zero_column():
    gen = make_gen(1)
    A = spd(30, torch.linspace(1, 50, 30, dtype=F64), gen)
    B = torch.randn(30, 3, generator=gen, dtype=F64)
    B[:, 1] = 0.0  # a zero right-hand side is converged from the start and must stay exactly zero
    batched = conjugate_gradient(A, B)
    for j in (0, 2):
        torch.testing.assert_close(batched.x[:, j], conjugate_gradient(A, B[:, j]).x, rtol=1e-9, atol=1e-9)
    assert torch.equal(batched.x[:, 1], torch.zeros(30, dtype=F64))


def test_cg_callable_operator_and_initial_guess():
    gen = make_gen(2)
    A = spd(40, torch.logspace(0, 2, 40, dtype=F64), gen)
    b = torch.randn(40, generator=gen, dtype=F64)
    exact = torch.linalg.solve(A, b)
    res = conjugate_gradient(lambda X: A @ X, b, n=40)
    torch.testing.assert_close(res.x, exact, rtol=1e-8, atol=1e-8)
    warm = conjugate_gradient(A, b, x0=exact + 1e-3 * torch.randn(40, generator=gen, dtype=F64))
    assert warm.converged and warm.n_iter < res.n_iter
    torch.testing.assert_close(warm.x, exact, rtol=1e-8, atol=1e-8)


def test_cg_jacobi_preconditioner_needs_fewer_iterations_on_badly_scaled_matrix():
    gen = make_gen(3)
    n = 80
    S = spd(n, torch.linspace(1, 10, n, dtype=F64), gen)  # well conditioned core
    d = torch.logspace(0, 2, n, dtype=F64)
    A = d[:, None] * S * d[None, :]  # badly scaled by a diagonal (cond ~ 1e4 * 10)
    b = torch.randn(n, generator=gen, dtype=F64)
    inv_diag = 1.0 / torch.diagonal(A)
    plain = conjugate_gradient(A, b)
    jacobi = conjugate_gradient(A, b, preconditioner=lambda R: inv_diag[:, None] * R)
    assert plain.converged and jacobi.converged
    assert jacobi.n_iter < plain.n_iter / 2
    torch.testing.assert_close(jacobi.x, torch.linalg.solve(A, b), rtol=1e-6, atol=1e-8)


def test_cg_max_iter_warns_and_raise_on_request():
    gen = make_gen(4)
    A = spd(50, torch.logspace(0, 3, 50, dtype=F64), gen)
    b = torch.randn(50, generator=gen, dtype=F64)
    with pytest.warns(ConvergenceWarning, match="max_iter"):
        res = conjugate_gradient(A, b, max_iter=3)
    assert res.status is Status.MAX_ITER and res.n_iter == 3 and len(res.history) == 4
    with pytest.raises(RuntimeError, match="conjugate_gradient"):
        conjugate_gradient(A, b, max_iter=3, on_failure="raise")


def test_cg_breakdown_on_indefinite_operator():
    A = -torch.eye(10, dtype=F64)  # negative definite: p^T A p < 0 at the first step
    b = torch.ones(10, dtype=F64)
    with pytest.warns(ConvergenceWarning, match="breakdown"):
        res = conjugate_gradient(A, b)
    assert res.status is Status.BREAKDOWN


def test_cg_rejects_bad_inputs():
    A = torch.eye(5, dtype=F64)
    with pytest.raises(ValueError, match="square"):
        conjugate_gradient(torch.ones(5, 4, dtype=F64), torch.ones(5, dtype=F64))
    with pytest.raises(ValueError, match="NaN"):
        conjugate_gradient(A, torch.tensor([1.0, float("nan"), 0, 0, 0], dtype=F64))
    with pytest.raises(ValueError, match="shape"):
        conjugate_gradient(A, torch.ones(4, dtype=F64))
    with pytest.raises(ValueError, match="shape"):
        conjugate_gradient(A, torch.ones(5, 2, 2, dtype=F64))
    with pytest.raises(ValueError, match="x0"):
        conjugate_gradient(A, torch.ones(5, dtype=F64), x0=torch.ones(5, 1, dtype=F64))
    with pytest.raises(ValueError, match="n="):
        conjugate_gradient(lambda X: X, torch.ones(5, dtype=F64))


# ---- Lanczos ---------------------------------------------------------------------------------------------------
def test_lanczos_full_length_top10_on_300x300_matches_eigh():
    gen = make_gen(5)
    A = spd(300, torch.rand(300, generator=gen, dtype=F64) * 10 + 1, gen)
    evals, evecs = torch.linalg.eigh(A)
    res = lanczos(A, k=10, num_iter=300, generator=gen)
    assert res.status is Status.CONVERGED and res.eigenvectors.shape == (300, 10)
    torch.testing.assert_close(res.eigenvalues, evals[-10:], rtol=1e-8, atol=0.0)
    # eigenvectors agree up to sign: |<y_i, u_i>| = 1
    overlap = (res.eigenvectors * evecs[:, -10:]).sum(0).abs()
    torch.testing.assert_close(overlap, torch.ones(10, dtype=F64), rtol=0.0, atol=1e-6)


@pytest.mark.parametrize("which", ["largest", "smallest", "both"])
def test_lanczos_extreme_eigenpairs_with_gap(which):
    gen = make_gen(6)
    n, k = 200, 4
    # outliers at both ends, bulk in [1, 2]: the regime of a neural-net Hessian spectrum
    ev = torch.cat([torch.tensor([-8.0, -6.0, -5.0, -4.0], dtype=F64), 1 + torch.rand(n - 8, generator=gen, dtype=F64),
                    torch.tensor([4.0, 5.0, 6.0, 8.0], dtype=F64)])
    A = spd(n, ev, gen)
    true = torch.linalg.eigvalsh(A)
    expected = {"largest": true[-k:], "smallest": true[:k], "both": torch.cat([true[:2], true[-2:]])}[which]
    res = lanczos(DenseOperator(A), k=k, which=which, generator=gen)
    assert res.status is Status.CONVERGED
    torch.testing.assert_close(res.eigenvalues, expected, rtol=1e-10, atol=1e-10)
    # Ritz pairs satisfy A y = theta y to the reported residuals
    R = A @ res.eigenvectors - res.eigenvectors * res.eigenvalues
    assert bool((R.norm(dim=0) <= 1e-6 * 8).all())
    assert res.alpha.shape == (res.num_iter,) and res.beta.shape == (res.num_iter - 1,)


def test_lanczos_restarts_on_breakdown_and_finds_repeated_eigenvalues():
    A = torch.diag(torch.tensor([5.0, 5.0] + [1.0] * 48, dtype=F64))
    res = lanczos(A, k=2, num_iter=4, generator=make_gen(7))
    # one Krylov space sees the eigenvalue 5 once; the breakdown restart finds its second copy
    assert (res.beta == 0).any()
    torch.testing.assert_close(res.eigenvalues, torch.tensor([5.0, 5.0], dtype=F64), rtol=1e-12, atol=1e-12)
    assert res.status is Status.CONVERGED


def test_lanczos_on_callable_low_rank_operator():
    gen = make_gen(8)
    U = torch.randn(50, 3, generator=gen, dtype=F64)
    A = U @ U.T  # rank 3: the Krylov space becomes invariant after 4 steps
    res = lanczos(lambda X: U @ (U.T @ X), n=50, k=4, num_iter=12, generator=gen)
    torch.testing.assert_close(res.eigenvalues, torch.linalg.eigvalsh(A)[-4:], rtol=1e-10, atol=1e-10)


def test_lanczos_short_run_warns():
    gen = make_gen(9)
    A = spd(100, torch.linspace(1, 2, 100, dtype=F64), gen)  # no gap: 12 steps cannot resolve the top 10
    with pytest.warns(ConvergenceWarning, match="num_iter"):
        res = lanczos(A, k=10, num_iter=12, generator=gen)
    assert res.status is Status.MAX_ITER


def test_lanczos_rejects_bad_inputs():
    A = torch.eye(6, dtype=F64)
    with pytest.raises(ValueError, match="square"):
        lanczos(torch.ones(6, 5, dtype=F64), k=2)
    with pytest.raises(ValueError, match="k must"):
        lanczos(A, k=7)
    with pytest.raises(ValueError, match="num_iter"):
        lanczos(A, k=3, num_iter=2)
    with pytest.raises(ValueError, match="which"):
        lanczos(A, k=2, which="top")
    with pytest.raises(ValueError, match="v0"):
        lanczos(A, k=2, v0=torch.ones(5, dtype=F64))


# ---- power iteration -------------------------------------------------------------------------------------------
def test_power_iteration_matches_eigh():
    gen = make_gen(10)
    ev = torch.cat([torch.rand(59, generator=gen, dtype=F64), torch.tensor([3.0], dtype=F64)])
    A = spd(60, ev, gen)  # |lambda_2 / lambda_1| <= 1/3
    evals, evecs = torch.linalg.eigh(A)
    res = power_iteration(A, generator=gen)
    assert res.status is Status.CONVERGED
    assert res.eigenvalue == pytest.approx(float(evals[-1]), rel=1e-12)
    torch.testing.assert_close(abs(float(res.eigenvector @ evecs[:, -1])), 1.0, rtol=0.0, atol=1e-9)


def test_power_iteration_returns_dominant_negative_eigenvalue_and_warns_on_budget():
    gen = make_gen(11)
    ev = torch.cat([torch.linspace(0, 1, 39, dtype=F64), torch.tensor([-4.0], dtype=F64)])
    A = spd(40, ev, gen)
    res = power_iteration(lambda X: A @ X, n=40, generator=gen)
    assert res.eigenvalue == pytest.approx(-4.0, rel=1e-12)
    with pytest.warns(ConvergenceWarning):
        short = power_iteration(A, max_iter=2, generator=gen)
    assert short.status is Status.MAX_ITER and short.n_iter == 2


# ---- stochastic Lanczos quadrature -----------------------------------------------------------------------------
def test_slq_expectation_and_density():
    gen = make_gen(12)
    n = 120
    A = spd(n, torch.linspace(-1, 5, n, dtype=F64) ** 2, gen)
    res = slq_density(A, num_probes=20, num_iter=30, generator=gen)
    assert res.nodes.shape == (20, 30) and res.weights.shape == (20, 30)
    torch.testing.assert_close(res.weights.sum(1), torch.ones(20, dtype=F64), rtol=0.0, atol=1e-12)
    est = res.expectation(lambda x: x)
    assert est.num_probes == 20 and est.stderr > 0
    assert abs(est.mean - float(torch.trace(A)) / n) < 4 * est.stderr
    # the smoothed density is a probability density on its default grid
    integral = float(torch.trapezoid(res.density, res.grid))
    assert integral == pytest.approx(1.0, abs=1e-3)
    assert bool((res.density >= 0).all())


def test_slq_full_length_reproduces_spectrum_and_spectral_sums():
    gen = make_gen(13)
    n = 40
    ev = torch.linspace(1, 4, n, dtype=F64)
    A = spd(n, ev, gen)
    res = slq_density(A, num_probes=3, num_iter=n, generator=gen, grid=200, sigma=0.05)
    # with m = n every probe's nodes are all the eigenvalues (distinct) and log-det is exact per probe
    torch.testing.assert_close(res.nodes, ev.expand(3, n), rtol=1e-9, atol=1e-9)
    assert res.grid.shape == (200,) and res.sigma == 0.05
    logdet = res.expectation(torch.log)
    assert abs(logdet.mean * n - float(torch.log(ev).sum())) < 4 * logdet.stderr * n + 1e-9


def test_slq_rejects_bad_inputs():
    with pytest.raises(ValueError, match="square"):
        slq_density(torch.ones(4, 3, dtype=F64))
    with pytest.raises(ValueError, match="num_probes"):
        slq_density(torch.eye(4, dtype=F64), num_probes=0)
    with pytest.raises(ValueError, match="sigma"):
        slq_density(torch.eye(4, dtype=F64), sigma=-1.0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_krylov_routines_run_on_cuda():
    gen = torch.Generator(device="cuda").manual_seed(0)
    A = spd(50, torch.logspace(0, 2, 50, dtype=F64), make_gen(14)).cuda()
    b = torch.randn(50, 2, generator=gen, dtype=F64, device="cuda")
    res = conjugate_gradient(A, b)
    assert res.x.device.type == "cuda"
    torch.testing.assert_close(res.x, torch.linalg.solve(A, b), rtol=1e-8, atol=1e-8)
    eig = lanczos(A, k=3, num_iter=50, generator=gen)
    torch.testing.assert_close(eig.eigenvalues, torch.linalg.eigvalsh(A)[-3:], rtol=1e-10, atol=0.0)
    dens = slq_density(A, num_probes=4, num_iter=20, generator=gen, grid=100)
    assert dens.density.device.type == "cuda"
    with pytest.raises(ValueError, match="generator"):
        lanczos(A, k=3, generator=make_gen(0))
