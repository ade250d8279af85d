"""QAOA, CVaR-VQE and RQAOA on Qiskit 2.x V2 primitives (Aer by default; any EstimatorV2/SamplerV2 injectable).

qiskit and qiskit-aer are imported inside the functions only.

Reference: Farhi, Goldstone, Gutmann, "A Quantum Approximate Optimization Algorithm", arXiv:1411.4028;
Zhou et al., "Quantum Approximate Optimization Algorithm: Performance, Mechanism, and Implementation on
Near-Term Devices", arXiv:1812.01041 (INTERP warm start across depths); Barkoutsos et al., "Improving Variational
Quantum Optimization using CVaR", arXiv:1907.04769; Bravyi et al., "Obstacles to State Preparation and Variational
Optimization from Symmetry Protection" (RQAOA), arXiv:1910.08980.
"""

from __future__ import annotations

import copy
import dataclasses
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from sciml.core import Result, Status, report_status
from sciml.quantum.qubo import QUBO, all_energies, bitstrings_from_counts, brute_force, index_to_bits

# Statevector memory is 16 * 2^n bytes; 2^26 amplitudes = 1 GiB (the hard limit of the statevector method).
MAX_STATEVECTOR_QUBITS = 26
# method="auto" uses the statevector fast path up to here (32 B per amplitude: 128 MiB at 22 qubits), MPS beyond.
# Why not 24-26: one p = 1 evaluation takes ~10 s at 22 and ~20-40 s at 24 qubits on one loaded CPU core, so an
# optimisation loop is impractical there, while capped MPS on sparse problems takes < 0.5 s.
FAST_STATEVECTOR_QUBITS = 22
MAX_MPS_QUBITS = 128
# Bond cap of method="auto" beyond FAST_STATEVECTOR_QUBITS (approximate: results are flagged).
DEFAULT_MPS_BOND = 16
METHODS = ("auto", "statevector", "matrix_product_state")


