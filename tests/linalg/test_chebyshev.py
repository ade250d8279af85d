"""Tests for sciml.linalg.chebyshev against numpy.polynomial.chebyshev, scipy.fft/scipy.integrate and closed forms."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.fft
import scipy.integrate
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.polynomial import chebyshev as npc

from sciml.linalg import chebyshev as cheb
from sciml.linalg.chebyshev import (chebyshev_basis, chebyshev_coefficients, chebyshev_derivative,
                                    chebyshev_evaluate, chebyshev_integral_weights, chebyshev_integrate,
                                    chebyshev_nodes, chebyshev_values)

F64 = dict(rtol=0, atol=1e-12)
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
BOX = ((0.0, 2.0), (-1.0, 3.0))


def _gen(seed: int, device: str = "cpu") -> torch.Generator:
    return torch.Generator(device=device).manual_seed(seed)


def _random_points(n: int, box, gen: torch.Generator, dtype=torch.float64) -> torch.Tensor:
    lo = torch.tensor([a for a, _ in box], dtype=dtype, device=gen.device)
    hi = torch.tensor([b for _, b in box], dtype=dtype, device=gen.device)
    return lo + (hi - lo) * torch.rand(n, len(box), generator=gen, dtype=dtype, device=gen.device)


def _grid_values(fn, ns, box, kind=2, dtype=torch.float64):
    axes = [chebyshev_nodes(n, kind, domain=ab, dtype=dtype) for n, ab in zip(ns, box)]
    return fn(*torch.meshgrid(*axes, indexing="ij"))


def _f2(x, y):  # analytic on the box, with poles at y = +-2i (Bernstein rho ~ 2.24 on [-1, 3])
    return torch.exp(torch.sin(3 * x)) / (1 + y ** 2 / 4)


# ------------------------------------------------------------------------------------------------- nodes, transforms

@pytest.mark.parametrize("n", [1, 2, 3, 8, 33])
def test_nodes_match_numpy(n):
    ref2 = npc.chebpts2(n) if n > 1 else np.zeros(1)
    torch.testing.assert_close(chebyshev_nodes(n, 2), torch.from_numpy(ref2), rtol=0, atol=1e-15)
    torch.testing.assert_close(chebyshev_nodes(n, 1), torch.from_numpy(npc.chebpts1(n)), rtol=0, atol=1e-15)
    x = chebyshev_nodes(n, 2, domain=(0.5, 3.0))
    assert bool((x[1:] > x[:-1]).all())
    if n > 1:
        assert float(x[0]) == 0.5 and float(x[-1]) == 3.0
    torch.testing.assert_close(x, 0.5 + 2.5 * (torch.from_numpy(ref2) + 1) / 2, rtol=0, atol=1e-15)


@pytest.mark.parametrize("kind", [1, 2])
@pytest.mark.parametrize("m", [1, 2, 3, 10, 17])
def test_coefficients_match_chebfit(kind, m):
    v = torch.randn(m, generator=_gen(m), dtype=torch.float64)
    x = chebyshev_nodes(m, kind)
    ref = npc.chebfit(x.numpy(), v.numpy(), m - 1)
    torch.testing.assert_close(chebyshev_coefficients(v, kind), torch.from_numpy(ref), rtol=0, atol=1e-13)


def test_kind2_matches_scipy_dct_formula_per_axis():
    v = torch.randn(5, 8, 6, generator=_gen(1), dtype=torch.float64)
    ref = v.numpy()
    for ax in range(3):  # the spec's formula: c = dct(v[::-1], type=1)/(m-1); c[0] /= 2; c[-1] /= 2
        m = ref.shape[ax]
        ref = scipy.fft.dct(np.flip(ref, axis=ax), type=1, axis=ax) / (m - 1)
        ref = np.moveaxis(ref, ax, 0)
        ref[0] /= 2
        ref[-1] /= 2
        ref = np.moveaxis(ref, 0, ax)
    torch.testing.assert_close(chebyshev_coefficients(v), torch.from_numpy(ref), rtol=0, atol=1e-13)
    # dims restricts the transform to the listed modes
    only1 = chebyshev_coefficients(v, dims=1)
    torch.testing.assert_close(only1, chebyshev_coefficients(v.transpose(0, 1), dims=0).transpose(0, 1), **F64)
    torch.testing.assert_close(chebyshev_coefficients(only1, dims=[0, -1]), chebyshev_coefficients(v), **F64)


@pytest.mark.parametrize("kind", [1, 2])
def test_round_trip_values_coefficients(kind):
    v = torch.randn(7, 1, 12, 4, generator=_gen(2), dtype=torch.float64)
    torch.testing.assert_close(chebyshev_values(chebyshev_coefficients(v, kind), kind), v, **F64)
    c = torch.randn(9, 16, generator=_gen(3), dtype=torch.float64)
    torch.testing.assert_close(chebyshev_coefficients(chebyshev_values(c, kind, dims=0), kind, dims=0), c, **F64)


@pytest.mark.parametrize("kind", [1, 2])
def test_values_match_chebval_at_nodes(kind):
    c = torch.randn(11, 6, generator=_gen(4), dtype=torch.float64)
    x, y = chebyshev_nodes(11, kind).numpy(), chebyshev_nodes(6, kind).numpy()
    ref = npc.chebgrid2d(x, y, c.numpy())
    torch.testing.assert_close(chebyshev_values(c, kind), torch.from_numpy(ref), **F64)


# ------------------------------------------------------------------------------------------------------- evaluation

def test_basis_matches_chebvander():
    gen = _gen(5)
    x = 3 * torch.rand(50, generator=gen, dtype=torch.float64) - 1  # in (-1, 2)
    ref = npc.chebvander((2 * x.numpy() - 1) / 3, 19)
    torch.testing.assert_close(chebyshev_basis(x, 20, domain=(-1, 2)), torch.from_numpy(ref), **F64)
    assert chebyshev_basis(x, 1, domain=(-1, 2)).shape == (50, 1)


@pytest.mark.parametrize("device", DEVICES)
def test_evaluate_exact_on_random_polynomials(device):
    gen = _gen(6, device)
    c1 = torch.randn(25, generator=gen, dtype=torch.float64, device=device)
    p1 = _random_points(200, [(-1, 1)], gen)
    ref1 = npc.chebval(p1[:, 0].cpu().numpy(), c1.cpu().numpy())
    torch.testing.assert_close(chebyshev_evaluate(c1, p1[:, 0]).cpu(), torch.from_numpy(ref1), **F64)
    c3 = torch.randn(6, 9, 4, generator=gen, dtype=torch.float64, device=device)
    box3 = [(0, 2), (-1, 3), (-5, -4)]
    p3 = _random_points(300, box3, gen)
    xi = [(2 * p3[:, j] - a - b) / (b - a) for j, (a, b) in enumerate(box3)]
    ref3 = npc.chebval3d(*(t.cpu().numpy() for t in xi), c3.cpu().numpy())
    torch.testing.assert_close(chebyshev_evaluate(c3, p3, domain=box3).cpu(), torch.from_numpy(ref3), **F64)


def test_interpolation_reproduces_polynomials_of_degree_below_n():
    c = torch.randn(8, 5, generator=_gen(7), dtype=torch.float64)
    for kind in (1, 2):
        vals = _grid_values(lambda x, y: torch.from_numpy(npc.chebval2d(x.numpy(), y.numpy(), c.numpy())),
                            (8, 5), [(-1, 1)] * 2, kind)
        torch.testing.assert_close(chebyshev_coefficients(vals, kind), c, **F64)


def test_evaluate_blocks_over_points(monkeypatch):
    gen = _gen(8)
    c = torch.randn(7, 5, 3, generator=gen, dtype=torch.float64)
    p = _random_points(41, [(-1, 1)] * 3, gen)
    full = chebyshev_evaluate(c, p)
    monkeypatch.setattr(cheb, "_MAX_BLOCK", 16)  # 16 // 15 -> one point per block
    torch.testing.assert_close(chebyshev_evaluate(c, p), full, rtol=0, atol=1e-14)
    assert chebyshev_evaluate(c, p[:0]).shape == (0,)


def test_spectral_convergence_2d_box():
    ns = (44, 48)
    coeffs = chebyshev_coefficients(_grid_values(_f2, ns, BOX))
    p = _random_points(2000, BOX, _gen(9))
    err = (chebyshev_evaluate(coeffs, p, domain=BOX) - _f2(p[:, 0], p[:, 1])).abs().max()
    assert float(err) <= 1e-12, float(err)
    # coefficients decay geometrically: the tail is at rounding level
    assert float(coeffs[-3:].abs().max()) < 1e-12 and float(coeffs[:, -3:].abs().max()) < 1e-12


def test_spectral_convergence_3d_box():
    box = BOX + ((-1.0, 1.0),)

    def f(x, y, z):
        return _f2(x, y) * torch.cos(2 * z)

    coeffs = chebyshev_coefficients(_grid_values(f, (44, 48, 24), box))
    p = _random_points(1000, box, _gen(10))
    err = (chebyshev_evaluate(coeffs, p, domain=box) - f(*p.unbind(1))).abs().max()
    assert float(err) <= 1e-12, float(err)


# ------------------------------------------------------------------------------------------- derivative, integrals

def test_derivative_matches_chebder():
    c = torch.randn(9, 7, generator=_gen(11), dtype=torch.float64)
    for dim in (0, 1):
        for order in (1, 2, 3):
            ref = torch.from_numpy(npc.chebder(c.numpy(), m=order, axis=dim))
            out = chebyshev_derivative(c, dim=dim, order=order)
            torch.testing.assert_close(out.narrow(dim, 0, ref.shape[dim]), ref, rtol=0, atol=1e-11)
            assert out.shape == c.shape and float(out.narrow(dim, ref.shape[dim], order).abs().max()) == 0.0
    torch.testing.assert_close(chebyshev_derivative(c, order=0), c, rtol=0, atol=0)
    assert float(chebyshev_derivative(torch.ones(1, dtype=torch.float64)).abs().max()) == 0.0


def test_derivative_against_analytic():
    coeffs = chebyshev_coefficients(_grid_values(_f2, (44, 48), BOX))
    p = _random_points(500, BOX, _gen(12))
    x, y = p.unbind(1)
    dfdx = 3 * torch.cos(3 * x) * _f2(x, y)
    dfdy = -torch.exp(torch.sin(3 * x)) * (y / 2) / (1 + y ** 2 / 4) ** 2
    d2fdx2 = (9 * torch.cos(3 * x) ** 2 - 9 * torch.sin(3 * x)) * _f2(x, y)
    for dim, order, ref, tol in ((0, 1, dfdx, 1e-10), (1, 1, dfdy, 1e-10), (0, 2, d2fdx2, 1e-8)):
        dc = chebyshev_derivative(coeffs, dim=dim, order=order, domain=BOX)
        torch.testing.assert_close(chebyshev_evaluate(dc, p, domain=BOX), ref, rtol=0, atol=tol)


def test_integral_closed_form_and_scipy():
    # closed form: int_0^2 int_{-1}^3 e^x cos(y) dy dx = (e^2 - 1)(sin 3 + sin 1)
    coeffs = chebyshev_coefficients(_grid_values(lambda x, y: torch.exp(x) * torch.cos(y), (25, 30), BOX))
    exact = (math.e ** 2 - 1) * (math.sin(3) + math.sin(1))
    torch.testing.assert_close(chebyshev_integrate(coeffs, BOX), torch.tensor(exact, dtype=torch.float64),
                               rtol=1e-13, atol=0)
    # no closed form for exp(sin 3x): scipy quad for x, arctan for y
    coeffs = chebyshev_coefficients(_grid_values(_f2, (44, 48), BOX))
    ix = scipy.integrate.quad(lambda t: math.exp(math.sin(3 * t)), 0, 2, epsabs=1e-14, epsrel=1e-13, limit=200)[0]
    iy = 2 * (math.atan(1.5) + math.atan(0.5))
    torch.testing.assert_close(chebyshev_integrate(coeffs, BOX), torch.tensor(ix * iy, dtype=torch.float64),
                               rtol=1e-12, atol=0)
    # 1-D default domain: int_{-1}^1 T_k = 2/(1-k^2) for even k
    torch.testing.assert_close(chebyshev_integrate(torch.tensor([1.0, 5.0, 3.0], dtype=torch.float64)),
                               torch.tensor(2.0 - 2.0, dtype=torch.float64), rtol=0, atol=1e-15)


@pytest.mark.parametrize("n", [1, 2, 3, 6, 21])
def test_clenshaw_curtis_weights_exact_on_polynomials(n):
    a, b = 0.5, 3.0
    x, w = chebyshev_nodes(n, 2, domain=(a, b)), chebyshev_integral_weights(n, domain=(a, b))
    if n > 1:
        torch.testing.assert_close(w, w.flip(0), rtol=0, atol=1e-15)
        assert bool((w > 0).all())
    for k in range(n):  # degree < n is exact
        exact = (b ** (k + 1) - a ** (k + 1)) / (k + 1)
        assert abs(float(w @ x ** k) - exact) <= 1e-13 * max(1.0, abs(exact))
    # the weights agree with integrating the interpolant's coefficients
    v = torch.randn(n, generator=_gen(n), dtype=torch.float64)
    torch.testing.assert_close(w @ v, chebyshev_integrate(chebyshev_coefficients(v), (a, b)), rtol=0, atol=1e-13)


def test_simpson_weights_for_three_nodes():
    ref = torch.tensor([1 / 3, 4 / 3, 1 / 3], dtype=torch.float64)
    torch.testing.assert_close(chebyshev_integral_weights(3), ref, rtol=0, atol=1e-15)


# ------------------------------------------------------------------------------------------ dtype, autograd, device

def test_float32_path():
    vals = _grid_values(_f2, (30, 30), BOX, dtype=torch.float32)
    coeffs = chebyshev_coefficients(vals)
    assert coeffs.dtype == torch.float32
    p = _random_points(300, BOX, _gen(13), dtype=torch.float32)
    out = chebyshev_evaluate(coeffs, p, domain=BOX)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, _f2(p[:, 0], p[:, 1]), rtol=0, atol=2e-5)
    torch.testing.assert_close(chebyshev_values(coeffs), vals, rtol=0, atol=2e-6)
    w = chebyshev_integral_weights(30, domain=BOX[0], dtype=torch.float32)
    assert w.dtype == torch.float32
    # nodes of a float32 grid are inside the box even after rounding
    chebyshev_evaluate(coeffs, torch.stack(torch.meshgrid(*[chebyshev_nodes(30, 2, ab, torch.float32)
                                                            for ab in BOX], indexing="ij"), -1).reshape(-1, 2), BOX)


def test_gradients():
    gen = _gen(14)
    c = torch.randn(5, 4, generator=gen, dtype=torch.float64, requires_grad=True)
    p = (0.9 * (2 * torch.rand(6, 2, generator=gen, dtype=torch.float64) - 1)).requires_grad_()
    assert torch.autograd.gradcheck(lambda c, p: chebyshev_evaluate(c, p), (c, p))
    for kind in (1, 2):
        assert torch.autograd.gradcheck(lambda c: chebyshev_coefficients(c, kind), (c,))
        assert torch.autograd.gradcheck(lambda c: chebyshev_values(c, kind), (c,))
    assert torch.autograd.gradcheck(lambda c: chebyshev_derivative(c, dim=1, order=2), (c,))
    # d/dx of the evaluated series equals the evaluated derivative series
    p1 = p.detach().requires_grad_()
    (g,) = torch.autograd.grad(chebyshev_evaluate(c.detach(), p1).sum(), p1)
    torch.testing.assert_close(g[:, 0], chebyshev_evaluate(chebyshev_derivative(c.detach(), 0), p1.detach()),
                               rtol=0, atol=1e-12)


@pytest.mark.parametrize("device", DEVICES)
def test_follows_input_device_and_dtype(device):
    v = torch.randn(6, 5, generator=_gen(15, device), dtype=torch.float32, device=device)
    c = chebyshev_coefficients(v, kind=1)
    assert c.device.type == device and c.dtype == torch.float32
    assert chebyshev_nodes(4, device=device).device.type == device
    assert chebyshev_integral_weights(4, device=device).device.type == device
    assert chebyshev_integrate(c).device.type == device


# -------------------------------------------------------------------------------------------------------- property

@settings(max_examples=50, deadline=None)
@given(shape=st.lists(st.integers(1, 7), min_size=1, max_size=3), kind=st.sampled_from([1, 2]),
       seed=st.integers(0, 2 ** 31 - 1))
def test_property_interpolant_reproduces_values(shape, kind, seed):
    gen = _gen(seed)
    v = torch.randn(*shape, generator=gen, dtype=torch.float64)
    c = chebyshev_coefficients(v, kind)
    torch.testing.assert_close(chebyshev_values(c, kind), v, rtol=0, atol=1e-12)
    # evaluating the series at the node grid gives back the samples
    axes = [chebyshev_nodes(n, kind) for n in shape]
    grid = torch.stack(torch.meshgrid(*axes, indexing="ij"), -1).reshape(-1, len(shape))
    torch.testing.assert_close(chebyshev_evaluate(c, grid), v.reshape(-1), rtol=0, atol=1e-12)
    # Clenshaw-Curtis integral of the data equals the integral of the kind-2 interpolant
    if kind == 2:
        w = [chebyshev_integral_weights(n) for n in shape]
        cc = v
        for wj in w:
            cc = torch.tensordot(wj, cc, dims=([0], [0]))
        torch.testing.assert_close(cc, chebyshev_integrate(c), rtol=0, atol=1e-12)


# ------------------------------------------------------------------------------------------------------ bad inputs

@pytest.mark.parametrize("call, match", [
    (lambda: chebyshev_coefficients(torch.tensor([1.0, float("nan"), 2.0])), "NaN"),
    (lambda: chebyshev_evaluate(torch.ones(3, dtype=torch.float64), torch.tensor([0.0, 1.5])), "outside"),
    (lambda: chebyshev_evaluate(torch.ones(3, 3), torch.tensor([[2.5, 0.5]]), BOX), "outside"),
    (lambda: chebyshev_evaluate(torch.ones(3, 3), torch.zeros(4, 3)), r"shape \(N, 2\)"),
    (lambda: chebyshev_evaluate(torch.ones(3, 3), torch.zeros(4)), r"shape \(N, 2\)"),
    (lambda: chebyshev_evaluate(torch.ones(3, 3), torch.zeros(1, 2), [(0, 1)] * 3), "2 pairs"),
    (lambda: chebyshev_coefficients(torch.ones(3), kind=3), "kind"),
    (lambda: chebyshev_values(torch.ones(3), kind=0), "kind"),
    (lambda: chebyshev_nodes(4, kind=3), "kind"),
    (lambda: chebyshev_nodes(0), "n"),
    (lambda: chebyshev_integral_weights(0), "n"),
    (lambda: chebyshev_basis(torch.zeros(3), 0), "n"),
    (lambda: chebyshev_nodes(3, domain=(1.0, 1.0)), "a < b"),
    (lambda: chebyshev_nodes(3, domain=(2.0, 1.0)), "a < b"),
    (lambda: chebyshev_integrate(torch.ones(2, 2), [(0, 1), (3, -3)]), "a < b"),
    (lambda: chebyshev_nodes(3, domain=(0.0,)), "pair"),
    (lambda: chebyshev_coefficients(torch.ones(3, dtype=torch.int64)), "floating"),
    (lambda: chebyshev_coefficients(torch.ones(3), dims=2), "dims"),
    (lambda: chebyshev_coefficients(torch.ones(3, 2), dims=[0, 0]), "repeat"),
    (lambda: chebyshev_coefficients(torch.ones(0, 2)), "empty"),
    (lambda: chebyshev_coefficients(torch.tensor(1.0)), "at least one"),
    (lambda: chebyshev_derivative(torch.ones(3), order=-1), "order"),
    (lambda: chebyshev_basis(torch.zeros(2, 2), 3), r"shape \(N,\)"),
    (lambda: chebyshev_evaluate(torch.ones(3), torch.tensor([float("inf")])), "NaN or Inf"),
])
def test_bad_inputs_raise_value_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()
