"""Diagonal state-space layers: S4D (SISO per channel, FFT convolution) and S5 (MIMO, parallel scan).

Both map (batch, length, d_model) -> (batch, length, d_model), have a recurrent ``step`` that reproduces the
parallel output exactly, can return their final state (``forward(u, return_state=True)``) and start from a given
one (``forward(u, state=...)``), and name their SSM parameters (A, B, dt) in ``SSM_PARAMETERS`` so
``ssm_param_groups`` can give them a smaller learning rate and no weight decay (a class attribute: it survives
``copy.deepcopy`` and pickling, which drop attributes set on ``nn.Parameter`` objects).

Numerics: kernels and scans run in ``kernel_dtype`` / ``compute_dtype`` (float64 by default, so a float32 model
gets float32 outputs within ~1e-6 of a float64 evaluation), powers Lbar^l come from exp(l log Lbar) with
log Lbar = dt Lambda formed directly (no log(0) when a decay underflows), and half-precision inputs are
convolved in float32 and cast back. Input finiteness is checked only with ``check_finite=True`` (the check
synchronises the host with the device).

Reference: S4D (Gu, Gupta, Goel, Re, NeurIPS 2022, arXiv 2206.11893; minimal code state-spaces/s4
``models/s4/s4d.py``); S5 (Smith, Warrington, Linderman, ICLR 2023, arXiv 2208.04933; code lindermanlab/S5
``s5/ssm.py``); S4-PTD / S5-PTD (Yu et al., ICLR 2024, arXiv 2310.01698).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from sciml.core import check_generator
from sciml.ssm.hippo import DiagonalInit
from sciml.ssm.inits import block_diagonal, diagonal_init
from sciml.ssm.kernels import (check_method, discretize, fft_conv, linear_scan, log_transition, sequential_scan,
                               transition_powers, vandermonde_kernel, vandermonde_state)

MIN_DECAY = 1e-4   # |Re lambda| floor: S5's clip_eigs value


def _check_positive_int(value, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")


def _check_input(u: torch.Tensor, d_model: int, check_finite: bool, name: str = "u") -> None:
    """Type and shape checks (no host sync); the finiteness check only when asked for."""
    if not isinstance(u, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(u).__name__}")
    if not u.is_floating_point():
        raise ValueError(f"{name} must be a real floating-point tensor, got dtype {u.dtype}")
    if u.ndim != 3 or u.shape[-1] != d_model:
        raise ValueError(f"{name} must have shape (batch, length, d_model={d_model}), got {tuple(u.shape)}")
    if u.shape[0] == 0 or u.shape[1] == 0:
        raise ValueError(f"{name} is empty (shape {tuple(u.shape)}): need batch >= 1 and length >= 1")
    if check_finite and not bool(torch.isfinite(u).all()):
        raise ValueError(f"{name} contains NaN or Inf entries")


def _check_step_input(u_t: torch.Tensor, d_model: int, check_finite: bool) -> None:
    if not isinstance(u_t, torch.Tensor) or not u_t.is_floating_point():
        raise ValueError(f"u_t must be a real floating-point tensor, got {getattr(u_t, 'dtype', type(u_t))}")
    if u_t.ndim != 2 or u_t.shape[-1] != d_model or u_t.shape[0] == 0:
        raise ValueError(f"u_t must have shape (batch >= 1, d_model={d_model}), got {tuple(u_t.shape)}")
    if check_finite and not bool(torch.isfinite(u_t).all()):
        raise ValueError("u_t contains NaN or Inf entries")


def _check_state(state: torch.Tensor, shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
    if not isinstance(state, torch.Tensor) or state.shape != shape:
        raise ValueError(f"state must be a tensor of shape {tuple(shape)}, got {getattr(state, 'shape', type(state))}")
    return state if state.dtype == dtype else state.to(dtype)


def _log_dt(n: int, dt_min: float, dt_max: float, generator: torch.Generator | None) -> torch.Tensor:
    if not 0 < dt_min <= dt_max:
        raise ValueError(f"need 0 < dt_min <= dt_max, got dt_min={dt_min}, dt_max={dt_max}")
    r = torch.rand(n, dtype=torch.float64, generator=generator)
    return math.log(dt_min) + r * (math.log(dt_max) - math.log(dt_min))


def _complex_normal(shape: tuple[int, ...], generator: torch.Generator | None) -> torch.Tensor:
    z = torch.randn(*shape, 2, dtype=torch.float64, generator=generator)
    return torch.view_as_complex(z) * math.sqrt(0.5)


def _complex_dtype(real: torch.dtype) -> torch.dtype:
    return torch.complex128 if real == torch.float64 else torch.complex64


def _work_dtype(preferred: torch.dtype, u_dtype: torch.dtype) -> torch.dtype:
    """Real dtype of the internal arithmetic: the layer's setting, widened to float64 for float64 inputs."""
    return torch.float64 if torch.float64 in (preferred, u_dtype) else torch.float32


