"""Manufactured sources against hand-derived ones, presets, and clear errors for bad inputs."""

from __future__ import annotations

import math

import pytest
import torch

from sciml.core import ConvergenceWarning, NumericalWarning
from sciml.gp_pde import PDE, advection, allen_cahn, manufactured, poisson, presets, solve


def test_manufactured_sources_equal_hand_derivatives(gen):
    x = torch.rand(50, 2, dtype=torch.float64, generator=gen)
    p = manufactured(poisson(1), lambda z: torch.sin(100 * z[:, 0]), [(0, 1)])
    torch.testing.assert_close(p.source(x[:, :1]), -1e4 * torch.sin(100 * x[:, 0]), rtol=1e-12, atol=1e-9)
    u = torch.sin(20 * x[:, 0]) * torch.sin(20 * x[:, 1])
    p2 = manufactured(allen_cahn(2), lambda z: torch.sin(20 * z[:, 0]) * torch.sin(20 * z[:, 1]), [(0, 1), (0, 1)])
    torch.testing.assert_close(p2.source(x), -800 * u + u * (u**2 - 1), rtol=1e-12, atol=1e-9)
    adv = manufactured(advection(200.0), lambda z: torch.sin(z[:, 0] - 200 * z[:, 1]), [(0, 1), (0, 1)])
    torch.testing.assert_close(adv.source(x), torch.zeros(50, dtype=torch.float64), rtol=0, atol=1e-10)
    mixed = manufactured(PDE(2, lambda u, d: d("xy") + d("x")), lambda z: z[:, 0] ** 2 * z[:, 1] ** 3,
                         [(0, 1), (0, 1)])
    torch.testing.assert_close(mixed.source(x), 6 * x[:, 0] * x[:, 1] ** 2 + 2 * x[:, 0] * x[:, 1] ** 3,
                               rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(p2.boundary(x), u, rtol=1e-12, atol=0)


def test_presets_match_the_spec_table():
    table = presets()
    assert sorted(table) == ["A1", "A2", "P1", "P2", "P3", "P4", "P5", "Q1", "Q2", "Q3", "Q4"]
    assert table["P1"].grid == (400,) and table["P1"].problem.domain == ((0.0, 2 * math.pi),)
    assert table["Q4"].lambda_b == 500 and table["P5"].freq_scale == 100 and table["P2"].extra_gp == 0.5
    # the settings of the authors' logged runs (spec A.3 / issue 12), not the repo's config files
    assert [table[k].freq_scale for k in ("P1", "P3", "Q2", "A1", "Q1")] == [30.0, 30.0, 30.0, 20.0, 20.0]
    assert table["P5"].extra_gp == 0.1 and table["Q3"].steps == 3_000_000 and table["Q4"].steps == 1_000_000
    x = torch.tensor([[0.3]], dtype=torch.float64)
    # P4: u = x sin(200 x) -> u'' = 400 cos(200 x) - 40000 x sin(200 x)
    expected = 400 * math.cos(60.0) - 40000 * 0.3 * math.sin(60.0)
    assert abs(float(table["P4"].problem.source(x)) - expected) < 1e-8 * abs(expected)


def test_bad_inputs_get_clear_errors():
    sol = lambda z: torch.sin(z[:, 0])
    with pytest.raises(ValueError, match="box domain"):
        manufactured(poisson(1), sol, [(1.0, 0.0)])
    with pytest.raises(ValueError, match="box domain"):
        manufactured(poisson(2), lambda z: z[:, 0], "disk")
    with pytest.raises(ValueError, match="NaN"):
        manufactured(poisson(1), lambda z: torch.log(z[:, 0] - 5.0), [(0, 1)])
    with pytest.raises(ValueError, match="shape"):
        manufactured(poisson(2), lambda z: z, [(0, 1), (0, 1)])
    with pytest.raises(ValueError, match="variables"):
        manufactured(PDE(1, lambda u, d: d("yy")), sol, [(0, 1)])
    with pytest.raises(ValueError, match="second order"):
        manufactured(PDE(1, lambda u, d: d("xxx")), sol, [(0, 1)])
    prob = manufactured(poisson(1), sol, [(0, 1)])
    with pytest.raises(ValueError, match="at least 3"):
        solve(prob, 0, steps=1)
    with pytest.raises(ValueError, match="grid"):
        solve(prob, (10, 10), steps=1)
    with pytest.raises(ValueError, match="kernel"):
        solve(prob, 10, kernel="rbf", steps=1)
    with pytest.raises(ValueError, match="mode"):
        solve(prob, 10, mode="lbfgs", steps=1)
    with pytest.raises(ValueError, match="alternating"):
        solve(manufactured(poisson(2), lambda z: z[:, 0], [(0, 1), (0, 1)]), 70, mode="alternating", steps=1)
    with pytest.warns(ConvergenceWarning), pytest.warns(NumericalWarning, match="cannot resolve"):
        solve(prob, 20, freq_scale=20.0, steps=1)
