"""Shared pieces of the curvature-paper experiments (spec curvature.md B.1, B.2, B.3, B.5).

Data: sklearn's digits (1797 8x8 images, pixels / 16, shipped inside scikit-learn: no download). Models: small
float64 tanh MLPs (ReLU nets make the residual R of H = G + R vanish a.e., spec A.7). Curvature: our own exact
dense float64 references written directly on torch.func (HVPs on the identity; per-sample Jacobians with the
closed-form softmax factor), independent of sciml.curvature, which the experiments use and the tests check against
these; Lanczos / SLQ with full, partial (LLA's last-10) or no reorthogonalisation, because LLA's Kh0.5 depends on
that choice (spec B.5 pitfalls; sciml.curvature.spectral_density always reorthogonalises fully).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from typing import Callable, Iterator

import torch
from torch import nn
from torch.func import functional_call, grad, jacrev, jvp, vmap

DTYPE = torch.float64


@contextlib.contextmanager
def single_thread(threads: int = 1) -> Iterator[None]:
    """Run with ``threads`` torch threads (the box is shared), restoring the previous setting."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


# ---- data ------------------------------------------------------------------------------------------------------
def digits(dtype: torch.dtype = DTYPE) -> tuple[torch.Tensor, torch.Tensor]:
    """All 1797 sklearn digits: X (1797, 64) with pixels / 16 in [0, 1], y (1797,) int64 labels."""
    from sklearn.datasets import load_digits

    data = load_digits()
    return torch.tensor(data.data, dtype=dtype) / 16.0, torch.tensor(data.target, dtype=torch.long)


def digits_classes(num_classes: int, per_class: int = 80, dtype: torch.dtype = DTYPE) -> tuple[torch.Tensor, torch.Tensor]:
    """Spec B.1 subsets: classes {0..C-1}, the first ``per_class * C`` such samples (in file order)."""
    if not 2 <= num_classes <= 10:
        raise ValueError(f"num_classes must be in [2, 10], got {num_classes}")
    X, y = digits(dtype)
    keep = y < num_classes
    n = per_class * num_classes
    return X[keep][:n], y[keep][:n]


# ---- models ----------------------------------------------------------------------------------------------------
def mlp(sizes: tuple[int, ...], seed: int, activation: str = "tanh", dtype: torch.dtype = DTYPE) -> nn.Sequential:
    """Fully connected net ``sizes[0] -> ... -> sizes[-1]`` with PyTorch's default init drawn from ``seed``."""
    act = {"tanh": nn.Tanh, "relu": nn.ReLU}[activation]
    layers: list[nn.Module] = []
    with torch.random.fork_rng(devices=[]):     # seeded init without touching the caller's global RNG
        torch.manual_seed(seed)
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
            layers.append(nn.Linear(a, b, dtype=dtype))
            if i < len(sizes) - 2:
                layers.append(act())
    return nn.Sequential(*layers)


def num_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def flat_params(model: nn.Module) -> torch.Tensor:
    """The parameters as one detached vector (P,) in ``named_parameters`` order."""
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


