"""Every registered experiment and paper reproduction runs at smoke scale (slow: `pytest -m slow`)."""

from __future__ import annotations

import pytest

from sciml.runner import EXPERIMENTS, REPRODUCTIONS, discover, run_experiment, run_reproduction

discover()


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n in EXPERIMENTS.names() if not n.startswith("test/")])
def test_experiment_smoke(name, tmp_path):
    outcome = run_experiment(name, smoke=True, device="cpu", out=tmp_path, quiet=True)
    assert outcome.status == "ok", outcome.message


@pytest.mark.slow
@pytest.mark.parametrize("key", [k for k in REPRODUCTIONS.names() if not k.startswith("test_")])
def test_reproduction_smoke(key, tmp_path):
    outcome = run_reproduction(key, scale="smoke", device="cpu", out=tmp_path, quiet=True)
    assert outcome.status != "failed", outcome.message
