"""Validated, frozen config dataclasses with typed ``key=value`` overrides.

Subclass :class:`Config` as a frozen dataclass; put range checks in ``validate`` (called after init).
``cfg.override(["n=64", "lr=1e-3"])`` returns a new, validated config with each value coerced to its field's type.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, Iterable

from sciml.core.registry import close_matches


def _coerce(text: str, annotation: Any, field_name: str) -> Any:
    """Parse ``text`` to the field's annotated type (bool, int, float, str, tuples, Optional/Literal)."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        if text.lower() in ("none", "null") and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return _coerce(text, arg, field_name)
            except ValueError as err:
                errors.append(str(err))
        raise ValueError("; ".join(errors))
    if origin is typing.Literal:
        for arg in args:
            if str(arg) == text:
                return arg
        raise ValueError(f"{field_name} must be one of {list(args)}, got {text!r}")
    if origin in (tuple, list):
        items = [t for t in text.strip("()[] ").split(",") if t.strip()]
        inner = args[0] if args else str
        values = [_coerce(t.strip(), inner, field_name) for t in items]
        return tuple(values) if origin is tuple else values
    if annotation is bool:
        lowered = text.lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"{field_name} must be a bool (true/false), got {text!r}")
    if annotation is int:
        try:
            return int(text)
        except ValueError:
            raise ValueError(f"{field_name} must be an int, got {text!r}") from None
    if annotation is float:
        try:
            return float(text)
        except ValueError:
            raise ValueError(f"{field_name} must be a float, got {text!r}") from None
    if annotation is str or annotation is Any:
        return text
    raise ValueError(f"{field_name}: cannot parse overrides of type {annotation!r}")


@dataclasses.dataclass(frozen=True)
class Config:
    """Base of all configs: frozen dataclass, validated at construction, overridable by ``key=value``."""

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ValueError naming the bad value. Subclasses extend this."""

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    def override(self, assignments: Iterable[str] | dict[str, Any]) -> "Config":
        """A new config with ``key=value`` strings (or a dict) applied, coerced to each field's type."""
        hints = typing.get_type_hints(type(self))
        changes: dict[str, Any] = {}
        items = assignments.items() if isinstance(assignments, dict) else (
            _split_assignment(a) for a in assignments)
        for key, value in items:
            if key not in hints or key not in self.field_names():
                hint = close_matches(key, self.field_names())
                raise ValueError(f"unknown config key {key!r}{hint}; valid keys: {', '.join(self.field_names())}")
            changes[key] = _coerce(value, hints[key], key) if isinstance(value, str) else value
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def check_subset(name: str, values: Iterable[str], allowed: Iterable[str]) -> None:
    """Raise ValueError unless ``values`` is a non-empty subset of ``allowed`` (for tuple-of-choice fields)."""
    values, allowed = tuple(values), tuple(allowed)
    if not values or set(values) - set(allowed):
        raise ValueError(f"{name} must be a non-empty subset of {allowed}, got {values}")


def _split_assignment(text: str) -> tuple[str, str]:
    if "=" not in text:
        raise ValueError(f"override {text!r} must look like key=value")
    key, value = text.split("=", 1)
    return key.strip(), value.strip()
