"""Matrix-free Gauss-Newton U-step of GP-HM: preconditioned CG on Kronecker mode products, no M x M matrix.

At fixed kernel parameters and precisions the objective in the grid values ``u = vec(U)`` is

    1/2 u^T C^{-1} u + (lambda_b tau1 / 2) ||S u - g||^2 + (tau2 / 2) ||H(u)||^2 ,

``S`` picking the boundary entries and ``H`` the PDE residual on the grid. Linearising ``H`` at ``u0``
(``H(u) ~ H0 + J (u - u0)``) gives the Gauss-Newton normal equations

    (C^{-1} + lambda_b tau1 S^T S + tau2 J^T J) u = lambda_b tau1 S^T g + tau2 J^T (J u0 - H0),

exact for linear PDEs. They are solved by preconditioned CG in the variables ``y`` with ``u = V y``,
``V = V_1 ⊗ .. ⊗ V_D``, ``V_j = L_j R_j`` (``C_j = L_j L_j^T``; ``R_j`` the eigenvectors of the whitened
squared 1-D operator ``L_j^T A_j^T A_j L_j``, ``A_j`` the PDE's derivative terms along dimension j). In ``y`` the
prior term is exactly the identity and each dimension's own derivative term is diagonal in its factor; the
preconditioner is the exact diagonal of the prior and boundary terms plus the diagonal of the per-dimension
derivative terms (cross terms between dimensions and the off-diagonal Gram of the other factors left out).

Memory: the grid tensors (O(M)) and per-dimension n_j x n_j matrices (O(sum n_j^2)). Every product is a mode
product (``sciml.linalg.multi_mode_product``).

Linearisation: PDE operators are pointwise functions of ``u`` and its derivative fields (the ``PDE`` contract), so
``J v = c_0 v + sum_s c_s D_s v`` with per-point coefficients ``c_s = dH / d(d(s))`` read off by one autograd call;
``J^T w = c_0 w + sum_s D_s^T (c_s w)``. The coefficient form is checked against ``torch.func.jvp`` once per
system (``check_locality``); a non-pointwise operator falls back to jvp / vjp products.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence

import torch

from sciml.core import Status
from sciml.gp_pde.grid_gp import KroneckerGridPrior
from sciml.gp_pde.problems import derivative_orders
from sciml.linalg import conjugate_gradient, multi_mode_product


# Eigen-directions of a prior factor with lam > COARSE_EIG_FLOOR * lam_max join the exact coarse block (up to
# max_coarse). The derivative terms couple the directions just above the jitter level most strongly (their
# whitened columns are the grid-scale oscillations); with the old floor 1e-7 (19 of 256 directions) 2-D Poisson
# sin(20x)sin(20y) at 256^2 took 230 / 541 / 223 CG iterations in its first three U-steps, with 1e-12 (the cap,
# 32 per dimension) 3 / 4 / 17: time to relL2 1e-4 2.6 s instead of 31 s (measured under load 8, one thread).
COARSE_EIG_FLOOR = 1e-12


@dataclasses.dataclass(frozen=True)
class UStepResult:
    """One Gauss-Newton U-step: the new grid values, CG iterations, CG's status and final relative residual."""

    U: torch.Tensor
    cg_iterations: int
    cg_status: Status
    cg_residual: float


