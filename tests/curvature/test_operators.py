"""Curvature operators against independent float64 dense references (spec curvature.md A.6 tests 1-2)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from sciml.curvature import (EmpiricalFisherOperator, FisherMCOperator, GGNOperator, HessianOperator, ggn_vp, hvp,
                             output_hessian_blocks, per_sample_grads)
from sciml.linalg import LinearOperator

from .conftest import flat_params, make_mlp, mlp_logits

TOL = 1e-10  # spec A.6 test 1: relative matvec error in float64


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


def loop_per_sample_grads(model: nn.Module, loss_fn, X, y) -> torch.Tensor:
    """Per-sample gradients by a plain autograd loop (independent of vmap)."""
    rows = []
    for i in range(X.shape[0]):
        model.zero_grad()
        g = torch.autograd.grad(loss_fn(model(X[i:i + 1]), y[i:i + 1]), list(model.parameters()))
        rows.append(torch.cat([t.reshape(-1) for t in g]))
    return torch.stack(rows)


def test_hessian_matvec_matches_dense(tanh_mlp, digits, dense_hessian, gen):
    op = HessianOperator(tanh_mlp, nn.CrossEntropyLoss(), digits)
    assert isinstance(op, LinearOperator)
    assert op.shape == dense_hessian.shape and op.dtype == torch.float64 and op.device.type == "cpu"
    V = torch.randn(op.shape[0], 4, generator=gen, dtype=torch.float64)
    assert rel(op @ V, dense_hessian @ V) <= TOL
    assert rel(op @ V[:, 0], dense_hessian @ V[:, 0]) <= TOL
    assert rel(op.to_dense(), dense_hessian) <= TOL
    for method in ("forward", "graph"):
        other = HessianOperator(tanh_mlp, nn.CrossEntropyLoss(), digits, method=method)
        assert rel(other @ V, dense_hessian @ V) <= TOL


def test_graph_method_rebuilds_after_a_parameter_update(digits, gen):
    model = make_mlp(4)
    op = HessianOperator(model, nn.CrossEntropyLoss(), [(digits[0][:80], digits[1][:80]),
                                                        (digits[0][80:], digits[1][80:])], method="graph")
    V = torch.randn(op.shape[0], 2, generator=gen, dtype=torch.float64)
    op @ V
    with torch.no_grad():
        model[0].weight.mul_(1.5)  # an in-place optimizer-like step
    fresh = HessianOperator(model, nn.CrossEntropyLoss(), digits)
    assert rel(op @ V, fresh @ V) <= TOL


def test_hessian_of_mse_falls_back_to_reverse_over_reverse(digits, gen):
    """torch 2.13's mse_loss has no forward-over-reverse double derivative; the operator switches and stays exact."""
    X, _ = digits
    model = make_mlp(5, out=3)
    target = X[:, :3]
    theta = flat_params(model)
    H = torch.autograd.functional.hessian(lambda t: nn.functional.mse_loss(mlp_logits(model, t, X), target), theta)
    op = HessianOperator(model, nn.MSELoss(), (X, target), method="forward")
    V = torch.randn(op.shape[0], 2, generator=gen, dtype=torch.float64)
    assert rel(op @ V, H @ V) <= TOL and op.method == "reverse"
    f = lambda t: nn.functional.mse_loss(mlp_logits(model, t, X), target)  # noqa: E731
    assert rel(hvp(f, theta, V.T, batched=True, method="reverse"), V.T @ H) <= TOL


def test_ggn_matvec_matches_jacobian_form(tanh_mlp, digits, dense_ggn, gen):
    op = GGNOperator(tanh_mlp, nn.CrossEntropyLoss(), digits)
    V = torch.randn(op.shape[0], 3, generator=gen, dtype=torch.float64)
    assert rel(op @ V, dense_ggn @ V) <= TOL
    assert torch.linalg.eigvalsh(op.to_dense()).min() >= -1e-12 * float(dense_ggn.norm())  # PSD


@pytest.mark.parametrize("loss_fn", [nn.MSELoss(), nn.MSELoss(reduction="sum"), nn.BCEWithLogitsLoss()],
                         ids=["mse-mean", "mse-sum", "bce"])
