"""S4D / S5 layers: kernel = unrolled dense recurrence, step mode = convolution, scan = sequential, bad inputs."""

from __future__ import annotations

import pytest
import torch

import copy
import pickle

from sciml.ssm import (S4D, S5, SequenceModel, fft_conv, hippo_legs_nplr, linear_scan, s4d_legs, sequential_scan,
                       ssm_param_groups)

INITS = ["legs", "lin", "inv", "ptd"]
METHODS = ["zoh", "bilinear"]


def _dense_discrete(lam, dt, method):
    """Dense discretisation of x' = diag(lam) x + b u, independent of sciml's formulas: ZOH by the augmented matrix
    exponential, bilinear by a linear solve."""
    M = lam.shape[0]
    A = torch.diag(lam)
    eye = torch.eye(M, dtype=torch.complex128)
    if method == "zoh":
        aug = torch.zeros(2 * M, 2 * M, dtype=torch.complex128)
        aug[:M, :M], aug[:M, M:] = dt * A, dt * eye
        Ex = torch.linalg.matrix_exp(aug)
        return Ex[:M, :M], Ex[:M, M:]
    inv = torch.linalg.inv(eye - dt * A / 2)
    return inv @ (eye + dt * A / 2), dt * inv


def _s4d_reference(layer, u):
    """Unrolled recurrence per channel in complex128: x_k = Abar x_{k-1} + Bbar b u_k, y = 2 Re(c x) + D u."""
    Bsz, L, H = u.shape
    A = torch.complex(-torch.exp(layer.log_A_real.double()), layer.A_imag.double())
    Bv = torch.view_as_complex(layer.B.double().contiguous())
    Cv = torch.view_as_complex(layer.C.double().contiguous())
    dt = torch.exp(layer.log_dt.double())
    y = torch.zeros(Bsz, L, H, dtype=torch.float64)
    for h in range(H):
        Abar, Bbar = _dense_discrete(A[h], dt[h], layer.discretization)
        x = torch.zeros(Bsz, A.shape[1], dtype=torch.complex128)
        for k in range(L):
            x = x @ Abar.T + u[:, k, h, None].to(torch.complex128) * (Bbar @ Bv[h])[None]
            y[:, k, h] = 2 * (x @ Cv[h]).real + layer.D.double()[h] * u[:, k, h]
    return y


