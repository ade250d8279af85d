"""Execute an experiment or a reproduction into a run folder with a result.json.

The lifecycle loses nothing: the output root is checked before any work; metrics of any numeric type are
validated and serialised (NaN/Inf recorded as null and the run marked failed); result.json, latest.json and the
figures are written atomically; Ctrl-C writes ``status: "interrupted"`` with the metrics recorded so far
(``ctx.record``) and then raises :class:`RunInterrupted`; ``rerun`` repeats a run from its result.json.
"""

from __future__ import annotations

import dataclasses
import json
import time
import traceback
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from sciml.core import resolve_device
from sciml.runner.context import RunContext
from sciml.runner.experiment import EXPERIMENTS
from sciml.runner.io import check_writable, git_commit, new_run_dir, normalise_metrics, package_versions, write_result
from sciml.runner.reproduction import REPRODUCTIONS, SCALES, compare, comparison_markdown


@dataclasses.dataclass(frozen=True)
class RunOutcome:
    name: str
    status: str               # "ok" | "off" (a reproduction with an off row) | "failed" | "interrupted"
    run_dir: Path
    metrics: dict[str, Any]
    message: str = ""
    table: list[dict] | None = None


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C during a run, raised after its result.json (status "interrupted") was written."""

    def __init__(self, run_dir: Path) -> None:
        super().__init__(f"interrupted; partial result in {run_dir / 'result.json'}")
        self.run_dir = run_dir


# Optional dependencies -> the extra that installs them, for a one-line hint when one is missing.
_EXTRAS = {"qiskit": "quantum", "qiskit_aer": "quantum", "qiskit_optimization": "quantum", "diffusers": "test"}


def _failure_message(err: BaseException) -> str:
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


def _finish_metrics(metrics: dict[str, Any], status: str, message: str) -> tuple[dict[str, Any], str, str]:
    try:
        clean, bad = normalise_metrics(metrics)
    except TypeError as err:
        return {}, "failed", f"TypeError: {err}"
    if bad and status == "ok":
        status, message = "failed", f"non-finite metrics (recorded as null): {', '.join(bad)}"
    return clean, status, message


def _execute(call, ctx: RunContext) -> tuple[Any, str, str]:
    """Run ``call()``; return (value, status, message). Ctrl-C is re-raised by the caller after writing."""
    try:
        return call(), "ok", ""
    except KeyboardInterrupt:
        return None, "interrupted", "interrupted by the user (Ctrl-C); metrics recorded so far are kept"
    except Exception as err:  # noqa: BLE001 - any failure is recorded, then reported by the CLI
        (ctx.out_dir / "traceback.txt").write_text(traceback.format_exc())
        return None, "failed", _failure_message(err)


def run_experiment(name: str, *, overrides: Sequence[str] | dict[str, Any] = (), seed: int = 0,
                   device: str = "auto", smoke: bool = False, out: str | Path = "results",
                   quiet: bool = False) -> RunOutcome:
    """Run a registered experiment; a failure inside it is recorded (status says it), never raised.

    ``overrides`` are ``key=value`` strings or a dict (e.g. a recorded config, for ``rerun``).
    """
    exp = EXPERIMENTS.get(name)
    cfg = exp.config().override(overrides if isinstance(overrides, dict) else list(overrides))
    if smoke:
        cfg = cfg.override({"smoke": True})
    dev = resolve_device(device)
    check_writable(Path(out))
    run_dir = new_run_dir(Path(out), name, seed)
    ctx = RunContext(run_dir, seed=seed, device=dev, scale="smoke" if cfg.smoke else "default", quiet=quiet)
    payload = _base_payload(name, "experiment", seed, dev, ctx.scale) | {"config": cfg.to_dict()}
    _seed_everything(seed)
    start = time.perf_counter()
    value, status, message = _execute(lambda: exp.run(cfg, ctx), ctx)
    metrics = dict(value or {}) if status == "ok" else dict(ctx.metrics)
    metrics, status, message = _finish_metrics(metrics, status, message)
    payload |= {"metrics": metrics, "status": status, "message": message,
                "wall_time_s": time.perf_counter() - start, "figures": ctx.figures, "artifacts": ctx.artifacts}
    write_result(run_dir, payload)
    if status == "interrupted":
        raise RunInterrupted(run_dir)
    return RunOutcome(name, status, run_dir, metrics, message)


def resolve_reproduction_config(key: str, scale: str = "default",
                                overrides: Sequence[str] | dict[str, Any] = ()):
    """The reproduction's config: its ``preset(scale)`` with ``overrides`` applied (validated)."""
    repro = REPRODUCTIONS.get(key)
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {SCALES}, got {scale!r}")
    cfg = repro.config.preset(scale)
    if overrides:
        if not repro.takes_config:
            raise ValueError(f"reproduction {key!r} has no configurable fields besides its scale")
        cfg = cfg.override(overrides if isinstance(overrides, dict) else list(overrides))
    if cfg.scale != scale:
        raise ValueError(f"set the scale with --smoke/--full, not --set scale=... (got {cfg.scale!r})")
    return cfg


