"""QAOA, CVaR-VQE and RQAOA on Qiskit 2.x V2 primitives (Aer by default; any EstimatorV2/SamplerV2 injectable).

qiskit and qiskit-aer are imported inside the functions only.

Reference: Farhi, Goldstone, Gutmann, "A Quantum Approximate Optimization Algorithm", arXiv:1411.4028;
Zhou et al., "Quantum Approximate Optimization Algorithm: Performance, Mechanism, and Implementation on
Near-Term Devices", arXiv:1812.01041 (INTERP warm start across depths); Barkoutsos et al., "Improving Variational
Quantum Optimization using CVaR", arXiv:1907.04769; Bravyi et al., "Obstacles to State Preparation and Variational
Optimization from Symmetry Protection" (RQAOA), arXiv:1910.08980.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import numpy as np
import torch

from sciml.core import Result, Status, report_status
from sciml.quantum.qubo import QUBO, all_energies, bitstrings_from_counts, brute_force

# Statevector memory is 16 * 2^n bytes; 2^26 amplitudes = 1 GiB, and an optimisation loop is minutes at 22+.
MAX_STATEVECTOR_QUBITS = 26
MAX_MPS_QUBITS = 128


@dataclasses.dataclass(frozen=True)
class QAOAResult(Result):
    """Outcome of ``solve_qaoa`` / ``cvar_vqe``.

    Attributes:
        x: (n,) int64 lowest-energy sampled bitstring (qubit i = variable i). energy: its QUBO energy.
        expectation: <H> + offset at the optimal parameters (QUBO units; CVaR value for ``cvar_vqe``).
        params: optimal parameters (QAOA: betas then gammas, as ``qaoa_ansatz`` orders them).
        counts: final sampler counts (Qiskit big-endian keys). evaluations: objective calls over all restarts.
        restart_values: best objective per restart. approximate: True for capped-bond MPS simulation.
        status: CONVERGED if the best restart's COBYLA met its tolerance, else MAX_ITER. seconds: wall time.
    """

    x: torch.Tensor
    energy: float
    expectation: float
    params: np.ndarray
    counts: dict
    evaluations: int
    restart_values: tuple
    approximate: bool
    status: Status
    seconds: float


def check_qubits(num_qubits: int, method: str = "statevector", max_bond_dimension: int | None = None) -> None:
    """Raise ValueError before any circuit is built when the simulator cannot hold ``num_qubits``."""
    if method not in ("statevector", "matrix_product_state"):
        raise ValueError(f"method must be 'statevector' or 'matrix_product_state', got {method!r}")
    if method == "matrix_product_state" and max_bond_dimension is None:
        raise ValueError("matrix_product_state needs max_bond_dimension (a bond cap; results are approximate)")
    limit = MAX_STATEVECTOR_QUBITS if method == "statevector" else MAX_MPS_QUBITS
    if num_qubits > limit:
        raise ValueError(f"{num_qubits} qubits exceed the {method} limit of {limit}; shrink the problem first "
                         "(sciml.quantum.shrink) or use matrix_product_state with a bond cap")


def default_primitives(seed: int | None = None, method: str = "statevector",
                       max_bond_dimension: int | None = None) -> tuple[Any, Any, Any]:
    """Aer ``EstimatorV2`` (exact expectations), ``SamplerV2`` and a level-1 preset pass manager."""
    from qiskit.transpiler import generate_preset_pass_manager
    from qiskit_aer import AerSimulator
    from qiskit_aer.primitives import EstimatorV2, SamplerV2

    backend_options: dict[str, Any] = {"method": method}
    if method == "matrix_product_state":
        backend_options["matrix_product_state_max_bond_dimension"] = int(max_bond_dimension)
    run_options = {} if seed is None else {"seed_simulator": int(seed)}
    estimator = EstimatorV2(options={"backend_options": backend_options, "run_options": run_options})
    sampler = SamplerV2(seed=seed, options={"backend_options": backend_options})
    pm = generate_preset_pass_manager(optimization_level=1, backend=AerSimulator(**backend_options))
    return estimator, sampler, pm


def interp_warm_start(params: np.ndarray) -> np.ndarray:
    """INTERP: depth-p optimal (betas, gammas) -> depth p+1 initial parameters (Zhou et al., eq. B1)."""
    p = len(params) // 2
    out = []
    for half in (params[:p], params[p:]):
        ext = np.concatenate([[0.0], half, [0.0]])
        i = np.arange(1, p + 2)
        out.append((i - 1) / p * ext[i - 1] + (p - i + 1) / p * ext[i])
    return np.concatenate(out)


def _minimize(fun, x0: np.ndarray, maxiter: int, rhobeg: float) -> Any:
    from scipy.optimize import minimize

    return minimize(fun, x0, method="COBYLA", options={"maxiter": maxiter, "rhobeg": rhobeg, "tol": 1e-4})


def _sample(qubo: QUBO, sampler: Any, circuit: Any, theta: np.ndarray, shots: int) -> tuple[dict, torch.Tensor,
                                                                                            torch.Tensor, torch.Tensor]:
    result = sampler.run([(circuit, theta)], shots=shots).result()[0]
    counts = result.data.meas.get_counts()
    bits, freq = bitstrings_from_counts(counts, qubo.num_vars)
    return counts, bits, freq, qubo.energy(bits)


def solve_qaoa(qubo: QUBO, reps: int = 1, sampler: Any = None, estimator: Any = None, seed: int | None = None,
               restarts: int = 3, maxiter: int = 300, shots: int = 1024, init: np.ndarray | None = None,
               pass_manager: Any = None, method: str = "statevector", max_bond_dimension: int | None = None,
               normalize: bool = True, on_failure: str = "warn") -> QAOAResult:
    """Minimise ``x^T Q x + offset`` with depth-``reps`` QAOA, COBYLA restarts, then sample the best state.

    The Ising Hamiltonian (``QUBO.to_pauli``, qubit i = variable i) is divided by its largest coefficient for the
    optimisation (spec pitfall: penalty scale); energies are reported in QUBO units.

    Args:
        qubo: the problem (validated: finite, symmetric).
        reps: QAOA depth p.
        sampler, estimator: any Qiskit V2 primitives; default Aer (``default_primitives``). Pass a
            ``pass_manager`` matching a non-Aer backend. Without an ``estimator`` on the statevector method, the
            energy is computed exactly from one Aer run's probabilities (faster than Aer's EstimatorV2, which
            evaluates every Pauli term separately; same value to rounding).
        seed: seeds the restarts' initial points and the Aer simulators.
        restarts: COBYLA runs from ``init`` (if given) and random points (beta in [0, pi/2), gamma in [0, pi)).
        maxiter: COBYLA iterations per restart. shots: final sampling shots.
        init: (2 reps,) first initial point, e.g. ``interp_warm_start(result_p.params)``.
        method: Aer method for the default primitives ("statevector" or capped "matrix_product_state").
        on_failure: what a COBYLA budget exhaustion does ("warn", "raise", "ignore").

    Returns:
        QAOAResult.
    """
    from qiskit.circuit.library import qaoa_ansatz

    if reps < 1 or restarts < 1 or maxiter < 1 or shots < 1:
        raise ValueError(f"reps, restarts, maxiter and shots must be >= 1, got {reps}, {restarts}, {maxiter}, "
                         f"{shots}")
    check_qubits(qubo.num_vars, method, max_bond_dimension)
    if init is not None and np.asarray(init).shape != (2 * reps,):
        raise ValueError(f"init must have shape ({2 * reps},) (betas then gammas), got {np.asarray(init).shape}")
    t0 = time.perf_counter()
    fast_path = estimator is None and method == "statevector"
    if estimator is None or sampler is None or pass_manager is None:
        est0, samp0, pm0 = default_primitives(seed, method, max_bond_dimension)
        estimator, sampler = estimator or est0, sampler or samp0
        pass_manager = pass_manager or pm0
    pm = pass_manager
    H, const = qubo.to_pauli()
    scale = float(np.abs(H.coeffs).max()) if normalize else 1.0
    scale = scale or 1.0
    Hn = H / scale
    qc = qaoa_ansatz(Hn, reps=reps)
    isa = pm.run(qc)
    H_isa = Hn.apply_layout(isa.layout)
    rng = np.random.default_rng(seed)
    evaluations = 0

    if fast_path:
        expectation = _aer_diagonal_expectation(isa, (all_energies(qubo) - const).numpy() / scale, seed)
    else:
        def expectation(theta: np.ndarray) -> float:
            return float(estimator.run([(isa, H_isa, theta)]).result()[0].data.evs)

    def energy(theta: np.ndarray) -> float:
        nonlocal evaluations
        evaluations += 1
        return expectation(theta)

    starts = [] if init is None else [np.asarray(init, dtype=np.float64)]
    while len(starts) < restarts:
        starts.append(np.concatenate([rng.uniform(0, np.pi / 2, reps), rng.uniform(0, np.pi, reps)]))
    best, values = None, []
    for x0 in starts:
        res = _minimize(energy, x0, maxiter, rhobeg=0.3)
        values.append(float(res.fun) * scale + const)
        if best is None or res.fun < best.fun:
            best = res
    status = Status.CONVERGED if best.success else Status.MAX_ITER
    report_status(status, "solve_qaoa", f"COBYLA: {best.message}", on_failure)
    qcm = qc.copy()
    qcm.measure_all()
    counts, bits, _, energies = _sample(qubo, sampler, pm.run(qcm), best.x, shots)
    k = int(torch.argmin(energies))
    approx = method == "matrix_product_state"
    return QAOAResult(bits[k], float(energies[k]), float(best.fun) * scale + const, np.asarray(best.x), counts,
                      evaluations, tuple(values), approx, status, time.perf_counter() - t0)


def _aer_diagonal_expectation(isa: Any, diagonal: np.ndarray, seed: int | None):
    """<H> for a diagonal H from one Aer statevector run: basis probabilities dotted with diag(H).

    Aer's EstimatorV2 saves one expectation value per Pauli term (a pass over the state each, plus per-term
    bookkeeping); for the diagonal QAOA cost Hamiltonian one probability vector gives the same number exactly.
    """
    from qiskit_aer import AerSimulator

    sim = AerSimulator(method="statevector", **({} if seed is None else {"seed_simulator": int(seed)}))
    circuit = isa.copy()
    n = len(diagonal).bit_length() - 1
    qubits = isa.layout.final_index_layout() if isa.layout is not None else list(range(n))
    circuit.save_probabilities(qubits=qubits, label="probs")
    params = list(circuit.parameters)

    def expectation(theta: np.ndarray) -> float:
        binds = [{p: [float(v)] for p, v in zip(params, theta)}]
        probs = np.asarray(sim.run(circuit, parameter_binds=binds).result().data(0)["probs"])
        return float(probs @ diagonal)

    return expectation


def qaoa_statevector_probabilities(qubo: QUBO, params: np.ndarray, reps: int) -> torch.Tensor:
    """Exact basis-state probabilities (2^n,) of the QAOA state (normalised Hamiltonian, as in solve_qaoa)."""
    from qiskit.circuit.library import qaoa_ansatz
    from qiskit.quantum_info import Statevector

    check_qubits(qubo.num_vars)
    H, _ = qubo.to_pauli()
    Hn = H / (float(np.abs(H.coeffs).max()) or 1.0)
    sv = Statevector(qaoa_ansatz(Hn, reps=reps).assign_parameters(params))
    return torch.from_numpy(sv.probabilities())


def qaoa_correlations(W: torch.Tensor, reps: int = 1, generator: torch.Generator | None = None,
                      restarts: int = 2, maxiter: int = 100) -> torch.Tensor:
    """<Z_a Z_b> of optimised QAOA on the Max-Cut graph W (anchor fixed on side 0, so <Z_0 Z_b> = <Z_b>).

    Reference: Fischer et al., arXiv:2404.17242 (QAOA correlations for shrinking); Bravyi et al. (RQAOA).
    """
    from sciml.quantum.qubo import index_to_bits

    qubo = QUBO.from_maxcut(W)
    seed = None if generator is None else int(torch.randint(0, 2**31 - 1, (1,), generator=generator))
    res = solve_qaoa(qubo, reps=reps, seed=seed, restarts=restarts, maxiter=maxiter, shots=1, on_failure="ignore")
    probs = qaoa_statevector_probabilities(qubo, res.params, reps)
    n = qubo.num_vars
    bits = index_to_bits(torch.arange(2**n), n)
    spins = torch.cat([torch.ones(2**n, 1, dtype=torch.float64), 1.0 - 2.0 * bits.to(torch.float64)], 1)
    return (spins * probs[:, None]).T @ spins


def hardware_efficient_ansatz(num_qubits: int, reps: int) -> Any:
    """RY and RZ on every qubit per layer, a CNOT chain i -> i+1 between layers (the authors' CVaR-VQE ansatz)."""
    from qiskit.circuit import ParameterVector, QuantumCircuit

    theta = ParameterVector("θ", 2 * reps * num_qubits)
    qc = QuantumCircuit(num_qubits)
    k = 0
    for layer in range(reps):
        for q in range(num_qubits):
            qc.ry(theta[k], q)
            qc.rz(theta[k + 1], q)
            k += 2
        if layer < reps - 1:
            for q in range(num_qubits - 1):
                qc.cx(q, q + 1)
    return qc


def cvar_vqe(qubo: QUBO, reps: int = 5, alpha: float = 0.25, sampler: Any = None, seed: int | None = None,
             maxiter: int = 200, shots: int = 1024, pass_manager: Any = None, method: str = "statevector",
             max_bond_dimension: int | None = None, on_failure: str = "warn") -> QAOAResult:
    """CVaR-VQE as in the authors' code: hardware-efficient ansatz, CVaR_alpha of sampled energies, COBYLA.

    Reference: Barkoutsos et al., arXiv:1907.04769; spec A2.7 (alpha = 0.25, reps 5 (MIS) / 8 (QAP),
    parameters U[0, 2 pi)).

    Differs from the paper/reference code: default maxiter 200 (authors 1000) for CPU time; statevector Aer
    by default (authors: MPS without a bond cap).
    """
    if not (0 < alpha <= 1):
        raise ValueError(f"alpha must be in (0, 1], got {alpha}")
    if reps < 1 or maxiter < 1 or shots < 1:
        raise ValueError(f"reps, maxiter, shots must be >= 1, got {reps}, {maxiter}, {shots}")
    check_qubits(qubo.num_vars, method, max_bond_dimension)
    t0 = time.perf_counter()
    if sampler is None or pass_manager is None:
        _, samp0, pm0 = default_primitives(seed, method, max_bond_dimension)
        sampler, pass_manager = sampler or samp0, pass_manager or pm0
    pm = pass_manager
    qc = hardware_efficient_ansatz(qubo.num_vars, reps)
    qc.measure_all()
    isa = pm.run(qc)
    rng = np.random.default_rng(seed)
    evaluations = 0
    last: dict[str, Any] = {}

    def cvar(theta: np.ndarray) -> float:
        nonlocal evaluations
        evaluations += 1
        counts, bits, freq, energies = _sample(qubo, sampler, isa, theta, shots)
        order = torch.argsort(energies)
        e, w = energies[order], freq[order].to(torch.float64)
        cut = alpha * shots
        take = torch.clamp(cut - (torch.cumsum(w, 0) - w), min=0.0)
        take = torch.minimum(take, w)
        last.update(counts=counts, bits=bits, energies=energies)
        return float((e * take).sum() / cut)

    res = _minimize(cvar, rng.uniform(0, 2 * np.pi, qc.num_parameters), maxiter, rhobeg=0.5)
    status = Status.CONVERGED if res.success else Status.MAX_ITER
    report_status(status, "cvar_vqe", f"COBYLA: {res.message}", on_failure)
    k = int(torch.argmin(last["energies"]))
    return QAOAResult(last["bits"][k], float(last["energies"][k]), float(res.fun), np.asarray(res.x),
                      last["counts"], evaluations, (float(res.fun),), method == "matrix_product_state", status,
                      time.perf_counter() - t0)


@dataclasses.dataclass(frozen=True)
class RQAOAResult(Result):
    """Recursive QAOA: x (n,) int64, its energy, and the shrink record (merges, qubits left)."""

    x: torch.Tensor
    energy: float
    shrink: Any


def rqaoa(qubo: QUBO, n_cutoff: int = 4, reps: int = 1, restarts: int = 2, maxiter: int = 100,
          generator: torch.Generator | None = None) -> RQAOAResult:
    """RQAOA: merge the pair with the largest |<Z_a Z_b>| of optimised QAOA, recompute, until ``n_cutoff``
    variables remain; brute-force the rest and lift (Bravyi et al., arXiv:1910.08980).

    Uses the Max-Cut/anchor form, so single-spin fields are the anchor edges (<Z_0 Z_i> = <Z_i>).
    """
    from sciml.quantum.shrinking import shrink

    if n_cutoff < 1:
        raise ValueError(f"n_cutoff must be >= 1, got {n_cutoff}")
    target = min(n_cutoff, qubo.num_vars) + 1
    def corr(W: torch.Tensor, gen: torch.Generator | None) -> torch.Tensor:
        return qaoa_correlations(W, reps=reps, generator=gen, restarts=restarts, maxiter=maxiter)

    sh = shrink(qubo, target, constraint_aware=False, correlation=corr, recalc_every=1, generator=generator)
    bf = brute_force(sh.qubo)
    x = sh.state.lift(bf.x[None])[0]
    return RQAOAResult(x, float(qubo.energy(x)), sh)