def test_ggn_closed_forms_match_autograd_output_hessian(digits, loss_fn, gen):
    """Closed-form Lambda (MSE, binary logistic) vs J^T (autograd output Hessian) J built densely."""
    X, y = digits
    binary = isinstance(loss_fn, nn.BCEWithLogitsLoss)
    model = make_mlp(6, out=1 if binary else 3)
    target = (y % 2).double()[:, None] if binary else torch.randn(X.shape[0], 3, generator=gen, dtype=torch.float64)
    theta = flat_params(model)
    J = torch.autograd.functional.jacobian(lambda t: mlp_logits(model, t, X), theta).reshape(-1, theta.numel())
    out = mlp_logits(model, theta, X).detach()
    Lam = torch.autograd.functional.hessian(lambda o: loss_fn(o.reshape(out.shape), target), out.reshape(-1))
    G = J.T @ Lam @ J
    op = GGNOperator(model, loss_fn, (X, target))
    V = torch.randn(op.shape[0], 3, generator=gen, dtype=torch.float64)
    assert rel(op @ V, G @ V) <= TOL


def test_empirical_fisher_matches_per_sample_gradient_loop(tanh_mlp, digits, gen):
    X, y = digits
    loss = nn.CrossEntropyLoss()
    g = loop_per_sample_grads(tanh_mlp, loss, X, y)
    assert rel(per_sample_grads(tanh_mlp, loss, X, y), g) <= TOL
    op = EmpiricalFisherOperator(tanh_mlp, loss, (X, y))
    V = torch.randn(op.shape[0], 3, generator=gen, dtype=torch.float64)
    assert rel(op @ V, g.T @ (g @ V) / X.shape[0]) <= TOL


def test_fisher_mc_is_empirical_fisher_at_sampled_labels(tanh_mlp, digits, gen):
    """With one sample per point, F_MC is exactly the empirical Fisher at labels drawn from softmax(f)."""
    X, y = digits
    seed = 123
    op = FisherMCOperator(tanh_mlp, nn.CrossEntropyLoss(), (X, y), generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        p = torch.softmax(tanh_mlp(X), 1)
    yhat = torch.multinomial(p, 1, replacement=True, generator=torch.Generator().manual_seed(seed))[:, 0]
    ef = EmpiricalFisherOperator(tanh_mlp, nn.CrossEntropyLoss(), (X, yhat))
    V = torch.randn(op.shape[0], 2, generator=gen, dtype=torch.float64)
    assert rel(op @ V, ef @ V) <= TOL


def test_fisher_mc_is_unbiased_for_the_ggn(tanh_mlp, digits, dense_ggn, gen):
    """E[F_MC] = G (canonical link): v^T F_MC v over 30 independent draws lies within 4 standard errors of v^T G v."""
    v = torch.randn(dense_ggn.shape[0], generator=gen, dtype=torch.float64)
    draws = torch.stack([v @ (FisherMCOperator(tanh_mlp, nn.CrossEntropyLoss(), digits, generator=gen,
                                               mc_samples=2) @ v) for _ in range(30)])
    stderr = draws.std() / 30 ** 0.5
    assert abs(float(draws.mean() - v @ dense_ggn @ v)) <= 4 * float(stderr)


def test_ggn_equals_hessian_for_linear_softmax(digits, gen):
    """No hidden layer: the logits are linear in theta, so the residual R vanishes and G == H."""
    model = make_mlp(None)
    H = HessianOperator(model, nn.CrossEntropyLoss(), digits).to_dense()
    G = GGNOperator(model, nn.CrossEntropyLoss(), digits).to_dense()
    assert rel(G, H) <= TOL


def test_relu_mlp_diagonal_hessian_equals_diagonal_ggn(digits):
    """ReLU is piecewise linear, so R = 0 a.e. and diag(H) == diag(G) (spec A.6 test 2; BackPACK's check)."""
    model = make_mlp(8, nn.ReLU)
    dH = HessianOperator(model, nn.CrossEntropyLoss(), digits).diagonal()
    dG = GGNOperator(model, nn.CrossEntropyLoss(), digits).diagonal()
    assert rel(dH, dG) <= TOL


@pytest.mark.parametrize("cls", [HessianOperator, GGNOperator, EmpiricalFisherOperator])
def test_batch_iterable_equals_full_batch(cls, tanh_mlp, digits, gen):
    """Unequal batches (mean reduction weighted by n_b / N) and a DataLoader give the full-batch operator."""
    X, y = digits
    loss = nn.CrossEntropyLoss()
    full = cls(tanh_mlp, loss, (X, y))
    cuts = [0, 70, 130, 200]
    batches = [(X[a:b], y[a:b]) for a, b in zip(cuts[:-1], cuts[1:])]
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(X, y), batch_size=64)
    V = torch.randn(full.shape[0], 2, generator=gen, dtype=torch.float64)
    ref = full @ V
    assert rel(cls(tanh_mlp, loss, batches) @ V, ref) <= TOL
    assert rel(cls(tanh_mlp, loss, loader) @ V, ref) <= TOL


