"""Krylov methods on matrix-free symmetric operators: CG, Lanczos, power iteration, SLQ spectral density.

Every routine takes a LinearOperator, a dense tensor or a block matvec callable ``(n, k) -> (n, k)`` (then
``n=`` gives the size) and works on the operator's device and dtype (float64 recommended for eigen-analysis).
Imports only ``sciml.core`` and ``sciml.linalg``.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable

import torch

from sciml.core import Result, Status, check_floating, check_generator, report_status
from sciml.linalg.hutchinson import Estimate, OperatorLike, random_probes, square_operator
from sciml.linalg.operator import LinearOperator, MatvecOperator, as_operator

WHICH = ("largest", "smallest", "both")


# ---- symmetry probe --------------------------------------------------------------------------------------------
_PROBE_SEED = 0x5EED  # a private generator: the probe never consumes the caller's random stream


def check_symmetric_probe(A: LinearOperator, routine: str) -> float:
    """Raise ValueError when ``A`` is clearly not symmetric, judged on one pair of random probes.

    Computes ``|u^T A v - v^T A u| / (||A u|| ||v|| + ||A v|| ||u||)`` with Gaussian ``u, v`` (one block matvec
    of 2 columns). For a symmetric operator this is rounding, ``<~ sqrt(n) eps``; the threshold is
    ``100 sqrt(n) eps`` (float32, n = 1e4: 1.2e-3), while a random non-symmetric matrix gives ``~ 1/sqrt(n)``.
    Returns the measured asymmetry.
    """
    size = A.shape[0]
    gen = torch.Generator(device=A.device).manual_seed(_PROBE_SEED)
    UV = torch.randn(size, 2, generator=gen, dtype=A.dtype, device=A.device)
    AUV = A._apply_unchecked(UV)
    cross = float(UV[:, 0] @ AUV[:, 1] - UV[:, 1] @ AUV[:, 0])
    norms = AUV.norm(dim=0) * UV.norm(dim=0).flip(0)
    denom = float(norms.sum())
    if not math.isfinite(cross) or not math.isfinite(denom):
        raise ValueError(f"{routine}: the operator returned NaN/Inf on a random probe; check its inputs")
    asym = abs(cross) / denom if denom > 0 else 0.0
    if asym > 100 * math.sqrt(size) * torch.finfo(A.dtype).eps:
        raise ValueError(f"{routine} needs a symmetric operator, but |u'Av - v'Au| / (||Au|| ||v|| + ||Av|| ||u||) "
                         f"= {asym:.2e} on a random probe (rounding allows "
                         f"{100 * math.sqrt(size) * torch.finfo(A.dtype).eps:.1e}); symmetrise it (A + A^T) / 2 or "
                         "pass check_symmetry=False if the asymmetry is known noise")
    return asym


# ---- results ---------------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class SolveResult(Result):
    """Solution of ``A x = b``. ``history[0]`` is the initial relative residual, one entry per iteration after.

    Shapes: x like b, (n,) or (n, k). ``residual_norm`` and ``history`` are the worst column's values.
    """

    x: torch.Tensor
    status: Status
    method: str
    n_iter: int
    residual_norm: float
    history: tuple[float, ...] = ()
    restarts: int = 0

    @property
    def converged(self) -> bool:
        return self.status is Status.CONVERGED


@dataclasses.dataclass(frozen=True)
class LanczosResult(Result):
    """Ritz pairs from Lanczos. Eigenvalues ascending; ``eigenvectors[:, i]`` belongs to ``eigenvalues[i]``.

    ``alpha``/``beta`` are the diagonal and off-diagonal of the tridiagonal ``T`` (a zero in ``beta`` marks a
    restart after an invariant-subspace breakdown). ``residual_norms[i] = ||A y_i - theta_i y_i||``, computed
    as ``|beta_m * s_{m,i}|`` (exact for Lanczos with full reorthogonalisation up to rounding).

    Shapes: eigenvalues (k,), eigenvectors (n, k), alpha (m,), beta (m - 1,), residual_norms (k,).
    """

    eigenvalues: torch.Tensor
    eigenvectors: torch.Tensor
    alpha: torch.Tensor
    beta: torch.Tensor
    num_iter: int
    residual_norms: torch.Tensor
    status: Status


@dataclasses.dataclass(frozen=True)
class PowerResult(Result):
    """Eigenpair of largest magnitude (the sign of ``eigenvalue`` is kept). Shapes: eigenvector (n,)."""

    eigenvalue: float
    eigenvector: torch.Tensor
    n_iter: int
    residual_norm: float
    status: Status


@dataclasses.dataclass(frozen=True)
class SpectralDensity(Result):
    """Stochastic Lanczos quadrature of the spectral measure ``(1/n) sum_i delta(t - lambda_i)``.

    Each probe row of ``nodes``/``weights`` is a Gauss quadrature rule (weights sum to 1); ``density`` is the
    Gaussian-smoothed average of the rules on ``grid`` (not renormalised, so it integrates to ~1 only when the
    grid covers every node by a few ``sigma``).

    Shapes: nodes (num_probes, m), weights (num_probes, m), grid (g,), density (g,).
    """

    nodes: torch.Tensor
    weights: torch.Tensor
    grid: torch.Tensor
    density: torch.Tensor
    sigma: float
    status: Status

    def expectation(self, f: Callable[[torch.Tensor], torch.Tensor]) -> Estimate:
        """Estimate ``tr(f(A)) / n`` (times n for the spectral sum) with its standard error over probes.

        ``f`` maps a tensor of nodes to a tensor of the same shape (e.g. ``torch.log``, ``lambda x: x``).
        """
        per_probe = (self.weights * f(self.nodes)).sum(1)  # (num_probes,)
        p = per_probe.shape[0]
        std = float(per_probe.std(correction=1)) if p > 1 else float("nan")
        return Estimate(mean=float(per_probe.mean()), stderr=std / math.sqrt(p), num_probes=p)


# ---- conjugate gradient ----------------------------------------------------------------------------------------
def conjugate_gradient(op: OperatorLike, b: torch.Tensor, *, n: int | None = None,
                       preconditioner: OperatorLike | str | None = None, x0: torch.Tensor | None = None,
                       rtol: float = 1e-10, atol: float = 0.0, max_iter: int | None = None,
                       on_failure: str = "warn", check_symmetry: bool = True) -> SolveResult:
    """Preconditioned conjugate gradient for symmetric positive-definite ``A x = b``, column-wise batched.

    Reference:
        Hestenes & Stiefel (1952); Saad, "Iterative Methods for Sparse Linear Systems" (2003), Algorithm 9.1
        (preconditioned CG).

    Differs from the reference:
        - all columns of ``b`` are solved at once with per-column ``alpha``/``beta`` (one block matvec per
          iteration); a column stops changing once ``||r|| <= max(rtol ||b||, atol)`` holds for it;
        - the recursive residual only steers the iteration: when it says "converged" the true residual
          ``b - A x`` is recomputed, and CG restarts from it (at most 3 times) when it is above the tolerance;
          CONVERGED always refers to the true residual (``residual_norm`` is the true one then);
        - ``p^T A p <= 0`` (or ``r^T M^{-1} r <= 0``) on an unconverged column stops with BREAKDOWN: the operator
          or preconditioner is not positive definite.

    Args:
        op: a symmetric positive-definite LinearOperator, dense tensor, or callable ``(n, k) -> (n, k)``.
        b: right-hand side, finite, of shape (n,) or (n, k); a callable operator takes b's dtype and device.
        n: size of a callable operator.
        preconditioner: applies ``M^{-1}`` (operator, dense matrix of ``M^{-1}``, or callable); SPD. The string
            ``"jacobi"`` uses ``M = diag(A)`` (see :func:`jacobi_preconditioner`).
        x0: initial guess of b's shape (default zeros).
        rtol, atol: finite, >= 0, not both 0: stop when every column has ``||b - A x|| <= max(rtol ||b||, atol)``.
        max_iter: iteration budget (default ``10 * n``).
        on_failure: "warn" (ConvergenceWarning), "raise" (RuntimeError) or "ignore" when not converged.
        check_symmetry: refuse an operator that is clearly not symmetric on a random probe (one extra block
            matvec of 2 columns; see :func:`check_symmetric_probe`).

    Returns:
        SolveResult with method "cg"; ``history`` holds the largest relative residual ``||r|| / ||b||`` over
        columns, starting with the initial one.

    Shapes: A (n, n); b, x0, x (n,) or (n, k).
    """
    check_floating(b, "b")
    if b.is_complex():
        raise ValueError(f"b must be real, got dtype {b.dtype}; solve the real and imaginary parts separately")
    A = square_operator(op, n, b.dtype, b.device)
    size = A.shape[0]
    if b.ndim not in (1, 2) or b.shape[0] != size:
        raise ValueError(f"b must have shape ({size},) or ({size}, k) for an operator of shape {A.shape}, "
                         f"got {tuple(b.shape)}")
    for name, value in (("rtol", rtol), ("atol", atol)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < math.inf:
            raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    if rtol == 0 and atol == 0:
        raise ValueError("rtol and atol are both 0: no residual can be certified; give rtol > 0 or atol > 0")
    max_iter = 10 * size if max_iter is None else max_iter
    if isinstance(max_iter, bool) or not isinstance(max_iter, int) or max_iter < 0:
        raise ValueError(f"max_iter must be a non-negative int, got {max_iter!r}")
    if on_failure not in ("warn", "raise", "ignore"):
        raise ValueError(f"on_failure must be 'warn', 'raise' or 'ignore', got {on_failure!r}")
    if check_symmetry:
        check_symmetric_probe(A, "conjugate_gradient")
    if isinstance(preconditioner, str):
        if preconditioner != "jacobi":
            raise ValueError(f"preconditioner must be an operator, a matrix, a callable, 'jacobi' or None, got "
                             f"{preconditioner!r}")
        M = jacobi_preconditioner(A)
    else:
        M = None if preconditioner is None else as_operator(preconditioner, n=size, dtype=b.dtype, device=b.device)
    B = b[:, None] if b.ndim == 1 else b  # (n, k)
    if x0 is None:
        X = torch.zeros_like(B)
    else:
        check_floating(x0, "x0")
        if x0.shape != b.shape or x0.dtype != b.dtype:
            raise ValueError(f"x0 must have b's shape {tuple(b.shape)} and dtype {b.dtype}, got "
                             f"{tuple(x0.shape)} {x0.dtype}")
        X = (x0[:, None] if x0.ndim == 1 else x0).clone()

    bnorm = B.norm(dim=0)  # (k,)
    threshold = torch.clamp(rtol * bnorm, min=atol)
    scale = torch.where(bnorm > 0, bnorm, torch.ones_like(bnorm))  # zero rhs columns: report absolute residuals
    R = B - A._apply_unchecked(X) if x0 is not None else B.clone()
    history: list[float] = []
    status, it, restarts = Status.MAX_ITER, 0, 0
    while True:
        X, R, rnorm, status, it = _cg_iterations(A, M, X, R, threshold, scale, it, max_iter, history)
        if status is not Status.CONVERGED:
            break
        # The recursive residual drifts from b - A x by ~ eps * sum_j |alpha_j| ||A p_j|| (float32: often
        # 1e5x above the reported one). Certify on the true residual; if it disagrees, restart from it.
        R = B - A._apply_unchecked(X)
        rnorm = R.norm(dim=0)
        if bool((rnorm <= threshold).all()):
            break
        status = Status.MAX_ITER
        if restarts == MAX_CG_RESTARTS or it >= max_iter:
            break
        restarts += 1
    if status in (Status.MAX_ITER, Status.BREAKDOWN):
        rnorm = (B - A._apply_unchecked(X)).norm(dim=0)  # the true residual, never the drifted recursive one
    residual = float(rnorm.max())
    report_status(status, "conjugate_gradient",
                  f"{it} iterations, {restarts} restarts, max true residual norm {residual:.3e} vs requested "
                  f"{float(threshold.max()):.3e} (in {b.dtype} the attainable relative residual is ~ "
                  f"{torch.finfo(b.dtype).eps:.1e} x cond(A))", on_failure)
    return SolveResult(x=X[:, 0] if b.ndim == 1 else X, status=status, method="cg", n_iter=it,
                       residual_norm=residual, history=tuple(history), restarts=restarts)


def jacobi_preconditioner(op: OperatorLike | torch.Tensor, *, diagonal: torch.Tensor | None = None) -> LinearOperator:
    """The Jacobi preconditioner ``M^{-1} = diag(A)^{-1}`` as an operator for :func:`conjugate_gradient`.

    Args:
        op: the SPD operator (its ``diagonal()`` is used: structured operators such as SparseOperator give it
            without densifying), or None when ``diagonal`` is given.
        diagonal: the diagonal of A directly (n,), e.g. the row sums of a transport plan in Sinkhorn-Newton.

    Raises ValueError when an entry of the diagonal is not finite and > 0 (A would not be positive definite).
    """
    if diagonal is None:
        if op is None:
            raise ValueError("jacobi_preconditioner needs an operator or its diagonal")
        A = op if isinstance(op, LinearOperator) else as_operator(op)
        diagonal = A.diagonal()
    check_floating(diagonal, "diagonal")
    if diagonal.ndim != 1:
        raise ValueError(f"diagonal must be a vector (n,), got shape {tuple(diagonal.shape)}")
    bad = ~(diagonal > 0)
    if bool(bad.any()):
        index = int(bad.nonzero()[0, 0])
        raise ValueError(f"the Jacobi preconditioner needs a positive diagonal; entry {index} is "
                         f"{float(diagonal[index]):.3e} (a positive-definite A has diag(A) > 0)")
    inverse = diagonal.reciprocal()[:, None]  # (n, 1): broadcasts over the k right-hand sides
    return MatvecOperator(lambda X: inverse * X, diagonal.shape[0], diagonal.dtype, diagonal.device)


MAX_CG_RESTARTS = 3  # restarts from the true residual before CG gives up (attainable accuracy reached)


def _column_norms(R: torch.Tensor) -> torch.Tensor:
    """``||R[:, j]||`` per column; one ``vecdot`` pass measured faster than ``norm(dim=0)`` on (n, 8)."""
    return torch.linalg.vecdot(R, R, dim=0).sqrt()


def _cg_iterations(A: LinearOperator, M: LinearOperator | None, X: torch.Tensor, R: torch.Tensor,
                   threshold: torch.Tensor, scale: torch.Tensor, it: int, max_iter: int,
                   history: list[float]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, Status, int]:
    """Batched PCG from ``(X, R)`` until every recursive residual is below ``threshold`` or the budget ends.

    Appends ``max ||r|| / ||b||`` to ``history`` (the starting value too). Shapes: X, R (n, k).
    """
    Z = R if M is None else M._apply_unchecked(R)
    P = Z.clone()
    X = X.clone()  # updated in place below; the caller's tensors are left alone
    R = R.clone()
    rz = (R * Z).sum(0)
    rnorm = _column_norms(R)
    history.append(float((rnorm / scale).max()))
    status = Status.MAX_ITER
    while True:
        if not bool(torch.isfinite(rnorm).all()):
            status = Status.NONFINITE
            break
        active = rnorm > threshold  # (k,); converged columns are frozen by alpha = beta = 0
        if not bool(active.any()):
            status = Status.CONVERGED
            break
        if it >= max_iter:
            break
        AP = A._apply_unchecked(P)
        pAp = torch.linalg.vecdot(P, AP, dim=0)
        if bool((active & ((pAp <= 0) | (rz <= 0))).any()):
            status = Status.BREAKDOWN
            break
        alpha = torch.where(active, rz / torch.where(active, pAp, 1.0), 0.0)
        # In-place fused updates: the (n, k) temporaries of ``X + alpha * P`` cost as much as the arithmetic.
        X.addcmul_(alpha.expand_as(P), P)
        R.addcmul_(alpha.expand_as(AP), AP, value=-1.0)
        Z = R if M is None else M._apply_unchecked(R)
        rz_new = torch.linalg.vecdot(R, Z, dim=0)
        beta = torch.where(active, rz_new / torch.where(active, rz, 1.0), 0.0)
        P = torch.addcmul(Z, P, beta.expand_as(P))  # Z + beta P in one pass
        rz = torch.where(active, rz_new, rz)
        # unpreconditioned: r'z = ||r||^2 already, which saves a pass over R
        rnorm = rz_new.clamp_min(0.0).sqrt() if M is None else _column_norms(R)
        it += 1
        history.append(float((rnorm / scale).max()))
    return X, R, rnorm, status, it


# ---- Lanczos ---------------------------------------------------------------------------------------------------
def _lanczos_block(A: LinearOperator, V: torch.Tensor, m: int, generator: torch.Generator | None,
                   restart: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``m`` Lanczos steps from each unit column of ``V``, all columns in one block matvec per step.

    Full reorthogonalisation by classical Gram-Schmidt applied twice ("CGS2"), which also removes the
    ``alpha q_j`` and ``beta q_{j-1}`` terms of the three-term recurrence. On an invariant-subspace breakdown
    (``beta_j <= n * eps * ||T||``) a column either restarts with a random vector orthogonal to its basis and
    ``beta_j = 0`` (``restart=True``, so repeated eigenvalues are found) or continues with zero vectors, which add
    zero-weight quadrature nodes (``restart=False``, used by SLQ).

    Returns alpha (p, m), beta (p, m - 1), the final residual coupling beta_m (p,), and Q (m, n, p).
    """
    size, p = V.shape
    eps = torch.finfo(V.dtype).eps
    Q = V.new_zeros(m, size, p)
    alpha, beta = V.new_zeros(m, p), V.new_zeros(max(m - 1, 0), p)
    anorm = V.new_zeros(p)  # running estimate of ||A|| from the entries of T
    Q[0] = V
    last = V.new_zeros(p)
    for j in range(m):
        W = A._apply_unchecked(Q[j])  # (n, p)
        alpha[j] = (Q[j] * W).sum(0)
        for _ in range(2):  # one CGS pass loses orthogonality when W nearly lies in span(Q); twice is enough
            W = W - torch.einsum("jnp,jp->np", Q[:j + 1], torch.einsum("jnp,np->jp", Q[:j + 1], W))
        b = W.norm(dim=0)  # (p,)
        anorm = torch.maximum(anorm, torch.maximum(alpha[j].abs(), b))
        if j == m - 1:
            last = b
            break
        broken = b <= size * eps * anorm
        Q[j + 1] = torch.where(broken, 0.0, W / torch.where(broken, 1.0, b))
        beta[j] = torch.where(broken, 0.0, b)
        if restart and bool(broken.any()):
            R = random_probes(size, p, "gaussian", V.dtype, V.device, generator)
            for _ in range(2):
                R = R - torch.einsum("jnp,jp->np", Q[:j + 1], torch.einsum("jnp,np->jp", Q[:j + 1], R))
            Q[j + 1] = torch.where(broken, R / R.norm(dim=0), Q[j + 1])
    return alpha.mT, beta.mT, last, Q


