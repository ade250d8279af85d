"""Chebyshev tensor train by TT-cross (5-D and 8-D) and the tensorly interop of both Chebyshev formats.

Truth: the function itself at random points of the box (20k points), tensorly's own reconstructions.
"""

from __future__ import annotations

import time

import pytest
import torch

from sciml.core import ConvergenceWarning
from sciml.tensor import ChebyshevTT, ChebyshevTucker


def _rational(x):
    return 1.0 / (1.0 + 0.25 * (x**2).sum(-1))


def _ridge(x):
    w = torch.linspace(0.5, 1.0, x.shape[-1], dtype=x.dtype)
    return torch.exp(-0.5 * (x * w).sum(-1) ** 2) * torch.cos(x.sum(-1))


@pytest.mark.parametrize("d, f", [
    (5, _rational), (8, _rational), (5, _ridge),
    pytest.param(8, _ridge, marks=pytest.mark.slow),     # TT ranks ~32 in 8-D: ~4 s unloaded
], ids=["rational-5", "rational-8", "ridge-5", "ridge-8"])
def test_smooth_functions_to_1e8_without_the_full_grid(d, f, gen):
    box = [(-1.0, 1.0)] * d
    start = time.perf_counter()
    tt = ChebyshevTT.fit(f, box, tol=1e-9)
    elapsed = time.perf_counter() - start
    pts = 2 * torch.rand(20000, d, generator=gen, dtype=torch.float64) - 1
    err = float((tt(pts) - f(pts)).abs().max() / f(pts).abs().max())
    assert tt.status.label == "converged" and err < 1e-8, (tt.ranks, tt.degrees, err)
    full_grid = 1
    for m in tt.degrees:
        full_grid *= m + 1
    # Cross approximation: fewer samples than m^d (the 5-D ridge has TT ranks ~32 and needs ~22% of its 17^4 33
    # grid over the rank-doubling rounds; in 8-D the fraction is below 1e-4).
    assert tt.n_evals < (0.3 if d == 5 else 1e-4) * full_grid
    assert elapsed < 60.0                         # issue: the 8-D fit in under a minute on a CPU


def test_rank_cap_reports_not_converged():
    f = lambda x: torch.sin(10 * x.sum(-1)) / (1.1 + x[:, 0] * x[:, 1] * x[:, 2])
    with pytest.warns(ConvergenceWarning, match="ChebyshevTT"):
        tt = ChebyshevTT.fit(f, [(-1.0, 1.0)] * 5, tol=1e-12, max_rank=3, degree=16)
    assert tt.status.label == "max_iter" and tt.check_error > 1e-12


def test_tensorly_round_trips_are_exact(gen):
    tl = pytest.importorskip("tensorly")
    f = lambda x: torch.exp(-x[:, 0] ** 2) * torch.cos(x[:, 1] + x[:, 2]) + x[:, 0] * x[:, 2]
    box = [(-1.0, 2.0), (0.0, 1.0), (-0.5, 0.5)]
    ct = ChebyshevTucker.fit(f, box, tol=1e-10)
    pts = torch.stack([torch.empty(300, dtype=torch.float64).uniform_(a, b, generator=gen) for a, b in box], 1)
    back = ChebyshevTucker.from_tensorly(ct.to_tensorly(), box)
    assert torch.equal(back.evaluate(pts), ct.evaluate(pts))
    # tensorly's reconstruction of the coefficient tensor equals ours.
    dense = torch.from_numpy(tl.tucker_to_tensor(ct.to_tensorly()))
    torch.testing.assert_close(dense, ct.coefficient_tensor(), rtol=0, atol=1e-14)
    # CP of Chebyshev coefficients (rank 3, planted) -> Tucker, exact against the CP reconstruction.
    weights = torch.tensor([1.0, -0.5, 2.0], dtype=torch.float64)
    factors = [torch.randn(m, 3, generator=gen, dtype=torch.float64) for m in (5, 4, 6)]
    cp = tl.cp_tensor.CPTensor((weights.numpy(), [u.numpy() for u in factors]))
    from_cp = ChebyshevTucker.from_tensorly(cp, box)
    torch.testing.assert_close(from_cp.coefficient_tensor(), torch.from_numpy(tl.cp_to_tensor(cp)), rtol=0,
                               atol=1e-13)
    tt = ChebyshevTT.fit(f, box, tol=1e-9)
    tt_back = ChebyshevTT.from_tensorly(tt.to_tensorly(), box)
    assert torch.equal(tt_back(pts), tt(pts))


def test_bad_inputs():
    with pytest.raises(ValueError, match="max_rank"):
        ChebyshevTT.fit(_rational, [(-1, 1)] * 4, max_rank=0)
    with pytest.raises(ValueError, match="inverted"):
        ChebyshevTT.fit(_rational, [(1, -1)] * 4)
    with pytest.raises(ValueError, match="NaN"):
        ChebyshevTT.fit(lambda x: x.sum(-1) / 0 * 0, [(-1, 1)] * 4)
    tt = ChebyshevTT.fit(_rational, [(-1, 1)] * 4, tol=1e-6)
    with pytest.raises(ValueError, match="outside"):
        tt(torch.full((2, 4), 1.5, dtype=torch.float64))
    with pytest.raises(ValueError, match="Tucker or CP|TuckerTensor"):
        ChebyshevTucker.from_tensorly(torch.zeros(3), [(-1, 1)])