def test_sum_reduction_scales_by_n(tanh_mlp, digits, gen):
    X, y = digits
    V = torch.randn(flat_params(tanh_mlp).numel(), 2, generator=gen, dtype=torch.float64)
    for cls in (HessianOperator, GGNOperator, EmpiricalFisherOperator):
        mean = cls(tanh_mlp, nn.CrossEntropyLoss(), [(X[:50], y[:50]), (X[50:], y[50:])]) @ V
        total = cls(tanh_mlp, nn.CrossEntropyLoss(reduction="sum"), [(X[:50], y[:50]), (X[50:], y[50:])]) @ V
        assert rel(total, X.shape[0] * mean) <= TOL


def test_block_restriction_equals_dense_block(tanh_mlp, digits, dense_hessian, dense_ggn, gen):
    """Restricting to a layer (module, names or tensors) gives the diagonal block of the full matrix."""
    first = tanh_mlp[0]
    n0 = first.weight.numel() + first.bias.numel()
    second_w = slice(n0, n0 + tanh_mlp[2].weight.numel())
    for params in (first, ["0.weight", "0.bias"], [first.weight, first.bias]):
        H0 = HessianOperator(tanh_mlp, nn.CrossEntropyLoss(), digits, params=params)
        assert H0.shape == (n0, n0) and H0.parameter_names == ["0.weight", "0.bias"]
        assert rel(H0.to_dense(), dense_hessian[:n0, :n0]) <= TOL
    G2 = GGNOperator(tanh_mlp, nn.CrossEntropyLoss(), digits, params=["2.weight"])
    assert rel(G2.to_dense(), dense_ggn[second_w, second_w]) <= TOL


def test_functional_hvp_and_ggn_vp(tanh_mlp, digits, dense_hessian, dense_ggn, gen):
    X, y = digits
    loss = nn.CrossEntropyLoss()
    theta = flat_params(tanh_mlp)
    V = torch.randn(3, theta.numel(), generator=gen, dtype=torch.float64)
    f = lambda t: loss(mlp_logits(tanh_mlp, t, X), y)  # noqa: E731
    assert rel(hvp(f, theta, V[0]), dense_hessian @ V[0]) <= TOL
    assert rel(hvp(f, theta, V, batched=True), V @ dense_hessian) <= TOL
    out = lambda t: mlp_logits(tanh_mlp, t, X)  # noqa: E731
    assert rel(ggn_vp(out, lambda o: loss(o, y), theta, V, batched=True), V @ dense_ggn) <= TOL
    # pytree params: a tuple of tensors
    a, b = theta[:100], theta[100:]
    Ha, Hb = hvp(lambda p: f(torch.cat(p)), (a, b), (V[0, :100], V[0, 100:]))
    assert rel(torch.cat([Ha, Hb]), dense_hessian @ V[0]) <= TOL
    with pytest.raises(ValueError, match="shape"):
        hvp(f, theta, V[0, :10])


