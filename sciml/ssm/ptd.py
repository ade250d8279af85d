"""Perturb-then-diagonalize (PTD): diagonalise A + E with a small optimised E so that V is well conditioned.

Reference: Yu, Nigmetov, Morozov, Mahoney, Erichson, "Robustifying State-space Models for Long Sequences via
Approximate Diagonalization" (ICLR 2024, arXiv 2310.01698), Sec. 4.2 (objective kappa(V~) + gamma ||E||) and
Thm. 3 (uniform transfer-function bound linear in ||E||).

Defaults for A = HiPPO-LegS are precomputed by this solver and shipped in ``sciml/ssm/data/ptd_hippo_legs.npz``
(+ ``.json`` with the settings and diagnostics); regenerate with ``python -m sciml.ssm._precompute``.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
from importlib import resources

import numpy as np
import torch

from sciml.core import Result, Status, check_floating, check_generator, report_status
from sciml.ssm.hippo import DiagonalInit, _check_state_size, hippo_legs

# Settings of the shipped defaults (see _precompute.py). gamma multiplies ||E||_F / ||A||_2 (dimensionless).
DEFAULT_GAMMA = 30.0
DEFAULT_STEPS = 2500
DEFAULT_LR = 0.02
STABILITY_WEIGHT = 10.0      # weight of the penalty on Re(lambda) > -1/2 during the optimisation
STABILITY_MARGIN = 0.5       # HiPPO-LegS' eigenvalues are <= -1; keep the perturbed ones <= -1/2
DATA_FILE = "ptd_hippo_legs"


@dataclasses.dataclass(frozen=True)
class PTDResult(Result):
    """Outcome of perturb-then-diagonalize: A + E = V diag(eigenvalues) V^{-1}.

    Attributes:
        eigenvalues: (N,) complex128 eigenvalues of A + E, unstable ones reflected to Re < 0 (see n_reflected).
        eigenvectors: (N, N) complex128 V with unit-norm columns.
        eigenvectors_inv: (N, N) complex128 V^{-1}.
        perturbation: (N, N) E (float64 when real, complex128 otherwise).
        perturbation_norm: ||E||_2.
        relative_perturbation: ||E||_2 / ||A||_2.
        condition_number: kappa_2(V).
        unperturbed_condition: kappa_2 of the eigenvectors float64 ``eig`` returns for A itself (a lower
            bound of the true value once it passes ~1e16; HiPPO-LegS N=32: true 1.2e23).
        backward_error: ||(A + E) - V diag(lambda) V^{-1}||_2 / ||A + E||_2 before any reflection.
        n_reflected: how many eigenvalues had Re >= 0 and were reflected (Re := -|Re|).
        gamma, steps: the solver settings used.
        source: "shipped" (loaded from the package data) or "solved".
        status: CONVERGED when kappa(V) <= target_condition, MAX_ITER otherwise, NONFINITE on a NaN.
    """

    eigenvalues: torch.Tensor
    eigenvectors: torch.Tensor
    eigenvectors_inv: torch.Tensor
    perturbation: torch.Tensor
    perturbation_norm: float
    relative_perturbation: float
    condition_number: float
    unperturbed_condition: float
    backward_error: float
    n_reflected: int
    gamma: float
    steps: int
    source: str
    status: Status


def _objective(A: torch.Tensor, E: torch.Tensor, norm_A: float, gamma: float) -> tuple[torch.Tensor, torch.Tensor]:
    lam, V = torch.linalg.eig(A + E)
    s = torch.linalg.svdvals(V)
    # log kappa instead of the code's kappa^2: kappa starts near 1e20 for large N and would swamp Adam.
    loss = (torch.log(s[0] / s[-1]) + gamma * torch.linalg.matrix_norm(E) / norm_A
            + STABILITY_WEIGHT * torch.relu(lam.real + STABILITY_MARGIN).sum() / A.shape[0])
    return loss, lam


def _optimise_perturbation(A: torch.Tensor, gamma: float, steps: int, lr: float, real: bool,
                           generator: torch.Generator | None) -> tuple[torch.Tensor, bool]:
    N = A.shape[0]
    norm_A = float(torch.linalg.matrix_norm(A, 2))
    # Optimise E / scale so one learning rate fits all N (entries of A_H grow like N).
    scale = norm_A / N
    shape = (N, N)
    X = 0.1 * torch.randn(shape, dtype=torch.float64, generator=generator)
    if not real:
        X = torch.complex(X, 0.1 * torch.randn(shape, dtype=torch.float64, generator=generator))
    X = X.to(A.device).requires_grad_(True)
    opt = torch.optim.Adam([X], lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(steps, 1))
    finite = True
    for _ in range(steps):
        loss, _ = _objective(A, scale * X, norm_A, gamma)
        if not torch.isfinite(loss):
            finite = False
            break
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    return (scale * X).detach(), finite


def diagonalize_perturbed(A: torch.Tensor, E: torch.Tensor, *, gamma: float = math.nan, steps: int = 0,
                          source: str = "solved", target_condition: float = 10.0,
                          on_failure: str = "warn", finite: bool = True) -> PTDResult:
    """Eigendecompose A + E in complex128 and collect the PTD diagnostics (used by ``ptd``).

    Args:
        A: (N, N) real or complex matrix.
        E: (N, N) perturbation.
        target_condition: kappa(V) above this gives status MAX_ITER.

    Returns:
        PTDResult.
    """
    A = A.to(torch.complex128)
    M = A + E.to(torch.complex128)
    lam, V = torch.linalg.eig(M)
    Vinv = torch.linalg.inv(V)
    recon = (V * lam[None, :]) @ Vinv
    backward = float(torch.linalg.matrix_norm(M - recon, 2) / torch.linalg.matrix_norm(M, 2))
    unstable = lam.real >= 0
    lam = torch.where(unstable, torch.complex(-lam.real.abs(), lam.imag), lam)
    cond = float(torch.linalg.cond(V))
    norm_E = float(torch.linalg.matrix_norm(E.to(torch.complex128), 2))
    status = Status.CONVERGED
    if not finite or not math.isfinite(cond):
        status = Status.NONFINITE
    elif cond > target_condition:
        status = Status.MAX_ITER
    _, V0 = torch.linalg.eig(A)
    result = PTDResult(eigenvalues=lam, eigenvectors=V, eigenvectors_inv=Vinv, perturbation=E, perturbation_norm=norm_E,
                       relative_perturbation=norm_E / float(torch.linalg.matrix_norm(A, 2)), condition_number=cond,
                       unperturbed_condition=float(torch.linalg.cond(V0)), backward_error=backward,
                       n_reflected=int(unstable.sum()), gamma=gamma, steps=steps, source=source, status=status)
    report_status(status, "ptd", f"cond(V)={cond:.3g} > target {target_condition:g}", on_failure)
    return result


def _is_hippo_legs(A: torch.Tensor) -> bool:
    if A.is_complex() or A.ndim != 2 or A.shape[0] != A.shape[1]:
        return False
    ref, _ = hippo_legs(A.shape[0], dtype=torch.float64, device=A.device)
    return bool(torch.allclose(A.to(torch.float64), ref, rtol=1e-12, atol=1e-12))


@functools.lru_cache(maxsize=1)
def _shipped() -> tuple[dict[int, np.ndarray], dict]:
    base = resources.files("sciml.ssm") / "data"
    with resources.as_file(base / f"{DATA_FILE}.npz") as path, np.load(path) as data:
        arrays = {int(k[1:]): np.array(data[k]) for k in data.files}
    meta = json.loads((base / f"{DATA_FILE}.json").read_text())
    return arrays, meta


def shipped_state_sizes() -> tuple[int, ...]:
    """The N for which a precomputed HiPPO-LegS perturbation ships with the package."""
    return tuple(sorted(_shipped()[0]))


def ptd(A: torch.Tensor, gamma: float | None = None, *, steps: int = DEFAULT_STEPS, lr: float = DEFAULT_LR,
        real: bool = True, use_shipped: bool = True, target_condition: float = 10.0,
        generator: torch.Generator | None = None, on_failure: str = "warn") -> PTDResult:
    """Perturb-then-diagonalize: find a small E with A + E = V diag(lambda) V^{-1}, kappa(V) small.

    Minimises, with Adam (cosine learning rate) on a real (or complex) dense E,

        log kappa_2(V(E)) + gamma ||E||_F / ||A||_2 + 10/N * sum_n relu(Re lambda_n + 1/2),

    backpropagating through ``torch.linalg.eig`` in complex128. Eigenvalues that still end with Re >= 0 are
    reflected (Re := -|Re|) and counted in ``n_reflected``.

    Reference: arXiv 2310.01698, Sec. 4.2 (min kappa(V~) + gamma ||E||); authors' code
    ``S4-PTD/models/s4/s4_PTD.py::perturbation_trainer``.

    Differs from the paper/reference code:
        * log kappa instead of kappa^2 (kappa(V_H) ~ 1e20 at the start would swamp the optimiser);
        * the penalty is ||E||_F / ||A||_2, so one gamma gives a similar relative size for every N;
        * a stability penalty keeps Re(lambda) <= -1/2 during the optimisation (the authors' shipped matrices for
          N=64/128 have eigenvalues with Re > 0, which they flip afterwards);
        * E is real by default, so the spectrum stays conjugate-symmetric (their ``s4_PTD.py`` uses complex E).

    Args:
        A: (N, N) real matrix (float64 recommended; computed in float64/complex128 regardless).
        gamma: weight of the relative perturbation size (> 0). None: the shipped default for HiPPO-LegS when
            available (the per-N gamma recorded in the data), else DEFAULT_GAMMA.
        steps, lr: Adam iterations and peak learning rate (on E / (||A||_2 / N)).
        real: real E (conjugate pairs preserved) or complex E.
        use_shipped: load the precomputed E when A is HiPPO-LegS, gamma is None and real is True.
        target_condition: status is MAX_ITER (ConvergenceWarning) when kappa(V) ends above this.
        generator: for the random initial E (entries 0.1 ||A||_2 / N * N(0, 1)).
        on_failure: "warn" | "raise" | "ignore" (see sciml.core.report_status).

    Returns:
        PTDResult (all tensors complex128/float64 on A's device).

    Shapes:
        A: (N, N) -> eigenvalues (N,), eigenvectors / eigenvectors_inv / perturbation (N, N).
    """
    check_floating(A, "A")
    if A.ndim != 2 or A.shape[0] != A.shape[1]:
        raise ValueError(f"A must be a square (N, N) matrix, got shape {tuple(A.shape)}")
    if A.is_complex():
        raise ValueError("A must be real (PTD of a real matrix keeps conjugate pairs); got a complex tensor")
    if gamma is not None and not (isinstance(gamma, (int, float)) and math.isfinite(gamma) and gamma > 0):
        raise ValueError(f"gamma must be a finite float > 0, got {gamma!r}")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise ValueError(f"steps must be a non-negative int, got {steps!r}")
    if not (lr > 0):
        raise ValueError(f"lr must be > 0, got {lr!r}")
    check_generator(generator, A.device)
    A64 = A.to(torch.float64)
    N = A.shape[0]
    if use_shipped and gamma is None and real and _is_hippo_legs(A64):
        arrays, meta = _shipped()
        if N in arrays:
            info = meta["entries"][str(N)]
            E = torch.as_tensor(arrays[N], dtype=torch.float64, device=A.device)
            return diagonalize_perturbed(A64, E, gamma=info["gamma"], steps=info["steps"], source="shipped",
                                         target_condition=target_condition, on_failure=on_failure)
    g = DEFAULT_GAMMA if gamma is None else float(gamma)
    E, finite = _optimise_perturbation(A64, g, steps, lr, real, generator)
    return diagonalize_perturbed(A64, E, gamma=g, steps=steps, source="solved", target_condition=target_condition,
                                 on_failure=on_failure, finite=finite)


def ptd_init(N: int, conj_sym: bool = True, result: PTDResult | None = None) -> DiagonalInit:
    """S4-PTD / S5-PTD initialisation: eigenpairs of HiPPO-LegS + E, B~ = V^{-1} B_H.

    With ``conj_sym`` only eigenvalues with Im >= 0 are kept (the layer takes 2 Re); a real eigenvalue (its own
    conjugate) keeps half its row of V^{-1} (so half its B~) so that 2 Re reproduces it exactly. The number of modes is then N/2 plus half the
    number of real eigenvalues.

    Args:
        N: state size (even when conj_sym).
        conj_sym: keep one member of each conjugate pair.
        result: a PTDResult for HiPPO-LegS of size N (default: ``ptd(hippo_legs(N)[0])``, shipped when available).

    Returns:
        DiagonalInit named "ptd".
    """
    _check_state_size(N, even=conj_sym)
    A, B = hippo_legs(N)
    if result is None:
        result = ptd(A)
    if result.eigenvalues.shape[0] != N:
        raise ValueError(f"result is for N={result.eigenvalues.shape[0]}, expected N={N}")
    lam, V, Vinv = result.eigenvalues, result.eigenvectors, result.eigenvectors_inv
    if conj_sym:
        # Real eigenvalues of a real matrix come in an even number when N is even; ties at |Im| ~ 0 are real.
        tol = 1e-9 * lam.abs().max()
        is_real = lam.imag.abs() <= tol
        keep = (lam.imag > tol) | is_real
        # eig returns the real eigenvectors with an arbitrary complex phase: rotate them back to real.
        pivot = V.abs().argmax(dim=0)
        phase = V.gather(0, pivot[None, :])[0]
        phase = torch.where(is_real, phase / phase.abs(), torch.ones_like(phase))
        V, Vinv = V / phase[None, :], Vinv * phase[:, None]
        lam = torch.where(is_real, lam.real.to(torch.complex128), lam)
        V = torch.where(is_real[None, :], V.real.to(torch.complex128), V)
        Vinv = torch.where(is_real[:, None], Vinv.real.to(torch.complex128) / 2, Vinv)
        lam, V, Vinv = lam[keep], V[:, keep], Vinv[keep]
    Bt = Vinv @ B.to(torch.complex128)
    return DiagonalInit(eigenvalues=lam, B=Bt, eigenvectors=V, eigenvectors_inv=Vinv, conj_sym=conj_sym, name="ptd")
