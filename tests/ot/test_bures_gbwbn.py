"""Bures-Wasserstein geometry and GBWBN against closed forms, scipy's sqrtm, pyriemann and finite differences."""

import copy

import numpy as np
import pytest
import scipy.linalg
import torch

from sciml.core import Status
from sciml.ot.bures import (bw_barycenter, bw_distance, bw_exp, bw_geodesic, bw_inner, bw_log,
                            bw_riemannian_gradient, bw_tangent_isometry)
from sciml.ot.gbwbn import AIRMBatchNorm, BiMap, BuresWassersteinSGD, GBWBatchNorm, LogEig, ReEig

F64 = torch.float64


def spd(n, generator, cond=10.0, batch=()):
    """Random SPD matrices with eigenvalues log-spaced over [1, cond]."""
    A = torch.randn(*batch, n, n, generator=generator, dtype=F64)
    Q, _ = torch.linalg.qr(A)
    lam = torch.logspace(0, np.log10(cond), n, dtype=F64)
    return (Q * lam) @ Q.mT


def np_sqrtm(A):
    return np.real(scipy.linalg.sqrtm(A.numpy()))


@pytest.fixture
def g():
    return torch.Generator().manual_seed(0)


def test_distance_equals_scipy_sqrtm_formula_and_pyriemann(g):
    A, B = spd(6, g, 1e3), spd(6, g, 1e2)
    As = np_sqrtm(A)
    want = np.trace(A.numpy()) + np.trace(B.numpy()) - 2 * np.trace(np_sqrtm(torch.from_numpy(As @ B.numpy() @ As)))
    assert abs(float(bw_distance(A, B, squared=True)) - want) < 1e-12 * abs(want)
    pyriemann = pytest.importorskip("pyriemann.utils.distance")
    assert abs(float(bw_distance(A, B)) - pyriemann.distance_wasserstein(A.numpy(), B.numpy())) < 1e-12


def test_generalised_distance_congruence_equals_closed_form(g):
    A, B, M = spd(5, g), spd(5, g), spd(5, g, 30.0)
    Mi = np.linalg.inv(M.numpy())
    As = np_sqrtm(A)
    inner = torch.from_numpy(As @ Mi @ B.numpy() @ Mi @ As)
    want = np.trace(Mi @ A.numpy()) + np.trace(Mi @ B.numpy()) - 2 * np.trace(np_sqrtm((inner + inner.T) / 2))
    assert abs(float(bw_distance(A, B, M, squared=True)) - want) < 1e-12 * abs(want)
    assert abs(float(bw_distance(A, B, torch.eye(5, dtype=F64))) - float(bw_distance(A, B))) < 1e-13


def test_commuting_matrices_reduce_to_euclidean_square_roots(g):
    a, b = torch.rand(5, generator=g, dtype=F64) + 0.1, torch.rand(5, generator=g, dtype=F64) + 0.1
    d2 = float(bw_distance(torch.diag(a), torch.diag(b), squared=True))
    assert abs(d2 - float(((a.sqrt() - b.sqrt()) ** 2).sum())) < 1e-14
    X = torch.diag_embed(torch.rand(7, 5, generator=g, dtype=F64) + 0.1)
    res = bw_barycenter(X, tol=1e-13)
    assert res.status is Status.CONVERGED
    want = torch.diag(X.diagonal(dim1=-2, dim2=-1).sqrt().mean(0) ** 2)
    assert torch.allclose(res.mean, want, atol=1e-13)


def test_exp_inverts_log_and_the_metric_gives_the_distance(g):
    G, X = spd(6, g, 100.0), spd(6, g, 100.0)
    V = bw_log(G, X)
    assert torch.allclose(bw_exp(G, V), X, atol=1e-12 * float(X.abs().max()))
    assert abs(float(bw_inner(G, V, V)) - float(bw_distance(G, X, squared=True))) < 1e-10
    eye = torch.eye(6, dtype=F64)
    assert torch.allclose(bw_log(eye, X), 2 * torch.from_numpy(np_sqrtm(X)) - 2 * eye, atol=1e-12)
    assert torch.allclose(bw_inner(eye, V, V), torch.trace(V @ V) / 4, atol=1e-12)


