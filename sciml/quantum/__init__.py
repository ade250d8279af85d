"""sciml.quantum: QUBO models, constraint-aware adaptive graph shrinking, and QAOA on Qiskit simulators.

Conventions: minimise ``x^T Q x + offset`` (Q symmetric, linear terms on the diagonal); spins ``z = 1 - 2x``;
qubit i = variable i; Max-Cut node 0 is the anchor. qiskit / qiskit-aer / qiskit-optimization are imported lazily
inside the functions that need them.
"""

from sciml.quantum.annealing import AnnealResult, simulated_annealing
from sciml.quantum.io import instance_path, read_dimacs, read_mdkp, read_qaplib
from sciml.quantum.maxcut import GWResult, ShrinkState, gw_correlations
from sciml.quantum.pipeline import PipelineResult, shrink_and_solve
from sciml.quantum.problems import (
    MDKPProblem,
    MISProblem,
    PenaltyWarning,
    QAPProblem,
    mdkp_qubo,
    mis_qubo,
    qap_qubo,
)
from sciml.quantum.qaoa import (
    QAOAResult,
    RQAOAResult,
    check_qubits,
    cvar_vqe,
    default_primitives,
    interp_warm_start,
    make_primitives,
    qaoa_correlations,
    resolve_method,
    rqaoa,
    solve_qaoa,
)
from sciml.quantum.qubo import QUBO, BruteForceResult, all_energies, brute_force, cut_values
from sciml.quantum.shrinking import (
    ShrinkResult,
    VerifiedSolution,
    hardware_budget,
    paper_budget,
    shrink,
    verify_and_repair,
)

__all__ = [
    "QUBO", "AnnealResult", "BruteForceResult", "GWResult", "MDKPProblem", "MISProblem", "PipelineResult",
    "PenaltyWarning", "QAOAResult", "QAPProblem", "RQAOAResult", "ShrinkResult", "ShrinkState", "VerifiedSolution",
    "all_energies",
    "brute_force", "check_qubits", "cut_values", "cvar_vqe", "default_primitives", "gw_correlations",
    "hardware_budget", "instance_path", "interp_warm_start", "make_primitives", "mdkp_qubo", "mis_qubo", "paper_budget",
    "qaoa_correlations",
    "qap_qubo", "read_dimacs", "read_mdkp", "read_qaplib", "resolve_method", "rqaoa", "shrink", "shrink_and_solve",
    "simulated_annealing", "solve_qaoa", "verify_and_repair",
]
