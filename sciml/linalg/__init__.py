"""sciml.linalg: the shared structured linear-algebra core (CPU or GPU, float32/float64).

Imports only sciml.core and torch. Domain modules build on these names.
"""

from sciml.linalg.chebyshev import (chebyshev_basis, chebyshev_coefficients, chebyshev_derivative,
                                    chebyshev_evaluate, chebyshev_integral_weights, chebyshev_integrate,
                                    chebyshev_nodes, chebyshev_values)
from sciml.linalg.hutchinson import DiagonalEstimate, Estimate, hutchinson_diagonal, hutchinson_trace, hutchpp_trace
from sciml.linalg.interop import from_linear_operator, from_scipy, to_linear_operator, to_scipy
from sciml.linalg.kronecker import KroneckerConditioning, KroneckerEigh, KroneckerOperator, kron_apply, kron_vector
from sciml.linalg.krylov import (LanczosResult, PowerResult, SolveResult, SpectralDensity, check_symmetric_probe,
                                 conjugate_gradient, jacobi_preconditioner, lanczos, power_iteration, slq_density)
from sciml.linalg.logdomain import log_kernel_reduce
from sciml.linalg.matfun import PolarResult, inv_sqrtm_psd, logm_psd, newton_schulz, polar, sqrtm_psd
from sciml.linalg.operator import DenseOperator, LinearOperator, MatvecOperator, as_operator
from sciml.linalg.sparse import SparseOperator
from sciml.linalg.spd import (divided_differences, eigenvalue_clamp, lyapunov_solve, spd_inv_sqrtm, spd_logm,
                              spd_matrix_function, spd_power, spd_sqrtm)
from sciml.linalg.tensor_ops import fold, khatri_rao, mode_product, multi_mode_product, unfold
from sciml.linalg.tucker import TuckerFit, TuckerTensor, tucker_hooi, tucker_hosvd

__all__ = [
    "chebyshev_basis", "chebyshev_coefficients", "chebyshev_derivative", "chebyshev_evaluate",
    "chebyshev_integral_weights", "chebyshev_integrate", "chebyshev_nodes", "chebyshev_values",
    "DiagonalEstimate", "Estimate", "LanczosResult", "PolarResult", "PowerResult", "SolveResult",
    "SpectralDensity", "conjugate_gradient", "hutchinson_diagonal", "hutchinson_trace", "hutchpp_trace",
    "inv_sqrtm_psd", "lanczos", "logm_psd", "newton_schulz", "polar", "power_iteration", "slq_density",
    "sqrtm_psd",
    "DenseOperator", "KroneckerEigh", "KroneckerOperator", "LinearOperator", "MatvecOperator", "TuckerFit",
    "TuckerTensor", "as_operator", "fold", "khatri_rao", "kron_vector", "mode_product", "multi_mode_product",
    "tucker_hooi", "tucker_hosvd", "unfold",
    "KroneckerConditioning", "check_symmetric_probe", "from_linear_operator", "from_scipy", "kron_apply",
    "to_linear_operator", "to_scipy", "SparseOperator", "divided_differences", "lyapunov_solve", "spd_inv_sqrtm",
    "spd_logm", "spd_matrix_function", "spd_power", "spd_sqrtm", "jacobi_preconditioner", "log_kernel_reduce",
    "eigenvalue_clamp",
]
