"""Kernels, sinc Gaussian sums, range separation and multi-particle potentials in Chebyshev-Tucker format.

References: closed-form kernels, brute-force direct sums, dense CP tensors, and the spec's recomputed tables
(authors' sinc data for n = 256; random charges, spec sec. 1.3).
"""

from __future__ import annotations

import math

import pytest
import torch

from sciml.linalg import chebyshev_nodes, tucker_hosvd
from sciml.tensor import (
    ChebyshevTucker,
    direct_sum,
    gaussian_sum_cp,
    lattice_charges,
    newton,
    newton_long,
    newton_short,
    random_charges,
    sinc_gaussian_sum,
    slater,
    yukawa,
)
from sciml.tensor.ct_spline import cell_centres
from sciml.tensor.potentials import cell_averaged_factors

R = torch.logspace(-2, math.log10(1.75), 300, dtype=torch.float64)
X = torch.stack([R, 0 * R, 0 * R], dim=-1)


def _rel_max(a, b):
    return float((a - b).abs().max() / b.abs().max())


def test_sinc_newton_sum_accuracy():
    gs = sinc_gaussian_sum("newton")  # h = 0.262122, k = 0..25: the authors' n = 256 rule
    assert gs.n_terms == 26
    assert float(((gs(X) - newton(X)) / newton(X)).abs().max()) < 1e-6


@pytest.mark.parametrize("kernel, exact", [("yukawa", lambda x: yukawa(x, 2.0)), ("slater", lambda x: slater(x, 2.0))])
def test_sinc_yukawa_slater_converge_exponentially(kernel, exact):
    errs = [float(((sinc_gaussian_sum(kernel, h=h, n_terms=n, param=2.0)(X) - exact(X)) / exact(X)).abs().max())
            for h, n in ((0.3, 32), (0.2, 48), (0.15, 64))]
    assert errs[0] < 1e-4 and errs[1] < 1e-8 and errs[2] < 1e-11, errs


def test_erf_split_and_limit():
    s = 0.3
    torch.testing.assert_close(newton_long(X, s) + newton_short(X, s), newton(X), rtol=1e-13, atol=0)
    at_zero = newton_long(torch.zeros(1, 3, dtype=torch.float64), s)
    torch.testing.assert_close(at_zero, torch.tensor([2 / (math.sqrt(math.pi) * s)], dtype=torch.float64))
    tiny = torch.tensor([[1e-6, 0, 0], [1e-4 * s * 1.0001, 0, 0]], dtype=torch.float64)
    torch.testing.assert_close(newton_long(tiny, s), torch.erf(tiny[:, 0] / s) / tiny[:, 0], rtol=1e-12, atol=0)


def test_long_range_sinc_terms_are_an_erf_kernel():
    long, short = sinc_gaussian_sum().split(10)
    assert long.n_terms == 10 and short.n_terms == 16
    T = math.sinh(9.5 * 0.262122)  # spec: sum_{k<R_l} a_k exp(-t_k^2 r^2) ~ erf(T r)/r, 0.3 % on [0.01, 1.7]
    ref = torch.erf(T * R) / R
    assert float(((long(X) - ref) / ref).abs().max()) < 4e-3


def test_gaussian_sum_cp_matches_direct_sum(gen):
    charges = random_charges(7, generator=gen)
    long, _ = sinc_gaussian_sum().split(10)
    nodes = [torch.linspace(-1, 1, n, dtype=torch.float64) for n in (5, 6, 7)]
    weights, factors = gaussian_sum_cp(charges, long, nodes)
    dense = torch.einsum("q,iq,jq,kq->ijk", weights, *factors)
    mesh = torch.stack(torch.meshgrid(*nodes, indexing="ij"), dim=-1).reshape(-1, 3)
    torch.testing.assert_close(dense.reshape(-1), direct_sum(mesh, charges, long), rtol=1e-12, atol=1e-12)
    # and direct_sum itself against an explicit double loop
    loop = torch.stack([sum(float(q) * long(p - x) for x, q in zip(charges.positions, charges.charges))
                        for p in mesh[:5]])
    torch.testing.assert_close(direct_sum(mesh[:5], charges, long), loop, rtol=1e-12, atol=1e-12)


def test_newton_long_range_table_n256():
    """Spec table (recomputed on the authors' data): n = 256, m = 129, tol 1e-7 -> rank 9, slice error 8.4e-8."""
    n = 256
    long, _ = sinc_gaussian_sum().split(10)
    weights, u = cell_averaged_factors(long, n)
    ct = ChebyshevTucker.fit((weights, [u, u, u]), [(-1.0, 1.0)] * 3, degree=128, grid="uniform", tol=1e-7,
                             rank_rule="absolute", recompress=False)
    assert ct.ranks == (9, 9, 9)
    x = cell_centres(n, (-1.0, 1.0))
    k = n // 2 - 1
    ours = ct.to_grid([x, x, x[k:k + 1]]).to_tensor()[:, :, 0]
    exact = (u * weights * u[k]) @ u.T
    assert 8.4e-8 * 0.7 <= _rel_max(ours, exact) <= 8.4e-8 * 1.3


