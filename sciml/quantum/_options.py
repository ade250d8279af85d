"""Early checks of string options, so that a misspelled name fails before any optimisation starts."""

from __future__ import annotations

from collections.abc import Sequence

from sciml.core.registry import close_matches


def check_choice(name: str, value: object, choices: Sequence[str]) -> str:
    """Return ``value`` if it is one of ``choices``; else ValueError naming the allowed values (and a close match)."""
    if not isinstance(value, str) or value not in choices:
        hint = close_matches(value, list(choices)) if isinstance(value, str) else ""
        raise ValueError(f"{name} must be one of {tuple(choices)}, got {value!r}{hint}")
    return value


def check_on_failure(on_failure: str) -> str:
    return check_choice("on_failure", on_failure, ("warn", "raise", "ignore"))
