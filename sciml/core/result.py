"""Typed, frozen result objects with a visible status.

Every non-trivial routine in sciml returns a frozen dataclass deriving from :class:`Result`. A routine that
does not converge sets ``status`` and emits :class:`~sciml.core.warnings.ConvergenceWarning`; it raises only
when the caller asked for it with ``on_failure="raise"``.
"""

from __future__ import annotations

import dataclasses
import enum
import math
import warnings
from typing import Any

import numpy as np
import torch

from sciml.core.warnings import ConvergenceWarning

# Tensors up to this many elements are written into JSON in full; larger ones as a summary.
MAX_JSON_ELEMENTS = 10_000


class Status(enum.Enum):
    """Outcome of a routine. Each member carries a message telling the user what to do about it."""

    CONVERGED = ("converged", "")
    MAX_ITER = ("max_iter", "the iteration budget ran out; raise max_iter or loosen tol")
    BREAKDOWN = ("breakdown", "the method broke down (e.g. a zero pivot or a lost Krylov direction)")
    NONFINITE = ("nonfinite", "a NaN or Inf appeared; check the inputs' scaling and dtype (try float64)")
    FAILED = ("failed", "the run raised an exception; see the message")
    STALLED = ("stalled", "the iterates stopped moving before the true residual/error met the tolerance: the answer "
               "is a stationary point, not a solution; see the result's reason")
    INFEASIBLE = ("infeasible", "the problem has no feasible point; the result carries the certificate")
    UNBOUNDED = ("unbounded", "the objective is unbounded on the feasible set; the result carries the certificate")

    def __init__(self, label: str, hint: str) -> None:
        self.label = label
        self.hint = hint

    def __str__(self) -> str:
        return self.label


def to_jsonable(value: Any) -> Any:
    """Convert tensors, arrays, enums and dataclasses to plain JSON types (large tensors as a summary)."""
    if isinstance(value, Status):
        return value.label
    if isinstance(value, enum.Enum):
        return value.name
    if isinstance(value, torch.Tensor):
        value = value.detach()
        if value.numel() <= MAX_JSON_ELEMENTS:
            if value.is_complex():
                return {"real": value.real.cpu().tolist(), "imag": value.imag.cpu().tolist()}
            return value.cpu().tolist()
        return {"shape": list(value.shape), "dtype": str(value.dtype), "norm": float(value.norm())}
    if isinstance(value, np.ndarray):
        return to_jsonable(torch.from_numpy(np.ascontiguousarray(value)))
    if isinstance(value, (np.floating, np.integer, np.bool_)):
        return value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if callable(value):
        return getattr(value, "__name__", type(value).__name__)
    return value


@dataclasses.dataclass(frozen=True)
class Result:
    """Base class of all result objects: frozen, with ``to_json()``."""

    def to_json(self) -> dict[str, Any]:
        return to_jsonable(self)


def report_status(status: Status, routine: str, detail: str = "", on_failure: str = "warn") -> None:
    """Warn (default) or raise when ``status`` is not CONVERGED.

    Args:
        status: the routine's outcome.
        routine: its name, for the message.
        detail: what was measured (e.g. the final residual).
        on_failure: "warn" (ConvergenceWarning), "raise" (RuntimeError) or "ignore".
    """
    if on_failure not in ("warn", "raise", "ignore"):
        raise ValueError(f"on_failure must be 'warn', 'raise' or 'ignore', got {on_failure!r}")
    if status is Status.CONVERGED or on_failure == "ignore":
        return
    message = f"{routine}: {status.label} ({detail}); {status.hint}".replace(" ()", "")
    if on_failure == "raise":
        raise RuntimeError(message)
    warnings.warn(message, ConvergenceWarning, stacklevel=3)
