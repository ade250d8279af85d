"""Estimators on any symmetric operator (curvature operators, ``sciml.linalg`` operators, dense matrices).

Built on ``sciml.linalg`` (probes, Hutch++, power iteration, the SLQ Lanczos rules) and adding what the
curvature papers need beyond it (spec curvature.md A.3):

- :func:`hutchinson_trace` with stopping on the relative standard error (and one-probe use);
- :func:`hutchinson_diagonal` that also accepts one probe (AdaHessian / Sophia-H);
- :func:`top_eigenvalues` by thick-restarted Lanczos with full reorthogonalisation (largest or smallest k,
  CONVERGED only on the true residuals ``||A y - theta y||``) or by power iteration with deflation (largest
  MAGNITUDE: a dominant negative eigenvalue is returned with its sign);
- :func:`spectral_density` with PyHessian's grid and kernel (10000 bins over the mean extreme nodes +- 0.01,
  kernel variance ``1e-5 max(1, range)``, renormalised) and spectral sums ``tr f(A)``;
- :func:`ggn_gram_eigenvalues` / :func:`batch_ggn_eigenvalues`: the batch-GGN spectrum from the small Gram
  matrix (spec B.2).

Every estimator takes a ``torch.Generator`` (None = global RNG) and returns a frozen result with a ``status``.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable

import torch
from torch import nn

from sciml.core import Result, Status, check_generator, report_status
from sciml.curvature._problem import CurvatureProblem, ParamsLike
from sciml.curvature.functional import per_sample_jacobians
from sciml.curvature.losses import output_hessian_blocks
from sciml.linalg import DiagonalEstimate, Estimate, LinearOperator, MatvecOperator, power_iteration, slq_density
from sciml.linalg import hutchpp_trace as _linalg_hutchpp
from sciml.linalg.hutchinson import random_probes, square_operator

OperatorLike = LinearOperator | torch.Tensor
WHICH = ("largest", "smallest")


def _count(value: int, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return value


# ---- trace and diagonal ----------------------------------------------------------------------------------------
def hutchinson_trace(op: OperatorLike, num_probes: int = 100, generator: torch.Generator | None = None, *,
                     distribution: str = "rademacher", rtol: float | None = None, min_probes: int = 10,
                     block_size: int = 10, on_failure: str = "warn") -> Estimate:
    """Hutchinson's ``tr(A) ~ mean_k z_k^T A z_k`` with its standard error, optionally stopping early.

    Reference: Hutchinson (1990); stopping rule of spec A.3(a): stop once ``stderr / |mean| <= rtol`` with at
    least ``min_probes`` probes (PyHessian instead stops on the relative change of the running mean, which a
    stall satisfies). Per-probe variance (Rademacher) ``2 (||A||_F^2 - sum_i A_ii^2)``.

    Args:
        op: a symmetric operator or dense matrix.
        num_probes: probe budget (>= 1; with one probe ``stderr`` is ``inf``).
        generator: source of the probes (on the operator's device).
        distribution: "rademacher" (default, never worse) or "gaussian".
        rtol: stop on relative standard error (None: use all ``num_probes``). Not met -> status MAX_ITER.
        min_probes: smallest sample before the rtol test (>= 2).
        block_size: probes applied per operator call when ``rtol`` is set (one block of all otherwise).
        on_failure: "warn", "raise" or "ignore" when ``rtol`` is not met.

    Returns: ``Estimate(mean, stderr, num_probes, status)``.
    """
    A = square_operator(op)
    _count(num_probes, "num_probes")
    _count(min_probes, "min_probes", 2)
    _count(block_size, "block_size")
    if rtol is not None and not rtol > 0:
        raise ValueError(f"rtol must be > 0 or None, got {rtol}")
    step = num_probes if rtol is None else block_size
    samples = torch.empty(0, dtype=A.dtype, device=A.device)
    status = Status.CONVERGED if rtol is None else Status.MAX_ITER
    while samples.shape[0] < num_probes:
        p = min(step, num_probes - samples.shape[0])
        Z = random_probes(A.shape[0], p, distribution, A.dtype, A.device, generator)  # (n, p)
        samples = torch.cat([samples, (Z * (A @ Z)).sum(0)])
        if rtol is not None and samples.shape[0] >= min_probes:
            mean, err = _mean_stderr(samples)
            if err <= rtol * abs(mean):
                status = Status.CONVERGED
                break
    mean, err = _mean_stderr(samples)
    if not math.isfinite(mean):
        status = Status.NONFINITE
    report_status(status, "hutchinson_trace", f"{samples.shape[0]} probes, relative stderr "
                  f"{err / max(abs(mean), 1e-300):.2e} vs rtol {rtol}", on_failure)
    return Estimate(mean=mean, stderr=err, num_probes=int(samples.shape[0]), status=status)


def _mean_stderr(samples: torch.Tensor) -> tuple[float, float]:
    p = samples.shape[0]
    err = float(samples.std(correction=1)) / math.sqrt(p) if p > 1 else math.inf
    return float(samples.mean()), err


def hutchpp_trace(op: OperatorLike, num_matvecs: int = 102, generator: torch.Generator | None = None) -> Estimate:
    """Hutch++ (Meyer et al. 2021): exact trace on a sketched top subspace plus Hutchinson on the rest.

    Lower variance than Hutchinson when a few eigenvalues dominate (the NN-Hessian outlier regime). Delegates to
    :func:`sciml.linalg.hutchpp_trace` (see it for the split of ``num_matvecs >= 5``).
    """
    return _linalg_hutchpp(square_operator(op), num_matvecs=_count(num_matvecs, "num_matvecs", 5),
                           generator=generator)


def hutchinson_diagonal(op: OperatorLike, num_probes: int = 100, generator: torch.Generator | None = None, *,
                        block_size: int | None = None) -> DiagonalEstimate:
    """``diag(A) ~ mean_k z_k * (A z_k)``, Rademacher z (Bekas, Kokiopoulou, Saad 2007).

    Entry i has per-probe variance ``sum_{j != i} A_ij^2`` (exact for a diagonal A). One probe is allowed
    (AdaHessian / Sophia-H use one and smooth over steps); its ``stderr`` is ``inf``.

    Shapes: mean (n,), stderr (n,).
    """
    A = square_operator(op)
    _count(num_probes, "num_probes")
    step = num_probes if block_size is None else _count(block_size, "block_size")
    total = torch.zeros(A.shape[0], dtype=A.dtype, device=A.device)
    total_sq = torch.zeros_like(total)
    for start in range(0, num_probes, step):
        Z = random_probes(A.shape[0], min(step, num_probes - start), "rademacher", A.dtype, A.device, generator)
        S = Z * (A @ Z)  # (n, p)
        total += S.sum(1)
        total_sq += (S * S).sum(1)
    mean = total / num_probes
    if num_probes > 1:
        var = (total_sq - num_probes * mean * mean).clamp_min(0) / (num_probes - 1)
        stderr = (var / num_probes).sqrt()
    else:
        stderr = torch.full_like(mean, math.inf)
    status = Status.CONVERGED if bool(torch.isfinite(mean).all()) else Status.NONFINITE
    report_status(status, "hutchinson_diagonal", "non-finite entries in z * (A z)")
    return DiagonalEstimate(mean=mean, stderr=stderr, num_probes=num_probes, status=status)


# ---- eigenpairs ------------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class EigenResult(Result):
    """Eigenpairs of a symmetric operator.

    ``eigenvalues`` are ordered from the most wanted: descending for "largest", ascending for "smallest", in the
    order found for power iteration (decreasing magnitude). ``residual_norms[i] = ||A y_i - theta_i y_i||``
    computed from true products (not the Lanczos estimate).

    Shapes: eigenvalues (k,), eigenvectors (n, k), residual_norms (k,).
    """

    eigenvalues: torch.Tensor
    eigenvectors: torch.Tensor
    residual_norms: torch.Tensor
    num_matvecs: int
    method: str
    which: str
    status: Status


def _orthogonalise(W: torch.Tensor, V: torch.Tensor) -> torch.Tensor:
    """Remove span(V) from the columns of W by classical Gram-Schmidt applied twice (CGS2)."""
    for _ in range(2):
        W = W - V @ (V.mT @ W)
    return W


def _lanczos_thick_restart(A: LinearOperator, k: int, which: str, m: int, max_restarts: int, tol: float,
                           generator: torch.Generator | None, v0: torch.Tensor | None) -> EigenResult:
    """Thick-restarted Lanczos with full reorthogonalisation (Wu & Simon, SIMAX 22, 2000).

    The basis V (n, m) and its images W = A V are kept; Ritz pairs come from ``V^T W`` (exact Rayleigh-Ritz, so
    a restart need not keep T tridiagonal) and their residuals ``||W s - theta V s||`` are true residuals. They
    are checked after every step once the basis holds ``k`` vectors, so an easy problem stops early. A restart
    keeps ``k + max(k, 10)`` wanted Ritz vectors plus the next Lanczos direction, which preserves the Krylov
    property. An invariant subspace (the new direction vanishes) continues from a random vector orthogonal to V,
    so repeated eigenvalues are found.
    """
    n = A.shape[0]
    eps = torch.finfo(A.dtype).eps
    V = torch.zeros(n, m, dtype=A.dtype, device=A.device)
    W = torch.zeros_like(V)
    v = random_probes(n, 1, "gaussian", A.dtype, A.device, generator)[:, 0] if v0 is None else v0.to(A.dtype)
    if float(v.norm()) == 0.0:
        raise ValueError("v0 must be non-zero")
    V[:, 0] = v / v.norm()
    j, matvecs, cycle, keep = 0, 0, 0, min(m - 1, k + max(k, 10))
    status = Status.MAX_ITER

    def ritz(size: int):
        Hm = V[:, :size].mT @ W[:, :size]
        theta, S = torch.linalg.eigh(0.5 * (Hm + Hm.mT))  # ascending
        if which == "largest":
            theta, S = theta.flip(0), S.flip(1)
        Y, AY = V[:, :size] @ S[:, :k], W[:, :size] @ S[:, :k]
        return theta, S, Y, (AY - Y * theta[:k]).norm(dim=0)

    while True:
        W[:, j] = A @ V[:, j]
        matvecs += 1
        j += 1
        if j >= k:
            theta, S, Y, residuals = ritz(j)
            anorm = float(theta.abs().max())
            if not bool(torch.isfinite(theta).all()):
                status = Status.NONFINITE
                break
            if bool((residuals <= tol * max(anorm, 1e-300)).all()) or j == n:
                status = Status.CONVERGED
                break
        nxt = _orthogonalise(W[:, j - 1:j], V[:, :j])[:, 0]  # the next Lanczos direction
        if float(nxt.norm()) <= n * eps * max(float(W[:, :j].norm(dim=0).max()), 1e-300):
            nxt = _orthogonalise(random_probes(n, 1, "gaussian", A.dtype, A.device, generator), V[:, :j])[:, 0]
        if j == m:  # thick restart
            if cycle == max_restarts:
                break
            cycle += 1
            V[:, :keep], W[:, :keep] = V @ S[:, :keep], W @ S[:, :keep]
            j = keep
        V[:, j] = nxt / nxt.norm()
    report_status(status, "top_eigenvalues(lanczos)", f"{matvecs} matvecs, worst residual "
                  f"{float(residuals.max()):.3e} vs tol*||A|| = {tol * anorm:.3e}; raise max_restarts or num_iter")
    return EigenResult(eigenvalues=theta[:k], eigenvectors=Y, residual_norms=residuals, num_matvecs=matvecs,
                       method="lanczos", which=which, status=status)


def _power_deflation(A: LinearOperator, k: int, max_iter: int, tol: float,
                     generator: torch.Generator | None) -> EigenResult:
    """k eigenpairs of largest magnitude by power iteration, deflating the ones found by projection."""
    n = A.shape[0]
    U = torch.zeros(n, 0, dtype=A.dtype, device=A.device)
    values, statuses, matvecs = [], [], 0
    for _ in range(k):
        basis = U

        def deflated(X: torch.Tensor, basis: torch.Tensor = basis) -> torch.Tensor:
            X = X - basis @ (basis.mT @ X)
            AX = A @ X
            return AX - basis @ (basis.mT @ AX)
        start = random_probes(n, 1, "gaussian", A.dtype, A.device, generator)[:, 0]
        start = start - U @ (U.mT @ start)
        res = power_iteration(MatvecOperator(deflated, n, A.dtype, A.device), max_iter=max_iter, tol=tol,
                              v0=start, on_failure="ignore")
        matvecs += res.n_iter
        vec = res.eigenvector - U @ (U.mT @ res.eigenvector)
        U = torch.cat([U, (vec / vec.norm())[:, None]], 1)
        values.append(res.eigenvalue)
        statuses.append(res.status)
    AU = A @ U
    lam = torch.tensor(values, dtype=A.dtype, device=A.device)
    residuals = (AU - U * lam).norm(dim=0)
    status = next((s for s in statuses if s is not Status.CONVERGED), Status.CONVERGED)
    report_status(status, "top_eigenvalues(power)", f"worst residual {float(residuals.max()):.3e}; raise max_iter "
                  "(power iteration converges at rate |lambda_2/lambda_1|; prefer method='lanczos')")
    return EigenResult(eigenvalues=lam, eigenvectors=U, residual_norms=residuals, num_matvecs=matvecs + 1,
                       method="power", which="magnitude", status=status)


def top_eigenvalues(op: OperatorLike, k: int = 1, generator: torch.Generator | None = None, *,
                    which: str = "largest", method: str = "lanczos", num_iter: int | None = None,
                    max_restarts: int = 100, max_iter: int = 1000, tol: float = 1e-8,
                    v0: torch.Tensor | None = None) -> EigenResult:
    """The k extreme eigenpairs of a symmetric operator.

    Methods:
        - "lanczos" (default): thick-restarted Lanczos with full reorthogonalisation; ``which`` = "largest"
          (algebraic, ARPACK's "LA") or "smallest" ("SA"). Converged when every pair has
          ``||A y - theta y|| <= tol * ||A||`` (||A|| estimated by the largest |Ritz value|).
        - "power": power iteration with deflation (PyHessian's ``eigenvalues``). It returns the eigenvalues of
          LARGEST MAGNITUDE with their signs (e.g. a dominant negative Hessian eigenvalue early in training),
          not the algebraically largest; ``which`` is ignored. Converged when ``||A v - theta v|| <= tol |theta|``.

    Args:
        op: symmetric operator (n, n) or dense matrix.
        k: number of pairs, 1 <= k <= n.
        generator: start (and restart) vectors.
        num_iter: Lanczos basis size per cycle (default ``min(n, max(2k + 20, 3k))``).
        max_restarts: Lanczos restart cycles; max_iter: power iterations per pair.
        tol: relative residual tolerance.
        v0: Lanczos start vector (n,).

    Returns: :class:`EigenResult`.
    """
    A = square_operator(op)
    check_generator(generator, A.device)
    n = A.shape[0]
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= n:
        raise ValueError(f"k must be an int in [1, P={n}] (P = operator size), got {k!r}")
    if not tol > 0:
        raise ValueError(f"tol must be > 0, got {tol}")
    if method == "power":
        if which != "largest":
            raise ValueError("method='power' returns the largest-MAGNITUDE eigenvalues; for which='smallest' use "
                             "method='lanczos'")
        return _power_deflation(A, k, _count(max_iter, "max_iter"), tol, generator)
    if method != "lanczos":
        raise ValueError(f"method must be 'lanczos' or 'power', got {method!r}")
    if which not in WHICH:
        raise ValueError(f"which must be one of {WHICH}, got {which!r}")
    m = min(n, max(2 * k + 20, 3 * k)) if num_iter is None else num_iter
    if isinstance(m, bool) or not isinstance(m, int) or not k < m <= n and not (k == m == n):
        raise ValueError(f"num_iter must be an int in (k={k}, n={n}], got {num_iter!r}")
    if v0 is not None and (v0.shape != (n,)):
        raise ValueError(f"v0 must have shape ({n},), got {tuple(v0.shape)}")
    return _lanczos_thick_restart(A, k, which, m, _count(max_restarts, "max_restarts", 0), tol, generator, v0)


def bottom_eigenvalues(op: OperatorLike, k: int = 1, generator: torch.Generator | None = None,
                       **kwargs) -> EigenResult:
    """The k algebraically smallest eigenpairs (ascending): ``top_eigenvalues(..., which="smallest")``."""
    return top_eigenvalues(op, k, generator, which="smallest", **kwargs)


# ---- spectral density ------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class DensityResult(Result):
    """SLQ spectral density of an (n, n) operator (measure ``(1/n) sum_i delta(t - lambda_i)``).

    ``nodes[l]``/``weights[l]`` are probe l's Gauss rule (weights sum to 1); ``density`` is their Gaussian-smoothed
    average on ``grid``, renormalised to integrate to 1 on the grid (PyHessian). ``sigma2`` is the kernel variance.

    Shapes: nodes, weights (num_probes, m); grid, density (num_bins,).
    """

    grid: torch.Tensor
    density: torch.Tensor
    nodes: torch.Tensor
    weights: torch.Tensor
    sigma2: float
    num_steps: int
    num_probes: int
    dimension: int
    status: Status

    def spectral_sum(self, f: Callable[[torch.Tensor], torch.Tensor]) -> Estimate:
        """``tr f(A) ~ n * mean_l sum_k tau_k f(theta_k)`` with the standard error over probes."""
        per_probe = self.dimension * (self.weights * f(self.nodes)).sum(1)
        mean, err = _mean_stderr(per_probe)
        status = Status.CONVERGED if math.isfinite(mean) else Status.NONFINITE
        return Estimate(mean=mean, stderr=err, num_probes=self.num_probes, status=status)

    def trace(self) -> Estimate:
        """``tr(A)``: identical in distribution to Hutchinson with normalised-Rademacher probes (spec A.3a)."""
        return self.spectral_sum(lambda t: t)


def spectral_density(op: OperatorLike, num_steps: int = 100, num_probes: int = 1,
                     generator: torch.Generator | None = None, *, num_bins: int = 10_000, sigma2: float = 1e-5,
                     overhead: float = 0.01, grid: torch.Tensor | None = None) -> DensityResult:
    """Spectral density by stochastic Lanczos quadrature with full reorthogonalisation (spec A.3e).

    Reference: Ghorbani, Krishnan, Xiao, ICML 2019 (arXiv 1901.10159); Ubaru, Chen, Saad, SIMAX 2017; PyHessian
    ``density`` / ``density_generate`` for the defaults: ``num_bins`` points over
    ``[mean_l min nodes - overhead, mean_l max nodes + overhead]``, Gaussian kernel of variance
    ``sigma2 * max(1, range)``, density renormalised to unit mass on the grid. PyHessian's default is
    ``num_steps=100, num_probes=1`` (kept). Lanczos nodes come from :func:`sciml.linalg.slq_density` (full
    reorthogonalisation; an early invariant subspace gives zero-weight padding nodes, ignored for the grid).

    Args:
        op: symmetric operator or dense matrix.
        num_steps: Lanczos steps m per probe (clipped to n; m = n recovers every eigenvalue).
        num_probes: independent normalised Rademacher start vectors (>= 1).
        generator: probe source.
        num_bins, sigma2, overhead: grid and kernel (PyHessian defaults).
        grid: explicit evaluation points (1-D) instead of the default grid.
    """
    A = square_operator(op)
    _count(num_steps, "num_steps")
    _count(num_probes, "num_probes")
    _count(num_bins, "num_bins", 2)
    if not sigma2 > 0:
        raise ValueError(f"sigma2 must be > 0, got {sigma2}")
    slq = slq_density(A, num_probes=num_probes, num_iter=num_steps, generator=generator, grid=2)
    nodes, weights = slq.nodes, slq.weights
    status = slq.status
    live = weights > 1e-14 * weights.amax(1, keepdim=True)  # padding nodes after an invariant subspace
    if grid is None:
        lo = float(torch.where(live, nodes, math.inf).amin(1).mean()) - overhead
        hi = float(torch.where(live, nodes, -math.inf).amax(1).mean()) + overhead
        grid = torch.linspace(lo, hi, num_bins, dtype=A.dtype, device=A.device)
    elif not isinstance(grid, torch.Tensor) or grid.ndim != 1 or grid.shape[0] < 2:
        raise ValueError("grid must be a 1-D tensor of at least 2 points")
    grid = grid.to(A.dtype)
    variance = sigma2 * max(1.0, float(grid[-1] - grid[0]))
    kernel = torch.exp(-(grid[:, None] - nodes.reshape(1, -1)) ** 2 / (2 * variance))
    density = kernel @ weights.reshape(-1) / (num_probes * math.sqrt(2 * math.pi * variance))
    mass = float(density.sum() * (grid[1] - grid[0]))
    if not (math.isfinite(mass) and mass > 0):
        status = Status.NONFINITE
        report_status(status, "spectral_density", "the smoothed density has no finite mass on the grid")
    else:
        density = density / mass
    return DensityResult(grid=grid, density=density, nodes=nodes, weights=weights, sigma2=variance,
                         num_steps=int(nodes.shape[1]), num_probes=num_probes, dimension=A.shape[0], status=status)


def spectral_sum(op: OperatorLike, f: Callable[[torch.Tensor], torch.Tensor], num_steps: int = 100,
                 num_probes: int = 10, generator: torch.Generator | None = None) -> Estimate:
    """``tr f(A)`` by SLQ (e.g. ``f = torch.log`` for log-det of an SPD operator)."""
    return spectral_density(op, num_steps, num_probes, generator, num_bins=2).spectral_sum(f)


# ---- batch GGN by the Gram trick (spec B.2) --------------------------------------------------------------------
def ggn_gram_eigenvalues(jacobians: torch.Tensor, output_hessians: torch.Tensor, k: int = 1) -> EigenResult:
    """Top-k eigenpairs of ``G = sum_i J_i^T Lambda_i J_i`` from the smaller of its two Gram forms.

    With ``Lambda_i = S_i S_i^T`` (symmetric PSD square root by eigh) and ``A`` stacking the rows ``S_i^T J_i``
    (shape ``(N C, P)``), ``G = A^T A`` and the nonzero eigenvalues of ``A A^T`` (size N C) are those of G.
    Exact (dense eigh), so status is CONVERGED unless non-finite.

    Shapes: jacobians (N, C, P); output_hessians (N, C, C) (include the loss reduction, e.g. 1/N); eigenvalues
    (k,) descending; eigenvectors (P, k).
    """
    if jacobians.ndim != 3 or output_hessians.shape != (jacobians.shape[0], jacobians.shape[1], jacobians.shape[1]):
        raise ValueError(f"need jacobians (N, C, P) and output_hessians (N, C, C), got {tuple(jacobians.shape)} and "
                         f"{tuple(output_hessians.shape)}")
    N, C, P = jacobians.shape
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= min(P, N * C):
        raise ValueError(f"k must be an int in [1, min(P, N*C) = {min(P, N * C)}], got {k!r}")
    lam, U = torch.linalg.eigh(0.5 * (output_hessians + output_hessians.mT))
    S = U * lam.clamp_min(0).sqrt()[:, None, :]  # (N, C, C), Lambda_i = S_i S_i^T
    A = torch.einsum("ncd,ncp->ndp", S, jacobians).reshape(N * C, P)
    if N * C <= P:
        evals, evecs = torch.linalg.eigh(A @ A.mT)  # (NC,)
        evals, evecs = evals.flip(0)[:k], evecs.flip(1)[:, :k]
        vecs = A.mT @ evecs
        vecs = vecs / vecs.norm(dim=0).clamp_min(torch.finfo(A.dtype).tiny)
    else:
        evals, vecs = torch.linalg.eigh(A.mT @ A)
        evals, vecs = evals.flip(0)[:k], vecs.flip(1)[:, :k]
    residuals = (A.mT @ (A @ vecs) - vecs * evals).norm(dim=0)
    status = Status.CONVERGED if bool(torch.isfinite(evals).all()) else Status.NONFINITE
    report_status(status, "ggn_gram_eigenvalues", "non-finite Jacobians or output Hessians")
    return EigenResult(eigenvalues=evals, eigenvectors=vecs, residual_norms=residuals, num_matvecs=0,
                       method="gram", which="largest", status=status)


def batch_ggn_eigenvalues(model: nn.Module, loss_fn: Callable, batch: tuple[torch.Tensor, torch.Tensor], k: int = 1,
                          params: ParamsLike = None, *, mode: str = "eval") -> EigenResult:
    """Top-k eigenvalues of the GGN of one batch by the Gram trick (exact; cheap when B * C < P; spec B.2)."""
    problem = CurvatureProblem(model, loss_fn, batch, params, mode)
    X, y = batch
    J = per_sample_jacobians(model, X, params, mode=mode)
    with torch.no_grad(), problem.evaluation_mode():
        output = problem.output_fn(X)(problem.theta())
    blocks = output_hessian_blocks(loss_fn, problem.reduction, output.reshape(output.shape[0], -1)
                                   if output.ndim > 2 else output, y)
    return ggn_gram_eigenvalues(J, blocks, k)