def _cluster_ranks(n_charges, tols, gen, recompress=False, m=65):
    charges = random_charges(n_charges, generator=gen)
    long, _ = sinc_gaussian_sum().split(10)
    weights, factors = gaussian_sum_cp(charges, long, [chebyshev_nodes(m)] * 3)
    pts = 2 * torch.rand(2000, 3, generator=gen, dtype=torch.float64) - 1
    truth = direct_sum(pts, charges, long)
    out = []
    for tol in tols:
        ct = ChebyshevTucker.fit((weights, factors), [(-1.0, 1.0)] * 3, tol=tol, recompress=recompress)
        out.append((max(ct.ranks), _rel_max(ct.evaluate(pts), truth)))
    return out


@pytest.mark.parametrize("n_charges, ranks, errs", [
    (10, (15, 21, 26), (4.0e-4, 2.5e-6, 2.2e-8)),
    (100, (16, 23, 28), (3.3e-4, 1.9e-6, 2.7e-8)),
])
def test_random_cluster_ranks_table(n_charges, ranks, errs, gen):
    got = _cluster_ranks(n_charges, (1e-3, 1e-5, 1e-7), gen)
    for (rank, err), want_rank, want_err in zip(got, ranks, errs):
        assert abs(rank - want_rank) <= 1, got
        assert err <= 3 * want_err, got


@pytest.mark.slow
def test_random_cluster_ranks_saturate_in_n(gen):
    small = _cluster_ranks(100, (1e-3, 1e-5, 1e-7), gen)
    large = _cluster_ranks(1000, (1e-3, 1e-5, 1e-7), gen)
    assert [r for r, _ in large] <= [r + 1 for r, _ in small] and [r for r, _ in large][-1] <= 29, (small, large)


def test_cluster_ranks_close_to_grid_hosvd(gen):
    """CT (RHOSVD + core recompression) ranks within +3 of grid-based HOSVD ranks, which do not depend on n."""
    charges = random_charges(100, generator=gen)
    long, _ = sinc_gaussian_sum().split(10)
    weights, factors = gaussian_sum_cp(charges, long, [chebyshev_nodes(65)] * 3)
    grid_ranks = {}
    for n in (32, 48):
        x = cell_centres(n, (-1.0, 1.0))
        w, f = gaussian_sum_cp(charges, long, [x] * 3)
        full = torch.einsum("q,iq,jq,kq->ijk", w, *f)
        grid_ranks[n] = {tol: max(tucker_hosvd(full, tol=tol, method="svd").ranks) for tol in (1e-3, 1e-5)}
    for tol in (1e-3, 1e-5):
        ct = ChebyshevTucker.fit((weights, factors), [(-1.0, 1.0)] * 3, tol=tol)
        assert 0 <= max(ct.ranks) - grid_ranks[48][tol] <= 3, (ct.ranks, grid_ranks)
        assert abs(grid_ranks[32][tol] - grid_ranks[48][tol]) <= 1, grid_ranks


def test_lattice_512_long_range_to_1e6(gen):
    charges = lattice_charges((8, 8, 8), extent=0.7)
    assert charges.n == 512
    long, _ = sinc_gaussian_sum().split(10)
    weights, factors = gaussian_sum_cp(charges, long, [chebyshev_nodes(65)] * 3)
    ct = ChebyshevTucker.fit((weights, factors), [(-1.0, 1.0)] * 3, tol=1e-8)
    pts = 2 * torch.rand(10_000, 3, generator=gen, dtype=torch.float64) - 1
    assert _rel_max(ct.evaluate(pts), direct_sum(pts, charges, long)) <= 1e-6
    assert max(ct.ranks) <= 20  # a lattice is far more compressible than its CP rank 5120


def test_lattice_vacancies_and_charges_validation(gen):
    full = lattice_charges((4, 4, 4))
    holes = lattice_charges((4, 4, 4), vacancies=0.25, generator=gen)
    assert holes.n < full.n and bool(lattice_charges((2, 2, 2), alternating=True).charges.sum() == 0)
    with pytest.raises(ValueError, match="vacancies"):
        lattice_charges((4, 4, 4), vacancies=1.0)
    with pytest.raises(ValueError, match="kernel"):
        sinc_gaussian_sum("coulomb")
    with pytest.raises(ValueError, match="n_long"):
        sinc_gaussian_sum().split(0)
    with pytest.raises(ValueError, match="sigma"):
        newton_long(X, 0.0)
