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


SDP_SOLVERS = ("mixing", "scs")


@dataclasses.dataclass(frozen=True)
class GWResult(Result):
    """Solution of the Goemans-Williamson SDP ``max sum_{a<b} W_ab (1 - X_ab)/2, diag X = 1, X >= 0``.

    Attributes:
        C: (m, m) correlations v_i . v_j (unit diagonal). V: (m, k) unit vectors.
        sdp_value: primal relaxed cut of V in the units of W (a lower bound on the SDP optimum).
        certified_bound: an upper bound on the SDP optimum, hence on the max cut, from a dual-feasible point
            (the multipliers of V shifted by the smallest eigenvalue; valid whatever the solver's accuracy).
        duality_gap: ``certified_bound - sdp_value`` (>= 0 up to rounding); the true error of the solve.
        sweeps: mixing-method sweeps or SCS iterations. solver: "mixing" or "scs".
        status: CONVERGED when ``duality_gap <= tol * |certified_bound|``.
    """

    C: torch.Tensor
    V: torch.Tensor
    sdp_value: float
    certified_bound: float
    duality_gap: float
    sweeps: int
    solver: str
    status: Status


def _dual_bound(A: np.ndarray, V: np.ndarray) -> float:
    """Lower bound on ``min <A, X>, diag X = 1, X >= 0`` (A: zero diagonal) from the primal point V.

    Multipliers ``y_i = v_i . (A V)_i`` make ``A - Diag(y)`` PSD at the optimum; shifting all of them by
    ``min(0, lambda_min(A - Diag(y)))`` makes it PSD always, so ``sum y`` is a valid dual value (weak duality).
    """
    y = np.einsum("ij,ij->i", V, A @ V)
    shift = min(0.0, float(np.linalg.eigvalsh(A - np.diag(y))[0]))
    return float(y.sum() + len(y) * shift)


def _relative_gap(A: np.ndarray, V: np.ndarray) -> float:
    """(certified bound - primal cut) / |certified bound| of V (both in normalised units)."""
    obj = float(np.einsum("ij,ij->", A, V @ V.T))
    lower = _dual_bound(A, V)
    return max(obj - lower, 0.0) / max(abs(float(A.sum()) - lower), 1e-300)


def gw_correlations(W: torch.Tensor, rank: int | None = None, max_sweeps: int = 1000, tol: float = 1e-4,
                    generator: torch.Generator | None = None, on_failure: str = "warn",
                    solver: str = "mixing") -> GWResult:
    """Goemans-Williamson correlations, by the mixing method (default) or cvxpy + SCS (the authors' solver).

    Reference: Goemans & Williamson, J. ACM 42 (1995); Wang, Chang, Kolter, "The mixing method", arXiv:1706.00476
    (rank ceil(sqrt(2m)) + 1 has no spurious local optima generically); spec A2.3.

    Args:
        W: (m, m) symmetric weights (normalised internally by max |W|).
        rank: vector dimension k of the mixing method; default ceil(sqrt(2 m)) + 1.
        max_sweeps: sweeps over all nodes (mixing) or SCS iterations.
        tol: relative duality gap at which the solve counts as converged (checked with the certified bound).
        generator: for the random initial vectors (mixing).
        on_failure: "warn" (ConvergenceWarning), "raise" or "ignore" when the gap is not reached.
        solver: "mixing" (torch/numpy only) or "scs" (cvxpy + SCS, imported lazily; ``pip install cvxpy``).

    Differs from the paper/reference code: the authors use cvxpy + SCS at eps 1e-9 and accept
    "optimal_inaccurate" silently; here either solver's answer is certified by a dual bound and its gap decides
    the status.
    """
    from sciml.quantum._options import check_choice, check_on_failure

    check_choice("solver", solver, SDP_SOLVERS)
    check_on_failure(on_failure)
    Wn = W.to(torch.float64)
    check_generator(generator, Wn.device)
    m = Wn.shape[0]
    scale = float(Wn.abs().max()) or 1.0
    A = (Wn / scale).cpu().numpy()
    np.fill_diagonal(A, 0.0)
    total = float(A.sum())
    if solver == "scs":
        V, sweeps = _scs_vectors(A, max_sweeps, tol)
    else:
        V, sweeps = _mixing_vectors(A, rank or math.ceil(math.sqrt(2 * m)) + 1, max_sweeps, tol, generator)
    primal = scale * (total - float(np.einsum("ij,ij->", A, V @ V.T))) / 4
    bound = scale * (total - _dual_bound(A, V)) / 4
    gap = max(bound - primal, 0.0)
    rel = _relative_gap(A, V)
    status = Status.CONVERGED if rel <= tol else Status.MAX_ITER
    report_status(status, "gw_correlations", f"{solver}: relative duality gap {rel:.2e} > "
                  f"tol {tol:g} after {sweeps} {'sweeps' if solver == 'mixing' else 'iterations'}", on_failure)
    Vt = torch.from_numpy(V).to(Wn.device)
    return GWResult(Vt @ Vt.T, Vt, primal, bound, gap, sweeps, solver, status)


def _mixing_vectors(A: np.ndarray, k: int, max_sweeps: int, tol: float,
                    generator: torch.Generator | None) -> tuple[np.ndarray, int]:
    """Coordinate descent on unit vectors for ``min <A, V V^T>``; stops when the certified gap is below tol."""
    m = A.shape[0]
    # The coordinate sweep is sequential over nodes on tiny matrices: numpy's per-call overhead is ~10x lower.
    V = torch.randn(m, k, generator=generator, dtype=torch.float64).numpy()
    V /= np.linalg.norm(V, axis=1, keepdims=True)
    for sweep in range(1, max_sweeps + 1):
        for i in range(m):
            g = A[i] @ V
            norm = np.sqrt(g @ g)
            if norm > 1e-15:
                V[i] = -g / norm
        if (sweep % 10 == 0 or sweep == max_sweeps) and _relative_gap(A, V) <= tol:   # one eigvalsh per check
            return V, sweep
    return V, max_sweeps


def _scs_vectors(A: np.ndarray, max_iters: int, tol: float) -> tuple[np.ndarray, int]:
    """``min <A, X>, diag X = 1, X >= 0`` with cvxpy + SCS; X factored by eigendecomposition (rows normalised)."""
    try:
        import cvxpy as cp
    except ImportError as err:
        raise ImportError("solver='scs' needs cvxpy (pip install 'sciml[quantum]' or pip install cvxpy)") from err
    m = A.shape[0]
    X = cp.Variable((m, m), symmetric=True)
    prob = cp.Problem(cp.Minimize(cp.trace(A @ X)), [X >> 0, cp.diag(X) == 1])
    prob.solve(solver=cp.SCS, eps_abs=tol * 1e-2, eps_rel=tol * 1e-2, max_iters=max_iters)
    if X.value is None:
        raise RuntimeError(f"SCS returned no solution (status {prob.status})")
    evals, evecs = np.linalg.eigh((X.value + X.value.T) / 2)
    evals = np.where(evals > 1e-6 * max(evals.max(), 1e-12), evals, 0.0)    # spec A2.3: drop tiny eigenvalues
    V = evecs * np.sqrt(evals)
    V /= np.maximum(np.linalg.norm(V, axis=1, keepdims=True), 1e-15)
    iters = int(getattr(prob.solver_stats, "num_iters", 0) or 0)
    return V, iters
