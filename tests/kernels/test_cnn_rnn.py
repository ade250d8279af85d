"""CNN and RNN kernels (spec 2.2.4-2.2.5) vs an independent dense joint-covariance recursion (shift matrices,
full time-by-time covariances), exact reductions to the MLP kernel, symmetries, wide finite networks, bad input."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from sciml.kernels import (FiniteCNN, FiniteRNN, cnn_kernel, empirical_ntk, mlp_kernel,
                           relative_frobenius, rnn_kernel, width_sweep)
from sciml.kernels.dual import resolve_activation


def _tap_matrix(size: int, tap: int, k: int, padding: str, stride: int) -> torch.Tensor:
    """(P_out, P_in) 0/1 matrix of filter tap ``tap``, built by a plain loop over output positions."""
    pad = 0 if padding == "valid" else k // 2
    n_out = (size + 2 * pad - k) // stride + 1
    S = torch.zeros(n_out, size, dtype=torch.float64)
    for p in range(n_out):
        q = stride * p + tap - pad
        if padding == "circular":
            S[p, q % size] = 1.0
        elif 0 <= q < size:
            S[p, q] = 1.0
    return S


def _joint_v(V, Sigma):
    d = torch.diagonal(Sigma)
    return V(d[:, None], Sigma, d[None, :])


def brute_cnn(X, depth, k, padding, readout, activation, sw, sb, stride=1):
    """Dense recursion on the (n P) x (n P) joint covariance with explicit tap (convolution) matrices."""
    _, V = resolve_activation(activation)
    n, space, C = X.shape[0], list(X.shape[1:-1]), X.shape[-1]

    def conv(M):
        taps = []
        for tap in itertools.product(range(k), repeat=len(space)):
            S = torch.ones(1, 1, dtype=torch.float64)
            for size, t in zip(space, tap):
                S = torch.kron(S, _tap_matrix(size, t, k, padding, stride))
            taps.append(torch.kron(torch.eye(n, dtype=torch.float64), S))
        out = sum(S @ M @ S.T for S in taps) / len(taps)
        space[:] = [_tap_matrix(size, 0, k, padding, stride).shape[0] for size in space]
        return out

    x = X.reshape(n * math.prod(space), C).to(torch.float64)
    K = sw ** 2 * conv(x @ x.T / C) + sb ** 2
    Theta = K
    for _ in range(depth - 1):
        v_phi, v_der = _joint_v(V, K)
        shape = list(space)
        K_new = sw ** 2 * conv(v_phi) + sb ** 2
        space[:] = shape
        Theta = K_new + sw ** 2 * conv(v_der * Theta)
        K = K_new
    P = math.prod(space)
    v_phi, v_der = _joint_v(V, K)
    if readout == "gap":
        A = torch.kron(torch.eye(n, dtype=torch.float64), torch.ones(1, P, dtype=torch.float64) / P)
        pool = lambda M: A @ M @ A.T  # noqa: E731
    else:
        pool = lambda M: torch.diagonal(M.reshape(n, P, n, P), dim1=1, dim2=3).mean(-1)  # noqa: E731
    nngp = sw ** 2 * pool(v_phi) + sb ** 2
    return nngp, nngp + sw ** 2 * pool(v_der * Theta)


def brute_rnn(X, activation, sw, su, sb, sv):
    """Full (n T) x (n T) forward covariance filled in order of max(t, r), and the full backward covariance
    (no time-alignment assumption: the recursion itself must zero the unaligned pairs)."""
    _, V = resolve_activation(activation)
    n, T, d = X.shape
    x = X.to(torch.float64)
    S = torch.zeros(n, T, n, T, dtype=torch.float64)
    for m in range(T):
        for t, r in [(t, r) for t in range(m + 1) for r in range(m + 1) if max(t, r) == m]:
            S[:, t, :, r] = su ** 2 * x[:, t] @ x[:, r].T / d + sb ** 2
            if t > 0 and r > 0:
                prev = S[:, t - 1, :, r - 1]
                d1 = torch.diagonal(S[:, t - 1, :, t - 1])[:, None]
                d2 = torch.diagonal(S[:, r - 1, :, r - 1])[None, :]
                S[:, t, :, r] += sw ** 2 * V(d1, prev, d2)[0]
    flat = S.reshape(n * T, n * T)
    v_phi, v_der = _joint_v(V, flat)
    v_phi, v_der = v_phi.reshape(n, T, n, T), v_der.reshape(n, T, n, T)
    nngp = sv ** 2 * v_phi[:, -1, :, -1]
    B = torch.zeros(n, T, n, T, dtype=torch.float64)
    for t in range(T - 1, -1, -1):
        for r in range(T - 1, -1, -1):
            if t == T - 1 and r == T - 1:
                B[:, t, :, r] = sv ** 2 * v_der[:, t, :, r]
            elif t < T - 1 and r < T - 1:
                B[:, t, :, r] = sw ** 2 * v_der[:, t, :, r] * B[:, t + 1, :, r + 1]
    return nngp, nngp + (B * S).sum(dim=(1, 3))


@pytest.mark.parametrize("space", [(7,), (4, 3)])
@pytest.mark.parametrize("padding", ["circular", "same"])
@pytest.mark.parametrize("readout", ["gap", "flatten"])
def test_cnn_kernel_equals_the_dense_shift_matrix_recursion(space, padding, readout):
    g = torch.Generator().manual_seed(0)
    X = torch.randn(3, *space, 2, generator=g, dtype=torch.float64)
    for depth, activation in ((1, "relu"), (3, "relu"), (2, "erf")):
        out = cnn_kernel(X, depth=depth, filter_size=3, padding=padding, readout=readout, activation=activation,
                         sigma_w=1.3, sigma_b=0.2)
        nngp, ntk = brute_cnn(X, depth, 3, padding, readout, activation, 1.3, 0.2)
        assert torch.allclose(out.nngp, nngp, rtol=1e-10, atol=1e-12)
        assert torch.allclose(out.ntk, ntk, rtol=1e-6, atol=1e-10)    # ReLU's arccos is ill-conditioned at c = 1


@pytest.mark.parametrize("space, padding, stride, k", [
    ((9,), "valid", 1, 3), ((9,), "valid", 2, 2), ((8,), "valid", 3, 3), ((8,), "same", 2, 3), ((7,), "circular", 2, 3),
    ((5, 4), "valid", 1, 2), ((5, 6), "valid", 2, 3), ((5, 4), "same", 2, 3), ((4, 5), "circular", 3, 3)])
@pytest.mark.parametrize("readout", ["gap", "flatten"])
def test_valid_padding_and_strides_equal_the_dense_tap_matrix_recursion(space, padding, stride, k, readout):
    g = torch.Generator().manual_seed(10)
    X = torch.randn(3, *space, 2, generator=g, dtype=torch.float64)
    for depth, activation in ((1, "relu"), (2, "relu"), (2, "erf")):
        try:
            out = cnn_kernel(X, depth=depth, filter_size=k, padding=padding, readout=readout, activation=activation,
                             sigma_w=1.3, sigma_b=0.2, stride=stride)
        except ValueError as err:       # too few positions left for a second valid layer
            assert "at least filter_size" in str(err)
            continue
        nngp, ntk = brute_cnn(X, depth, k, padding, readout, activation, 1.3, 0.2, stride=stride)
        assert torch.allclose(out.nngp, nngp, rtol=1e-10, atol=1e-12)
        assert torch.allclose(out.ntk, ntk, rtol=1e-6, atol=1e-10)


def test_valid_and_strided_kernels_are_what_wide_networks_converge_to():
    """Width 32 -> 512 shrinks the single-network errors, and at width 512 the empirical kernels are closer to
    the strided / valid kernel than to the stride-1 circular one (a kernel that ignored the stride would fail)."""
    g = torch.Generator().manual_seed(11)
    for space, extra in (((9,), dict(padding="valid", stride=2, filter_size=3, readout="flatten")),
                         ((6, 6), dict(padding="same", stride=2, filter_size=3, readout="gap"))):
        X = torch.randn(4, *space, 2, generator=g, dtype=torch.float64)
        settings = dict(depth=2, activation="relu", sigma_w=math.sqrt(2.0), sigma_b=0.1, **extra)
        exact = cnn_kernel(X, **settings)
        sweep = width_sweep(_cnn_net(X, **settings), X, exact.nngp, exact.ntk, (32, 512), 4)
        assert sweep.ntk_errors.mean(1)[1] < 0.5 * sweep.ntk_errors.mean(1)[0]
        assert sweep.nngp_errors.mean(1)[1] < 0.5 * sweep.nngp_errors.mean(1)[0]
        plain = cnn_kernel(X, **{**settings, "padding": "circular", "stride": 1})
        empirical = empirical_ntk(_cnn_net(X, **settings)(512, torch.Generator().manual_seed(0)), X)
        assert relative_frobenius(empirical, exact.ntk) < 0.5 * relative_frobenius(empirical, plain.ntk)


def test_cnn_cross_kernel_is_the_block_of_the_joint_kernel_and_filter_one_is_an_mlp():
    g = torch.Generator().manual_seed(1)
    X1, X2 = torch.randn(3, 6, 2, generator=g, dtype=torch.float64), torch.randn(2, 6, 2, generator=g, dtype=torch.float64)
    settings = dict(depth=2, filter_size=3, padding="same", readout="gap", activation="erf", sigma_w=1.1, sigma_b=0.3)
    joint = cnn_kernel(torch.cat([X1, X2]), **settings)
    cross = cnn_kernel(X1, X2, **settings)
    assert torch.allclose(cross.nngp, joint.nngp[:3, 3:], atol=1e-13) and torch.allclose(cross.ntk, joint.ntk[:3, 3:], atol=1e-12)
    X = torch.randn(5, 1, 4, generator=g, dtype=torch.float64)           # one position, filter 1: an MLP
    for readout in ("gap", "flatten"):
        c = cnn_kernel(X, depth=3, filter_size=1, readout=readout, sigma_w=1.4, sigma_b=0.1)
        m = mlp_kernel(X[:, 0], depth=3, sigma_w=1.4, sigma_b=0.1)          # 3 conv layers = 3 hidden layers
        assert torch.allclose(c.nngp, m.nngp, atol=1e-13) and torch.allclose(c.ntk, m.ntk, rtol=1e-6)


def test_cnn_symmetries_and_the_gap_flatten_difference():
    g = torch.Generator().manual_seed(2)
    X = torch.randn(4, 8, 3, generator=g, dtype=torch.float64)
    settings = dict(depth=2, filter_size=3, activation="relu", sigma_w=math.sqrt(2.0), sigma_b=0.1)
    gap = cnn_kernel(X, padding="circular", readout="gap", **settings)
    shifted = cnn_kernel(X, X.roll(3, dims=1), padding="circular", readout="gap", **settings)
    assert torch.allclose(shifted.nngp, gap.nngp, atol=1e-12)            # circular GAP: translation invariant
    flat = cnn_kernel(X, padding="circular", readout="flatten", **settings)
    same = cnn_kernel(X, padding="same", readout="gap", **settings)
    assert torch.allclose(torch.diagonal(flat.nngp), torch.diagonal(flat.nngp))
    assert (gap.nngp - flat.nngp).abs().max() > 1e-3 and (gap.nngp - same.nngp).abs().max() > 1e-3
    assert gap.nngp.dtype == torch.float64 and cnn_kernel(X.float(), **settings).nngp.dtype == torch.float32


@pytest.mark.parametrize("activation, T", [("erf", 5), ("relu", 4), (torch.tanh, 3)])
def test_rnn_kernel_equals_the_full_time_by_time_recursion(activation, T):
    g = torch.Generator().manual_seed(3)
    X = torch.randn(4, T, 3, generator=g, dtype=torch.float64)
    out = rnn_kernel(X, activation=activation, sigma_w=1.0, sigma_u=1.4, sigma_b=0.3, sigma_v=1.2)
    nngp, ntk = brute_rnn(X, activation, 1.0, 1.4, 0.3, 1.2)
    # a callable goes through 64-node Gauss-Hermite, whose error (~1e-5 here) differs between the two code paths
    rtol = 1e-4 if callable(activation) else 1e-6
    assert torch.allclose(out.nngp, nngp, rtol=rtol * 1e-4 if not callable(activation) else rtol, atol=1e-12)
    assert torch.allclose(out.ntk, ntk, rtol=rtol, atol=1e-10)
    H = out.forward_kernel
    assert (H[:, :, 2, 1] - H[:, :, 2, 1].T).abs().max() > 0 and H[0, 1, 2, 1].abs() > 1e-3   # t != r couples


def test_single_step_rnn_is_a_one_hidden_layer_mlp():
    X = torch.randn(5, 1, 3, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    r = rnn_kernel(X, activation="relu", sigma_w=0.7, sigma_u=1.3, sigma_b=0.0, sigma_v=1.3)
    m = mlp_kernel(X[:, 0], depth=1, activation="relu", sigma_w=1.3, sigma_b=0.0)
    assert torch.allclose(r.nngp, m.nngp, atol=1e-13) and torch.allclose(r.ntk, m.ntk, rtol=1e-6)


def _cnn_net(X, **settings):
    space = X.shape[1:-1]
    return lambda width, gen: FiniteCNN(X.shape[-1], width, spatial_dims=len(space), spatial_shape=tuple(space),
                                        generator=gen, **settings)


def test_wide_networks_approach_the_exact_kernels():
    """Single-network empirical NNGP / NTK errors shrink from width 32 to 512 (theory: by about 4x)."""
    g = torch.Generator().manual_seed(5)
    X = torch.randn(4, 6, 2, generator=g, dtype=torch.float64)
    settings = dict(depth=2, filter_size=3, padding="circular", readout="gap", activation="relu",
                    sigma_w=math.sqrt(2.0), sigma_b=0.1)
    exact = cnn_kernel(X, **settings)
    sweep = width_sweep(_cnn_net(X, **settings), X, exact.nngp, exact.ntk, (32, 512), 6)
    assert sweep.ntk_errors.mean(1)[1] < 0.5 * sweep.ntk_errors.mean(1)[0]
    assert sweep.nngp_errors.mean(1)[1] < 0.5 * sweep.nngp_errors.mean(1)[0]
    Xs = torch.randn(4, 4, 3, generator=g, dtype=torch.float64)
    rs = dict(activation="erf", sigma_w=1.0, sigma_u=1.4, sigma_b=0.3, sigma_v=1.0)
    exact = rnn_kernel(Xs, **rs)
    sweep = width_sweep(lambda w, gen: FiniteRNN(3, w, generator=gen, **rs), Xs, exact.nngp, exact.ntk, (32, 512), 6)
    assert sweep.ntk_errors.mean(1)[1] < 0.5 * sweep.ntk_errors.mean(1)[0]
    assert sweep.nngp_errors.mean(1)[1] < 0.5 * sweep.nngp_errors.mean(1)[0]


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["cnn1d_circular_gap", "cnn1d_same_flatten", "cnn2d_circular_gap", "rnn_erf"])
def test_monte_carlo_over_50_networks_per_width(arch):
    """>= 50 independent networks per width: mean errors fall with slope in [-0.65, -0.35] (width^-1/2 theory)."""
    g = torch.Generator().manual_seed(6)
    if arch.startswith("rnn"):
        X = torch.randn(4, 5, 3, generator=g, dtype=torch.float64)
        rs = dict(activation="erf", sigma_w=1.0, sigma_u=1.4, sigma_b=0.3, sigma_v=1.0)
        exact = rnn_kernel(X, **rs)
        make = lambda w, gen: FiniteRNN(3, w, generator=gen, **rs)  # noqa: E731
    else:
        X = torch.randn(4, *((8,) if "1d" in arch else (4, 4)), 3, generator=g, dtype=torch.float64)
        settings = dict(depth=2, filter_size=3, padding=arch.split("_")[1], readout=arch.split("_")[2],
                        activation="relu", sigma_w=math.sqrt(2.0), sigma_b=0.1)
        exact = cnn_kernel(X, **settings)
        make = _cnn_net(X, **settings)
    sweep = width_sweep(make, X, exact.nngp, exact.ntk, (64, 256, 1024), 50)
    assert -0.65 <= sweep.ntk_slope <= -0.35 and -0.65 <= sweep.nngp_slope <= -0.35


def test_output_covariance_over_many_networks_matches_the_nngp():
    """Mean of f f^T over 400 independent width-128 networks equals the NNGP up to Monte-Carlo error."""
    g = torch.Generator().manual_seed(7)
    X = torch.randn(3, 5, 2, generator=g, dtype=torch.float64)
    settings = dict(depth=2, filter_size=3, padding="same", readout="flatten", activation="erf", sigma_w=1.2,
                    sigma_b=0.2)
    exact = cnn_kernel(X, **settings).nngp
    make = _cnn_net(X, **settings)
    with torch.no_grad():
        outs = torch.stack([make(128, torch.Generator().manual_seed(100 + s))(X) for s in range(400)])
    assert relative_frobenius(outs.T @ outs / 400, exact) < 0.15
    Xs = torch.randn(3, 4, 2, generator=g, dtype=torch.float64)
    exact = rnn_kernel(Xs, activation="erf", sigma_u=1.4, sigma_b=0.3).nngp
    with torch.no_grad():
        outs = torch.stack([FiniteRNN(2, 128, sigma_u=1.4, sigma_b=0.3, generator=torch.Generator().manual_seed(s))(Xs)
                            for s in range(400)])
    assert relative_frobenius(outs.T @ outs / 400, exact) < 0.15


def test_bad_input():
    X = torch.randn(3, 6, 2, dtype=torch.float64)
    with pytest.raises(ValueError, match="odd"):
        cnn_kernel(X, filter_size=2)
    with pytest.raises(ValueError, match="padding"):
        cnn_kernel(X, padding="reflect")
    with pytest.raises(ValueError, match="stride"):
        cnn_kernel(X, stride=0)
    with pytest.raises(ValueError, match="stride"):
        cnn_kernel(X, stride=1.5)
    with pytest.raises(ValueError, match="at least filter_size"):
        cnn_kernel(X, padding="valid", filter_size=3, depth=3)          # 6 -> 4 -> 2 positions: layer 3 gets 2
    with pytest.raises(ValueError, match="at least filter_size"):
        FiniteCNN(2, 8, padding="valid", filter_size=7, readout="flatten", spatial_shape=(6,))
    with pytest.raises(ValueError, match="readout"):
        cnn_kernel(X, readout="max")
    with pytest.raises(ValueError, match="depth"):
        cnn_kernel(X, depth=0)
    with pytest.raises(ValueError, match="per-sample shape"):
        cnn_kernel(X, torch.randn(2, 6, 3, dtype=torch.float64))
    with pytest.raises(ValueError, match="shape"):
        cnn_kernel(torch.randn(3, 2, dtype=torch.float64))
    bad = X.clone()
    bad[0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        cnn_kernel(bad)
    with pytest.raises(ValueError, match="unknown activation"):
        cnn_kernel(X, activation="gelu")
    with pytest.raises(ValueError, match="sigma_w"):
        cnn_kernel(X, sigma_w=-1.0)
    with pytest.raises(ValueError, match="equal lengths"):
        rnn_kernel(X, torch.randn(2, 5, 2, dtype=torch.float64))
    with pytest.raises(ValueError, match="d = 2"):
        rnn_kernel(X, torch.randn(2, 6, 3, dtype=torch.float64))
    with pytest.raises(ValueError, match="NaN"):
        rnn_kernel(bad)
    with pytest.raises(ValueError, match="sigma_v"):
        rnn_kernel(X, sigma_v=float("inf"))
    with pytest.raises(ValueError, match="spatial_shape"):
        FiniteCNN(2, 8, readout="flatten")
