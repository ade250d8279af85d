"""Bures-Wasserstein (BW) and generalised BW geometry of symmetric positive-definite matrices (spec §4.2).

BW is the L2-Wasserstein distance between centred Gaussians N(0, A) and N(0, B):
``d^2(A, B) = tr A + tr B - 2 tr (A^{1/2} B A^{1/2})^{1/2}``. The metric at ``S`` is ``g_S(U, V) = 1/2 tr(L_S[U] V)``
with ``L_S[U]`` the solution of ``S L + L S = U``. The generalised metric of Han et al. (GSI 2023) with an SPD
parameter ``M`` is the pull-back of BW by the congruence ``X -> M^{-1/2} X M^{-1/2}``, so every GBW operation here
is "congruence, BW operation, inverse congruence".

All functions are batched over leading dimensions ``(..., n, n)``, differentiable (matrix square roots and Lyapunov
solves come from :mod:`sciml.linalg`, whose Daleckii-Krein backward stays finite at repeated eigenvalues) and
follow the input's dtype and device; float64 is recommended (square roots of eigenvalues near 1e-8 lose half the
digits in float32).

References: Bhatia, Jain & Lim, "On the Bures-Wasserstein distance between positive definite matrices" (2019);
Alvarez-Esteban et al., "A fixed-point approach to barycenters in Wasserstein space" (2016); Han et al.,
"Learning with symmetric positive definite matrices via generalized Bures-Wasserstein geometry" (GSI 2023); Wang et
al., "Learning to Normalize on the SPD Manifold under Bures-Wasserstein Geometry" (CVPR 2025, arXiv 2504.00660).
"""

from __future__ import annotations

import dataclasses
import math

import torch

from sciml.core import Result, Status, check_floating, report_status
from sciml.linalg import divided_differences, lyapunov_solve, spd_inv_sqrtm, spd_sqrtm


def sym(X: torch.Tensor) -> torch.Tensor:
    """The symmetric part ``(X + X^T) / 2`` (products of symmetric matrices drift from symmetry by rounding)."""
    return (X + X.mT) / 2


def check_spd(X: torch.Tensor, name: str) -> torch.Tensor:
    """Refuse anything but finite, real, symmetric positive-definite matrices ``(..., n, n)``; returns ``sym(X)``."""
    check_floating(X, name)
    if X.is_complex():
        raise ValueError(f"{name} must be real symmetric positive definite, got dtype {X.dtype}")
    if X.ndim < 2 or X.shape[-1] != X.shape[-2] or X.shape[-1] == 0:
        raise ValueError(f"{name} must be square matrices (..., n, n) with n >= 1, got shape {tuple(X.shape)}")
    X64 = X.detach().to(torch.float64)
    scale = X64.abs().amax(dim=(-2, -1)).clamp_min(torch.finfo(torch.float64).tiny)
    asym = float(((X64 - X64.mT).abs().amax(dim=(-2, -1)) / scale).max())
    if asym > 100 * X.shape[-1] * torch.finfo(X.dtype).eps:
        raise ValueError(f"{name} must be symmetric; max |X - X^T| / max |X| = {asym:.2e}")
    low = torch.linalg.eigvalsh(sym(X64)).amin(dim=-1)
    if bool((low <= 0).any()):
        raise ValueError(f"{name} must be positive definite; its smallest eigenvalue is {float(low.min()):.3e} "
                         f"(add eps * I or clamp the eigenvalues)")
    return sym(X)


def _congruence(X: torch.Tensor, S: torch.Tensor) -> torch.Tensor:
    return sym(S @ X @ S)


