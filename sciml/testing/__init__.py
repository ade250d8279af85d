"""sciml.testing: tolerances, a dense-oracle operator test battery and a problem zoo, for tests and users
extending sciml. Not imported by library code."""

from sciml.testing.problems import random_spd, random_orthogonal
from sciml.testing.tolerances import tol

__all__ = ["random_orthogonal", "random_spd", "tol"]