def run_reproduction(key: str, *, scale: str = "default", seed: int = 0, device: str = "auto",
                     out: str | Path = "results", quiet: bool = False,
                     overrides: Sequence[str] | dict[str, Any] = ()) -> RunOutcome:
    """Run one registered reproduction and write result.json (with the resolved config) and comparison.md."""
    repro = REPRODUCTIONS.get(key)
    cfg = resolve_reproduction_config(key, scale, overrides)
    dev = resolve_device(device)
    check_writable(Path(out))
    run_dir = new_run_dir(Path(out) / "reproductions", key, seed)
    ctx = RunContext(run_dir, seed=seed, device=dev, scale=scale, quiet=quiet)
    payload = _base_payload(key, "reproduction", seed, dev, scale) | {"config": cfg.to_dict()}
    payload["paper"] = dataclasses.asdict(repro.paper)
    _seed_everything(seed)
    start = time.perf_counter()
    call = (lambda: repro.run(cfg, ctx)) if repro.takes_config else (lambda: repro.run(ctx))
    value, status, message = _execute(call, ctx)
    measured = dict(value or {}) if status == "ok" else dict(ctx.metrics)
    try:
        table = compare(repro.rows, measured, scale)
    except (TypeError, ValueError) as err:
        table, status, message = compare(repro.rows, {}, scale), "failed", f"{type(err).__name__}: {err}"
    if status == "ok" and any(r["verdict"] == "off" for r in table):
        status = "off"
    (run_dir / "comparison.md").write_text(comparison_markdown(repro.paper, table, scale))
    payload |= {"rows": table, "status": status, "message": message,
                "wall_time_s": time.perf_counter() - start, "figures": ctx.figures, "artifacts": ctx.artifacts}
    write_result(run_dir, payload)
    if status == "interrupted":
        raise RunInterrupted(run_dir)
    metrics = {r["key"]: r["measured"] for r in table}
    return RunOutcome(key, status, run_dir, metrics, message, table)


def rerun(result_json: str | Path, *, out: str | Path | None = None, device: str | None = None,
          quiet: bool = False) -> RunOutcome:
    """Repeat a run exactly from its result.json: same name, seed, scale and resolved config."""
    path = Path(result_json)
    if path.is_dir():
        path = path / "result.json"
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ValueError(f"no result.json at {str(path)!r}") from None
    except json.JSONDecodeError as err:
        raise ValueError(f"{str(path)!r} is not valid JSON ({err})") from None
    missing = [k for k in ("name", "kind", "seed", "config") if k not in data]
    if missing:
        raise ValueError(f"{str(path)!r} is not a sciml result.json (missing {', '.join(missing)})")
    out = out if out is not None else "results"
    device = device or data.get("device", "auto")
    if data["kind"] == "experiment":
        return run_experiment(data["name"], overrides=dict(data["config"]), seed=data["seed"], device=device,
                              out=out, quiet=quiet)
    if data["kind"] == "reproduction":
        config = {k: v for k, v in data["config"].items() if k != "scale"}
        repro = REPRODUCTIONS.get(data["name"])
        return run_reproduction(data["name"], scale=data.get("scale", "default"), seed=data["seed"],
                                device=device, out=out, quiet=quiet, overrides=config if repro.takes_config else {})
    raise ValueError(f"unknown run kind {data['kind']!r} in {str(path)!r}")
