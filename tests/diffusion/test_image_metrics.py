"""KID against a naive unbiased-MMD loop, feature FID against scipy's sqrtm, the TinyUNet and the feature CNN."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.linalg
import torch

from sciml.diffusion import (
    FeatureScores,
    TinyUNet,
    VPSchedule,
    kernel_inception_distance,
    polynomial_mmd2,
    train_eps_model,
    train_feature_net,
)


def _naive_poly_mmd2(A: np.ndarray, B: np.ndarray) -> float:
    d = A.shape[1]
    k = lambda x, y: (float(x @ y) / d + 1.0) ** 3
    n, m = len(A), len(B)
    kaa = sum(k(A[i], A[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    kbb = sum(k(B[i], B[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    kab = sum(k(A[i], B[j]) for i in range(n) for j in range(m)) / (n * m)
    return kaa + kbb - 2 * kab


def test_polynomial_mmd2_matches_the_naive_unbiased_formula(gen):
    a = torch.randn(20, 4, dtype=torch.float64, generator=gen)
    b = torch.randn(15, 4, dtype=torch.float64, generator=gen) * 1.3 + 0.4
    assert abs(float(polynomial_mmd2(a, b)) - _naive_poly_mmd2(a.numpy(), b.numpy())) < 1e-12


def test_kid_with_one_full_subset_is_the_mmd_and_its_mean_is_unbiased(gen):
    a = torch.randn(12, 3, dtype=torch.float64, generator=gen)
    b = torch.randn(12, 3, dtype=torch.float64, generator=gen) + 0.5
    mean, std = kernel_inception_distance(a, b, subset_size=12, n_subsets=1, generator=torch.Generator().manual_seed(0))
    assert abs(mean - _naive_poly_mmd2(a.numpy(), b.numpy())) < 1e-12 and std == 0.0
    # same distribution: the unbiased estimate averages to ~0 (scale: its spread), a shifted one is clearly > 0
    x = torch.randn(2000, 8, dtype=torch.float64, generator=gen)
    y = torch.randn(2000, 8, dtype=torch.float64, generator=gen)
    same, spread = kernel_inception_distance(x, y, subset_size=200, n_subsets=40, generator=gen)
    shifted, _ = kernel_inception_distance(x, y + 0.5, subset_size=200, n_subsets=40, generator=gen)
    assert abs(same) < 3 * spread / np.sqrt(40) + 1e-3 and shifted > 20 * abs(same)


def test_feature_fid_equals_scipy_sqrtm_on_the_features(gen):
    net = torch.nn.Module()
    proj = torch.randn(16, 5, generator=gen)
    net.features = lambda x: torch.tanh(x.flatten(1) @ proj)
    ref = torch.randn(300, 1, 4, 4, generator=gen)
    fake = torch.randn(200, 1, 4, 4, generator=gen) * 0.8 + 0.2
    scores = FeatureScores(net, ref)
    fa, fb = net.features(fake).double().numpy(), net.features(ref).double().numpy()
    ca, cb = np.cov(fa.T), np.cov(fb.T)
    expected = (np.sum((fa.mean(0) - fb.mean(0)) ** 2) + np.trace(ca) + np.trace(cb)
                - 2 * np.trace(scipy.linalg.sqrtm(ca @ cb).real))
    assert abs(scores.fid(fake) - expected) < 1e-8
    assert abs(scores.fid(ref)) < 1e-8
    # KID on features divided by the reference's RMS feature value; one subset of all points = the naive formula
    small = FeatureScores(net, ref[:40])
    rms = np.sqrt(np.mean(fb[:40] ** 2))
    kid, _ = small.kid(fake[:40], subset_size=40, n_subsets=1, generator=torch.Generator().manual_seed(0))
    assert abs(kid - _naive_poly_mmd2(fa[:40] / rms, fb[:40] / rms)) < 1e-12


def test_feature_scores_refuse_nan_images(gen):
    net = torch.nn.Module()
    net.features = lambda x: x.flatten(1)
    scores = FeatureScores(net, torch.randn(10, 1, 2, 2, generator=gen))
    with pytest.raises(ValueError):
        scores.fid(torch.full((10, 1, 2, 2), float("nan")))


def test_tiny_unet_shapes_zero_init_and_errors(gen):
    net = TinyUNet(channels=2, base=8, generator=gen)
    assert 5_000 < sum(p.numel() for p in net.parameters()) < 30_000
    x = torch.randn(3, 2, 8, 8, dtype=torch.float64, generator=gen)
    out = net(x, torch.tensor([0.0, 500.0, 999.0]))
    assert out.shape == x.shape and out.dtype == torch.float64
    assert float(out.detach().abs().max()) == 0.0                     # DDPM's zero-initialised output conv
    with pytest.raises(ValueError, match="even H and W"):
        net(torch.randn(1, 2, 7, 8), torch.zeros(1))
    with pytest.raises(ValueError):
        TinyUNet(base=1)


def test_tiny_unet_learns_the_exact_eps_of_a_point_mass(gen):
    # data = one fixed image c: the exact noise prediction is eps*(x, t) = (x - alpha_t c) / sigma_t
    c = torch.linspace(-0.8, 0.8, 16).reshape(1, 1, 4, 4)
    net = TinyUNet(base=8, generator=torch.Generator().manual_seed(0))
    schedule = VPSchedule.ddpm_linear()
    res = train_eps_model(net, c.expand(64, 1, 4, 4).clone(), schedule, steps=80, batch_size=32, lr=5e-3,
                          generator=gen)
    t = torch.full((256,), 300.0)
    alpha, sigma = (float(v) for v in schedule.alpha_sigma(300.0))
    x = alpha * c + sigma * torch.randn(256, 1, 4, 4, generator=gen)
    exact = (x - alpha * c) / sigma
    with torch.no_grad():
        err = float((res.model(x, t) - exact).pow(2).mean())
    assert err < 0.1 * float(exact.pow(2).mean())            # predicting 0 would give the full |eps*|²


def test_feature_net_learns_separable_classes(gen):
    labels = torch.arange(200) % 2
    images = torch.randn(200, 1, 8, 8, generator=gen) * 0.5
    images[labels == 1, :, :4] += 1.5                       # class 1: bright top half
    res = train_feature_net(images, labels, steps=60, batch_size=64, generator=gen)
    assert res.holdout_accuracy > 0.95
    assert res.model.features(images[:3]).shape == (3, 64)
    with pytest.raises(ValueError):
        train_feature_net(images[:, 0], labels)


def test_cosine_lr_schedule_follows_its_closed_form(gen, monkeypatch):
    """With lr_schedule="cosine" the lr seen at step k is lr * (k + 1) / w during a w-step warm-up, then
    lr * (1 + cos(pi (k - w) / (n - w))) / 2: recorded from the optimiser through a hook on ``step``."""
    c = torch.zeros(8, 1, 4, 4)
    net = TinyUNet(base=4, generator=torch.Generator().manual_seed(0))
    seen: list[float] = []
    original = torch.optim.Adam.step

    def recording_step(self, *args, **kwargs):
        seen.append(self.param_groups[0]["lr"])
        return original(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.Adam, "step", recording_step)
    train_eps_model(net, c, VPSchedule.ddpm_linear(), steps=12, batch_size=4, lr=1e-2, generator=gen,
                    lr_schedule="cosine", warmup=2)
    expected = [1e-2 * (k + 1) / 2 for k in range(2)] + [
        1e-2 * 0.5 * (1 + math.cos(math.pi * (k - 2) / 10)) for k in range(2, 12)]
    assert seen == pytest.approx(expected, rel=1e-12, abs=1e-15)
    with pytest.raises(ValueError, match="lr_schedule"):
        train_eps_model(net, c, VPSchedule.ddpm_linear(), steps=4, lr_schedule="linear")
    with pytest.raises(ValueError, match="warmup"):
        train_eps_model(net, c, VPSchedule.ddpm_linear(), steps=4, warmup=4)
