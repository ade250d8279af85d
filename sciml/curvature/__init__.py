"""sciml.curvature: curvature of torch models as matrix-free operators, and estimators on them.

A shared layer (imports only sciml.core and sciml.linalg): Hessian, generalised Gauss-Newton, Monte-Carlo and
empirical Fisher operators of a model + loss + data (spec curvature.md part A), their trace, diagonal, extreme
eigenpairs and spectral density, loss-landscape slices and plots. Method packages build on these names.
"""

from sciml.curvature.alignment import (AlignmentTerms, alignment_objective, hessian_alignment_penalty,
                                       hessian_gradient_product, hutchinson_hessian_diagonal)
from sciml.curvature.estimators import (DensityResult, EigenResult, batch_ggn_eigenvalues, bottom_eigenvalues,
                                        ggn_gram_eigenvalues, hutchinson_diagonal, hutchinson_trace, hutchpp_trace,
                                        spectral_density, spectral_sum, top_eigenvalues)
from sciml.curvature.functional import ggn_vp, hvp, per_sample_grads, per_sample_jacobians
from sciml.curvature.landscape import Landscape, loss_landscape, normalize_direction
from sciml.curvature.losses import output_hessian_blocks, output_hessian_product
from sciml.curvature.mfac import MFACInverseFisher
from sciml.curvature.operators import (CurvatureOperator, EmpiricalFisherOperator, FisherMCOperator, GGNOperator,
                                       HessianOperator)
from sciml.curvature.plots import (largest_log_gap, plot_curvature_history, plot_landscape, plot_sorted_spectrum,
                                   plot_spectral_density)

__all__ = [
    "AlignmentTerms", "CurvatureOperator", "DensityResult", "EigenResult", "EmpiricalFisherOperator",
    "FisherMCOperator", "GGNOperator", "HessianOperator", "Landscape", "MFACInverseFisher", "alignment_objective",
    "batch_ggn_eigenvalues", "bottom_eigenvalues", "ggn_gram_eigenvalues", "ggn_vp", "hessian_alignment_penalty",
    "hessian_gradient_product", "hutchinson_diagonal", "hutchinson_hessian_diagonal", "hutchinson_trace",
    "hutchpp_trace", "hvp", "largest_log_gap", "loss_landscape", "normalize_direction", "output_hessian_blocks",
    "output_hessian_product", "per_sample_grads", "per_sample_jacobians", "plot_curvature_history",
    "plot_landscape", "plot_sorted_spectrum", "plot_spectral_density", "spectral_density", "spectral_sum",
    "top_eigenvalues",
]