@pytest.mark.parametrize("init", INITS)
@pytest.mark.parametrize("method", METHODS)
def test_s4d_convolution_equals_unrolled_recurrence(init, method, gen):
    layer = S4D(3, 16, init=init, discretization=method, dt_min=0.01, dt_max=0.5, generator=gen).double()
    u = torch.randn(2, 40, 3, dtype=torch.float64, generator=gen)
    torch.testing.assert_close(layer(u), _s4d_reference(layer, u), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("init", ["legs", "ptd"])
def test_s4d_step_mode_equals_convolution(init, gen):
    layer = S4D(4, 8, init=init, discretization="bilinear", generator=gen).double()
    u = torch.randn(3, 25, 4, dtype=torch.float64, generator=gen)
    y_conv = layer(u)
    state, ys = None, []
    for k in range(u.shape[1]):
        y, state = layer.step(u[:, k], state)
        ys.append(y)
    torch.testing.assert_close(torch.stack(ys, 1), y_conv, rtol=1e-10, atol=1e-10)


def test_fft_conv_is_linear_not_circular(gen):
    u = torch.randn(2, 33, dtype=torch.float64, generator=gen)
    K = torch.randn(2, 33, dtype=torch.float64, generator=gen)
    ref = torch.stack([torch.stack([(K[b, : k + 1].flip(0) * u[b, : k + 1]).sum() for k in range(33)])
                       for b in range(2)])
    torch.testing.assert_close(fft_conv(u, K), ref, rtol=1e-12, atol=1e-12)


def test_parallel_scan_equals_sequential(gen):
    a = torch.complex(torch.rand(37, 5, dtype=torch.float64, generator=gen),
                      torch.rand(37, 5, dtype=torch.float64, generator=gen)) * 0.7
    b = torch.randn(4, 37, 5, dtype=torch.complex128, generator=gen)
    torch.testing.assert_close(linear_scan(a, b, dim=1), sequential_scan(a.expand_as(b), b, dim=1),
                               rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("init,conj_sym,blocks", [("legs", True, 1), ("ptd", False, 2), ("ptd", True, 1),
                                                   ("lin", True, 2)])
@pytest.mark.parametrize("method", METHODS)
def test_s5_scan_fft_sequential_and_dense_agree(init, conj_sym, blocks, method, gen):
    layer = S5(3, 16, init=init, blocks=blocks, conj_sym=conj_sym, discretization=method, dt_min=0.01,
               dt_max=0.5, generator=gen).double()
    u = torch.randn(2, 30, 3, dtype=torch.float64, generator=gen)
    y_scan = layer(u, mode="scan")
    torch.testing.assert_close(layer(u, mode="sequential"), y_scan, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(layer(u, mode="fft"), y_scan, rtol=1e-10, atol=1e-10)
    # Dense MIMO recurrence with an independent discretisation.
    lam = torch.complex(layer.Lambda_re.double(), layer.Lambda_im.double())
    Bt = torch.view_as_complex(layer.B.double().contiguous())
    Ct = torch.view_as_complex(layer.C.double().contiguous())
    Abar = torch.zeros(len(lam), len(lam), dtype=torch.complex128)
    Bbar = torch.zeros(len(lam), Bt.shape[1], dtype=torch.complex128)
    for n, (ln, dn) in enumerate(zip(lam, torch.exp(layer.log_step.double()))):
        a, b = _dense_discrete(ln[None], dn, method)
        Abar[n, n], Bbar[n] = a[0, 0], b[0, 0] * Bt[n]
    x = torch.zeros(2, len(lam), dtype=torch.complex128)
    ys = []
    for k in range(30):
        x = x @ Abar.T + u[:, k].to(torch.complex128) @ Bbar.T
        ys.append((2 if conj_sym else 1) * (x @ Ct.T).real + layer.D.double() * u[:, k])
    scale = float(y_scan.detach().abs().max())    # matrix_exp of the augmented system is accurate relative to this scale
    torch.testing.assert_close(torch.stack(ys, 1), y_scan, rtol=1e-10, atol=1e-10 * scale)
    state, steps = None, []
    for k in range(30):
        y, state = layer.step(u[:, k], state)
        steps.append(y)
    torch.testing.assert_close(torch.stack(steps, 1), y_scan, rtol=1e-10, atol=1e-10)


def test_s5_ptd_without_conj_sym_is_the_real_system(gen):
    # The full PTD spectrum of a real matrix with real B, C gives a real output with no 2 Re needed.
    layer = S5(2, 8, init="ptd", conj_sym=False, generator=gen).double()
    Bt = torch.view_as_complex(layer.B.double().contiguous())
    Ct = torch.view_as_complex(layer.C.double().contiguous())
    lam = torch.complex(layer.Lambda_re.double(), layer.Lambda_im.double())
    G = (Ct[:, :, None] * Bt[None] / (1j * 3.0 - lam)[None, :, None]).sum(1)
    G_conj = (Ct[:, :, None] * Bt[None] / (-1j * 3.0 - lam)[None, :, None]).sum(1)
    torch.testing.assert_close(G_conj, G.conj(), rtol=1e-10, atol=1e-10)        # G(-iw) = conj G(iw)


def test_param_groups_and_model_shapes(gen):
    model = SequenceModel(1, 10, d_model=8, n_layers=2, layer="s4d", d_state=8, init="ptd", generator=gen)
    groups = ssm_param_groups(model, lr=1e-2, ssm_lr=1e-3, weight_decay=0.05)
    ssm_names = {"log_dt", "log_A_real", "A_imag", "B"}
    ssm_ids = {id(p) for n, p in model.named_parameters() if n.split(".")[-1] in ssm_names}
    assert {id(p) for p in groups[0]["params"]} == ssm_ids and groups[0]["weight_decay"] == 0.0
    assert groups[0]["lr"] == 1e-3 and groups[1]["weight_decay"] == 0.05
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))
    out = model(torch.randn(4, 20, 1, generator=gen))
    assert out.shape == (4, 10)
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    frozen = S4D(4, 8, freeze_ssm=True, generator=gen)
    assert {n for n, p in frozen.named_parameters() if p.requires_grad} == {"C", "D"}


def test_float32_forward_follows_input_dtype(gen):
    layer = S4D(4, 8, generator=gen)
    u = torch.randn(2, 16, 4, generator=gen)
    y = layer(u)
    assert y.dtype == torch.float32
    torch.testing.assert_close(y.double(), layer.double()(u.double()), rtol=1e-4, atol=1e-5)


def test_bad_inputs(gen):
    with pytest.raises(ValueError, match="even"):
        S4D(4, 7)
    with pytest.raises(ValueError, match="init"):
        S4D(4, 8, init="foo")
    with pytest.raises(ValueError, match="discretization"):
        S4D(4, 8, discretization="euler")
    with pytest.raises(ValueError, match="blocks"):
        S5(4, 8, blocks=3)
    layer = S4D(4, 8, generator=gen)
    with pytest.raises(ValueError, match="shape"):
        layer(torch.randn(16, 4))
    with pytest.raises(ValueError, match="d_model=4"):
        layer(torch.randn(2, 16, 5))
    with pytest.raises(ValueError, match="NaN"):           # finiteness check is opt-in (it syncs the host)
        S4D(4, 8, check_finite=True, generator=gen)(torch.full((2, 16, 4), float("nan")))
    with pytest.raises(ValueError, match="NaN"):
        S5(4, 8, check_finite=True, generator=gen)(torch.full((2, 16, 4), float("nan")))
    with pytest.raises(ValueError, match="state"):
        layer(torch.randn(2, 16, 4), state=torch.zeros(3, 4, 4, dtype=torch.complex128))
    with pytest.raises(ValueError, match="not causal"):
        S4D(4, 8, bidirectional=True, generator=gen)(torch.randn(2, 16, 4), return_state=True)
    with pytest.raises(ValueError, match="kernel_dtype"):
        S4D(4, 8, kernel_dtype=torch.float16)
    with pytest.raises(ValueError, match="shape"):
        layer.step(torch.randn(2, 3, 4))


LAYER_CASES = [("s4d", dict(init="ptd", discretization="zoh")), ("s4d", dict(init="legs", discretization="bilinear")),
               ("s5", dict(init="ptd", conj_sym=False, mode="scan")), ("s5", dict(init="legs", mode="fft")),
               ("s5", dict(init="lin", discretization="bilinear", mode="sequential"))]


def _layer(kind, gen, **kw):
    cls = S4D if kind == "s4d" else S5
    return cls(3, 16, dt_min=0.01, dt_max=0.5, dtype=torch.float64, generator=gen, **kw)


@pytest.mark.parametrize("kind,kw", LAYER_CASES)
def test_return_state_then_step_continues_one_long_forward(kind, kw, gen):
    layer = _layer(kind, gen, **kw)
    u = torch.randn(2, 60, 3, dtype=torch.float64, generator=gen)
    y_full = layer(u)
    y_head, state = layer(u[:, :35], return_state=True)
    ys = [y_head]
    with torch.no_grad():                                   # cached discretisation in step
        for k in range(35, 45):
            y_k, state = layer.step(u[:, k], state)
            ys.append(y_k[:, None])
    y_tail = layer(u[:, 45:], state=state)                  # and a parallel chunk from a given state
    torch.testing.assert_close(torch.cat(ys + [y_tail], 1), y_full, rtol=1e-10, atol=1e-10)


def test_step_cache_follows_parameter_updates(gen):
    layer = _layer("s4d", gen, init="legs")
    u = torch.randn(2, 3, dtype=torch.float64, generator=gen)
    with torch.no_grad():
        y1, _ = layer.step(u)
        first = layer._cache.value
        layer.step(u)
        assert layer._cache.value is first                   # reused, not re-discretised
        layer.log_dt.add_(0.3)                               # in-place update bumps the version counter
        y2, _ = layer.step(u)
    fresh = copy.deepcopy(layer)
    with torch.no_grad():
        torch.testing.assert_close(fresh.step(u)[0], y2, rtol=1e-13, atol=1e-13)
    assert not torch.allclose(y1, y2)
    y, _ = layer.step(u)                                     # with autograd recording: no cache, gradients flow
    y.sum().backward()
    assert layer.log_dt.grad is not None


@pytest.mark.parametrize("pool", ["last", "mean"])
@pytest.mark.parametrize("layer", ["s4d", "s5"])
def test_sequence_model_step_continues_a_prompt(pool, layer, gen):
    model = SequenceModel(2, 3, d_model=8, n_layers=2, layer=layer, d_state=8, pool=pool, dtype=torch.float64,
                          generator=gen)
    x = torch.randn(2, 24, 2, dtype=torch.float64, generator=gen)
    with torch.no_grad():
        out, state = model(x[:, :10], return_state=True)
        for k in range(10, 24):
            out, state = model.step(x[:, k], state)
        torch.testing.assert_close(out, model(x), rtol=1e-10, atol=1e-10)
        out, state = model.step(x[:, 0])                     # from scratch: step 0 equals forward on length 1
        torch.testing.assert_close(out, model(x[:, :1]), rtol=1e-10, atol=1e-10)


def test_bidirectional_layers_equal_two_sided_references(gen):
    s4 = S4D(3, 8, bidirectional=True, dtype=torch.float64, dt_min=0.05, dt_max=0.5, generator=gen)
    u = torch.randn(2, 20, 3, dtype=torch.float64, generator=gen)
    K, Kb = s4.kernel(20), s4.kernel(20, backward=True)
    ref = torch.zeros(2, 20, 3, dtype=torch.float64)
    for l in range(20):
        for j in range(20):
            if j <= l:
                ref[:, l] += K[:, j] * u[:, l - j]
            if l + j + 1 < 20:
                ref[:, l] += Kb[:, j] * u[:, l + j + 1]
    torch.testing.assert_close(s4(u), ref + s4.D * u, rtol=1e-10, atol=1e-10)
    s5 = S5(3, 8, bidirectional=True, dtype=torch.float64, generator=gen)
    fwd = copy.deepcopy(s5)
    fwd.bidirectional, fwd.C_backward = False, None
    bwd = copy.deepcopy(fwd)
    with torch.no_grad():
        bwd.C.copy_(s5.C_backward)
        bwd.D.zero_()
    y_ref = fwd(u) + bwd(u.flip(1)).flip(1)                  # reversed scan, own C, D counted once
    for mode in S5.MODES:
        torch.testing.assert_close(s5(u, mode=mode), y_ref, rtol=1e-10, atol=1e-10)


def test_dtype_argument_gives_float64_accurate_eigenvalues(gen):
    layer = S4D(2, 64, dtype=torch.float64, generator=gen)
    assert all(p.dtype == torch.float64 for p in layer.parameters())
    exact = s4d_legs(64).eigenvalues
    torch.testing.assert_close(layer.A_imag[0], exact.imag, rtol=0, atol=0)
    cast = S4D(2, 64, generator=gen).double()                 # float32 parameters cast up: rounding stays
    assert float((cast.A_imag.detach()[0] - exact.imag).abs().max()) > 1e-7
    s5 = S5(2, 16, dtype=torch.float64, device="cpu", generator=gen)
    assert s5.Lambda_im.dtype == torch.float64 and s5.C.device.type == "cpu"


def test_ssm_tags_survive_deepcopy_and_pickle(gen):
    model = SequenceModel(1, 4, d_model=8, n_layers=2, layer="s5", d_state=8, generator=gen)
    names = {"Lambda_re", "Lambda_im", "log_step", "B"}
    for clone in (copy.deepcopy(model), pickle.loads(pickle.dumps(model))):
        groups = ssm_param_groups(clone, lr=1e-2, ssm_lr=1e-3, weight_decay=0.1)
        expected = {id(p) for n, p in clone.named_parameters() if n.split(".")[-1] in names}
        assert {id(p) for p in groups[0]["params"]} == expected and groups[0]["weight_decay"] == 0.0


def test_s5_lin_without_conj_sym_keeps_all_modes(gen):
    layer = S5(2, 8, init="lin", conj_sym=False, generator=gen)
    assert not layer.conj_sym and layer.n_modes == 8
    lam = torch.complex(layer.Lambda_re.double(), layer.Lambda_im.double())
    torch.testing.assert_close(lam[4:], lam[:4].conj())


def _dense_zoh_kernel(A, B, c, dt, L):
    N = A.shape[0]
    aug = torch.zeros(N + 1, N + 1, dtype=torch.float64)
    aug[:N, :N], aug[:N, N] = dt * A, dt * B
    Ex = torch.linalg.matrix_exp(aug)
    Abar, x, out = Ex[:N, :N], Ex[:N, N], []
    for _ in range(L):
        out.append(c @ x)
        x = Abar @ x
    return torch.stack(out)


def test_s4d_legs_layer_is_the_normal_part_driven_by_hippo_B(gen):
    """Through the layer: kernel == dense kernel of (A_N, B_H, c). Fails if B~ is replaced (e.g. by ones)."""
    N, L = 16, 60
    layer = S4D(1, N, init="legs", dt_min=0.05, dt_max=0.05, dtype=torch.float64, generator=gen)
    c = torch.randn(N, dtype=torch.float64, generator=gen)
    V = s4d_legs(N).eigenvectors
    with torch.no_grad():
        layer.C.copy_(torch.view_as_real((c.to(torch.complex128) @ V)[None]))
    f = hippo_legs_nplr(N)
    ref = _dense_zoh_kernel(f.normal, f.B, c, 0.05, L)
    torch.testing.assert_close(layer.kernel(L)[0], ref, rtol=1e-10, atol=1e-10 * float(ref.abs().max()))
    with torch.no_grad():
        layer.B.copy_(torch.view_as_real(torch.ones(1, N // 2, dtype=torch.complex128)))
    assert float((layer.kernel(L).detach()[0] - ref).abs().max()) > 0.1 * float(ref.abs().max())


@pytest.mark.parametrize("batch", [1, 40])                  # both readouts of S4D.step (vecdot / multiply + sum)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_step_in_low_precision_inputs_follows_the_float64_recurrence(batch, dtype, gen):
    """float32 parameters, float64 system: a float32 / bf16 input enters the step uncast (type promotion widens
    it) and the output comes back in the input's dtype, equal to the float64 recurrence on the same input."""
    for layer in (S4D(3, 16, init="ptd", generator=gen), S5(3, 16, init="legs", generator=gen)):
        u = torch.randn(batch, 12, 3, generator=gen).to(dtype)
        ref = copy.deepcopy(layer).double()
        with torch.no_grad():
            y_ref = ref(u.double())
            state, ys = None, []
            for k in range(u.shape[1]):
                y, state = layer.step(u[:, k], state)
                assert y.dtype == dtype and state.dtype == torch.complex128
                ys.append(y)
        # the float64 reference differs only by the float32 rounding of the parameters and of the output
        tol = 2e-2 if dtype == torch.bfloat16 else 1e-5
        torch.testing.assert_close(torch.stack(ys, 1).double(), y_ref, rtol=tol, atol=tol)