def _check_tol(value: float, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")


def _tridiagonal(alpha: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
    """Symmetric tridiagonal matrices from diagonals. Shapes: alpha (..., m), beta (..., m - 1) -> (..., m, m)."""
    return torch.diag_embed(alpha) + torch.diag_embed(beta, 1) + torch.diag_embed(beta, -1)


def lanczos(op: OperatorLike, n: int | None = None, k: int = 10, which: str = "largest",
            num_iter: int | None = None, generator: torch.Generator | None = None,
            v0: torch.Tensor | None = None, *, tol: float = 1e-6, on_failure: str = "warn",
            dtype: torch.dtype | None = None, device: torch.device | str | None = None,
            check_symmetry: bool = True, max_iter: int | None = None) -> LanczosResult:
    """Extreme eigenpairs of a symmetric operator by Lanczos with full reorthogonalisation.

    Reference:
        Lanczos (1950); Golub & Van Loan, "Matrix Computations" 4th ed., Alg. 10.1.1 with complete
        reorthogonalisation (Sec. 10.3.1); restart on breakdown as in PyHessian.

    Differs from the reference:
        - no implicit restarts (unlike ARPACK/``eigsh``): with ``num_iter=None`` the Krylov space grows until
          the requested pairs meet ``tol`` (checked at ``min(n, max(3k, 2k + 40))`` steps and then every
          ``max(10, k)`` steps) or ``max_iter`` steps are done. An unrestarted space needs the fewest matvecs
          (ARPACK's restarts trade matvecs for memory), at ``max_iter * n`` memory;
        - the reorthogonalisation is classical Gram-Schmidt applied twice as matrix products
          (``W -= Q (Q^T W)``, "CGS2"), which also removes the three-term recurrence's terms;
        - on an invariant-subspace breakdown (``beta ~ 0``, exact Ritz pairs so far) the iteration continues
          from a random vector orthogonal to the basis, with ``beta = 0`` in ``T``, instead of stopping. A
          single Krylov space holds only one vector per eigenspace, so stopping would silently return each
          repeated eigenvalue once (e.g. the top-2 of ``diag(5, 5, 1, ...)`` as ``[1, 5]``).

    Args:
        op: a symmetric LinearOperator, dense tensor, or callable ``(n, k) -> (n, k)`` (then pass ``n``).
        n: size of a callable operator.
        k: number of Ritz pairs to return, ``1 <= k <= num_iter``.
        which: "largest", "smallest", or "both" (``ceil(k/2)`` largest and ``floor(k/2)`` smallest, as
            ``scipy.sparse.linalg.eigsh(which="BE")``).
        num_iter: a fixed Krylov dimension m (no early stop); ``m = n`` is exact up to rounding. None: adaptive.
        generator: draws the Gaussian start vector (and restart vectors); on the operator's device.
        v0: start vector (n,) instead of a random one (restarts still use ``generator``).
        tol: CONVERGED when every returned pair has ``||A y - theta y|| <= tol * ||T||``.
        on_failure: "warn", "raise" or "ignore" when ``tol`` is not met (status MAX_ITER).
        dtype, device: of a callable operator (default float64 on the CPU; v0's when given).
        check_symmetry: refuse a clearly non-symmetric operator (:func:`check_symmetric_probe`).
        max_iter: largest Krylov dimension of the adaptive mode (default ``min(n, max(10 m_0, 300))``).

    Returns:
        LanczosResult (see its docstring); eigenvalues are ascending within the requested set.

    Shapes: eigenvectors (n, k); Q is (n, m) internally, m * n memory.
    """
    if v0 is not None:
        check_floating(v0, "v0")
        dtype, device = dtype or v0.dtype, device or v0.device
    A = square_operator(op, n, dtype, device)
    check_generator(generator, A.device)
    size = A.shape[0]
    _check_tol(tol, "tol")
    if on_failure not in ("warn", "raise", "ignore"):
        raise ValueError(f"on_failure must be 'warn', 'raise' or 'ignore', got {on_failure!r}")
    if which not in WHICH:
        raise ValueError(f"which must be one of {WHICH}, got {which!r}")
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= size:
        raise ValueError(f"k must be an int in [1, n={size}], got {k!r}")
    first_check = min(size, max(3 * k, 2 * k + 40)) if num_iter is None else num_iter
    if isinstance(first_check, bool) or not isinstance(first_check, int) or not k <= first_check <= size:
        raise ValueError(f"num_iter must be an int in [k={k}, n={size}], got {num_iter!r}")
    if num_iter is not None:
        m_max = num_iter
    else:
        m_max = min(size, max(10 * first_check, 300)) if max_iter is None else max_iter
        if isinstance(m_max, bool) or not isinstance(m_max, int) or not first_check <= m_max <= size:
            raise ValueError(f"max_iter must be an int in [{first_check}, n={size}], got {max_iter!r}")
    if v0 is None:
        v = random_probes(size, 1, "gaussian", A.dtype, A.device, generator)[:, 0]
    else:
        if v0.shape != (size,):
            raise ValueError(f"v0 must have shape ({size},), got {tuple(v0.shape)}")
        v = v0.to(A.dtype)
    if float(v.norm()) == 0.0:
        raise ValueError("v0 must be non-zero")
    if check_symmetry:
        check_symmetric_probe(A, "lanczos")

    n_small = {"largest": 0, "smallest": k, "both": k // 2}[which]
    check_every = max(10, k)
    # Basis vectors as contiguous rows (capacity, n): the operator sees contiguous vectors, and the projections
    # are row-major GEMVs. Grown by doubling up to m_max.
    Q = v.new_zeros(min(m_max, first_check), size)
    Q[0] = v / v.norm()
    alpha, beta = [], []
    anorm = 0.0
    eps = torch.finfo(A.dtype).eps
    status, m = Status.MAX_ITER, 0
    theta = S = residuals = None
    tnorm = 0.0
    for j in range(m_max):
        q = Q[j]
        w = A._apply_unchecked(q)  # (n,)
        a_j = float(q @ w)
        basis = Q[:j + 1]  # (j + 1, n)
        for _ in range(2):  # CGS2 as two GEMV pairs: one pass loses orthogonality when w nearly lies in span(Q)
            w = w - basis.mT @ (basis @ w)
        b_j = float(w.norm())
        alpha.append(a_j)
        anorm = max(anorm, abs(a_j), b_j)
        m = j + 1
        if not (math.isfinite(a_j) and math.isfinite(b_j)):
            status = Status.NONFINITE
            break
        if m == m_max or (m >= first_check and (m - first_check) % check_every == 0):
            theta, S, residuals, tnorm = _ritz(alpha, beta, b_j, k, n_small, A.dtype, A.device)
            if bool((residuals <= tol * tnorm).all()):
                status = Status.CONVERGED
                break
            if m == m_max:
                break
        if m == Q.shape[0]:  # grow the basis (amortised doubling, capped at m_max)
            Q = torch.cat([Q, Q.new_zeros(min(m_max, 2 * m) - m, size)], 0)
        if b_j <= size * eps * anorm:  # invariant subspace: continue from a random orthogonal direction
            r = random_probes(size, 1, "gaussian", A.dtype, A.device, generator)[:, 0]
            for _ in range(2):
                r = r - basis.mT @ (basis @ r)
            Q[j + 1] = r / r.norm()
            beta.append(0.0)
        else:
            Q[j + 1] = w / b_j
            beta.append(b_j)
    alpha_t = torch.tensor(alpha, dtype=A.dtype, device=A.device)
    beta_t = torch.tensor(beta[:m - 1], dtype=A.dtype, device=A.device)
    if theta is None or status is Status.NONFINITE:
        theta = alpha_t.new_full((k,), float("nan"))
        S = alpha_t.new_zeros(m, k)
        residuals = alpha_t.new_full((k,), float("nan"))
    report_status(status, "lanczos", f"num_iter={m}, worst Ritz residual {float(residuals.max()):.3e} "
                  f"vs tol*||T|| = {tol * tnorm:.3e}; raise num_iter / max_iter", on_failure)
    return LanczosResult(eigenvalues=theta, eigenvectors=Q[:m].mT @ S, alpha=alpha_t, beta=beta_t, num_iter=m,
                         residual_norms=residuals, status=status)


def _ritz(alpha: list[float], beta: list[float], last: float, k: int, n_small: int, dtype: torch.dtype,
          device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, float]:
    """Ritz values/vectors of T_m for the requested ends, their residuals ``|beta_m s_{m,i}|`` and ``||T||``.

    Shapes: theta (k,), S (m, k), residuals (k,).
    """
    m = len(alpha)
    a = torch.tensor(alpha, dtype=dtype, device=device)
    b = torch.tensor(beta[:m - 1], dtype=dtype, device=device)
    theta, S = torch.linalg.eigh(_tridiagonal(a, b))  # ascending; (m,), (m, m)
    idx = torch.cat([torch.arange(n_small), torch.arange(m - (k - n_small), m)]).to(device)
    theta, S = theta[idx], S[:, idx]
    residuals = (last * S[-1]).abs()
    tnorm = max(float(a.abs().max()), float(b.abs().max()) if m > 1 else 0.0, abs(last))
    return theta, S, residuals, tnorm


# ---- power iteration -------------------------------------------------------------------------------------------
def power_iteration(op: OperatorLike, n: int | None = None, max_iter: int = 1000, tol: float = 1e-10,
                    generator: torch.Generator | None = None, *, v0: torch.Tensor | None = None,
                    on_failure: str = "warn", dtype: torch.dtype | None = None,
                    device: torch.device | str | None = None, check_symmetry: bool = True) -> PowerResult:
    """The eigenpair of largest |eigenvalue| of a symmetric operator by power iteration.

    Reference:
        Golub & Van Loan, "Matrix Computations" 4th ed., Sec. 7.3.1. Converges at rate ``|lambda_2 / lambda_1|``.

    Differs from PyHessian's version: the stopping test is the eigen-residual
    ``||A v - theta v|| <= tol * |theta|`` (theta the Rayleigh quotient), not the relative change of theta, so a
    stall is not mistaken for convergence. A dominant negative eigenvalue is returned with its sign; when
    ``lambda`` and ``-lambda`` are both dominant the iteration cannot converge (MAX_ITER).

    Args:
        op, n, generator, dtype, device: as in :func:`lanczos`.
        max_iter: matvec budget.
        tol: relative eigen-residual tolerance.
        v0: start vector (n,) (default Gaussian from ``generator``).
        on_failure: "warn", "raise" or "ignore" when not converged.

    Returns:
        PowerResult with the Rayleigh quotient, a unit eigenvector, iterations and final residual.

    Shapes: eigenvector (n,).
    """
    if v0 is not None:
        check_floating(v0, "v0")
        dtype, device = dtype or v0.dtype, device or v0.device
    A = square_operator(op, n, dtype, device)
    check_generator(generator, A.device)
    if not isinstance(max_iter, int) or max_iter < 1:
        raise ValueError(f"max_iter must be a positive int, got {max_iter!r}")
    _check_tol(tol, "tol")
    if on_failure not in ("warn", "raise", "ignore"):
        raise ValueError(f"on_failure must be 'warn', 'raise' or 'ignore', got {on_failure!r}")
    size = A.shape[0]
    if v0 is None:
        v = random_probes(size, 1, "gaussian", A.dtype, A.device, generator)[:, 0]
    elif v0.shape != (size,) or float(v0.norm()) == 0.0:
        raise ValueError(f"v0 must be a non-zero vector of shape ({size},), got shape {tuple(v0.shape)}")
    else:
        v = v0.to(A.dtype)
    if check_symmetry:
        check_symmetric_probe(A, "power_iteration")
    v = v / v.norm()
    status, theta, res = Status.MAX_ITER, float("nan"), float("nan")
    for it in range(1, max_iter + 1):
        w = A._apply_unchecked(v)
        theta = float(v @ w)
        res = float((w - theta * v).norm())
        if not (math.isfinite(theta) and math.isfinite(res)):
            status = Status.NONFINITE
            break
        if res <= tol * abs(theta):
            status = Status.CONVERGED
            break
        wnorm = w.norm()
        if float(wnorm) == 0.0:  # v lies in the null space: theta = 0 is an exact eigenvalue
            status = Status.CONVERGED
            break
        v = w / wnorm
    report_status(status, "power_iteration", f"{it} iterations, residual {res:.3e}", on_failure)
    return PowerResult(eigenvalue=theta, eigenvector=v, n_iter=it, residual_norm=res, status=status)


# ---- stochastic Lanczos quadrature -----------------------------------------------------------------------------
def slq_density(op: OperatorLike, n: int | None = None, num_probes: int = 10, num_iter: int = 64,
                generator: torch.Generator | None = None, grid: torch.Tensor | int | None = None,
                sigma: float | None = None, *, dtype: torch.dtype | None = None,
                device: torch.device | str | None = None, check_symmetry: bool = True) -> SpectralDensity:
    """Spectral density of a symmetric operator by stochastic Lanczos quadrature (SLQ).

    Reference:
        Ubaru, Chen, Saad, "Fast estimation of tr(f(A)) via stochastic Lanczos quadrature", SIMAX 2017;
        Ghorbani, Krishnan, Xiao, "An investigation into neural net optimization via Hessian eigenvalue
        density", ICML 2019 (arXiv 1901.10159), Sec. 3. For a unit probe q, m Lanczos steps give the Gauss
        rule with nodes = Ritz values theta_i and weights = (first component of the i-th eigenvector of T)^2,
        and ``q^T f(A) q ~ sum_i w_i f(theta_i)``; averaging over probes estimates ``tr(f(A)) / n``.

    Differs from the reference:
        - probes are normalised Rademacher vectors, all run together (one block matvec per Lanczos step);
        - a probe whose Krylov space becomes invariant continues with zero vectors (zero-weight nodes)
          rather than restarting, which leaves its quadrature rule exact;
        - default smoothing ``sigma = sqrt(1e-5 * max(1, span))`` (PyHessian/LLA kernel variance), but at
          least two grid spacings so the density is resolved; default grid = 10000 points over
          ``[min node - 5 sigma, max node + 5 sigma]``; the density is not renormalised.

    Args:
        op: a symmetric LinearOperator, dense tensor, or callable ``(n, k) -> (n, k)`` (then pass ``n``).
        n: size of a callable operator.
        num_probes: number of random start vectors (>= 1; >= 2 for a standard error in ``expectation``).
        num_iter: Lanczos steps per probe (clipped to n).
        generator: draws the probes; on the operator's device.
        grid: points at which to evaluate the density (1-D tensor), or their number (default 10000).
        sigma: width of the Gaussian kernel.
        dtype, device: of a callable operator (default float64 on the CPU).

    Returns:
        SpectralDensity with per-probe nodes/weights, the grid, the density and sigma.

    Shapes: nodes, weights (num_probes, m) with m = min(num_iter, n); grid, density (g,).
    """
    A = square_operator(op, n, dtype, device)
    size = A.shape[0]
    if not isinstance(num_probes, int) or num_probes < 1:
        raise ValueError(f"num_probes must be a positive int, got {num_probes!r}")
    if not isinstance(num_iter, int) or num_iter < 1:
        raise ValueError(f"num_iter must be a positive int, got {num_iter!r}")
    if sigma is not None and not 0 < sigma < math.inf:
        raise ValueError(f"sigma must be finite and > 0, got {sigma}")
    if check_symmetry:
        check_symmetric_probe(A, "slq_density")
    m = min(num_iter, size)
    Z = random_probes(size, num_probes, "rademacher", A.dtype, A.device, generator) / math.sqrt(size)  # unit
    alpha, beta, _, _ = _lanczos_block(A, Z, m, generator, restart=False)
    theta, S = torch.linalg.eigh(_tridiagonal(alpha, beta))  # (p, m), (p, m, m)
    weights = S[:, 0, :] ** 2  # (p, m): squared first components
    finite = bool(torch.isfinite(theta).all())
    status = Status.CONVERGED if finite else Status.NONFINITE
    report_status(status, "slq_density", "non-finite Lanczos coefficients")

    if isinstance(grid, torch.Tensor):
        check_floating(grid, "grid")
        if grid.ndim != 1:
            raise ValueError(f"grid must be 1-D, got shape {tuple(grid.shape)}")
        points = grid.to(dtype=A.dtype, device=A.device)
    else:
        num = 10_000 if grid is None else grid
        if not isinstance(num, int) or num < 2:
            raise ValueError(f"grid must be a 1-D tensor or an int >= 2, got {grid!r}")
        live = theta[weights > 1e-12 * weights.max()] if finite else theta.new_zeros(1)  # ignore padding nodes
        lo, hi = float(live.min()), float(live.max())
        if sigma is None:
            span = hi - lo
            sigma = max(math.sqrt(1e-5 * max(1.0, span)), 2 * (span + 1e-12) / (num - 1))
        points = torch.linspace(lo - 5 * sigma, hi + 5 * sigma, num, dtype=A.dtype, device=A.device)
    if sigma is None:
        span = float(points[-1] - points[0])
        sigma = math.sqrt(1e-5 * max(1.0, span))
    # (g, p*m) kernel matrix; a Gaussian of unit mass at each node, scaled by its weight, averaged over probes
    kernel = torch.exp(-0.5 * ((points[:, None] - theta.reshape(1, -1)) / sigma) ** 2)
    kernel = kernel / (sigma * math.sqrt(2 * math.pi))
    density = kernel @ weights.reshape(-1) / num_probes
    return SpectralDensity(nodes=theta, weights=weights, grid=points, density=density, sigma=float(sigma),
                           status=status)
