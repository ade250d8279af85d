"""Execute an experiment or a reproduction into a run folder with a result.json."""

from __future__ import annotations

import dataclasses
import time
import traceback
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from sciml.core import resolve_device
from sciml.runner.context import RunContext
from sciml.runner.experiment import EXPERIMENTS
from sciml.runner.io import git_commit, new_run_dir, package_versions, status_of, write_result
from sciml.runner.reproduction import REPRODUCTIONS, compare, comparison_markdown


@dataclasses.dataclass(frozen=True)
class RunOutcome:
    name: str
    status: str               # "ok" | "nonfinite" | "failed"
    run_dir: Path
    metrics: dict[str, Any]
    message: str = ""
    table: list[dict] | None = None


# Optional dependencies -> the extra that installs them, for a one-line hint when one is missing.
_EXTRAS = {"qiskit": "quantum", "qiskit_aer": "quantum", "qiskit_optimization": "quantum", "diffusers": "test"}


def _failure_message(err: Exception) -> str:
    message = f"{type(err).__name__}: {err}"
    if isinstance(err, ModuleNotFoundError) and err.name:
        extra = _EXTRAS.get(err.name.split(".")[0])
        if extra:
            message += f" (install it with: pip install 'sciml[{extra}]')"
    return message


def _seed_everything(seed: int) -> None:
    # Library code takes explicit generators; this only makes third-party code (e.g. nn.Module init) repeatable.
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)


def _base_payload(name: str, kind: str, seed: int, device: torch.device, scale: str) -> dict[str, Any]:
    return {"name": name, "kind": kind, "seed": seed, "device": str(device), "scale": scale,
            "versions": package_versions(), "git_commit": git_commit(),
            "started_at": time.strftime("%Y-%m-%dT%H:%M:%S")}


def run_experiment(name: str, *, overrides: Sequence[str] = (), seed: int = 0, device: str = "auto",
                   smoke: bool = False, out: str | Path = "results", quiet: bool = False) -> RunOutcome:
    """Run a registered experiment; never raises for a failure inside the experiment (status says it)."""
    exp = EXPERIMENTS.get(name)
    cfg = exp.config().override(list(overrides))
    if smoke:
        cfg = cfg.override({"smoke": True})
    dev = resolve_device(device)
    run_dir = new_run_dir(Path(out), name, seed)
    ctx = RunContext(run_dir, seed=seed, device=dev, scale="smoke" if cfg.smoke else "default", quiet=quiet)
    payload = _base_payload(name, "experiment", seed, dev, ctx.scale) | {"config": cfg.to_dict()}
    _seed_everything(seed)
    start = time.perf_counter()
    try:
        metrics = dict(exp.run(cfg, ctx) or {})
        status, message = status_of(metrics), ""
    except Exception as err:  # noqa: BLE001 - any failure is recorded, then reported by the CLI
        metrics, status, message = {}, "failed", _failure_message(err)
        (run_dir / "traceback.txt").write_text(traceback.format_exc())
    payload |= {"metrics": metrics, "status": status, "message": message,
                "wall_time_s": time.perf_counter() - start, "figures": ctx.figures, "artifacts": ctx.artifacts}
    write_result(run_dir, payload)
    return RunOutcome(name, status, run_dir, metrics, message)


def run_reproduction(key: str, *, scale: str = "default", seed: int = 0, device: str = "auto",
                     out: str | Path = "results", quiet: bool = False) -> RunOutcome:
    """Run one registered reproduction and write result.json and comparison.md."""
    repro = REPRODUCTIONS.get(key)
    dev = resolve_device(device)
    run_dir = new_run_dir(Path(out) / "reproductions", key, seed)
    ctx = RunContext(run_dir, seed=seed, device=dev, scale=scale, quiet=quiet)
    payload = _base_payload(key, "reproduction", seed, dev, scale)
    payload["paper"] = dataclasses.asdict(repro.paper)
    _seed_everything(seed)
    start = time.perf_counter()
    try:
        measured = dict(repro.run(ctx) or {})
        table = compare(repro.rows, measured)
        status = "off" if any(r["verdict"] == "off" for r in table) else "ok"
        message = ""
    except Exception as err:  # noqa: BLE001
        measured, table = {}, compare(repro.rows, {})
        status, message = "failed", _failure_message(err)
        (run_dir / "traceback.txt").write_text(traceback.format_exc())
    (run_dir / "comparison.md").write_text(comparison_markdown(repro.paper, table, scale))
    payload |= {"rows": table, "status": status, "message": message,
                "wall_time_s": time.perf_counter() - start, "figures": ctx.figures, "artifacts": ctx.artifacts}
    write_result(run_dir, payload)
    metrics = {r["key"]: r["measured"] for r in table}
    return RunOutcome(key, status, run_dir, metrics, message, table)
