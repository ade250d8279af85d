"""sciml.ssm: HiPPO, diagonal state-space layers (S4D, S5) and perturb-then-diagonalize (PTD) initialisation.

Reference: Yu, Nigmetov, Morozov, Mahoney, Erichson, "Robustifying State-space Models for Long Sequences via
Approximate Diagonalization" (ICLR 2024, arXiv 2310.01698).
"""

from sciml.ssm.hippo import (NPLR, DiagonalInit, eigenvector_condition, hippo_legs, hippo_legs_nplr, s4d_inv,
                             s4d_legs, s4d_lin)
from sciml.ssm.inits import INITS, block_diagonal, diagonal_init, memory_window, memory_window_dt
from sciml.ssm.kernels import (complex_expm1, discretize, fft_conv, linear_scan, log_transition, sequential_scan,
                               transfer_function, transition_powers, vandermonde_kernel, vandermonde_state)
from sciml.ssm.layers import S4D, S5
from sciml.ssm.model import SequenceModel, SequenceState, SSMBlock, ssm_param_groups, ssm_parameters
from sciml.ssm.ptd import PTDResult, diagonalize_perturbed, ptd, ptd_init, shipped_state_sizes

__all__ = [
    "INITS", "NPLR", "S4D", "S5", "DiagonalInit", "PTDResult", "SSMBlock", "SequenceModel", "SequenceState",
    "block_diagonal", "complex_expm1", "diagonal_init", "diagonalize_perturbed", "discretize",
    "eigenvector_condition", "fft_conv", "hippo_legs", "hippo_legs_nplr", "linear_scan", "log_transition",
    "memory_window", "memory_window_dt", "ptd",
    "ptd_init", "s4d_inv", "s4d_legs", "s4d_lin", "sequential_scan", "shipped_state_sizes", "ssm_param_groups",
    "ssm_parameters", "transfer_function", "transition_powers", "vandermonde_kernel", "vandermonde_state",
]
