"""sciml.ot: entropic optimal transport (log-domain Sinkhorn, Sinkhorn-Newton-Sparse), adaptive PDHG for linear
programs, Bures-Wasserstein geometry of SPD matrices with the GBWBN batch norm, and entropic (Lott-Sturm-Villani)
curvature of density fields.

Imports only sciml.core and sciml.linalg; POT (optional extra ``ot``) is used only by tests and benchmarks.
Convention: eta is the INVERSE regularisation (paper convention); POT's ``reg`` is ``1 / eta``.
"""

from sciml.ot.bures import (BarycenterResult, bw_barycenter, bw_distance, bw_exp, bw_geodesic, bw_inner, bw_log,
                            bw_riemannian_gradient, bw_tangent_isometry)
from sciml.ot.gbwbn import AIRMBatchNorm, BiMap, BuresWassersteinSGD, GBWBatchNorm, LogEig, ReEig
from sciml.ot.entropic_curvature import CurvatureResult, entropic_curvature, gaussian_smooth, spectral_moment
from sciml.ot.instances import random_assignment_instance
from sciml.ot.pdhg import LPOperator, PDHGResult, pdhg_assignment, pdhg_lp
from sciml.ot.result import TransportResult
from sciml.ot.sinkhorn import sinkhorn
from sciml.ot.sns import sinkhorn_newton_sparse

__all__ = ["TransportResult", "random_assignment_instance", "sinkhorn", "sinkhorn_newton_sparse",
           "BarycenterResult", "bw_barycenter", "bw_distance", "bw_exp", "bw_geodesic", "bw_inner", "bw_log",
           "bw_riemannian_gradient", "bw_tangent_isometry",
           "AIRMBatchNorm", "BiMap", "BuresWassersteinSGD", "GBWBatchNorm", "LogEig", "ReEig",
           "CurvatureResult", "entropic_curvature", "gaussian_smooth", "spectral_moment",
           "LPOperator", "PDHGResult", "pdhg_assignment", "pdhg_lp"]