def functional(model: nn.Module) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """``f(theta (P,), x (N, d)) -> outputs`` calling ``model`` with the flat parameter vector ``theta``."""
    names = [n for n, _ in model.named_parameters()]
    shapes = [p.shape for _, p in model.named_parameters()]
    sizes = [math.prod(s) for s in shapes]

    def f(theta: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        chunks = torch.split(theta, sizes)
        return functional_call(model, {n: c.view(s) for n, c, s in zip(names, chunks, shapes)}, (x,))

    return f


def train_full_batch(model: nn.Module, X: torch.Tensor, y: torch.Tensor, steps: int, lr: float,
                     momentum: float = 0.9, weight_decay: float = 0.0,
                     loss_fn: Callable = nn.functional.cross_entropy) -> list[float]:
    """Full-batch (S)GD with heavy-ball momentum (torch.optim.SGD); returns the loss before each step."""
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
    losses = []
    for _ in range(steps):
        loss = loss_fn(model(X), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    return losses


@torch.no_grad()
def accuracy(model: nn.Module, X: torch.Tensor, y: torch.Tensor) -> float:
    return float((model(X).argmax(1) == y).to(torch.float64).mean())


# ---- exact curvature (float64 ground truth, small P) -------------------------------------------------------------
def exact_hessian(loss_of_theta: Callable[[torch.Tensor], torch.Tensor], theta: torch.Tensor,
                  chunk_size: int = 128) -> torch.Tensor:
    """Dense symmetrised Hessian (P, P) of a scalar function: forward-over-reverse HVPs on the identity, vmapped in
    chunks of ``chunk_size`` columns (spec A.6 exact fallback; memory ~ chunk_size x one HVP)."""
    g = grad(loss_of_theta)

    def hvp_column(v: torch.Tensor) -> torch.Tensor:
        return jvp(g, (theta,), (v,))[1]

    eye = torch.eye(theta.numel(), dtype=theta.dtype, device=theta.device)
    H = vmap(hvp_column, chunk_size=chunk_size)(eye)
    return 0.5 * (H + H.mT)


def model_hessian(model: nn.Module, X: torch.Tensor, y: torch.Tensor,
                  loss_fn: Callable = nn.functional.cross_entropy) -> torch.Tensor:
    """Exact Hessian (P, P) of the mean loss of ``model`` on (X, y)."""
    f = functional(model)
    return exact_hessian(lambda th: loss_fn(f(th, X), y), flat_params(model))


def per_sample_jacobians(model: nn.Module, X: torch.Tensor, chunk_size: int = 256) -> torch.Tensor:
    """Jacobians of the outputs w.r.t. the flat parameters, per sample: (N, C, P)."""
    f = functional(model)
    theta = flat_params(model)

    def one(x: torch.Tensor) -> torch.Tensor:
        return jacrev(lambda th: f(th, x[None])[0])(theta)

    return vmap(one, chunk_size=chunk_size)(X)


def softmax_factor(logits: torch.Tensor) -> torch.Tensor:
    """S (N, C, C) with S S^T = diag(p) - p p^T (the cross-entropy output Hessian): S = diag(sqrt p) - p sqrt(p)^T."""
    p = torch.softmax(logits, dim=-1)
    sq = p.sqrt()
    return torch.diag_embed(sq) - p[..., :, None] * sq[..., None, :]


def ggn_factors(model: nn.Module, X: torch.Tensor, loss: str = "ce") -> torch.Tensor:
    """Rows A_i = S_i^T J_i stacked per sample, (N, C, P), so that G = (1/N) sum_i A_i^T A_i.

    ``loss="ce"``: softmax cross-entropy (S from :func:`softmax_factor`); ``"mse"``: 1/2 ||f - y||^2 (S = I).
    """
    J = per_sample_jacobians(model, X)                                   # (N, C, P)
    if loss == "mse":
        return J
    if loss != "ce":
        raise ValueError(f"loss must be 'ce' or 'mse', got {loss!r}")
    with torch.no_grad():
        S = softmax_factor(model(X))                                     # (N, C, C)
    return S.mT @ J


def ggn_from_factors(A: torch.Tensor) -> torch.Tensor:
    """G = (1/N) sum_i A_i^T A_i, (P, P), from factors (N, C, P)."""
    flat = A.reshape(-1, A.shape[-1])
    return flat.mT @ flat / A.shape[0]


def top_eigenvalue_gram(A: torch.Tensor) -> float:
    """lambda_max of (1/B) sum_i A_i^T A_i from the smaller of the Gram matrix (BC x BC) and the P x P form
    (spec B.2 trick: the non-zero spectra of M^T M and M M^T coincide)."""
    flat = A.reshape(-1, A.shape[-1])                                    # (B*C, P)
    small = flat @ flat.mT if flat.shape[0] <= flat.shape[1] else flat.mT @ flat
    return float(torch.linalg.eigvalsh(small / A.shape[0])[-1])


# ---- Lanczos / SLQ with a chosen reorthogonalisation (LLA comparison) ------------------------------------------
@dataclasses.dataclass(frozen=True)
class Quadrature:
    """Per-run Gauss quadrature rules of SLQ: nodes (n_v, m) Ritz values, weights (n_v, m) (sum 1 per run)."""

    nodes: torch.Tensor
    weights: torch.Tensor
    m: int
    reorth: str


def slq(matvec: Callable[[torch.Tensor], torch.Tensor], size: int, m: int, n_v: int, generator: torch.Generator,
        reorth: str = "full", keep: int = 10, dtype: torch.dtype = DTYPE) -> Quadrature:
    """Stochastic Lanczos quadrature with Rademacher starts and a chosen reorthogonalisation.

    ``reorth``: "full" (against every previous Lanczos vector, twice), "partial" (LLA ``esd_calc``: only against
    the last ``keep`` + 1 stored vectors, ``max_v = 10``), or "none" (three-term recurrence only). The probes run
    together as the columns of one block (vectorised matvec). Breakdown (beta ~ 0) is not restarted: m is small
    against P here.
    """
    if reorth not in ("full", "partial", "none"):
        raise ValueError(f"reorth must be 'full', 'partial' or 'none', got {reorth!r}")
    if not 1 <= m <= size:
        raise ValueError(f"m must be in [1, {size}], got {m}")
    Z = (torch.randint(0, 2, (size, n_v), generator=generator) * 2 - 1).to(dtype) / math.sqrt(size)  # (P, n_v)
    Q = [Z]
    alpha, beta = [], []
    for j in range(m):
        w = matvec(Q[-1])                                                # (P, n_v)
        a = (Q[-1] * w).sum(0)
        w = w - a * Q[-1] - (beta[-1] * Q[-2] if j > 0 else 0.0)
        if reorth != "none":
            basis = torch.stack(Q if reorth == "full" else Q[-(keep + 1):], dim=0)   # (k, P, n_v)
            for _ in range(2):
                w = w - (basis * (basis * w).sum(1, keepdim=True)).sum(0)
        alpha.append(a)
        if j < m - 1:
            b = w.norm(dim=0)
            beta.append(b)
            Q.append(w / b)
    al = torch.stack(alpha, 1)                                           # (n_v, m)
    T = torch.diag_embed(al)
    if m > 1:
        be = torch.stack(beta, 1)                                        # (n_v, m-1)
        T = T + torch.diag_embed(be, 1) + torch.diag_embed(be, -1)
    theta, S = torch.linalg.eigh(T)
    return Quadrature(nodes=theta, weights=S[:, 0, :] ** 2, m=m, reorth=reorth)


def hessian_criteria(nodes: torch.Tensor, weights: torch.Tensor, power: float = 0.5) -> tuple[float, float]:
    """LLA's (re, Kh_n) (``hessian_criteria`` in src_lla/hessian/viz.py), per run then averaged over runs:
    re = |min theta / max theta|, Kh_n = sum_{theta<0} (|theta| tau)^n / sum_{theta>0} (theta tau)^n."""
    re = (nodes.min(1).values / nodes.max(1).values).abs()
    contrib = (nodes.abs() * weights) ** power                           # (n_v, m)
    kh = (contrib * (nodes < 0)).sum(1) / (contrib * (nodes > 0)).sum(1)
    return float(re.mean()), float(kh.mean())


def spearman(a: torch.Tensor, b: torch.Tensor) -> float:
    """Spearman rank correlation (no ties expected)."""
    ra = a.argsort().argsort().to(DTYPE)
    rb = b.argsort().argsort().to(DTYPE)
    ra, rb = ra - ra.mean(), rb - rb.mean()
    return float((ra * rb).sum() / (ra.norm() * rb.norm()))


def linear_fit(x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """Least-squares slope and intercept of y ~ a x + b."""
    X = torch.stack([x, torch.ones_like(x)], 1)
    sol = torch.linalg.lstsq(X, y[:, None]).solution[:, 0]
    return float(sol[0]), float(sol[1])
