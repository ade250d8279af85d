"""Experiment registry: ``@experiment(name, config=..., summary=...)`` registers a run function.

An experiment is ``run(cfg: Config, ctx: RunContext) -> dict[str, float]``. Its config is a frozen
:class:`ExperimentConfig` subclass with CPU-scale defaults; ``smoke=True`` shrinks it to seconds.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

from sciml.core import Config, Registry


@dataclasses.dataclass(frozen=True)
class ExperimentConfig(Config):
    """Base config of an experiment. ``smoke`` shrinks the run to well under 30 s (used by the tests)."""

    smoke: bool = False


@dataclasses.dataclass(frozen=True)
class Experiment:
    name: str
    run: Callable
    config: type[ExperimentConfig]
    summary: str
    tags: tuple[str, ...] = ()


EXPERIMENTS: Registry[Experiment] = Registry("experiment")


def experiment(name: str, *, config: type[ExperimentConfig] = ExperimentConfig, summary: str,
               tags: tuple[str, ...] = ()) -> Callable[[Callable], Callable]:
    """Register ``run(cfg, ctx)`` under ``name`` (e.g. "linalg/kronecker-scaling")."""
    if not (isinstance(config, type) and issubclass(config, ExperimentConfig)):
        raise ValueError(f"config of {name!r} must subclass ExperimentConfig")

    def decorate(fn: Callable) -> Callable:
        EXPERIMENTS.register(name, Experiment(name, fn, config, summary, tuple(tags)))
        return fn

    return decorate
