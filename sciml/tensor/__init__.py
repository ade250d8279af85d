"""sciml.tensor: continuous tensor formats and decompositions (Chebyshev-Tucker, FunBaT).

Imports only sciml.core and sciml.linalg.
"""

# --- Chebyshev-Tucker (issue 4): exports below this line ---
from sciml.tensor.chebyshev_tucker import ChebyshevTucker, CPTensor
from sciml.tensor.ct_region import fit_on_region, region_points
from sciml.tensor.ct_rhosvd import RHOSVDFit, rhosvd
from sciml.tensor.concat_svd import (ClusterResult, IncrementalSVDEstimator, baseline_partition, cluster_metrics,
                                     concat_svd_cluster, residual_bound, true_error, union_of_subspaces_blocks,
                                     weyl_bound)
from sciml.tensor.ct_tt import ChebyshevTT
from sciml.tensor.metricgrids import HashGrid, InstantNGP, MetricGridsINR, fit_image, load_test_image, psnr
from sciml.tensor.potentials import (Charges, GaussianSum, direct_sum, gaussian, gaussian_sum_cp, lattice_charges,
                                     newton, newton_long, newton_short, random_charges, sinc_gaussian_sum, slater,
                                     yukawa)

# --- FunBaT (issue 5): exports below this line ---
from sciml.tensor.funbat import EpochStats, FunBaT, FunBaTResult
from sciml.tensor.funbat_gibbs import FunBaTGibbs, FunBaTSamples
from sciml.tensor.funbat_data import (PriorDrawTensor, SyntheticTensor, authors_cp_rank1, hourly_temperatures,
                                      prior_draw_tensor, spatiotemporal_tensor)
from sciml.tensor.funbat_gp import GPRegressionFit, fit_gp_regression
from sciml.tensor.state_space import (MaternSDE, SmootherResult, dense_gp_posterior, discretize, fit_hyperparameters,
                                      gp_smoother, kalman_rts, kalman_rts_parallel, log_evidence, log_evidence_grid,
                                      matern_kernel, matern_sde, stationary_cov)
from sciml.tensor.tucker_baselines import (BinnedTensor, GridCPFit, GridTuckerFit, bin_observations,
                                           masked_tucker_als, ptucker_als, tensorly_masked_cp, tensorly_masked_tucker)

__all__ = [
    "ClusterResult", "IncrementalSVDEstimator", "baseline_partition", "cluster_metrics", "concat_svd_cluster",
    "residual_bound", "true_error", "union_of_subspaces_blocks", "weyl_bound",
    "HashGrid", "InstantNGP", "MetricGridsINR", "fit_image", "load_test_image", "psnr",
    "BinnedTensor", "CPTensor", "Charges", "ChebyshevTT", "ChebyshevTucker", "EpochStats", "FunBaT", "FunBaTGibbs", "FunBaTResult", "FunBaTSamples",
    "GPRegressionFit", "GaussianSum", "GridCPFit", "GridTuckerFit", "MaternSDE", "RHOSVDFit", "SmootherResult", "SyntheticTensor",
    "authors_cp_rank1", "bin_observations", "fit_on_region", "region_points", "dense_gp_posterior", "direct_sum", "discretize", "fit_gp_regression", "fit_hyperparameters",
    "gaussian", "gaussian_sum_cp", "hourly_temperatures", "gp_smoother", "kalman_rts", "kalman_rts_parallel", "lattice_charges",
    "log_evidence", "log_evidence_grid", "masked_tucker_als",
    "matern_kernel", "matern_sde", "newton", "newton_long", "newton_short", "ptucker_als", "random_charges",
    "rhosvd", "sinc_gaussian_sum", "slater", "prior_draw_tensor", "PriorDrawTensor", "spatiotemporal_tensor", "stationary_cov", "tensorly_masked_cp", "tensorly_masked_tucker",
    "yukawa",
]
