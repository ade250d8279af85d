"""sciml.ot: entropic optimal transport (log-domain Sinkhorn, Sinkhorn-Newton-Sparse).

Imports only sciml.core and sciml.linalg; POT (optional extra ``ot``) is used only by tests and benchmarks.
Convention: eta is the INVERSE regularisation (paper convention); POT's ``reg`` is ``1 / eta``.
"""

from sciml.ot.instances import random_assignment_instance
from sciml.ot.result import TransportResult
from sciml.ot.sinkhorn import sinkhorn
from sciml.ot.sns import sinkhorn_newton_sparse

__all__ = ["TransportResult", "random_assignment_instance", "sinkhorn", "sinkhorn_newton_sparse"]
