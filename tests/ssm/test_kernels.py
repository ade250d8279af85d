"""Kernels: log-space Vandermonde powers (underflow, long L, every dtype), final states, two-sided convolution,
transfer functions against scipy, and a sampled no-NaN / float32-vs-float64 grid over dt, L, dtype and mode."""

from __future__ import annotations

import pytest
import torch

from sciml.ssm import (S4D, S5, complex_expm1, discretize, fft_conv, log_transition, transfer_function,
                       vandermonde_kernel, vandermonde_state)


def _direct_kernel(W, Lbar, L):
    """sum_n W_n Lbar_n^l by repeated multiplication in complex128 (independent of the exp/log path)."""
    out, p = [], torch.ones_like(Lbar)
    for _ in range(L):
        out.append((W * p).sum(-1))
        p = p * Lbar
    return torch.stack(out, -1).real


def test_vandermonde_equals_direct_powers(gen):
    lam = torch.complex(-torch.rand(3, 7, dtype=torch.float64, generator=gen), 20 * torch.randn(3, 7, dtype=torch.float64, generator=gen))
    W = torch.randn(3, 7, dtype=torch.complex128, generator=gen)
    Lbar = torch.exp(0.05 * lam)
    for L in (1, 2, 37, 100):
        torch.testing.assert_close(vandermonde_kernel(W, Lbar, L, conj_sym=False), _direct_kernel(W, Lbar, L),
                                   rtol=1e-11, atol=1e-11)
        torch.testing.assert_close(vandermonde_kernel(W, None, L, log_Lbar=0.05 * lam), 2 * _direct_kernel(W, Lbar, L),
                                   rtol=1e-11, atol=1e-11)


@pytest.mark.parametrize("method", ["zoh", "bilinear"])
def test_underflowing_decay_gives_exact_kernel_not_nan(method):
    # decay * dt = -5e5 (exp underflows; log(Lbar) used to be -inf and 0 * -inf = NaN at lag 0)
    lam = torch.tensor([-5e4 + 3j, -0.5 + 1j], dtype=torch.complex128)
    dt = torch.tensor(10.0, dtype=torch.float64)
    W = torch.tensor([1.0 + 0.5j, 0.25 - 1j], dtype=torch.complex128)
    K = vandermonde_kernel(W, None, 50, conj_sym=False, log_Lbar=log_transition(lam, dt, method))
    Lbar, _ = discretize(lam, dt, method)
    assert bool(torch.isfinite(K).all())
    torch.testing.assert_close(K, _direct_kernel(W, Lbar, 50), rtol=1e-12, atol=1e-300)
    for dtype in (torch.complex64, torch.complex128):
        K = vandermonde_kernel(W.to(dtype), Lbar.to(dtype), 50)           # Lbar given: log(0) clamped, not NaN
        assert bool(torch.isfinite(K).all())


def test_long_kernel_float32_phases_stay_accurate(gen):
    # L = 65,536 with a slowly decaying fast oscillation: l * Im(log Lbar) reaches 3e4 rad.
    lam = torch.complex(torch.tensor([-0.5, -2.0], dtype=torch.float64), torch.tensor([5000.0, 300.0], dtype=torch.float64))
    W = torch.tensor([1.0 + 0j, 0.3 + 0.2j], dtype=torch.complex128)
    log_Lbar = 1e-4 * lam
    K64 = vandermonde_kernel(W, None, 65536, log_Lbar=log_Lbar)
    K32 = vandermonde_kernel(W.to(torch.complex64), None, 65536, log_Lbar=log_Lbar)
    l = torch.arange(65536, dtype=torch.float64)
    exact = 2 * (W[None, :] * torch.exp(log_Lbar[None, :] * l[:, None])).sum(-1).real     # one exp per entry
    torch.testing.assert_close(K64, exact, rtol=0, atol=1e-10)
    assert float((K32.double() - exact).norm() / exact.norm()) < 1e-6


def test_complex_expm1_small_arguments():
    z64 = torch.tensor([1e-9 + 1e-9j, -3e-8 + 0j, 0.5 - 2j, -800 + 1j], dtype=torch.complex128)
    ref = torch.tensor([complex(__import__("cmath").exp(complex(z)) - 1) if abs(z) > 1e-3 else
                        complex(z) + complex(z) ** 2 / 2 for z in z64.tolist()], dtype=torch.complex128)
    torch.testing.assert_close(complex_expm1(z64), ref, rtol=1e-12, atol=0)
    z32 = z64[:2].to(torch.complex64)
    torch.testing.assert_close(complex_expm1(z32).to(torch.complex128), ref[:2], rtol=1e-6, atol=0)   # exp-1 gives 0


def test_vandermonde_state_equals_recurrence(gen):
    log_Lbar = torch.complex(-torch.rand(4, 5, dtype=torch.float64, generator=gen),
                             torch.randn(4, 5, dtype=torch.float64, generator=gen))
    u = torch.randn(2, 4, 23, dtype=torch.float64, generator=gen)
    x = torch.zeros(2, 4, 5, dtype=torch.complex128)
    for k in range(23):
        x = torch.exp(log_Lbar) * x + u[..., k, None]
    torch.testing.assert_close(vandermonde_state(u, log_Lbar), x, rtol=1e-12, atol=1e-12)


def test_two_sided_fft_conv_equals_brute_force(gen):
    u = torch.randn(2, 17, dtype=torch.float64, generator=gen)
    K, Kb = torch.randn(2, 17, dtype=torch.float64, generator=gen), torch.randn(2, 17, dtype=torch.float64, generator=gen)
    ref = torch.zeros(2, 17, dtype=torch.float64)
    for l in range(17):
        ref[:, l] = sum(K[:, j] * u[:, l - j] for j in range(l + 1)) + sum(Kb[:, j - 1] * u[:, l + j]
                                                                          for j in range(1, 17 - l))
    torch.testing.assert_close(fft_conv(u, K, Kb), ref, rtol=1e-12, atol=1e-12)


