"""sciml.games: small-gain Nash (SGN) certificates for differentiable games (Sharma, arXiv 2512.06791; spec
quantum_games.md part B).

* :func:`sgn_margin`, :func:`sgn_matrix`, :func:`optimal_weights`, :func:`two_player_band`: the N x N SGN algebra.
* :func:`lmi_weights`: the same weights by LMI bisection (cvxpy, optional).
* :func:`certify_linear` (F = Hx) and :func:`certify` (torch pseudo-gradient on a :class:`Box` or sample points) ->
  :class:`Certificate` with ``.weights .alpha .beta .h_euler .h_rk4``.
* :func:`gradient_play` (Euler / RK4), :func:`stability_threshold`, :func:`euler_threshold` (ground truth for steps).
* :mod:`sciml.games.markov`: the 2x2x2 entropy-regularised Markov game, its Fisher certificate, NPG vs Euclidean PG.
* :mod:`sciml.games.lq`: the paper's quadratic games (2-D, 64-D LQ, random ensemble).
"""

from sciml.games.certify import (Box, Certificate, block_bounds, certificate_from_jacobians, certify, certify_linear,
                                 euclidean_margin, weighted_lipschitz, weighted_margin)
from sciml.games.dynamics import (PlayResult, euler_threshold, gradient_play, rk4_amplification, spectral_radius,
                                  stability_threshold, step_matrix)
from sciml.games.lmi import LMIWeights, lmi_weights
from sciml.games.markov import (FisherCertificate, PolicyGradientRun, TabularMarkovGame, coordination_game,
                                fisher_certificate, policy_gradient)
from sciml.games.sgn import (TimescaleBand, Weights, comparison_matrix, optimal_weights, ratio_margins, sgn_margin,
                             sgn_matrix, small_gain_ratio, two_player_band, warm_start_weights)

__all__ = [
    "Box", "Certificate", "FisherCertificate", "LMIWeights", "lmi_weights",
    "PlayResult", "PolicyGradientRun", "TabularMarkovGame", "TimescaleBand",
    "Weights", "block_bounds", "certificate_from_jacobians", "certify", "certify_linear", "comparison_matrix",
    "coordination_game", "euclidean_margin", "euler_threshold", "fisher_certificate", "gradient_play",
    "optimal_weights", "policy_gradient", "ratio_margins", "rk4_amplification", "sgn_margin", "sgn_matrix",
    "small_gain_ratio", "spectral_radius", "stability_threshold", "step_matrix", "two_player_band",
    "warm_start_weights", "weighted_lipschitz", "weighted_margin",
]
