"""sciml.optim: curvature-aware optimizers as ``torch.optim.Optimizer`` subclasses.

AdaHessian (Hutchinson Hessian diagonal), Sophia-G / Sophia-H (clipped diagonal Newton with GNB or Hutchinson
curvature, three conventions), M-FAC (inverse empirical-Fisher steps over a sliding gradient window), and the
orthogonalised-momentum family for matrix parameters: Muon (torch.optim.Muon semantics), NAMO, NAMO-D, AuON and
Hybrid-AuON; and ``grad_norm_smooth``, the gradient-regularised Newton method with approximate Hessians.
``OPTIMIZERS`` lists them with what a step needs, and drives the shared tests.
"""

from sciml.optim.adahessian import AdaHessian, spatial_average
from sciml.optim.auon import AuON, HybridAuON, cosh_rms
from sciml.optim.grad_norm_smooth import GradNormSmoothResult, grad_norm_smooth
from sciml.optim.mfac import MFAC
from sciml.optim.muon import NAMO, NAMOD, Muon, WithAdamW, matrix_and_other_params
from sciml.optim.sophia import CONVENTIONS, SophiaG, SophiaH, sample_labels

# name -> (class, needs create_graph=True on (some) steps, default keyword arguments for the shared tests)
OPTIMIZERS = {
    "adahessian": (AdaHessian, True, dict(lr=0.15)),
    "sophia_h": (SophiaH, True, dict(lr=1e-3, update_interval=2)),
    "sophia_g": (SophiaG, False, dict(lr=1e-3, rho=0.05)),
    "mfac": (MFAC, False, dict(lr=1e-3, ngrads=8, damp=1e-4)),
    "muon": (Muon, False, dict(lr=0.02)),
    "namo": (NAMO, False, dict(lr=1e-2)),
    "namo_d": (NAMOD, False, dict(lr=9e-3)),
    "auon": (AuON, False, dict(lr=0.05)),
    "hybrid_auon": (HybridAuON, False, dict(lr=0.02)),
}

__all__ = [
    "CONVENTIONS", "MFAC", "NAMO", "NAMOD", "OPTIMIZERS", "AdaHessian", "AuON", "GradNormSmoothResult", "HybridAuON",
    "Muon", "SophiaG", "SophiaH", "WithAdamW", "cosh_rms", "grad_norm_smooth", "matrix_and_other_params",
    "sample_labels", "spatial_average",
]
