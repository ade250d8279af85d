"""Tests for sciml.linalg.hutchinson: statistical checks (within 4 standard errors, fixed seeds)."""

from __future__ import annotations

import math

import pytest
import torch

from sciml.linalg.hutchinson import hutchinson_diagonal, hutchinson_trace, hutchpp_trace
from sciml.linalg.operator import DenseOperator

F64 = torch.float64


def make_gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def symmetric(n: int, gen: torch.Generator) -> torch.Tensor:
    X = torch.randn(n, n, generator=gen, dtype=F64)
    return (X + X.T) / 2 + 3 * torch.eye(n, dtype=F64)


@pytest.mark.parametrize("distribution", ["rademacher", "gaussian"])
def test_hutchinson_trace_within_four_standard_errors(distribution):
    gen = make_gen(0)
    A = symmetric(80, gen)
    est = hutchinson_trace(A, num_probes=500, generator=gen, distribution=distribution)
    assert est.num_probes == 500 and est.stderr > 0
    assert abs(est.mean - float(torch.trace(A))) < 4 * est.stderr


def test_hutchinson_stderr_matches_theory_and_shrinks_like_inverse_sqrt():
    gen = make_gen(1)
    A = symmetric(60, gen)
    # Rademacher per-probe variance 2 (||A||_F^2 - sum_i A_ii^2)
    theory = math.sqrt(2 * (float((A ** 2).sum()) - float((torch.diagonal(A) ** 2).sum())))
    small = hutchinson_trace(A, num_probes=400, generator=gen)
    large = hutchinson_trace(A, num_probes=1600, generator=gen)
    assert small.stderr == pytest.approx(theory / 20, rel=0.2)
    assert large.stderr / small.stderr == pytest.approx(0.5, rel=0.2)


def test_hutchinson_is_exact_for_diagonal_matrices_with_rademacher_probes():
    d = torch.linspace(-2, 3, 25, dtype=F64)
    est = hutchinson_trace(torch.diag(d), num_probes=4, generator=make_gen(2))
    assert est.mean == pytest.approx(float(d.sum()), abs=1e-12) and est.stderr == pytest.approx(0.0, abs=1e-12)
    diag = hutchinson_diagonal(torch.diag(d), num_probes=3, generator=make_gen(2))
    torch.testing.assert_close(diag.mean, d, rtol=0.0, atol=1e-12)


def test_hutchinson_callable_and_blocks_give_the_same_estimate():
    gen = make_gen(3)
    A = symmetric(40, gen)
    one_block = hutchinson_trace(DenseOperator(A), num_probes=50, generator=make_gen(4))
    blocked = hutchinson_trace(lambda X: A @ X, n=40, num_probes=50, generator=make_gen(4), block_size=7)
    assert blocked.mean == pytest.approx(one_block.mean, rel=1e-12)
    assert blocked.stderr == pytest.approx(one_block.stderr, rel=1e-12)


def test_hutchinson_diagonal_within_four_standard_errors():
    gen = make_gen(5)
    A = symmetric(30, gen)
    est = hutchinson_diagonal(A, num_probes=400, generator=gen)
    assert est.mean.shape == (30,) and est.stderr.shape == (30,) and est.mean.dtype == F64
    assert bool(((est.mean - torch.diagonal(A)).abs() < 4 * est.stderr).all())


def test_hutchpp_has_lower_variance_than_hutchinson_at_equal_matvecs():
    gen = make_gen(6)
    n, m = 120, 30
    U = torch.randn(n, 8, generator=gen, dtype=F64)
    E = torch.randn(n, n, generator=gen, dtype=F64)
    A = 10 * U @ U.T + 0.1 * (E + E.T)  # a few dominant eigenvalues plus noise
    truth = float(torch.trace(A))
    errs_h, errs_pp = [], []
    for seed in range(20):
        errs_h.append(hutchinson_trace(A, num_probes=m, generator=make_gen(100 + seed)).mean - truth)
        errs_pp.append(hutchpp_trace(A, num_matvecs=m, generator=make_gen(100 + seed)).mean - truth)
    rms_h = math.sqrt(sum(e * e for e in errs_h) / 20)
    rms_pp = math.sqrt(sum(e * e for e in errs_pp) / 20)
    assert rms_pp < rms_h / 5
    # the reported stderr (residual Hutchinson part only) is calibrated: one default-size run lands within 4
    pp = hutchpp_trace(A, generator=gen)
    assert pp.num_probes == 34 and abs(pp.mean - truth) < 4 * pp.stderr


def test_hutchpp_exact_for_low_rank():
    gen = make_gen(7)
    U = torch.randn(60, 4, generator=gen, dtype=F64)
    A = U @ U.T  # rank 4 <= s = 4: the sketch captures the range, the residual part is zero
    est = hutchpp_trace(A, num_matvecs=12, generator=gen)
    assert est.num_probes == 4
    assert est.mean == pytest.approx(float(torch.trace(A)), rel=1e-10)


def test_estimators_reject_bad_inputs():
    A = torch.eye(5, dtype=F64)
    with pytest.raises(ValueError, match="num_probes"):
        hutchinson_trace(A, num_probes=1)
    with pytest.raises(ValueError, match="num_probes"):
        hutchinson_diagonal(A, num_probes=1)
    with pytest.raises(ValueError, match="num_matvecs"):
        hutchpp_trace(A, num_matvecs=4)
    with pytest.raises(ValueError, match="distribution"):
        hutchinson_trace(A, distribution="uniform")
    with pytest.raises(ValueError, match="square"):
        hutchinson_trace(torch.ones(5, 4, dtype=F64))
    with pytest.raises(ValueError, match="n="):
        hutchinson_trace(lambda X: X)
    with pytest.raises(ValueError, match="block_size"):
        hutchinson_trace(A, block_size=0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_estimators_follow_the_operator_device_and_check_the_generator():
    A = torch.diag(torch.arange(1.0, 11.0, dtype=F64, device="cuda"))
    est = hutchinson_diagonal(A, num_probes=2, generator=torch.Generator(device="cuda").manual_seed(0))
    assert est.mean.device.type == "cuda"
    with pytest.raises(ValueError, match="generator"):
        hutchinson_trace(A, generator=make_gen(0))