def test_geodesic_endpoints_closed_form_and_constant_speed(g):
    A, B = spd(5, g, 50.0), spd(5, g, 50.0)
    assert torch.allclose(bw_geodesic(A, B, 0.0), A, atol=1e-12)
    assert torch.allclose(bw_geodesic(A, B, 1.0), B, atol=1e-11)
    t = 0.3
    As = np_sqrtm(A)
    AB = As @ np_sqrtm(torch.from_numpy(As @ B.numpy() @ As)) @ np.linalg.inv(As)  # (AB)^{1/2}
    want = (1 - t) ** 2 * A.numpy() + t ** 2 * B.numpy() + t * (1 - t) * (AB + AB.T)
    assert np.allclose(bw_geodesic(A, B, t).numpy(), want, atol=1e-11)
    d = float(bw_distance(A, B))
    assert abs(float(bw_distance(A, bw_geodesic(A, B, t))) - t * d) < 1e-9


def test_barycenter_matches_pyriemann_and_is_a_fixed_point(g):
    X = spd(4, g, 1e3, batch=(20,))
    res = bw_barycenter(X, tol=1e-12)
    assert res.status is Status.CONVERGED and res.residual <= 1e-12
    mean = pytest.importorskip("pyriemann.utils.mean")
    ref = mean.mean_wasserstein(X.numpy(), tol=1e-12, maxiter=500)
    assert np.allclose(res.mean.numpy(), ref, atol=1e-8 * np.abs(ref).max())
    one_step = bw_barycenter(X, max_iter=1, tol=1e-12, on_failure="ignore")
    assert one_step.status is Status.MAX_ITER and one_step.n_iter == 1


def test_tangent_isometry_preserves_the_metric_and_has_finite_gradients_at_identity(g):
    G, X = spd(5, g, 1e2), spd(5, g, 1e2)
    V = bw_log(G, X)
    eye = torch.eye(5, dtype=F64)
    TV = bw_tangent_isometry(G, V)
    assert abs(float(bw_inner(G, V, V)) - float(bw_inner(eye, TV, TV))) < 1e-10
    assert torch.allclose(bw_tangent_isometry(G, TV, inverse=True), V, atol=1e-11)
    S = (eye + 0.0).requires_grad_(True)
    bw_tangent_isometry(S, V, inverse=True).pow(2).sum().backward()
    assert torch.isfinite(S.grad).all()
    Gr, Vr = G.clone().requires_grad_(True), V.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda A, W: bw_tangent_isometry((A + A.mT) / 2, W), (Gr, Vr))


def _batch_with_unit_spread(g, n=4, N=16):
    # Brenier maps T_i = I + 0.2 E_i around the barycentre I (so that dispersion ~ 1 and no sample folds).
    E = torch.randn(N, n, n, generator=g, dtype=F64)
    T = torch.eye(n, dtype=F64) + 0.2 * (E + E.mT) / 2
    T = T - (T.mean(0) - torch.eye(n, dtype=F64))  # mean of the maps is I: I is the exact barycentre
    assert float(torch.linalg.eigvalsh(T).min()) > 0.05
    C = spd(n, g, 5.0)
    return torch.einsum("ij,njk,kl->nil", C, T @ T, C) / 2, C


@pytest.mark.parametrize("centering", ["isometry", "ot_map"])
def test_bn_output_has_barycenter_identity_and_unit_dispersion(g, centering):
    X, _ = _batch_with_unit_spread(g)
    bn = GBWBatchNorm(4, metric="identity", centering=centering, var_about="mean", barycenter_iters=200, eps=1e-12)
    Y = bn(X)
    assert bn.last_fold_fraction == 0.0  # the property holds exactly only where Exp_I inverts Log_I
    res = bw_barycenter(Y, tol=1e-9)
    assert torch.allclose(res.mean, torch.eye(4, dtype=F64), atol=1e-7)
    d2 = bw_distance(Y, torch.eye(4, dtype=F64), squared=True).mean()
    assert abs(float(d2) - 1.0) < 1e-7


