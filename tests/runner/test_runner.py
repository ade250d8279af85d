"""The runner and CLI: run folders, result.json, verdicts, and clear errors."""

from __future__ import annotations

import dataclasses
import json

import pytest

from sciml.cli import main
import numpy as np
import torch

from sciml.runner import (EXPERIMENTS, REPRODUCTIONS, ExperimentConfig, Measured, Paper, ReproductionConfig, Row,
                          RunInterrupted, experiment, rerun, reproduction, run_experiment, run_reproduction)
from sciml.runner.reproduction import compare


@dataclasses.dataclass(frozen=True)
class _ToyConfig(ExperimentConfig):
    value: float = 2.0
    fail: bool = False
    kind: str = "float"        # "float" | "numpy" | "torch": the type the metric is returned as
    interrupt: bool = False


@dataclasses.dataclass(frozen=True)
class _ToyReproConfig(ReproductionConfig):
    seeds: int = 5
    sizes: tuple[int, int] = (8, 16)

    @classmethod
    def preset(cls, scale):
        return cls(scale=scale, seeds=1) if scale == "smoke" else cls(scale=scale)


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
        nan = float("nan") if cfg.value < 0 else 0.0
        nan = {"float": nan, "numpy": np.float32(nan), "torch": torch.tensor(nan)}[cfg.kind]
        ctx.record(value=cfg.value)
        if cfg.interrupt:
            raise KeyboardInterrupt
        return {"value": cfg.value, "smoke": float(cfg.smoke), "nan": nan}

    _ROWS = (Row("a", "Table 1", "paper", "acc", 0.9, "paper", expect=(0.8, 1.0), same_setting=True),
             Row("b", "Table 1", "big", "acc", 0.9, "scaled down 10x", expect=(0.5, 1.0)),
             Row("c", "Table 2", "big", "acc", 0.9, "scaled down", expect=(0.95, 1.0)),
             Row("d", "Table 3", "real data", "rmse", 0.1, "data not available offline"),
             Row("e", "text", "-", "sum of sizes", None, "-"))

    @reproduction(Paper("test_toy_paper", "A toy paper", arxiv="0000.00000"), rows=_ROWS, config=_ToyReproConfig)
    def _toy_repro(cfg, ctx):
        # "a" is only at the paper's setting with the paper's 5 seeds
        return {"a": Measured(0.85 + 0.01 * cfg.seeds, paper_setting=cfg.seeds >= 5), "b": Measured(0.6, "scaled"),
                "c": Measured(np.float64(0.5)), "e": Measured(torch.tensor(float(sum(cfg.sizes))))}


def test_run_writes_result_json(tmp_path):
    outcome = run_experiment("test/toy", overrides=["value=3.5"], seed=7, device="cpu", smoke=True,
                             out=tmp_path, quiet=True)
    data = json.loads((outcome.run_dir / "result.json").read_text())
    assert data["status"] == "ok" and data["metrics"]["value"] == 3.5 and data["metrics"]["smoke"] == 1.0
    assert data["config"] == {"smoke": True, "value": 3.5, "fail": False, "kind": "float", "interrupt": False}
    assert data["seed"] == 7
    assert data["versions"]["torch"] and data["device"] == "cpu" and data["wall_time_s"] >= 0
    assert (outcome.run_dir / "line.png").stat().st_size > 0 and data["figures"] == ["line.png"]
    assert json.loads((outcome.run_dir.parent / "latest.json").read_text())["seed"] == 7


def test_failures_and_nonfinite_are_recorded(tmp_path):
    failed = run_experiment("test/toy", overrides=["fail=true"], device="cpu", out=tmp_path, quiet=True)
    assert failed.status == "failed" and "asked to fail" in failed.message
    assert json.loads((failed.run_dir / "result.json").read_text())["status"] == "failed"


@pytest.mark.parametrize("kind", ["float", "numpy", "torch"])
def test_nonfinite_metric_of_any_type_is_null_and_failed(tmp_path, kind):
    outcome = run_experiment("test/toy", overrides=["value=-1", f"kind={kind}"], device="cpu", out=tmp_path,
                             quiet=True)
    data = json.loads((outcome.run_dir / "result.json").read_text())
    assert outcome.status == "failed" and data["status"] == "failed" and "nan" in data["message"]
    assert data["metrics"]["nan"] is None and data["metrics"]["value"] == -1.0


