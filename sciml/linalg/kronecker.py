"""Kronecker-product operators ``A_1 ⊗ A_2 ⊗ ... ⊗ A_d``, applied and solved factor by factor.

The dense ``N x N`` matrix (``N = prod n_k``) is never formed: a matvec reshapes the vector into an
``(n_1, ..., n_d)`` tensor and applies one mode product per factor (``O(N * sum n_k)`` instead of ``O(N^2)``),
and eigen-decompositions, solves and log-determinants come from the factors' eigen-decompositions
(``O(sum n_k^3)``), or from their Choleskys (``method="cholesky"``, no shift). Index order is row-major:
``vec[i_1 * (n_2 ... n_d) + ... + i_d]``, the same as ``torch.kron(A_1, torch.kron(A_2, ...))``.

Numerics (why the choices below):

* Singularity is decided from a rounding bound, not a global ``N eps`` rule. ``eigh`` of factor k is
  backward stable: its eigenvalues are exact for ``A_k + E_k`` with ``||E_k|| <~ n_k eps_eigh ||A_k||``. The
  product eigenvalue ``prod_k lambda_k`` then moves by at most ``eps_eigh (sum_k n_k) prod_k ||A_k||`` to first
  order, plus ``d eps |lambda|`` for forming the product in the working dtype and ``eps |s|`` for the shift;
  ``A + sI`` is called singular when ``min |lambda + s|`` is below that bound (with ``|lambda| <= min|lambda +
  s| + |s|`` at the minimiser, so only two O(N) reductions are needed). ``eps_eigh`` is float64's when
  the factors are low precision (they are decomposed in float64).
  :meth:`KroneckerOperator.conditioning` reports the bound and the condition estimate ``max|.|/min|.|``.
* Low-precision factors (float32/bf16/f16) are decomposed in float64 (the factors are small) and the
  eigenpairs cast back, so the only low-precision error left is in the mode products.
* ``solve`` and ``logdet`` carry their own backward passes, which never divide by eigenvalue gaps:
  ``dL/dB = solve(G)``, ``dL/dA_k = -unfold_k(solve(G)) unfold_k(X ×_{l≠k} A_l)^T`` and
  ``d logdet / dA_k = Q_k diag(w_k) Q_k^T`` with ``w_k`` the contraction of ``1/(lambda + s)`` with the other
  factors' eigenvalues. Both stay finite with repeated eigenvalues (e.g. an identity factor).
* The cached eigen-decomposition is keyed on every factor's ``tensor._version``: an in-place edit of a factor
  (``f.mul_(2)``, ``f[0, 0] = 1``) is detected and the decomposition recomputed. Edits that bypass the version
  counter (through ``f.data``, a numpy view, or DLPack) are not seen; call :meth:`KroneckerOperator.invalidate`.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from typing import Sequence

import torch

from sciml.core import NumericalWarning, Result, Status, check_floating
from sciml.linalg.operator import LinearOperator, check_shift
from sciml.linalg.tensor_ops import multi_mode_product, unfold

METHODS = ("eigh", "cholesky")
_LOW_PRECISION = (torch.float32, torch.float16, torch.bfloat16)


@dataclasses.dataclass(frozen=True)
class KroneckerEigh(Result):
    """Eigen-decomposition of a Kronecker product, kept in factored form.

    ``factor_eigenvalues[k]`` (n_k,) and ``factor_eigenvectors[k]`` (n_k, n_k) decompose ``A_k``; the full
    eigenvalues are their outer product (``eigenvalues``, in Kronecker order, not sorted) and the full
    eigenvectors are ``KroneckerOperator(factor_eigenvectors)``.
    """

    factor_eigenvalues: tuple[torch.Tensor, ...]
    factor_eigenvectors: tuple[torch.Tensor, ...]

    @property
    def eigenvalues(self) -> torch.Tensor:
        return kron_vector(self.factor_eigenvalues)

    @property
    def eigenvectors(self) -> "KroneckerOperator":
        return KroneckerOperator(self.factor_eigenvectors)


@dataclasses.dataclass(frozen=True)
class KroneckerConditioning(Result):
    """How well-posed ``A + shift I`` is, from the factors' eigenvalues.

    ``condition_estimate = max|lambda + s| / min|lambda + s|`` (the 2-norm condition number for symmetric
    factors, up to the eigensolver's rounding); ``rounding_bound`` is the first-order bound on the error of
    any computed ``lambda + s`` (module docstring). status is BREAKDOWN when ``min|lambda + s| <=
    rounding_bound``: the computed system cannot be told apart from a singular one.
    """

    condition_estimate: float
    smallest_abs_eigenvalue: float
    largest_abs_eigenvalue: float
    rounding_bound: float
    status: Status

    @property
    def singular(self) -> bool:
        return self.status is not Status.CONVERGED


def kron_vector(vectors: Sequence[torch.Tensor]) -> torch.Tensor:
    """``v_1 ⊗ v_2 ⊗ ...`` for 1-D tensors, by successive outer products. Shapes: (n_k,) -> (prod n_k,)."""
    if len(vectors) == 0:
        raise ValueError("kron_vector needs at least one vector")
    for k, v in enumerate(vectors):
        if not isinstance(v, torch.Tensor) or v.ndim != 1:
            raise ValueError(f"kron_vector needs 1-D tensors; vectors[{k}] has shape {tuple(getattr(v, 'shape', ()))}")
    out = vectors[0]
    for v in vectors[1:]:
        out = (out[:, None] * v[None, :]).reshape(-1)
    return out


def kron_apply(matrices: Sequence[torch.Tensor], X: torch.Tensor, transpose: bool = False) -> torch.Tensor:
    """``(M_1 ⊗ ... ⊗ M_d) X`` (or with every ``M_k^T``) without forming the product. Shapes: (N, K) -> (N, K).

    A single right-hand side goes through GEMMs on contiguous views (first mode ``M (n, rest)``, middle modes
    a batched ``M (left, n, right)``, last mode ``(rest, n) M^T``: no copies); blocks go through
    ``multi_mode_product`` (tensordot), which measured faster there (bench_linalg.py, 1 thread).
    """
    sizes = [M.shape[0] for M in matrices]
    if X.ndim != 2 or X.shape[0] != math.prod(sizes):
        raise ValueError(f"kron_apply: X must have shape ({math.prod(sizes)}, K) = prod of the factor rows, "
                         f"got {tuple(X.shape)}")
    if any(M.dtype != X.dtype or M.device != X.device for M in matrices):
        raise ValueError(f"kron_apply: X has dtype {X.dtype} on {X.device}, factors "
                         f"{[(M.dtype, str(M.device)) for M in matrices]}; they must match")
    N, K = X.shape
    if K > 1:
        tensor = X.reshape(*sizes, K)
        tensor = multi_mode_product(tensor, list(matrices), modes=range(len(matrices)), transpose=transpose)
        return tensor.reshape(N, K)
    Y, left = X, 1
    for M, n in zip(matrices, sizes):
        M = M.mT if transpose else M
        right = N // (left * n)
        if left == 1:
            Y = M @ Y.reshape(n, right)
        elif right == 1:
            Y = Y.reshape(left, n) @ M.mT
        else:
            Y = torch.matmul(M, Y.reshape(left, n, right))
        left *= n
    return Y.reshape(N, 1)


class _EigSolve(torch.autograd.Function):
    """``X = (A + sI)^{-1} B`` through a factored eigen-decomposition, with a gap-free backward."""

    @staticmethod
    def forward(ctx, op: "KroneckerOperator", eig: KroneckerEigh, values: torch.Tensor, B: torch.Tensor,
                shift, *factors: torch.Tensor) -> torch.Tensor:
        X = _eig_apply_inverse(eig, values, B)
        ctx.op, ctx.eig, ctx.values = op, eig, values
        ctx.shift_is_tensor = isinstance(shift, torch.Tensor)
        ctx.save_for_backward(X, *factors)
        return X

    @staticmethod
    def backward(ctx, G: torch.Tensor):
        X, *factors = ctx.saved_tensors
        GB = _eig_apply_inverse(ctx.eig, ctx.values, G)  # (A + sI)^{-T} G, symmetric factors
        grads = [None] * len(factors)
        needs = ctx.needs_input_grad
        if any(needs[5:]):
            sizes = [f.shape[0] for f in factors]
            K = X.shape[1]
            gb_t = GB.reshape(*sizes, K)
            x_t = X.reshape(*sizes, K)
            for k, f in enumerate(factors):
                if not needs[5 + k]:
                    continue
                # y^T (⊗A) x = <Y, X ×_l A_l>: its derivative in A_k is unfold_k(Y) unfold_k(X ×_{l≠k} A_l)^T.
                others = multi_mode_product(x_t, list(factors), modes=range(len(factors)), skip=k)
                grads[k] = -(unfold(gb_t, k) @ unfold(others, k).mT)
        grad_shift = None
        if needs[4] and ctx.shift_is_tensor:
            grad_shift = -(GB * X).sum()
        return (None, None, None, GB if needs[3] else None, grad_shift, *grads)


def _eig_apply_inverse(eig: KroneckerEigh, values: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
    vectors = eig.factor_eigenvectors
    rotated = kron_apply(vectors, B, transpose=True)  # Qᵀ B
    return kron_apply(vectors, rotated / values[:, None])  # Q (Λ + s)^{-1} Qᵀ B


class _EigLogdet(torch.autograd.Function):
    """``sum log|lambda + s|`` with gradient ``Q_k diag(w_k) Q_k^T`` per factor (no eigenvalue gaps)."""

    @staticmethod
    def forward(ctx, eig: KroneckerEigh, values: torch.Tensor, shift, *factors: torch.Tensor) -> torch.Tensor:
        ctx.eig, ctx.values = eig, values
        ctx.shift_is_tensor = isinstance(shift, torch.Tensor)
        if isinstance(shift, torch.Tensor) or shift != 0.0:
            return torch.log(values.abs()).sum()
        # No shift: log|det(⊗A_k)| = sum_k (N / n_k) log|det A_k|, O(sum n_k) instead of O(N).
        n = values.shape[0]
        return sum((n // ev.shape[0]) * torch.log(ev.abs()).sum() for ev in eig.factor_eigenvalues)

    @staticmethod
    def backward(ctx, g: torch.Tensor):
        eig, values = ctx.eig, ctx.values
        lams = eig.factor_eigenvalues
        sizes = [lam.shape[0] for lam in lams]
        inv = (1.0 / values).reshape(sizes)  # (n_1, ..., n_d)
        needs = ctx.needs_input_grad
        grads = [None] * len(lams)
        for k in range(len(lams)):
            if not needs[3 + k]:
                continue
            # d/dA_k sum log(prod_l lambda_l + s) = Q_k diag(w_k) Q_k^T with
            # w_k[j] = sum over the other indices of (prod_{l≠k} lambda_l) / (lambda + s).
            w = multi_mode_product(inv, [lam[None, :] for lam in lams], skip=k).reshape(-1)  # (n_k,)
            Q = eig.factor_eigenvectors[k]
            grads[k] = g * (Q * w[None, :]) @ Q.mT
        grad_shift = g * inv.sum() if (needs[2] and ctx.shift_is_tensor) else None
        return (None, None, grad_shift, *grads)


class KroneckerOperator(LinearOperator):
    """``A_1 ⊗ ... ⊗ A_d`` for square factors of any sizes (same dtype and device).

    Args:
        factors: square matrices ``A_k`` of shape (n_k, n_k), finite. ``eigh``, ``solve`` and ``logdet``
            assume they are symmetric (checked on first use) and, for ``logdet``, that the shifted operator is
            positive definite (``slogdet`` handles any sign).

    Shapes: operator (N, N) with N = prod n_k; right-hand sides (N,) or (N, K).

    Differs from linear_operator's ``KroneckerProductLinearOperator``: no batch of operators, no hidden
    size threshold; solve and logdet go through the factor eigen-decompositions (exact, and they take a
    scalar shift ``s`` for ``A + s I``) unless ``method="cholesky"`` asks for factor Choleskys (no shift,
    positive-definite factors). The eigen-decomposition is cached and recomputed after an in-place edit.
    """

    def __init__(self, factors: Sequence[torch.Tensor]) -> None:
        factors = tuple(factors)
        if not factors:
            raise ValueError("KroneckerOperator needs at least one factor")
        for k, f in enumerate(factors):
            check_floating(f, f"factors[{k}]")
            if f.is_complex():
                raise ValueError(f"factors[{k}] is complex ({f.dtype}); KroneckerOperator needs real factors")
            if f.ndim != 2 or f.shape[0] != f.shape[1]:
                raise ValueError(f"factors[{k}] must be a square matrix, got shape {tuple(f.shape)}")
            if f.dtype != factors[0].dtype or f.device != factors[0].device:
                raise ValueError(f"factors[{k}] has dtype {f.dtype} on {f.device}, but factors[0] has "
                                 f"{factors[0].dtype} on {factors[0].device}; all factors must match")
        self.factors = factors
        self.sizes = tuple(f.shape[0] for f in factors)
        n = 1
        for s in self.sizes:
            n *= s
        self.shape = (n, n)
        self.dtype, self.device = factors[0].dtype, factors[0].device
        self._cache: dict[str, object] = {}
        self._cache_key: tuple | None = None

    # ---- application ------------------------------------------------------------------------------------
    def _apply(self, matrices: Sequence[torch.Tensor], X: torch.Tensor, transpose: bool = False) -> torch.Tensor:
        return kron_apply(matrices, X, transpose)

    def _matmat(self, X: torch.Tensor) -> torch.Tensor:
        return kron_apply(self.factors, X)

    def to_dense(self) -> torch.Tensor:
        out = self.factors[0]
        for f in self.factors[1:]:
            out = torch.kron(out, f)
        return out

    @property
    def T(self) -> "KroneckerOperator":
        return KroneckerOperator([f.mT for f in self.factors])

    def diagonal(self) -> torch.Tensor:
        return kron_vector([torch.diagonal(f) for f in self.factors])

    # ---- cached factorisations --------------------------------------------------------------------------
    def invalidate(self) -> None:
        """Drop cached factorisations (needed only after an edit that bypasses ``tensor._version``)."""
        self._cache.clear()
        self._cache_key = None

    def _cached(self, name: str, build):
        key = tuple((f._version, f.data_ptr()) for f in self.factors)
        if key != self._cache_key:
            self._cache.clear()
            self._cache_key = key
        if name not in self._cache:
            self._cache[name] = build()
        return self._cache[name]

    def _check_symmetric(self) -> None:
        for k, f in enumerate(self.factors):
            f = f.detach()
            scale = f.abs().max().clamp_min(torch.finfo(f.dtype).tiny)
            asym = float((f - f.mT).abs().max() / scale)
            if asym > 100 * torch.finfo(f.dtype).eps:
                raise ValueError(f"factors[{k}] is not symmetric (max |A - A^T| / max |A| = {asym:.2e}); "
                                 "eigh/solve/logdet need symmetric factors")

    def _compute_eigh(self) -> KroneckerEigh:
        self._check_symmetric()
        values, vectors = [], []
        for f in self.factors:
            f = f.detach()
            work = f.double() if f.dtype in _LOW_PRECISION else f  # factors are small: decompose in float64
            lam, Q = torch.linalg.eigh(work)
            values.append(lam.to(f.dtype))
            vectors.append(Q.to(f.dtype))
        return KroneckerEigh(tuple(values), tuple(vectors))

    @property
    def _eigh(self) -> KroneckerEigh:
        return self._cached("eigh", self._compute_eigh)

    def eigh(self) -> KroneckerEigh:  # type: ignore[override]
        """Factored eigen-decomposition (see :class:`KroneckerEigh`); cached, recomputed after in-place edits."""
        return self._eigh

    def _eigenvalues(self) -> torch.Tensor:
        return self._cached("eigenvalues", lambda: self._eigh.eigenvalues)  # (N,), Kronecker order

    def conditioning(self, shift: float | torch.Tensor = 0.0) -> KroneckerConditioning:
        """Condition estimate and singularity verdict of ``A + shift I`` (see :class:`KroneckerConditioning`)."""
        shift = check_shift(shift, "conditioning")
        return self._conditioning(self._eigenvalues() + (shift.detach() if isinstance(shift, torch.Tensor)
                                                         else shift), shift)

    def _conditioning(self, values: torch.Tensor, shift) -> KroneckerConditioning:
        eps = torch.finfo(self.dtype).eps
        # the factors were decomposed in float64 when they are low precision (see _compute_eigh)
        eps_eigh = torch.finfo(torch.float64).eps if self.dtype in _LOW_PRECISION else eps
        abs_values = values.detach().abs()
        smallest, largest = float(abs_values.min()), float(abs_values.max())  # two O(N) reductions, no more
        norms = [float(lam.abs().max()) for lam in self._eigh.factor_eigenvalues]
        shift_value = float(shift.detach()) if isinstance(shift, torch.Tensor) else float(shift)
        # First-order rounding bound on a computed lambda + s (module docstring): eigh's absolute error on each
        # factor carried through the product (``4`` covers eigh's constant in practice), d roundings of the
        # product in the working dtype (|lambda| <= |lambda + s| + |s|), and one of the shift.
        d = len(self.sizes)
        bound = (4 * eps_eigh * sum(self.sizes) * math.prod(norms) + d * eps * (smallest + abs(shift_value))
                 + eps * abs(shift_value))
        singular = not smallest > bound
        return KroneckerConditioning(condition_estimate=largest / smallest if smallest > 0 else math.inf,
                                     smallest_abs_eigenvalue=smallest, largest_abs_eigenvalue=largest,
                                     rounding_bound=bound, status=Status.BREAKDOWN if singular else Status.CONVERGED)

    def _shifted_eigenvalues(self, shift, what: str) -> torch.Tensor:
        shift = check_shift(shift, what)
        shift_value = float(shift.detach()) if isinstance(shift, torch.Tensor) else shift
        cached = self._cached("shifted", lambda: None)
        if cached is not None and cached[0] == shift_value:  # solve + logdet at one shift: checked once
            values, info = cached[1], cached[2]
        else:
            values = self._eigenvalues() + shift_value
            info = self._conditioning(values, shift_value)
            self._cache["shifted"] = (shift_value, values, info)
        if info.singular:
            raise ValueError(f"{what}: A + {shift_value:g} I is singular to working precision "
                             f"({self.dtype}): min |lambda + s| = {info.smallest_abs_eigenvalue:.3e} is below the "
                             f"rounding bound {info.rounding_bound:.3e} (condition estimate "
                             f"{info.condition_estimate:.3e}); choose another shift or use float64")
        if info.condition_estimate * torch.finfo(self.dtype).eps >= 1.0:
            warnings.warn(f"{what}: A + {shift_value:g} I has condition estimate {info.condition_estimate:.2e} in "
                          f"{self.dtype}: the result may have no correct digits; use float64 or a larger shift",
                          NumericalWarning, stacklevel=3)
        return values

    def cholesky_factors(self) -> tuple[torch.Tensor, ...]:
        """Lower-triangular ``L_k`` with ``A_k = L_k L_kᵀ`` for every factor, so ``A = ⊗ L_k ⊗ L_kᵀ``.

        ``(⊗ L_k) z`` colours white noise into a draw from ``N(0, A)``; ``solve(..., method="cholesky")``
        uses the same factors. Cached unless a factor requires grad (then built on the live factors so the
        result differentiates through torch's Cholesky backward). Raises ValueError naming the first factor
        that is not positive definite.
        """
        return self._cholesky_factors()

    def _cholesky_factors(self) -> tuple[torch.Tensor, ...]:
        def build():
            self._check_symmetric()
            chols = []
            for k, f in enumerate(self.factors):
                L, info = torch.linalg.cholesky_ex(f)
                if int(info) != 0:
                    raise ValueError(f"method='cholesky': factors[{k}] is not positive definite (Cholesky failed "
                                     f"at column {int(info)}); use method='eigh'")
                chols.append(L)
            return tuple(chols)
        # Built on the live factors, so the Cholesky route differentiates through torch's own backward.
        if any(f.requires_grad for f in self.factors):
            return build()
        return self._cached("cholesky", build)

    def _check_method(self, method: str, shift) -> None:
        if method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {method!r}")
        if method == "cholesky" and (isinstance(shift, torch.Tensor) or shift != 0.0):
            raise ValueError("method='cholesky' needs shift=0 (A + sI is not a Kronecker product); "
                             "use method='eigh' for a shift")

    # ---- solve / logdet ---------------------------------------------------------------------------------
    def solve(self, B: torch.Tensor, shift: float | torch.Tensor = 0.0, *, method: str = "eigh") -> torch.Tensor:
        """Solve ``(A_1 ⊗ ... ⊗ A_d + shift I) X = B`` exactly.

        Args:
            B: right-hand side (N,) or (N, K), finite, operator's dtype and device.
            shift: finite real scalar (number or 0-d tensor; gradients flow to a tensor shift).
            method: "eigh" (``Q (Λ + s)^{-1} Qᵀ B``, any symmetric nonsingular factors) or "cholesky"
                (per-factor Cholesky solves, SPD factors, shift 0).

        Raises ValueError when ``A + shift I`` is singular to working precision (see :meth:`conditioning`).
        Shapes: B (N,) or (N, K) -> same.
        """
        _check_finite_rhs(B)
        shift = check_shift(shift, "solve")
        self._check_method(method, shift)
        squeeze = B.ndim == 1
        B2 = self._check_rhs(B)
        if method == "cholesky":
            chols = self._cholesky_factors()
            X = _chol_apply_inverse(chols, B2)
        else:
            values = self._shifted_eigenvalues(shift, "solve")
            if isinstance(shift, torch.Tensor) and shift.dtype != self.dtype:
                raise ValueError(f"solve: shift tensor has dtype {shift.dtype}, operator {self.dtype}")
            X = _EigSolve.apply(self, self._eigh, values, B2, shift, *self.factors)
        return X[:, 0] if squeeze else X

    def _check_rhs(self, B: torch.Tensor) -> torch.Tensor:
        if B.is_complex():
            raise ValueError(f"right-hand side is complex ({B.dtype}); solve the real and imaginary parts apart")
        if B.ndim not in (1, 2) or B.shape[0] != self.shape[0]:
            raise ValueError(f"right-hand side of shape {tuple(B.shape)} does not match the operator "
                             f"{self.shape}; expected ({self.shape[0]},) or ({self.shape[0]}, K)")
        if B.dtype != self.dtype or B.device != self.device:
            raise ValueError(f"right-hand side is {B.dtype} on {B.device}, operator {self.dtype} on {self.device}")
        return B[:, None] if B.ndim == 1 else B

    def slogdet(self, shift: float | torch.Tensor = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
        """``(sign, log|det(A + shift I)|)`` for symmetric factors of any definiteness.

        The sign is the parity of the negative shifted eigenvalues; the product of two negative-definite
        factors is positive definite (sign +1). Raises ValueError when ``A + shift I`` is singular.
        """
        values = self._shifted_eigenvalues(shift, "slogdet")
        shift = check_shift(shift, "slogdet")
        negatives = int((values.detach() < 0).sum())
        sign = torch.tensor(-1.0 if negatives % 2 else 1.0, dtype=self.dtype, device=self.device)
        return sign, _EigLogdet.apply(self._eigh, values, shift, *self.factors)

    def logdet(self, shift: float | torch.Tensor = 0.0, *, method: str = "eigh") -> torch.Tensor:
        """``log det(A_1 ⊗ ... ⊗ A_d + shift I)`` of a positive-definite result.

        Without a shift it uses the closed form ``sum_k (N / n_k) log|det A_k|`` (so products of
        negative-definite factors are fine); with one, ``sum log(lambda + s)`` over the outer-product
        eigenvalues. Raises ValueError if ``A + shift I`` is not positive definite (use :meth:`slogdet`).
        ``method="cholesky"``: ``sum_k (N / n_k) 2 sum log diag L_k`` (SPD factors, shift 0).
        """
        shift = check_shift(shift, "logdet")
        self._check_method(method, shift)
        if method == "cholesky":
            n = self.shape[0]
            chols = self._cholesky_factors()
            return sum((n // L.shape[0]) * 2.0 * torch.log(torch.diagonal(L)).sum() for L in chols)
        values = self._shifted_eigenvalues(shift, "logdet")
        smallest = float(values.detach().min())
        if smallest <= 0:
            raise ValueError(f"logdet: A + {float(shift):g} I is not positive definite (smallest eigenvalue "
                             f"{smallest:.3g}); use slogdet() for the sign and log|det|")
        return _EigLogdet.apply(self._eigh, values, shift, *self.factors)


def _check_finite_rhs(B: torch.Tensor) -> None:
    """check_floating's contract at the cost of one reduction: the sum of finite entries is finite unless it
    overflows, so the entrywise test runs only when the sum is not finite (then it names NaN/Inf or passes)."""
    if not isinstance(B, torch.Tensor) or not (B.is_floating_point() or B.is_complex()):
        check_floating(B, "B")  # raises the standard message
    if not bool(torch.isfinite(B.detach().sum())):
        check_floating(B, "B")


def _chol_apply_inverse(chols: Sequence[torch.Tensor], B: torch.Tensor) -> torch.Tensor:
    """``(⊗ A_k)^{-1} B = ⊗ (L_k L_kᵀ)^{-1} B``: one triangular solve pair per mode. Shapes: (N, K) -> (N, K).

    Triangular solves, not ``cholesky_inverse`` followed by GEMMs: on a kernel factor with condition 1e10 the
    explicit inverse leaves a relative residual of ~1e-7, the solves ~1e-14 (backward stable), at about twice
    the cost of the GEMM route (both O(N sum n_k); measured 2 ms vs 4 ms at 256², float64, one thread).
    """
    sizes = [L.shape[0] for L in chols]
    K = B.shape[1]
    T = B.reshape(*sizes, K)
    for k, L in enumerate(chols):
        T = T.movedim(k, 0)
        shape = T.shape
        Y = torch.linalg.solve_triangular(L, T.reshape(shape[0], -1), upper=False)
        Y = torch.linalg.solve_triangular(L.mT, Y, upper=True)
        T = Y.reshape(shape).movedim(0, k)
    return T.reshape(B.shape)
