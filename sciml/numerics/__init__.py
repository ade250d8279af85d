"""sciml.numerics: optimisation numerics from the paper list (spec optim_numerics sections 4-8).

* greedy block coordinate descent (Nutini, Laradji, Schmidt): problems, selection rules, partitions (fixed,
  variable, red-black / tree message-passing partitions), block updates up to exact solves and Gaussian belief
  propagation on forest blocks; data sets A-E (:mod:`~sciml.numerics.bcd`, ``bcd_graphs``, ``bcd_data``);
* multi-block bilevel optimisation: BSVRB v1 / v2, RSVRB, exact bilevel GD (:mod:`~sciml.numerics.bilevel`);
* constrained bilevel optimisation: LV-HBA on user callables and the paper's problems (``lvhba``,
  ``lvhba_problems``);
* over-parameterised matrix sensing GD, symmetric / asymmetric, with the one-step modification and ScaledGD;
* streaming top eigenvectors: Oja with an eta grid, the random-order block power method with exact heavy rows.
"""

from sciml.numerics.bcd import (BCDResult, LeastSquares, Logistic, NonNegL1LeastSquares, Quadratic, Softmax, bcd,
                                make_partition)
from sciml.numerics.bcd_data import dataset_a, dataset_b, dataset_c, dataset_d, dataset_e
from sciml.numerics.bcd_graphs import ForestGaBP, forest_partition, gabp_solve, red_black_partition
from sciml.numerics.bilevel import (BilevelResult, DataReweighting, MultiBlockBilevel, bilevel_gd,
                                    breast_cancer_reweighting, bsvrb, exact_hypergradient, rsvrb, solve_lower,
                                    upper_objective)
from sciml.numerics.lvhba import LVHBAResult, lv_hba
from sciml.numerics.lvhba_problems import CoupledToy, EqualityToy, PerSampleSVM
from sciml.numerics.sensing import SensingResult, gaussian_sensing, matrix_sensing_gd
from sciml.numerics.streaming import StreamingResult, streaming_top_eigenvector

__all__ = ["BCDResult", "BilevelResult", "CoupledToy", "DataReweighting", "EqualityToy", "ForestGaBP",
           "LVHBAResult", "LeastSquares", "Logistic", "MultiBlockBilevel", "NonNegL1LeastSquares", "PerSampleSVM",
           "Quadratic", "SensingResult", "Softmax", "StreamingResult", "bcd", "bilevel_gd",
           "breast_cancer_reweighting", "bsvrb", "dataset_a", "dataset_b", "dataset_c", "dataset_d", "dataset_e",
           "exact_hypergradient", "forest_partition", "gabp_solve", "gaussian_sensing", "lv_hba", "make_partition",
           "matrix_sensing_gd", "red_black_partition", "rsvrb", "solve_lower", "streaming_top_eigenvector",
           "upper_objective"]
