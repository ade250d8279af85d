"""The authors' FunBaT-CP arithmetic, re-implemented compactly in NumPy as a parity oracle (not a solver).

This follows ``Continues_Mode_Tensor_CP`` + ``LDS_GP_continues_mode`` of xuangu-fang/Functional-Bayesian-Tucker-
Decomposition (MIT) step by step, including the choices our :class:`sciml.tensor.FunBaT` deliberately changes, so
the two can be compared on the same data and split:

* per-datum messages initialised to ``1e-3 I`` / ``1e-3 U(0, 1)``, factor means ``U(0, 1)``, E[τ] = 1;
* all modes' messages computed first, then each mode smoothed (``CEP_UPDATE_INNNER_MODE: False``);
* the merged pseudo-observation ``N(ỹ = (ΣΛ + I/v)⁻¹Ση, (ΣΛ + I/v)⁻¹)`` (the N(0, vI) prior counted on top of
  the GP prior), fed to a covariance-form Kalman filter whose first state is ``N(m_0, P∞)`` with ``m_0 ~ N(0, I)``;
* q(τ) messages damped per datum with ``damping_tau``; the factor messages with ``damping``;
* prediction with the posterior means only.

Test coordinates must have been seen in training (the authors' ``merge`` for unseen ones is not reproduced: it
weights the next state incorrectly, see the spec §2.4); ``ValueError`` otherwise.

Loops run over the distinct coordinates of a mode (a sequential filter, as in the reference): this is an oracle
for data of a few hundred coordinates, not a fast path.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from scipy.linalg import expm


@dataclasses.dataclass(frozen=True)
class AuthorsCPSettings:
    """The authors' synthetic-notebook configuration (``notebook/config_synthetic_CP.yaml``)."""

    rank: int = 1
    kernel: str = "matern32"          # their "Matern_23"
    lengthscale: float = 0.1
    variance: float = 0.5
    prior_v: float = 1.0              # "v": the extra N(0, v I) on every merged pseudo-observation (inf: none)
    random_m0: bool = True            # first chain state N(m_0, P∞) with m_0 ~ N(0, I) (False: m_0 = 0)
    a0: float = 1.0
    b0: float = 1.0
    damping: float = 0.1              # "DAMPING"
    damping_tau: float = 0.2          # "DAMPING_tau"
    epochs: int = 100


# The same settings expressed as :class:`sciml.tensor.FunBaT` arguments: fixed kernel hyperparameters, one start,
# their factor damping, Gamma(1, 1) noise prior, E[τ] = 1 at the start, no standardisation, every epoch run.
# What cannot be expressed: the second N(0, vI) prior, the random first chain mean, the damping of q(τ).
AUTHORS_CP_AS_FUNBAT = dict(ranks=1, variant="cp", kernel="matern32", lengthscale=0.1, variance=0.5, learn=(),
                            restarts=1, init="uniform", damping=0.1, a0=1.0, b0=1.0, tau0=1.0, standardize=False,
                            tol=1e-12)


