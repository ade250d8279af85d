"""Exact Max-Cut merges with a tracked constant and lift, and Goemans-Williamson correlations.

Max-Cut graphs here come from ``QUBO.to_maxcut`` (node 0 = anchor, node i+1 = variable i). A merge imposes
``z_i = z_j`` (s = +1) or ``z_i = 1 - z_j`` (s = -1) and rewrites the cut function exactly on one node fewer:
``cut_original(lift(z)) = cut_shrunk(z) + const`` for every assignment of the alive nodes.

Reference: spec A2.2-A2.4; V. Fischer et al., "Quantum and classical correlations in shrinking algorithms for
optimization", arXiv:2404.17242; S. Bravyi et al., RQAOA, arXiv:1910.08980 (same merge algebra).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch

from sciml.core import Result, Status, check_generator, report_status
from sciml.quantum.qubo import QUBO


class ShrinkState:
    """Mutable merge state of a Max-Cut graph: current weights, alive nodes, cluster roots and signs, constant.

    Args:
        W: (m, m) symmetric Max-Cut weights, node 0 the anchor (kept alive; merges into it fix variables).
        offset: the QUBO offset, so that ``shrunk_qubo()`` energies equal original QUBO energies of lifted states.
    """

    def __init__(self, W: torch.Tensor, offset: float = 0.0) -> None:
        self.W = W.to(torch.float64).clone()
        m = self.W.shape[0]
        self.alive = torch.ones(m, dtype=torch.bool)
        self.root = torch.arange(m)
        self.sign = torch.ones(m, dtype=torch.int64)
        self.const = 0.0
        self.offset = float(offset)
        self.history: list[tuple[int, int, int]] = []

    @property
    def num_alive(self) -> int:
        return int(self.alive.sum())

    def alive_nodes(self) -> torch.Tensor:
        return torch.nonzero(self.alive).flatten()

    def tentative_cluster(self, i: int, j: int, s: int) -> tuple[np.ndarray, np.ndarray]:
        """Original nodes and relative signs of the cluster rooted at the survivor after merging i into j."""
        keep, gone = (j, i) if j < i else (i, j)
        members = torch.nonzero((self.root == keep) | (self.root == gone)).flatten()
        signs = self.sign[members] * torch.where(self.root[members] == gone, s, 1)
        return members.numpy(), signs.numpy()

    def merge(self, i: int, j: int, s: int) -> None:
        """Impose z_i = z_j (s = +1) or z_i = 1 - z_j (s = -1); the larger index is removed (anchor 0 stays)."""
        if s not in (1, -1):
            raise ValueError(f"s must be +1 or -1, got {s}")
        if i == j or not (self.alive[i] and self.alive[j]):
            raise ValueError(f"merge needs two distinct alive nodes, got {i}, {j}")
        keep, gone = (j, i) if j < i else (i, j)
        others = self.alive.clone()
        others[[keep, gone]] = False
        w_gone = self.W[gone] * others
        if s == -1:
            self.const += float(self.W[gone, keep] + w_gone.sum())
        self.W[keep] += s * w_gone
        self.W[:, keep] += s * w_gone
        self.W[gone] = 0
        self.W[:, gone] = 0
        self.W[keep, keep] = 0
        self.alive[gone] = False
        moved = self.root == gone
        self.sign[moved] *= s
        self.root[moved] = keep
        self.history.append((gone, keep, s))

    def shrunk_weights(self) -> torch.Tensor:
        idx = self.alive_nodes()
        return self.W[idx][:, idx]

    def shrunk_qubo(self) -> QUBO:
        """QUBO over the alive non-anchor nodes whose energies equal the original QUBO's at the lifted state."""
        q = QUBO.from_maxcut(self.shrunk_weights(), self.const)
        return QUBO(q.Q, q.offset + self.offset)

    def lift(self, y: torch.Tensor) -> torch.Tensor:
        """(b, k) bits of the alive non-anchor nodes (ascending node order) -> (b, m - 1) original variables."""
        y = torch.as_tensor(y).to(torch.int64)
        squeeze = y.ndim == 1
        y = y.reshape(-1, y.shape[-1])
        idx = self.alive_nodes()[1:]
        if y.shape[1] != len(idx):
            raise ValueError(f"expected {len(idx)} bits (alive non-anchor nodes), got {y.shape[1]}")
        z = torch.zeros(y.shape[0], self.W.shape[0], dtype=torch.int64)
        z[:, idx] = y
        flip = (self.sign < 0).to(torch.int64)
        x = (z[:, self.root] ^ flip)[:, 1:]        # z_0 = 0 and the anchor's own sign is +1
        return x[0] if squeeze else x


