"""Constrained problems as penalty QUBOs: Maximum Independent Set, Multidimensional Knapsack, Quadratic Assignment.

Each ``*_qubo`` returns ``(qubo, problem)``; the problem object decodes QUBO bitstrings to the original variables,
checks the ORIGINAL constraints, evaluates the original objective, repairs infeasible answers, gives the exact
optimum, and states which shrinking merges would force a violation (``veto``).

Reference: M. Sharma, H. C. Lau, "Adaptive Graph Shrinking for Quantum Optimization of Constrained Combinatorial
Problems", arXiv:2506.14250 (2025); encodings follow qiskit-optimization's ``QuadraticProgramToQubo`` as used by the
authors' code (spec A2.1), repairs follow the spec's reference design (A2.8).

Differs from the paper/reference code:
    - penalties are built by hand (no docplex); the default penalty equals qiskit's automatic one,
      ``1 + sum |objective coefficients|``, and is stored on the problem (``problem.penalty``); a penalty below
      the valid bound is an error (MIS) or a ``PenaltyWarning`` naming a sufficient bound (MDKP, QAP);
    - MDKP also has a slack-free encoding (unbalanced penalisation, Montanez-Barrera et al., arXiv:2211.13914)
      and, for the slack encoding, a veto that keeps slack bits unmerged (every slack value stays reachable).
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from typing import Any, ClassVar

import numpy as np
import torch

from sciml.quantum.qubo import QUBO, _as_float64


class PenaltyWarning(UserWarning):
    """A penalty weight is below a bound that guarantees the QUBO minimum is feasible (it may still be)."""


def _bits_np(x: Any, n: int) -> np.ndarray:
    """(..., >= n) 0/1 array -> (..., n) int64; any other value is an error (never silently 'repaired')."""
    a = np.asarray(x.detach().cpu() if isinstance(x, torch.Tensor) else x)
    if a.ndim == 0 or a.shape[-1] < n:
        raise ValueError(f"expected at least {n} bits, got shape {a.shape}")
    a = a[..., :n]
    if not np.isin(a, (0, 1)).all():
        bad = a[~np.isin(a, (0, 1))].reshape(-1)[0]
        raise ValueError(f"bits must be 0 or 1, found {bad!r}; pass binary decision variables")
    return a.astype(np.int64)


def _warn_penalty(problem: str, penalty: float, bound: float, why: str) -> None:
    import warnings

    if penalty <= bound:
        warnings.warn(f"{problem} penalty {penalty:g} is not above the sufficient bound {bound:g} ({why}); the "
                      "QUBO minimum may be infeasible", PenaltyWarning, stacklevel=3)


def _add_equality_penalty(Q: torch.Tensor, a: torch.Tensor, b: float, penalty: float) -> float:
    """Q += P (a a^T - 2 b diag(a)) in place (x_i^2 = x_i); returns the constant P b^2 of P (a^T y - b)^2."""
    Q += penalty * (torch.outer(a, a) - 2 * b * torch.diag(a))
    return penalty * b * b


def _check_penalty(penalty: float | None, default: float) -> float:
    if penalty is None:
        return default
    if not (math.isfinite(penalty) and penalty > 0):
        raise ValueError(f"penalty must be a positive finite number, got {penalty}")
    return float(penalty)


@dataclasses.dataclass(frozen=True, eq=False)
class MISProblem:
    """Maximum Independent Set on an undirected graph; QUBO variable i = node i (no slack)."""

    maximize: ClassVar[bool] = True
    n_nodes: int
    edges: torch.Tensor          # (E, 2) int64, 0-based, u < v
    penalty: float
    qubo: QUBO

    @property
    def n_original(self) -> int:
        return self.n_nodes

    def decode(self, y: Any) -> np.ndarray:
        return _bits_np(y, self.n_nodes)

    def objective(self, x: Any) -> float:
        return float(_bits_np(x, self.n_nodes).sum())

    def feasible_mask(self, x: Any) -> np.ndarray:
        """(b, >= n) bits -> (b,) bool: no edge has both ends selected."""
        xb = np.atleast_2d(_bits_np(x, self.n_nodes))
        e = self.edges.numpy()
        if not len(e):
            return np.ones(len(xb), dtype=bool)
        return ~(xb[:, e[:, 0]] & xb[:, e[:, 1]]).any(1)

    def feasible(self, x: Any) -> bool:
        return bool(self.feasible_mask(_bits_np(x, self.n_nodes)[None])[0])

    def repair(self, x: Any) -> np.ndarray:
        """Drop the selected vertex with most selected neighbours until independent; then add free vertices
        by increasing degree (spec A2.8)."""
        xb = _bits_np(x, self.n_nodes).copy()
        A = self._adjacency()
        while True:
            conflicts = (A @ xb) * xb
            if conflicts.max(initial=0) == 0:
                break
            xb[int(np.argmax(conflicts))] = 0
        for v in np.argsort(A.sum(1), kind="stable"):
            if xb[v] == 0 and (A[v] @ xb) == 0:
                xb[v] = 1
        return xb

    def exact(self) -> tuple[np.ndarray, float]:
        """Maximum independent set by HiGHS (scipy.optimize.milp)."""
        from scipy.optimize import Bounds, LinearConstraint, milp

        n, e = self.n_nodes, self.edges.numpy()
        cons = []
        if len(e):
            A = np.zeros((len(e), n))
            A[np.arange(len(e)), e[:, 0]] = 1
            A[np.arange(len(e)), e[:, 1]] = 1
            cons = [LinearConstraint(A, -np.inf, 1)]
        res = milp(-np.ones(n), constraints=cons, integrality=np.ones(n), bounds=Bounds(0, 1))
        x = np.round(res.x).astype(np.int64)
        return x, float(x.sum())

    def veto(self, groups: list[np.ndarray], fixed_one: np.ndarray, fixed_zero: np.ndarray) -> str | None:
        """A merge is vetoed if some assignment group or the fixed-to-1 set contains an edge (spec A2.5)."""
        A = self._adjacency()
        for g in [*groups, fixed_one]:
            g = g[g < self.n_nodes]
            if len(g) > 1 and A[np.ix_(g, g)].any():
                return "edge inside a group"
        return None

    def _adjacency(self) -> np.ndarray:
        A = np.zeros((self.n_nodes, self.n_nodes), dtype=np.int64)
        e = self.edges.numpy()
        if len(e):
            A[e[:, 0], e[:, 1]] = 1
            A[e[:, 1], e[:, 0]] = 1
        return A


def mis_qubo(n_nodes: int, edges: Any, penalty: float | None = None) -> tuple[QUBO, MISProblem]:
    """MIS as ``min -sum_i x_i + P sum_{(u,v) in E} x_u x_v``; exact for any P > 1.

    Args:
        n_nodes: number of vertices.
        edges: (E, 2) 0-based vertex pairs (self-loops and duplicates rejected / merged).
        penalty: P; default ``1 + n_nodes`` (qiskit's automatic penalty, as in the authors' code). Must exceed 1
            (the exact bound: at P <= 1 a set with an edge is as cheap as dropping one endpoint).

    Raises:
        ValueError: P <= 1, non-integer or out-of-range edges, self-loops.
    """
    if not isinstance(n_nodes, (int, np.integer)) or isinstance(n_nodes, bool) or n_nodes < 1:
        raise ValueError(f"n_nodes must be a positive int, got {n_nodes!r}")
    raw = np.asarray(edges.cpu() if isinstance(edges, torch.Tensor) else edges)
    if raw.size and not (np.issubdtype(raw.dtype, np.integer) or np.issubdtype(raw.dtype, np.floating)):
        raise TypeError(f"edges must be integer vertex pairs, got dtype {raw.dtype}")
    if raw.size and np.issubdtype(raw.dtype, np.floating) and not (np.isfinite(raw).all()
                                                                    and (raw == np.round(raw)).all()):
        raise ValueError("edges must be integer vertex indices; got non-integer values (e.g. "
                         f"{raw[raw != np.round(raw)].reshape(-1)[:1].tolist()}), which would be truncated")
    if raw.size and raw.reshape(-1, 2).shape[1] != 2:
        raise ValueError(f"edges must have shape (E, 2), got {raw.shape}")
    e = raw.astype(np.int64).reshape(-1, 2)
    if len(e) and (e.min() < 0 or e.max() >= n_nodes):
        bad = e[(e < 0).any(1) | (e >= n_nodes).any(1)][0].tolist()
        raise ValueError(f"edge {bad} refers to a node outside 0..{n_nodes - 1}")
    if len(e) and (e[:, 0] == e[:, 1]).any():
        raise ValueError("self-loops are not allowed in an MIS graph")
    e = np.unique(np.sort(e, axis=1), axis=0) if len(e) else e
    P = _check_penalty(penalty, 1.0 + n_nodes)
    if P <= 1.0:
        raise ValueError(f"MIS penalty must exceed 1 (the valid bound: below it an edge costs less than dropping "
                         f"one of its ends), got {P:g}")
    Q = -torch.eye(n_nodes, dtype=torch.float64)
    et = torch.from_numpy(e)
    if len(e):
        Q[et[:, 0], et[:, 1]] += P / 2
        Q[et[:, 1], et[:, 0]] += P / 2
    qubo = QUBO(Q, names=[f"v{i}" for i in range(n_nodes)])
    return qubo, MISProblem(int(n_nodes), et, P, qubo)


def slack_coefficients(capacity: int) -> list[int]:
    """Bounded binary slack encoding of s in [0, C]: 1, 2, ..., 2^{L-2}, C - (2^{L-1} - 1), L = floor(log2 C) + 1."""
    if capacity <= 0:
        return []
    L = math.floor(math.log2(capacity)) + 1
    return [2**k for k in range(L - 1)] + [capacity - (2 ** (L - 1) - 1)]


@dataclasses.dataclass(frozen=True, eq=False)
class MDKPProblem:
    """Multidimensional knapsack ``max p^T x s.t. W x <= C``; QUBO variables = items, then (slack encoding) the
    slack bits of each row."""

    maximize: ClassVar[bool] = True
    profits: torch.Tensor        # (n,)
    weights: torch.Tensor        # (m, n)
    capacities: torch.Tensor     # (m,)
    penalty: float
    qubo: QUBO
    num_slack: int
    encoding: str = "slack"      # "slack" (exact, bounded binary slacks) or "unbalanced" (slack-free)
    protect_slack: bool = True   # constraint-aware shrinking never merges or fixes a slack bit

    @property
    def n_original(self) -> int:
        return self.profits.shape[0]

    def decode(self, y: Any) -> np.ndarray:
        return _bits_np(y, self.n_original)

    def objective(self, x: Any) -> float:
        return float(self.profits.numpy() @ _bits_np(x, self.n_original))

    def feasible_mask(self, x: Any) -> np.ndarray:
        """(b, >= n) bits -> (b,) bool: every row within its capacity."""
        xb = np.atleast_2d(_bits_np(x, self.n_original))
        return (xb @ self.weights.numpy().T <= self.capacities.numpy() + 1e-9).all(1)

    def feasible(self, x: Any) -> bool:
        return bool(self.feasible_mask(_bits_np(x, self.n_original)[None])[0])

    def _ratios(self) -> np.ndarray:
        W, C = self.weights.numpy(), self.capacities.numpy()
        load = (W / np.maximum(C, 1e-12)[:, None]).sum(0)
        return self.profits.numpy() / np.maximum(load, 1e-12)

    def repair(self, x: Any) -> np.ndarray:
        """Chu-Beasley: drop selected items of lowest p_j / sum_k W_kj / C_k until feasible, then add the best
        ratios that fit (spec A2.8)."""
        xb = _bits_np(x, self.n_original).copy()
        W, C = self.weights.numpy(), self.capacities.numpy()
        order = np.argsort(self._ratios(), kind="stable")
        for j in order:
            if (W @ xb <= C + 1e-9).all():
                break
            xb[j] = 0
        for j in order[::-1]:
            if xb[j] == 0 and (W @ xb + W[:, j] <= C + 1e-9).all():
                xb[j] = 1
        return xb

    def greedy_value(self) -> float:
        """Objective of the repair of the empty knapsack (a feasible lower bound on the optimum)."""
        return self.objective(self.repair(np.zeros(self.n_original, dtype=np.int64)))

    def exact(self) -> tuple[np.ndarray, float]:
        """Optimum by HiGHS (scipy.optimize.milp)."""
        from scipy.optimize import Bounds, LinearConstraint, milp

        n = self.n_original
        res = milp(-self.profits.numpy(), constraints=[LinearConstraint(self.weights.numpy(), -np.inf,
                                                                        self.capacities.numpy())],
                   integrality=np.ones(n), bounds=Bounds(0, 1))
        x = np.round(res.x).astype(np.int64)
        return x, self.objective(x)

    def veto(self, groups: list[np.ndarray], fixed_one: np.ndarray, fixed_zero: np.ndarray) -> str | None:
        """Vetoed if the items of one assignment group, or the fixed-to-1 items, exceed some capacity; with the
        slack encoding and ``protect_slack``, also if a slack bit would be merged or fixed.

        Why protect slack bits: a merged or fixed slack bit removes slack values, and the optimum's slack
        ``C_k - w_k^T x*`` is then often unreachable (issue 16: merges fixed every row-1 slack bit to 0). With
        free slack bits every item assignment inside the capacities keeps a zero-penalty completion.
        """
        n = self.n_original
        if self.encoding == "slack" and self.protect_slack:
            if any((g >= n).any() for g in (*groups, fixed_one, fixed_zero)):
                return "slack bit merged or fixed"
        W, C = self.weights.numpy(), self.capacities.numpy()
        for g in [*groups, fixed_one]:
            g = g[g < n]
            if len(g) and (W[:, g].sum(1) > C + 1e-9).any():
                return "group exceeds a capacity"
        return None


# Unbalanced-penalisation weights (normalised slack h_k = 1 - w_k^T x / C_k, scale sum p): chosen on the shipped
# SAC-94 instances by the exact QUBO minimum after repair (grid l1 in {0.1, 0.3, 1}, l2 in {0.3, 1, 3, 10}):
# (0.3, 3) gave ratios 0.95-1.00 on pet2, pet3, pb5, weing1, pb1, hp1 (greedy alone: 0.90-0.99).
UNBALANCED_WEIGHTS = (0.3, 3.0)


def mdkp_qubo(profits: Any, weights: Any, capacities: Any, penalty: float | None = None, encoding: str = "slack",
              unbalanced: tuple[float, float] = UNBALANCED_WEIGHTS,
              protect_slack: bool = True) -> tuple[QUBO, MDKPProblem]:
    """MDKP as a QUBO.

    ``encoding="slack"`` (spec A2.1, the authors' and qiskit's form):
    ``-p^T x + P sum_k (w_k^T x + c_k^T s_k - C_k)^2`` with bounded binary slacks (exact for a valid P).
    ``encoding="unbalanced"`` (slack-free; Montanez-Barrera et al., "Unbalanced penalization", arXiv:2211.13914):
    ``-p^T x + S sum_k (l2 h_k^2 - l1 h_k)`` with ``h_k = 1 - w_k^T x / C_k`` and ``S = sum p``: n qubits only, the
    penalty grows fast for h < 0 and is small for a little spare capacity; not exact (answers are verified and
    repaired), but the QUBO over the items alone is what makes the SAC-94 instances shrinkable to a few qubits.

    Args:
        profits: (n,) non-negative. weights: (m, n) non-negative integers. capacities: (m,) positive integers.
        penalty: P of the slack encoding; default ``1 + sum_j p_j`` (qiskit's automatic value). Any
            P > sum p - OPT is exact; ``PenaltyWarning`` when P <= sum p - (greedy value), a sufficient bound.
        encoding: "slack" or "unbalanced". unbalanced: (l1, l2) of the unbalanced encoding.
        protect_slack: constraint-aware shrinking keeps slack bits unmerged (slack encoding only).
    """
    from sciml.quantum._options import check_choice

    check_choice("encoding", encoding, ("slack", "unbalanced"))
    p = _as_float64(profits, "profits").reshape(-1)
    W = _as_float64(weights, "weights")
    C = _as_float64(capacities, "capacities").reshape(-1)
    if W.ndim == 1:
        W = W[None]
    n, m = p.shape[0], W.shape[0]
    if W.shape != (m, n) or C.shape[0] != m:
        raise ValueError(f"weights must be (m, n) = ({C.shape[0]}, {n}) to match profits and capacities, "
                         f"got {tuple(W.shape)}")
    if (C < 0).any():
        raise ValueError(f"capacities must be non-negative, got {C.tolist()}")
    if (W < 0).any() or (p < 0).any():
        raise ValueError("weights and profits must be non-negative")
    if (W != W.round()).any() or (C != C.round()).any():
        raise ValueError("weights and capacities must be integers for the binary slack encoding (got "
                         "non-integer values; scale them to integers first)")
    if encoding == "unbalanced":
        l1, l2 = (float(v) for v in unbalanced)
        if not (l1 > 0 and l2 > 0 and math.isfinite(l1 + l2)):
            raise ValueError(f"unbalanced weights (l1, l2) must be positive and finite, got {unbalanced}")
        if (C <= 0).any():
            raise ValueError("the unbalanced encoding needs positive capacities (h_k = 1 - w_k^T x / C_k)")
        S = float(p.sum()) or 1.0
        Wn = W / C[:, None]                                    # (m, n): h_k = 1 - Wn_k^T x
        Q = -torch.diag(p) + S * l2 * Wn.T @ Wn + torch.diag(S * (l1 - 2 * l2) * Wn.sum(0))
        qubo = QUBO(Q, S * m * (l2 - l1), [f"x{j}" for j in range(n)])
        return qubo, MDKPProblem(p, W, C, S * l2, qubo, 0, "unbalanced", protect_slack)
    P = _check_penalty(penalty, 1.0 + float(p.sum()))
    slacks = [slack_coefficients(int(c)) for c in C.tolist()]
    N = n + sum(len(s) for s in slacks)
    Q = torch.zeros(N, N, dtype=torch.float64)
    Q[:n, :n] -= torch.diag(p)
    offset, col = 0.0, n
    for k in range(m):
        a = torch.zeros(N, dtype=torch.float64)
        a[:n] = W[k]
        a[col:col + len(slacks[k])] = torch.tensor(slacks[k], dtype=torch.float64)
        col += len(slacks[k])
        offset += _add_equality_penalty(Q, a, float(C[k]), P)
    names = [f"x{j}" for j in range(n)] + [f"s{k}_{b}" for k in range(m) for b in range(len(slacks[k]))]
    qubo = QUBO(Q, offset, names)
    problem = MDKPProblem(p, W, C, P, qubo, N - n, "slack", protect_slack)
    if penalty is not None:
        _warn_penalty("MDKP", P, float(p.sum()) - problem.greedy_value(),
                      "sum of profits minus the greedy value; a unit of overweight may buy that much profit")
    return qubo, problem


@dataclasses.dataclass(frozen=True, eq=False)
class QAPProblem:
    """Quadratic assignment; QUBO variable ``i*n + j`` = facility i at location j (one-hot permutation)."""

    maximize: ClassVar[bool] = False
    flow: torch.Tensor
    distance: torch.Tensor
    penalty: float
    qubo: QUBO

    @property
    def n(self) -> int:
        return self.flow.shape[0]

    @property
    def n_original(self) -> int:
        return self.n * self.n

    def decode(self, y: Any) -> np.ndarray:
        return _bits_np(y, self.n_original)

    def permutation_cost(self, perm: Any) -> float:
        """``sum_{i,k} F_ik D_{p(i) p(k)}`` for a 0-based permutation (facility i -> location p(i))."""
        pi = np.asarray(perm, dtype=np.int64)
        return float((self.flow.numpy() * self.distance.numpy()[np.ix_(pi, pi)]).sum())

    def objective(self, x: Any) -> float:
        X = _bits_np(x, self.n_original).reshape(self.n, self.n).astype(np.float64)
        return float(np.einsum("ik,jl,ij,kl->", self.flow.numpy(), self.distance.numpy(), X, X))

    def feasible_mask(self, x: Any) -> np.ndarray:
        """(b, >= n^2) bits -> (b,) bool: a permutation matrix."""
        X = np.atleast_2d(_bits_np(x, self.n_original)).reshape(-1, self.n, self.n)
        return (X.sum(1) == 1).all(1) & (X.sum(2) == 1).all(1)

    def feasible(self, x: Any) -> bool:
        return bool(self.feasible_mask(_bits_np(x, self.n_original)[None])[0])

    def repair(self, x: Any) -> np.ndarray:
        """Hungarian assignment closest to the 0/1 matrix, then best-improvement 2-swaps (spec A2.8)."""
        from scipy.optimize import linear_sum_assignment

        X = _bits_np(x, self.n_original).reshape(self.n, self.n)
        _, perm = linear_sum_assignment(-X)
        cost = self.permutation_cost(perm)
        improved = True
        while improved:
            improved = False
            for a, b in itertools.combinations(range(self.n), 2):
                trial = perm.copy()
                trial[[a, b]] = trial[[b, a]]
                c = self.permutation_cost(trial)
                if c < cost - 1e-12:
                    perm, cost, improved = trial, c, True
        out = np.zeros((self.n, self.n), dtype=np.int64)
        out[np.arange(self.n), perm] = 1
        return out.reshape(-1)

    def exact(self, max_n: int = 8) -> tuple[np.ndarray, float]:
        """Optimum by enumerating all n! permutations (vectorised), n <= ``max_n``."""
        if self.n > max_n:
            raise ValueError(f"QAP enumeration of n = {self.n} > {max_n}; use the published QAPLIB optimum")
        perms = torch.tensor(list(itertools.permutations(range(self.n))), dtype=torch.int64)
        D = self.distance[perms[:, :, None], perms[:, None, :]]
        costs = (self.flow[None] * D).sum((1, 2))
        best = int(torch.argmin(costs))
        out = np.zeros((self.n, self.n), dtype=np.int64)
        out[np.arange(self.n), perms[best].numpy()] = 1
        return out.reshape(-1), float(costs[best])

    def veto(self, groups: list[np.ndarray], fixed_one: np.ndarray, fixed_zero: np.ndarray) -> str | None:
        """Vetoed if a group (or the fixed-to-1 set) puts two ones in a row or column, or a whole row/column
        is fixed to 0."""
        n = self.n
        for g in [*groups, fixed_one]:
            rows, cols = g // n, g % n
            if len(np.unique(rows)) < len(g) or len(np.unique(cols)) < len(g):
                return "two ones in a row or column"
        if len(fixed_zero):
            Z = np.zeros((n, n), dtype=bool)
            Z[fixed_zero // n, fixed_zero % n] = True
            if Z.all(0).any() or Z.all(1).any():
                return "a whole row or column fixed to 0"
        return None


def qap_qubo(flow: Any, distance: Any, penalty: float | None = None) -> tuple[QUBO, QAPProblem]:
    """QAP as ``sum F_ik D_jl x_ij x_kl + P [sum_i (sum_j x_ij - 1)^2 + sum_j (sum_i x_ij - 1)^2]``.

    Args:
        flow, distance: (n, n) real matrices of the same size.
        penalty: P; default ``1 + sum|F| sum|D|`` (qiskit's automatic value for this objective; n = 4 synthetic:
            817). With non-negative F and D every energy is >= 0, so any P above the cost of one permutation
            (the identity) is exact; a smaller P gets a ``PenaltyWarning`` with that bound.
    """
    F = _as_float64(flow, "flow")
    D = _as_float64(distance, "distance")
    if F.ndim != 2 or F.shape[0] != F.shape[1] or D.shape != F.shape:
        raise ValueError(f"flow and distance must be square matrices of the same size, got {tuple(F.shape)} and "
                         f"{tuple(D.shape)}")
    n = F.shape[0]
    K = torch.kron(F, D)
    Q = (K + K.T) / 2
    P = _check_penalty(penalty, 1.0 + float(F.abs().sum() * D.abs().sum()))
    offset = 0.0
    eye = torch.eye(n, dtype=torch.float64)
    ones = torch.ones(n, dtype=torch.float64)
    for i in range(n):
        offset += _add_equality_penalty(Q, torch.kron(eye[i], ones), 1.0, P)   # facility i placed once
        offset += _add_equality_penalty(Q, torch.kron(ones, eye[i]), 1.0, P)   # location i used once
    qubo = QUBO(Q, offset, [f"x{i}_{j}" for i in range(n) for j in range(n)])
    problem = QAPProblem(F, D, P, qubo)
    if penalty is not None:
        nonneg = bool((F >= 0).all() and (D >= 0).all())
        bound = problem.permutation_cost(np.arange(n)) if nonneg else 1.0 + float(F.abs().sum() * D.abs().sum())
        _warn_penalty("QAP", P, bound, "cost of the identity permutation (non-negative data)" if nonneg
                      else "sum |F| sum |D| (data with negative entries)")
    return qubo, problem
