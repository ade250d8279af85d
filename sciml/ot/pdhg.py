"""Primal-dual hybrid gradient methods for standard-form LPs ``min c^T x  s.t.  A x = b, x >= 0`` (spec §3).

Three methods on the saddle problem ``min_{x >= 0} max_y  c^T x - y^T A x + b^T y`` (He's form with
``theta1(x) = c^T x``, ``theta2(y) = -b^T y``), all with the same balance knob ``omega`` (``r / s = omega^2`` for
the proximal weights ``r = 1/tau``, ``s = 1/sigma``):

* ``"apc"``: adaptive prediction-correction PDHG, variant ``"rayleigh_pc"``. **A reconstruction**: the paper
  (Xu & He, "Adaptive primal dual hybrid gradient algorithms based on average spectrum for saddle point problems",
  arXiv 2603.00644) was available to us only as its abstract; spec §3.3 rebuilt the method inside He-Yuan's
  prediction-correction framework and proved it sound (below). Its "up to ten-fold acceleration over
  Chambolle-Pock" is [S] (a secondary summary), unconfirmed against the paper.
* ``"cp"``: Chambolle-Pock (PDHG with extrapolation), ``tau = 0.99 / (omega ||A||)``, ``sigma = 0.99 omega / ||A||``.
* ``"plain"``: Arrow-Hurwicz PDHG (CP's steps, no extrapolation, no correction): a negative control that need not
  converge (it orbits on LPs with an interior solution).

aPC iteration (``H = diag(r I, s I)``):

    prediction  x~ = max(0, x - (c - A^T y) / r),  y~ = y - (A x~ - b) / s,  dx = x - x~,  dy = y - y~
                accept if ||A dx|| <= nu sqrt(r s) ||dx||   (Rayleigh quotient along the actual direction),
                else r, s <- 1.5 r, 1.5 s and predict again
    correction  q = r||dx||^2 + s||dy||^2 + dx^T A^T dy,  m = (dx + A^T dy / r, dy),
                alpha = gamma q / ||m||_H^2,  (x, y) <- (max(0, x - alpha m_x), y - alpha m_y)
    adapt       r, s <- r / 1.2, s / 1.2  if ||A dx|| < 0.25 nu sqrt(r s) ||dx||

Why it converges: the prediction satisfies ``theta(u) - theta(u~) + (w - w~)^T F(w~) >= (w - w~)^T Q (w - w~)``
with ``Q = [[r I, A^T], [0, s I]]``; monotonicity of ``F(w) = (-A^T y, A x)`` gives
``(w - w*)^T Q dw >= dw^T Q dw = q``; with ``M = H^{-1} Q`` the correction yields
``||w+ - w*||_H^2 <= ||w - w*||_H^2 - gamma (2 - gamma) q^2 / ||M dw||_H^2`` (the projection onto x >= 0 is
non-expansive in the block-scalar H-norm), and the test gives ``q >= (1 - nu/2)(r||dx||^2 + s||dy||^2) > 0``. Only
the Rayleigh quotient ``||A dx||^2 / ||dx||^2`` along the iterates matters, never ``lambda_max(A^T A)``: the steps
start at ``r s = tr(A^T A) / n`` (the *average* eigenvalue, hence the title), where CP needs ``r s > ||A||^2``.

Stopping (relative KKT error, spec §3.4): ``max(||Ax - b|| / (1 + ||b||), ||min(0, c - A^T y)|| / (1 + ||c||),
|c^T x - b^T y| / (1 + |c^T x| + |b^T y|)) <= tol``, measured every ``check_every`` iterations on the current
iterate (``x >= 0`` holds by projection). Infeasibility: between checks the iterate differences approach a ray; a
Farkas certificate (``A^T d <= 0, b^T d > 0``: primal infeasible; ``d >= 0, A d = 0, c^T d < 0``: unbounded) ends
the run with ``Status.FAILED`` and objective ``+inf`` / ``-inf``, never a finite number.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch

from sciml.core import Result, Status, report_status
from sciml.ot.pdhg_operator import CountingOperator, LPOperator, assignment_operator

METHODS = ("apc", "cp", "plain")
GROW, SHRINK, SHRINK_TEST = 1.5, 1.2, 0.25   # spec §3.3: redo growth, relaxation shrink and its trigger
CP_SAFETY = 0.99                              # tau sigma ||A||^2 = 0.99^2 < 1
MAX_REDOS = 200                               # 1.5^200: any finite ||A|| passes the test long before
CERTIFICATE_TOL = 1e-8                        # normalised Farkas residual accepted as an infeasibility proof
BLOWUP = 1e150


@dataclasses.dataclass(frozen=True)
class PDHGResult(Result):
    """Outcome of a PDHG run on ``min c^T x, A x = b, x >= 0``.

    Fields:
        x (n,), y (m,): last primal and dual iterates (``x >= 0``).
        objective: ``c^T x``; ``+inf`` for a certified infeasible LP, ``-inf`` for a certified unbounded one.
        dual_objective: ``b^T y``.
        kkt_error: the relative KKT error (module docstring) at the last check; its parts ``primal_residual``,
            ``dual_residual``, ``gap``.
        n_iter: iterations (an aPC iteration with redone predictions counts once; see ``n_redo``).
        n_matvec: products with A plus products with A^T in the iterations (``n_A + n_AT``), set-up excluded.
        status: CONVERGED only when ``kkt_error <= tol`` was measured; FAILED with ``certificate`` set for an
            infeasible or unbounded LP; MAX_ITER or NONFINITE otherwise.
        certificate: "" or "primal_infeasible" / "dual_infeasible" (a Farkas ray was found).
        history: KKT error at each check.
        steps: final proximal weights ``(r, s)`` (``r = 1/tau``, ``s = 1/sigma``).
        plan: for :func:`pdhg_assignment`, the assignment read off the plan: ``plan[i]`` = column of row i's
            largest entry (None for a general LP); ``plan_is_permutation`` says whether those columns are distinct.
    """

    x: torch.Tensor
    y: torch.Tensor
    objective: float
    dual_objective: float
    kkt_error: float
    primal_residual: float
    dual_residual: float
    gap: float
    n_iter: int
    n_matvec: int
    n_A: int
    n_AT: int
    n_redo: int
    status: Status
    method: str
    tol: float
    certificate: str
    history: tuple[float, ...]
    steps: tuple[float, float]
    plan: torch.Tensor | None = None
    plan_is_permutation: bool | None = None

    @property
    def converged(self) -> bool:
        return self.status is Status.CONVERGED


@dataclasses.dataclass
class _State:
    """The iterate with its cached products ``A x`` and ``A^T y`` (reused across steps to save products)."""

    x: torch.Tensor
    y: torch.Tensor
    Ax: torch.Tensor
    ATy: torch.Tensor
    r: float
    s: float
    redo: int = 0


def _check_vector(value, name: str, dtype: torch.dtype | None, device) -> torch.Tensor:
    if isinstance(value, (np.ndarray, list, tuple)):
        value = torch.as_tensor(np.asarray(value, dtype=np.float64))
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a torch tensor or numpy array, got {type(value).__name__}")
    if value.is_complex():
        raise ValueError(f"{name} must be real, got dtype {value.dtype}")
    if dtype is None:
        dtype = value.dtype if value.is_floating_point() else torch.float64
        device = value.device
    value = value.to(dtype=dtype, device=device)
    if value.ndim != 1:
        raise ValueError(f"{name} must be a 1-D vector, got shape {tuple(value.shape)}")
    if not bool(torch.isfinite(value).all()):
        raise ValueError(f"{name} contains NaN or Inf entries")
    return value


def _check_open_interval(value, name: str, lo: float, hi: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not lo < value < hi:
        raise ValueError(f"{name} must be a number in the open interval ({lo:g}, {hi:g}), got {value!r}")
    return float(value)


def _check_options(method: str, omega, nu, gamma, tol, max_iter, check_every) -> None:
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    _check_open_interval(omega, "omega (primal/dual step balance, r/s = omega^2)", 0.0, math.inf)
    _check_open_interval(nu, "nu (aPC acceptance level)", 0.0, 2.0)
    _check_open_interval(gamma, "gamma (aPC relaxation)", 0.0, 2.0)
    _check_open_interval(tol, "tol (relative KKT error)", 0.0, math.inf)
    for name, value in (("max_iter", max_iter), ("check_every", check_every)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an int >= 1, got {value!r}")


def _kkt(c, b, st: _State, norm_b: float, norm_c: float) -> tuple[float, float, float, float, float, float]:
    primal_obj, dual_obj = float(c @ st.x), float(b @ st.y)
    primal = float((st.Ax - b).norm()) / (1.0 + norm_b)
    dual = float(torch.clamp(c - st.ATy, max=0.0).norm()) / (1.0 + norm_c)
    gap = abs(primal_obj - dual_obj) / (1.0 + abs(primal_obj) + abs(dual_obj))
    return max(primal, dual, gap), primal, dual, gap, primal_obj, dual_obj


def _certificate(c, b, dx, dAx, dy, dATy, op: CountingOperator, norm_b: float, norm_c: float) -> str:
    """Farkas rays from the iterate differences over one check window (normalised, scale-free tests)."""
    norm_A = op.spectral_norm()
    ny = float(dy.norm())
    if ny > 0 and norm_b > 0:
        margin = float(b @ dy) / (ny * norm_b)   # b^T d > 0 for the unit ray d
        violation = float(torch.clamp(dATy, min=0.0).norm()) / (ny * norm_A)   # A^T d <= 0
        if margin > 0 and violation <= CERTIFICATE_TOL * margin:
            return "primal_infeasible"
    nx = float(dx.norm())
    if nx > 0 and norm_c > 0:
        margin = -float(c @ dx) / (nx * norm_c)   # c^T d < 0
        violation = max(float(dAx.norm()) / (nx * norm_A), float(torch.clamp(dx, max=0.0).norm()) / nx)
        if margin > 0 and violation <= CERTIFICATE_TOL * margin:
            return "dual_infeasible"
    return ""


def _apc_step(c, b, op: CountingOperator, st: _State, nu: float, gamma: float) -> bool:
    """One aPC-PDHG iteration in place; False when the prediction is a fixed point (``dw = 0``)."""
    for _ in range(MAX_REDOS):
        xt = torch.clamp(st.x - (c - st.ATy) / st.r, min=0.0)
        Axt = op.matvec(xt)
        yt = st.y - (Axt - b) / st.s
        dx, dy = st.x - xt, st.y - yt
        A_dx = float((st.Ax - Axt).norm())   # A dx from cached products: no extra matvec
        norm_dx = float(dx.norm())
        bound = nu * math.sqrt(st.r * st.s) * norm_dx
        if A_dx <= bound:
            break
        st.r, st.s, st.redo = GROW * st.r, GROW * st.s, st.redo + 1
    ATyt = op.rmatvec(yt)
    AT_dy = st.ATy - ATyt
    q = st.r * norm_dx ** 2 + st.s * float(dy @ dy) + float(dx @ AT_dy)
    mx = dx + AT_dy / st.r
    denom = st.r * float(mx @ mx) + st.s * float(dy @ dy)
    if denom == 0.0 or q <= 0.0:
        return False
    alpha = gamma * q / denom
    st.x = torch.clamp(st.x - alpha * mx, min=0.0)
    st.y = st.y - alpha * dy
    st.Ax = op.matvec(st.x)
    st.ATy = st.ATy - alpha * AT_dy   # A^T is linear and y moved along dy: no product needed
    if A_dx < SHRINK_TEST * bound:
        st.r, st.s = st.r / SHRINK, st.s / SHRINK
    return True


def _pdhg_step(c, b, op: CountingOperator, st: _State, extrapolate: bool) -> bool:
    """One Chambolle-Pock (``extrapolate``) or plain Arrow-Hurwicz iteration in place."""
    x_new = torch.clamp(st.x - (c - st.ATy) / st.r, min=0.0)
    Ax_new = op.matvec(x_new)
    A_bar = 2.0 * Ax_new - st.Ax if extrapolate else Ax_new   # A (2 x+ - x) from cached products
    st.y = st.y - (A_bar - b) / st.s
    st.ATy = op.rmatvec(st.y)
    st.x, st.Ax = x_new, Ax_new
    return True


def pdhg_lp(c, A, b, method: str = "apc", *, omega: float = 1.0, nu: float = 1.9, gamma: float = 1.9,
            tol: float = 1e-6, max_iter: int = 100_000, check_every: int = 10,
            on_failure: str = "warn") -> PDHGResult:
    """Solve ``min c^T x  s.t.  A x = b, x >= 0`` by aPC-PDHG, Chambolle-Pock or plain PDHG (module docstring).

    Args:
        c: (n,) costs; its floating dtype (float64 for numpy/int input) and device are used throughout.
        A: (m, n) dense tensor, torch sparse tensor (COO/CSR), numpy array, scipy sparse matrix, or
            :class:`~sciml.ot.pdhg_operator.LPOperator` (matrix-free ``matvec``/``rmatvec``).
        b: (m,) right-hand side.
        method: "apc" (adaptive prediction-correction, spec §3.3 variant "rayleigh_pc"; a reconstruction),
            "cp" (Chambolle-Pock) or "plain" (Arrow-Hurwicz, negative control).
        omega: balance ``r / s = omega^2`` (> 0). aPC starts at ``r s = tr(A^T A) / n``; CP and plain use
            ``tau = 0.99 / (omega ||A||)``, ``sigma = 0.99 omega / ||A||``.
        nu: aPC acceptance level in (0, 2). gamma: aPC relaxation in (0, 2).
        tol: bound on the relative KKT error. max_iter: iteration budget. check_every: iterations between KKT
            checks (the iteration count is a multiple of it unless the budget ends first).
        on_failure: "warn", "raise" or "ignore" when the status is not CONVERGED.

    Returns:
        PDHGResult. An infeasible or unbounded LP ends with status FAILED, a ``certificate`` and objective
        ``+inf`` / ``-inf``; a budget that runs out gives MAX_ITER with the last KKT error.

    Cost per iteration: aPC 2 products with A and 1 with A^T (plus 1 with A per redone prediction); CP and plain
    1 + 1. Memory O(m + n) beyond A.
    """
    _check_options(method, omega, nu, gamma, tol, max_iter, check_every)
    c = _check_vector(c, "c", None, None)
    b = _check_vector(b, "b", c.dtype, c.device)
    op = CountingOperator(A, c.dtype, c.device)
    m, n = op.shape
    if c.shape[0] != n or b.shape[0] != m:
        raise ValueError(f"shape mismatch: A is {m} x {n}, so c must have length {n} and b length {m}; got c "
                         f"{tuple(c.shape)} and b {tuple(b.shape)}")
    return _solve(c, b, op, method, omega, nu, gamma, tol, max_iter, check_every, on_failure)


def _solve(c, b, op: CountingOperator, method, omega, nu, gamma, tol, max_iter, check_every,
           on_failure) -> PDHGResult:
    if method == "apc":
        root = math.sqrt(op.mean_eigenvalue())
        r, s = omega * root, root / omega
    else:
        norm = op.spectral_norm()
        r, s = omega * norm / CP_SAFETY, norm / (CP_SAFETY * omega)
    x = torch.zeros_like(c)
    y = torch.zeros_like(b)
    st = _State(x=x, y=y, Ax=torch.zeros_like(b), ATy=torch.zeros_like(c), r=r, s=s)
    norm_b, norm_c = float(b.norm()), float(c.norm())
    history: list[float] = []
    status, certificate, it = Status.MAX_ITER, "", 0
    previous = None
    while True:
        if it % check_every == 0 or it == max_iter:
            kkt = _kkt(c, b, st, norm_b, norm_c)
            history.append(kkt[0])
            if not math.isfinite(kkt[0]) or max(float(st.x.abs().max()), float(st.y.abs().max())) > BLOWUP:
                status = Status.NONFINITE
                break
            if kkt[0] <= tol:
                status = Status.CONVERGED
                break
            if it >= max_iter:
                break
            if previous is not None:
                certificate = _certificate(c, b, st.x - previous[0], st.Ax - previous[1], st.y - previous[2],
                                           st.ATy - previous[3], op, norm_b, norm_c)
                if certificate:
                    status = Status.FAILED
                    break
            previous = (st.x, st.Ax, st.y, st.ATy)
        moved = (_apc_step(c, b, op, st, nu, gamma) if method == "apc"
                 else _pdhg_step(c, b, op, st, extrapolate=method == "cp"))
        it += 1
        if not moved:  # exact fixed point of the prediction: the KKT check decides
            kkt = _kkt(c, b, st, norm_b, norm_c)
            history.append(kkt[0])
            status = Status.CONVERGED if kkt[0] <= tol else Status.BREAKDOWN
            break
    _, primal, dual, gap, primal_obj, dual_obj = kkt
    objective = {"primal_infeasible": math.inf, "dual_infeasible": -math.inf}.get(certificate, primal_obj)
    kind = "infeasible" if certificate == "primal_infeasible" else "unbounded"
    detail = (f"certificate {certificate}: the LP is {kind}" if certificate
              else f"KKT error {kkt[0]:.2e} vs tol {tol:.1e} after {it} iterations")
    report_status(status, f"pdhg_lp[{method}]", detail, on_failure)
    return PDHGResult(x=st.x, y=st.y, objective=objective, dual_objective=dual_obj, kkt_error=kkt[0],
                      primal_residual=primal, dual_residual=dual, gap=gap, n_iter=it, n_matvec=op.n_products,
                      n_A=op.n_A, n_AT=op.n_AT, n_redo=st.redo, status=status, method=method, tol=tol,
                      certificate=certificate, history=tuple(history), steps=(st.r, st.s))


def pdhg_assignment(C, method: str = "apc", *, omega: float = 1.0, nu: float = 1.9, gamma: float = 1.9,
                    tol: float = 1e-6, max_iter: int = 100_000, check_every: int = 10,
                    on_failure: str = "warn") -> PDHGResult:
    """The linear assignment LP ``min <C, X>, X 1 = 1, X^T 1 = 1, X >= 0`` by matrix-free PDHG (spec §3.4).

    ``A`` is never formed (:func:`~sciml.ot.pdhg_operator.assignment_operator`; ``||A|| = sqrt(2n)``, average
    eigenvalue of ``A^T A`` = 2, both exact). Options as :func:`pdhg_lp`. The result's ``x`` is ``vec(X)``
    (row-major, n^2) and ``plan`` the assignment read off X (row-wise arg-max), with ``plan_is_permutation``.
    """
    _check_options(method, omega, nu, gamma, tol, max_iter, check_every)
    if isinstance(C, np.ndarray):
        C = torch.as_tensor(C)
    if not isinstance(C, torch.Tensor):
        raise TypeError(f"C must be a torch tensor or numpy array, got {type(C).__name__}")
    if C.ndim != 2 or C.shape[0] != C.shape[1] or C.shape[0] < 1:
        raise ValueError(f"C must be a square (n, n) cost matrix, got shape {tuple(C.shape)}")
    n = C.shape[0]
    c = _check_vector(C.reshape(-1), "C", None, None)
    b = torch.ones(2 * n, dtype=c.dtype, device=c.device)
    op = CountingOperator(assignment_operator(n), c.dtype, c.device)
    result = _solve(c, b, op, method, omega, nu, gamma, tol, max_iter, check_every, on_failure)
    plan = result.x.view(n, n).argmax(dim=1)
    return dataclasses.replace(result, plan=plan, plan_is_permutation=bool(plan.unique().numel() == n))


__all__ = ["LPOperator", "PDHGResult", "pdhg_assignment", "pdhg_lp"]
