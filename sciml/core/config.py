"""Validated, frozen config dataclasses with typed ``key=value`` overrides.

Subclass :class:`Config` as a frozen dataclass; put range checks in ``validate`` (called after init).
``cfg.override(["n=64", "lr=1e-3", "sizes=8,16,32", "model.width=128"])`` returns a new, validated config with
each value coerced to its field's annotated type:

* ``bool`` accepts true/false/yes/no/on/off/1/0; ``int`` and ``float`` the usual literals;
* ``tuple[int, int]`` needs exactly two items (an error names the count); ``tuple[int, ...]`` and ``list[int]``
  take any number, written ``8,16,32`` or ``(8, 16, 32)`` or ``[8, 16, 32]``;
* ``Optional[X]`` also takes ``none``; ``Literal[...]`` one of its values;
* a field whose type is itself a ``Config`` is set field by field with a dotted key (``model.width=128``).

Why not tyro/jsonargparse: both would add a dependency for what ~150 lines do here, and neither handles our
frozen ``Config`` classes with per-class ``validate`` plus the scale presets of reproductions without glue of
about the same size. ``Config.describe()`` prints the fields for ``sciml show``.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from typing import Any, Iterable

from sciml.core.registry import close_matches

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def _split_items(text: str) -> list[str]:
    inner = text.strip()
    if inner[:1] in "([" and inner[-1:] in ")]":
        inner = inner[1:-1]
    return [t.strip() for t in inner.split(",") if t.strip()]


def _coerce(text: str, annotation: Any, field_name: str) -> Any:
    """Parse ``text`` to the field's annotated type (bool, int, float, str, tuples, lists, Optional, Literal)."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        if text.strip().lower() in ("none", "null") and type(None) in args:
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
            if str(arg) == text.strip():
                return arg
        raise ValueError(f"{field_name} must be one of {list(args)}, got {text!r}")
    if origin is tuple:
        items = _split_items(text)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(t, args[0], field_name) for t in items)
        if not args:
            return tuple(items)
        if len(items) != len(args):
            raise ValueError(f"{field_name} takes exactly {len(args)} comma-separated values, got {len(items)} "
                             f"in {text!r}")
        return tuple(_coerce(t, a, field_name) for t, a in zip(items, args))
    if origin is list:
        inner = args[0] if args else str
        return [_coerce(t, inner, field_name) for t in _split_items(text)]
    if annotation is bool:
        lowered = text.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise ValueError(f"{field_name} must be a bool (true/false), got {text!r}")
    if annotation is int:
        try:
            return int(text)
        except ValueError:
            raise ValueError(f"{field_name} must be an int, got {text!r}") from None
    if annotation is float:
        try:
            value = float(text)
        except ValueError:
            raise ValueError(f"{field_name} must be a float, got {text!r}") from None
        if not math.isfinite(value):
            raise ValueError(f"{field_name} must be a finite float, got {text!r}")
        return value
    if annotation is str or annotation is Any:
        return text
    raise ValueError(f"{field_name}: cannot parse overrides of type {annotation!r}")


def _from_plain(value: Any, annotation: Any, field_name: str) -> Any:
    """Rebuild a field from its JSON form (lists back to tuples, dicts back to nested configs)."""
    origin = typing.get_origin(annotation)
    if isinstance(annotation, type) and issubclass(annotation, Config) and isinstance(value, dict):
        return annotation.from_dict(value)
    if origin in (typing.Union, types.UnionType):
        if value is None:
            return None
        for arg in (a for a in typing.get_args(annotation) if a is not type(None)):
            try:
                return _from_plain(value, arg, field_name)
            except (TypeError, ValueError):
                continue
        return value
    if origin is tuple and isinstance(value, list):
        args = typing.get_args(annotation)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_from_plain(v, args[0], field_name) for v in value)
        if args and len(args) == len(value):
            return tuple(_from_plain(v, a, field_name) for v, a in zip(value, args))
        return tuple(value)
    if annotation is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def _type_name(annotation: Any) -> str:
    text = getattr(annotation, "__name__", None) if typing.get_origin(annotation) is None else None
    return text or str(annotation).replace("typing.", "")


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
        """A new config with ``key=value`` strings (or a dict) applied, coerced to each field's type.

        Dotted keys (``model.width=128``) reach into nested configs. Unknown keys raise with the valid ones.
        """
        hints = typing.get_type_hints(type(self))
        changes: dict[str, Any] = {}
        nested: dict[str, dict[str, Any]] = {}
        items = assignments.items() if isinstance(assignments, dict) else (
            _split_assignment(a) for a in assignments)
        for key, value in items:
            head, _, rest = key.partition(".")
            if head not in hints or head not in self.field_names():
                hint = close_matches(head, self.field_names())
                raise ValueError(f"unknown config key {key!r}{hint}; valid keys: {', '.join(self.field_names())}")
            annotation = hints[head]
            if rest:
                if not (isinstance(annotation, type) and issubclass(annotation, Config)):
                    raise ValueError(f"config key {head!r} is a {_type_name(annotation)}, not a nested config; "
                                     f"write {head}=VALUE")
                nested.setdefault(head, {})[rest] = value
            elif isinstance(value, str):
                changes[key] = _coerce(value, annotation, key)
            else:
                changes[key] = _from_plain(value, annotation, key)
        for head, sub in nested.items():
            base = changes.get(head, getattr(self, head))
            changes[head] = base.override(sub)
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Config":
        """Rebuild a config from ``to_dict()`` output (e.g. a result.json); unknown keys raise."""
        unknown = set(data) - set(cls.field_names())
        if unknown:
            raise ValueError(f"{cls.__name__} has no fields {sorted(unknown)}; valid keys: "
                             f"{', '.join(cls.field_names())}")
        hints = typing.get_type_hints(cls)
        return cls(**{k: _from_plain(v, hints[k], k) for k, v in data.items()})

    def describe(self) -> list[tuple[str, str, Any]]:
        """``(name, type, value)`` per field, nested configs flattened with dotted names."""
        hints = typing.get_type_hints(type(self))
        rows: list[tuple[str, str, Any]] = []
        for name in self.field_names():
            value = getattr(self, name)
            if isinstance(value, Config):
                rows += [(f"{name}.{n}", t, v) for n, t, v in value.describe()]
            else:
                rows.append((name, _type_name(hints[name]), value))
        return rows


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
