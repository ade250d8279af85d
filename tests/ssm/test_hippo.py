"""HiPPO-LegS against its closed form, the NPLR identity, S4D inits, and exact eigenvector conditioning."""

from __future__ import annotations

import math

import pytest
import torch

from sciml.ssm import eigenvector_condition, hippo_legs, hippo_legs_nplr, s4d_inv, s4d_legs, s4d_lin


def _legs_loops(N):
    A = torch.zeros(N, N, dtype=torch.float64)
    for n in range(N):
        for k in range(N):
            if n > k:
                A[n, k] = -math.sqrt(2 * n + 1) * math.sqrt(2 * k + 1)
            elif n == k:
                A[n, k] = -(n + 1)
    return A, torch.tensor([math.sqrt(2 * n + 1) for n in range(N)], dtype=torch.float64)


@pytest.mark.parametrize("N", [1, 2, 7, 16, 32])
def test_legs_closed_form_and_spectrum(N):
    A, B = hippo_legs(N)
    A_ref, B_ref = _legs_loops(N)
    torch.testing.assert_close(A, A_ref, rtol=1e-15, atol=0)      # sqrt(a)sqrt(b) vs sqrt(ab): last-bit rounding
    torch.testing.assert_close(B, B_ref, rtol=1e-15, atol=0)
    # Triangular: eigenvalues are the diagonal -1..-N exactly.
    lam = torch.linalg.eigvals(A)
    torch.testing.assert_close(lam.real.sort().values, -torch.arange(N, 0, -1, dtype=torch.float64),
                               rtol=0, atol=1e-12)


@pytest.mark.parametrize("N", [8, 16, 64])
def test_nplr_identity(N):
    f = hippo_legs_nplr(N)
    eye = torch.eye(N, dtype=torch.float64)
    torch.testing.assert_close(f.normal + f.normal.T, -eye, rtol=0, atol=1e-12)          # A_N = -I/2 + skew
    torch.testing.assert_close(f.A, f.normal - torch.outer(f.p, f.p), rtol=0, atol=1e-12)
    torch.testing.assert_close(f.B, math.sqrt(2) * f.p, rtol=1e-15, atol=0)
    torch.testing.assert_close(f.normal @ f.normal.T, f.normal.T @ f.normal, rtol=1e-12, atol=1e-9)  # normal


@pytest.mark.parametrize("N,omega_max", [(16, 81.0), (32, 325.4), (64, 1303.3)])
def test_s4d_legs_spectrum(N, omega_max):
    init = s4d_legs(N)
    assert init.eigenvalues.shape == (N // 2,)
    torch.testing.assert_close(init.eigenvalues.real, torch.full((N // 2,), -0.5, dtype=torch.float64),
                               rtol=0, atol=1e-12)
    assert abs(float(init.eigenvalues.imag.max()) - omega_max) < 0.1           # spec 1.2.2 (verified values)
    # V^* A_N V = diag(lambda) with V unitary (all N modes).
    full = s4d_legs(N, conj_sym=False)
    f = hippo_legs_nplr(N)
    V = full.eigenvectors
    torch.testing.assert_close(V.conj().T @ f.normal.to(torch.complex128) @ V, torch.diag(full.eigenvalues),
                               rtol=0, atol=1e-9 * N * N)


def test_lin_inv_closed_form():
    lin, inv = s4d_lin(8), s4d_inv(8)
    torch.testing.assert_close(lin.eigenvalues.imag, math.pi * torch.arange(4, dtype=torch.float64))
    n = torch.arange(4, dtype=torch.float64)
    torch.testing.assert_close(inv.eigenvalues.imag, (8 / math.pi) * (8 / (2 * n + 1) - 1))


@pytest.mark.parametrize("N,kappa", [(4, 8.6e1), (8, 7.7e4), (16, 8.3e10), (24, 9.9e16)])
def test_exact_eigenvector_condition_matches_spec_table(N, kappa):
    mpmath = pytest.importorskip("mpmath")
    mpmath.mp.dps = 120
    A, _ = hippo_legs(N)
    Am = mpmath.matrix([[mpmath.mpf(float(A[i, j])) if i != j else mpmath.mpf(-(i + 1)) for j in range(N)]
                        for i in range(N)])
    # Entries below the diagonal involve sqrt((2n+1)(2k+1)): rebuild them exactly in mpmath.
    for i in range(N):
        for j in range(i):
            Am[i, j] = -mpmath.sqrt(2 * i + 1) * mpmath.sqrt(2 * j + 1)
    # Eigenvector of eigenvalue -(k+1): forward substitution on the lower-triangular (A + (k+1) I) v = 0, v_k = 1.
    V = mpmath.zeros(N, N)
    for k in range(N):
        v = [mpmath.mpf(0)] * N
        v[k] = mpmath.mpf(1)
        for i in range(k + 1, N):
            s = sum(Am[i, j] * v[j] for j in range(k, i))
            v[i] = -s / (Am[i, i] + (k + 1))
        norm = mpmath.sqrt(sum(x * x for x in v))
        for i in range(N):
            V[i, k] = v[i] / norm
    sv = mpmath.svd_r(V, compute_uv=False)
    cond = float(max(sv) / min(sv))
    assert cond == pytest.approx(kappa, rel=6e-3)
    if N >= 24:
        assert eigenvector_condition(A) > 1e15        # float64 eig: hopeless (and below the truth)


@pytest.mark.parametrize("N,n_window", [(32, 2), (64, 7), (128, 24)])
def test_memory_window_keeps_L_steps_and_turns_per_step(N, n_window):
    """The window's two properties checked on the discretised modes themselves (|Lbar|^L and the phase step),
    and the count of S4D-LegS modes with a non-empty window at L = 1024 quoted in the docstring."""
    from sciml.ssm import memory_window, memory_window_dt

    L = 1024
    lam = s4d_legs(N).eigenvalues
    lo, hi = memory_window(lam, L)
    ok = lo <= hi
    assert int(ok.sum()) == n_window
    assert bool(((lam.imag.abs() / lam.real.abs() >= 0.5 * L / 3) == ok).all())     # closed form of non-emptiness
    fallback = torch.full(lam.shape, 0.0123, dtype=torch.float64)
    dt = memory_window_dt(lam, L, fallback)
    Lbar = torch.exp(lam * dt)
    assert bool((Lbar[ok].abs() ** L >= math.exp(-3) * (1 - 1e-12)).all())          # keeps >= e^-3 over L steps
    assert bool((Lbar[ok].angle().abs() >= 0.5 * (1 - 1e-12)).all())                # >= 0.5 rad per step (< pi here)
    assert torch.equal(dt[~ok], fallback[~ok])
    # just outside the window one of the two properties fails
    for edge, factor in ((lo, 0.99), (hi, 1.01)):
        Lb = torch.exp(lam[ok] * edge[ok] * factor)
        assert bool(((Lb.abs() ** L < math.exp(-3)) | (Lb.angle().abs() < 0.5)).all())
    # a real eigenvalue (no turn) and Re = 0 (no decay, no middle) keep the fallback
    odd = torch.tensor([-0.5 + 0j, 300j], dtype=torch.complex128)
    torch.testing.assert_close(memory_window_dt(odd, L, torch.tensor([0.1, 0.2])),
                               torch.tensor([0.1, 0.2], dtype=torch.float64))
    with pytest.raises(ValueError, match="length"):
        memory_window(lam, 0)
    with pytest.raises(ValueError, match="fallback"):
        memory_window_dt(lam, L, fallback[:-1])
