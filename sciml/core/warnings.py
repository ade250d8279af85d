"""Warning categories raised by sciml. Imports nothing from sciml."""

from __future__ import annotations


class ConvergenceWarning(UserWarning):
    """An iterative routine stopped before meeting its tolerance (its result's status says why)."""


class NumericalWarning(UserWarning):
    """A computation lost accuracy (ill-conditioning, clipping, upcasting) but still returned a result."""
