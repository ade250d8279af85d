"""sciml.gp_pde: Gaussian-process PDE solvers.

* GP-HM (Fang et al., ICLR 2024, arXiv:2311.04465): spectral-mixture product kernels on a tensor grid, Kronecker
  prior, closed-form kernel derivatives; matrix-free Gauss-Newton with a tolerance stop (default,
  ``mode="gauss_newton"``), the paper's joint Adam (``mode="adam"``) or a dense U-step + Adam (``"alternating"``);
* Barron-space variational PDEs (Marwah et al., ICML 2023, arXiv 2210.12101): (I - Laplacian)^{-1}-preconditioned
  gradient descent on periodic / Dirichlet grids, spectral Barron norms, Maurey and trained two-layer networks;
* baselines: GP collocation with Gauss-Newton (Chen, Hosseini, Owhadi, Stuart 2021) and PINN / Fourier-feature PINN.

Imports only sciml.core, sciml.linalg and torch (gpytorch is used by the tests only).
"""

from sciml.gp_pde.barron import (DeepRitzResult, MaureyNetwork, PGDResult, PreconditionedGD, TwoLayerFit,
                                 VariationalPDE, barron_norm, deep_ritz, fit_two_layer, manufactured_example,
                                 maurey_two_layer)
from sciml.gp_pde.collocation import CollocationResult, box_points, collocation_solve, gp_collocation
from sciml.gp_pde.grid_gp import KroneckerGridPrior
from sciml.gp_pde.kernels import KINDS, KernelParams, SpectralMixture1D
from sciml.gp_pde.pinn import FourierFeaturePINN, PINNResult, train_pinn
from sciml.gp_pde.problems import (PDE, Preset, Problem, advection, allen_cahn, apply_operator, boundary_indices,
                                   check_domain, derivative_orders, grid_axes, grid_points, manufactured, poisson,
                                   presets)
from sciml.gp_pde.solver import GPHMConfig, GPHMResult, Spectrum, solve

__all__ = [
    "DeepRitzResult", "MaureyNetwork", "PGDResult", "PreconditionedGD", "TwoLayerFit", "VariationalPDE",
    "barron_norm", "deep_ritz", "fit_two_layer", "manufactured_example", "maurey_two_layer",
    "KINDS", "PDE", "CollocationResult", "FourierFeaturePINN", "GPHMConfig", "GPHMResult", "KernelParams",
    "KroneckerGridPrior", "PINNResult", "Preset", "Problem", "SpectralMixture1D", "Spectrum", "advection",
    "allen_cahn", "apply_operator", "boundary_indices", "box_points", "check_domain", "collocation_solve",
    "derivative_orders", "gp_collocation", "grid_axes", "grid_points", "manufactured", "poisson", "presets", "solve",
    "train_pinn",
]
