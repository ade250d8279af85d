"""Tucker tensors and their computation by (truncated) HOSVD and HOOI (Tucker-ALS).

``TuckerTensor(core, factors)`` represents ``core ×_1 U_1 ×_2 U_2 ... ×_d U_d``. ``tucker_hosvd`` picks ranks
(fixed, or per mode from a relative-error tolerance) by sequentially truncated HOSVD; ``tucker_hooi`` refines
fixed ranks by alternating least squares. Both return a :class:`TuckerFit` with the measured relative error.

Reference: De Lathauwer, De Moor, Vandewalle, "A multilinear singular value decomposition" (2000) and
"On the best rank-(R1,...,RN) approximation of higher-order tensors" (2000); Vannieuwenhoven, Vandebril,
Meerbergen, "A new truncation strategy for the higher-order singular value decomposition" (2012).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Sequence

import torch

from sciml.core import Result, Status, check_floating, report_status
from sciml.linalg.tensor_ops import multi_mode_product, unfold


@dataclasses.dataclass(frozen=True)
class TuckerTensor(Result):
    """``core ×_1 factors[0] ... ×_d factors[d-1]``. Shapes: core (r_1..r_d), factors[k] (n_k, r_k)."""

    core: torch.Tensor
    factors: tuple[torch.Tensor, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "factors", tuple(self.factors))
        if self.core.ndim != len(self.factors):
            raise ValueError(f"core has {self.core.ndim} modes but {len(self.factors)} factors were given")
        for k, f in enumerate(self.factors):
            if f.ndim != 2 or f.shape[1] != self.core.shape[k]:
                raise ValueError(f"factors[{k}] has shape {tuple(f.shape)}; expected (n_{k}, {self.core.shape[k]})")

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(f.shape[0] for f in self.factors)

    @property
    def ranks(self) -> tuple[int, ...]:
        return tuple(self.core.shape)

    @property
    def storage(self) -> int:
        """Number of stored entries (core plus factors)."""
        return self.core.numel() + sum(f.numel() for f in self.factors)

    def to_tensor(self) -> torch.Tensor:
        return multi_mode_product(self.core, list(self.factors))

    def to_tensorly(self):
        """A ``tensorly.tucker_tensor.TuckerTensor`` in tensorly's current backend (numpy or pytorch)."""
        import tensorly as tl
        from tensorly.tucker_tensor import TuckerTensor as TlTucker

        convert = (lambda t: t) if tl.get_backend() == "pytorch" else (lambda t: t.detach().cpu().numpy())
        return TlTucker((convert(self.core), [convert(f) for f in self.factors]))

    @classmethod
    def from_tensorly(cls, tucker, dtype: torch.dtype | None = None) -> "TuckerTensor":
        """Build from a tensorly TuckerTensor or a ``(core, factors)`` pair of arrays."""
        core, factors = tucker
        core_t = torch.as_tensor(core, dtype=dtype)
        return cls(core_t, tuple(torch.as_tensor(f, dtype=core_t.dtype) for f in factors))


@dataclasses.dataclass(frozen=True)
class TuckerFit(Result):
    """A computed Tucker approximation with its measured relative Frobenius error."""

    tucker: TuckerTensor
    rel_error: float
    status: Status
    method: str = "svd"
    n_iter: int = 0
    history: tuple[float, ...] = ()

    @property
    def converged(self) -> bool:
        return self.status is Status.CONVERGED

    @property
    def core(self) -> torch.Tensor:
        return self.tucker.core

    @property
    def factors(self) -> tuple[torch.Tensor, ...]:
        return self.tucker.factors

    @property
    def ranks(self) -> tuple[int, ...]:
        return self.tucker.ranks


def _resolve_ranks(x: torch.Tensor, ranks: int | Sequence[int | None] | None) -> list[int | None]:
    if ranks is None:
        return [None] * x.ndim
    if isinstance(ranks, bool):
        raise ValueError(f"ranks must be an int, a sequence of ints/None, or None; got {ranks!r}")
    if isinstance(ranks, int):
        ranks = [ranks] * x.ndim
    ranks = list(ranks)
    if len(ranks) != x.ndim:
        raise ValueError(f"got {len(ranks)} ranks for a {x.ndim}-way tensor")
    for k, r in enumerate(ranks):
        if r is not None and (isinstance(r, bool) or not isinstance(r, int)):
            raise ValueError(f"rank for mode {k} must be an int or None, got {r!r}")
        if r is not None and not 1 <= r <= x.shape[k]:
            raise ValueError(f"rank {r} for mode {k} must be between 1 and the mode size {x.shape[k]}")
    return ranks


