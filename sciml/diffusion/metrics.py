"""Sample-quality metrics: sliced Wasserstein-2, unbiased RBF-MMD², mixture-weight total variation, Fréchet distance.

All metrics compare two point clouds of shape (n, d); they run in float64 on the inputs' device.
"""

from __future__ import annotations

import torch

from sciml.core import check_floating, check_generator
from sciml.linalg import sqrtm_psd


def _pair(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    check_floating(a, "a")
    check_floating(b, "b")
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"a and b must have shapes (n, d) and (m, d), got {tuple(a.shape)} and {tuple(b.shape)}")
    if a.shape[0] < 2 or b.shape[0] < 2:
        raise ValueError("a and b need at least 2 points each")
    return a.double(), b.to(dtype=torch.float64, device=a.device)


def _quantiles(sorted_proj: torch.Tensor, levels: torch.Tensor) -> torch.Tensor:
    """Empirical quantile function (left-continuous inverse CDF) of each row at ``levels`` in (0, 1)."""
    n = sorted_proj.shape[1]
    idx = torch.clamp(torch.ceil(levels * n).long() - 1, 0, n - 1)
    return sorted_proj[:, idx]


def sliced_w2(a: torch.Tensor, b: torch.Tensor, n_projections: int = 500,
              generator: torch.Generator | None = None) -> torch.Tensor:
    """Sliced Wasserstein-2 distance ``sqrt(E_theta W2²(theta·a, theta·b))`` over uniform random directions.

    Each 1-D W2 is exact (quantile matching of the sorted projections; unequal sizes use the merged quantile
    levels of both empirical CDFs).

    Reference: Rabin et al. 2011; Bonneel et al. 2015 (sliced Wasserstein).

    Shapes: (n, d), (m, d) -> scalar float64 tensor.
    """
    a, b = _pair(a, b)
    if not isinstance(n_projections, int) or n_projections < 1:
        raise ValueError(f"n_projections must be an int >= 1, got {n_projections!r}")
    check_generator(generator, a.device)
    theta = torch.randn(n_projections, a.shape[1], dtype=torch.float64, device=a.device, generator=generator)
    theta = theta / theta.norm(dim=1, keepdim=True)
    pa = torch.sort(theta @ a.T, dim=1).values
    pb = torch.sort(theta @ b.T, dim=1).values
    if a.shape[0] == b.shape[0]:
        return torch.sqrt(((pa - pb) ** 2).mean())
    n, m = a.shape[0], b.shape[0]
    cuts = torch.unique(torch.cat([torch.arange(1, n + 1, device=a.device) / n,
                                   torch.arange(1, m + 1, device=a.device) / m]).double())
    widths = torch.diff(cuts, prepend=torch.zeros(1, dtype=torch.float64, device=a.device))
    mids = cuts - 0.5 * widths
    diff = _quantiles(pa, mids) - _quantiles(pb, mids)
    return torch.sqrt(((diff**2) * widths).sum(1).mean())


def rbf_mmd2(a: torch.Tensor, b: torch.Tensor, bandwidth: float | None = None) -> torch.Tensor:
    """Unbiased MMD² with the kernel ``exp(-|x - y|² / (2 h²))``.

    Args:
        bandwidth: h; None uses the median heuristic on the pooled sample (median pairwise distance).

    Reference: Gretton et al. 2012, JMLR 13, eq. 3 (unbiased estimator).

    Shapes: (n, d), (m, d) -> scalar float64 tensor (can be slightly negative).
    """
    a, b = _pair(a, b)
    if bandwidth is None:
        pooled = torch.cat([a, b])
        bandwidth = float(torch.cdist(pooled, pooled).median())
    if not bandwidth > 0:
        raise ValueError(f"bandwidth must be > 0, got {bandwidth}")
    gamma = 0.5 / bandwidth**2
    kaa = torch.exp(-gamma * torch.cdist(a, a) ** 2)
    kbb = torch.exp(-gamma * torch.cdist(b, b) ** 2)
    kab = torch.exp(-gamma * torch.cdist(a, b) ** 2)
    n, m = a.shape[0], b.shape[0]
    term_a = (kaa.sum() - kaa.diagonal().sum()) / (n * (n - 1))
    term_b = (kbb.sum() - kbb.diagonal().sum()) / (m * (m - 1))
    return term_a + term_b - 2.0 * kab.mean()