class Linearization:
    """``H(u0)``, ``J v`` and ``J^T w`` of a PDE residual on the grid at ``u0``, matrix-free.

    Args:
        operator: the PDE's ``operator(u, d)``.
        source: F on the grid, shape ``sizes``.
        prior: the grid prior (supplies the derivative mode products).
        U0: linearisation point, shape ``sizes``.
    """

    def __init__(self, operator: Callable, source: torch.Tensor, prior: KroneckerGridPrior,
                 U0: torch.Tensor) -> None:
        self.operator, self.F, self.prior, self.dim = operator, source, prior, len(prior.sizes)
        U0 = U0.detach()
        u_leaf = U0.clone().requires_grad_(True)
        fields: dict[tuple[int, ...], torch.Tensor] = {}

        def d(spec: str) -> torch.Tensor:
            orders = derivative_orders(spec, self.dim)
            if orders not in fields:
                fields[orders] = prior.derivative(U0, orders).detach().requires_grad_(True)
            return fields[orders]

        with torch.enable_grad():
            H = operator(u_leaf, d)
            leaves = [u_leaf] + list(fields.values())
            grads = torch.autograd.grad(H.sum(), leaves, allow_unused=True) if H.requires_grad else \
                [None] * len(leaves)
        self.H0 = (H - self.F).detach()
        zero = torch.zeros_like(U0)
        self.c0 = zero if grads[0] is None else grads[0].detach()
        self.terms = [(orders, g.detach()) for orders, g in zip(fields, grads[1:]) if g is not None]
        self.U0 = U0
        self.pointwise = True

    # ---- products -------------------------------------------------------------------------------------
    def _mats(self, orders: Sequence[int]) -> list[torch.Tensor | None]:
        return [self.prior.derivative_matrix(j, a) if a else None for j, a in enumerate(orders)]

    def jvp(self, V: torch.Tensor) -> torch.Tensor:
        """``J v`` for v of the grid's shape."""
        if not self.pointwise:
            return torch.func.jvp(self._residual, (self.U0,), (V,))[1]
        out = self.c0 * V
        for orders, c in self.terms:
            out = out + c * multi_mode_product(V, self._mats(orders))
        return out

    def vjp(self, W: torch.Tensor) -> torch.Tensor:
        """``J^T w`` for w of the grid's shape."""
        if not self.pointwise:
            return torch.func.vjp(self._residual, self.U0)[1](W)[0]
        out = self.c0 * W
        for orders, c in self.terms:
            out = out + multi_mode_product(c * W, self._mats(orders), transpose=True)
        return out

    def _residual(self, U: torch.Tensor) -> torch.Tensor:
        return self.operator(U, lambda spec: self.prior.derivative(U, derivative_orders(spec, self.dim))) - self.F

    def check_locality(self, generator: torch.Generator | None = None) -> bool:
        """Compare the coefficient form of ``J v`` with ``torch.func.jvp``; switch to jvp/vjp if they differ."""
        V = torch.randn(self.U0.shape, dtype=self.U0.dtype, generator=generator).to(self.U0.device)
        exact = torch.func.jvp(self._residual, (self.U0,), (V,))[1].detach()
        mine = self.jvp(V)
        scale = float(exact.abs().max()) + 1e-300
        self.pointwise = float((mine - exact).abs().max()) <= 1e-8 * scale
        return self.pointwise

    def one_d_operators(self) -> list[torch.Tensor | None]:
        """Per dimension, ``A_j = sum_a rms(c_s) D_j^(a)`` over the derivative terms along j alone (n_j x n_j)."""
        out: list[torch.Tensor | None] = [None] * self.dim
        for orders, c in self.terms:
            active = [j for j, a in enumerate(orders) if a]
            if len(active) != 1:
                continue                     # mixed derivatives: left out of the preconditioner
            j = active[0]
            weight = c.pow(2).mean().sqrt()
            term = weight * self.prior.derivative_matrix(j, orders[j])
            out[j] = term if out[j] is None else out[j] + term
        return out


