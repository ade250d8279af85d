"""Gaussian mixtures with the exact noised density, noise prediction, score and Hessian (float64).

For ``p_0 = sum_k pi_k N(mu_k, Sigma_k)`` and ``x_t = alpha_t x_0 + sigma_t eps`` the noised density is
``p_t = sum_k pi_k N(alpha_t mu_k, S_k)`` with ``S_k = alpha_t² Sigma_k + sigma_t² I``. With responsibilities
``w_k(x)`` (a softmax in log space, so nothing underflows near t = 0) and ``g_k = -S_k^{-1}(x - alpha_t mu_k)``:

* score ``s = sum_k w_k g_k``, noise prediction ``eps* = E[eps | x_t = x] = -sigma_t s``;
* Hessian ``sum_k w_k (g_k g_k^T - S_k^{-1}) - s s^T`` (indefinite between modes).

Each ``Sigma_k = Q_k diag(e_k) Q_k^T`` is diagonalised once, so ``S_k`` is inverted in O(d²) per point.
"""

from __future__ import annotations

import math

import torch

from sciml.core import check_floating, check_generator


def _components_and_noise(mix, n: int, generator: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Component index per draw (by the mixture weights) and standard normal noise (n, d), both from ``generator``."""
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be an int >= 1, got {n!r}")
    check_generator(generator, mix.means.device)
    comp = torch.multinomial(mix.weights, n, replacement=True, generator=generator)
    return comp, torch.randn(n, mix.dim, dtype=torch.float64, device=mix.means.device, generator=generator)


class GaussianMixture:
    """A Gaussian mixture in R^d with exact diffusion quantities.

    Args:
        weights: (K,) positive mixture weights (normalised here).
        means: (K, d).
        covs: (K, d, d) symmetric positive definite.

    Everything is computed in float64 on the device of ``means``; inputs ``x`` are cast to float64 and results
    are returned in ``x``'s dtype.
    """

    def __init__(self, weights: torch.Tensor, means: torch.Tensor, covs: torch.Tensor) -> None:
        for name, value in (("weights", weights), ("means", means), ("covs", covs)):
            check_floating(torch.as_tensor(value), name)
        means = torch.as_tensor(means, dtype=torch.float64)
        weights = torch.as_tensor(weights, dtype=torch.float64, device=means.device)
        covs = torch.as_tensor(covs, dtype=torch.float64, device=means.device)
        if means.ndim != 2:
            raise ValueError(f"means must have shape (K, d), got {tuple(means.shape)}")
        K, d = means.shape
        if weights.shape != (K,):
            raise ValueError(f"weights must have shape ({K},) to match means, got {tuple(weights.shape)}")
        if covs.shape != (K, d, d):
            raise ValueError(f"covs must have shape ({K}, {d}, {d}), got {tuple(covs.shape)}")
        if bool((weights <= 0).any()):
            raise ValueError("weights must be > 0")
        if not torch.allclose(covs, covs.transpose(-1, -2), rtol=1e-10, atol=1e-12):
            raise ValueError("covs must be symmetric")
        evals, evecs = torch.linalg.eigh(covs)
        if bool((evals <= 0).any()):
            raise ValueError(f"covs must be positive definite (smallest eigenvalue {float(evals.min()):.3g})")
        self.weights = weights / weights.sum()
        self.means, self.covs = means, covs
        self._evals, self._evecs = evals, evecs          # (K, d), (K, d, d)
        self.dim, self.n_components = d, K

    def to(self, device: torch.device | str) -> GaussianMixture:
        """The same mixture on another device."""
        return GaussianMixture(self.weights.to(device), self.means.to(device), self.covs.to(device))

    # ------------------------------------------------------------------ helpers
    def _coeffs(self, t, schedule) -> tuple[float, float]:
        t = torch.as_tensor(t, dtype=torch.float64)
        if t.numel() > 1:
            flat = t.reshape(-1)
            if not bool((flat == flat[0]).all()):
                raise ValueError("GaussianMixture needs one time for the whole batch; got different times")
            t = flat[0]
        alpha, sigma = schedule.alpha_sigma(t.reshape(()))
        return float(alpha), float(sigma)

    def _parts(self, x: torch.Tensor, alpha: float, sigma: float):
        """Log responsibilities' numerators, and ``g_k`` in each component's eigenbasis."""
        check_floating(x, "x")
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f"x must have shape (n, {self.dim}), got {tuple(x.shape)}")
        x = x.to(dtype=torch.float64, device=self.means.device)
        s_diag = alpha**2 * self._evals + sigma**2                          # (K, d): eigenvalues of S_k
        # y_k = Q_k^T (x - alpha mu_k), kept as (K, n, d) so that each component is one BLAS matmul.
        y = torch.matmul(x[None, :, :] - alpha * self.means[:, None, :], self._evecs)
        log_comp = (-0.5 * (y**2 / s_diag[:, None, :]).sum(-1) - 0.5 * torch.log(s_diag).sum(-1)[:, None]
                    - 0.5 * self.dim * math.log(2 * math.pi) + torch.log(self.weights)[:, None]).T  # (n, K)
        return log_comp, y, s_diag

    # ------------------------------------------------------------------ public API
    def log_prob(self, x: torch.Tensor, t=0.0, schedule=None) -> torch.Tensor:
        """``log p_t(x)``; with ``schedule=None`` the clean density p_0. Shapes: (n, d) -> (n,)."""
        alpha, sigma = (1.0, 0.0) if schedule is None else self._coeffs(t, schedule)
        log_comp, _, _ = self._parts(x, alpha, sigma)
        return torch.logsumexp(log_comp, dim=1).to(x.dtype)

    def responsibilities(self, x: torch.Tensor, t=0.0, schedule=None) -> torch.Tensor:
        """Posterior component probabilities ``w_k(x)`` under p_t (p_0 when ``schedule=None``). (n, d) -> (n, K)."""
        alpha, sigma = (1.0, 0.0) if schedule is None else self._coeffs(t, schedule)
        log_comp, _, _ = self._parts(x, alpha, sigma)
        return torch.softmax(log_comp, dim=1).to(x.dtype)

    def _score_terms(self, x, t, schedule):
        alpha, sigma = self._coeffs(t, schedule)
        log_comp, y, s_diag = self._parts(x, alpha, sigma)
        w = torch.softmax(log_comp, dim=1)                                    # (n, K)
        g = -torch.matmul(y / s_diag[:, None, :], self._evecs.transpose(1, 2)).transpose(0, 1)   # (n, K, d)
        return w, g, s_diag, sigma

    def score(self, x: torch.Tensor, t, schedule) -> torch.Tensor:
        """``∇ log p_t(x)``. Shapes: (n, d) -> (n, d)."""
        w, g, _, _ = self._score_terms(x, t, schedule)
        return (w[:, None, :] @ g)[:, 0, :].to(x.dtype)

    def eps(self, x: torch.Tensor, t, schedule) -> torch.Tensor:
        """Exact noise prediction ``E[eps | x_t = x] = -sigma_t ∇ log p_t(x)``. Shapes: (n, d) -> (n, d)."""
        w, g, _, sigma = self._score_terms(x, t, schedule)
        return (-sigma * (w[:, None, :] @ g)[:, 0, :]).to(x.dtype)

    def hessian(self, x: torch.Tensor, t, schedule) -> torch.Tensor:
        """``∇² log p_t(x)`` (symmetric, possibly indefinite). Shapes: (n, d) -> (n, d, d)."""
        w, g, s_diag, _ = self._score_terms(x, t, schedule)
        s = (w[:, None, :] @ g)[:, 0, :]
        s_inv = (self._evecs / s_diag[:, None, :]) @ self._evecs.transpose(1, 2)              # (K, d, d)
        wg = g * w[:, :, None].sqrt()
        second = wg.transpose(1, 2) @ wg - (w @ s_inv.reshape(self.n_components, -1)).reshape(-1, self.dim, self.dim)
        return (second - s[:, :, None] * s[:, None, :]).to(x.dtype)

    def eps_model(self, schedule):
        """A callable ``eps_model(x, t)`` (the interface every sampler takes) for this mixture and schedule."""

        def model(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            return self.eps(x, t, schedule)

        return model

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` exact samples from p_0 (float64, on the means' device). Shapes: -> (n, d)."""
        comp, z = _components_and_noise(self, n, generator)
        root = self._evecs * self._evals.sqrt()[:, None, :]                  # Q diag(sqrt e): Sigma = root root^T
        return self.means[comp] + torch.einsum("nij,nj->ni", root[comp], z)

    def assign(self, x: torch.Tensor) -> torch.Tensor:
        """Index of the most responsible component under p_0. Shapes: (n, d) -> (n,) int64."""
        log_comp, _, _ = self._parts(x, 1.0, 0.0)
        return log_comp.argmax(dim=1)


def gmm_2d_8mode(device: torch.device | str = "cpu") -> GaussianMixture:
    """The spec's 2-D problem: 8 means on a circle of radius 4, Sigma = 0.05 I, pi ∝ [3,1,1,2,1,1,2,1]."""
    angles = torch.arange(8, dtype=torch.float64, device=device) * (2 * math.pi / 8)
    means = 4.0 * torch.stack([torch.cos(angles), torch.sin(angles)], dim=1)
    covs = 0.05 * torch.eye(2, dtype=torch.float64, device=device).expand(8, 2, 2).clone()
    weights = torch.tensor([3, 1, 1, 2, 1, 1, 2, 1], dtype=torch.float64, device=device)
    return GaussianMixture(weights, means, covs)


def gmm_16d_5mode(generator: torch.Generator | None = None, device: torch.device | str = "cpu") -> GaussianMixture:
    """The spec's 16-D problem: mu ~ N(0, 3² I), Sigma_k = A A^T + 0.05 I with A_ij ~ N(0, 0.3²), 5 modes.

    The problem is random; pass a seeded generator (the benchmark uses seed 0) to fix it.
    """
    d, K = 16, 5
    means = 3.0 * torch.randn(K, d, dtype=torch.float64, device=device, generator=generator)
    A = 0.3 * torch.randn(K, d, d, dtype=torch.float64, device=device, generator=generator)
    covs = A @ A.transpose(-1, -2) + 0.05 * torch.eye(d, dtype=torch.float64, device=device)
    weights = torch.tensor([0.4, 0.25, 0.15, 0.1, 0.1], dtype=torch.float64, device=device)
    return GaussianMixture(weights, means, covs)


class IsotropicGaussianMixture:
    """``p_0 = sum_k pi_k N(mu_k, s_k² I)`` in high dimension (d in the thousands) with the exact noise prediction.

    ``S_k = (alpha² s_k² + sigma²) I`` is a scalar per component, so ``eps*`` costs O(n K d) and nothing of size
    d x d is formed (the general :class:`GaussianMixture` stores and diagonalises K d x d covariances).

    Args:
        weights: (K,) positive; means: (K, d); stds: (K,) positive component standard deviations.
    """

    def __init__(self, weights: torch.Tensor, means: torch.Tensor, stds: torch.Tensor) -> None:
        for name, value in (("weights", weights), ("means", means), ("stds", stds)):
            check_floating(torch.as_tensor(value), name)
        self.means = torch.as_tensor(means, dtype=torch.float64)
        K, d = self.means.shape
        w = torch.as_tensor(weights, dtype=torch.float64, device=self.means.device)
        self.stds = torch.as_tensor(stds, dtype=torch.float64, device=self.means.device)
        if w.shape != (K,) or self.stds.shape != (K,):
            raise ValueError(f"weights and stds must have shape ({K},), got {tuple(w.shape)}, {tuple(self.stds.shape)}")
        if bool((w <= 0).any()) or bool((self.stds <= 0).any()):
            raise ValueError("weights and stds must be > 0")
        self.weights = w / w.sum()
        self.dim, self.n_components = d, K

    def _terms(self, x: torch.Tensor, t, schedule):
        alpha, sigma = GaussianMixture._coeffs(self, t, schedule) if schedule is not None else (1.0, 0.0)
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f"x must have shape (n, {self.dim}), got {tuple(x.shape)}")
        x = x.to(dtype=torch.float64, device=self.means.device)
        s2 = alpha**2 * self.stds**2 + sigma**2                                      # (K,)
        diff = x[:, None, :] - alpha * self.means[None]                               # (n, K, d)
        log_comp = (-0.5 * (diff**2).sum(-1) / s2 - 0.5 * self.dim * torch.log(2 * math.pi * s2)
                    + torch.log(self.weights))
        return log_comp, diff, s2, sigma

    def eps(self, x: torch.Tensor, t, schedule) -> torch.Tensor:
        """Exact ``E[eps | x_t = x] = sigma_t sum_k w_k (x - alpha mu_k) / S_k``. Shapes: (n, d) -> (n, d)."""
        log_comp, diff, s2, sigma = self._terms(x, t, schedule)
        w = torch.softmax(log_comp, dim=1)                                            # (n, K)
        return (sigma * ((w / s2)[:, :, None] * diff).sum(1)).to(x.dtype)

    def log_prob(self, x: torch.Tensor, t=0.0, schedule=None) -> torch.Tensor:
        return torch.logsumexp(self._terms(x, t, schedule)[0], dim=1).to(x.dtype)

    def eps_model(self, schedule):
        return lambda x, t: self.eps(x.reshape(x.shape[0], -1), t, schedule).reshape(x.shape)

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` exact samples from p_0 (float64). Shapes: -> (n, d)."""
        comp, z = _components_and_noise(self, n, generator)
        return self.means[comp] + self.stds[comp, None] * z


def gmm_isotropic(dim: int, generator: torch.Generator | None = None, n_components: int = 5,
                  device: torch.device | str = "cpu") -> IsotropicGaussianMixture:
    """An image-scaled high-dimensional test problem: means ~ N(0, 0.5² I_d) (pixel-like spread), component stds
    0.2 .. 0.6, weights [.4, .25, .15, .1, .1] (the 16-D problem's). Drawn from ``generator`` (seed it)."""
    K = n_components
    means = 0.5 * torch.randn(K, dim, dtype=torch.float64, generator=generator).to(device)
    stds = torch.linspace(0.2, 0.6, K, dtype=torch.float64, device=device)
    weights = torch.tensor([0.4, 0.25, 0.15, 0.1, 0.1][:K] if K <= 5 else [1.0] * K, dtype=torch.float64,
                           device=device)
    return IsotropicGaussianMixture(weights, means, stds)
