"""Chebyshev-Tucker on a non-box region (issue 13): fit on the bounding box, error measured inside the region."""

from __future__ import annotations

import pytest
import torch

from sciml.core import Status
from sciml.tensor import fit_on_region, region_points

BOX = [(-1.0, 1.0)] * 3


def ball(x: torch.Tensor) -> torch.Tensor:
    return (x**2).sum(-1) <= 1.0


def smooth(x: torch.Tensor) -> torch.Tensor:
    return torch.exp(-(x**2).sum(-1)) * torch.cos(x[..., 0] + 0.5 * x[..., 1])


def test_region_points_lie_inside_and_are_reproducible():
    pts = region_points(ball, BOX, 500)
    assert pts.shape == (500, 3) and bool(ball(pts).all())
    assert torch.equal(pts, region_points(ball, BOX, 500))


def test_ball_fit_warns_and_its_error_inside_is_checked_independently():
    with pytest.warns(UserWarning, match="bounding box"):
        fit = fit_on_region(smooth, ball, BOX, tol=1e-8)
    assert fit.status is Status.CONVERGED
    # Independent truth: fresh random points in the ball (other seed than the fit's check points).
    u = torch.rand(20000, 3, generator=torch.Generator().manual_seed(7), dtype=torch.float64) * 2 - 1
    u = u[ball(u)]
    err = float((fit.evaluate(u) - smooth(u)).abs().max() / smooth(u).abs().max())
    assert err <= 1e-8 and fit.check_error <= 1e-8


def test_kink_inside_the_region_is_not_converged():
    kink = lambda x: (x[..., 0] - 0.1).abs() + x[..., 1]   # |x - 0.1| crosses the ball
    with pytest.warns(UserWarning):
        fit = fit_on_region(kink, ball, BOX, tol=1e-6, max_degree=32, on_failure="ignore")
    assert fit.status is not Status.CONVERGED and fit.check_error > 1e-6


def test_undefined_outside_region_and_bad_region():
    undefined = lambda x: torch.where(ball(x), smooth(x), torch.nan)
    with pytest.raises(ValueError, match="fit_on_region"), pytest.warns(UserWarning):
        fit_on_region(undefined, ball, BOX, tol=1e-6)
    with pytest.raises(TypeError, match="bool"):
        fit_on_region(smooth, lambda x: x.sum(-1), BOX)
    with pytest.raises(ValueError, match="covers"):
        fit_on_region(smooth, lambda x: (x**2).sum(-1) <= 1e-6, BOX)
