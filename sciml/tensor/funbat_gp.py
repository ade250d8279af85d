"""GP regression on the raw coordinates (gpytorch exact GP): the continuous-index peer of FunBaT.

A user with continuous-indexed data would first try y ~ GP(0, σ² Matérn-ARD(i¹, ..., i^K)) + noise, with
hyperparameters fitted by maximising the marginal likelihood. This costs O(N³) per step, so ``max_train``
caps the number of training points (a random subset). gpytorch is imported inside the function only.

Reference: Gardner et al., "GPyTorch: Blackbox matrix-matrix Gaussian process inference with GPU
acceleration" (NeurIPS 2018); Rasmussen & Williams (2006), ch. 5 (type-II maximum likelihood).
"""

from __future__ import annotations

import dataclasses
import math

import torch

from sciml.core import Result, check_floating


@dataclasses.dataclass(frozen=True)
class GPRegressionFit(Result):
    """A fitted exact GP; ``predict`` returns mean and variance of y (noise included) or of f."""

    model: object
    likelihood: object
    n_train: int
    history: tuple[float, ...]
    y_offset: float
    y_scale: float

    def predict(self, coords: torch.Tensor, include_noise: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        import gpytorch

        check_floating(coords, "coords")
        self.model.eval()
        self.likelihood.eval()
        with torch.no_grad(), gpytorch.settings.fast_pred_var(False), \
                gpytorch.settings.max_cholesky_size(100_000):
            out = self.model(coords)
            if include_noise:
                out = self.likelihood(out)
            mean, var = out.mean, out.variance
        return self.y_offset + self.y_scale * mean, self.y_scale**2 * var


def fit_gp_regression(coords: torch.Tensor, values: torch.Tensor, kernel: str = "matern32", n_iter: int = 60,
                      lr: float = 0.1, max_train: int | None = 2000,
                      generator: torch.Generator | None = None,
                      hyper_max_train: int | None = None) -> GPRegressionFit:
    """Exact GP regression (ARD Matérn or RBF kernel, Gaussian noise), Adam on the marginal likelihood.

    Args:
        coords: (N, K) coordinates; values: (N,).
        kernel: "matern12" | "matern32" | "matern52" | "rbf".
        n_iter: Adam steps; lr: Adam step size.
        max_train: condition the posterior on a random subset of at most this many points (None = all; O(N³)).
        generator: draws the subsets.
        hyper_max_train: learn the hyperparameters (the ``n_iter`` Adam steps, O(n³) each) on the first
            ``hyper_max_train`` points of that subset, then condition on the whole subset (one O(N³) solve).
            None: learn on the whole subset. Why: 100 steps at 3,200 points cost ~5 min on one loaded core,
            and the marginal likelihood of 3 to 5 hyperparameters is already well determined by ~1,000 points.
    """
    import gpytorch

    check_floating(coords, "coords")
    check_floating(values, "values")
    if coords.ndim != 2 or values.shape != (coords.shape[0],):
        raise ValueError(f"coords (N, K) and values (N,) must match, got {tuple(coords.shape)}, "
                         f"{tuple(values.shape)}")
    nus = {"matern12": 0.5, "matern32": 1.5, "matern52": 2.5}
    if kernel not in nus and kernel != "rbf":
        raise ValueError(f"kernel must be one of {sorted(nus) + ['rbf']}, got {kernel!r}")
    if n_iter < 1 or lr <= 0 or any(m is not None and m < 2 for m in (max_train, hyper_max_train)):
        raise ValueError(f"need n_iter >= 1, lr > 0, max_train >= 2, hyper_max_train >= 2; got {n_iter}, {lr}, "
                         f"{max_train}, {hyper_max_train}")
    N, K = coords.shape
    if (max_train is not None and N > max_train) or (hyper_max_train is not None and N > hyper_max_train):
        # A random order, so that both the posterior subset and its hyperparameter prefix are random subsets.
        keep = torch.randperm(N, generator=generator, device=coords.device)[:max_train]
        coords, values = coords[keep], values[keep]
    offset, scale = float(values.mean()), float(values.std())
    y = (values - offset) / scale

    base = (gpytorch.kernels.RBFKernel(ard_num_dims=K) if kernel == "rbf"
            else gpytorch.kernels.MaternKernel(nu=nus[kernel], ard_num_dims=K))

    class _ExactGP(gpytorch.models.ExactGP):
        def __init__(self, x, t, likelihood):
            super().__init__(x, t, likelihood)
            self.mean_module = gpytorch.means.ConstantMean()
            self.covar_module = gpytorch.kernels.ScaleKernel(base)

        def forward(self, x):
            return gpytorch.distributions.MultivariateNormal(self.mean_module(x), self.covar_module(x))

    likelihood = gpytorch.likelihoods.GaussianLikelihood().to(coords)
    n_hyper = coords.shape[0] if hyper_max_train is None else min(hyper_max_train, coords.shape[0])
    model = _ExactGP(coords[:n_hyper], y[:n_hyper], likelihood).to(coords)
    model.train()
    likelihood.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    mll = gpytorch.mlls.ExactMarginalLogLikelihood(likelihood, model)
    history = []
    with gpytorch.settings.max_cholesky_size(100_000):
        for _ in range(n_iter):
            optimizer.zero_grad()
            loss = -mll(model(coords[:n_hyper]), y[:n_hyper])
            loss.backward()
            optimizer.step()
            history.append(float(loss.detach()))
            if not math.isfinite(history[-1]):
                break
    if n_hyper < coords.shape[0]:
        model.set_train_data(coords, y, strict=False)   # the posterior conditions on the whole subset
    return GPRegressionFit(model, likelihood, coords.shape[0], tuple(history), offset, scale)
