"""A reusable battery that checks any LinearOperator against a dense float64 reference or, at large N, against
an independent matrix-free reference on random probes.

Usage (in a test file)::

    class TestMyOperator(OperatorTestCase):
        def make_operator(self, gen, dtype, device="cpu"):   # returns (operator, dense reference)
            ...
        # optional, enables the gradient checks through the operator's parameters:
        def make_differentiable(self, gen, dtype):
            return params, lambda ps: MyOperator(ps), lambda ps: dense_from(ps)
        # optional, enables the large-N checks (N >= 1e5, nothing N x N is formed):
        def make_large_operator(self, gen, dtype):
            return op, reference_matmat            # reference_matmat: (N, k) -> (N, k), written independently

Every method of the contract (matvec on vectors and blocks, transpose, diagonal, solve with shift on one and
several right-hand sides, logdet, eigh, gradients) is compared with ``torch.linalg`` on the dense matrix in every
dtype of ``dtypes`` and on every available device (cuda when present, when ``make_operator`` takes ``device``).
Subclasses set ``symmetric = False`` to skip the checks that need a symmetric operator.
"""

from __future__ import annotations

import inspect
import math

import torch

from sciml.testing.tolerances import tol


def available_devices() -> tuple[str, ...]:
    return ("cpu", "cuda") if torch.cuda.is_available() else ("cpu",)