class KroneckerPreconditionedSystem:
    """The GN normal equations in whitened eigen-coordinates ``y`` (``u = W y``) with a two-level preconditioner.

    ``W = W_1 ⊗ .. ⊗ W_D``, ``W_j = Q_j Lambda_j^{1/2}`` from ``C_j = Q_j Lambda_j Q_j^T`` (eigenvalues descending),
    so the prior term is exactly the identity. The preconditioner is block diagonal: an exact dense block on
    the "signal" coordinates (the leading ``r_j`` eigenvectors of every factor, ``prod r_j <= max_coarse``),
    assembled from Kronecker products of ``r_j x r_j`` matrices, and the diagonal everywhere else. The PDE's
    derivative coefficients enter the preconditioner through their root-mean-square (exact for constant
    coefficients); the CG operator itself uses the exact pointwise coefficients.

    Args:
        lin: the linearisation.
        boundary_index: flat indices of the boundary entries (with the reference code's repetitions).
        g: boundary data, shape (N_b,).
        weight_b: ``lambda_b * tau1``; weight_r: ``tau2``.
        max_coarse: size cap of the dense block.
    """

    def __init__(self, lin: Linearization, boundary_index: torch.Tensor, g: torch.Tensor, weight_b: float,
                 weight_r: float, max_coarse: int = 1024) -> None:
        self.lin, self.bidx, self.g = lin, boundary_index, g
        self.wb, self.wr = float(weight_b), float(weight_r)
        prior = lin.prior
        self.sizes = sizes = prior.sizes
        D = len(sizes)
        lams, self.V = [], []
        eig = prior.operator().eigh()              # sciml.linalg's factored eigendecomposition of C (ascending)
        for lam, Q in zip(eig.factor_eigenvalues, eig.factor_eigenvectors):
            lam, Q = lam.flip(0).clamp_min(0.0), Q.flip(1)
            lams.append(lam)
            self.V.append(Q * lam.sqrt())
        # coarse block: leading eigenvectors per factor, largest relative eigenvalues first, within max_coarse
        ranks = [int((lam > COARSE_EIG_FLOOR * lam[0]).sum()) for lam in lams]
        while math.prod(ranks) > max_coarse:
            j = max(range(D), key=lambda i: ranks[i])
            ranks[j] = max(1, int(ranks[j] * 0.9))
        self.ranks = ranks
        # per derivative term s: coefficient rms c_s and per-dimension factors B_{j,s} = D_j^(a) W_j (n_j x n_j)
        terms = [(lin.c0.pow(2).mean().sqrt(), (0,) * D)] + [(c.pow(2).mean().sqrt(), o) for o, c in lin.terms]
        factors = [[prior.derivative_matrix(j, a) @ self.V[j] if a else self.V[j] for j, a in enumerate(o)]
                   for _, o in terms]
        coefs = [float(c) for c, _ in terms]
        dtype, device = self.V[0].dtype, self.V[0].device
        # diagonal part
        deriv = torch.zeros(sizes, dtype=dtype, device=device)
        for c, fs in zip(coefs, factors):
            deriv = deriv + c * c * _outer([(B * B).sum(0) for B in fs])
        grams = [(W * W).sum(0) for W in self.V]
        bnd = torch.zeros_like(deriv)
        for j, n in enumerate(sizes):
            for side in (0, n - 1):
                bnd = bnd + _outer([self.V[k][side] ** 2 if k == j else grams[k] for k in range(D)])
        self.inv_diag = 1.0 / (1.0 + self.wr * deriv + self.wb * bnd)
        # dense coarse block: I + w_r sum_{s,s'} c_s c_s' ⊗_j B_js^T B_js' + w_b sum_faces ⊗_j (...)
        R = math.prod(ranks)
        Z = torch.eye(R, dtype=dtype, device=device)
        cut = [[B[:, :r] for B, r in zip(fs, ranks)] for fs in factors]
        live = [(c, fs) for c, fs in zip(coefs, cut) if c != 0.0]     # e.g. no zeroth-order term for Poisson
        for cs, fs in live:
            for cs2, fs2 in live:
                _add_kron(Z, [a.mT @ b for a, b in zip(fs, fs2)], self.wr * cs * cs2)
        Vc = [W[:, :r] for W, r in zip(self.V, ranks)]
        gram_c = [Wc.mT @ Wc for Wc in Vc]
        for j, n in enumerate(sizes):
            for side in (0, n - 1):
                row = Vc[j][side]
                _add_kron(Z, [row[:, None] * row[None, :] if k == j else gram_c[k] for k in range(D)], self.wb)
        # Z is symmetric by construction (pairs (s, s') and (s', s) both added) and Cholesky reads only its lower
        # triangle; factorising in place keeps the block's memory at one R x R matrix (8 MB at R = 1024).
        self.coarse_chol = torch.linalg.cholesky(Z, out=Z)
        self.coarse_index = tuple(slice(0, r) for r in ranks)

    def precondition(self, Y: torch.Tensor) -> torch.Tensor:
        out = Y * self.inv_diag
        block = Y[self.coarse_index].reshape(-1, 1)
        out[self.coarse_index] = torch.cholesky_solve(block, self.coarse_chol).reshape(self.ranks)
        return out

    def to_u(self, Y: torch.Tensor) -> torch.Tensor:
        return multi_mode_product(Y, self.V)

    def to_y_adjoint(self, U: torch.Tensor) -> torch.Tensor:
        return multi_mode_product(U, self.V, transpose=True)

    def boundary_normal(self, U: torch.Tensor) -> torch.Tensor:
        """``S^T S u`` (boundary entries counted as often as they appear)."""
        out = torch.zeros(U.numel(), dtype=U.dtype, device=U.device)
        flat = U.reshape(-1)
        out.index_add_(0, self.bidx, flat[self.bidx])
        return out.reshape(U.shape)

    def apply(self, Y: torch.Tensor) -> torch.Tensor:
        """``V^T (C^{-1} + w_b S^T S + w_r J^T J) V y``; the prior part is exactly ``y``."""
        U = self.to_u(Y)
        rest = self.wb * self.boundary_normal(U) + self.wr * self.lin.vjp(self.lin.jvp(U))
        return Y + self.to_y_adjoint(rest)

    def rhs(self) -> torch.Tensor:
        lin = self.lin
        b = torch.zeros(lin.U0.numel(), dtype=lin.U0.dtype, device=lin.U0.device)
        b.index_add_(0, self.bidx, self.g)
        target = lin.jvp(lin.U0) - lin.H0
        return self.to_y_adjoint(self.wb * b.reshape(lin.U0.shape) + self.wr * lin.vjp(target))

    def solve(self, rtol: float, max_iter: int, Y0: torch.Tensor | None = None) -> tuple[torch.Tensor, object]:
        shape = self.sizes
        M = math.prod(shape)

        def matvec(X: torch.Tensor) -> torch.Tensor:          # (M, k) -> (M, k)
            cols = [self.apply(X[:, i].reshape(shape)).reshape(-1) for i in range(X.shape[1])]
            return torch.stack(cols, 1)

        def precond(X: torch.Tensor) -> torch.Tensor:
            cols = [self.precondition(X[:, i].reshape(shape)).reshape(-1) for i in range(X.shape[1])]
            return torch.stack(cols, 1)

        b = self.rhs().reshape(-1)
        res = conjugate_gradient(matvec, b, n=M, preconditioner=precond, rtol=rtol, max_iter=max_iter,
                                 x0=None if Y0 is None else Y0.reshape(-1), on_failure="ignore")
        return res.x.reshape(shape), res