def _to_bw(M: torch.Tensor | None, *mats: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Map GBW_M points to BW points by ``X -> M^{-1/2} X M^{-1/2}`` (identity when M is None)."""
    if M is None:
        return mats
    Mi = spd_inv_sqrtm(check_spd(M, "M"))
    return tuple(_congruence(X, Mi) for X in mats)


def _from_bw(M: torch.Tensor | None, X: torch.Tensor) -> torch.Tensor:
    return X if M is None else _congruence(X, spd_sqrtm(check_spd(M, "M")))


def bw_distance(A: torch.Tensor, B: torch.Tensor, M: torch.Tensor | None = None, *,
                squared: bool = False) -> torch.Tensor:
    """(Generalised) Bures-Wasserstein distance between SPD matrices, batched over leading dimensions.

    ``d^2_M(A, B) = tr(M^-1 A) + tr(M^-1 B) - 2 tr((A^{1/2} M^-1 B M^-1 A^{1/2})^{1/2})``, computed in the congruence
    form (equal to the closed form; see tests). Equivalent to ``pyriemann.utils.distance.distance_wasserstein`` for
    ``M = I``. Rounding can make ``d^2`` slightly negative for ``A ~ B``: it is clamped at 0.
    Shapes: A, B (..., n, n) broadcastable; M (n, n) or None -> (...).
    """
    A, B = check_spd(A, "A"), check_spd(B, "B")
    if A.shape[-1] != B.shape[-1]:
        raise ValueError(f"A and B must have the same size n, got {A.shape[-1]} and {B.shape[-1]}")
    d2 = _distance2(*_to_bw(M, A, B))
    return d2 if squared else d2.sqrt()


def _distance2(A: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
    """Unchecked squared BW distance of SPD matrices (callers have validated them)."""
    cross = spd_sqrtm(_congruence(B, spd_sqrtm(A))).diagonal(dim1=-2, dim2=-1).sum(-1)
    return (A.diagonal(dim1=-2, dim2=-1).sum(-1) + B.diagonal(dim1=-2, dim2=-1).sum(-1) - 2 * cross).clamp_min(0)


def _brenier_map(G: torch.Tensor, X: torch.Tensor) -> torch.Tensor:
    """The optimal transport map from N(0, G) to N(0, X): ``T = G^{-1/2} (G^{1/2} X G^{1/2})^{1/2} G^{-1/2}``."""
    Gs, Gi = spd_sqrtm(G), spd_inv_sqrtm(G)
    return _congruence(spd_sqrtm(_congruence(X, Gs)), Gi)


def bw_log(G: torch.Tensor, X: torch.Tensor) -> torch.Tensor:
    """Riemannian logarithm ``Log_G(X) = (GX)^{1/2} + (XG)^{1/2} - 2G = G T + T G - 2G`` (T the Brenier map G->X).

    Shapes: G, X (..., n, n) broadcastable -> (..., n, n), symmetric.
    """
    return _log(check_spd(G, "G"), check_spd(X, "X"))


def _log(G: torch.Tensor, X: torch.Tensor) -> torch.Tensor:
    T = _brenier_map(G, X)
    return sym(G @ T + T @ G) - 2 * G


def bw_exp(G: torch.Tensor, V: torch.Tensor) -> torch.Tensor:
    """Riemannian exponential ``Exp_G(V) = G + V + L_G[V] G L_G[V]`` (``G L + L G = V``); at I: ``(I + V/2)^2``.

    Exp is defined on all of the tangent space but is the inverse of Log only while ``I + L_G[V]`` stays positive
    definite (inside the cut locus). Shapes: G, V (..., n, n) -> (..., n, n).
    """
    G = check_spd(G, "G")
    check_floating(V, "V")
    if V.shape[-2:] != G.shape[-2:]:
        raise ValueError(f"V must be (..., {G.shape[-1]}, {G.shape[-1]}) like G, got {tuple(V.shape)}")
    return _exp(G, V)


def _exp(G: torch.Tensor, V: torch.Tensor) -> torch.Tensor:
    L = lyapunov_solve(G, sym(V))
    return sym(G + V + L @ G @ L)


def bw_inner(G: torch.Tensor, U: torch.Tensor, V: torch.Tensor) -> torch.Tensor:
    """BW metric ``g_G(U, V) = 1/2 tr(L_G[U] V)``; at I it is ``tr(UV) / 4``. Shapes: (..., n, n) -> (...)."""
    G = check_spd(G, "G")
    return 0.5 * (lyapunov_solve(G, sym(U)) * sym(V)).sum(dim=(-2, -1))


def bw_geodesic(A: torch.Tensor, B: torch.Tensor, t: float | torch.Tensor) -> torch.Tensor:
    """Point at time t of the BW geodesic from A (t = 0) to B (t = 1).

    ``gamma(t) = ((1 - t) I + t T) A ((1 - t) I + t T)`` with T the Brenier map A -> B (McCann interpolation), equal
    to ``(1-t)^2 A + t^2 B + t(1-t)[(AB)^{1/2} + (BA)^{1/2}]``. Shapes: (..., n, n) -> (..., n, n).
    """
    A, B = check_spd(A, "A"), check_spd(B, "B")
    t = torch.as_tensor(t, dtype=A.dtype, device=A.device)
    if not bool(torch.isfinite(t).all()):
        raise ValueError("t must be finite")
    eye = torch.eye(A.shape[-1], dtype=A.dtype, device=A.device)
    W = (1 - t)[..., None, None] * eye + t[..., None, None] * _brenier_map(A, B)
    return sym(W @ A @ W)


@dataclasses.dataclass(frozen=True)
class BarycenterResult(Result):
    """BW barycenter (Frechet mean) of a set of SPD matrices.

    Fields:
        mean: (n, n) barycenter.
        n_iter: fixed-point iterations done.
        residual: ``||sum_i w_i T_i - I||_F`` at the returned mean (T_i the Brenier maps mean -> X_i). It is the
            Riemannian gradient's size: zero exactly at the barycenter (Alvarez-Esteban et al. 2016, Thm 4.2).
        step: relative change ``||G_{k+1} - G_k||_F / ||G_k||_F`` of the last iteration.
        history: ``residual`` before each iteration and at the end.
        status: CONVERGED when ``residual <= tol``.
    """

    mean: torch.Tensor
    n_iter: int
    residual: float
    step: float
    history: tuple[float, ...]
    status: Status


def _fixed_point_step(G: torch.Tensor, X: torch.Tensor, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One Alvarez-Esteban step ``G <- G^{-1/2} (sum_i w_i (G^{1/2} X_i G^{1/2})^{1/2})^2 G^{-1/2}``.

    Returns the new G and the residual matrix ``sum_i w_i T_i - I`` at the old G (same square roots).
    """
    Gs, Gi = spd_sqrtm(G), spd_inv_sqrtm(G)
    S = (w[:, None, None] * spd_sqrtm(_congruence(X, Gs[None]))).sum(0)  # (n, n)
    mean_map = _congruence(S, Gi)  # sum_i w_i T_i
    eye = torch.eye(G.shape[-1], dtype=G.dtype, device=G.device)
    return _congruence(S @ S, Gi), mean_map - eye


def fixed_point_barycenter(X: torch.Tensor, iters: int) -> torch.Tensor:
    """Exactly ``iters`` unchecked fixed-point steps from the arithmetic mean (GBWBN's batch statistic)."""
    w = torch.full((X.shape[0],), 1.0 / X.shape[0], dtype=X.dtype, device=X.device)
    G = X.mean(0)
    for _ in range(iters):
        G = _fixed_point_step(G, X, w)[0]
    return G


def bw_barycenter(X: torch.Tensor, weights: torch.Tensor | None = None, *, max_iter: int = 100,
                  tol: float = 1e-10, init: torch.Tensor | None = None,
                  on_failure: str = "warn") -> BarycenterResult:
    """Bures-Wasserstein barycenter by the fixed point of Alvarez-Esteban et al. (2016), from the arithmetic mean.

    Equivalent to ``pyriemann.utils.mean.mean_wasserstein`` (which stops on the change of G); here the stop is on
    the true optimality residual ``||sum_i w_i T_i - I||_F <= tol`` (the fixed point's defining equation), so
    CONVERGED means the returned matrix is the barycenter to that accuracy. Converges from any SPD start.

    Args:
        X: (N, n, n) SPD matrices, N >= 1.
        weights: (N,) non-negative, summing to 1 (default uniform).
        max_iter: iteration budget (>= 0). tol: > 0.
        init: (n, n) SPD starting point (default: the weighted arithmetic mean).
    """
    X = check_spd(X, "X")
    if X.ndim != 3:
        raise ValueError(f"X must be a stack (N, n, n) of SPD matrices, got shape {tuple(X.shape)}")
    N = X.shape[0]
    if weights is None:
        w = torch.full((N,), 1.0 / N, dtype=X.dtype, device=X.device)
    else:
        check_floating(weights, "weights")
        w = weights.to(X.dtype)
        if w.shape != (N,) or bool((w < 0).any()) or abs(float(w.sum()) - 1) > 1e-10:
            raise ValueError(f"weights must be (N,) = ({N},), non-negative and sum to 1; got shape "
                             f"{tuple(w.shape)}, sum {float(w.sum()):.6g}")
    if isinstance(max_iter, bool) or not isinstance(max_iter, int) or max_iter < 0:
        raise ValueError(f"max_iter must be an int >= 0, got {max_iter!r}")
    if isinstance(tol, bool) or not isinstance(tol, (int, float)) or not 0 < tol < math.inf:
        raise ValueError(f"tol must be a finite number > 0, got {tol!r}")
    G = (w[:, None, None] * X).sum(0) if init is None else check_spd(init, "init")
    history: list[float] = []
    step, it = math.inf, 0
    while True:
        G_next, R = _fixed_point_step(G, X, w)
        residual = float(torch.linalg.matrix_norm(R.detach()))
        history.append(residual)
        if residual <= tol or it >= max_iter or not math.isfinite(residual):
            break
        step = float(torch.linalg.matrix_norm((G_next - G).detach()) / torch.linalg.matrix_norm(G.detach()))
        G, it = G_next, it + 1
    status = (Status.CONVERGED if residual <= tol else
              Status.NONFINITE if not math.isfinite(residual) else Status.MAX_ITER)
    report_status(status, "bw_barycenter", f"optimality residual {residual:.3e} vs tol {tol:.1e} after {it} "
                  f"iterations", on_failure)
    return BarycenterResult(mean=G, n_iter=it, residual=residual, step=step, history=tuple(history), status=status)


class _SylvesterFunction(torch.autograd.Function):
    """``h(L_S)[W]`` with ``L_S[W] = S W + W S``: in S's eigenbasis, entry (a, b) is scaled by ``h(s_a + s_b)``.

    The backward in S uses the Daleckii-Krein formula on the operator L_S (eigenvalues ``s_a + s_b``, eigenvectors
    ``u_a u_b^T``), with first divided differences of h that fall back to h' for (near) equal arguments, so it is
    finite at repeated eigenvalues of S (autograd through ``eigh`` is not: it divides by ``s_a - s_b``).
    """

    @staticmethod
    def forward(ctx, S, W, lam, U, h, dh):
        lam_pair = lam[..., :, None] + lam[..., None, :]  # (..., n, n): eigenvalues of L_S
        What = U.mT @ W.to(torch.float64) @ U
        ctx.save_for_backward(lam_pair, U, What)
        ctx.h, ctx.dh, ctx.dtypes = h, dh, (S.dtype, W.dtype)
        return (U @ (What * h(lam_pair)) @ U.mT).to(W.dtype)

    @staticmethod
    def backward(ctx, grad):
        lam_pair, U, What = ctx.saved_tensors
        Ghat = U.mT @ grad.to(torch.float64) @ U
        grad_W = U @ (Ghat * ctx.h(lam_pair)) @ U.mT
        if not ctx.needs_input_grad[0]:  # S is a constant (e.g. the batch barycentre): skip the O(n^3) part
            return None, grad_W.to(ctx.dtypes[1]), None, None, None, None
        # d out_ab = sum_c h[l_ab, l_cb] E_ac W_cb + sum_d h[l_ab, l_ad] W_ad E_db   (E = U^T dS U)
        left = divided_differences(lam_pair.mT, ctx.h, ctx.dh)  # (..., b, a, c) = h[l_ab, l_cb]
        right = divided_differences(lam_pair, ctx.h, ctx.dh)    # (..., a, b, d) = h[l_ab, l_ad]
        # Both sums as broadcast products over an (..., n, n, n) block (einsum picks a bmm path ~5x slower here).
        term1 = (Ghat.mT[..., :, :, None] * What.mT[..., :, None, :] * left).sum(-3)   # (..., a, c)
        term2 = (Ghat[..., :, :, None] * What[..., :, None, :] * right).sum(-3)        # (..., b, d)
        grad_E = term1 + term2.mT
        grad_S = U @ sym(grad_E) @ U.mT  # autograd sums a broadcast batch back to S's shape
        return grad_S.to(ctx.dtypes[0]), grad_W.to(ctx.dtypes[1]), None, None, None, None


def _sylvester_function(S: torch.Tensor, W: torch.Tensor, h, dh) -> torch.Tensor:
    lam, U = torch.linalg.eigh(sym(S.detach()).to(torch.float64))
    return _SylvesterFunction.apply(S, W, lam, U, h, dh)


def bw_tangent_isometry(G: torch.Tensor, V: torch.Tensor, *, inverse: bool = False) -> torch.Tensor:
    """The linear isometry ``T_{G -> I}`` between tangent spaces used by the GBWBN code (spec §4.2).

    ``T_{G->I}(V) = U ((U^T V U) o sqrt(2 / (g_a + g_b))) U^T`` maps ``(T_G, g_G)`` isometrically onto ``(T_I, g_I)``;
    ``inverse=True`` gives ``T_{I->G}`` (factor ``sqrt((g_a + g_b) / 2)``). This is NOT Levi-Civita parallel
    transport (it does not follow a geodesic); it is the isometry the released code calls a transport.
    Differentiable in G and V with a backward that stays finite at repeated eigenvalues of G.
    """
    G = check_spd(G, "G")
    check_floating(V, "V")
    return _tangent_isometry(G, V, inverse)


def _tangent_isometry(G: torch.Tensor, V: torch.Tensor, inverse: bool) -> torch.Tensor:
    if inverse:
        return sym(_sylvester_function(G, sym(V), lambda s: torch.sqrt(s / 2), lambda s: 0.25 / torch.sqrt(s / 2)))
    return sym(_sylvester_function(G, sym(V), lambda s: torch.sqrt(2 / s), lambda s: -torch.sqrt(2 / s) / (2 * s)))


def bw_riemannian_gradient(W: torch.Tensor, euclidean_grad: torch.Tensor) -> torch.Tensor:
    """Riemannian gradient of a function of an SPD matrix under BW: ``2 (W E + E W)`` with E = sym(Euclidean grad).

    From ``g_W(xi, V) = tr(E V)`` for all symmetric V: ``L_W[xi] = 2E``, i.e. ``xi = 2 (W E + E W)``.
    """
    E = sym(euclidean_grad)
    return 2 * sym(W @ E + E @ W)
