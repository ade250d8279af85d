"""Paper-style joint-Adam runs (minutes on a CPU): the issue's accuracy bars. Run with ``pytest -m slow``."""

from __future__ import annotations

import math

import pytest
import torch

from sciml.core import ConvergenceWarning, Status
from sciml.gp_pde import allen_cahn, manufactured, poisson, solve

TRUE_MU = 100 / (2 * math.pi)
# Spec A.5.2 setting: [0, 1], 100 grid points, Q = 30, F = 20, lambda_b = 200, Adam lr 1e-2, 30k steps. The
# constant-lr run oscillates late (we measured 1.1e-6 at 25.5k and 3.7e-4 at 30k steps), so the final iterate
# is taken after an opt-in exponential lr decay to 1e-4 over the last 40% of the steps.
ADAM = {"mode": "adam", "steps": 30_000, "lr_final": 1e-4, "decay_start": 0.6, "eval_every": 1500}


def _budget_run(*args, **kwargs):
    """The paper's Adam has no convergence test: a spent budget warns and reports MAX_ITER."""
    with pytest.warns(ConvergenceWarning, match="budget"):
        return solve(*args, **kwargs)


def _sin100(pde):
    return manufactured(pde, lambda x: torch.sin(100 * x[:, 0]), [(0.0, 1.0)])


@pytest.fixture(scope="module")
def poisson_adam():
    return _budget_run(_sin100(poisson(1)), 100, **ADAM)


@pytest.mark.slow
def test_poisson_sin100_adam_final_and_best(poisson_adam):
    r = poisson_adam
    assert r.status is Status.MAX_ITER          # the paper's protocol: budget, no convergence test
    assert r.rel_l2 <= 1e-4 and r.best_rel_l2 <= 1e-5


@pytest.mark.slow
def test_poisson_sin100_adam_prunes_the_spectrum(poisson_adam):
    s = poisson_adam.spectra[0]
    top = int(s.weights.argmax())
    assert abs(float(s.frequencies[top]) - TRUE_MU) < 0.01
    near = (s.frequencies - TRUE_MU).abs() < 0.01
    assert s.weights[near].sum() > 0.9 * s.weights.sum()
    assert int((s.weights < 1e-2 * s.weights.max()).sum()) >= 20      # most of the 30 components pruned


@pytest.mark.slow
def test_allen_cahn_sin100_adam_final():
    r = _budget_run(_sin100(allen_cahn(1)), 100, **ADAM)
    assert r.status is Status.MAX_ITER and r.rel_l2 <= 1e-4


@pytest.mark.slow
def test_poisson_2d_32x32_adam():
    # Issue bar: relL2 <= 1e-3 on a 32 x 32 grid for u = sin(20x) sin(20y) (spec A.5.4 reached 1.1e-2 after
    # 4000 constant-lr steps, still falling); 16k steps with an lr decay to 1e-3 over the last quarter.
    prob = manufactured(poisson(2), lambda x: torch.sin(20 * x[:, 0]) * torch.sin(20 * x[:, 1]), [(0, 1), (0, 1)])
    r = _budget_run(prob, 32, mode="adam", steps=16_000, lr_final=1e-3, decay_start=0.75, test_points=100)
    assert r.status is Status.MAX_ITER and r.rel_l2 <= 1e-3


@pytest.mark.slow
def test_poisson_sin100_adam_stm_kernel():
    # GP-HM-StM (Matern-5/2 x cosine) under the same protocol; we measured final 5.9e-7 (spec: calibrate on first run)
    r = _budget_run(_sin100(poisson(1)), 100, kernel="stm", **ADAM)
    assert r.status is Status.MAX_ITER and r.rel_l2 <= 1e-4
