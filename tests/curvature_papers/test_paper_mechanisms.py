"""Fast checks of the pieces the four curvature-paper reproductions rest on (spec curvature.md B.1, B.2, B.3, B.5).

Every check compares against something independent: closed forms, a direct matrix recursion, dense float64
torch.func references, scipy, or the equality BatchNorm guarantees.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from experiments import curvature_common as cc
from experiments import curvature_wu_su_stability as wusu
from experiments.curvature_lla_landscape import SmallBNNet
from experiments.curvature_sagun_spectrum import exact_spectra, spectrum_stats
import sciml.curvature as cv


# ---- B.3: exact mean-square stability threshold ----------------------------------------------------------------
def test_threshold_full_batch_is_two_over_lambda_max(gen):
    g = wusu.random_instance(8, 5, gen)
    lam_max = float(torch.linalg.eigvalsh(g.mT @ g / 8)[-1])
    assert wusu.stability_threshold(g, 8) == pytest.approx(2 / lam_max, rel=1e-8)


@pytest.mark.parametrize("batch_size", [1, 2])
def test_threshold_orthogonal_gradients_closed_form(batch_size):
    # orthogonal g_i: sample i is hit with prob B/n and scaled by (1 - eta |g_i|^2 / B) -> eta* = 2B / max |g_i|^2
    norms2 = torch.tensor([0.5, 1.0, 2.0, 3.0], dtype=torch.float64)
    g = torch.diag(norms2.sqrt())
    assert wusu.stability_threshold(g, batch_size) == pytest.approx(2 * batch_size / 3.0, rel=1e-8)


def test_threshold_one_dimensional_closed_form(gen):
    # d = 1, B = 1: E[(1 - eta g^2)^2] <= 1  <=>  eta <= 2 E[g^2] / E[g^4]
    g = torch.randn(6, 1, generator=gen, dtype=torch.float64)
    expected = 2 * float((g ** 2).mean() / (g ** 4).mean())
    assert wusu.stability_threshold(g, 1) == pytest.approx(expected, rel=1e-8)


@pytest.mark.parametrize("batch_size", [1, 3])
def test_threshold_against_direct_second_moment_recursion(gen, batch_size):
    # iterate Sigma <- mean_S (I - eta H_S) Sigma (I - eta H_S) as matrices (no Kronecker product)
    g = wusu.random_instance(6, 4, gen)
    eta_star = wusu.stability_threshold(g, batch_size)
    A_base = wusu.batch_hessians(g, batch_size)
    growth = {}
    for factor in (0.97, 1.03):
        A = torch.eye(4, dtype=torch.float64) - factor * eta_star * A_base
        sigma = torch.eye(4, dtype=torch.float64)
        for _ in range(2000):                      # power iteration in the PSD cone (Krein-Rutman eigenvector)
            nxt = (A @ sigma @ A).mean(0)
            rate = float(nxt.trace() / sigma.trace())
            sigma = nxt / nxt.trace()
        growth[factor] = rate
    assert growth[0.97] < 1.0 < growth[1.03]


def test_sgd_headline_holds_on_random_instances(gen):
    for _ in range(5):
        g = wusu.random_instance(8, 5, gen)
        tr = float((g ** 2).sum() / 8)
        assert wusu.stability_threshold(g, 1) * tr <= 2.0 + 1e-9


# ---- B.1 / A: exact curvature through the toolkit vs our own dense torch.func references ------------------------
def test_toolkit_dense_hessian_and_ggn_match_torch_func(gen):
    X, y = cc.digits_classes(3, per_class=20)
    model = cc.mlp((64, 5, 3), seed=3)
    H_ref = cc.model_hessian(model, X, y)
    G_ref = cc.ggn_from_factors(cc.ggn_factors(model, X))
    G, H = (torch.linalg.eigvalsh(M) for M in (G_ref, H_ref))
    G_api, H_api = exact_spectra(model, X, y)
    assert torch.allclose(H_api, H, rtol=0, atol=1e-10 * float(H.abs().max()))
    assert torch.allclose(G_api, G, rtol=0, atol=1e-10 * float(G.abs().max()))


def test_linear_softmax_hessian_equals_ggn():
    X, y = cc.digits_classes(4, per_class=15)
    model = cc.mlp((64, 4), seed=0)
    H = cc.model_hessian(model, X, y)
    G = cc.ggn_from_factors(cc.ggn_factors(model, X))
    assert float((H - G).norm() / H.norm()) < 1e-10


@pytest.mark.parametrize("num_classes", [2, 4])
def test_outlier_count_at_init_is_c_minus_1(num_classes):
    X, y = cc.digits_classes(num_classes)
    model = cc.mlp((64, 12, num_classes), seed=0)
    G = torch.linalg.eigvalsh(cc.ggn_from_factors(cc.ggn_factors(model, X)))
    stats = spectrum_stats(G, num_classes)
    assert stats["gap"] == num_classes - 1
    # rank(G) <= N (C - 1): softmax removes one output direction per sample
    assert int((G > 1e-12 * G[-1]).sum()) <= len(X) * (num_classes - 1)


def test_gram_trick_equals_dense_batch_ggn(gen):
    X, y = cc.digits()
    X, y = X[:300], y[:300]
    model = cc.mlp((64, 4, 10), seed=1)          # P = 310
    A = cc.ggn_factors(model, X)
    J = cv.per_sample_jacobians(model, X)
    with torch.no_grad():
        Lam = cv.output_hessian_blocks(nn.CrossEntropyLoss(), "mean", model(X), y) * len(X)
    for B in (8, 200):                            # B C < P (Gram form) and B C > P (P x P form)
        S = torch.randperm(len(X), generator=gen)[:B]
        dense = float(torch.linalg.eigvalsh(cc.ggn_from_factors(A[S]))[-1])
        assert float(cv.ggn_gram_eigenvalues(J[S], Lam[S] / B).eigenvalues[0]) == pytest.approx(dense, rel=1e-10)
        assert cc.top_eigenvalue_gram(A[S]) == pytest.approx(dense, rel=1e-10)


# ---- B.5: SLQ variants and LLA's criteria ------------------------------------------------------------------------
def _spd_with_spectrum(eigs: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    Q, _ = torch.linalg.qr(torch.randn(len(eigs), len(eigs), generator=gen, dtype=torch.float64))
    return Q @ torch.diag(eigs) @ Q.mT


def test_slq_full_reorth_with_m_equal_n_recovers_spectrum(gen):
    eigs = torch.linspace(-1.0, 3.0, 40, dtype=torch.float64)
    A = _spd_with_spectrum(eigs, gen)
    q = cc.slq(lambda V: A @ V, 40, 40, 2, gen, reorth="full")
    assert torch.allclose(q.nodes[0], eigs, atol=1e-9)
    assert torch.allclose(q.weights.sum(1), torch.ones(2, dtype=torch.float64), atol=1e-12)


def test_lanczos_without_reorth_makes_ghosts_full_does_not(gen):
    eigs = torch.cat([torch.tensor([10.0], dtype=torch.float64), torch.linspace(0, 1, 299, dtype=torch.float64)])
    A = _spd_with_spectrum(eigs, gen)
    ghosts = {}
    for reorth in ("full", "none"):
        q = cc.slq(lambda V: A @ V, 300, 120, 1, torch.Generator().manual_seed(0), reorth=reorth)
        ghosts[reorth] = int(((q.nodes - 10.0).abs() < 1e-6).sum())
    assert ghosts["full"] == 1
    assert ghosts["none"] > 1


def _lla_criteria_numpy(nodes, weights, n=0.5):
    """LLA's hessian_criteria (src_lla/hessian/viz.py), transcribed to plain NumPy loops."""
    re, kh = [], []
    for eigs, w in zip(np.asarray(nodes), np.asarray(weights)):
        re.append(abs(eigs.min() / eigs.max()))
        pos = np.sum(np.power(eigs[eigs > 0] * w[eigs > 0], n))
        neg = np.sum(np.power(np.abs(eigs[eigs < 0] * w[eigs < 0]), n))
        kh.append(abs(neg / pos))
    return float(np.mean(re)), float(np.mean(kh))