class _DiscretisationCache:
    """Caches the discretised system for ``step`` while the parameters are unchanged.

    Keyed on each parameter's storage address and in-place version counter (one flat tuple: building the key is
    most of a small step's cost); ``clear`` is called when the module's tensors are replaced (``_apply``: ``.to``,
    ``.double()``, ...), so a freed address reused by a new tensor cannot alias a stale entry. Not used while
    autograd records a graph through the parameters (a cached graph would be backpropagated twice)."""

    def __init__(self) -> None:
        self.clear()

    def clear(self) -> None:
        self.key = None
        self.value = None

    def get(self, module: nn.Module, extra: tuple, compute):
        params = [p for p in module._parameters.values() if p is not None]
        if torch.is_grad_enabled() and any(p.requires_grad for p in params):
            return compute()
        key = (*[p.data_ptr() for p in params], *[p._version for p in params], extra)
        if key != self.key:
            self.key, self.value = key, compute()
        return self.value

    def __getstate__(self):          # never pickle / deepcopy cached tensors
        return {"key": None, "value": None}

    def __setstate__(self, state) -> None:
        self.__dict__.update(state)


def _real_readout(C: torch.Tensor) -> torch.Tensor:
    """(..., M) complex C -> (..., 2M) real [Re C_0, -Im C_0, Re C_1, ...], so that for a complex x (..., M),
    Re(sum_m C_m x_m) = (view_as_real(x).flatten(-2) * result).sum(-1): half the multiplies of the complex
    product and no complex temporary (``step``'s readout)."""
    Cr = torch.view_as_real(C.resolve_conj()).clone()
    Cr[..., 1] = -Cr[..., 1]
    return Cr.flatten(-2)


def _param(t: torch.Tensor, trainable: bool, dtype: torch.dtype, device) -> nn.Parameter:
    return nn.Parameter(t.to(dtype=dtype, device=device), requires_grad=trainable)