class OperatorTestCase:
    symmetric = True
    shift = 0.3
    dtypes = (torch.float64, torch.float32)
    num_rhs = 3
    large_probes = 4

    # Subclasses define ``make_operator(self, gen, dtype[, device]) -> (operator, dense_reference)``.

    def _devices(self) -> tuple[str, ...]:
        takes_device = "device" in inspect.signature(self.make_operator).parameters
        return available_devices() if takes_device else ("cpu",)

    def _cases(self):
        for device in self._devices():
            for dtype in self.dtypes:
                gen = torch.Generator().manual_seed(1234)
                if device == "cpu" and "device" not in inspect.signature(self.make_operator).parameters:
                    op, dense = self.make_operator(gen, dtype)
                else:
                    op, dense = self.make_operator(gen, dtype, device=device)
                yield gen, dtype, op, dense

    @staticmethod
    def _randn(gen, *shape, dtype, device):
        return torch.randn(*shape, generator=gen, dtype=dtype).to(device)

    def test_matmul_vector_and_block(self):
        for gen, dtype, op, dense in self._cases():
            x = self._randn(gen, op.shape[1], dtype=dtype, device=dense.device)
            X = self._randn(gen, op.shape[1], self.num_rhs, dtype=dtype, device=dense.device)
            torch.testing.assert_close(op @ x, dense @ x, **tol(dtype, "exact"))
            torch.testing.assert_close(op @ X, dense @ X, **tol(dtype, "exact"))

    def test_device_and_dtype_follow_inputs(self):
        for gen, dtype, op, dense in self._cases():
            X = self._randn(gen, op.shape[1], 2, dtype=dtype, device=dense.device)
            out = op @ X
            assert out.dtype == dtype and out.device == dense.device
            assert op.dtype == dtype and op.device == dense.device
            if self.symmetric:
                solved = op.solve(X, shift=self.shift)
                assert solved.dtype == dtype and solved.device == dense.device

    def test_to_dense(self):
        for _, dtype, op, dense in self._cases():
            torch.testing.assert_close(op.to_dense(), dense, **tol(dtype, "exact"))

    def test_transpose(self):
        for gen, dtype, op, dense in self._cases():
            X = self._randn(gen, op.shape[0], 2, dtype=dtype, device=dense.device)
            torch.testing.assert_close(op.T @ X, dense.mT @ X, **tol(dtype, "exact"))

    def test_diagonal(self):
        for _, dtype, op, dense in self._cases():
            torch.testing.assert_close(op.diagonal(), torch.diagonal(dense), **tol(dtype, "exact"))

    def test_solve_with_shift(self):
        for gen, dtype, op, dense in self._cases():
            if not self.symmetric:
                continue
            B = self._randn(gen, op.shape[0], self.num_rhs, dtype=dtype, device=dense.device)
            eye = torch.eye(op.shape[0], dtype=torch.float64, device=dense.device)
            expected = torch.linalg.solve(dense.double() + self.shift * eye, B.double()).to(dtype)
            torch.testing.assert_close(op.solve(B, shift=self.shift), expected, **tol(dtype, "solve"))
            torch.testing.assert_close(op.solve(B[:, 0], shift=self.shift), expected[:, 0], **tol(dtype, "solve"))

    def test_logdet(self):
        for _, dtype, op, dense in self._cases():
            if not self.symmetric:
                continue
            eye = torch.eye(op.shape[0], dtype=torch.float64, device=dense.device)
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

    # ---- gradients -------------------------------------------------------------------------------------------
    def test_gradient_wrt_right_hand_side(self):
        """d/dX <W, A X> = A^T W and d/dB <W, (A + sI)^{-1} B> = (A + sI)^{-T} W, against dense autograd."""
        for gen, dtype, op, dense in self._cases():
            if dtype != torch.float64:
                continue
            X = self._randn(gen, op.shape[1], self.num_rhs, dtype=dtype, device=dense.device).requires_grad_(True)
            W = self._randn(gen, op.shape[0], self.num_rhs, dtype=dtype, device=dense.device)
            (grad,) = torch.autograd.grad((W * (op @ X)).sum(), X)
            torch.testing.assert_close(grad, dense.mT @ W, **tol(dtype, "exact"))
            if self.symmetric:
                (grad,) = torch.autograd.grad((W * op.solve(X, shift=self.shift)).sum(), X)
                eye = torch.eye(op.shape[0], dtype=dtype, device=dense.device)
                torch.testing.assert_close(grad, torch.linalg.solve((dense + self.shift * eye).mT, W),
                                           **tol(dtype, "solve"))

    def test_gradient_wrt_parameters(self):
        """Gradients of <W, A X> (+ solve and logdet when symmetric) w.r.t. the operator's parameters match the
        dense float64 autograd (full, unsymmetrised gradients for matvec and solve)."""
        if not hasattr(self, "make_differentiable"):
            return
        gen = torch.Generator().manual_seed(99)
        params, build_op, build_dense = self.make_differentiable(gen, torch.float64)
        n = build_dense(params).shape[1]
        X = torch.randn(n, self.num_rhs, generator=gen, dtype=torch.float64)
        W = torch.randn(n, self.num_rhs, generator=gen, dtype=torch.float64)
        results = []
        for structured in (True, False):
            leaves = [p.detach().clone().requires_grad_(True) for p in params]
            if structured:
                op = build_op(leaves)
                loss = (W * (op @ X)).sum()
                if self.symmetric:
                    loss = loss + (W * op.solve(X, shift=self.shift)).sum() + op.logdet(shift=self.shift)
            else:
                A = build_dense(leaves)
                loss = (W * (A @ X)).sum()
                if self.symmetric:
                    shifted = A + self.shift * torch.eye(n, dtype=torch.float64)
                    loss = loss + (W * torch.linalg.solve(shifted, X)).sum() + torch.logdet(shifted)
            results.append(torch.autograd.grad(loss, leaves))
        for ours, ref in zip(*results):
            assert bool(torch.isfinite(ours).all())
            torch.testing.assert_close(ours, ref, **tol(torch.float64, "solve"))

    # ---- large N: matrix-free reference on random probes -------------------------------------------------------
    def test_large_operator_against_matrix_free_reference(self):
        """N >= 1e5: matmat vs the reference on random probes, adjoint identity u'(A v) = (A^T u)'v, diagonal
        entries at random indices (A e_i), and the solve's residual (A + sI) X - B measured with the reference."""
        if not hasattr(self, "make_large_operator"):
            return
        for dtype in self.dtypes:
            gen = torch.Generator().manual_seed(4321)
            op, reference = self.make_large_operator(gen, dtype)
            N = op.shape[0]
            assert N >= 100_000, f"make_large_operator should give N >= 1e5, got {N}"
            eps = torch.finfo(dtype).eps
            Z = torch.randn(N, self.large_probes, generator=gen, dtype=dtype).to(op.device)
            AZ, ref = op @ Z, reference(Z)
            # normwise: rounding of a length-n_k inner product chain is ~ sqrt(N) eps relative
            assert float((AZ - ref).norm() / ref.norm()) <= 100 * math.sqrt(N) * eps
            U = torch.randn(N, 1, generator=gen, dtype=dtype).to(op.device)
            lhs, rhs = float(U[:, 0] @ AZ[:, 0]), float((op.T @ U)[:, 0] @ Z[:, 0])
            assert abs(lhs - rhs) <= 100 * math.sqrt(N) * eps * float(U.norm() * AZ[:, 0].norm())
            idx = torch.randint(0, N, (4,), generator=gen)
            E = torch.zeros(N, 4, dtype=dtype, device=op.device)
            E[idx.to(op.device), torch.arange(4, device=op.device)] = 1.0
            torch.testing.assert_close(op.diagonal()[idx.to(op.device)], reference(E)[idx.to(op.device),
                                       torch.arange(4, device=op.device)], **tol(dtype, "exact"))
            if self.symmetric:
                X = op.solve(Z, shift=self.shift)
                residual = reference(X) + self.shift * X - Z
                scale = ref.norm() / Z.norm() * X.norm() + Z.norm()  # ~ ||A|| ||X|| + ||B||
                assert float(residual.norm() / scale) <= 100 * math.sqrt(N) * eps