def test_bn_gradients_finite_at_identity_bias_and_learned_metric(g):
    X, _ = _batch_with_unit_spread(g)
    for theta in (1.0, 0.5):
        for update, metric_param in (("exp", "metric_log"), ("bw", "metric_matrix")):
            bn = GBWBatchNorm(4, theta=theta, metric="learn", metric_update=update)
            out = bn(X.requires_grad_(True))
            out.pow(2).sum().backward()
            for p in (bn.bias, getattr(bn, metric_param), bn.shift, X):
                assert p.grad is not None and torch.isfinite(p.grad).all()


def test_exp_parametrised_metric_equals_the_bw_parametrised_one_at_the_same_matrix(g):
    # Same M two ways: M = expm(S) in the default parametrisation, M itself under metric_update="bw".
    X, _ = _batch_with_unit_spread(g)
    S = torch.randn(4, 4, generator=g, dtype=F64) * 0.3
    S = (S + S.mT) / 2
    exp_bn = GBWBatchNorm(4, theta=0.5, metric="learn", centering="ot_map", var_about="mean")
    bw_bn = GBWBatchNorm(4, theta=0.5, metric="learn", centering="ot_map", var_about="mean", metric_update="bw")
    with torch.no_grad():
        exp_bn.metric_log.copy_(S)
        bw_bn.metric_matrix.copy_(torch.linalg.matrix_exp(S))
    torch.testing.assert_close(exp_bn.metric_tensor(), bw_bn.metric_tensor(), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(exp_bn(X), bw_bn(X), rtol=1e-9, atol=1e-10)
    assert [id(p) for p in exp_bn.spd_parameters()] == [id(exp_bn.bias)]
    assert any(p is exp_bn.metric_log for p in exp_bn.euclidean_parameters())
    with pytest.raises(ValueError, match="metric_update"):
        GBWBatchNorm(4, metric_update="adam")


def test_learned_metric_stays_spd_and_bounded_over_a_training_run(g):
    # An SPDNet-style head (BN -> ReEig -> LogEig -> linear) on two classes that differ by an ill-conditioned
    # congruence; Adam on S = log M at a deliberately large lr. Under the released code's BW update of M itself,
    # lambda_min(M) drifted to the cone's boundary on digits (4 of 5 seeds); under M = expm(S) every step keeps
    # M SPD with log-eigenvalues moving at most ~lr per step, so M must stay well inside [1e-2, 1e2] here.
    n, N, steps, lr = 4, 48, 40, 5e-2
    A = torch.randn(2 * N, n, n, generator=g, dtype=F64)
    X = A @ A.mT / n + 1e-2 * torch.eye(n, dtype=F64)
    D = torch.diag(torch.logspace(0, 2, n, dtype=F64))
    X[:N] = D @ X[:N] @ D
    y = torch.cat([torch.zeros(N), torch.ones(N)]).long()
    bn = GBWBatchNorm(n, theta=0.5, metric="learn", var_about="mean")
    head = torch.nn.Linear(n * n, 2, dtype=F64)
    model = torch.nn.Sequential(bn, ReEig(1e-4), LogEig(), head)
    adam = torch.optim.Adam(bn.euclidean_parameters() + list(head.parameters()), lr=lr)
    rsgd = BuresWassersteinSGD(bn.spd_parameters(), lr=lr)
    losses, log_eigs = [], []
    for _ in range(steps):
        idx = torch.randint(0, 2 * N, (16,), generator=g)
        adam.zero_grad(), rsgd.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(X[idx]), y[idx])
        loss.backward()
        adam.step(), rsgd.step()
        losses.append(float(loss))
        eig = torch.linalg.eigvalsh(bn.metric_tensor())
        assert torch.isfinite(eig).all() and float(eig[0]) > 0
        log_eigs.append(eig.log())
    log_eigs = torch.stack(log_eigs)
    assert float(log_eigs.abs().max()) > 0.05          # M did move: the bound below is not vacuous
    assert float(log_eigs.abs().max()) < np.log(1e2)    # ... and stayed bounded
    assert np.mean(losses[-10:]) < np.mean(losses[:10])  # while the network learned


