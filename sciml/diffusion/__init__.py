"""sciml.diffusion: diffusion samplers with exact-score Gaussian mixtures and Levenberg-Marquardt-Langevin (LML).

Imports only sciml.core, sciml.linalg and torch; diffusers is a test/benchmark peer only.
"""

from sciml.diffusion.diffusers_compat import LMLScheduler
from sciml.diffusion.gmm import GaussianMixture, IsotropicGaussianMixture, gmm_2d_8mode, gmm_16d_5mode, gmm_isotropic
from sciml.diffusion.lml import (
    ExactHessianCorrection,
    LangevinCorrection,
    LMCorrection,
    RoundingNoiseControl,
    lm_operator,
    released_lm_correct,
)
from sciml.diffusion.lowrank import lowrank_inv_sqrt, woodbury_solve
from sciml.diffusion.image_metrics import FeatureCNN, FeatureScores, train_feature_net
from sciml.diffusion.metrics import (
    frechet_distance,
    kernel_inception_distance,
    mode_weight_tv,
    polynomial_mmd2,
    rbf_mmd2,
    sliced_w2,
)
from sciml.diffusion.networks import EpsMLP, TrainResult, train_eps_model
from sciml.diffusion.samplers import SAMPLERS, SampleResult, sample
from sciml.diffusion.solvers import SAMPLER_REGISTRY, SolverStep, register_sampler
from sciml.diffusion.schedules import FlowSchedule, VPSchedule
from sciml.diffusion.unet import TinyUNet

__all__ = [
    "SAMPLERS",
    "EpsMLP",
    "FeatureCNN",
    "FeatureScores",
    "TinyUNet",
    "kernel_inception_distance",
    "polynomial_mmd2",
    "train_feature_net",
    "ExactHessianCorrection",
    "FlowSchedule",
    "GaussianMixture",
    "IsotropicGaussianMixture",
    "RoundingNoiseControl",
    "LMCorrection",
    "LMLScheduler",
    "SAMPLER_REGISTRY",
    "SolverStep",
    "register_sampler",
    "LangevinCorrection",
    "SampleResult",
    "TrainResult",
    "VPSchedule",
    "frechet_distance",
    "gmm_2d_8mode",
    "gmm_16d_5mode",
    "gmm_isotropic",
    "lm_operator",
    "released_lm_correct",
    "lowrank_inv_sqrt",
    "mode_weight_tv",
    "rbf_mmd2",
    "sample",
    "sliced_w2",
    "train_eps_model",
    "woodbury_solve",
]