def test_output_hessian_blocks_cross_entropy(digits, tanh_mlp):
    X, y = digits
    with torch.no_grad():
        out = tanh_mlp(X)
    blocks = output_hessian_blocks(nn.CrossEntropyLoss(), "mean", out, y)
    generic = output_hessian_blocks(lambda o, t: nn.functional.cross_entropy(o, t), "mean", out, y)  # autograd path
    assert rel(blocks, generic) <= TOL


def test_train_mode_batchnorm_uses_batch_statistics_and_leaves_buffers(digits, gen):
    """mode='train': the Hessian of the train-mode function (batch statistics); running stats untouched."""
    X, y = digits
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 6), nn.BatchNorm1d(6), nn.Tanh(), nn.Linear(6, 10)).double()
    model.eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    op = HessianOperator(model, nn.CrossEntropyLoss(), (X, y), mode="train")
    names = [n for n, _ in model.named_parameters()]
    shapes = [p.shape for p in model.parameters()]

    def loss_train(theta):
        ws = [w.reshape(s) for w, s in zip(torch.split(theta, [s.numel() for s in shapes]), shapes)]
        h = X @ ws[0].T + ws[1]
        h = (h - h.mean(0)) / torch.sqrt(h.var(0, unbiased=False) + model[1].eps) * ws[2] + ws[3]
        return nn.functional.cross_entropy(torch.tanh(h) @ ws[4].T + ws[5], y)
    H = torch.autograd.functional.hessian(loss_train, flat_params(model))
    V = torch.randn(op.shape[0], 2, generator=gen, dtype=torch.float64)
    assert rel(op @ V, H @ V) <= TOL
    assert not model.training and names == op.parameter_names
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k
    eval_op = HessianOperator(model, nn.CrossEntropyLoss(), (X, y), mode="eval")
    assert rel(eval_op @ V, H @ V) > 1e-3  # running statistics (fresh: 0 / 1) give another function


# ---- bad input -------------------------------------------------------------------------------------------------
def test_bad_inputs_raise_clear_errors(tanh_mlp, digits):
    X, y = digits
    loss = nn.CrossEntropyLoss()
    frozen = make_mlp(4)
    for p in frozen.parameters():
        p.requires_grad_(False)
    with pytest.raises(ValueError, match="no trainable parameters"):
        HessianOperator(frozen, loss, (X, y))
    with pytest.raises(ValueError, match="scalar"):
        HessianOperator(tanh_mlp, nn.CrossEntropyLoss(reduction="none"), (X, y))
    with pytest.raises(ValueError, match="scalar"):
        HessianOperator(tanh_mlp, lambda o, t: nn.functional.cross_entropy(o, t, reduction="none"), (X, y))
    with pytest.raises(ValueError, match="model failed on data X of shape"):
        HessianOperator(tanh_mlp, loss, (X[:, :10], y))
    with pytest.raises(ValueError, match="same non-zero first"):
        HessianOperator(tanh_mlp, loss, (X, y[:10]))
    with pytest.raises(ValueError, match="dtype"):
        HessianOperator(tanh_mlp, loss, (X.float(), y))
    bad = X.clone()
    bad[3, 5] = float("nan")
    with pytest.raises(ValueError, match="not finite"):
        GGNOperator(tanh_mlp, loss, (bad, y))
    with pytest.raises(ValueError, match="one-shot iterator"):
        HessianOperator(tanh_mlp, loss, iter([(X, y)]))
    with pytest.raises(ValueError, match="unknown parameter names"):
        HessianOperator(tanh_mlp, loss, (X, y), params=["nope"])
    with pytest.raises(ValueError, match="mode"):
        HessianOperator(tanh_mlp, loss, (X, y), mode="training")
    dropout = nn.Sequential(nn.Linear(64, 4), nn.Dropout(0.5), nn.Linear(4, 10)).double()
    with pytest.raises(ValueError, match="dropout"):
        HessianOperator(dropout, loss, (X, y), mode="train")
    with pytest.raises(ValueError, match="likelihood"):
        FisherMCOperator(tanh_mlp, lambda o, t: nn.functional.cross_entropy(o, t), (X, y))
    op = HessianOperator(tanh_mlp, loss, (X, y))
    with pytest.raises(ValueError, match="cannot act"):
        op @ torch.zeros(3, dtype=torch.float64)