def state_space_matrices(kernel: str, rank: int, ell: float,
                         var: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """F, H, P∞ stacked over ``rank`` components in the reference's order [u_1..u_r, u'_1..u'_r]."""
    eye = np.eye(rank)
    if kernel == "matern12":
        return -eye / ell, eye, var * eye
    if kernel == "matern32":
        lam = np.sqrt(3.0) / ell
        F = np.block([[0 * eye, eye], [-lam**2 * eye, -2 * lam * eye]])
        return F, np.hstack([eye, 0 * eye]), np.diag(np.r_[var * np.ones(rank), lam**2 * var * np.ones(rank)])
    raise ValueError(f"kernel must be 'matern12' or 'matern32', got {kernel!r}")


def transitions(times: np.ndarray, F: np.ndarray) -> np.ndarray:
    """expm(F Δ_j) for Δ = (0, diff(times)), the reference's ``time_int_list``. Shapes: (S,) -> (S, D, D)."""
    return np.stack([expm(F * dt) for dt in np.r_[0.0, np.diff(times)]])


def authors_kalman_smoother(As: np.ndarray, obs_mean: np.ndarray, obs_cov: np.ndarray, H: np.ndarray,
                            P_inf: np.ndarray, m0: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The reference's filter (covariance form, pseudo-inverse gains) + RTS smoother; returns H m_s, H P_s Hᵀ.

    Shapes: As (S, D, D) from :func:`transitions`, obs_mean (S, r), obs_cov (S, r, r), m0 (D,) -> (S, r),
    (S, r, r).
    """
    m, P = m0.copy(), P_inf.copy()
    mf, Pf, mp, Pp = [], [], [], []
    for j, A in enumerate(As):
        m, P = A @ m, A @ P @ A.T + (P_inf - A @ P_inf @ A.T)
        mp.append(m)
        Pp.append(P)
        gain = P @ H.T @ np.linalg.pinv(H @ P @ H.T + obs_cov[j])
        m, P = m + gain @ (obs_mean[j] - H @ m), P - gain @ H @ P
        mf.append(m)
        Pf.append(P)
    ms, Ps = [mf[-1]], [Pf[-1]]
    for j in range(len(As) - 2, -1, -1):
        G = Pf[j] @ As[j + 1].T @ np.linalg.pinv(Pp[j + 1])
        ms.insert(0, mf[j] + G @ (ms[0] - mp[j + 1]))
        Ps.insert(0, Pf[j] + G @ (Ps[0] - Pp[j + 1]) @ G.T)
    return np.stack([H @ x for x in ms]), np.stack([H @ x @ H.T for x in Ps])


def authors_funbat_cp(train_coords: np.ndarray, train_values: np.ndarray, test_coords: np.ndarray,
                      settings: AuthorsCPSettings = AuthorsCPSettings(),
                      rng: np.random.Generator | None = None) -> np.ndarray:
    """Fit FunBaT-CP with the reference arithmetic and return the predictive means at ``test_coords``.

    Shapes: train_coords (N, K), train_values (N,), test_coords (M, K) -> (M,).
    """
    rng = np.random.default_rng(0) if rng is None else rng
    X, y = np.asarray(train_coords, float), np.asarray(train_values, float)
    N, K = X.shape
    r, s = settings.rank, settings
    grids, index = zip(*(np.unique(X[:, k], return_inverse=True) for k in range(K)))
    test_index = []
    for k in range(K):
        pos = np.searchsorted(grids[k], test_coords[:, k]).clip(0, len(grids[k]) - 1)
        if not np.array_equal(grids[k][pos], test_coords[:, k]):
            raise ValueError(f"mode {k}: test coordinates not seen in training (the reference's merge is not "
                             "reproduced)")
        test_index.append(pos)
    F, H, P_inf = state_space_matrices(s.kernel, r, s.lengthscale, s.variance)
    trans = [transitions(g, F) for g in grids]
    means = [rng.random((len(g), r)) for g in grids]
    covs = [np.broadcast_to(np.eye(r), (len(g), r, r)).copy() for g in grids]
    m0s = [rng.standard_normal(F.shape[0]) * float(s.random_m0) for _ in range(K)]
    lam = [np.broadcast_to(1e-3 * np.eye(r), (N, r, r)).copy() for _ in range(K)]
    eta = [1e-3 * rng.random((N, r)) for _ in range(K)]
    msg_b, tau = np.ones(N), 1.0

    def second_moments(k: int, idx: np.ndarray) -> np.ndarray:
        return covs[k][idx] + means[k][idx, :, None] * means[k][idx, None, :]

    for _ in range(s.epochs):
        for k in range(K):            # all messages from the current posteriors first
            ez, ezz = np.ones((N, r)), np.ones((N, r, r))
            for j in range(K):
                if j != k:
                    ez, ezz = ez * means[j][index[j]], ezz * second_moments(j, index[j])
            lam[k] = s.damping * lam[k] + (1 - s.damping) * tau * ezz
            eta[k] = s.damping * eta[k] + (1 - s.damping) * tau * ez * y[:, None]
        for k in range(K):
            S = len(grids[k])
            prec = np.zeros((S, r, r))
            shift = np.zeros((S, r))
            np.add.at(prec, index[k], lam[k])
            np.add.at(shift, index[k], eta[k])
            obs_cov = np.linalg.inv(prec + np.eye(r) / s.prior_v)
            obs_mean = np.einsum("sab,sb->sa", obs_cov, shift)
            means[k], covs[k] = authors_kalman_smoother(trans[k], obs_mean, obs_cov, H, P_inf, m0s[k])
        ez, ezz = np.ones((N, r)), np.ones((N, r, r))
        for j in range(K):
            ez, ezz = ez * means[j][index[j]], ezz * second_moments(j, index[j])
        new_b = 0.5 * y**2 - y * ez.sum(1) + 0.5 * ezz.sum((1, 2))
        msg_b = s.damping_tau * msg_b + (1 - s.damping_tau) * new_b
        tau = (s.a0 + 0.5 * N) / (s.b0 + msg_b.sum())
    pred = np.ones((test_coords.shape[0], r))
    for k in range(K):
        pred = pred * means[k][test_index[k]]
    return pred.sum(1)
