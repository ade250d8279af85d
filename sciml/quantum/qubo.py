"""The QUBO model: energies, exact enumeration, Ising / Pauli form, Max-Cut with an anchor, qiskit interop.

Conventions (one, end to end): minimisation, ``E(x) = x^T Q x + offset`` with ``Q`` symmetric (linear terms on
the diagonal), ``x in {0,1}^n``. Spins ``z = 1 - 2x`` (spin +1 <-> bit 0), qubit i = variable i, so bit i of a
basis-state index is ``x_i`` (Qiskit's little-endian order). Max-Cut: node 0 is the anchor, node i+1 is
variable i, and ``x_i = [side(i+1) != side(0)]``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import torch

from sciml.core import Result

# Enumeration beyond this many variables is refused (2^22 energies: ~100 MB of spins, seconds on one core).
MAX_BRUTE_FORCE_VARS = 22


def _as_float64(x: Any, name: str) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x)
    if not (t.is_floating_point() or t.dtype in (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8,
                                                  torch.bool)):
        raise ValueError(f"{name} must be real-valued, got dtype {t.dtype}")
    t = t.to(torch.float64)
    if not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name} contains NaN or Inf entries")
    return t


@dataclasses.dataclass(frozen=True, eq=False)
class QUBO:
    """A quadratic unconstrained binary problem ``min_x x^T Q x + offset``.

    Args:
        Q: (n, n) symmetric real matrix (tensor, array or nested list); stored as float64.
        offset: constant added to every energy.
        names: optional variable names (length n).

    Raises:
        ValueError: Q not square, not symmetric (relative 1e-12), or not finite; names of the wrong length.
    """

    Q: torch.Tensor
    offset: float = 0.0
    names: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        Q = _as_float64(self.Q, "Q")
        if Q.ndim != 2 or Q.shape[0] != Q.shape[1] or Q.shape[0] == 0:
            raise ValueError(f"Q must be a non-empty square matrix, got shape {tuple(Q.shape)}")
        scale = float(Q.abs().max()) or 1.0
        asym = float((Q - Q.T).abs().max())
        if asym > 1e-12 * scale:
            raise ValueError(f"Q must be symmetric (max |Q - Q^T| = {asym:.3g}); pass (Q + Q.T) / 2 for an "
                             "upper-triangular form")
        if not np.isfinite(float(self.offset)):
            raise ValueError(f"offset must be finite, got {self.offset}")
        names = None if self.names is None else tuple(str(n) for n in self.names)
        if names is not None and len(names) != Q.shape[0]:
            raise ValueError(f"names has {len(names)} entries but Q has {Q.shape[0]} variables")
        object.__setattr__(self, "Q", (Q + Q.T) / 2)
        object.__setattr__(self, "offset", float(self.offset))
        object.__setattr__(self, "names", names)

    @property
    def num_vars(self) -> int:
        return self.Q.shape[0]

    def energy(self, x: Any) -> torch.Tensor:
        """``x^T Q x + offset`` for one bitstring (n,) -> () or a batch (b, n) -> (b,), in float64."""
        xt = _check_bits(x, self.num_vars).to(self.Q.device)
        return torch.einsum("...i,ij,...j->...", xt, self.Q, xt) + self.offset

    def to_ising(self) -> tuple[torch.Tensor, torch.Tensor, float]:
        """Spin form with ``x = (1 - z)/2``: ``E = sum_i h_i z_i + sum_{i<j} J_ij z_i z_j + offset``.

        Returns:
            h (n,), J (n, n) strictly upper triangular, offset (float).
        """
        S = self.Q
        diag = torch.diagonal(S)
        off = S - torch.diag(diag)
        h = -diag / 2 - off.sum(1) / 2
        J = torch.triu(off, diagonal=1) / 2
        const = self.offset + float(diag.sum()) / 2 + float(torch.triu(off, 1).sum()) / 2
        return h, J, const

    def to_pauli(self) -> tuple[Any, float]:
        """The Ising Hamiltonian as a qiskit ``SparsePauliOp`` (qubit i = variable i) and its offset.

        ``diag(H)[k] + offset = E(x)`` where ``x_i`` is bit i of k.
        """
        from qiskit.quantum_info import SparsePauliOp

        h, J, const = self.to_ising()
        terms = [("Z", [i], float(h[i])) for i in torch.nonzero(h).flatten().tolist()]
        terms += [("ZZ", [i, j], float(J[i, j])) for i, j in torch.nonzero(J).tolist()]
        if not terms:
            terms = [("I", [0], 0.0)]
        return SparsePauliOp.from_sparse_list(terms, num_qubits=self.num_vars).simplify(atol=0.0), const

    def to_maxcut(self) -> torch.Tensor:
        """Weighted Max-Cut on n+1 nodes (node 0 = anchor) with ``cut(z) = offset - E(x)`` for every z.

        ``W_ij = Q_ij`` (i != j, nodes i+1, j+1), ``W_0,i+1 = -sum_j Q_ij``; x_i = [z_{i+1} != z_0].
        Reference: spec A2.2 (the authors' opposite-sign variant differs by a factor and a constant).
        """
        n = self.num_vars
        W = torch.zeros(n + 1, n + 1, dtype=torch.float64, device=self.Q.device)
        W[1:, 1:] = self.Q - torch.diag(torch.diagonal(self.Q))
        W[0, 1:] = -self.Q.sum(1)
        W[1:, 0] = W[0, 1:]
        return W

    @classmethod
    def from_maxcut(cls, W: Any, const: float = 0.0) -> QUBO:
        """The QUBO ``E(x) = -(cut(z) + const)`` of a Max-Cut graph with node 0 fixed on side 0 (x = z[1:])."""
        Wt = _as_float64(W, "W")
        if Wt.ndim != 2 or Wt.shape[0] != Wt.shape[1] or Wt.shape[0] < 2:
            raise ValueError(f"W must be a square matrix with at least 2 nodes, got shape {tuple(Wt.shape)}")
        if float((Wt - Wt.T).abs().max()) > 1e-12 * (float(Wt.abs().max()) or 1.0):
            raise ValueError("W must be symmetric")
        Wt = Wt - torch.diag(torch.diagonal(Wt))
        Q = Wt[1:, 1:].clone()
        Q += torch.diag(-Wt[1:].sum(1))
        return cls(Q, offset=-float(const))

    def to_quadratic_program(self) -> Any:
        """A qiskit-optimization ``QuadraticProgram`` minimising the same energy (variables x0..x{n-1})."""
        from qiskit_optimization import QuadraticProgram

        n = self.num_vars
        names = self.names or tuple(f"x{i}" for i in range(n))
        qp = QuadraticProgram("qubo")
        for name in names:
            qp.binary_var(name)
        Q = self.Q.cpu().numpy()
        quad = np.triu(2 * Q, 1)
        qp.minimize(constant=self.offset, linear=np.diag(Q).copy(), quadratic=quad)
        return qp

    @classmethod
    def from_quadratic_program(cls, qp: Any) -> QUBO:
        """From an unconstrained, all-binary ``QuadraticProgram`` (a maximisation is negated to minimise).

        Raises:
            ValueError: constraints or non-binary variables present (convert with ``QuadraticProgramToQubo``).
        """
        from qiskit_optimization.problems import QuadraticProgram, VarType

        if not isinstance(qp, QuadraticProgram):
            raise TypeError(f"expected a QuadraticProgram, got {type(qp).__name__}")
        if qp.linear_constraints or qp.quadratic_constraints:
            raise ValueError("the QuadraticProgram has constraints; convert it with QuadraticProgramToQubo first")
        if any(v.vartype != VarType.BINARY for v in qp.variables):
            raise ValueError("all variables must be binary; convert with QuadraticProgramToQubo first")
        obj = qp.objective
        sign = 1.0 if obj.sense == obj.Sense.MINIMIZE else -1.0
        A = np.asarray(obj.quadratic.to_array(symmetric=True), dtype=np.float64)
        b = np.asarray(obj.linear.to_array(), dtype=np.float64)
        # x_i^2 = x_i: the quadratic diagonal joins the linear part.
        Q = A.copy()
        Q[np.diag_indices_from(Q)] += b
        return cls(sign * Q, offset=sign * float(obj.constant), names=[v.name for v in qp.variables])


def _check_bits(x: Any, n: int) -> torch.Tensor:
    xt = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x)
    if xt.ndim not in (1, 2) or xt.shape[-1] != n:
        raise ValueError(f"bitstrings must have shape (n,) or (batch, n) with n = {n}, got {tuple(xt.shape)}")
    xt = xt.to(torch.float64)
    if not bool(((xt == 0) | (xt == 1)).all()):
        raise ValueError("bitstrings must contain only 0 and 1")
    return xt


def index_to_bits(index: torch.Tensor, n: int) -> torch.Tensor:
    """(b,) int64 basis indices -> (b, n) bits with ``bits[:, i] = bit i of index`` (qubit i = variable i)."""
    shifts = torch.arange(n, device=index.device)
    return (index[:, None] >> shifts) & 1


@dataclasses.dataclass(frozen=True)
class BruteForceResult(Result):
    """Exact minimum of a QUBO by enumeration.

    Attributes:
        x: (n,) int64 minimiser (the lowest basis index among ties).
        energy: its energy.
        num_optimal: how many bitstrings reach the minimum (within 1e-9 relative).
    """

    x: torch.Tensor
    energy: float
    num_optimal: int


def all_energies(qubo: QUBO, max_vars: int = MAX_BRUTE_FORCE_VARS) -> torch.Tensor:
    """Energies of all ``2^n`` bitstrings, indexed by basis index (bit i = x_i). Shape (2^n,), float64.

    This is also the diagonal of ``to_pauli()`` plus its offset. Chunks of 2^18 bitstrings, one matmul each.
    """
    n = qubo.num_vars
    if n > max_vars:
        raise ValueError(f"enumeration of {n} variables exceeds max_vars = {max_vars}")
    out = torch.empty(2**n, dtype=torch.float64, device=qubo.Q.device)
    chunk = 1 << 18
    for start in range(0, 2**n, chunk):
        idx = torch.arange(start, min(start + chunk, 2**n), device=qubo.Q.device)
        X = index_to_bits(idx, n).to(torch.float64)
        out[start:start + len(idx)] = ((X @ qubo.Q) * X).sum(1) + qubo.offset
    return out


def brute_force(qubo: QUBO, max_vars: int = MAX_BRUTE_FORCE_VARS) -> BruteForceResult:
    """Exact QUBO minimum by vectorised enumeration of all 2^n energies, n <= ``max_vars``."""
    energies = all_energies(qubo, max_vars)
    best = int(torch.argmin(energies))
    e = float(energies[best])
    ties = int((energies <= e + 1e-9 * max(1.0, abs(e))).sum())
    return BruteForceResult(index_to_bits(torch.tensor([best]), qubo.num_vars)[0], e, ties)


def cut_values(W: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """Cut weight ``sum_{a<b} W_ab [z_a != z_b]`` of (b, m) side assignments; (b,) float64."""
    zt = z.to(torch.float64)
    diff = zt[:, :, None] + zt[:, None, :] - 2 * zt[:, :, None] * zt[:, None, :]
    return (diff * W).sum((1, 2)) / 2


def bitstrings_from_counts(counts: dict[str, int], n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Qiskit counts (big-endian keys: qubit 0 is the LAST character) -> (k, n) bits and (k,) counts."""
    keys = list(counts)
    if any(len(k) != n for k in keys):
        raise ValueError(f"count keys must have {n} characters")
    bits = torch.tensor([[int(c) for c in reversed(k)] for k in keys], dtype=torch.int64)
    return bits, torch.tensor([counts[k] for k in keys], dtype=torch.int64)

