"""sciml.compress: making trained torch models smaller with curvature information.

* HAWQ-V2 mixed-precision quantization (Hessian-trace sensitivity, exact bit allocation, fake quantization);
* unstructured pruning: magnitude and Optimal Brain Surgeon with M-FAC inverse empirical-Fisher products;
* HESSO structured pruning while training (zero-invariant groups of MLPs, plain CNNs and residual networks whose
  skip-connected channels share a group; the compact model with those rows, columns and channels deleted).
Every Hessian / Fisher quantity comes from the shared curvature layer (:mod:`sciml.curvature`).
"""

from sciml.compress.groups import ZeroInvariantGroup, channel_groups, compact_model, zero_invariant_groups
from sciml.compress.hesso import CRITERIA, HESSO
from sciml.compress.pruning import PruneResult, prunable_weights, prune, sparsity_schedule
from sciml.compress.quantization import (SUPPORTED_BITS, BitAllocation, HAWQSensitivity, allocate_bits, fake_quantize,
                                         hawq_sensitivity, pareto_configurations, quantizable_layers, quantize)
from sciml.compress.residual import ResidualCNN, ResidualMLP

__all__ = [
    "CRITERIA", "HESSO", "SUPPORTED_BITS", "BitAllocation", "HAWQSensitivity", "PruneResult", "ResidualCNN",
    "ResidualMLP", "ZeroInvariantGroup", "allocate_bits", "channel_groups", "compact_model", "fake_quantize",
    "hawq_sensitivity", "pareto_configurations", "prunable_weights", "prune", "quantizable_layers", "quantize",
    "sparsity_schedule", "zero_invariant_groups",
]
