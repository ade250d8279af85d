"""Estimators against exact spectra (spec curvature.md A.6 tests 3-6) and the Gram trick against the dense GGN."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from sciml.core import ConvergenceWarning, Status
from sciml.curvature import (GGNOperator, HessianOperator, batch_ggn_eigenvalues, bottom_eigenvalues,
                             hutchinson_diagonal, hutchinson_trace, hutchpp_trace, spectral_density, spectral_sum,
                             top_eigenvalues)
from sciml.linalg import DenseOperator

from .conftest import make_mlp


def test_hutchinson_trace_within_4_stderr_and_stderr_matches_formula(dense_hessian, gen):
    """Spec A.6 test 3: 2000 Rademacher probes; stderr vs sqrt(2 (||H||_F^2 - sum H_ii^2) / m) within 20 %."""
    m = 2000
    est = hutchinson_trace(DenseOperator(dense_hessian), m, gen)
    exact = float(torch.trace(dense_hessian))
    formula = math.sqrt(2 * float((dense_hessian ** 2).sum() - (torch.diagonal(dense_hessian) ** 2).sum()) / m)
    assert est.num_probes == m and est.status is Status.CONVERGED
    assert abs(est.mean - exact) <= 4 * est.stderr
    assert abs(est.stderr / formula - 1) <= 0.2


def test_hutchinson_on_operator_equals_dense_with_same_probes(tanh_mlp, digits, dense_hessian):
    op = HessianOperator(tanh_mlp, nn.CrossEntropyLoss(), digits)
    a = hutchinson_trace(op, 20, torch.Generator().manual_seed(5))
    b = hutchinson_trace(dense_hessian, 20, torch.Generator().manual_seed(5))
    assert abs(a.mean - b.mean) <= 1e-10 * abs(b.mean) and abs(a.stderr - b.stderr) <= 1e-10 * b.stderr


def test_hutchinson_stops_on_relative_stderr(dense_hessian, gen):
    est = hutchinson_trace(dense_hessian, 5000, gen, rtol=0.05, block_size=10)
    assert est.status is Status.CONVERGED and est.stderr <= 0.05 * abs(est.mean) and 10 <= est.num_probes < 5000
    with pytest.warns(ConvergenceWarning, match="hutchinson_trace"):
        short = hutchinson_trace(dense_hessian, 12, gen, rtol=1e-6)
    assert short.status is Status.MAX_ITER and short.num_probes == 12
    one = hutchinson_trace(dense_hessian, 1, gen)
    assert one.num_probes == 1 and one.stderr == math.inf


def test_hutchpp_within_4_stderr(dense_hessian, gen):
    est = hutchpp_trace(dense_hessian, 300, gen)
    assert abs(est.mean - float(torch.trace(dense_hessian))) <= 4 * est.stderr


def test_hutchinson_diagonal_within_stderr(dense_hessian, gen):
    """Each entry within 5 stderr (610 entries: a 5-sigma band keeps the family-wise false alarm < 1e-3)."""
    est = hutchinson_diagonal(dense_hessian, 2000, gen, block_size=500)
    var = (dense_hessian ** 2).sum(1) - torch.diagonal(dense_hessian) ** 2  # Rademacher per-probe variance
    exact_rows = var == 0  # rows of always-zero pixels: H_ij = 0 off the diagonal, so the estimate is exact
    assert torch.equal(est.mean[exact_rows], torch.diagonal(dense_hessian)[exact_rows])
    noisy = ~exact_rows
    z = (est.mean - torch.diagonal(dense_hessian))[noisy] / est.stderr[noisy]
    assert float(z.abs().max()) <= 5
    assert abs(float((est.stderr[noisy] / (var[noisy] / 2000).sqrt()).mean()) - 1) <= 0.2
    single = hutchinson_diagonal(dense_hessian, 1, gen)
    assert single.num_probes == 1 and bool(torch.isinf(single.stderr).all())


def test_top_and_bottom_eigenvalues_match_eigvalsh(tanh_mlp, digits, dense_hessian, gen):
    """Spec A.6 test 4: Lanczos top-3 (and bottom-3) vs eigvalsh to 1e-6 relative, run on the matrix-free operator."""
    exact = torch.linalg.eigvalsh(dense_hessian)
    op = HessianOperator(tanh_mlp, nn.CrossEntropyLoss(), digits)
    top = top_eigenvalues(op, 3, gen)
    assert top.status is Status.CONVERGED and top.method == "lanczos"
    assert torch.allclose(top.eigenvalues, exact[-3:].flip(0), rtol=1e-6, atol=0)
    # the eigenvectors are true eigenvectors: residuals recomputed here
    Y = top.eigenvectors
    assert float((dense_hessian @ Y - Y * top.eigenvalues).norm(dim=0).max()) <= 1e-6 * float(exact.abs().max())
    bottom = bottom_eigenvalues(op, 3, gen)
    assert bottom.status is Status.CONVERGED
    assert torch.allclose(bottom.eigenvalues, exact[:3], rtol=1e-6, atol=0)


def test_power_iteration_with_deflation_matches_top_magnitudes(dense_hessian, gen):
    exact = torch.linalg.eigvalsh(dense_hessian)
    by_magnitude = exact[exact.abs().argsort(descending=True)][:2]
    res = top_eigenvalues(dense_hessian, 2, gen, method="power", max_iter=5000, tol=1e-7)
    assert res.status is Status.CONVERGED and res.which == "magnitude"
    assert torch.allclose(res.eigenvalues, by_magnitude, rtol=1e-6, atol=0)


def test_power_iteration_returns_the_dominant_negative_eigenvalue(gen):
    """Spec A.6 test 6: power iteration finds the eigenvalue of largest MAGNITUDE; Lanczos 'largest' the algebraic."""
    Q = torch.linalg.qr(torch.randn(50, 50, generator=gen, dtype=torch.float64)).Q
    lam = torch.cat([torch.tensor([-5.0, 3.0], dtype=torch.float64), torch.linspace(-1, 1, 48, dtype=torch.float64)])
    A = Q @ torch.diag(lam) @ Q.T
    power = top_eigenvalues(A, 1, gen, method="power")
    assert abs(float(power.eigenvalues[0]) + 5.0) <= 1e-8
    lanczos = top_eigenvalues(A, 1, gen)
    assert abs(float(lanczos.eigenvalues[0]) - 3.0) <= 1e-8


def test_lanczos_finds_repeated_eigenvalues_and_restarts(gen):
    """A double top eigenvalue needs a restart past the invariant subspace; a small basis needs thick restarts."""
    lam = torch.cat([torch.tensor([5.0, 5.0], dtype=torch.float64), torch.linspace(0, 1, 298, dtype=torch.float64)])
    res = top_eigenvalues(torch.diag(lam), 2, gen)
    assert torch.allclose(res.eigenvalues, torch.tensor([5.0, 5.0], dtype=torch.float64), rtol=1e-10)
    clustered = torch.diag(torch.linspace(0, 1, 300, dtype=torch.float64))  # gaps 3e-3: slow, needs many restarts
    res = top_eigenvalues(clustered, 3, gen, num_iter=12, max_restarts=500)
    assert res.status is Status.CONVERGED and res.num_matvecs > 12
    assert torch.allclose(res.eigenvalues, torch.linspace(0, 1, 300, dtype=torch.float64)[-3:].flip(0), rtol=1e-6)


def test_slq_with_full_lanczos_recovers_every_eigenvalue(dense_hessian, gen):
    """Spec A.6 test 5: m = P gives the exact spectrum as nodes (weights sum to 1); a diagonal matrix gives
    Rademacher weights exactly 1/n."""
    exact = torch.linalg.eigvalsh(dense_hessian)
    P = dense_hessian.shape[0]
    res = spectral_density(dense_hessian, num_steps=P, num_probes=1, generator=gen)
    nodes = torch.sort(res.nodes[0]).values
    assert float((nodes - exact).abs().max()) <= 1e-8 * float(exact.abs().max())
    assert abs(float(res.weights.sum()) - 1) <= 1e-10
    lam = torch.linspace(-1, 2, 40, dtype=torch.float64)
    diag = spectral_density(torch.diag(lam), num_steps=40, num_probes=2, generator=gen)
    order = diag.nodes.argsort(1)
    assert torch.allclose(torch.gather(diag.nodes, 1, order), lam.expand(2, -1), atol=1e-12)
    assert torch.allclose(diag.weights, torch.full_like(diag.weights, 1 / 40), atol=1e-12)


def test_spectral_density_defaults_follow_pyhessian(dense_hessian, gen):
    res = spectral_density(dense_hessian, num_steps=40, num_probes=2, generator=gen)
    assert res.grid.shape == (10_000,)
    lo = float(res.nodes.amin(1).mean()) - 0.01
    hi = float(res.nodes.amax(1).mean()) + 0.01
    assert abs(float(res.grid[0]) - lo) <= 1e-12 and abs(float(res.grid[-1]) - hi) <= 1e-12
    assert abs(res.sigma2 - 1e-5 * max(1.0, hi - lo)) <= 1e-18
    assert abs(float(res.density.sum() * (res.grid[1] - res.grid[0])) - 1) <= 1e-10
    # SLQ is exact per probe for polynomials of degree < 2m, so tr(H^2) is unbiased: within 4 stderr of ||H||_F^2
    tr2 = spectral_sum(dense_hessian, lambda t: t ** 2, num_steps=20, num_probes=60, generator=gen)
    assert abs(tr2.mean - float((dense_hessian ** 2).sum())) <= 4 * tr2.stderr


def test_batch_ggn_gram_trick_equals_dense_ggn(digits, gen):
    X, y = digits
    model = make_mlp(8)
    for B in (16, 100):  # B * C < P and B * C > P (the other Gram form)
        batch = (X[:B], y[:B])
        exact = torch.linalg.eigvalsh(GGNOperator(model, nn.CrossEntropyLoss(), batch).to_dense())
        res = batch_ggn_eigenvalues(model, nn.CrossEntropyLoss(), batch, k=3)
        assert res.status is Status.CONVERGED
        assert torch.allclose(res.eigenvalues, exact[-3:].flip(0), rtol=1e-10, atol=0)
        assert float(res.residual_norms.max()) <= 1e-10 * float(exact[-1])
    mse = batch_ggn_eigenvalues(make_mlp(6, out=3), nn.MSELoss(), (X[:20], X[:20, :3]), k=2)
    dense = GGNOperator(make_mlp(6, out=3), nn.MSELoss(), (X[:20], X[:20, :3])).to_dense()
    assert torch.allclose(mse.eigenvalues, torch.linalg.eigvalsh(dense)[-2:].flip(0), rtol=1e-10)


def test_estimator_bad_inputs(dense_hessian, gen):
    P = dense_hessian.shape[0]
    with pytest.raises(ValueError, match="num_probes"):
        hutchinson_trace(dense_hessian, 0, gen)
    with pytest.raises(ValueError, match="num_probes"):
        hutchinson_diagonal(dense_hessian, 0, gen)
    with pytest.raises(ValueError, match="num_probes"):
        spectral_density(dense_hessian, 10, 0, gen)
    with pytest.raises(ValueError, match=r"k must be an int in \[1, P="):
        top_eigenvalues(dense_hessian, P + 1, gen)
    with pytest.raises(ValueError, match="k must be"):
        top_eigenvalues(dense_hessian, 0, gen)
    with pytest.raises(ValueError, match="method"):
        top_eigenvalues(dense_hessian, 1, gen, method="arnoldi")
    with pytest.raises(ValueError, match="MAGNITUDE"):
        top_eigenvalues(dense_hessian, 1, gen, method="power", which="smallest")
    with pytest.raises(ValueError, match="square"):
        hutchinson_trace(torch.zeros(3, 4, dtype=torch.float64), 5, gen)
