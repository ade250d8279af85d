"""Tensor algebra: unfoldings, folds and mode products (Kolda-Bader conventions).

Mode-k unfolding puts mode k first and flattens the remaining modes in their natural (C) order, which is
tensorly's convention, so ``unfold`` agrees with ``tensorly.base.unfold``. Works on any device and dtype.
"""

from __future__ import annotations

from typing import Sequence

import torch


def _check_mode(x: torch.Tensor, mode: int) -> int:
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"x must be a torch.Tensor, got {type(x).__name__}")
    if isinstance(mode, bool) or not isinstance(mode, int):
        raise ValueError(f"mode must be an int, got {mode!r}")
    if not -x.ndim <= mode < x.ndim:
        raise ValueError(f"mode must be in [-{x.ndim}, {x.ndim}) for a {x.ndim}-way tensor, got {mode}")
    return mode % x.ndim


def unfold(x: torch.Tensor, mode: int) -> torch.Tensor:
    """Mode-``mode`` matricisation. Shapes: (I_0, ..., I_{d-1}) -> (I_mode, prod of the others)."""
    mode = _check_mode(x, mode)
    return torch.movedim(x, mode, 0).reshape(x.shape[mode], -1)


def fold(matrix: torch.Tensor, mode: int, shape: Sequence[int]) -> torch.Tensor:
    """Inverse of :func:`unfold`: rebuild a tensor of ``shape`` from its mode-``mode`` unfolding."""
    shape = tuple(int(s) for s in shape)
    mode = mode % len(shape)
    moved = (shape[mode],) + shape[:mode] + shape[mode + 1:]
    if matrix.numel() != torch.Size(shape).numel() or matrix.shape[0] != shape[mode]:
        raise ValueError(f"cannot fold a matrix of shape {tuple(matrix.shape)} into {shape} along mode {mode}")
    return torch.movedim(matrix.reshape(moved), 0, mode)


def mode_product(x: torch.Tensor, matrix: torch.Tensor, mode: int, transpose: bool = False) -> torch.Tensor:
    """``x ×_mode matrix``: contracts mode ``mode`` of ``x`` with the columns of ``matrix``.

    Shapes: x (..., I_mode, ...), matrix (J, I_mode) -> (..., J, ...). With ``transpose=True`` it uses
    ``matrix.T`` (shape (I_mode, J)) without copying.
    """
    mode = _check_mode(x, mode)
    mat = matrix.transpose(-1, -2) if transpose else matrix
    if mat.ndim != 2 or mat.shape[1] != x.shape[mode]:
        raise ValueError(f"mode_product: matrix of shape {tuple(mat.shape)} does not match mode {mode} "
                         f"of size {x.shape[mode]}")
    if mat.dtype != x.dtype or mat.device != x.device:
        raise ValueError(f"mode_product: matrix has dtype {mat.dtype} on {mat.device}, x {x.dtype} on {x.device}; "
                         "cast one of them")
    # tensordot contracts without forming the unfolding explicitly, then the new axis moves back in place.
    out = torch.tensordot(mat, x, dims=([1], [mode]))  # (J, other modes...)
    return torch.movedim(out, 0, mode)


def multi_mode_product(x: torch.Tensor, matrices: Sequence[torch.Tensor | None],
                       modes: Sequence[int] | None = None, transpose: bool = False,
                       skip: int | None = None) -> torch.Tensor:
    """Successive mode products ``x ×_{m0} A0 ×_{m1} A1 ...`` (one tensordot each, never an einsum blow-up).

    Args:
        x: the tensor.
        matrices: one matrix per mode in ``modes`` (None entries are skipped).
        modes: which modes; defaults to 0..len(matrices)-1.
        transpose: use each matrix's transpose.
        skip: a mode to leave out (handy for HOOI / ALS sweeps).
    """
    modes = list(range(len(matrices))) if modes is None else list(modes)
    if len(modes) != len(matrices):
        raise ValueError(f"got {len(matrices)} matrices for {len(modes)} modes")
    skipped = None if skip is None else skip % x.ndim
    pairs = [(m, mode) for m, mode in zip(matrices, modes) if m is not None and mode % x.ndim != skipped]
    # Contract the modes that shrink the tensor most first: fewer flops for the later products.
    for matrix, mode in sorted(pairs, key=lambda pair: _shrink(pair[0], transpose)):
        x = mode_product(x, matrix, mode, transpose=transpose)
    return x


def _shrink(matrix: torch.Tensor, transpose: bool) -> float:
    rows, cols = matrix.shape[-2:]
    return (cols / rows) if transpose else (rows / cols)


def khatri_rao(matrices: Sequence[torch.Tensor]) -> torch.Tensor:
    """Column-wise Kronecker product. Shapes: (I_k, R) each -> (prod I_k, R), first matrix slowest."""
    if not matrices:
        raise ValueError("khatri_rao needs at least one matrix")
    rank = matrices[0].shape[1]
    if any(m.ndim != 2 or m.shape[1] != rank for m in matrices):
        raise ValueError("khatri_rao: all matrices must be 2-D with the same number of columns")
    out = matrices[0]
    for m in matrices[1:]:
        out = (out[:, None, :] * m[None, :, :]).reshape(-1, rank)
    return out
