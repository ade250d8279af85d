"""AdaHessian, Sophia and M-FAC against closed forms, dense float64 solves and their peer packages; one shared
battery (state_dict resume, p.grad untouched, bad input) driven by ``OPTIMIZERS``."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from sciml.optim import MFAC, OPTIMIZERS, AdaHessian, SophiaG, SophiaH, sample_labels, spatial_average


def _quadratic(a, x):
    return 0.5 * (a * x * x).sum()


# ---------------------------------------------------------------------------------------------------- AdaHessian
def test_adahessian_one_newton_step_on_a_diagonal_quadratic():
    """|Hz| = a exactly for every z; with b1 = 0, k = 1, eps = 0, lr = 1 one step lands at the minimiser."""
    a = torch.logspace(-2, 2, 10, dtype=torch.float64)
    x = nn.Parameter(torch.ones(10, dtype=torch.float64))
    opt = AdaHessian([x], lr=1.0, betas=(0.0, 0.999), eps=0.0, generator=torch.Generator().manual_seed(0))
    _quadratic(a, x).backward(create_graph=True)
    opt.step()
    assert float(x.detach().abs().max()) <= 1e-12


def test_adahessian_follows_the_scalar_recursion():
    a = torch.logspace(-2, 2, 10, dtype=torch.float64)
    x = nn.Parameter(torch.ones(10, dtype=torch.float64))
    lr, (b1, b2), eps = 0.1, (0.9, 0.999), 1e-4
    opt = AdaHessian([x], lr=lr, betas=(b1, b2), eps=eps, generator=torch.Generator().manual_seed(0))
    ref, m = torch.ones(10, dtype=torch.float64), torch.zeros(10, dtype=torch.float64)
    for t in range(1, 21):
        opt.zero_grad()
        _quadratic(a, x).backward(create_graph=True)
        opt.step()
        m = b1 * m + (1 - b1) * a * ref                   # v_hat = a^2 exactly (the diagonal is exact)
        ref = ref - lr * (m / (1 - b1**t)) / (a + eps)
        torch.testing.assert_close(x.detach(), ref, rtol=1e-12, atol=1e-14)


def _small_cnn(dtype=torch.float64):
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.Tanh(), nn.Flatten(), nn.Linear(3 * 36, 4)).to(dtype)


def _batch(dtype=torch.float64, n=16):
    g = torch.Generator().manual_seed(1)
    return torch.randn(n, 1, 6, 6, generator=g, dtype=dtype), torch.randint(0, 4, (n,), generator=g)


@pytest.mark.parametrize("power", [1.0, 0.5])
def test_adahessian_equals_torch_optimizer_with_the_same_probe(power):
    torch_optimizer = pytest.importorskip("torch_optimizer")
    ours, peer = _small_cnn(), _small_cnn()
    x, y = _batch()
    opt = AdaHessian(ours.parameters(), lr=0.1, hessian_power=power, weight_decay=1e-3)
    peer_opt = torch_optimizer.Adahessian(peer.parameters(), lr=0.1, hessian_power=power, weight_decay=1e-3)
    for step in range(3):
        for model, o in ((ours, opt), (peer, peer_opt)):
            o.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward(create_graph=True)
        torch.manual_seed(100 + step)                    # the peer draws with the global generator
        probes = [2 * torch.randint_like(p, high=2) - 1 for p in ours.parameters()]
        opt.step(probes=probes)
        torch.manual_seed(100 + step)
        peer_opt.step()
        for p, q in zip(ours.parameters(), peer.parameters()):
            torch.testing.assert_close(p.detach(), q.detach(), rtol=1e-12, atol=1e-14)


def test_conv_denominators_are_constant_per_kernel_and_blocks_average():
    d = torch.rand(2, 3, 3, 3, dtype=torch.float64)
    s = spatial_average(d, None)
    assert torch.all(s == s[..., :1, :1]) and torch.allclose(s[..., 0, 0], d.mean(dim=(2, 3)))
    b = spatial_average(torch.arange(10.0), 4)
    torch.testing.assert_close(b, torch.tensor([1.5] * 4 + [5.5] * 4 + [8.5] * 2))


# ---------------------------------------------------------------------------------------------------- Sophia
def test_sophia_paper_regimes_and_the_nonpositive_curvature_guard():
    """Exact h = a: |m| < gamma a gives the Newton-like lr m/(gamma a); otherwise lr sign(m); h <= 0 -> lr sign(m)."""
    a = torch.tensor([1.0, 1e-3, 0.0, -2.0], dtype=torch.float64)
    x = nn.Parameter(torch.tensor([0.5, 0.5, 0.5, 0.5], dtype=torch.float64))
    opt = SophiaG([x], lr=0.1, betas=(0.0, 0.0), weight_decay=0.0, convention="paper", gamma=1.0)
    opt.state[x]["step"], opt.state[x]["exp_avg"], opt.state[x]["hessian"] = 0, torch.zeros_like(x), a.clone()
    x.grad = torch.tensor([0.2, 0.2, 0.2, 0.2], dtype=torch.float64)   # m = g (b1 = 0)
    before = x.detach().clone()
    opt.step(bs=1)
    expected = torch.tensor([0.1 * 0.2 / 1.0, 0.1, 0.1, 0.1], dtype=torch.float64)
    torch.testing.assert_close(before - x.detach(), expected, rtol=1e-14, atol=0)


def test_sophia_code_convention_guard_and_sign_step_before_any_hessian():
    x = nn.Parameter(torch.tensor([1.0, -1.0], dtype=torch.float64))
    opt = SophiaG([x], lr=0.1, weight_decay=0.0)
    x.grad = torch.tensor([3.0, -0.5], dtype=torch.float64)
    opt.step(bs=8)
    torch.testing.assert_close(x.detach(), torch.tensor([0.9, -0.9], dtype=torch.float64))   # lr sign(m)
    opt.state[x]["hessian"] = torch.tensor([-1.0, -1.0], dtype=torch.float64)
    opt.step(bs=8)                                       # negative h: still the bounded sign step
    torch.testing.assert_close(x.detach(), torch.tensor([0.8, -0.8], dtype=torch.float64))


def test_sophia_g_equals_sophia_opt_on_a_shared_run():
    sophia_opt = pytest.importorskip("sophia_opt")
    ours, peer = _small_cnn(), _small_cnn()
    x, y = _batch()
    opt = SophiaG(ours.parameters(), lr=1e-2, rho=0.05, weight_decay=0.1)
    peer_opt = sophia_opt.SophiaG(peer.parameters(), lr=1e-2, rho=0.05, weight_decay=0.1)
    for step in range(12):
        for model, o in ((ours, opt), (peer, peer_opt)):
            o.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            o.step(bs=16)
            if step % 5 == 4:                            # Hessian update with labels sampled from the model
                o.zero_grad()
                labels = sample_labels(model(x), torch.Generator().manual_seed(step))
                nn.functional.cross_entropy(model(x), labels).backward()
                o.update_hessian()
        for p, q in zip(ours.parameters(), peer.parameters()):
            torch.testing.assert_close(p.detach(), q.detach(), rtol=1e-12, atol=1e-14)


def test_gnb_estimator_matches_the_exact_ggn_diagonal():
    """Mean of 2000 GNB draws B g_hat^2 vs diag(J^T Lambda J)/N from per-sample Jacobians (spec: rel. 0.039)."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.tensor(d.data[:256] / 16.0)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 16), nn.Tanh(), nn.Linear(16, 10)).double()
    params = dict(model.named_parameters())
    logits = model(x)
    probs = torch.softmax(logits, -1).detach()

    def out(p, xi):
        return torch.func.functional_call(model, p, (xi[None],))[0]

    jac = torch.func.vmap(torch.func.jacrev(out), in_dims=(None, 0))(params, x)            # per sample, per param
    jac = torch.cat([j.reshape(len(x), 10, -1) for j in jac.values()], dim=2)               # (N, 10, P)
    lam = torch.diag_embed(probs) - probs[:, :, None] * probs[:, None, :]                    # (N, 10, 10)
    exact = torch.einsum("ncp,ncd,ndp->p", jac, lam, jac) / len(x)
    gen = torch.Generator().manual_seed(0)
    total = torch.zeros_like(exact)
    for _ in range(2000):
        labels = sample_labels(logits, gen)
        grads = torch.autograd.grad(nn.functional.cross_entropy(logits, labels), list(params.values()),
                                    retain_graph=True)
        g = torch.cat([gr.reshape(-1) for gr in grads])
        total += len(x) * g * g
    assert float((total / 2000 - exact).norm() / exact.norm()) < 0.08


