"""sciml.numerics: optimisation numerics from the paper list (spec optim_numerics sections 4-8).

* greedy block coordinate descent (Nutini, Laradji, Schmidt): problems, selection rules, partitions, block updates
  up to exact solves and Gaussian belief propagation on forest blocks (:mod:`sciml.numerics.bcd`);
* over-parameterised matrix sensing GD, symmetric / asymmetric, with the one-step modification and ScaledGD;
* streaming top eigenvectors: Oja with an eta grid, the random-order block power method with exact heavy rows.
The bilevel solvers of issue 21 (BSVRB, LV-HBA) are not implemented yet.
"""

from sciml.numerics.bcd import (BCDResult, LeastSquares, Logistic, NonNegL1LeastSquares, Quadratic, Softmax, bcd,
                                dataset_a, dataset_d, gabp_solve, make_partition)
from sciml.numerics.sensing import SensingResult, gaussian_sensing, matrix_sensing_gd
from sciml.numerics.streaming import StreamingResult, streaming_top_eigenvector

__all__ = ["BCDResult", "LeastSquares", "Logistic", "NonNegL1LeastSquares", "Quadratic", "SensingResult", "Softmax",
           "StreamingResult", "bcd", "dataset_a", "dataset_d", "gabp_solve", "gaussian_sensing", "make_partition",
           "matrix_sensing_gd", "streaming_top_eigenvector"]
