"""Shared fixtures of the curvature tests: 200 sklearn digits, small float64 MLPs and independent dense references.

The references use reverse-over-reverse autograd (``torch.autograd.functional.hessian``/``jacobian``) on a
hand-written forward pass, so they share no code path with the operators' forward-over-reverse torch.func products.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

N_SAMPLES = 200


@pytest.fixture(scope="session")
def digits() -> tuple[torch.Tensor, torch.Tensor]:
    from sklearn.datasets import load_digits
    d = load_digits()
    X = torch.tensor(d.data[:N_SAMPLES] / 16.0, dtype=torch.float64)
    y = torch.tensor(d.target[:N_SAMPLES], dtype=torch.long)
    return X, y


def make_mlp(hidden: int | None, activation: type[nn.Module] = nn.Tanh, out: int = 10, seed: int = 0) -> nn.Module:
    """64 -> hidden -> out MLP (a linear model when hidden is None), float64."""
    torch.manual_seed(seed)
    if hidden is None:
        return nn.Sequential(nn.Linear(64, out)).double()
    return nn.Sequential(nn.Linear(64, hidden), activation(), nn.Linear(hidden, out)).double()


def flat_params(model: nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


def unflatten(model: nn.Module, theta: torch.Tensor) -> list[torch.Tensor]:
    shapes = [p.shape for p in model.parameters()]
    return [w.reshape(s) for w, s in zip(torch.split(theta, [s.numel() for s in shapes]), shapes)]


def mlp_logits(model: nn.Module, theta: torch.Tensor, X: torch.Tensor) -> torch.Tensor:
    """Hand-written forward pass of make_mlp's 2-layer (or 1-layer) net at a flat parameter vector."""
    ws = unflatten(model, theta)
    if len(ws) == 2:
        return X @ ws[0].T + ws[1]
    act = model[1]
    return act(X @ ws[0].T + ws[1]) @ ws[2].T + ws[3]


@pytest.fixture(scope="session")
def tanh_mlp() -> nn.Module:
    return make_mlp(8)


@pytest.fixture(scope="session")
def dense_hessian(tanh_mlp, digits) -> torch.Tensor:
    X, y = digits
    loss = nn.CrossEntropyLoss()
    return torch.autograd.functional.hessian(lambda t: loss(mlp_logits(tanh_mlp, t, X), y), flat_params(tanh_mlp))


@pytest.fixture(scope="session")
def dense_ggn(tanh_mlp, digits) -> torch.Tensor:
    """G = (1/N) sum_i J_i^T (diag p_i - p_i p_i^T) J_i with J from reverse-mode autograd."""
    X, y = digits
    theta = flat_params(tanh_mlp)
    J = torch.autograd.functional.jacobian(lambda t: mlp_logits(tanh_mlp, t, X), theta)  # (N, C, P)
    p = torch.softmax(mlp_logits(tanh_mlp, theta, X), 1)
    Lam = torch.diag_embed(p) - p[:, :, None] * p[:, None, :]
    return torch.einsum("ncp,ncd,ndq->pq", J, Lam, J) / X.shape[0]