class S4D(nn.Module):
    """S4D / S4-PTD layer: H independent diagonal SISO systems, Vandermonde kernel, FFT convolution, + D u.

    Per channel h: x' = Lambda_h x + B_h u, y = c Re(C_h x) + D_h u, c = 2 with conjugate symmetry; discretised
    with step dt_h (ZOH or bilinear). Lambda = -exp(log_A_real) + i A_imag keeps Re(Lambda) < 0. The kernel is
    built in ``kernel_dtype`` (float64 -> complex128 by default) and cast to the convolution dtype (the input's,
    float32 for half inputs).

    Reference: arXiv 2206.11893 (S4D), Sec. 3; arXiv 2310.01698 (PTD), Sec. 4 (S4-PTD = S4D with the PTD init).

    Differs from the reference code:
        * B is a separate trainable parameter (s4d.py folds it into C); C is drawn real-normal in the original
          basis and rotated by V (C~ = C V) for the LegS and PTD inits, complex-normal for Lin/Inv (as s4d.py).
        * the layer returns the SSM output only (no activation / output mixing; that lives in ``SSMBlock``).
        * ``freeze_ssm`` keeps A, B and dt fixed (the authors' robustness setting in ``s4_PTD.py``).
        * ``bidirectional`` adds a second output vector C_backward on the same (A, B, dt) and the anti-causal
          convolution of state-spaces/s4 (y[l] += sum_{j>=1} K_b[j-1] u[l+j]); such a layer has no step/state.

    Args:
        d_model: H channels.
        d_state: N, state size of the real system (N/2 complex modes with conjugate symmetry; PTD stores one
            extra mode per pair of real eigenvalues).
        init: "legs" | "lin" | "inv" | "ptd" or a DiagonalInit.
        discretization: "zoh" | "bilinear".
        dt_min, dt_max: log-uniform range of the initial steps (S4D defaults 1e-3, 1e-1).
        freeze_ssm: do not train A, B, dt.
        bidirectional: two-sided convolution (non-causal).
        kernel_dtype: real dtype in which the kernel is computed (float32 or float64).
        check_finite: raise on NaN/Inf inputs (a host sync per call; off by default).
        dtype, device: of the parameters (the init is computed in float64 and cast once).
        generator: for dt, C and D (CPU generator).

    Shapes:
        forward: u (batch, L, H) -> y (batch, L, H) [, final state (batch, H, M) complex];  kernel(L) -> (H, L).
    """

    SSM_PARAMETERS = ("log_dt", "log_A_real", "A_imag", "B")

    def __init__(self, d_model: int, d_state: int = 64, init: str | DiagonalInit = "legs",
                 discretization: str = "zoh", dt_min: float = 1e-3, dt_max: float = 1e-1, freeze_ssm: bool = False,
                 bidirectional: bool = False, kernel_dtype: torch.dtype = torch.float64, check_finite: bool = False,
                 dtype: torch.dtype = torch.float32, device: torch.device | str | None = None,
                 generator: torch.Generator | None = None) -> None:
        super().__init__()
        _check_positive_int(d_model, "d_model")
        if kernel_dtype not in (torch.float32, torch.float64):
            raise ValueError(f"kernel_dtype must be torch.float32 or torch.float64, got {kernel_dtype}")
        if not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
            raise ValueError(f"dtype must be a real floating torch.dtype, got {dtype!r}")
        check_generator(generator, torch.device("cpu"))
        self.d_model, self.d_state = d_model, d_state
        self.discretization = check_method(discretization)
        self.kernel_dtype, self.check_finite, self.bidirectional = kernel_dtype, check_finite, bool(bidirectional)
        di = diagonal_init(init, d_state, conj_sym=True)
        if not di.conj_sym:
            raise ValueError("S4D needs a conjugate-symmetric init (conj_sym=True)")
        self.init_name = di.name
        H, M = d_model, di.eigenvalues.shape[0]
        lam = di.eigenvalues

        def draw_C() -> torch.Tensor:
            if di.eigenvectors is not None:
                C = torch.randn(H, di.eigenvectors.shape[0], dtype=torch.float64, generator=generator)
                return C.to(torch.complex128) @ di.eigenvectors
            return _complex_normal((H, M), generator)

        C = draw_C()
        train = not freeze_ssm
        self.log_dt = _param(_log_dt(H, dt_min, dt_max, generator), train, dtype, device)
        self.log_A_real = _param(torch.log((-lam.real).clamp_min(MIN_DECAY)).expand(H, M).clone(), train, dtype,
                                 device)
        self.A_imag = _param(lam.imag.expand(H, M).clone(), train, dtype, device)
        self.B = _param(torch.view_as_real(di.B.expand(H, M).clone()), train, dtype, device)
        self.C = _param(torch.view_as_real(C), True, dtype, device)
        self.D = _param(torch.randn(H, dtype=torch.float64, generator=generator), True, dtype, device)
        self.C_backward = _param(torch.view_as_real(draw_C()), True, dtype, device) if self.bidirectional else None
        self._cache = _DiscretisationCache()

    @property
    def n_modes(self) -> int:
        return self.A_imag.shape[-1]

    def dt(self) -> torch.Tensor:
        return torch.exp(self.log_dt)

    def _discrete(self, rd: torch.dtype) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(log Lbar, Bbar, C) in the complex dtype of ``rd``; shapes (H, M)."""
        A = torch.complex(-torch.exp(self.log_A_real.to(rd)), self.A_imag.to(rd))
        dt = torch.exp(self.log_dt.to(rd))[:, None]
        log_Lbar = log_transition(A, dt, self.discretization)
        _, factor = discretize(A, dt, self.discretization)
        B = torch.view_as_complex(self.B.to(rd).contiguous())
        C = torch.view_as_complex(self.C.to(rd).contiguous())
        return log_Lbar, factor * B, C

    def kernel(self, L: int, backward: bool = False) -> torch.Tensor:
        """The (H, L) convolution kernel K_l = 2 Re(sum_n C_n Bbar_n Lbar_n^l) in ``kernel_dtype``
        (``backward=True``: the anti-causal kernel of a bidirectional layer)."""
        log_Lbar, Bbar, C = self._discrete(self.kernel_dtype)
        if backward:
            if self.C_backward is None:
                raise ValueError("backward kernel requested from a layer with bidirectional=False")
            C = torch.view_as_complex(self.C_backward.to(self.kernel_dtype).contiguous())
        return vandermonde_kernel(C * Bbar, None, L, conj_sym=True, log_Lbar=log_Lbar)

    def _state_shape(self, batch: int) -> tuple[int, int, int]:
        return (batch, self.d_model, self.n_modes)

    def forward(self, u: torch.Tensor, state: torch.Tensor | None = None,
                return_state: bool = False) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """y = K * u + D u (+ the free response of ``state``).

        Args:
            u: (batch, L, H) real input.
            state: (batch, H, M) complex state before the first step (default zero).
            return_state: also return the state after the last step (continue with ``step`` or another forward).
        """
        _check_input(u, self.d_model, self.check_finite)
        if self.bidirectional and (state is not None or return_state):
            raise ValueError("a bidirectional layer is not causal: it has no state (state / return_state)")
        Bsz, L, _ = u.shape
        rd = _work_dtype(self.kernel_dtype, u.dtype)
        cd = _complex_dtype(rd)
        conv = torch.float64 if u.dtype == torch.float64 else torch.float32
        log_Lbar, Bbar, C = self._discrete(rd)
        K = vandermonde_kernel(C * Bbar, None, L, conj_sym=True, log_Lbar=log_Lbar)          # (H, L)
        Kb = self.kernel(L, backward=True).to(rd) if self.bidirectional else None
        uT = u.transpose(1, 2).to(conv)                                                        # (B, H, L)
        y = fft_conv(uT, K, Kb)
        if state is not None:
            x0 = _check_state(state, self._state_shape(Bsz), cd)
            # free response 2 Re(sum_m C_m Lbar_m^(l+1) x0_m)
            y = y + vandermonde_kernel(C * torch.exp(log_Lbar) * x0, None, L, log_Lbar=log_Lbar).to(conv)
        y = (y.transpose(1, 2) + self.D.to(conv) * u.to(conv)).to(u.dtype)
        if not return_state:
            return y
        x_L = Bbar * vandermonde_state(uT.to(rd), log_Lbar)                                  # (B, H, M)
        if state is not None:
            x_L = x_L + torch.exp(L * log_Lbar) * x0
        return y, x_L

    def initial_state(self, batch: int, device: torch.device | str | None = None) -> torch.Tensor:
        """Zero state, shape (batch, H, M), complex in the kernel dtype."""
        return torch.zeros(self._state_shape(batch), dtype=_complex_dtype(self.kernel_dtype),
                           device=device or self.C.device)

    def _apply(self, fn, *args, **kwargs):
        self._cache.clear()
        return super()._apply(fn, *args, **kwargs)

    def _step_system(self, rd: torch.dtype) -> tuple[torch.Tensor, ...]:
        """(Lbar (H, M) complex, Bbar (H, M) complex, readout 2C as real (H, 2M), D (H,)), cached."""
        def compute():
            log_Lbar, Bbar, C = self._discrete(rd)
            return torch.exp(log_Lbar), Bbar, _real_readout(2 * C), self.D.to(rd)
        return self._cache.get(self, (rd, self.discretization), compute)

    def step(self, u_t: torch.Tensor, state: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """One recurrent step: x_k = Lbar x_{k-1} + Bbar u_k, y_k = 2 Re(sum C x_k) + D u_k.

        The discretised system is cached between calls while the parameters do not change (and autograd is
        not recording through them). Each torch call costs microseconds at batch 1, so the hot path makes as
        few as it can: u_k enters the complex product and the D u_k term uncast (type promotion does the
        widening), the update is one fused addcmul, the readout one real dot product.

        Shapes: u_t (batch, H), state (batch, H, M) or None (zeros) -> (y_t (batch, H), new state).
        """
        _check_step_input(u_t, self.d_model, self.check_finite)
        if self.bidirectional:
            raise ValueError("a bidirectional layer is not causal: it has no step")
        rd = torch.float64 if self.kernel_dtype == torch.float64 or u_t.dtype == torch.float64 else torch.float32
        Lbar, Bbar, C_r, D = self._step_system(rd)
        x = Bbar * u_t.unsqueeze(-1)                                                     # Bbar u_k, (batch, H, M)
        if state is not None:
            x.addcmul_(Lbar, _check_state(state, x.shape, x.dtype))
        # one (batch, H, M) allocation per step (the new state) and no temporaries of that size: at batch 64 a
        # 2 MB temporary is a fresh mmap with page faults on every step, which costs more than the arithmetic
        y = torch.linalg.vecdot(torch.view_as_real(x).flatten(-2), C_r).addcmul_(D, u_t)
        return (y if y.dtype == u_t.dtype else y.to(u_t.dtype)), x


class S5(nn.Module):
    """S5 / S5-PTD layer: one MIMO diagonal SSM with P states shared by all H channels.

    x_k = Lbar x_{k-1} + Bbar u_k, y_k = c Re(C~ x_k) + D u_k with Lbar, Bbar from per-state steps (ZOH or
    bilinear). Computed by a parallel associative scan (``mode="scan"``), by per-state FFT convolution with the
    geometric sequence Lbar^l (``"fft"``, exact for LTI systems) or by a loop (``"sequential"``, reference).

    Reference: arXiv 2208.04933 (S5), Sec. 3 and App. D (init, conjugate symmetry, blocks, bidirectional);
    arXiv 2310.01698 (S5-PTD: Lambda, V from the PTD of HiPPO-LegS blocks; B~ = V^{-1} B, C~ = C V with B, C
    lecun-normal).

    Differs from the reference code:
        * Re(Lambda) is kept <= -1e-4 by clamping in the forward pass (S5's ``clip_eigs``) instead of optional;
        * one step size per state (S5's default), initialised log-uniform;
        * the scan runs in ``compute_dtype`` (float64 by default: a complex64 scan of L = 65k slowly decaying
          steps drifts by ~L eps = 4e-3 relative).

    Args:
        d_model: H.
        d_state: P, total state size (P/blocks per block; P/(2 blocks) complex modes per block with conj_sym).
        init: "legs" | "lin" | "inv" | "ptd" or a DiagonalInit (of one block).
        blocks: J identical blocks (block size P/J).
        conj_sym: keep one member of each conjugate pair and take 2 Re (S5-PTD's authors switch it off).
        discretization, dt_min, dt_max, freeze_ssm, check_finite, dtype, device, generator: as in S4D.
        bidirectional: also scan the reversed sequence, read out with its own C (S5's bidirectional option).
        mode: "scan" | "fft" | "sequential".
        compute_dtype: real dtype of the discretisation and the scan (float32 or float64).

    Shapes:
        forward: u (batch, L, H) -> (batch, L, H) [, final state (batch, M) complex].
    """

    MODES = ("scan", "fft", "sequential")
    SSM_PARAMETERS = ("Lambda_re", "Lambda_im", "log_step", "B")

    def __init__(self, d_model: int, d_state: int = 64, init: str | DiagonalInit = "legs", blocks: int = 1,
                 conj_sym: bool = True, discretization: str = "zoh", dt_min: float = 1e-3, dt_max: float = 1e-1,
                 mode: str = "scan", freeze_ssm: bool = False, bidirectional: bool = False,
                 compute_dtype: torch.dtype = torch.float64, check_finite: bool = False,
                 dtype: torch.dtype = torch.float32, device: torch.device | str | None = None,
                 generator: torch.Generator | None = None) -> None:
        super().__init__()
        _check_positive_int(d_model, "d_model")
        if isinstance(blocks, bool) or not isinstance(blocks, int) or blocks < 1 or d_state % blocks:
            raise ValueError(f"blocks must be a positive int dividing d_state={d_state}, got {blocks!r}")
        if mode not in self.MODES:
            raise ValueError(f"mode must be one of {self.MODES}, got {mode!r}")
        if compute_dtype not in (torch.float32, torch.float64):
            raise ValueError(f"compute_dtype must be torch.float32 or torch.float64, got {compute_dtype}")
        if not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
            raise ValueError(f"dtype must be a real floating torch.dtype, got {dtype!r}")
        check_generator(generator, torch.device("cpu"))
        self.d_model, self.d_state, self.mode = d_model, d_state, mode
        self.compute_dtype, self.check_finite, self.bidirectional = compute_dtype, check_finite, bool(bidirectional)
        self.discretization = check_method(discretization)
        di = block_diagonal(diagonal_init(init, d_state // blocks, conj_sym), blocks)
        if di.conj_sym != conj_sym:
            raise ValueError(f"init {di.name!r} has conj_sym={di.conj_sym}, but the layer was asked for "
                             f"conj_sym={conj_sym}")
        self.conj_sym = conj_sym
        self.init_name = di.name
        H, M = d_model, di.eigenvalues.shape[0]
        P = di.eigenvectors.shape[0] if di.eigenvectors is not None else M

        def draw_C() -> torch.Tensor:
            if di.eigenvectors is not None:
                C = torch.randn(H, P, dtype=torch.float64, generator=generator) / math.sqrt(P)
                return C.to(torch.complex128) @ di.eigenvectors
            return _complex_normal((H, M), generator) / math.sqrt(M)

        # lecun-normal B (P, H) and C (H, P), rotated into the eigenbasis when V is known.
        if di.eigenvectors is not None:
            B = torch.randn(P, H, dtype=torch.float64, generator=generator) / math.sqrt(H)
            Bt = di.eigenvectors_inv @ B.to(torch.complex128)
        else:
            Bt = _complex_normal((M, H), generator) / math.sqrt(H)
        Ct = draw_C()
        train = not freeze_ssm
        self.Lambda_re = _param(di.eigenvalues.real.clamp_max(-MIN_DECAY), train, dtype, device)
        self.Lambda_im = _param(di.eigenvalues.imag, train, dtype, device)
        self.log_step = _param(_log_dt(M, dt_min, dt_max, generator), train, dtype, device)
        self.B = _param(torch.view_as_real(Bt), train, dtype, device)
        self.C = _param(torch.view_as_real(Ct), True, dtype, device)
        self.D = _param(torch.randn(H, dtype=torch.float64, generator=generator), True, dtype, device)
        self.C_backward = _param(torch.view_as_real(draw_C()), True, dtype, device) if self.bidirectional else None
        self._cache = _DiscretisationCache()

    @property
    def n_modes(self) -> int:
        return self.Lambda_re.shape[0]

    def _apply(self, fn, *args, **kwargs):
        self._cache.clear()
        return super()._apply(fn, *args, **kwargs)

    def dt(self) -> torch.Tensor:
        return torch.exp(self.log_step)

    def _discrete(self, rd: torch.dtype) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(log Lbar (M,), Bbar (M, H), C~ (H, M)) in the complex dtype of ``rd``."""
        Lam = torch.complex(self.Lambda_re.to(rd).clamp_max(-MIN_DECAY), self.Lambda_im.to(rd))
        dt = torch.exp(self.log_step.to(rd))
        log_Lbar = log_transition(Lam, dt, self.discretization)
        _, factor = discretize(Lam, dt, self.discretization)
        B = torch.view_as_complex(self.B.to(rd).contiguous())
        C = torch.view_as_complex(self.C.to(rd).contiguous())
        return log_Lbar, factor[:, None] * B, C

    def _readout(self, xs: torch.Tensor, C: torch.Tensor) -> torch.Tensor:
        y = (xs @ C.transpose(0, 1)).real
        return 2 * y if self.conj_sym else y

    def _states(self, Bu: torch.Tensor, log_Lbar: torch.Tensor, mode: str) -> torch.Tensor:
        """x_k = Lbar x_{k-1} + Bu_k over dim 1 of Bu (batch, L, M)."""
        L = Bu.shape[1]
        if mode == "fft":
            powers = transition_powers(log_Lbar, L, 1, Bu.dtype)                     # (M, L)
            n = 2 * L
            X = torch.fft.ifft(torch.fft.fft(Bu.transpose(1, 2), n=n) * torch.fft.fft(powers, n=n), n=n)
            return X[..., :L].transpose(1, 2)
        Lbar = torch.exp(log_Lbar)
        if mode == "sequential":
            return sequential_scan(Lbar.expand_as(Bu), Bu, dim=1)
        return linear_scan(Lbar, Bu, dim=1)

    def forward(self, u: torch.Tensor, mode: str | None = None, state: torch.Tensor | None = None,
                return_state: bool = False) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Args: u (batch, L, H); mode overrides the layer's; state (batch, M) complex state before the first step;
        return_state: also return the state after the last step."""
        _check_input(u, self.d_model, self.check_finite)
        mode = mode or self.mode
        if mode not in self.MODES:
            raise ValueError(f"mode must be one of {self.MODES}, got {mode!r}")
        if self.bidirectional and (state is not None or return_state):
            raise ValueError("a bidirectional layer is not causal: it has no state (state / return_state)")
        rd = _work_dtype(self.compute_dtype, u.dtype)
        cd = _complex_dtype(rd)
        log_Lbar, Bbar, C = self._discrete(rd)
        Bu = u.to(rd).to(cd) @ Bbar.transpose(0, 1)                                    # (B, L, M)
        if state is not None:
            x0 = _check_state(state, (u.shape[0], self.n_modes), cd)
            Bu = torch.cat([Bu[:, :1] + torch.exp(log_Lbar) * x0[:, None], Bu[:, 1:]], dim=1)
        xs = self._states(Bu, log_Lbar, mode)
        y = self._readout(xs, C)
        if self.bidirectional:
            Cb = torch.view_as_complex(self.C_backward.to(rd).contiguous())
            y = y + self._readout(self._states(Bu.flip(1), log_Lbar, mode).flip(1), Cb)
        y = (y + self.D.to(rd) * u.to(rd)).to(u.dtype)
        return (y, xs[:, -1]) if return_state else y

    def initial_state(self, batch: int, device: torch.device | str | None = None,
                      dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """Zero state (batch, M) in the complex dtype used for inputs of ``dtype``."""
        rd = _work_dtype(self.compute_dtype, dtype)
        return torch.zeros(batch, self.n_modes, dtype=_complex_dtype(rd), device=device or self.C.device)

    def step(self, u_t: torch.Tensor, state: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """One recurrent step (discretisation cached as in S4D.step).

        Shapes: u_t (batch, H), state (batch, M) or None -> (y_t (batch, H), state).
        """
        _check_step_input(u_t, self.d_model, self.check_finite)
        if self.bidirectional:
            raise ValueError("a bidirectional layer is not causal: it has no step")
        rd = _work_dtype(self.compute_dtype, u_t.dtype)

        def compute():
            log_Lbar, Bbar, C = self._discrete(rd)
            scale = 2 if self.conj_sym else 1
            # real forms: u (batch, H) @ (H, 2M) gives Bbar u as interleaved (re, im); the readout is a real matmul.
            return (torch.exp(log_Lbar), torch.view_as_real(Bbar.transpose(0, 1).contiguous()).flatten(-2),
                    _real_readout(scale * C).transpose(0, 1).contiguous(), self.D.to(rd))
        Lbar, BbarT_r, C_r, D = self._cache.get(self, (rd, self.discretization), compute)
        u = u_t if u_t.dtype == rd else u_t.to(rd)
        x = torch.view_as_complex((u @ BbarT_r).view(u.shape[0], -1, 2))               # Bbar u_k, (batch, M)
        if state is not None:
            x.addcmul_(Lbar, _check_state(state, x.shape, Lbar.dtype))
        y = torch.addmm(D * u, torch.view_as_real(x).flatten(-2), C_r)
        return (y if y.dtype == u_t.dtype else y.to(u_t.dtype)), x
