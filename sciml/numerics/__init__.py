"""sciml.numerics: optimisation numerics from the paper list (spec optim_numerics sections 4-8).

Present: over-parameterised matrix sensing GD (symmetric / asymmetric, modification, ScaledGD) and streaming top
eigenvectors (Oja with an eta grid, the random-order block power method with exact heavy rows). Block coordinate
descent and the bilevel solvers (BSVRB, LV-HBA) of issue 21 are not implemented yet.
"""

from sciml.numerics.sensing import SensingResult, gaussian_sensing, matrix_sensing_gd
from sciml.numerics.streaming import StreamingResult, streaming_top_eigenvector

__all__ = ["SensingResult", "StreamingResult", "gaussian_sensing", "matrix_sensing_gd", "streaming_top_eigenvector"]