@dataclasses.dataclass(frozen=True)
class QAOAResult(Result):
    """Outcome of ``solve_qaoa`` / ``cvar_vqe``.

    Attributes:
        x: (n,) int64 answer: the lowest-energy sampled bitstring that passes ``feasible`` (any sample if none
            does or no check was given); qubit i = variable i. energy: its QUBO energy.
        expectation: <H> + offset at the optimal parameters (QUBO units; CVaR value for ``cvar_vqe``).
        params: optimal parameters (QAOA: betas then gammas, as ``qaoa_ansatz`` orders them).
        counts: final sampler counts (Qiskit big-endian keys). evaluations: objective calls over all restarts.
        restart_values: best objective per restart. approximate: True for capped-bond MPS simulation.
        status: CONVERGED if the best restart's COBYLA met its tolerance, else MAX_ITER. seconds: wall time.
        simulator: how energies were evaluated ("fast-statevector", "aer-statevector", "aer-mps(bond=16)",
            "backend:<name>", "user-primitives"). seconds_per_evaluation: optimisation time / evaluations.
        memory_bytes: model estimate of one evaluation's simulator memory (NaN for a backend/user primitives).
        feasible_fraction: share of the final shots passing ``feasible`` (NaN without a check).
        circuit_depth, two_qubit_gates: of the transpiled (ISA) ansatz that was optimised.
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
    simulator: str = ""
    seconds_per_evaluation: float = float("nan")
    memory_bytes: float = float("nan")
    feasible_fraction: float = float("nan")
    circuit_depth: int = -1
    two_qubit_gates: int = -1


def resolve_method(num_qubits: int, method: str = "auto",
                   max_bond_dimension: int | None = None) -> tuple[str, int | None]:
    """("auto" | "statevector" | "matrix_product_state", bond) -> the concrete Aer method and bond cap.

    "auto": statevector up to ``FAST_STATEVECTOR_QUBITS``, else MPS with ``max_bond_dimension`` (default
    ``DEFAULT_MPS_BOND``).
    """
    from sciml.quantum._options import check_choice

    check_choice("method", method, METHODS)
    if method == "auto":
        if num_qubits <= FAST_STATEVECTOR_QUBITS:
            return "statevector", None
        return "matrix_product_state", max_bond_dimension or DEFAULT_MPS_BOND
    return method, max_bond_dimension


def check_qubits(num_qubits: int, method: str = "statevector", max_bond_dimension: int | None = None) -> None:
    """Raise ValueError before any circuit is built when the simulator cannot hold ``num_qubits``."""
    method, max_bond_dimension = resolve_method(num_qubits, method, max_bond_dimension)
    if method == "matrix_product_state" and (max_bond_dimension is None or max_bond_dimension < 1):
        raise ValueError("matrix_product_state needs max_bond_dimension (a bond cap; results are approximate)")
    limit = MAX_STATEVECTOR_QUBITS if method == "statevector" else MAX_MPS_QUBITS
    if num_qubits > limit:
        raise ValueError(f"{num_qubits} qubits exceed the {method} limit of {limit}; shrink the problem first "
                         "(sciml.quantum.shrink) or use matrix_product_state with a bond cap")


def memory_estimate(num_qubits: int, method: str, max_bond_dimension: int | None = None, fast: bool = False) -> float:
    """Bytes one energy evaluation needs: statevector 16 B per amplitude (+16 B for the fast path's probabilities
    and energy diagonal); MPS about 32 chi^2 bytes per qubit."""
    if method == "statevector":
        return float((32 if fast else 16) * 2**num_qubits)
    return float(32 * (max_bond_dimension or 1) ** 2 * num_qubits)


def default_primitives(seed: int | None = None, method: str = "statevector", max_bond_dimension: int | None = None,
                       aer_device: str = "CPU") -> tuple[Any, Any, Any]:
    """Aer ``EstimatorV2`` (exact expectations), ``SamplerV2`` and a level-1 preset pass manager.

    ``aer_device="GPU"`` needs the qiskit-aer-gpu build (statevector on the GPU)."""
    from qiskit.transpiler import generate_preset_pass_manager
    from qiskit_aer import AerSimulator
    from qiskit_aer.primitives import EstimatorV2, SamplerV2

    from sciml.quantum._options import check_choice

    check_choice("method", method, ("statevector", "matrix_product_state"))
    check_choice("aer_device", aer_device, ("CPU", "GPU"))
    backend_options: dict[str, Any] = {"method": method, "device": aer_device}
    if method == "matrix_product_state":
        backend_options["matrix_product_state_max_bond_dimension"] = int(max_bond_dimension)
    run_options = {} if seed is None else {"seed_simulator": int(seed)}
    estimator = EstimatorV2(options={"backend_options": backend_options, "run_options": run_options})
    sampler = SamplerV2(seed=seed, options={"backend_options": backend_options})
    pm = generate_preset_pass_manager(optimization_level=1, backend=AerSimulator(**backend_options))
    return estimator, sampler, pm


@dataclasses.dataclass(frozen=True)
class Primitives:
    """Estimator, sampler and pass manager that belong together, and how energies will be evaluated."""

    estimator: Any
    sampler: Any
    pass_manager: Any
    simulator: str
    fast: bool                # exact <H> from one Aer statevector run's probabilities (diagonal H)
    approximate: bool         # capped-bond MPS
    memory_bytes: float


def make_primitives(num_qubits: int, backend: Any = None, method: str = "auto",
                    max_bond_dimension: int | None = None, seed: int | None = None, estimator: Any = None,
                    sampler: Any = None, pass_manager: Any = None, aer_device: str = "CPU") -> Primitives:
    """One object in, three out: ``backend`` (any Qiskit ``BackendV2``) drives estimator, sampler and pass manager.

    Without a backend: Aer primitives for ``method`` (see ``resolve_method``), with the statevector fast path when
    no estimator is injected. Injected ``estimator`` / ``sampler`` / ``pass_manager`` replace the defaults one by
    one (they cannot be mixed with ``backend``).
    """
    if backend is not None:
        from qiskit.primitives import BackendEstimatorV2, BackendSamplerV2
        from qiskit.providers import BackendV2
        from qiskit.transpiler import generate_preset_pass_manager

        if not isinstance(backend, BackendV2):
            raise TypeError(f"backend must be a qiskit BackendV2 (e.g. AerSimulator(), GenericBackendV2(n)), got "
                            f"{type(backend).__name__}")
        if any(p is not None for p in (estimator, sampler, pass_manager)):
            raise ValueError("pass either backend= or estimator=/sampler=/pass_manager=, not both")
        if backend.num_qubits is not None and num_qubits > backend.num_qubits:
            raise ValueError(f"{num_qubits} qubits do not fit backend {backend.name!r} with {backend.num_qubits} "
                             "qubits; shrink the problem first")
        opts = {} if seed is None else {"seed_simulator": int(seed)}
        return Primitives(BackendEstimatorV2(backend=backend, options=opts),
                          BackendSamplerV2(backend=backend, options=opts),
                          generate_preset_pass_manager(optimization_level=1, backend=backend, seed_transpiler=seed),
                          f"backend:{backend.name}", False, False, float("nan"))
    method, bond = resolve_method(num_qubits, method, max_bond_dimension)
    check_qubits(num_qubits, method, bond)
    fast = estimator is None and method == "statevector" and num_qubits <= MAX_STATEVECTOR_QUBITS
    est0, samp0, pm0 = default_primitives(seed, method, bond, aer_device)
    user = estimator is not None or sampler is not None
    name = ("fast-statevector" if fast else "aer-statevector") if method == "statevector" else f"aer-mps(bond={bond})"
    return Primitives(estimator or est0, sampler or samp0, pass_manager or pm0,
                      "user-primitives" if user and not fast else name, fast, method == "matrix_product_state",
                      float("nan") if user and not fast else memory_estimate(num_qubits, method, bond, fast))


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

    if maxiter < len(x0) + 2:            # COBYLA's own minimum; scipy would warn and raise it silently
        raise ValueError(f"maxiter must be >= number of parameters + 2 = {len(x0) + 2} for COBYLA, got {maxiter}")

    return minimize(fun, x0, method="COBYLA", options={"maxiter": maxiter, "rhobeg": rhobeg, "tol": 1e-4})


def _sample(qubo: QUBO, sampler: Any, circuit: Any, theta: np.ndarray, shots: int) -> tuple[dict, torch.Tensor,
                                                                                            torch.Tensor, torch.Tensor]:
    result = sampler.run([(circuit, theta)], shots=shots).result()[0]
    counts = result.data.meas.get_counts()
    bits, freq = bitstrings_from_counts(counts, qubo.num_vars)
    return counts, bits, freq, qubo.energy(bits)


def _pick(bits: torch.Tensor, freq: torch.Tensor, energies: torch.Tensor,
          feasible: Callable | None) -> tuple[int, float]:
    """Index of the lowest-energy sample passing ``feasible`` (any sample if none does), and the feasible share."""
    if feasible is None:
        return int(torch.argmin(energies)), float("nan")
    mask = torch.as_tensor(np.asarray(feasible(bits.numpy()), dtype=bool).reshape(-1))
    if mask.shape != energies.shape:
        raise ValueError(f"feasible must return one bool per sampled bitstring ({len(energies)}), got "
                         f"{tuple(mask.shape)}")
    share = float(freq[mask].sum()) / max(float(freq.sum()), 1.0)
    pool = torch.where(mask, energies, torch.full_like(energies, float("inf"))) if bool(mask.any()) else energies
    return int(torch.argmin(pool)), share


def _circuit_stats(isa: Any) -> tuple[int, int]:
    return int(isa.depth()), int(isa.num_nonlocal_gates())


def _check_budget(**values: int) -> None:
    for name, v in values.items():
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"{name} must be an int >= 1, got {v!r}")


def solve_qaoa(qubo: QUBO, reps: int = 1, sampler: Any = None, estimator: Any = None, seed: int | None = None,
               restarts: int = 3, maxiter: int = 300, shots: int = 1024, init: np.ndarray | None = None,
               pass_manager: Any = None, method: str = "auto", max_bond_dimension: int | None = None,
               normalize: bool = True, on_failure: str = "warn", backend: Any = None,
               feasible: Callable | None = None, aer_device: str = "CPU") -> QAOAResult:
    """Minimise ``x^T Q x + offset`` with depth-``reps`` QAOA, COBYLA restarts, then sample the best state.

    No step enumerates the 2^n bitstrings except the statevector fast path (n <= 26, its energy diagonal); the
    answer is the best sampled (feasible) bitstring. The Ising Hamiltonian (``QUBO.to_pauli``, qubit i = variable
    i) is divided by its largest coefficient for the optimisation (spec pitfall: penalty scale); energies are
    reported in QUBO units.

    Args:
        qubo: the problem (validated: finite, symmetric).
        reps: QAOA depth p.
        sampler, estimator, pass_manager: any Qiskit V2 primitives replacing the defaults one by one.
        seed: seeds the restarts' initial points, the simulators and the transpiler.
        restarts: COBYLA runs from ``init`` (if given) and random points (beta in [0, pi/2), gamma in [0, pi)).
        maxiter: COBYLA iterations per restart. shots: final sampling shots.
        init: (2 reps,) first initial point, e.g. ``interp_warm_start(result_p.params)``.
        method: "auto" (statevector fast path up to 22 qubits, capped MPS beyond), "statevector" or
            "matrix_product_state" (needs ``max_bond_dimension``; approximate, flagged in the result).
        on_failure: what a COBYLA budget exhaustion does ("warn", "raise", "ignore").
        backend: any ``BackendV2``; drives estimator, sampler and pass manager (``make_primitives``).
        feasible: optional ``f((k, n) int64 bits) -> (k,) bool``; the answer is the best sample that passes it.
        aer_device: "CPU" or "GPU" (qiskit-aer-gpu) for the default Aer primitives.

    Returns:
        QAOAResult (with time per evaluation, memory estimate, transpiled depth and two-qubit gate count).
    """
    from qiskit.circuit.library import qaoa_ansatz

    from sciml.quantum._options import check_on_failure

    _check_budget(reps=reps, restarts=restarts, maxiter=maxiter, shots=shots)
    check_on_failure(on_failure)
    if not isinstance(qubo, QUBO):
        raise TypeError(f"qubo must be a sciml.quantum.QUBO, got {type(qubo).__name__}")
    if init is not None and np.asarray(init).shape != (2 * reps,):
        raise ValueError(f"init must have shape ({2 * reps},) (betas then gammas), got {np.asarray(init).shape}")
    if maxiter < 2 * reps + 2:
        raise ValueError(f"maxiter must be >= 2 reps + 2 = {2 * reps + 2} for COBYLA, got {maxiter}")
    t0 = time.perf_counter()
    prim = make_primitives(qubo.num_vars, backend, method, max_bond_dimension, seed, estimator, sampler,
                           pass_manager, aer_device)
    H, const = qubo.to_pauli()
    scale = float(np.abs(H.coeffs).max()) if normalize else 1.0
    scale = scale or 1.0
    Hn = H / scale
    qc = qaoa_ansatz(Hn, reps=reps)
    isa = prim.pass_manager.run(qc)
    H_isa = Hn.apply_layout(isa.layout)
    rng = np.random.default_rng(seed)
    evaluations = 0

    if prim.fast:
        diagonal = (all_energies(qubo, max_vars=MAX_STATEVECTOR_QUBITS) - const).numpy() / scale
        expectation = _aer_diagonal_expectation(isa, diagonal, seed)
    else:
        def expectation(theta: np.ndarray) -> float:
            return float(prim.estimator.run([(isa, H_isa, theta)]).result()[0].data.evs)

    def energy(theta: np.ndarray) -> float:
        nonlocal evaluations
        evaluations += 1
        return expectation(theta)

    starts = [] if init is None else [np.asarray(init, dtype=np.float64)]
    while len(starts) < restarts:
        starts.append(np.concatenate([rng.uniform(0, np.pi / 2, reps), rng.uniform(0, np.pi, reps)]))
    best, values = None, []
    t_opt = time.perf_counter()
    for x0 in starts:
        res = _minimize(energy, x0, maxiter, rhobeg=0.3)
        values.append(float(res.fun) * scale + const)
        if best is None or res.fun < best.fun:
            best = res
    per_eval = (time.perf_counter() - t_opt) / max(evaluations, 1)
    status = Status.CONVERGED if best.success else Status.MAX_ITER
    report_status(status, "solve_qaoa", f"COBYLA: {best.message}", on_failure)
    qcm = qc.copy()
    qcm.measure_all()
    counts, bits, freq, energies = _sample(qubo, prim.sampler, prim.pass_manager.run(qcm), best.x, shots)
    k, share = _pick(bits, freq, energies, feasible)
    depth, twoq = _circuit_stats(isa)
    return QAOAResult(bits[k], float(energies[k]), float(best.fun) * scale + const, np.asarray(best.x), counts,
                      evaluations, tuple(values), prim.approximate, status, time.perf_counter() - t0,
                      prim.simulator, per_eval, prim.memory_bytes, share, depth, twoq)


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


# Exact correlations (from the full probability vector) up to here; sampled correlations beyond.
EXACT_CORRELATION_QUBITS = 20


def qaoa_statevector_probabilities(qubo: QUBO, params: np.ndarray, reps: int) -> torch.Tensor:
    """Exact basis-state probabilities (2^n,) of the QAOA state (normalised Hamiltonian, as in solve_qaoa)."""
    from qiskit.circuit.library import qaoa_ansatz
    from qiskit.quantum_info import Statevector

    if qubo.num_vars > EXACT_CORRELATION_QUBITS:
        raise ValueError(f"exact probabilities of {qubo.num_vars} qubits exceed {EXACT_CORRELATION_QUBITS}; use "
                         "sampled counts (solve_qaoa(...).counts)")
    H, _ = qubo.to_pauli()
    Hn = H / (float(np.abs(H.coeffs).max()) or 1.0)
    sv = Statevector(qaoa_ansatz(Hn, reps=reps).assign_parameters(params))
    return torch.from_numpy(sv.probabilities())


def _spin_correlations(bits: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """(k, n) bits with (k,) probabilities -> (n+1, n+1) <Z_a Z_b>, anchor spin +1 first."""
    spins = torch.cat([torch.ones(len(bits), 1, dtype=torch.float64), 1.0 - 2.0 * bits.to(torch.float64)], 1)
    w = weights.to(torch.float64) / weights.sum()
    C = (spins * w[:, None]).T @ spins
    return (C + C.T) / 2


def _qaoa_correlations_and_best(W: torch.Tensor, reps: int, generator: torch.Generator | None, restarts: int,
                                maxiter: int, shots: int, **qaoa_options: Any) -> tuple[torch.Tensor, QAOAResult]:
    qubo = QUBO.from_maxcut(W)
    seed = None if generator is None else int(torch.randint(0, 2**31 - 1, (1,), generator=generator))
    res = solve_qaoa(qubo, reps=reps, seed=seed, restarts=restarts, maxiter=maxiter, shots=shots,
                     on_failure="ignore", **qaoa_options)
    n = qubo.num_vars
    if res.simulator == "fast-statevector" and n <= EXACT_CORRELATION_QUBITS:
        probs = qaoa_statevector_probabilities(qubo, res.params, reps)
        return _spin_correlations(index_to_bits(torch.arange(2**n), n), probs), res
    bits, freq = bitstrings_from_counts(res.counts, n)
    return _spin_correlations(bits, freq), res


def qaoa_correlations(W: torch.Tensor, reps: int = 1, generator: torch.Generator | None = None,
                      restarts: int = 2, maxiter: int = 100, shots: int = 4096, **qaoa_options: Any) -> torch.Tensor:
    """<Z_a Z_b> of optimised QAOA on the Max-Cut graph W (anchor fixed on side 0, so <Z_0 Z_b> = <Z_b>).

    Exact (probability vector) on the statevector fast path up to ``EXACT_CORRELATION_QUBITS``; estimated from
    ``shots`` samples otherwise (MPS, any ``backend=``, injected primitives: ``qaoa_options`` go to solve_qaoa).

    Reference: Fischer et al., arXiv:2404.17242 (QAOA correlations for shrinking); Bravyi et al. (RQAOA).
    """
    return _qaoa_correlations_and_best(W, reps, generator, restarts, maxiter, shots, **qaoa_options)[0]


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
             maxiter: int = 200, shots: int = 1024, pass_manager: Any = None, method: str = "auto",
             max_bond_dimension: int | None = None, on_failure: str = "warn", backend: Any = None,
             feasible: Callable | None = None, aer_device: str = "CPU") -> QAOAResult:
    """CVaR-VQE as in the authors' code: hardware-efficient ansatz, CVaR_alpha of sampled energies, COBYLA.

    Reference: Barkoutsos et al., arXiv:1907.04769; spec A2.7 (alpha = 0.25, reps 5 (MIS) / 8 (QAP),
    parameters U[0, 2 pi)). ``backend`` drives sampler and pass manager; ``method`` as in ``solve_qaoa``.
    The answer is the lowest-energy (feasible) bitstring of the last evaluation's samples.

    Differs from the paper/reference code: default maxiter 200 (authors 1000) for CPU time; statevector Aer up to
    22 qubits (authors: MPS without a bond cap).
    """
    from sciml.quantum._options import check_on_failure

    if not (0 < alpha <= 1):
        raise ValueError(f"alpha must be in (0, 1], got {alpha}")
    _check_budget(reps=reps, maxiter=maxiter, shots=shots)
    check_on_failure(on_failure)
    if maxiter < 2 * reps * qubo.num_vars + 2:
        raise ValueError(f"maxiter must be >= number of parameters + 2 = {2 * reps * qubo.num_vars + 2} for COBYLA, "
                         f"got {maxiter}")
    t0 = time.perf_counter()
    prim = make_primitives(qubo.num_vars, backend, method, max_bond_dimension, seed, None, sampler, pass_manager,
                           aer_device)
    qc = hardware_efficient_ansatz(qubo.num_vars, reps)
    qc.measure_all()
    isa = prim.pass_manager.run(qc)
    rng = np.random.default_rng(seed)
    evaluations = 0
    last: dict[str, Any] = {}

    def cvar(theta: np.ndarray) -> float:
        nonlocal evaluations
        evaluations += 1
        counts, bits, freq, energies = _sample(qubo, prim.sampler, isa, theta, shots)
        order = torch.argsort(energies)
        e, w = energies[order], freq[order].to(torch.float64)
        cut = alpha * shots
        take = torch.clamp(cut - (torch.cumsum(w, 0) - w), min=0.0)
        take = torch.minimum(take, w)
        last.update(counts=counts, bits=bits, freq=freq, energies=energies)
        return float((e * take).sum() / cut)

    t_opt = time.perf_counter()
    res = _minimize(cvar, rng.uniform(0, 2 * np.pi, qc.num_parameters), maxiter, rhobeg=0.5)
    per_eval = (time.perf_counter() - t_opt) / max(evaluations, 1)
    status = Status.CONVERGED if res.success else Status.MAX_ITER
    report_status(status, "cvar_vqe", f"COBYLA: {res.message}", on_failure)
    k, share = _pick(last["bits"], last["freq"], last["energies"], feasible)
    depth, twoq = _circuit_stats(isa)
    simulator = prim.simulator.replace("fast-statevector", "aer-statevector")
    return QAOAResult(last["bits"][k], float(last["energies"][k]), float(res.fun), np.asarray(res.x),
                      last["counts"], evaluations, (float(res.fun),), prim.approximate, status,
                      time.perf_counter() - t0, simulator, per_eval, prim.memory_bytes, share, depth, twoq)


@dataclasses.dataclass(frozen=True)
class RQAOAResult(Result):
    """Recursive QAOA.

    Attributes:
        x: (n,) int64 answer, energy: its energy: the best of the recursion's brute-forced end point and the best
            sample of every level (lifted), so it is never worse than QAOA's best sample on the full problem.
        recursive_energy: energy of the pure recursion's answer. state: the final merge state.
        qubits_after: variables left for the brute force. merges: (gone, kept, sign, |<ZZ>|) per step.
        rejected_merges: candidate merges vetoed by the problem. qaoa_calls: QAOA optimisations. seconds: wall time.
    """

    x: torch.Tensor
    energy: float
    recursive_energy: float
    state: Any
    qubits_after: int
    merges: tuple
    rejected_merges: int
    qaoa_calls: int
    seconds: float


def rqaoa(qubo_or_problem: Any, n_cutoff: int = 4, reps: int = 1, restarts: int = 2, maxiter: int = 100,
          generator: torch.Generator | None = None, constraint_aware: bool = True, state: Any = None,
          shots: int = 1024, **qaoa_options: Any) -> RQAOAResult:
    """RQAOA: merge the pair with the largest |<Z_a Z_b>| of optimised QAOA, recompute, until ``n_cutoff``
    variables remain; brute-force the rest and lift (Bravyi et al., arXiv:1910.08980).

    Uses the Max-Cut/anchor form, so single-spin fields are the anchor edges (<Z_0 Z_i> = <Z_i>).

    Args:
        qubo_or_problem: a QUBO, or a problem from ``mis_qubo`` / ``mdkp_qubo`` / ``qap_qubo`` (its veto screens
            merges when ``constraint_aware``, as in ``shrink``).
        state: continue from a ``ShrinkState`` of this problem's QUBO (e.g. ``shrink(...).state``; copied).
        qaoa_options: ``backend``, ``method``, ``max_bond_dimension``, ... for every QAOA call.

    Differs from Bravyi et al.: the answer is the best of the recursion and of every level's best sample (lifted),
    so a wrong late merge cannot make it worse than plain QAOA sampling (issue 16: infeasible-energy answers).
    """
    from sciml.quantum.maxcut import ShrinkState
    from sciml.quantum.shrinking import _first_admissible

    _check_budget(n_cutoff=n_cutoff, reps=reps, restarts=restarts, maxiter=maxiter, shots=shots)
    problem = None if isinstance(qubo_or_problem, QUBO) else qubo_or_problem
    qubo = qubo_or_problem if problem is None else getattr(problem, "qubo", None)
    if not isinstance(qubo, QUBO):
        raise TypeError(f"expected a QUBO or a problem with a .qubo, got {type(qubo_or_problem).__name__}")
    t0 = time.perf_counter()
    state = ShrinkState(qubo.to_maxcut(), qubo.offset) if state is None else copy.deepcopy(state)
    if state.W.shape[0] != qubo.num_vars + 1:
        raise ValueError("state does not belong to this problem's QUBO")
    m = state.W.shape[0]
    candidates: list[torch.Tensor] = []
    merges: list[tuple] = []
    rejected, calls = 0, 0
    while state.num_alive - 1 > n_cutoff:
        Ck, res = _qaoa_correlations_and_best(state.shrunk_weights(), reps, generator, restarts, maxiter, shots,
                                              **qaoa_options)
        calls += 1
        candidates.append(state.lift(res.x[None])[0])
        idx = state.alive_nodes()
        C = torch.full((m, m), float("nan"), dtype=torch.float64)
        C[idx[:, None], idx[None, :]] = Ck
        chosen, new = _first_admissible(C, state, problem if constraint_aware else None, set())
        rejected += new
        if chosen is None:
            break
        i, j, s, mag = chosen
        state.merge(i, j, s)
        merges.append((max(i, j), min(i, j), s, mag))
    small = state.shrunk_qubo()
    y = brute_force(small).x if small.num_vars <= 22 else None
    recursive = state.lift(y[None])[0] if y is not None else candidates[-1]
    pool = torch.stack([recursive, *candidates])
    energies = qubo.energy(pool)
    k = int(torch.argmin(energies))
    return RQAOAResult(pool[k], float(energies[k]), float(energies[0]), state, state.num_alive - 1, tuple(merges),
                       rejected, calls, time.perf_counter() - t0)
