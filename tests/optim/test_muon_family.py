"""Muon vs torch.optim.Muon; NAMO / NAMO-D vs float64 hand computations; the noise-floor behaviour (spec 1.5a)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from sciml.optim import NAMO, NAMOD, Muon, WithAdamW, matrix_and_other_params


def _ns_float32(G, coefficients, steps, eps):
    """The quintic Newton-Schulz iteration written out in float32 (an independent oracle for the fp32 path)."""
    a, b, c = coefficients
    X = G.float()
    transposed = X.shape[0] > X.shape[1]
    if transposed:
        X = X.T
    X = X / X.norm().clamp(min=eps)
    for _ in range(steps):
        A = X @ X.T
        X = a * X + (b * A + c * A @ A) @ X
    return (X.T if transposed else X).to(G.dtype)


def _run(opt_factory, steps=4, seed=0):
    torch.manual_seed(seed)
    w = nn.Parameter(torch.randn(12, 7))
    x, y = torch.randn(40, 7), torch.randn(40, 12)
    opt = opt_factory([w])
    for _ in range(steps):
        opt.zero_grad()
        ((x @ w.T - y) ** 2).mean().backward()
        opt.step()
    return w.detach()


@pytest.mark.parametrize("adjust", [None, "match_rms_adamw"])
def test_muon_equals_torch_muon_in_float32_and_within_bf16_rounding(adjust, monkeypatch):
    peer = getattr(torch.optim, "Muon", None)
    if peer is None:
        pytest.skip("torch.optim.Muon needs torch >= 2.9")
    import torch.optim._muon as torch_muon

    ours_bf16 = _run(lambda p: Muon(p, lr=0.02, adjust_lr_fn=adjust))
    theirs_bf16 = _run(lambda p: peer(p, lr=0.02, adjust_lr_fn=adjust))
    assert float((ours_bf16 - theirs_bf16).abs().max()) < 0.02 * 4 * 0.02 * 2   # a bf16-rounding share of 4 steps
    monkeypatch.setattr(torch_muon, "_zeropower_via_newtonschulz", _ns_float32)
    ours = _run(lambda p: Muon(p, lr=0.02, adjust_lr_fn=adjust, ns_dtype=torch.float32))
    theirs = _run(lambda p: peer(p, lr=0.02, adjust_lr_fn=adjust))
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-6)


def _polar64(M):
    U, _, Vh = torch.linalg.svd(M.double(), full_matrices=False)
    return U @ Vh


def test_namo_and_namo_d_with_exact_polar_equal_a_float64_hand_computation():
    torch.manual_seed(0)
    W0 = torch.randn(6, 4, dtype=torch.float64)
    grads = [torch.randn(6, 4, dtype=torch.float64) for _ in range(3)]
    lr, mu1, mu2, eps, wd, sc, c = 0.05, 0.9, 0.99, 1e-8, 0.1, 0.2, 0.5
    for cls in (NAMO, NAMOD):
        w = nn.Parameter(W0.clone())
        opt = cls([w], lr=lr, momentum=mu1, mu2=mu2, eps=eps, weight_decay=wd, scale_coeff=sc, col_clamp=c,
                  orthogonalize="polar")
        W, M = W0.clone(), torch.zeros(6, 4, dtype=torch.float64)
        v = torch.zeros(4 if cls is NAMOD else (), dtype=torch.float64)
        for t, g in enumerate(grads, start=1):
            w.grad = g.clone()
            opt.step()
            M = mu1 * M + (1 - mu1) * g
            Mt = (1 - mu1) * g + mu1 * M
            O = _polar64(Mt)
            base = lr * math.sqrt(1 - mu2**t) / (1 - mu1**t)
            if cls is NAMO:
                v = mu2 * v + (1 - mu2) * (g * g).sum()
                alpha = base * Mt.norm() / (v.sqrt() + eps)
            else:
                v = mu2 * v + (1 - mu2) * (g * g).sum(0)
                d = Mt.norm(dim=0) / (v.sqrt() + eps)
                d = d.clamp(c * d.mean(), d.mean() / c)
                alpha = base * d
            W = W * (1 - wd * alpha.clamp(max=1)).clamp(min=0)
            W = W - O * (alpha * sc * math.sqrt(6)).clamp(max=1)
            # v is kept in float32 as the reference does, so agreement is to float32 precision
            torch.testing.assert_close(w.detach(), W, rtol=1e-6, atol=1e-7)


def test_namo_d_with_c_one_is_orthogonal_times_a_scalar():
    torch.manual_seed(1)
    w = nn.Parameter(torch.randn(8, 5, dtype=torch.float64))
    before = w.detach().clone()
    opt = NAMOD([w], lr=0.01, col_clamp=1.0, weight_decay=0.0, orthogonalize="polar")
    w.grad = torch.randn(8, 5, dtype=torch.float64)
    opt.step()
    step = before - w.detach()
    O = _polar64((1 - 0.95) * w.grad + 0.95 * (0.05 * w.grad))
    ratio = step / O
    torch.testing.assert_close(ratio, torch.full_like(ratio, float(ratio.mean())), rtol=1e-6, atol=0)


def test_noise_floor_muon_stalls_namo_adapts():
    """Spec 1.5a: constant lr 1e-2, 3000 steps, minibatch 32: excess loss Muon / NAMO >= 3 (spec ~5.5)."""
    gen = torch.Generator().manual_seed(0)
    X = torch.randn(4096, 64, generator=gen, dtype=torch.float64)
    W_star = torch.randn(64, 32, generator=gen, dtype=torch.float64) / 8
    Y = X @ W_star + 0.5 * torch.randn(4096, 32, generator=gen, dtype=torch.float64)
    best = torch.linalg.lstsq(X, Y).solution

    def loss(W):
        return 0.5 * ((X @ W - Y) ** 2).sum(1).mean()

    excess = {}
    for name, factory in (("muon", lambda p: Muon(p, lr=1e-2, weight_decay=0.0, adjust_lr_fn="match_rms_adamw",
                                                     orthogonalize="polar")),
                          ("namo", lambda p: NAMO(p, lr=1e-2, weight_decay=0.0, orthogonalize="polar"))):
        W = nn.Parameter(torch.zeros(64, 32, dtype=torch.float64))
        opt = factory([W])
        draws = torch.Generator().manual_seed(1)
        for _ in range(3000):
            idx = torch.randint(0, 4096, (32,), generator=draws)
            opt.zero_grad()
            (0.5 * ((X[idx] @ W - Y[idx]) ** 2).sum(1).mean()).backward()
            opt.step()
        excess[name] = float(loss(W.detach()) - loss(best))
    print("noise-floor excess losses", excess)
    assert excess["muon"] / excess["namo"] >= 3, excess


def test_routing_and_bad_input():
    model = nn.Sequential(nn.Embedding(10, 4), nn.Linear(4, 8), nn.LayerNorm(8), nn.Linear(8, 3))
    matrix, other = matrix_and_other_params(model, exclude=("0.",))
    assert [tuple(p.shape) for p in matrix] == [(8, 4), (3, 8)] and len(other) == 5   # embedding, LN, biases
    opt = WithAdamW(NAMO(matrix, lr=1e-2), other)
    assert opt.adamw.param_groups[0]["lr"] == 1e-2                       # same LR, as the reference
    with pytest.raises(ValueError, match="AdamW"):
        Muon([nn.Parameter(torch.ones(3))])
    with pytest.raises(ValueError, match="col_clamp"):
        NAMOD([nn.Parameter(torch.ones(3, 3))], col_clamp=0.0)
    with pytest.raises(ValueError, match="form"):
        NAMO([nn.Parameter(torch.ones(3, 3))], form="other")
    with pytest.raises(ValueError, match="adjust_lr_fn"):
        Muon([nn.Parameter(torch.ones(3, 3))], adjust_lr_fn="x")
