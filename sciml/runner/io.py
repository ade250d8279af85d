"""Run folders, environment capture, metric validation and atomic result.json writing."""

from __future__ import annotations

import datetime as _dt
import importlib.metadata
import json
import math
import numbers
import os
import platform
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sciml.core import to_jsonable

_PACKAGES = ("sciml", "torch", "numpy", "scipy", "tensorly", "gpytorch", "qiskit", "qiskit-aer", "matplotlib")


def package_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def git_commit() -> str | None:
    """The commit of the checkout sciml runs from (None outside git)."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).resolve().parent)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def check_writable(root: Path) -> None:
    """Raise a one-line ``OSError`` when ``root`` cannot be created or written (before any work starts)."""
    root = Path(root)
    try:
        root.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=root, prefix=".write-test-"):
            pass
    except OSError as err:
        raise OSError(f"output folder {str(root)!r} is not writable ({err.strerror or err}); choose another "
                      f"with --out DIR") from None


def new_run_dir(root: Path, name: str, seed: int) -> Path:
    """``root/<name>/<YYYYmmdd-HHMMSS>-s<seed>`` (a numeric suffix keeps same-second runs apart)."""
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    base = Path(root) / name / f"{stamp}-s{seed}"
    candidate, i = base, 1
    while True:
        try:
            candidate.mkdir(parents=True)
            return candidate
        except FileExistsError:
            candidate = base.with_name(f"{base.name}-{i}")
            i += 1


def as_metric_value(value: Any, name: str) -> Any:
    """A metric as a plain JSON value: Python/numpy/torch numbers (0-d tensors too) become float or int,
    NaN/Inf stay float (the caller records them as null), strings pass, small arrays become lists."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu()
        if value.numel() == 1:
            value = value.reshape(()).item()
        else:
            return to_jsonable(value)
    if isinstance(value, np.ndarray):
        if value.size == 1:
            value = value.reshape(()).item()
        else:
            return to_jsonable(value)
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, (list, tuple)):
        return [as_metric_value(v, name) for v in value]
    raise TypeError(f"metric {name!r} has type {type(value).__name__}; metrics must be numbers (Python, numpy or "
                    f"torch scalars), strings or lists of numbers")


def _nonfinite(value: Any) -> bool:
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, list):
        return any(_nonfinite(v) for v in value)
    return False


def normalise_metrics(metrics: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Validated metrics (plain JSON types, non-finite values as None) and the names of the non-finite ones."""
    clean, bad = {}, []
    for key, value in metrics.items():
        value = as_metric_value(value, str(key))
        if _nonfinite(value):
            bad.append(str(key))
            value = None if isinstance(value, float) else [
                None if isinstance(v, float) and not math.isfinite(v) else v for v in value]
        clean[str(key)] = value
    return clean, bad


def atomic_write_text(target: Path, text: str) -> Path:
    """Write ``text`` to ``target`` through a temporary file in the same folder and a rename, so a reader
    (or an interrupted run) never sees a half-written file."""
    target = Path(target)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def write_result(run_dir: Path, payload: dict[str, Any]) -> Path:
    """Write ``result.json`` atomically and update ``<name folder>/latest.json``."""
    text = json.dumps(to_jsonable(payload), indent=2, allow_nan=False, default=str)
    target = atomic_write_text(run_dir / "result.json", text)
    atomic_write_text(run_dir.parent / "latest.json", text)
    return target
