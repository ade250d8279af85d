"""Dispatch of the diagonal initialisations by name ("legs" | "lin" | "inv" | "ptd")."""

from __future__ import annotations

import torch

from sciml.ssm.hippo import DiagonalInit, _check_state_size, s4d_inv, s4d_legs, s4d_lin
from sciml.ssm.ptd import ptd_init

INITS = ("legs", "lin", "inv", "ptd")


def diagonal_init(init: str | DiagonalInit, N: int, conj_sym: bool = True) -> DiagonalInit:
    """The DiagonalInit called ``init`` for state size N (or ``init`` itself when already a DiagonalInit).

    Without ``conj_sym``, "lin" and "inv" return their N/2 modes and the conjugates (N modes).
    """
    if isinstance(init, DiagonalInit):
        return init
    if init not in INITS:
        raise ValueError(f"init must be one of {INITS} or a DiagonalInit, got {init!r}")
    _check_state_size(N, "d_state", even=conj_sym or init in ("lin", "inv"))
    if not isinstance(conj_sym, bool):
        raise ValueError(f"conj_sym must be a bool, got {conj_sym!r}")
    if init == "legs":
        return s4d_legs(N, conj_sym)
    if init == "ptd":
        return ptd_init(N, conj_sym)
    return s4d_lin(N, conj_sym) if init == "lin" else s4d_inv(N, conj_sym)


def block_diagonal(init: DiagonalInit, blocks: int) -> DiagonalInit:
    """Repeat a DiagonalInit ``blocks`` times block-diagonally (S5's "blocks" / J option).

    Shapes: eigenvalues (M,) -> (J M,); eigenvectors (N, M) -> (J N, J M); eigenvectors_inv (M, N) -> (J M, J N).
    """
    if blocks == 1:
        return init
    V = None if init.eigenvectors is None else torch.block_diag(*([init.eigenvectors] * blocks))
    Vinv = None if init.eigenvectors_inv is None else torch.block_diag(*([init.eigenvectors_inv] * blocks))
    return DiagonalInit(eigenvalues=init.eigenvalues.repeat(blocks), B=init.B.repeat(blocks), eigenvectors=V,
                        eigenvectors_inv=Vinv, conj_sym=init.conj_sym, name=init.name)