def test_bn_state_dict_round_trip_keeps_running_statistics(g):
    X, _ = _batch_with_unit_spread(g)
    bn = GBWBatchNorm(4, theta=0.5)
    for _ in range(3):
        bn(X)
    assert "running_mean" in bn.state_dict() and "running_var" in bn.state_dict()
    clone = GBWBatchNorm(4, theta=0.5)
    clone.load_state_dict(bn.state_dict())
    bn.eval(), clone.eval()
    assert torch.equal(bn(X), clone(X))
    assert torch.equal(copy.deepcopy(bn)(X), bn(X))


def test_running_mean_moves_along_the_geodesic(g):
    X, _ = _batch_with_unit_spread(g)
    bn = GBWBatchNorm(4, metric="identity", momentum=0.25, barycenter_iters=100)
    bn(X)
    G = bw_barycenter(X, tol=1e-12).mean
    assert torch.allclose(bn.running_mean, bw_geodesic(torch.eye(4, dtype=F64), G, 0.25), atol=1e-10)


def test_riemannian_sgd_keeps_spd_and_reaches_the_minimiser(g):
    target = spd(4, g, 20.0)
    W = torch.nn.Parameter(torch.eye(4, dtype=F64))
    opt = BuresWassersteinSGD([W], lr=0.25)
    for _ in range(60):
        opt.zero_grad()
        bw_distance(W, target, squared=True).backward()
        opt.step()
        assert float(torch.linalg.eigvalsh(W.detach()).min()) > 0
    assert float(bw_distance(W.detach(), target)) < 1e-8
    E = torch.randn(4, 4, generator=g, dtype=F64)
    xi = bw_riemannian_gradient(target, E)  # defining property: g_W(xi, V) = <sym E, V>
    V = torch.randn(4, 4, generator=g, dtype=F64)
    V = V + V.T
    assert abs(float(bw_inner(target, xi, V)) - float(((E + E.T) / 2 * V).sum())) < 1e-10


def test_spdnet_layers_and_airm_bn(g):
    X = spd(6, g, 100.0, batch=(8,))
    bimap = BiMap(6, 4, generator=g)
    assert torch.allclose(bimap.weight @ bimap.weight.T, torch.eye(4, dtype=F64), atol=1e-13)
    Y = ReEig(1e-1)(bimap(X))
    assert float(torch.linalg.eigvalsh(Y.detach()).min()) >= 1e-1 - 1e-12
    assert LogEig()(Y).shape == (8, 16)
    bn = AIRMBatchNorm(4, karcher_iters=50)
    Z = bn(Y)
    # AIRM-centred batch: the log-Euclidean mean of G^{-1/2} Y G^{-1/2} at the Karcher mean G is 0.
    from sciml.linalg import spd_logm
    assert float(spd_logm(Z).mean(0).abs().max()) < 1e-8


@pytest.mark.parametrize("kwargs, match", [
    (dict(theta=0.0), "theta"), (dict(theta=-0.5), "theta"), (dict(centering="transport"), "centering"),
    (dict(var_about="median"), "var_about"), (dict(barycenter_iters=0), "barycenter_iters"),
    (dict(metric="airm"), "metric"), (dict(momentum=1.5), "momentum"),
])
def test_bn_bad_options(kwargs, match):
    with pytest.raises(ValueError, match=match):
        GBWBatchNorm(4, **kwargs)


def test_bad_matrices_get_clear_errors(g):
    A = spd(3, g)
    nonsym = A + torch.triu(torch.ones(3, 3, dtype=F64), 1)
    with pytest.raises(ValueError, match="symmetric"):
        bw_distance(nonsym, A)
    with pytest.raises(ValueError, match="positive definite"):
        bw_log(A, -A)
    with pytest.raises(ValueError, match="NaN"):
        bw_distance(A, A * float("nan"))
    with pytest.raises(ValueError, match="same size"):
        bw_distance(A, spd(4, g))
    with pytest.raises(ValueError, match="weights"):
        bw_barycenter(torch.stack([A, A]), weights=torch.tensor([0.2, 0.2], dtype=F64))
    with pytest.raises(ValueError, match=">= 2 matrices"):
        GBWBatchNorm(3)(A[None])
