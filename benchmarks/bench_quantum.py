"""QAOA p = 2 (16 and 20 qubits): sciml.quantum.solve_qaoa vs qiskit-optimization's MinimumEigenOptimizer(QAOA).

Same Hamiltonian (MIS on an induced subgraph of a DIMACS 1tc graph, P = 2), same optimiser budget (COBYLA,
one start, `--maxiter` iterations), same simulator (Aer statevector, level-1 preset pass manager). Prints wall
time ratio (theirs / ours, >= 1 means we are faster) and the energy each returns vs the brute-force optimum. Then
times one p = 1 QAOA circuit (1000 shots) vs qubit count on Aer statevector and capped MPS (bond 32) and
saves a plot to results/benchmarks/quantum_simulator_scaling.png.

    python benchmarks/bench_quantum.py [--quick]
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch


def _mis_instance(n: int):
    from sciml.quantum import instance_path, mis_qubo, read_dimacs

    g = read_dimacs(instance_path("mis_1tc.32.txt"))
    edges = g.edges[(g.edges < n).all(1)]
    return mis_qubo(n, edges, penalty=2.0)


def compare(n: int, maxiter: int, seed: int = 0) -> dict:
    from sciml.quantum import brute_force, solve_qaoa
    from sciml.quantum.peers import qiskit_optimization_qaoa

    qubo, problem = _mis_instance(n)
    opt = brute_force(qubo).energy
    t0 = time.perf_counter()
    ours = solve_qaoa(qubo, reps=2, seed=seed, restarts=1, maxiter=maxiter, on_failure="ignore")
    t_ours = time.perf_counter() - t0
    t0 = time.perf_counter()
    theirs = qiskit_optimization_qaoa(qubo, reps=2, maxiter=maxiter, seed=seed)
    t_theirs = time.perf_counter() - t0
    return {"n": n, "opt": opt, "ours_s": t_ours, "theirs_s": t_theirs, "ratio": t_theirs / t_ours,
            "ours_energy": ours.energy, "theirs_energy": theirs.energy, "ours_evals": ours.evaluations,
            "theirs_evals": theirs.evaluations,
            "ours_feasible": problem.feasible(ours.x), "theirs_feasible": problem.feasible(theirs.x)}


def circuit_time(n: int, method: str, bond: int | None = None) -> float:
    from qiskit.circuit.library import qaoa_ansatz

    from sciml.quantum import default_primitives

    qubo, _ = _mis_instance(n) if n <= 32 else (None, None)
    H, _ = qubo.to_pauli()
    _, sampler, pm = default_primitives(seed=0, method=method, max_bond_dimension=bond)
    qc = qaoa_ansatz(H / float(np.abs(H.coeffs).max()), reps=1)
    qc.measure_all()
    isa = pm.run(qc)
    theta = np.array([0.4, 0.7])
    t0 = time.perf_counter()
    sampler.run([(isa, theta)], shots=1000).result()
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="16 qubits only, fewer iterations, sizes <= 20")
    parser.add_argument("--maxiter", type=int, default=None)
    parser.add_argument("--seeds", type=int, default=None, help="seeds per size (default 3 at 16, 1 at 20)")
    args = parser.parse_args()
    import qiskit
    import qiskit_aer
    import qiskit_optimization

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
          f"qiskit {qiskit.__version__}, aer {qiskit_aer.__version__}, qiskit-optimization "
          f"{qiskit_optimization.__version__} (shared, loaded machine: ratios only)")
    maxiter = args.maxiter or (30 if args.quick else 60)
    sizes = (16,) if args.quick else (16, 20)
    print(f"\nQAOA p=2, COBYLA maxiter={maxiter}, 1 start, Aer statevector")
    print("n  seed ours_s  theirs_s  ratio(theirs/ours)  E_ours  E_theirs  E_opt  evals(ours,theirs)  "
          "per-eval ratio  feasible(ours,theirs)")
    seeds = {16: args.seeds or (1 if args.quick else 3), 20: args.seeds or 1}
    for n, seed in [(size, s) for size in sizes for s in range(seeds[size])]:
        r = compare(n, maxiter, seed)
        print(f"{r['n']:<3d} {seed:3d} {r['ours_s']:7.2f} {r['theirs_s']:8.2f} {r['ratio']:10.2f}x {r['ours_energy']:12.1f} "
              f"{r['theirs_energy']:8.1f} {r['opt']:6.1f} {r['ours_evals']:5d},{r['theirs_evals']:<5d}  "
              f"{(r['theirs_s'] / max(r['theirs_evals'], 1)) / (r['ours_s'] / r['ours_evals']):8.2f}x      "
              f"{r['ours_feasible']},{r['theirs_feasible']}")
    qubits = (8, 12, 16, 20) if args.quick else (8, 12, 16, 20, 22, 24)
    rows = []
    print("\nsimulator wall time per p=1 circuit (1000 shots)")
    print("n   statevector_s  mps_bond32_s")
    for n in qubits:
        sv = circuit_time(n, "statevector")
        mps = circuit_time(n, "matrix_product_state", bond=32)
        rows.append((n, sv, mps))
        print(f"{n:<3d} {sv:12.3f} {mps:12.3f}")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.semilogy([r[0] for r in rows], [r[1] for r in rows], "o-", label="statevector")
    ax.semilogy([r[0] for r in rows], [r[2] for r in rows], "s-", label="MPS, bond <= 32 (approximate)")
    ax.set_xlabel("qubits")
    ax.set_ylabel("seconds per circuit (1000 shots)")
    ax.set_title("Aer, one p=1 QAOA circuit (MIS 1tc.32 subgraph)")
    ax.legend()
    out = Path(__file__).resolve().parents[1] / "results" / "benchmarks"
    out.mkdir(parents=True, exist_ok=True)
    fig.savefig(out / "quantum_simulator_scaling.png", dpi=120, bbox_inches="tight")
    print(f"plot: {out / 'quantum_simulator_scaling.png'}")


if __name__ == "__main__":
    main()
