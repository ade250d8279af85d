"""Randomised trace and diagonal estimators for matrix-free operators (Hutchinson, Hutch++).

Probes are drawn as one ``(n, p)`` block and applied with one ``op @ Z`` (or a few blocks when
``block_size`` caps memory), never one Python-level matvec per probe. Randomness comes only from the
``generator`` argument. Imports only ``sciml.core`` and ``sciml.linalg.operator``.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable

import torch

from sciml.core import Result, Status, check_generator, report_status
from sciml.linalg.operator import LinearOperator, as_operator

OperatorLike = LinearOperator | torch.Tensor | Callable[[torch.Tensor], torch.Tensor]
DISTRIBUTIONS = ("rademacher", "gaussian")


@dataclasses.dataclass(frozen=True)
class Estimate(Result):
    """A Monte-Carlo estimate of a scalar with its standard error (std of the samples / sqrt(probes))."""

    mean: float
    stderr: float
    num_probes: int
    status: Status = Status.CONVERGED


@dataclasses.dataclass(frozen=True)
class DiagonalEstimate(Result):
    """A Monte-Carlo estimate of ``diag(A)``. Shapes: mean (n,), stderr (n,)."""

    mean: torch.Tensor
    stderr: torch.Tensor
    num_probes: int
    status: Status = Status.CONVERGED


# ---- shared helpers (also used by sciml.linalg.krylov) ---------------------------------------------------------
def square_operator(op: OperatorLike, n: int | None = None, dtype: torch.dtype | None = None,
                    device: torch.device | str | None = None) -> LinearOperator:
    """Wrap ``op`` with :func:`as_operator` and insist on a square shape.

    A callable needs ``n=``; its dtype/device default to float64 on the CPU unless given.
    """
    if n is not None and (not isinstance(n, int) or n < 1):
        raise ValueError(f"n must be a positive int, got {n!r}")
    A = as_operator(op, n=n, dtype=dtype or torch.float64, device=device or "cpu")
    if A.shape[0] != A.shape[1]:
        raise ValueError(f"a square operator is needed, got shape {A.shape}")
    if n is not None and A.shape[0] != n:
        raise ValueError(f"n={n} given but the operator has shape {A.shape}")
    if A.dtype.is_complex or not A.dtype.is_floating_point:
        raise ValueError(f"a real floating-point operator is needed, got dtype {A.dtype}")
    return A


def random_probes(n: int, p: int, distribution: str, dtype: torch.dtype, device: torch.device,
                  generator: torch.Generator | None) -> torch.Tensor:
    """``p`` probe vectors as columns of an ``(n, p)`` block (Rademacher +-1 or standard Gaussian)."""
    check_generator(generator, device)
    if distribution == "rademacher":
        signs = torch.randint(0, 2, (n, p), generator=generator, device=device)
        return signs.to(dtype).mul_(2).sub_(1)  # cast before the arithmetic so the probes have op's dtype
    if distribution == "gaussian":
        return torch.randn(n, p, generator=generator, dtype=dtype, device=device)
    raise ValueError(f"distribution must be one of {DISTRIBUTIONS}, got {distribution!r}")


def _check_count(value: int, name: str, minimum: int) -> None:
    if not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")


def _quadratic_forms(A: LinearOperator, Z: torch.Tensor, block_size: int | None) -> torch.Tensor:
    """``z_i^T A z_i`` for every column, applying ``A`` to at most ``block_size`` columns at once."""
    step = Z.shape[1] if block_size is None else block_size
    blocks = [Z[:, i:i + step] for i in range(0, Z.shape[1], step)]
    return torch.cat([(block * A._apply_unchecked(block)).sum(0) for block in blocks])


def _estimate(samples: torch.Tensor, scale: float = 1.0, offset: float = 0.0, routine: str = "") -> Estimate:
    """Mean and standard error of ``offset + scale * samples``; NONFINITE (with a warning) on NaN/Inf."""
    p = samples.shape[0]
    mean = offset + scale * float(samples.mean())
    stderr = abs(scale) * float(samples.std(correction=1)) / math.sqrt(p)
    status = Status.CONVERGED if math.isfinite(mean) and math.isfinite(stderr) else Status.NONFINITE
    report_status(status, routine, f"estimate {mean}")
    return Estimate(mean=mean, stderr=stderr, num_probes=p, status=status)


# ---- estimators ------------------------------------------------------------------------------------------------
def hutchinson_trace(op: OperatorLike, n: int | None = None, num_probes: int = 100,
                     generator: torch.Generator | None = None, distribution: str = "rademacher", *,
                     block_size: int | None = None, dtype: torch.dtype | None = None,
                     device: torch.device | str | None = None) -> Estimate:
    """Hutchinson's estimate of ``tr(A)`` with its standard error.

    Reference:
        Hutchinson, "A stochastic estimator of the trace of the influence matrix for Laplacian smoothing
        splines" (1990). Variance per probe: Rademacher ``2(||A||_F^2 - sum_i A_ii^2)``, Gaussian
        ``2 ||A||_F^2`` (for symmetric A), so Rademacher is the default.

    Args:
        op: a LinearOperator, a dense tensor, or a callable ``(n, k) -> (n, k)`` (then pass ``n``).
        n: size of a callable operator.
        num_probes: number of probe vectors (>= 2, so that a standard error exists).
        generator: source of the probes (on the operator's device); None uses the global RNG.
        distribution: "rademacher" (default) or "gaussian".
        block_size: apply the operator to at most this many probes at once (default: all in one block).
        dtype, device: of a callable operator (default float64 on the CPU).

    Returns:
        Estimate with ``mean`` (the trace), ``stderr`` (std of the per-probe samples / sqrt(num_probes)).

    Shapes: operator (n, n); probes (n, num_probes).
    """
    A = square_operator(op, n, dtype, device)
    _check_count(num_probes, "num_probes", 2)
    if block_size is not None:
        _check_count(block_size, "block_size", 1)
    Z = random_probes(A.shape[0], num_probes, distribution, A.dtype, A.device, generator)  # (n, p)
    return _estimate(_quadratic_forms(A, Z, block_size), routine="hutchinson_trace")


def hutchinson_diagonal(op: OperatorLike, n: int | None = None, num_probes: int = 100,
                        generator: torch.Generator | None = None, *, block_size: int | None = None,
                        dtype: torch.dtype | None = None,
                        device: torch.device | str | None = None) -> DiagonalEstimate:
    """Estimate ``diag(A)`` as the mean of ``z * (A z)`` over Rademacher probes.

    Reference:
        Bekas, Kokiopoulou, Saad, "An estimator for the diagonal of a matrix", Appl. Numer. Math. 57 (2007).
        With Rademacher probes entry i has variance ``sum_{j != i} A_ij^2`` (exact for diagonal A).

    Args:
        op, n, generator, block_size, dtype, device: as in :func:`hutchinson_trace`.
        num_probes: number of Rademacher probes (>= 2).

    Returns:
        DiagonalEstimate with per-entry ``mean`` and ``stderr``, on the operator's device and dtype.

    Shapes: mean (n,), stderr (n,).
    """
    A = square_operator(op, n, dtype, device)
    _check_count(num_probes, "num_probes", 2)
    if block_size is not None:
        _check_count(block_size, "block_size", 1)
    Z = random_probes(A.shape[0], num_probes, "rademacher", A.dtype, A.device, generator)  # (n, p)
    step = num_probes if block_size is None else block_size
    blocks = [Z[:, i:i + step] for i in range(0, num_probes, step)]
    samples = torch.cat([block * A._apply_unchecked(block) for block in blocks], 1)
    mean, std = samples.mean(1), samples.std(1, correction=1)
    status = Status.CONVERGED if bool(torch.isfinite(mean).all()) else Status.NONFINITE
    report_status(status, "hutchinson_diagonal", "non-finite entries in A z")
    return DiagonalEstimate(mean=mean, stderr=std / math.sqrt(num_probes), num_probes=num_probes, status=status)


def hutchpp_trace(op: OperatorLike, n: int | None = None, num_matvecs: int = 102,
                  generator: torch.Generator | None = None, *, dtype: torch.dtype | None = None,
                  device: torch.device | str | None = None) -> Estimate:
    """Hutch++: exact trace on a sketched dominant subspace plus Hutchinson on the deflated rest.

    Reference:
        Meyer, Musco, Musco, Woodruff, "Hutch++: Optimal Stochastic Trace Estimation", SOSA 2021
        (arXiv 2010.09649), Algorithm 1: with ``s = m // 3``, ``Q = qr(A S)`` for Rademacher ``S`` (n, s),
        ``tr(A) ~ tr(Q^T A Q) + tr(G^T (I - QQ^T) A (I - QQ^T) G) / g`` for Rademacher ``G`` (n, g).

    Differs from the paper:
        - the ``m - 2s`` leftover matvecs all go to the residual Hutchinson part (``g = m - 2s >= s``);
        - ``stderr`` is the standard error of the residual Hutchinson samples only (the sketched part is
          treated as fixed, i.e. it is conditional on ``S``);
        - ``A Q`` and ``A (I - QQ^T) G`` are applied as one ``(n, s + g)`` block.

    Args:
        op, n, generator, dtype, device: as in :func:`hutchinson_trace`.
        num_matvecs: total operator applications ``m`` (>= 5 so that ``s >= 1`` and ``g >= 2``).

    Returns:
        Estimate with ``num_probes`` = g, the number of residual Hutchinson probes.

    Shapes: S (n, s), Q (n, s), G (n, g).
    """
    A = square_operator(op, n, dtype, device)
    _check_count(num_matvecs, "num_matvecs", 5)
    size = A.shape[0]
    s = num_matvecs // 3
    g = num_matvecs - 2 * s
    S = random_probes(size, s + g, "rademacher", A.dtype, A.device, generator)  # (n, s + g), S and G together
    S, G = S[:, :s], S[:, s:]
    # (n, s); Householder QR keeps Q orthonormal even when A S is rank deficient
    Q = torch.linalg.qr(A._apply_unchecked(S)).Q
    s = Q.shape[1]  # min(n, s): a sketch wider than the operator spans everything (then the trace is exact)
    G = G - Q @ (Q.mT @ G)  # (I - QQ^T) G; the projector is symmetric, so one projection per side suffices
    AQG = A._apply_unchecked(torch.cat([Q, G], 1))  # (n, s + g)
    exact = float((Q * AQG[:, :s]).sum())  # tr(Q^T A Q)
    return _estimate((G * AQG[:, s:]).sum(0), offset=exact, routine="hutchpp_trace")
