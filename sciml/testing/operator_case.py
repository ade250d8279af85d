"""A reusable battery that checks any LinearOperator against its dense float64 reference.

Usage (in a test file)::

    class TestMyOperator(OperatorTestCase):
        def make_operator(self, gen, dtype):   # returns (operator, dense reference)
            ...

Every method of the contract (matvec on vectors and blocks, transpose, diagonal, solve with shift, logdet,
eigh) is compared with ``torch.linalg`` on the dense matrix. Subclasses set ``symmetric = False`` to skip the
checks that need a symmetric operator.
"""

from __future__ import annotations

import torch

from sciml.testing.tolerances import tol


class OperatorTestCase:
    symmetric = True
    shift = 0.3
    dtypes = (torch.float64, torch.float32)

    # Subclasses define ``make_operator(self, gen, dtype) -> (operator, dense_reference)``.

    def _cases(self):
        for dtype in self.dtypes:
            gen = torch.Generator().manual_seed(1234)
            op, dense = self.make_operator(gen, dtype)
            yield gen, dtype, op, dense

    def test_matmul_vector_and_block(self):
        for gen, dtype, op, dense in self._cases():
            x = torch.randn(op.shape[1], generator=gen, dtype=dtype)
            X = torch.randn(op.shape[1], 3, generator=gen, dtype=dtype)
            torch.testing.assert_close(op @ x, dense @ x, **tol(dtype, "exact"))
            torch.testing.assert_close(op @ X, dense @ X, **tol(dtype, "exact"))

    def test_to_dense(self):
        for _, dtype, op, dense in self._cases():
            torch.testing.assert_close(op.to_dense(), dense, **tol(dtype, "exact"))

    def test_transpose(self):
        for gen, dtype, op, dense in self._cases():
            X = torch.randn(op.shape[0], 2, generator=gen, dtype=dtype)
            torch.testing.assert_close(op.T @ X, dense.mT @ X, **tol(dtype, "exact"))

    def test_diagonal(self):
        for _, dtype, op, dense in self._cases():
            torch.testing.assert_close(op.diagonal(), torch.diagonal(dense), **tol(dtype, "exact"))

    def test_solve_with_shift(self):
        for gen, dtype, op, dense in self._cases():
            if not self.symmetric:
                continue
            B = torch.randn(op.shape[0], 2, generator=gen, dtype=dtype)
            eye = torch.eye(op.shape[0], dtype=torch.float64)
            expected = torch.linalg.solve(dense.double() + self.shift * eye, B.double()).to(dtype)
            torch.testing.assert_close(op.solve(B, shift=self.shift), expected, **tol(dtype, "solve"))
            torch.testing.assert_close(op.solve(B[:, 0], shift=self.shift), expected[:, 0], **tol(dtype, "solve"))

    def test_logdet(self):
        for _, dtype, op, dense in self._cases():
            if not self.symmetric:
                continue
            eye = torch.eye(op.shape[0], dtype=torch.float64)
            for shift in (0.0, self.shift):
                expected = torch.logdet(dense.double() + shift * eye).to(dtype)
                torch.testing.assert_close(op.logdet(shift=shift), expected, **tol(dtype, "solve"))

    def test_eigenvalues(self):
        for _, dtype, op, dense in self._cases():
            if not self.symmetric:
                continue
            eig = op.eigh()
            values = eig[0] if isinstance(eig, tuple) else eig.eigenvalues
            expected = torch.linalg.eigvalsh(dense.double()).to(dtype)
            torch.testing.assert_close(torch.sort(values).values, expected, **tol(dtype, "spectral"))
