"""Chebyshev-Tucker ranks and errors for smooth 3-D kernels, against grid-based HOSVD at equal accuracy.

Kernels: the long-range Newton piece erf(r/s)/r, the long-range (small-exponent) parts of the Yukawa and Slater
sinc-Gaussian sums, a Gaussian, and Slater exp(-r) on a box away from its cusp. For each tolerance: CT ranks,
degrees (adaptive), relative max error at random points, and the smallest grid-HOSVD rank on an n^3 grid that
reaches the CT's own error on that grid (the "equal accuracy" rank).
"""

from __future__ import annotations

import dataclasses

import torch

from sciml.linalg import tucker_hosvd
from sciml.runner import ExperimentConfig, RunContext, experiment
from sciml.tensor import ChebyshevTucker, gaussian, newton_long, sinc_gaussian_sum, slater
from sciml.tensor.ct_spline import cell_centres


@dataclasses.dataclass(frozen=True)
class Config(ExperimentConfig):
    tols: tuple[float, ...] = (1e-4, 1e-6, 1e-8, 1e-10)
    n_grid: int = 48             # grid baseline n^3
    sigma: float = 0.3           # erf(r/sigma)/r split width
    max_exponent: float = 9.0    # sinc terms with t_k^2 <= this form the long-range part (width >= 1/3)
    n_eval: int = 5000

    def validate(self) -> None:
        if not self.tols or any(not 0 < t < 1 for t in self.tols):
            raise ValueError(f"tols must be non-empty, each in (0, 1), got {self.tols}")
        if self.n_grid < 8 or self.sigma <= 0 or self.max_exponent <= 0 or self.n_eval < 1:
            raise ValueError(f"n_grid >= 8, sigma > 0, max_exponent > 0, n_eval >= 1 required, got {self}")


def _long_part(kernel: str, max_exponent: float, device):
    terms = sinc_gaussian_sum(kernel, h=0.2, n_terms=48, param=1.0, device=device)
    n_long = int((terms.exponents <= max_exponent).sum())
    return terms.split(n_long)[0]


def _equal_accuracy_rank(full: torch.Tensor, target: float) -> int:
    """Smallest r with rank-(r, r, r) HOSVD error <= target (grid-optimal up to HOSVD's sqrt(d) factor)."""
    for r in range(1, min(full.shape) + 1):
        if tucker_hosvd(full, ranks=r, method="svd").rel_error <= target:
            return r
    return min(full.shape)


@experiment("tensor/ct-kernels", config=Config, tags=("tensor",),
            summary="CT ranks/errors for smooth kernels vs grid HOSVD ranks at equal accuracy")
def run(cfg: Config, ctx: RunContext) -> dict[str, float]:
    dev = ctx.device
    kernels = {
        "newton_long": (lambda x: newton_long(x, cfg.sigma), [(-1.0, 1.0)] * 3),
        "yukawa_long": (_long_part("yukawa", cfg.max_exponent, dev), [(-1.0, 1.0)] * 3),
        "slater_long": (_long_part("slater", cfg.max_exponent, dev), [(-1.0, 1.0)] * 3),
        "gaussian": (lambda x: gaussian(x, 0.4), [(-1.0, 1.0)] * 3),
        "slater_offcusp": (lambda x: slater(x, 1.0), [(0.5, 1.5)] * 3),
    }
    if cfg.smoke:
        kernels = {k: kernels[k] for k in ("newton_long", "yukawa_long")}
    tols = cfg.tols[:2] if cfg.smoke else cfg.tols
    n = 24 if cfg.smoke else cfg.n_grid
    out, table = {}, {}
    for name, (fn, box) in ctx.progress(kernels.items(), total=len(kernels), desc="kernels"):
        lo = torch.tensor([a for a, _ in box], dtype=torch.float64, device=dev)
        hi = torch.tensor([b for _, b in box], dtype=torch.float64, device=dev)
        pts = lo + (hi - lo) * torch.rand(cfg.n_eval, 3, generator=ctx.make_generator(5), dtype=torch.float64,
                                          device=dev)
        grids = [cell_centres(n, iv, device=dev) for iv in box]
        full = fn(torch.stack(torch.meshgrid(*grids, indexing="ij"), -1).reshape(-1, 3)).reshape(n, n, n)
        table[name] = []
        for tol in tols:
            ct = ChebyshevTucker.fit(fn, box, tol=tol, device=dev)
            err = float((ct.evaluate(pts) - fn(pts)).abs().max() / fn(pts).abs().max())
            grid_err = float(torch.linalg.vector_norm(ct.to_grid(grids).to_tensor() - full)
                             / torch.linalg.vector_norm(full))
            grid_rank = _equal_accuracy_rank(full, grid_err)
            table[name].append((tol, max(ct.ranks), grid_rank, err))
            out[f"{name}/tol{tol:g}/ct_rank"] = float(max(ct.ranks))
            out[f"{name}/tol{tol:g}/ct_degree"] = float(max(ct.degrees))
            out[f"{name}/tol{tol:g}/ct_rel_max_err"] = err
            out[f"{name}/tol{tol:g}/grid_rank_equal_accuracy"] = float(grid_rank)
        ctx.log(f"{name}: (tol, CT rank, grid rank at equal accuracy, CT err) {table[name]}")
    _plot(ctx, table)
    return out


def _plot(ctx: RunContext, table) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for i, (name, rows) in enumerate(table.items()):
        color = f"C{i}"
        ax.semilogx([r[0] for r in rows], [r[1] for r in rows], "o-", color=color, label=f"{name} CT")
        ax.semilogx([r[0] for r in rows], [r[2] for r in rows], "x:", color=color, label=f"{name} grid (equal acc.)")
    ax.invert_xaxis()
    ax.set_xlabel("tolerance")
    ax.set_ylabel("Tucker rank")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    ctx.save_figure("kernel_ranks", fig)
