"""The runner and CLI: run folders, result.json, verdicts, and clear errors."""

from __future__ import annotations

import dataclasses
import json

import pytest

from sciml.cli import main
from sciml.runner import (EXPERIMENTS, REPRODUCTIONS, ExperimentConfig, Measured, Paper, Row, experiment,
                          reproduction, run_experiment, run_reproduction)
from sciml.runner.reproduction import compare


@dataclasses.dataclass(frozen=True)
class _ToyConfig(ExperimentConfig):
    value: float = 2.0
    fail: bool = False


if "test/toy" not in EXPERIMENTS:
    @experiment("test/toy", config=_ToyConfig, summary="toy experiment for the runner tests")
    def _toy(cfg, ctx):
        if cfg.fail:
            raise RuntimeError("asked to fail")
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots()
        ax.plot([0, 1], [0, cfg.value])
        ctx.save_figure("line", fig)
        return {"value": cfg.value, "smoke": float(cfg.smoke), "nan": float("nan") if cfg.value < 0 else 0.0}

    _ROWS = (Row("a", "Table 1", "paper", "acc", 0.9, "paper", expect=(0.8, 1.0), same_setting=True),
             Row("b", "Table 1", "big", "acc", 0.9, "scaled down 10x", expect=(0.5, 1.0)),
             Row("c", "Table 2", "big", "acc", 0.9, "scaled down", expect=(0.95, 1.0)),
             Row("d", "Table 3", "real data", "rmse", 0.1, "data not available offline"))

    @reproduction(Paper("test_toy_paper", "A toy paper", arxiv="0000.00000"), rows=_ROWS)
    def _toy_repro(ctx):
        return {"a": Measured(0.85), "b": Measured(0.6, "scaled"), "c": Measured(0.5)}


def test_run_writes_result_json(tmp_path):
    outcome = run_experiment("test/toy", overrides=["value=3.5"], seed=7, device="cpu", smoke=True,
                             out=tmp_path, quiet=True)
    data = json.loads((outcome.run_dir / "result.json").read_text())
    assert data["status"] == "ok" and data["metrics"]["value"] == 3.5 and data["metrics"]["smoke"] == 1.0
    assert data["config"] == {"smoke": True, "value": 3.5, "fail": False} and data["seed"] == 7
    assert data["versions"]["torch"] and data["device"] == "cpu" and data["wall_time_s"] >= 0
    assert (outcome.run_dir / "line.png").stat().st_size > 0 and data["figures"] == ["line.png"]
    assert json.loads((outcome.run_dir.parent / "latest.json").read_text())["seed"] == 7


def test_failures_and_nonfinite_are_recorded(tmp_path):
    failed = run_experiment("test/toy", overrides=["fail=true"], device="cpu", out=tmp_path, quiet=True)
    assert failed.status == "failed" and "asked to fail" in failed.message
    assert json.loads((failed.run_dir / "result.json").read_text())["status"] == "failed"
    nonfinite = run_experiment("test/toy", overrides=["value=-1"], device="cpu", out=tmp_path, quiet=True)
    assert nonfinite.status == "nonfinite"


def test_verdicts():
    table = {r["key"]: r["verdict"] for r in compare(REPRODUCTIONS.get("test_toy_paper").rows,
                                                     {"a": Measured(0.85), "b": Measured(0.6), "c": Measured(0.5)})}
    assert table == {"a": "match", "b": "in-band", "c": "off", "d": "paper-only"}
    with pytest.raises(ValueError, match="unknown rows"):
        compare(REPRODUCTIONS.get("test_toy_paper").rows, {"zzz": Measured(1.0)})


def test_reproduction_writes_comparison(tmp_path):
    outcome = run_reproduction("test_toy_paper", scale="smoke", device="cpu", out=tmp_path, quiet=True)
    text = (outcome.run_dir / "comparison.md").read_text()
    assert "| a |" in text and "match" in text and "paper-only" in text and outcome.status == "off"


def test_cli_list_run_and_errors(tmp_path, capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "linalg/kronecker-scaling" in out and "test/toy" in out
    assert main(["run", "test/toy", "--smoke", "--device", "cpu", "--out", str(tmp_path), "--quiet"]) == 0
    assert main(["run", "test/tyo", "--out", str(tmp_path)]) == 2
    assert "did you mean 'test/toy'" in capsys.readouterr().err
    assert main(["run", "test/toy", "--set", "valu=1", "--out", str(tmp_path)]) == 2
    assert "valid keys" in capsys.readouterr().err
    assert main(["run", "test/toy", "--set", "fail=true", "--device", "cpu", "--out", str(tmp_path), "--quiet"]) == 1
    assert "asked to fail" in capsys.readouterr().err
    assert main(["reproduce", "no_such_paper", "--out", str(tmp_path)]) == 2


def test_kronecker_scaling_experiment_smoke(tmp_path):
    outcome = run_experiment("linalg/kronecker-scaling", smoke=True, device="cpu", out=tmp_path, quiet=True)
    assert outcome.status == "ok", outcome.message
    assert outcome.metrics["max_solution_rel_diff"] < 1e-9      # Kronecker vs dense Cholesky answers agree
    assert outcome.metrics["max_logdet_rel_diff"] < 1e-10
    assert (outcome.run_dir / "kronecker_scaling.png").exists()


def test_missing_optional_dependency_names_the_extra():
    from sciml.runner.run import _failure_message

    err = ModuleNotFoundError("No module named 'qiskit'", name="qiskit")
    assert "pip install 'sciml[quantum]'" in _failure_message(err)
    assert "pip install" not in _failure_message(ValueError("bad"))