def _left_singular(matrix: torch.Tensor, method: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Left singular vectors and values of a (usually wide) unfolding, descending.

    "gram" takes eigh of ``M Mᵀ`` (n_k x n_k): several times faster than an SVD of the n_k x (N/n_k)
    unfolding, but singular values below ~sqrt(eps) * s_max come out inaccurate. "svd" is exact to eps.
    """
    if method == "svd":
        u, s, _ = torch.linalg.svd(matrix, full_matrices=False)
        return u, s
    evals, evecs = torch.linalg.eigh(matrix @ matrix.mT)
    return torch.flip(evecs, [1]), torch.sqrt(torch.flip(evals, [0]).clamp_min(0.0))


def _pick_method(x: torch.Tensor, tol: float | None, method: str) -> str:
    if method not in ("auto", "gram", "svd"):
        raise ValueError(f"method must be 'auto', 'gram' or 'svd', got {method!r}")
    if method != "auto":
        return method
    # The Gram route resolves singular values down to ~sqrt(eps) of the largest: enough for fixed ranks
    # and loose tolerances in float64, not for tol below ~1e-6 or for float32 truncation by tolerance.
    accurate_enough = tol is None or tol >= 1e3 * math.sqrt(torch.finfo(x.dtype).eps)
    return "gram" if accurate_enough else "svd"


def _relative_error(x: torch.Tensor, tucker: TuckerTensor, x_norm: torch.Tensor) -> float:
    """||x - tucker|| / ||x||, from ||x||² - ||core||² (orthonormal factors) when that is well resolved.

    The shortcut loses about sqrt(eps) absolute accuracy to cancellation, so below 1e-6 (float64) the error
    is measured on the reconstruction instead.
    """
    shortcut = torch.sqrt(torch.clamp(x_norm**2 - torch.linalg.vector_norm(tucker.core) ** 2, min=0.0)) / x_norm
    if float(shortcut) > 1e4 * math.sqrt(torch.finfo(x.dtype).eps):
        return float(shortcut)
    return float(torch.linalg.vector_norm(x - tucker.to_tensor()) / x_norm)


def _check_tensor(x: torch.Tensor, routine: str) -> None:
    check_floating(x, "x")
    if x.is_complex():
        raise ValueError(f"{routine} needs a real tensor, got dtype {x.dtype}: the Gram/SVD routes here assume "
                         "real unfoldings; decompose torch.view_as_real(x) (an extra mode of size 2) instead")
    if x.ndim < 2:
        raise ValueError(f"{routine}: x must have at least 2 modes, got shape {tuple(x.shape)}")
    if x.numel() == 0:
        raise ValueError(f"{routine}: x is empty (shape {tuple(x.shape)})")


def _zero_fit(x: torch.Tensor, ranks: list[int | None], method: str) -> TuckerFit:
    """The exact Tucker form of the zero tensor: zero core, the first r unit vectors as factors, error 0."""
    ranks = [1 if r is None else r for r in ranks]
    factors = tuple(torch.eye(n, r, dtype=x.dtype, device=x.device) for n, r in zip(x.shape, ranks))
    core = x.new_zeros(ranks)
    return TuckerFit(TuckerTensor(core, factors), 0.0, Status.CONVERGED, method=method)


def tucker_hosvd(x: torch.Tensor, ranks: int | Sequence[int | None] | None = None,
                 tol: float | None = None, method: str = "auto") -> TuckerFit:
    """Sequentially truncated HOSVD with fixed ranks or a relative-error tolerance.

    Args:
        x: a d-way floating tensor.
        ranks: an int for every mode, one per mode (None = chosen by ``tol``, or full), or None.
        tol: target relative Frobenius error. Per mode it keeps the smallest rank whose discarded singular
            values have norm <= tol * ||x|| / sqrt(d), which guarantees ``rel_error <= tol``.
        method: "gram" (eigh of the Gram matrix, fast), "svd" (exact), or "auto" (gram unless ``tol`` is
            too tight for it); the path taken is recorded in ``TuckerFit.method``.

    Returns:
        TuckerFit with orthonormal factors and the measured ``rel_error``.

    Differs from the classic HOSVD: each mode's SVD is taken of the tensor already projected on the previous
    modes' factors (ST-HOSVD), which is cheaper and has the same error guarantee.
    """
    _check_tensor(x, "tucker_hosvd")
    if tol is not None and not 0 <= tol < 1:
        raise ValueError(f"tol must be in [0, 1), got {tol}")
    fixed = _resolve_ranks(x, ranks)
    x_norm = torch.linalg.vector_norm(x)
    if float(x_norm) == 0.0:
        return _zero_fit(x, fixed, _pick_method(x, tol, method))
    threshold = (tol or 0.0) * float(x_norm) / math.sqrt(x.ndim)
    method = _pick_method(x, tol, method)
    core, factors = x, []
    for k in range(x.ndim):
        u, s = _left_singular(unfold(core, k), method)
        if fixed[k] is not None:
            rank = fixed[k]
        elif tol is not None:
            # tails[r] = norm of the singular values dropped when keeping r of them.
            tails = torch.sqrt(torch.flip(torch.cumsum(torch.flip(s**2, [0]), 0), [0]))
            tails = torch.cat([tails, tails.new_zeros(1)])
            rank = max(1, int(torch.nonzero(tails <= threshold)[0]))
        else:
            rank = x.shape[k]
        factors.append(u[:, :rank])
        core = multi_mode_product(core, [u[:, :rank]], modes=[k], transpose=True)
    tucker = TuckerTensor(core, tuple(factors))
    return TuckerFit(tucker, _relative_error(x, tucker, x_norm), Status.CONVERGED, method=method)


def tucker_hooi(x: torch.Tensor, ranks: int | Sequence[int], *, n_iter_max: int = 100, tol: float = 1e-8,
                init: TuckerTensor | None = None, on_failure: str = "warn") -> TuckerFit:
    """Higher-order orthogonal iteration (Tucker-ALS) for fixed ranks, started from the ST-HOSVD.

    Args:
        x: a d-way floating tensor.
        ranks: target multilinear rank (an int for all modes, or one per mode).
        n_iter_max: maximum number of sweeps.
        tol: stop when the relative error changes by less than ``tol`` (relative) between sweeps.
        init: optional starting point (its factors are used).
        on_failure: "warn" | "raise" | "ignore" when ``n_iter_max`` is reached first.

    Equivalent to ``tensorly.decomposition.tucker(x, rank, init="svd")`` (which starts from the classic
    HOSVD). The error is tracked through ``||x||² - ||core||²`` (valid for orthonormal factors) and measured
    exactly on the final result. The factor updates use the Gram route (only the leading subspace matters).
    """
    _check_tensor(x, "tucker_hooi")
    fixed = _resolve_ranks(x, ranks)
    if any(r is None for r in fixed):
        raise ValueError("tucker_hooi needs a rank for every mode")
    if isinstance(n_iter_max, bool) or not isinstance(n_iter_max, int) or n_iter_max < 1:
        raise ValueError(f"n_iter_max must be an int >= 1, got {n_iter_max!r}")
    if isinstance(tol, bool) or not isinstance(tol, (int, float)) or not 0 <= tol < math.inf:
        raise ValueError(f"tol must be a finite number >= 0, got {tol!r}")
    if on_failure not in ("warn", "raise", "ignore"):
        raise ValueError(f"on_failure must be 'warn', 'raise' or 'ignore', got {on_failure!r}")
    if init is not None and tuple(f.shape for f in init.factors) != tuple((n, r) for n, r in zip(x.shape, fixed)):
        raise ValueError(f"init factors have shapes {[tuple(f.shape) for f in init.factors]}; expected "
                         f"{[(n, r) for n, r in zip(x.shape, fixed)]}")
    if float(torch.linalg.vector_norm(x)) == 0.0:
        return _zero_fit(x, fixed, "gram")
    factors = list(init.factors if init is not None else tucker_hosvd(x, fixed).factors)
    x_norm = torch.linalg.vector_norm(x)
    history: list[float] = []
    status = Status.MAX_ITER
    for sweep in range(n_iter_max):
        for k in range(x.ndim):
            projected = multi_mode_product(x, factors, transpose=True, skip=k)
            u, _ = _left_singular(unfold(projected, k), "gram")
            factors[k] = u[:, : fixed[k]]
        core = multi_mode_product(x, factors, transpose=True)
        residual_sq = torch.clamp(x_norm**2 - torch.linalg.vector_norm(core) ** 2, min=0.0)
        history.append(float(torch.sqrt(residual_sq) / x_norm))
        if not math.isfinite(history[-1]):
            status = Status.NONFINITE
            break
        if sweep > 0 and abs(history[-2] - history[-1]) <= tol * max(history[-1], 1e-300):
            status = Status.CONVERGED
            break
    tucker = TuckerTensor(core, tuple(factors))
    report_status(status, "tucker_hooi", f"{len(history)} sweeps", on_failure)
    return TuckerFit(tucker, _relative_error(x, tucker, x_norm), status, "gram", len(history), tuple(history))