def mode_weight_tv(samples: torch.Tensor, mixture) -> torch.Tensor:
    """Total variation ``0.5 sum_k |hat pi_k - pi_k|`` between the weights of the modes the samples fall in
    (arg-max responsibility under p_0) and the true mixture weights. Shapes: (n, d) -> scalar."""
    check_floating(samples, "samples")
    counts = torch.bincount(mixture.assign(samples), minlength=mixture.n_components).double()
    return 0.5 * (counts / counts.sum() - mixture.weights.to(counts.device)).abs().sum()


def frechet_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Fréchet distance of the Gaussians fitted to two clouds:
    ``|mu_a - mu_b|² + tr(C_a + C_b - 2 (C_a^{1/2} C_b C_a^{1/2})^{1/2})`` (the FID formula).

    Reference: Heusel et al. 2017 (arXiv 1706.08500), Dowson & Landau 1982.

    Shapes: (n, d), (m, d) -> scalar float64 tensor.
    """
    a, b = _pair(a, b)
    mu_a, mu_b = a.mean(0), b.mean(0)
    ca, cb = torch.cov(a.T).reshape(a.shape[1], a.shape[1]), torch.cov(b.T).reshape(b.shape[1], b.shape[1])
    root_a = sqrtm_psd(ca)
    cross = sqrtm_psd(root_a @ cb @ root_a)
    return ((mu_a - mu_b) ** 2).sum() + torch.trace(ca) + torch.trace(cb) - 2.0 * torch.trace(cross)


def polynomial_mmd2(a: torch.Tensor, b: torch.Tensor, degree: int = 3) -> torch.Tensor:
    """Unbiased MMD² with the KID kernel ``k(x, y) = (x·y / d + 1)^degree`` (diagonal terms left out).

    Reference: Bińkowski et al. 2018 (Demystifying MMD GANs, arXiv 1801.01401), eq. 4 and App. D (KID).

    Shapes: (n, d), (m, d) -> scalar float64 tensor (can be slightly negative).
    """
    a, b = _pair(a, b)
    if not isinstance(degree, int) or degree < 1:
        raise ValueError(f"degree must be an int >= 1, got {degree!r}")
    d = a.shape[1]
    kaa = (a @ a.T / d + 1.0) ** degree
    kbb = (b @ b.T / d + 1.0) ** degree
    kab = (a @ b.T / d + 1.0) ** degree
    n, m = a.shape[0], b.shape[0]
    term_a = (kaa.sum() - kaa.diagonal().sum()) / (n * (n - 1))
    term_b = (kbb.sum() - kbb.diagonal().sum()) / (m * (m - 1))
    return term_a + term_b - 2.0 * kab.mean()


def kernel_inception_distance(a: torch.Tensor, b: torch.Tensor, subset_size: int = 1000, n_subsets: int = 100,
                              generator: torch.Generator | None = None) -> tuple[float, float]:
    """KID: mean and standard deviation of :func:`polynomial_mmd2` over ``n_subsets`` random subsets of
    ``min(subset_size, n, m)`` points drawn without replacement from each cloud (as in Bińkowski et al. 2018 and
    torch-fidelity). Any feature space works; "Inception" names the usual one, not a requirement.

    Shapes: (n, d), (m, d) -> (mean, std) as Python floats.
    """
    a, b = _pair(a, b)
    if not isinstance(n_subsets, int) or n_subsets < 1 or not isinstance(subset_size, int) or subset_size < 2:
        raise ValueError(f"need n_subsets >= 1 and subset_size >= 2, got {n_subsets!r}, {subset_size!r}")
    check_generator(generator, a.device)
    size = min(subset_size, a.shape[0], b.shape[0])
    values = torch.empty(n_subsets, dtype=torch.float64)
    for k in range(n_subsets):                      # one (size x size) kernel per subset, vectorised inside
        ia = torch.randperm(a.shape[0], generator=generator, device=a.device)[:size]
        ib = torch.randperm(b.shape[0], generator=generator, device=a.device)[:size]
        values[k] = polynomial_mmd2(a[ia], b[ib])
    std = float(values.std()) if n_subsets > 1 else 0.0
    return float(values.mean()), std