def test_sophia_h_refreshes_on_schedule_and_needs_a_graph():
    x = nn.Parameter(torch.ones(3, dtype=torch.float64))
    opt = SophiaH([x], lr=0.1, update_interval=3, generator=torch.Generator().manual_seed(0))
    dues = []
    for _ in range(6):
        dues.append(opt.hessian_due)
        opt.zero_grad()
        (x * x).sum().backward(create_graph=opt.hessian_due)
        opt.step()
    assert dues == [True, False, False, True, False, False]
    opt.zero_grad()
    (x * x).sum().backward()
    opt._steps = 0
    with pytest.raises(ValueError, match="create_graph=True"):
        opt.step()


# ---------------------------------------------------------------------------------------------------- M-FAC
def test_mfac_steps_equal_the_dense_solve_on_the_last_m_gradients():
    torch.manual_seed(0)
    w = nn.Parameter(torch.randn(12, dtype=torch.float64))
    A = torch.randn(30, 12, dtype=torch.float64)
    m, damp, lr = 4, 1e-2, 0.05
    opt = MFAC([w], lr=lr, ngrads=m, damp=damp)
    history = []
    for t in range(1, 11):                               # wraps the window twice
        opt.zero_grad()
        ((A @ w).sin().pow(2).sum()).backward()
        g = w.grad.detach().clone()
        history.append(g)
        before = w.detach().clone()
        opt.step()
        window = torch.stack(history[-m:])
        window = torch.cat([window, torch.zeros(m - len(window), 12, dtype=torch.float64)])
        dense = torch.linalg.solve(damp * torch.eye(12, dtype=torch.float64) + window.T @ window / m, g)
        if t == 1:
            torch.testing.assert_close(before - w.detach(), lr * m * g / (damp * m + g @ g), rtol=1e-12, atol=0)
        assert float(((before - w.detach()) - lr * dense).norm() / (lr * dense).norm()) < 1e-10


