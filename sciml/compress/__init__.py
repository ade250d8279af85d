"""sciml.compress: making trained torch models smaller with curvature information.

* HAWQ-V2 mixed-precision quantization (Hessian-trace sensitivity, exact bit allocation, fake quantization);
* unstructured pruning: magnitude and Optimal Brain Surgeon with M-FAC inverse empirical-Fisher products;
* HESSO structured pruning while training (zero-invariant groups of MLPs / plain CNNs, compact model).
Builds on the shared curvature layer (:mod:`sciml.curvature`) for every Hessian quantity.
"""

from sciml.curvature.mfac import MFACInverseFisher
from sciml.compress.hesso import CRITERIA, HESSO, ZeroInvariantGroup, compact_model, zero_invariant_groups
from sciml.compress.pruning import PruneResult, prunable_weights, prune, sparsity_schedule
from sciml.compress.quantization import (SUPPORTED_BITS, BitAllocation, HAWQSensitivity, allocate_bits, fake_quantize,
                                         hawq_sensitivity, pareto_configurations, quantizable_layers, quantize)

__all__ = ["CRITERIA", "HESSO", "ZeroInvariantGroup", "compact_model", "zero_invariant_groups", "MFACInverseFisher", "PruneResult", "prunable_weights", "prune", "sparsity_schedule", "SUPPORTED_BITS", "BitAllocation", "HAWQSensitivity", "allocate_bits", "fake_quantize", "hawq_sensitivity",
           "pareto_configurations", "quantizable_layers", "quantize"]
