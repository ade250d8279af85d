"""Kronecker vs dense solve of (K1 ⊗ K2 ⊗ K3 + s I) x = b on growing 3-D grids: time, memory, agreement."""

from __future__ import annotations

import dataclasses
import math

import torch

from sciml.core.profiling import measure
from sciml.linalg import KroneckerOperator
from sciml.runner import ExperimentConfig, RunContext, experiment


@dataclasses.dataclass(frozen=True)
class Config(ExperimentConfig):
    grid_sizes: tuple[int, ...] = (4, 6, 8, 10, 12, 14, 16, 20, 24, 32, 48, 64, 96)  # points per dimension
    max_dense_n: int = 16          # dense Cholesky up to N = 16^3 = 4096 (134 MB in float64)
    shift: float = 1e-2            # s: the nugget / noise variance
    lengthscale: float = 0.2       # squared-exponential kernel on [0, 1] per dimension
    dtype: str = "float64"

    def validate(self) -> None:
        if not self.grid_sizes or min(self.grid_sizes) < 2:
            raise ValueError(f"grid_sizes must be a non-empty tuple of ints >= 2, got {self.grid_sizes}")
        if self.shift <= 0 or self.lengthscale <= 0:
            raise ValueError(f"shift and lengthscale must be > 0, got {self.shift}, {self.lengthscale}")


def rbf_kernel(n: int, lengthscale: float, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    x = torch.linspace(0.0, 1.0, n, dtype=dtype, device=device)
    return torch.exp(-0.5 * (x[:, None] - x[None, :]) ** 2 / lengthscale**2)


@experiment("linalg/kronecker-scaling", config=Config, tags=("linalg",),
            summary="Kronecker vs dense Cholesky solve + logdet of K1⊗K2⊗K3+sI: time, memory, agreement")
def run(cfg: Config, ctx: RunContext) -> dict[str, float]:
    dtype = getattr(torch, cfg.dtype)
    sizes = tuple(s for s in cfg.grid_sizes if s <= 16) if cfg.smoke else cfg.grid_sizes
    max_dense = min(cfg.max_dense_n, 10) if cfg.smoke else cfg.max_dense_n
    rows = []
    # One throw-away solve so one-time library start-up costs are not charged to the smallest grid.
    KroneckerOperator([rbf_kernel(3, cfg.lengthscale, dtype, ctx.device)] * 2).solve(
        torch.ones(9, dtype=dtype, device=ctx.device), shift=cfg.shift)
    for n in ctx.progress(sizes, desc="grid sizes"):
        factors = [rbf_kernel(n + k, cfg.lengthscale, dtype, ctx.device) for k in range(3)]  # unequal sizes
        op = KroneckerOperator(factors)
        N = op.shape[0]
        b = torch.randn(N, dtype=dtype, device=ctx.device, generator=ctx.generator)

        def kron_solve():
            # A fresh operator each call so the factor eigendecompositions are timed too.
            fresh = KroneckerOperator(factors)
            return fresh.solve(b, shift=cfg.shift), fresh.logdet(shift=cfg.shift)

        kron = measure(kron_solve, repeat=3, device=ctx.device)
        row = {"n": n, "N": N, "kron_s": kron.seconds, "kron_peak_mb": kron.peak_bytes / 2**20}
        if n <= max_dense:
            def dense_solve():
                A = op.to_dense() + cfg.shift * torch.eye(N, dtype=dtype, device=ctx.device)
                L = torch.linalg.cholesky(A)
                x = torch.cholesky_solve(b[:, None], L)[:, 0]
                return x, 2.0 * torch.log(torch.diagonal(L)).sum()

            dense = measure(dense_solve, repeat=1, device=ctx.device)
            x_k, ld_k = kron.value
            x_d, ld_d = dense.value
            row |= {"dense_s": dense.seconds, "dense_peak_mb": dense.peak_bytes / 2**20,
                    "solution_rel_diff": float(torch.linalg.norm(x_k - x_d) / torch.linalg.norm(x_d)),
                    "logdet_rel_diff": float(abs(ld_k - ld_d) / abs(ld_d))}
        rows.append(row)
        ctx.log("  " + ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()))

    _plot(ctx, rows)
    ctx.save_arrays("scaling", **{key: [r.get(key, math.nan) for r in rows] for key in rows[-1] | rows[0]})
    dense_rows = [r for r in rows if "dense_s" in r]
    largest_dense = dense_rows[-1]
    return {
        "largest_N_kron": rows[-1]["N"],
        "kron_seconds_at_largest_N": rows[-1]["kron_s"],
        "largest_N_dense": largest_dense["N"],
        "speedup_at_largest_dense_N": largest_dense["dense_s"] / largest_dense["kron_s"],
        "max_solution_rel_diff": max(r["solution_rel_diff"] for r in dense_rows),
        "max_logdet_rel_diff": max(r["logdet_rel_diff"] for r in dense_rows),
    }


def _plot(ctx: RunContext, rows: list[dict]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_t, ax_m) = plt.subplots(1, 2, figsize=(10, 4))
    dense = [r for r in rows if "dense_s" in r]
    for ax, key, label in ((ax_t, "_s", "seconds"), (ax_m, "_peak_mb", "peak extra memory (MB)")):
        ax.loglog([r["N"] for r in rows], [max(r["kron" + key], 1e-6) for r in rows], "o-", label="Kronecker")
        ax.loglog([r["N"] for r in dense], [max(r["dense" + key], 1e-6) for r in dense], "s-", label="dense Cholesky")
        ax.set_xlabel("N = n1 n2 n3")
        ax.set_ylabel(label)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    ax_t.set_title("solve + logdet of (K1⊗K2⊗K3 + sI)")
    ax_m.set_title("memory")
    ctx.save_figure("kronecker_scaling", fig)