@dataclasses.dataclass(frozen=True)
class GWResult(Result):
    """Burer-Monteiro solution of the Goemans-Williamson SDP.

    Attributes:
        C: (m, m) correlations v_i . v_j (unit diagonal). V: (m, k) unit vectors.
        sdp_value: relaxed cut ``sum_{a<b} W_ab (1 - v_a.v_b)/2`` in the units of W. sweeps: sweeps used.
    """

    C: torch.Tensor
    V: torch.Tensor
    sdp_value: float
    sweeps: int
    status: Status


def gw_correlations(W: torch.Tensor, rank: int | None = None, max_sweeps: int = 200, tol: float = 1e-9,
                    generator: torch.Generator | None = None, on_failure: str = "ignore") -> GWResult:
    """Goemans-Williamson correlations by the mixing method (block coordinate ascent on unit vectors).

    Reference: Goemans & Williamson, J. ACM 42 (1995); Wang, Chang, Kolter, "The mixing method", arXiv:1706.00476
    (rank ceil(sqrt(2m)) + 1 has no spurious local optima generically); spec A2.3.

    Args:
        W: (m, m) symmetric weights (normalised internally by max |W|).
        rank: vector dimension k; default ceil(sqrt(2 m)) + 1.
        max_sweeps: sweeps over all nodes (spec: 100-200). tol: stop when the relative objective change is below.
        generator: for the random initial vectors.
        on_failure: what a sweep budget exhaustion does ("ignore" by default: correlations are still usable).

    Differs from the paper/reference code: the authors solve the SDP with cvxpy + SCS; this solver needs only
    torch and is exact at the optimum (same optimal X up to degeneracy).
    """
    Wn = W.to(torch.float64)
    check_generator(generator, Wn.device)
    m = Wn.shape[0]
    scale = float(Wn.abs().max()) or 1.0
    Wn = Wn / scale
    k = rank or math.ceil(math.sqrt(2 * m)) + 1
    V0 = torch.randn(m, k, generator=generator, dtype=torch.float64, device=Wn.device)
    # The coordinate sweep is sequential over nodes on tiny matrices: numpy's per-call overhead is ~10x lower.
    Wa = Wn.cpu().numpy()
    V = V0.cpu().numpy()
    V /= np.linalg.norm(V, axis=1, keepdims=True)
    prev = float((Wa * (V @ V.T)).sum())
    status, sweeps = Status.MAX_ITER, max_sweeps
    for sweep in range(max_sweeps):
        for i in range(m):
            g = Wa[i] @ V
            norm = np.sqrt(g @ g)
            if norm > 1e-15:
                V[i] = -g / norm
        obj = float((Wa * (V @ V.T)).sum())
        if abs(prev - obj) <= tol * max(1.0, abs(obj)):
            status, sweeps = Status.CONVERGED, sweep + 1
            break
        prev = obj
    V = torch.from_numpy(V).to(Wn.device)
    report_status(status, "gw_correlations", f"{max_sweeps} sweeps", on_failure)
    C = V @ V.T
    value = float((W.to(torch.float64) * (1 - C)).sum()) / 4
    return GWResult(C, V, value, sweeps, status)
