"""QAOA: sciml.quantum.solve_qaoa vs qiskit-optimization's MinimumEigenOptimizer(QAOA), and time per evaluation.

Part 1 (16, 20, 24 qubits): MIS on an induced subgraph of the DIMACS 1tc.32 graph (P = 2), p = 1, the SAME seeded
initial point and COBYLA budget for both, one start. Ours runs with ``method="auto"`` (statevector fast path up to
22 qubits, capped MPS bond 16 beyond) and, where it fits, forced statevector; the peer uses Aer SamplerV2
(statevector) with 1024 shots per evaluation, as in its documentation. Printed: wall time and the ratio
theirs / ours (>= 1 means we are faster), the energy each returns and the optimum (HiGHS MIS size).

Part 2 (16-30 qubits): median-of-3 seconds per energy evaluation of one p = 1 QAOA circuit for the fast path
(Aer statevector probabilities x energy diagonal), Aer EstimatorV2 and Aer SamplerV2 (1024 shots); statevector
up to 24 qubits, MPS (bond 16, approximate) from 26 on.

    python benchmarks/bench_quantum.py [--quick] [--sizes 16,20,24] [--eval-sizes 16,20,24,26,28,30]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import numpy as np
import torch


def _mis_instance(n: int):
    from sciml.quantum import instance_path, mis_qubo, read_dimacs

    g = read_dimacs(instance_path("mis_1tc.32.txt"))
    return mis_qubo(n, g.edges[(g.edges < n).all(1)], penalty=2.0)


def compare(n: int, maxiter: int, seed: int = 0) -> dict:
    from sciml.quantum import solve_qaoa
    from sciml.quantum.peers import qiskit_optimization_qaoa

    qubo, problem = _mis_instance(n)
    rng = np.random.default_rng(seed)
    x0 = np.concatenate([rng.uniform(0, np.pi / 2, 1), rng.uniform(0, np.pi, 1)])   # = ours with restarts=1
    out = {"n": n, "opt": -problem.exact()[1]}
    for label, method in (("ours_auto", "auto"), ("ours_sv", "statevector")):
        if label == "ours_sv" and n > 22:
            continue
        t0 = time.perf_counter()
        r = solve_qaoa(qubo, reps=1, seed=seed, restarts=1, maxiter=maxiter, init=x0, method=method,
                       feasible=problem.feasible_mask, on_failure="ignore")
        out[label] = (time.perf_counter() - t0, r.energy, r.evaluations, r.simulator)
    t0 = time.perf_counter()
    theirs = qiskit_optimization_qaoa(qubo, reps=1, maxiter=maxiter, seed=seed, initial_point=x0)
    out["theirs"] = (time.perf_counter() - t0, theirs.energy, theirs.evaluations, "aer-sampler-statevector")
    return out


def eval_times(n: int, repeats: int = 3) -> dict:
    from qiskit.circuit.library import qaoa_ansatz

    from sciml.quantum import all_energies, default_primitives
    from sciml.quantum.qaoa import _aer_diagonal_expectation

    qubo, _ = _mis_instance(n) if n <= 32 else (None, None)
    H, const = qubo.to_pauli()
    scale = float(np.abs(H.coeffs).max())
    method, bond = ("statevector", None) if n <= 24 else ("matrix_product_state", 16)
    est, sampler, pm = default_primitives(seed=0, method=method, max_bond_dimension=bond)
    qc = qaoa_ansatz(H / scale, reps=1)
    isa = pm.run(qc)
    Hl = (H / scale).apply_layout(isa.layout)
    qcm = qc.copy()
    qcm.measure_all()
    isam = pm.run(qcm)
    theta = np.array([0.4, 0.7])
    calls = {"estimator": lambda: est.run([(isa, Hl, theta)]).result(),
             "sampler": lambda: sampler.run([(isam, theta)], shots=1024).result()}
    if n <= 24:
        fast = _aer_diagonal_expectation(isa, (all_energies(qubo, max_vars=26) - const).numpy() / scale, 0)
        calls["fast"] = lambda: fast(theta)
    out = {"n": n, "method": method if bond is None else f"mps(bond={bond})"}
    for name, call in calls.items():
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            call()
            times.append(time.perf_counter() - t0)
        out[name] = statistics.median(times)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="sizes 16, 20; evaluation sizes 16, 20, 26, 30")
    parser.add_argument("--sizes", default=None, help="comparison sizes (default 16,20,24)")
    parser.add_argument("--eval-sizes", default=None, help="per-evaluation sizes (default 16,20,22,24,26,28,30)")
    parser.add_argument("--maxiter", type=int, default=20)
    args = parser.parse_args()
    import qiskit
    import qiskit_aer
    import qiskit_optimization

    torch.set_num_threads(1)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs (load "
          f"{os.getloadavg()[0]:.1f}), torch {torch.__version__}, qiskit {qiskit.__version__}, aer "
          f"{qiskit_aer.__version__}, qiskit-optimization {qiskit_optimization.__version__}")
    sizes = [int(s) for s in (args.sizes or ("16,20" if args.quick else "16,20,24")).split(",")]
    print(f"\nQAOA p=1, COBYLA maxiter={args.maxiter}, one seeded start shared by both")
    print("n   solver     simulator                 seconds  theirs/ours  energy  optimum  evaluations")
    for n in sizes:
        r = compare(n, args.maxiter)
        t_theirs = r["theirs"][0]
        for label in ("ours_auto", "ours_sv", "theirs"):
            if label in r:
                t, e, ev, sim = r[label]
                print(f"{n:<3d} {label:10s} {sim:24s} {t:8.2f} {t_theirs / t:10.2f}x {e:7.1f} {r['opt']:7.1f} "
                      f"{ev:6d}", flush=True)
    evals = [int(s) for s in (args.eval_sizes or ("16,20,26,30" if args.quick else "16,20,22,24,26,28,30")).split(",")]
    print("\nseconds per energy evaluation (median of 3), one p=1 circuit")
    print("n   method            fast      estimator  sampler(1024 shots)")
    for n in evals:
        r = eval_times(n)
        fast = f"{r['fast']:9.3f}" if "fast" in r else "      n/a"
        print(f"{n:<3d} {r['method']:16s} {fast} {r['estimator']:10.3f} {r['sampler']:10.3f}", flush=True)


if __name__ == "__main__":
    main()
