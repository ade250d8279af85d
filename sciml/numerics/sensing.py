"""Gradient descent for (over-parameterised) matrix sensing (Xiong, Ding, Du, ICLR 2024, arXiv 2310.01769; spec
optim_numerics section 7).

Measurements ``A(M) = (<A_i, M>)_i / sqrt(m)``; ``A = None`` is full observation (matrix factorisation).

* symmetric: ``X <- X - eta * 2 A*(A(X X^T - M*)) X``; with k > r the error decays like ``(k - r) / (4 eta t)^2``;
* asymmetric: ``E = A*(A(F G^T - M*))``, ``F <- F - eta E G``, ``G <- G - eta E^T F`` (simultaneous): linear
  convergence at a rate set by the imbalance ``F^T F - G^T G`` (so by the init scale alpha);
* ``modification={"at": T1, "beta": b, "tau": t}``: once, at iteration T1, ``F <- F + beta R V_s V_s^T`` with
  ``V_s`` the eigenvectors of ``G^T G`` below tau and ``R ~ N(0, 1/n)``: the spec's construction, which makes the
  imbalance large on the slow subspace. It is NOT claimed to be the paper's Section-5 formula (not retrievable
  here); the result records which modification ran.
* ``method="scaled_gd"`` (ScaledGD, Tong, Ma, Chi): ``F <- F - eta E G (G^T G + damping I)^-1`` and likewise for G;
  the baseline whose rate does not depend on the conditioning or on alpha for k = r. With k > r the Gram matrices
  become singular as the spurious columns decay, so the damping (PrecGD-style, Zhang-Fattahi-Zhang) is required.
"""

from __future__ import annotations

import dataclasses

import torch

from sciml.core import Result


@dataclasses.dataclass(frozen=True)
class SensingResult(Result):
    """``errors[t] = ||F_t G_t^T - M*||_F^2`` (``errors[0]`` at init), the final factors and the setting."""

    errors: torch.Tensor
    F: torch.Tensor
    G: torch.Tensor
    parameterization: str
    method: str
    modification: dict | None


def gaussian_sensing(n: int, m: int, *, symmetric: bool = True, generator: torch.Generator | None = None,
                     dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """``m`` sensing matrices (m, n, n): Gaussian, or symmetric Gaussian ``(Z + Z^T)/2``."""
    if n < 1 or m < 1:
        raise ValueError(f"n and m must be >= 1, got {n}, {m}")
    Z = torch.randn(m, n, n, generator=generator, dtype=dtype)
    return (Z + Z.mT) / 2 if symmetric else Z


def _residual_operator(sensing: torch.Tensor | None):
    """``D -> A*(A(D))`` with ``A(M) = <A_i, M>/sqrt(m)``."""
    if sensing is None:
        return lambda D: D
    m = sensing.shape[0]
    return lambda D: torch.einsum("i,ijk->jk", torch.einsum("ijk,jk->i", sensing, D), sensing) / m


def matrix_sensing_gd(M_star: torch.Tensor, k: int, *, parameterization: str = "symmetric", alpha: float = 0.1,
                      eta: float = 0.1, n_iter: int = 1000, init=None, sensing: torch.Tensor | None = None,
                      modification: dict | None = None, method: str = "gd", damping: float = 1e-3,
                      generator: torch.Generator | None = None) -> SensingResult:
    """Run GD (or ScaledGD) on ``0.5 ||A(F G^T) - A(M*)||^2`` with ``k`` columns (``F = G = X`` when symmetric)."""
    if not isinstance(M_star, torch.Tensor) or M_star.dim() != 2 or M_star.shape[0] != M_star.shape[1]:
        raise ValueError(f"M_star must be a square matrix, got {getattr(M_star, 'shape', M_star)}")
    if not bool(torch.isfinite(M_star).all()):
        raise ValueError("M_star contains NaN or Inf")
    if not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be an int >= 1, got {k!r}")
    if parameterization not in ("symmetric", "asymmetric"):
        raise ValueError(f"parameterization must be 'symmetric' or 'asymmetric', got {parameterization!r}")
    if method not in ("gd", "scaled_gd"):
        raise ValueError(f"method must be 'gd' or 'scaled_gd', got {method!r}")
    if method == "scaled_gd" and parameterization == "symmetric":
        raise ValueError("scaled_gd is implemented for the asymmetric parameterization")
    if not eta > 0 or not alpha > 0:
        raise ValueError(f"eta and alpha must be > 0, got eta={eta!r}, alpha={alpha!r}")
    if not isinstance(n_iter, int) or n_iter < 0:
        raise ValueError(f"n_iter must be an int >= 0, got {n_iter!r}")
    n = M_star.shape[0]
    if sensing is not None and (sensing.dim() != 3 or sensing.shape[1:] != (n, n)):
        raise ValueError(f"sensing must have shape (m, {n}, {n}), got {tuple(sensing.shape)}")
    if modification is not None:
        unknown = set(modification) - {"at", "beta", "tau"}
        if unknown or "at" not in modification:
            raise ValueError(f"modification takes keys 'at' (required), 'beta', 'tau'; got {sorted(modification)}")
        if parameterization != "asymmetric":
            raise ValueError("the one-step modification applies to the asymmetric parameterization")
    kw = dict(dtype=M_star.dtype, device=M_star.device)
    scale = n ** -0.5
    if init is None:
        F = alpha * scale * torch.randn(n, k, generator=generator, **kw)
        G = F.clone() if parameterization == "symmetric" else (alpha / 3) * scale * torch.randn(
            n, k, generator=generator, **kw)
    elif parameterization == "symmetric":
        F = torch.as_tensor(init, **kw).clone()
        G = F
    else:
        F, G = (torch.as_tensor(t, **kw).clone() for t in init)
    if F.shape != (n, k) or G.shape != (n, k):
        raise ValueError(f"init factors must have shape ({n}, {k})")
    residual = _residual_operator(sensing)
    errors = [float((F @ G.T - M_star).pow(2).sum())]
    for t in range(n_iter):
        if modification is not None and t == modification["at"]:
            w, V = torch.linalg.eigh(G.T @ G)
            slow = V[:, w < modification.get("tau", 0.05)]
            R = scale * torch.randn(n, slow.shape[1], generator=generator, **kw)
            F = F + modification.get("beta", 0.7) * R @ slow.T
        if parameterization == "symmetric":
            E = residual(F @ F.T - M_star)
            F = F - eta * 2 * E @ F
            G = F
        else:
            E = residual(F @ G.T - M_star)
            if method == "gd":
                F, G = F - eta * E @ G, G - eta * E.T @ F
            else:
                eye = damping * torch.eye(k, **kw)
                F, G = (F - eta * E @ G @ torch.linalg.inv(G.T @ G + eye),
                        G - eta * E.T @ F @ torch.linalg.inv(F.T @ F + eye))
        errors.append(float((F @ G.T - M_star).pow(2).sum()))
        if errors[-1] != errors[-1] or errors[-1] == float("inf"):
            raise FloatingPointError(f"GD diverged at iteration {t + 1}; lower eta (eta sigma_1(M*) must be small)")
    return SensingResult(torch.tensor(errors, dtype=torch.float64), F, G, parameterization, method, modification)
