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


def memory_window(eigenvalues: torch.Tensor, length: int, resolution: float = 0.5,
                  memory: float = 3.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Steps dt at which a diagonal mode both keeps an input for ``length`` steps and tells adjacent steps apart.

    Discretised with step dt, the mode lambda decays by exp(Re(lambda) dt) and turns by Im(lambda) dt per step. It
    keeps a fraction >= exp(-memory) of an input over ``length`` steps iff |Re lambda| dt length <= memory, and its
    phase separates inputs one step apart by >= ``resolution`` radians iff |Im lambda| dt >= resolution. Both hold
    iff lo <= dt <= hi; the window is empty (lo > hi) unless |Im lambda| / |Re lambda| >= resolution length / memory
    (HiPPO-LegS' normal part, Re = -1/2, L = 1024: |Im| >= 85, i.e. 2 of S4D-LegS' 16 modes at N = 32, 7 of 32 at
    N = 64, 24 of 64 at N = 128). A recall task that must place tokens seen ``length`` steps ago needs such modes
    (experiments/ssm_delayed_recall.py).

    Shapes: eigenvalues (..., M) complex -> (lo, hi) (..., M) real.
    """
    _check_state_size(length, "length")
    if not (resolution > 0 and memory > 0):
        raise ValueError(f"resolution and memory must be > 0, got {resolution!r}, {memory!r}")
    lam = eigenvalues.to(torch.complex128)
    lo = resolution / lam.imag.abs()                                 # inf for a real eigenvalue
    hi = memory / (lam.real.abs() * length)                          # inf for Re = 0
    return lo, hi


def memory_window_dt(eigenvalues: torch.Tensor, length: int, fallback: torch.Tensor, resolution: float = 0.5,
                     memory: float = 3.0) -> torch.Tensor:
    """Per-mode step: the geometric middle sqrt(lo hi) of ``memory_window`` where the window is non-empty,
    ``fallback`` (e.g. the usual log-uniform draw) elsewhere. For S5-style layers with one step per state.

    A real eigenvalue (empty window) and Re = 0 (no upper end, no middle) also get ``fallback``. The phase step is
    taken before wrapping: a step with |Im lambda| dt near a multiple of 2 pi aliases (the middle of the window
    stays below 2 pi - resolution for |Im| / |Re| < (2 pi - resolution)^2 length / (resolution memory): 2.3e4 at
    L = 1024 with the defaults).

    Shapes: eigenvalues (M,) complex, fallback (M,) -> (M,) float64.
    """
    lo, hi = memory_window(eigenvalues, length, resolution, memory)
    fallback = fallback.to(torch.float64)
    if fallback.shape != lo.shape:
        raise ValueError(f"fallback must have shape {tuple(lo.shape)}, got {tuple(fallback.shape)}")
    ok = (lo <= hi) & torch.isfinite(lo) & torch.isfinite(hi)
    return torch.where(ok, (lo * hi).sqrt(), fallback)

