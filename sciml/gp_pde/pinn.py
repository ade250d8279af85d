"""PINN and multi-scale Fourier-feature PINN (RFF-PINN) baselines for the same :class:`Problem` s as GP-HM.

Both minimise ``mean(residual^2) / R_0 + mean((u - g)^2 on the boundary) / B_0`` with Adam, derivatives by
autograd, at fixed random collocation points (as DeepXDE's default ``train_distribution`` does once per run).
``R_0`` and ``B_0`` are the two terms at initialisation (balanced weights): with a unit boundary weight a
high-frequency source puts the residual term near ``|f|^2 ~ 1e8`` (sin(100x): f = -1e4 sin(100x)) and the
boundary condition is never learned. ``boundary_weight=w`` restores the fixed weighting ``mean(res^2) + w mean(bnd^2)``.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import time
from collections.abc import Callable, Sequence

import torch
from torch import nn

from sciml.core import Result, Status, check_generator, report_status
from sciml.gp_pde.collocation import box_points
from sciml.gp_pde.problems import VARIABLES, Problem, derivative_orders, evaluate, grid_axes, grid_points


class _MLP(nn.Module):
    def __init__(self, sizes: Sequence[int], generator: torch.Generator | None, dtype: torch.dtype) -> None:
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(a, b, dtype=dtype) for a, b in itertools.pairwise(sizes))
        with torch.no_grad():
            for layer in self.layers:          # Glorot-uniform weights, zero biases (DeepXDE "Glorot uniform")
                bound = math.sqrt(6.0 / (layer.in_features + layer.out_features))
                layer.weight.copy_((torch.rand(layer.weight.shape, generator=generator, dtype=dtype) * 2 - 1) * bound)
                layer.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers[:-1]:
            x = torch.tanh(layer(x))
        return self.layers[-1](x)


class FourierFeaturePINN(nn.Module):
    """Multi-scale Fourier-feature network: one shared-architecture MLP per scale, outputs concatenated.

    ``gamma_i(x) = [cos(x B_i), sin(x B_i)]`` with frozen ``B_i ~ N(0, sigma_i^2)`` (no 2 pi factor, as DeepXDE's
    ``MsFFN``); Wang, Wang, Perdikaris, "On the eigenvector bias of Fourier feature networks", CMAME 2021.
    """

    def __init__(self, dim: int, width: int, depth: int, sigmas: Sequence[float], generator, dtype) -> None:
        super().__init__()
        self.register_buffer("B", torch.stack([torch.randn(dim, width // 2, generator=generator, dtype=dtype) * s
                                               for s in sigmas]))
        self.nets = nn.ModuleList(_MLP([2 * (width // 2)] + [width] * depth, generator, dtype) for _ in sigmas)
        self.head = _MLP([width * len(sigmas), 1], generator, dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = []
        for B, net in zip(self.B, self.nets):
            z = x @ B
            feats.append(torch.tanh(net(torch.cat([torch.cos(z), torch.sin(z)], -1))))
        return self.head(torch.cat(feats, -1))


@dataclasses.dataclass(frozen=True)
class PINNResult(Result):
    """Outcome of :func:`train_pinn`. ``history``: "step", "loss", "rel_l2" at checkpoints."""

    rel_l2: float | None
    best_rel_l2: float | None
    history: dict[str, tuple[float, ...]]
    status: Status
    seconds: float
    predictor: Callable = dataclasses.field(repr=False, compare=False, default=None)

    def predict(self, points: torch.Tensor) -> torch.Tensor:
        return self.predictor(points)


def _residual(problem: Problem, net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    x = x.requires_grad_(True)
    u = net(x)[:, 0]
    cache: dict[str, torch.Tensor] = {}

    def d(spec: str) -> torch.Tensor:
        derivative_orders(spec, problem.pde.dim)
        key = "".join(sorted(spec))
        if key not in cache:
            prev = d(key[:-1]) if len(key) > 1 else u
            cache[key] = torch.autograd.grad(prev.sum(), x, create_graph=True)[0][:, VARIABLES.index(key[-1])]
        return cache[key]

    return problem.pde.operator(u, d)


def train_pinn(problem: Problem, *, fourier_sigmas: Sequence[float] | None = None, width: int = 100,
               depth: int = 3, n_collocation: int = 1000, n_boundary: int | None = None,
               boundary_weight: float | None = None, steps: int = 5000, lr: float = 1e-3, eval_every: int | None = None,
               test_points: int = 300, max_seconds: float | None = None, generator: torch.Generator | None = None,
               dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu") -> PINNResult:
    """Train a PINN (``fourier_sigmas=None``) or an RFF-PINN on a problem for a fixed step budget.

    Reference:
        Raissi, Perdikaris, Karniadakis, "Physics-informed neural networks", JCP 2019; RFF-PINN: Wang, Wang,
        Perdikaris, CMAME 2021 (arXiv:2012.10047). Architecture as the GP-HM paper's baselines / DeepXDE
        (``FNN([dim] + [100]*3 + [1], "tanh", "Glorot uniform")``, Adam, lr 1e-3).

    Args:
        problem: the boundary-value problem (its ``solution`` gives rel_l2 when present).
        fourier_sigmas: scales of the frozen Gaussian Fourier features (None: plain PINN).
        width, depth: hidden layer width and number of hidden layers.
        n_collocation, n_boundary: random interior / boundary points (1-D: the two endpoints always).
        boundary_weight: None (default): each loss term divided by its value at initialisation (balanced);
            a number w: the fixed weighting ``mean(res^2) + w * mean(bnd^2)``.
        steps, lr: Adam budget (no convergence test: a finished budget is MAX_ITER, with a ConvergenceWarning).
        max_seconds: optional wall-clock budget; training stops (MAX_ITER) at the first checkpoint past it.
        generator: initialisation and collocation points.
        dtype: of the network (float32, the usual PINN precision; the rel_l2 is computed in float64).

    Returns:
        :class:`PINNResult` (status MAX_ITER when the budget ran out, NONFINITE if the loss became NaN/Inf).

    Differs from the paper/reference code: a torch re-implementation (no DeepXDE); fixed collocation points.
    """
    check_generator(generator, torch.device(device))
    for name, val in (("width", width), ("depth", depth), ("n_collocation", n_collocation), ("steps", steps)):
        if not isinstance(val, int) or val < 1:
            raise ValueError(f"{name} must be a positive int, got {val!r}")
    if boundary_weight is not None and not (math.isfinite(boundary_weight) and boundary_weight > 0):
        raise ValueError(f"boundary_weight must be a finite number > 0 or None (balanced), got {boundary_weight!r}")
    if dtype not in (torch.float32, torch.float64):
        raise ValueError(f"dtype must be torch.float32 or torch.float64, got {dtype}")
    dim = problem.pde.dim
    cpu_gen = generator if generator is None or generator.device.type == "cpu" else None
    if fourier_sigmas is None:
        net = _MLP([dim] + [width] * depth + [1], cpu_gen, dtype)
    else:
        net = FourierFeaturePINN(dim, width, depth, fourier_sigmas, cpu_gen, dtype)
    net = net.to(device)
    n_boundary = n_boundary or (2 if dim == 1 else max(4, n_collocation // 8))
    xi, xb = box_points(problem.domain, n_collocation, n_boundary, generator, dtype, device)
    if dim == 1:
        xb = torch.tensor([[a] for a in problem.domain[0]], dtype=dtype, device=device)
    f = evaluate(problem.source, xi.double(), "source").to(dtype)
    g = evaluate(problem.boundary, xb.double(), "boundary data").to(dtype)
    test_axes = grid_axes(problem.domain, (test_points,) * dim, torch.float64, device)
    xt = grid_points(test_axes)
    ut = evaluate(problem.solution, xt, "solution").detach() if problem.solution is not None else None

    opt = torch.optim.Adam(net.parameters(), lr=lr)
    eval_every = eval_every or max(1, steps // 20)
    history = {"step": [], "loss": [], "rel_l2": []}
    status, start = Status.MAX_ITER, time.perf_counter()
    scales = None
    for step in range(steps + 1):
        res = (_residual(problem, net, xi.clone()) - f).pow(2).mean()
        bnd = (net(xb)[:, 0] - g).pow(2).mean()
        if scales is None:         # balanced: each term relative to its initial value (tiny floor: exact start)
            tiny = torch.finfo(dtype).tiny
            scales = (1.0, float(boundary_weight)) if boundary_weight is not None else (
                1.0 / max(float(res.detach()), tiny), 1.0 / max(float(bnd.detach()), tiny))
        loss = scales[0] * res + scales[1] * bnd
        if step % eval_every == 0 or step == steps:
            if not math.isfinite(float(loss.detach())):
                status = Status.NONFINITE
                break
            history["step"].append(step)
            history["loss"].append(float(loss.detach()))
            with torch.no_grad():
                err = float((net(xt.to(dtype))[:, 0].double() - ut).norm() / ut.norm()) if ut is not None else math.nan
            history["rel_l2"].append(err)
            if max_seconds is not None and time.perf_counter() - start > max_seconds:
                break
        if step == steps:
            break
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    report_status(status, "gp_pde.train_pinn", f"step {step}" if status is Status.NONFINITE else
                  f"step budget of {steps} Adam steps spent (no convergence test)")

    def predictor(points: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return net(points.to(dtype=dtype, device=device).reshape(-1, dim))[:, 0].double()

    errs = [e for e in history["rel_l2"] if math.isfinite(e)]
    return PINNResult(rel_l2=history["rel_l2"][-1] if ut is not None and errs else None,
                      best_rel_l2=min(errs) if errs else None, history={k: tuple(v) for k, v in history.items()},
                      status=status, seconds=time.perf_counter() - start, predictor=predictor)
