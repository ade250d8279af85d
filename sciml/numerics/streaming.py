"""Top eigenvector of ``A^T A`` from a stream of rows (Kacham & Woodruff, NeurIPS 2024, arXiv 2412.11963; Price &
Xun, FOCS 2024; spec optim_numerics section 8).

* ``method="oja"``: ``v <- v + eta (a_i^T v) a_i``, renormalised every step (fixed eta; a 1-D tensor of etas runs
  a parallel grid, one vector per eta, and the one with the largest Rayleigh quotient on the stream is returned);
* ``method="block_power"``: the random-order algorithm as the spec reconstructs it: rows with
  ``||a||^2 >= ||A||_F^2 / (d * heavy_factor)`` are kept exactly (``||A||_F^2`` estimated from the rows seen so far,
  a random-order prefix), the light rows are cut into ``n_chunks`` contiguous chunks, and power step t uses
  ``n_chunks * sum_{i in chunk t} a_i a_i^T + A_heavy^T A_heavy``. Memory O(h d + d), one pass, O(n d) time.
"""

from __future__ import annotations

import dataclasses

import torch

from sciml.core import Result


@dataclasses.dataclass(frozen=True)
class StreamingResult(Result):
    """``vector`` (unit, d), ``method``, ``heavy_rows`` kept, ``eta`` chosen (Oja) and rows read."""

    vector: torch.Tensor
    method: str
    heavy_rows: int
    eta: float | None
    rows_read: int


def _check_rows(rows: torch.Tensor) -> torch.Tensor:
    rows = torch.as_tensor(rows)
    if rows.dim() != 2 or rows.shape[0] < 1 or rows.shape[1] < 1:
        raise ValueError(f"rows must be a non-empty (n, d) matrix, got shape {tuple(rows.shape)}")
    if not rows.is_floating_point():
        rows = rows.to(torch.float64)
    if not bool(torch.isfinite(rows).all()):
        raise ValueError("rows contain NaN or Inf")
    return rows


def streaming_top_eigenvector(rows, *, method: str = "block_power", n_chunks: int = 8, eta=None,
                              heavy_factor: float = 10.0, generator: torch.Generator | None = None) -> StreamingResult:
    """One pass over ``rows`` (in the given order) estimating the top eigenvector of ``A^T A``."""
    rows = _check_rows(rows)
    n, d = rows.shape
    v = torch.randn(d, generator=generator, dtype=rows.dtype).to(rows.device)
    v = v / v.norm()
    if method == "oja":
        if eta is None:
            raise ValueError("Oja needs eta (a positive number or a 1-D tensor of them for a parallel grid)")
        etas = torch.as_tensor(eta, dtype=rows.dtype, device=rows.device).reshape(-1)
        if etas.numel() < 1 or not bool((etas > 0).all()):
            raise ValueError(f"eta must be > 0, got {eta!r}")
        V = v[:, None].repeat(1, etas.numel())                          # (d, g): one vector per eta
        quotient = torch.zeros(etas.numel(), dtype=rows.dtype, device=rows.device)
        for a in rows:                                                   # the stream: one row at a time
            proj = a @ V                                                 # (g,)
            quotient += proj.pow(2)                                      # Rayleigh quotient of the final v, later
            V = V + etas * proj * a[:, None]
            V = V / V.norm(dim=0)
        best = int(torch.argmax(torch.stack([(rows @ V[:, j]).pow(2).sum() for j in range(V.shape[1])])))
        return StreamingResult(V[:, best], "oja", 0, float(etas[best]), n)
    if method != "block_power":
        raise ValueError(f"method must be 'oja' or 'block_power', got {method!r}")
    if not isinstance(n_chunks, int) or n_chunks < 1 or n_chunks > n:
        raise ValueError(f"n_chunks must be an int in [1, n={n}], got {n_chunks!r}")
    chunk = n // n_chunks
    heavy: list[torch.Tensor] = []
    frob_seen, seen = 0.0, 0
    for t in range(n_chunks):
        block = rows[t * chunk:(t + 1) * chunk if t < n_chunks - 1 else n]
        norms = block.pow(2).sum(1)
        frob_seen += float(norms.sum())
        seen += len(block)
        frob_estimate = frob_seen * n / seen                               # random order: the prefix is a sample
        is_heavy = norms >= frob_estimate / (d * heavy_factor)
        heavy += list(block[is_heavy])
        light = block[~is_heavy]
        w = n_chunks * (light.T @ (light @ v))
        if heavy:
            H = torch.stack(heavy)
            w = w + H.T @ (H @ v)
        v = w / w.norm()
    return StreamingResult(v, "block_power", len(heavy), None, n)
