"""sciml.kernels: infinite-width kernels of wide networks (Yang, Tensor Programs, arXiv 1902.04760; spec ssm.md part 2).

* :func:`mlp_kernel`: exact NNGP and NTK of an MLP (NTK or standard parameterization), ReLU/erf in closed form,
  any elementwise callable by Gauss-Hermite quadrature.
* :func:`empirical_ntk` (J J^T via torch.func), :func:`empirical_nngp` (last-layer Gram), :class:`FiniteMLP`.
* :mod:`sciml.kernels.rmt`: semicircle / Marchenko-Pastur checks (spec 2.2.7).
* ``NNGPKernel``, ``NTKKernel``: gpytorch kernels (gpytorch imported only when these names are used).

* :func:`cnn_kernel` (1-D / 2-D, circular / same / valid padding, strides, GAP / flatten readout; :class:`FiniteCNN`) and
  :func:`rnn_kernel` (Elman, last-state readout; :class:`FiniteRNN`): spec 2.2.4-2.2.5.
"""

from sciml.kernels.cnn import CNNKernel, FiniteCNN, cnn_kernel
from sciml.kernels.convergence import (WidthSweep, ensemble_covariance_error, loglog_slope, mlp_width_sweep,
                                      output_covariance_error, width_sweep)
from sciml.kernels.dual import erf_v, gauss_hermite_v, hermite_nodes, monte_carlo_v, relu_v
from sciml.kernels.empirical import FiniteMLP, empirical_nngp, empirical_ntk, relative_frobenius
from sciml.kernels.mlp import MLPKernel, mlp_kernel, mlp_kernel_diag
from sciml.kernels.rnn import FiniteRNN, RNNKernel, rnn_kernel
from sciml.kernels.rmt import kolmogorov_to_semicircle, marchenko_pastur_moments, program_moments, wigner

__all__ = [
    "CNNKernel", "FiniteCNN", "FiniteRNN", "RNNKernel", "cnn_kernel", "ensemble_covariance_error", "rnn_kernel",
    "width_sweep",
    "FiniteMLP", "MLPKernel", "NNGPKernel", "NTKKernel", "WidthSweep", "empirical_nngp", "empirical_ntk", "erf_v",
    "gauss_hermite_v", "hermite_nodes", "kolmogorov_to_semicircle", "loglog_slope", "marchenko_pastur_moments", "mlp_kernel", "mlp_kernel_diag", "mlp_width_sweep",
    "monte_carlo_v", "output_covariance_error", "program_moments", "relative_frobenius", "relu_v", "wigner",
]


def __getattr__(name: str):
    if name in ("NNGPKernel", "NTKKernel"):
        from sciml.kernels import gpytorch_kernels   # lazy: gpytorch is optional
        return getattr(gpytorch_kernels, name)
    raise AttributeError(f"module 'sciml.kernels' has no attribute {name!r}")