def test_numpy_and_torch_metrics_are_plain_numbers(tmp_path):
    outcome = run_experiment("test/toy", overrides=["kind=torch"], device="cpu", out=tmp_path, quiet=True)
    data = json.loads((outcome.run_dir / "result.json").read_text())
    assert outcome.status == "ok" and data["metrics"]["nan"] == 0.0 and isinstance(outcome.metrics["nan"], float)


def test_ctrl_c_writes_interrupted_with_partial_metrics(tmp_path):
    with pytest.raises(RunInterrupted) as info:
        run_experiment("test/toy", overrides=["interrupt=true", "value=4"], device="cpu", out=tmp_path, quiet=True)
    data = json.loads((info.value.run_dir / "result.json").read_text())
    assert data["status"] == "interrupted" and data["metrics"] == {"value": 4.0}
    assert main(["run", "test/toy", "--set", "interrupt=true", "--device", "cpu", "--out", str(tmp_path),
                 "--quiet"]) == 130


def test_no_temporary_files_left_behind(tmp_path):
    outcome = run_experiment("test/toy", device="cpu", out=tmp_path, quiet=True)
    assert sorted(p.name for p in outcome.run_dir.iterdir()) == ["line.png", "result.json"]


def test_unwritable_output_folder_is_a_one_line_error(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert main(["run", "test/toy", "--out", str(blocker / "sub"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "not writable" in err and "Traceback" not in err and err.count("\n") == 1


def test_verdicts_know_the_scale():
    rows = REPRODUCTIONS.get("test_toy_paper").rows
    measured = {"a": Measured(0.85), "b": Measured(0.6), "c": Measured(0.5), "e": Measured(3.0)}
    table = {r["key"]: r["verdict"] for r in compare(rows, measured)}
    assert table == {"a": "match", "b": "in-band", "c": "off", "d": "paper-only", "e": "reported"}
    smoke = {r["key"]: r["verdict"] for r in compare(rows, measured, scale="smoke")}
    assert smoke == {"a": "smoke", "b": "smoke", "c": "off", "d": "paper-only", "e": "reported"}
    scaled = compare(rows, {"a": Measured(0.85, paper_setting=False)})
    assert scaled[0]["verdict"] == "in-band"
    with pytest.raises(ValueError, match="unknown rows"):
        compare(rows, {"zzz": Measured(1.0)})


def test_reproduction_is_a_configured_run(tmp_path):
    smoke = run_reproduction("test_toy_paper", scale="smoke", device="cpu", out=tmp_path, quiet=True)
    text = (smoke.run_dir / "comparison.md").read_text()
    assert "| a |" in text and "match" not in text and "paper-only" in text and smoke.status == "off"
    data = json.loads((smoke.run_dir / "result.json").read_text())
    assert data["config"] == {"scale": "smoke", "seeds": 1, "sizes": [8, 16]}
    full = run_reproduction("test_toy_paper", device="cpu", out=tmp_path, quiet=True, overrides=["sizes=1,2"])
    verdicts = {r["key"]: (r["verdict"], r["measured"]) for r in full.table}
    assert verdicts["a"] == ("match", pytest.approx(0.9)) and verdicts["e"] == ("reported", 3.0)
    fewer = run_reproduction("test_toy_paper", device="cpu", out=tmp_path, quiet=True, overrides=["seeds=2"])
    assert {r["key"]: r["verdict"] for r in fewer.table}["a"] == "in-band"   # fewer seeds than the paper
    with pytest.raises(ValueError, match="exactly 2"):
        run_reproduction("test_toy_paper", device="cpu", out=tmp_path, quiet=True, overrides=["sizes=1,2,3"])


def test_rerun_repeats_the_recorded_config(tmp_path):
    first = run_reproduction("test_toy_paper", device="cpu", out=tmp_path, quiet=True,
                             overrides=["seeds=3", "sizes=4,5"])
    again = rerun(first.run_dir / "result.json", out=tmp_path, quiet=True)
    assert again.table == first.table and again.run_dir != first.run_dir
    exp = run_experiment("test/toy", overrides=["value=2.5"], seed=3, device="cpu", out=tmp_path, quiet=True)
    exp_again = rerun(exp.run_dir, out=tmp_path, quiet=True)
    assert exp_again.metrics == exp.metrics
    assert json.loads((exp_again.run_dir / "result.json").read_text())["seed"] == 3
    with pytest.raises(ValueError, match="no result.json"):
        rerun(tmp_path / "nowhere.json")


def test_summary_counts_every_verdict(tmp_path, capsys):
    assert main(["reproduce", "test_toy_paper", "--out", str(tmp_path), "--quiet", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    header = next(line for line in out.splitlines() if line.startswith("| paper | status"))
    assert "reported" in header and "smoke" in header
    assert main(["reproduce", "all", "--set", "seeds=1", "--out", str(tmp_path)]) == 2
    assert main(["show", "test_toy_paper", "--smoke"]) == 0
    assert "sizes" in capsys.readouterr().out


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
    assert main(["run", "test/toy", "--set", "value=abc", "--out", str(tmp_path)]) == 2
    assert "must be a float" in capsys.readouterr().err
    assert main(["show", "test/toy"]) == 0 and "value" in capsys.readouterr().out


def test_broken_experiment_file_is_isolated(tmp_path, monkeypatch, capsys):
    import importlib

    discovery = importlib.import_module("sciml.runner.discover")   # the module, not the function of that name

    package = tmp_path / "user_experiments"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "good.py").write_text("VALUE = 1\n")
    (package / "bad.py").write_text("def broken(:\n")                 # a syntax error in a user's file
    (package / "worse.py").write_text("import no_such_module_xyz\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    broken = discovery.import_package("user_experiments")
    assert sorted(broken) == ["user_experiments.bad", "user_experiments.worse"]
    assert "SyntaxError" in broken["user_experiments.bad"] and "no_such_module_xyz" in broken["user_experiments.worse"]
    monkeypatch.setitem(discovery.BROKEN, "experiments.bad", broken["user_experiments.bad"])
    assert main(["list"]) == 0                                          # every other command still works
    out = capsys.readouterr().out
    assert "Broken modules" in out and "experiments.bad" in out and "linalg/kronecker-scaling" in out
    assert main(["run", "no/such", "--out", str(tmp_path)]) == 2
    assert "failed to import: experiments.bad" in capsys.readouterr().err


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


# Every CLI verb with bad input: (argv, exit code, words the one-line error must contain).
_BAD_CLI = [
    (["run", "test/toy", "--device", "cudax"], 2, "cuda[:N]"),
    (["run", "test/toy", "--seed", "-1"], 2, "non-negative integer"),
    (["run", "test/toy", "--set", "smoke"], 2, "key=value"),
    (["run", "test/toy", "--set", "value=nan"], 2, "finite float"),
    (["run", "test/toy", "--set", "value=abc"], 2, "must be a float"),
    (["run", "test/toy", "--set", "valu=1"], 2, "valid keys"),
    (["run", "test/toy", "--set", "smoke=maybe"], 2, "bool"),
    (["run", "test/tyo"], 2, "did you mean"),
    (["list", "--tag", "nosuch"], 2, "tags in use"),
    (["show", "nosuch"], 2, "sciml list"),
    (["reproduce", "no_such_paper"], 2, "valid names"),
    (["reproduce", "all", "--set", "seeds=1"], 2, "name it"),
    (["reproduce", "test_toy_paper", "--set", "seeds=x"], 2, "must be an int"),
    (["reproduce", "test_toy_paper", "--set", "sizes=1,2,3"], 2, "exactly 2"),
    (["reproduce", "test_toy_paper", "--set", "scale=full"], 2, "--smoke/--full"),
    (["rerun", "/nonexistent/result.json"], 2, "no result.json"),
]


@pytest.mark.parametrize("argv,code,words", _BAD_CLI, ids=[" ".join(a) for a, _, _ in _BAD_CLI])
def test_cli_bad_input_is_a_clear_one_line_error(argv, code, words, tmp_path, capsys):
    try:
        rc = main(argv + (["--out", str(tmp_path)] if argv[0] in ("run", "reproduce") else []))
    except SystemExit as exit_:                     # argparse's own type errors exit 2 with a usage line
        rc = exit_.code
    err = capsys.readouterr().err
    assert rc == code and words in err and "Traceback" not in err


def test_rerun_rejects_a_file_that_is_not_a_result(tmp_path, capsys):
    bad = tmp_path / "result.json"
    bad.write_text("{not json")
    assert main(["rerun", str(bad)]) == 2 and "not valid JSON" in capsys.readouterr().err
    bad.write_text('{"name": "x"}')
    assert main(["rerun", str(bad)]) == 2 and "not a sciml result.json" in capsys.readouterr().err