def _kron(matrices: Sequence[torch.Tensor]) -> torch.Tensor:
    out = matrices[0]
    for m in matrices[1:]:
        out = torch.kron(out, m)
    return out


def _add_kron(Z: torch.Tensor, matrices: Sequence[torch.Tensor], alpha: float) -> None:
    """``Z += alpha * (A_1 ⊗ .. ⊗ A_D)`` one row of ``A_1`` at a time (temporaries ``R^2 / r_1``, not ``R^2``)."""
    first, rest = matrices[0], _kron(matrices[1:]) if len(matrices) > 1 else None
    if rest is None:
        Z.add_(first, alpha=alpha)
        return
    r1, m = first.shape[0], rest.shape[0]
    blocks = Z.view(r1, m, r1, m)
    for i in range(r1):
        blocks[i].add_(first[i][None, :, None] * rest[:, None, :], alpha=alpha)


def _outer(vectors: Sequence[torch.Tensor]) -> torch.Tensor:
    """Outer product of 1-D tensors: shape (n_1, .., n_D)."""
    out = vectors[0]
    for v in vectors[1:]:
        out = out[..., None] * v
    return out


def structured_u_step(operator: Callable, source: torch.Tensor, prior: KroneckerGridPrior, U0: torch.Tensor,
                      boundary_index: torch.Tensor, g: torch.Tensor, weight_b: float, weight_r: float,
                      rtol: float = 1e-10, max_iter: int = 2000) -> UStepResult:
    """One Gauss-Newton step in U by preconditioned CG (see the module docstring). Shapes: U0, source ``sizes``."""
    lin = Linearization(operator, source, prior, U0)
    lin.check_locality()
    system = KroneckerPreconditionedSystem(lin, boundary_index, g, weight_b, weight_r)
    # warm start from the current iterate: y0 = W^{-1} u0 = Lambda^{-1} W^T u0 per factor
    Y0 = multi_mode_product(U0.detach(), [W.mT / (W * W).sum(0).clamp_min(1e-300)[:, None] for W in system.V])
    Y, res = system.solve(rtol, max_iter, Y0)
    return UStepResult(system.to_u(Y), res.n_iter, res.status, res.residual_norm)