def test_empty_inputs_raise_clear_errors(gen):
    with pytest.raises(ValueError, match="length"):
        fft_conv(torch.zeros(2, 0), torch.zeros(2, 0))
    with pytest.raises(ValueError, match="L must be a positive int"):
        vandermonde_kernel(torch.ones(3, dtype=torch.complex128), torch.ones(3, dtype=torch.complex128), 0)
    for layer in (S4D(2, 8, generator=gen), S5(2, 8, generator=gen)):
        for shape in ((1, 0, 2), (0, 5, 2)):
            with pytest.raises(ValueError, match="empty"):
                layer(torch.zeros(shape))


# scipy's ss -> tf conversion warns that the numerator's leading coefficient is ~0 (D = 0): expected here, and the
# comparison below checks the values themselves
@pytest.mark.filterwarnings("ignore:Badly conditioned filter coefficients")
def test_transfer_function_against_scipy(gen):
    signal = pytest.importorskip("scipy.signal")
    A = torch.randn(5, 5, dtype=torch.float64, generator=gen) - 3 * torch.eye(5, dtype=torch.float64)
    B, C = torch.randn(5, dtype=torch.float64, generator=gen), torch.randn(5, dtype=torch.float64, generator=gen)
    w = torch.logspace(-2, 3, 40, dtype=torch.float64)
    sys = signal.StateSpace(A.numpy(), B.numpy()[:, None], C.numpy()[None, :], [[0.0]])
    _, H = signal.freqresp(sys, w=w.numpy())
    G = transfer_function(A, B, C, 1j * w)
    torch.testing.assert_close(G, torch.from_numpy(H).to(torch.complex128), rtol=1e-10, atol=1e-12)
    lam = torch.complex(-torch.rand(5, dtype=torch.float64, generator=gen), torch.randn(5, dtype=torch.float64, generator=gen))
    Bc, Cc = B.to(torch.complex128), C.to(torch.complex128)
    torch.testing.assert_close(transfer_function(lam, Bc, Cc, 1j * w),
                               transfer_function(torch.diag(lam), Bc, Cc, 1j * w), rtol=1e-12, atol=1e-14)
    # MIMO shape and the D-free DC gain G(0) = -C A^{-1} B
    G2 = transfer_function(A, torch.randn(5, 2, dtype=torch.float64, generator=gen), torch.randn(3, 5, dtype=torch.float64, generator=gen), 1j * w)
    assert G2.shape == (40, 3, 2)
    torch.testing.assert_close(transfer_function(A, B, C, torch.zeros(1, dtype=torch.complex128))[0].real,
                               -C @ torch.linalg.solve(A, B), rtol=1e-12, atol=1e-14)


# Sampled grid: (layer, dt, L, discretisation, mode); the full grid (dt in {1e-4, 1e-2, 1, 10} x L in {3, 4096, 65536}
# x both discretisations x every layer / mode incl. bidirectional: 168 cases, 79 s on one core, all finite, worst
# float32 error 3.0e-7) is `benchmarks/bench_ssm.py --grid`. The sample covers the dt ends, L = 1 and 65,536, both
# discretisations and every mode.
GRID = [
    ("s4d-ptd128", 1e-4, 65536, "zoh", None), ("s4d-ptd128", 10.0, 4096, "bilinear", None),
    ("s4d-legs", 10.0, 65536, "zoh", None), ("s4d-legs", 1e-2, 1, "bilinear", None),
    ("s5-ptd", 10.0, 65536, "zoh", "fft"), ("s5-ptd", 1e-4, 8192, "bilinear", "scan"),
    ("s5-legs", 1.0, 4096, "zoh", "scan"), ("s5-legs", 10.0, 300, "bilinear", "sequential"),
    ("s5-lin", 1e-4, 1, "zoh", "fft"),
]


def _grid_layer(name, dt, method):
    g = torch.Generator().manual_seed(0)
    if name.startswith("s4d"):
        return S4D(2, 128 if name.endswith("128") else 32, init=name.split("-")[1].rstrip("0123456789"), dt_min=dt, dt_max=dt,
                   discretization=method, generator=g)
    init = name.split("-")[1]
    return S5(2, 16, init=init, conj_sym=init != "ptd", dt_min=dt, dt_max=dt, discretization=method, generator=g)


@pytest.mark.parametrize("name,dt,L,method,mode", GRID)
def test_no_nan_any_dtype_and_float32_matches_float64(name, dt, L, method, mode, gen):
    layer = _grid_layer(name, dt, method)
    kw = {} if mode is None else {"mode": mode}
    u = torch.randn(1, L, 2, generator=gen)
    with torch.no_grad():
        y32 = layer(u, **kw)
        halves = (torch.bfloat16, torch.float16) if L <= 8192 or name.startswith("s4d") else (torch.bfloat16,)
        for half in halves:
            y = layer(u.to(half), **kw)
            assert y.dtype == half and bool(torch.isfinite(y).all())
        if L <= 8192:
            with torch.autocast("cpu", dtype=torch.bfloat16):
                assert bool(torch.isfinite(layer(u, **kw)).all())
        y64 = layer.double()(u.double(), **kw)                 # same (float32-representable) parameters
    assert bool(torch.isfinite(y64).all()) and bool(torch.isfinite(y32).all())
    assert float((y32.double() - y64).norm() / y64.norm()) < 1e-4