def test_hessian_criteria_match_lla_formula(gen):
    nodes = torch.randn(3, 20, generator=gen, dtype=torch.float64)
    weights = torch.rand(3, 20, generator=gen, dtype=torch.float64)
    weights = weights / weights.sum(1, keepdim=True)
    ours = cc.hessian_criteria(nodes, weights)
    ref = _lla_criteria_numpy(nodes.numpy(), weights.numpy())
    assert ours == pytest.approx(ref, rel=1e-12)


def test_lla_trace_tolerance_check_fails_on_current_numpy():
    # LLA's tr_calc: prev_trace = np.zeros(0); done = abs(mean - prev)/(abs(prev) + c) < tol; `if done:` -> empty array
    prev_trace = np.zeros(0)
    done = abs(5.0 - prev_trace) / (abs(prev_trace) + 1e-6) < 1e-3
    assert done.size == 0
    if tuple(int(p) for p in np.__version__.split(".")[:2]) >= (2, 2):
        with pytest.raises(ValueError, match="ambiguous"):
            bool(done)


def test_spearman_matches_scipy(gen):
    scipy_stats = pytest.importorskip("scipy.stats")
    a, b = torch.randn(7, generator=gen, dtype=torch.float64), torch.randn(7, generator=gen, dtype=torch.float64)
    assert cc.spearman(a, b) == pytest.approx(float(scipy_stats.spearmanr(a.numpy(), b.numpy()).statistic), abs=1e-12)


def test_filter_normalised_plane_is_invariant_to_batchnorm_rescaling():
    X, y = cc.digits()
    X, y = X[:64], y[:64]
    planes = {}
    for norm in ("filter", "none"):
        for c in (1.0, 10.0):
            net = SmallBNNet(eps=1e-12, seed=0)
            with torch.no_grad():
                net[1].weight.mul_(c)
                net[1].bias.mul_(c)
            planes[norm, c] = cv.loss_landscape(net, nn.CrossEntropyLoss(), (X, y), directions=2, normalization=norm,
                                                steps=3, span=(-0.5, 0.5), generator=torch.Generator().manual_seed(7),
                                                mode="train").losses
    # ground truth: BN (eps ~ 0) makes the function invariant to the conv scale, filter norm. scales d with it
    assert float((planes["filter", 10.0] - planes["filter", 1.0]).abs().max()) <= 1e-8
    assert float((planes["none", 10.0] - planes["none", 1.0]).abs().max()) > 0.1
