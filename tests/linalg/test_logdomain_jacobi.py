"""Row-blocked log-domain kernel reductions and the Jacobi preconditioner, against unblocked / dense references."""

import math

import pytest
import scipy.special
import torch

from sciml.core import Status
from sciml.linalg import SparseOperator, conjugate_gradient, jacobi_preconditioner, log_kernel_reduce


def _instance(n=37, m=23, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    C = torch.rand(n, m, generator=g, dtype=dtype)
    x = torch.randn(n, generator=g, dtype=dtype)
    y = torch.randn(m, generator=g, dtype=dtype)
    return C, x, y


@pytest.mark.parametrize("block_rows", [None, 1, 5, 37, 100])
@pytest.mark.parametrize("dim", [0, 1])
def test_reduce_equals_scipy_logsumexp_of_full_matrix(block_rows, dim):
    C, x, y = _instance()
    eta = 50.0
    got = log_kernel_reduce(C, x, y, eta, dim=dim, shift=-1.0, block_rows=block_rows)
    full = (eta * (x[:, None] + y[None, :] - C) - 1.0).numpy()
    want = scipy.special.logsumexp(full, axis=dim)  # independent implementation (numpy/scipy)
    assert got.shape == (C.shape[1 - dim],)
    assert torch.allclose(got, torch.from_numpy(want), rtol=0, atol=1e-12)


def test_reduce_stays_finite_where_the_linear_domain_underflows():
    # eta * C ~ 1e5: every exp underflows to 0 in float64, the log-domain sum must not.
    C, x, y = _instance()
    C = C + 0.01  # every cost >= 0.01, so every exp(-eta C) <= exp(-1000) underflows
    eta = 1e5
    for dim in (0, 1):
        got = log_kernel_reduce(C, x * 0, y * 0, eta, dim=dim, block_rows=4)
        assert torch.isfinite(got).all()
        want = scipy.special.logsumexp((-eta * C).numpy(), axis=dim)
        assert torch.allclose(got, torch.from_numpy(want), rtol=1e-14, atol=0)
        assert float(torch.exp(-eta * C).sum()) == 0.0  # the naive route really does underflow


def test_reduce_follows_dtype_float32():
    C, x, y = _instance(dtype=torch.float32)
    got = log_kernel_reduce(C, x, y, 3.0, dim=1, block_rows=7)
    assert got.dtype == torch.float32
    want = torch.logsumexp(3.0 * (x.double()[:, None] + y.double()[None, :] - C.double()), dim=1)
    assert torch.allclose(got.double(), want, rtol=1e-6, atol=1e-5)


@pytest.mark.parametrize("bad, match", [
    (dict(eta=0.0), "eta must be"), (dict(eta=math.inf), "eta must be"), (dict(dim=2), "dim must be"),
    (dict(block_rows=0), "block_rows"), (dict(x=torch.zeros(3, dtype=torch.float64)), "x must have shape"),
    (dict(y=torch.zeros(23)), "y must have shape"),
])
def test_reduce_bad_input(bad, match):
    C, x, y = _instance()
    args = dict(C=C, x=x, y=y, eta=1.0)
    args.update(bad)
    with pytest.raises(ValueError, match=match):
        log_kernel_reduce(args.pop("C"), args.pop("x"), args.pop("y"), args.pop("eta"), **args)


def _badly_scaled_spd(n=200, seed=1):
    # A = D^(1/2) S D^(1/2) with a well-conditioned S and a diagonal spanning 6 decades: Jacobi undoes D exactly.
    g = torch.Generator().manual_seed(seed)
    Q, _ = torch.linalg.qr(torch.randn(n, n, generator=g, dtype=torch.float64))
    S = Q @ torch.diag(torch.linspace(1.0, 4.0, n, dtype=torch.float64)) @ Q.T
    d = torch.logspace(0, 6, n, dtype=torch.float64)
    return d.sqrt()[:, None] * S * d.sqrt()[None, :]


def test_jacobi_cg_matches_dense_solve_and_needs_fewer_iterations():
    A = _badly_scaled_spd()
    b = torch.randn(A.shape[0], generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    want = torch.linalg.solve(A, b)
    plain = conjugate_gradient(A, b, rtol=1e-10, max_iter=2000, on_failure="ignore")
    jac = conjugate_gradient(A, b, preconditioner="jacobi", rtol=1e-10)
    assert jac.status is Status.CONVERGED
    assert torch.allclose(jac.x, want, rtol=0, atol=1e-8 * float(want.abs().max()))
    assert jac.n_iter * 5 < plain.n_iter  # preconditioning removes the 1e6 diagonal scaling


def test_jacobi_from_sparse_operator_and_explicit_diagonal_agree():
    g = torch.Generator().manual_seed(3)
    A = torch.randn(60, 60, generator=g, dtype=torch.float64) * (torch.rand(60, 60, generator=g) < 0.1)
    A = A + A.T
    A = A + torch.diag(A.abs().sum(1) + torch.logspace(0, 4, 60, dtype=torch.float64))  # diagonally dominant: SPD
    op = SparseOperator(A.to_sparse())
    X = torch.randn(60, 3, dtype=torch.float64)
    from_op = jacobi_preconditioner(op) @ X
    from_diag = jacobi_preconditioner(None, diagonal=torch.diagonal(A)) @ X
    assert torch.equal(from_op, from_diag)
    assert torch.allclose(from_op, X / torch.diagonal(A)[:, None], rtol=1e-15, atol=0)


def test_jacobi_rejects_non_positive_diagonal_and_unknown_string():
    with pytest.raises(ValueError, match="positive diagonal; entry 1"):
        jacobi_preconditioner(None, diagonal=torch.tensor([1.0, 0.0, 2.0], dtype=torch.float64))
    with pytest.raises(ValueError, match="'jacobi'"):
        conjugate_gradient(torch.eye(3, dtype=torch.float64), torch.ones(3, dtype=torch.float64),
                           preconditioner="ilu")
