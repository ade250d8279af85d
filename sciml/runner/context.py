"""RunContext: what an experiment or reproduction gets from the runner (output folder, seed, device, progress).

Imports only ``sciml.core``; matplotlib is touched only when a figure is saved.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from pathlib import Path
from typing import Any, Iterable, TypeVar

import numpy as np
import torch

T = TypeVar("T")

SCALES = ("smoke", "default", "full")


@dataclasses.dataclass
class RunContext:
    """Per-run services. Everything a run writes goes under ``out_dir``.

    Attributes:
        out_dir: this run's folder (``results/<name>/<run-id>``).
        seed: the run's seed; ``generator`` (on ``device``) and ``np_rng`` are derived from it.
        device: where tensors should live (chosen by ``--device``).
        scale: "smoke" (seconds, for tests), "default" (minutes on a laptop CPU) or "full" (the paper's size).
    """

    out_dir: Path
    seed: int = 0
    device: torch.device = dataclasses.field(default_factory=lambda: torch.device("cpu"))
    scale: str = "default"
    quiet: bool = False
    figures: list[str] = dataclasses.field(default_factory=list)
    artifacts: list[str] = dataclasses.field(default_factory=list)
    metrics: dict[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.scale not in SCALES:
            raise ValueError(f"scale must be one of {SCALES}, got {self.scale!r}")
        self.out_dir = Path(self.out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(self.seed)
        self.np_rng = np.random.default_rng(self.seed)

    def record(self, **metrics: Any) -> None:
        """Record metrics as they are measured: if the run is interrupted (Ctrl-C) or fails, these are what
        result.json keeps. For a reproduction, record ``Measured`` values under their row keys."""
        self.metrics.update(metrics)

    @property
    def smoke(self) -> bool:
        return self.scale == "smoke"

    def make_generator(self, offset: int = 0, device: torch.device | str | None = None) -> torch.Generator:
        """A new generator seeded with ``seed + offset`` (independent streams for independent parts)."""
        gen = torch.Generator(device=device or self.device)
        gen.manual_seed(self.seed + offset)
        return gen

    def path(self, name: str) -> Path:
        """A path inside the run folder (refuses names that would escape it)."""
        target = (self.out_dir / name).resolve()
        if self.out_dir.resolve() not in target.parents and target != self.out_dir.resolve():
            raise ValueError(f"{name!r} points outside the run folder {self.out_dir}")
        target.parent.mkdir(parents=True, exist_ok=True)
        return target

    def save_figure(self, name: str, fig: Any) -> Path:
        """Save a matplotlib figure as ``<name>.png`` in the run folder and close it."""
        import matplotlib.pyplot as plt

        target = self.path(f"{name}.png")
        tmp = target.with_name(f".{target.name}.tmp")
        try:
            fig.savefig(tmp, dpi=120, bbox_inches="tight", format="png")
            os.replace(tmp, target)     # atomic: an interrupted save never leaves a truncated PNG
        finally:
            tmp.unlink(missing_ok=True)
            plt.close(fig)
        self.figures.append(target.name)
        return target

    def save_arrays(self, name: str, **arrays: Any) -> Path:
        """Save arrays to ``<name>.npz`` in the run folder."""
        target = self.path(f"{name}.npz")
        np.savez_compressed(target, **{k: _to_numpy(v) for k, v in arrays.items()})
        self.artifacts.append(target.name)
        return target

    def progress(self, iterable: Iterable[T], total: int | None = None, desc: str = "") -> Iterable[T]:
        """Wrap a long loop in a progress bar (tqdm on stderr; silent when not a terminal or quiet)."""
        from tqdm.auto import tqdm

        return tqdm(iterable, total=total, desc=desc, leave=False, disable=self.quiet or None,
                    file=sys.stderr, dynamic_ncols=True)

    def log(self, message: str) -> None:
        if not self.quiet:
            print(message, file=sys.stderr, flush=True)


def _to_numpy(value: Any) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    return np.asarray(value)
