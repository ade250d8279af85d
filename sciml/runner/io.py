"""Run folders, environment capture and result.json writing."""

from __future__ import annotations

import datetime as _dt
import importlib.metadata
import json
import math
import platform
import shutil
import subprocess
from pathlib import Path
from typing import Any

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


def new_run_dir(root: Path, name: str, seed: int) -> Path:
    """``root/<name>/<YYYYmmdd-HHMMSS>-s<seed>`` (a numeric suffix keeps same-second runs apart)."""
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    base = Path(root) / name / f"{stamp}-s{seed}"
    candidate, i = base, 1
    while candidate.exists():
        candidate = base.with_name(f"{base.name}-{i}")
        i += 1
    candidate.mkdir(parents=True)
    return candidate


def status_of(metrics: dict[str, Any]) -> str:
    """'nonfinite' if any scalar metric is NaN/Inf, else 'ok'."""
    for value in metrics.values():
        if isinstance(value, float) and not math.isfinite(value):
            return "nonfinite"
    return "ok"


def write_result(run_dir: Path, payload: dict[str, Any]) -> Path:
    """Write ``result.json`` and copy it to ``<name folder>/latest.json``."""
    target = run_dir / "result.json"
    target.write_text(json.dumps(to_jsonable(payload), indent=2, allow_nan=False, default=str))
    shutil.copyfile(target, run_dir.parent / "latest.json")
    return target