# ---------------------------------------------------------------------------------------------------- shared battery
MATRIX_ONLY = {"muon", "namo", "namo_d", "auon", "hybrid_auon"}


def _params(name, model):
    """Matrix optimizers get the >= 2-D weights (their 1-D tensors go to AdamW in real use)."""
    return [p for p in model.parameters() if p.dim() >= 2] if name in MATRIX_ONLY else list(model.parameters())


def _loss_and_backward(model, x, y, graph):
    loss = nn.functional.cross_entropy(model(x), y)
    loss.backward(create_graph=graph)
    return loss


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_state_dict_round_trip_resumes_bit_identically(name):
    cls, graph, kwargs = OPTIMIZERS[name]
    x, y = _batch()
    model = _small_cnn()
    extra = {"generator": torch.Generator().manual_seed(0)} if name in ("adahessian", "sophia_h") else {}
    opt = cls(_params(name, model), **kwargs, **extra)
    for _ in range(3):
        opt.zero_grad()
        _loss_and_backward(model, x, y, graph)
        opt.step()
    saved_model, saved_state = copy.deepcopy(model.state_dict()), copy.deepcopy(opt.state_dict())
    runs = []
    for _ in range(2):
        model.load_state_dict(saved_model)
        extra = {"generator": torch.Generator().manual_seed(123)} if extra else {}   # state must override this
        opt = cls(_params(name, model), **kwargs, **extra)
        opt.load_state_dict(copy.deepcopy(saved_state))   # torch shares loaded tensors; copy per run
        for _ in range(3):
            opt.zero_grad()
            _loss_and_backward(model, x, y, graph)
            opt.step()
        runs.append([p.detach().clone() for p in model.parameters()])
    for a, b in zip(*runs):
        assert torch.equal(a, b)


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_grad_untouched_and_state_follows_the_parameter_dtype(name):
    cls, graph, kwargs = OPTIMIZERS[name]
    x, y = _batch(torch.float32)
    model = _small_cnn(torch.float32)
    opt = cls(_params(name, model), **kwargs)
    _loss_and_backward(model, x, y, graph)
    grads = [p.grad.detach().clone() for p in model.parameters()]
    opt.step()
    for p, g in zip(model.parameters(), grads):
        assert torch.equal(p.grad.detach(), g)
    for state in opt.state.values():
        for value in state.values():
            if isinstance(value, torch.Tensor) and value.is_floating_point():
                assert value.dtype == torch.float32


@pytest.mark.parametrize("cls,kwargs,match", [
    (AdaHessian, dict(lr=-1.0), "lr"), (AdaHessian, dict(betas=(0.9, 1.0)), "betas"),
    (AdaHessian, dict(hessian_power=0.0), "hessian_power"), (AdaHessian, dict(hessian_power=1.5), "hessian_power"),
    (AdaHessian, dict(update_interval=0), "update_interval"), (AdaHessian, dict(diagonal="x"), "diagonal"),
    (SophiaG, dict(lr=float("nan")), "lr"), (SophiaG, dict(convention="x"), "convention"),
    (SophiaH, dict(gamma=0.0), "gamma"), (SophiaH, dict(betas=(-0.1, 0.9)), "betas"),
    (MFAC, dict(damp=0.0), "damp"), (MFAC, dict(ngrads=0), "ngrads"), (MFAC, dict(momentum=1.0), "momentum"),
])
def test_bad_hyperparameters(cls, kwargs, match):
    with pytest.raises(ValueError, match=match):
        cls([nn.Parameter(torch.ones(2))], **kwargs)


@pytest.mark.parametrize("name", ["adahessian", "sophia_h"])
def test_curvature_optimizers_refuse_grads_without_a_graph(name):
    cls, _, kwargs = OPTIMIZERS[name]
    x = nn.Parameter(torch.ones(3))
    opt = cls([x], **kwargs)
    (x * x).sum().backward()
    with pytest.raises(ValueError, match="create_graph=True"):
        opt.step()


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_non_finite_gradients_are_refused(name):
    cls, graph, kwargs = OPTIMIZERS[name]
    x = nn.Parameter(torch.ones(3, 2) if name in MATRIX_ONLY else torch.ones(3))
    opt = cls([x], **kwargs)
    (x * float("inf")).sum().backward(create_graph=graph)
    with pytest.raises(ValueError, match="NaN or Inf"):
        opt.step()
