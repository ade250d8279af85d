"""Diagonal state-space layers: S4D (SISO per channel, FFT convolution) and S5 (MIMO, parallel scan).

Both map (batch, length, d_model) -> (batch, length, d_model), have a recurrent ``step`` that reproduces the
parallel output exactly, and tag their SSM parameters (A, B, dt) so ``ssm_param_groups`` can give them a smaller
learning rate and no weight decay.

Reference: S4D (Gu, Gupta, Goel, Re, NeurIPS 2022, arXiv 2206.11893; minimal code state-spaces/s4
``models/s4/s4d.py``); S5 (Smith, Warrington, Linderman, ICLR 2023, arXiv 2208.04933; code lindermanlab/S5
``s5/ssm.py``); S4-PTD / S5-PTD (Yu et al., ICLR 2024, arXiv 2310.01698).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from sciml.core import check_floating, check_generator
from sciml.ssm.hippo import DiagonalInit
from sciml.ssm.inits import block_diagonal, diagonal_init
from sciml.ssm.kernels import check_method, discretize, fft_conv, linear_scan, sequential_scan, vandermonde_kernel

MIN_DECAY = 1e-4   # |Re lambda| floor: S5's clip_eigs value


def _tag(p: nn.Parameter) -> nn.Parameter:
    p._ssm = True                     # picked up by ssm_param_groups: small lr, no weight decay
    return p


def _check_input(u: torch.Tensor, d_model: int, name: str = "u") -> None:
    check_floating(u, name)
    if u.ndim != 3 or u.shape[-1] != d_model:
        raise ValueError(f"{name} must have shape (batch, length, d_model={d_model}), got {tuple(u.shape)}")


def _log_dt(n: int, dt_min: float, dt_max: float, generator: torch.Generator | None) -> torch.Tensor:
    if not 0 < dt_min <= dt_max:
        raise ValueError(f"need 0 < dt_min <= dt_max, got dt_min={dt_min}, dt_max={dt_max}")
    r = torch.rand(n, dtype=torch.float64, generator=generator)
    return math.log(dt_min) + r * (math.log(dt_max) - math.log(dt_min))


def _complex_normal(shape: tuple[int, ...], generator: torch.Generator | None) -> torch.Tensor:
    z = torch.randn(*shape, 2, dtype=torch.float64, generator=generator)
    return torch.view_as_complex(z) * math.sqrt(0.5)


class S4D(nn.Module):
    """S4D / S4-PTD layer: H independent diagonal SISO systems, Vandermonde kernel, FFT convolution, + D u.

    Per channel h: x' = Lambda_h x + B_h u, y = c Re(C_h x) + D_h u, c = 2 with conjugate symmetry; discretised
    with step dt_h (ZOH or bilinear). Lambda = -exp(log_A_real) + i A_imag keeps Re(Lambda) < 0. The kernel is
    built in ``kernel_dtype`` (float64 -> complex128 by default) and cast to the input's dtype.

    Reference: arXiv 2206.11893 (S4D), Sec. 3; arXiv 2310.01698 (PTD), Sec. 4 (S4-PTD = S4D with the PTD init).

    Differs from the reference code:
        * B is a separate trainable parameter (s4d.py folds it into C); C is drawn real-normal in the original
          basis and rotated by V (C~ = C V) for the LegS and PTD inits, complex-normal for Lin/Inv (as s4d.py).
        * the layer returns the SSM output only (no activation / output mixing; that lives in ``SSMBlock``).
        * ``freeze_ssm`` keeps A, B and dt fixed (the authors' robustness setting in ``s4_PTD.py``).

    Args:
        d_model: H channels.
        d_state: N, state size of the real system (N/2 complex modes with conjugate symmetry; PTD stores one
            extra mode per pair of real eigenvalues).
        init: "legs" | "lin" | "inv" | "ptd" or a DiagonalInit.
        discretization: "zoh" | "bilinear".
        dt_min, dt_max: log-uniform range of the initial steps (S4D defaults 1e-3, 1e-1).
        freeze_ssm: do not train A, B, dt.
        kernel_dtype: real dtype in which the kernel is computed.
        generator: for dt, C and D.

    Shapes:
        forward: u (batch, L, H) -> y (batch, L, H);  kernel(L) -> (H, L).
    """

    def __init__(self, d_model: int, d_state: int = 64, init: str | DiagonalInit = "legs",
                 discretization: str = "zoh", dt_min: float = 1e-3, dt_max: float = 1e-1, freeze_ssm: bool = False,
                 kernel_dtype: torch.dtype = torch.float64, generator: torch.Generator | None = None) -> None:
        super().__init__()
        if isinstance(d_model, bool) or not isinstance(d_model, int) or d_model < 1:
            raise ValueError(f"d_model must be a positive int, got {d_model!r}")
        check_generator(generator, torch.device("cpu"))
        self.d_model, self.d_state = d_model, d_state
        self.discretization = check_method(discretization)
        self.kernel_dtype = kernel_dtype
        di = diagonal_init(init, d_state, conj_sym=True)
        if not di.conj_sym:
            raise ValueError("S4D needs a conjugate-symmetric init (conj_sym=True)")
        self.init_name = di.name
        H, M = d_model, di.eigenvalues.shape[0]
        lam = di.eigenvalues
        if di.eigenvectors is not None:
            C = torch.randn(H, di.eigenvectors.shape[0], dtype=torch.float64, generator=generator).to(torch.complex128)
            C = C @ di.eigenvectors
        else:
            C = _complex_normal((H, M), generator)
        make = (lambda t: nn.Parameter(t, requires_grad=not freeze_ssm))
        self.log_dt = _tag(make(_log_dt(H, dt_min, dt_max, generator).float()))
        self.log_A_real = _tag(make(torch.log((-lam.real).clamp_min(MIN_DECAY)).expand(H, M).clone().float()))
        self.A_imag = _tag(make(lam.imag.expand(H, M).clone().float()))
        self.B = _tag(make(torch.view_as_real(di.B.expand(H, M).clone()).float()))
        self.C = nn.Parameter(torch.view_as_real(C).float())
        self.D = nn.Parameter(torch.randn(H, dtype=torch.float64, generator=generator).float())

    @property
    def n_modes(self) -> int:
        return self.A_imag.shape[-1]

    def dt(self) -> torch.Tensor:
        return torch.exp(self.log_dt)

    def _discrete(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(Lbar, Bbar, C) in the kernel's complex dtype; shapes (H, M)."""
        rd = self.kernel_dtype
        A = torch.complex(-torch.exp(self.log_A_real.to(rd)), self.A_imag.to(rd))
        dt = torch.exp(self.log_dt.to(rd))[:, None]
        Lbar, factor = discretize(A, dt, self.discretization)
        B = torch.view_as_complex(self.B.to(rd).contiguous())
        C = torch.view_as_complex(self.C.to(rd).contiguous())
        return Lbar, factor * B, C

    def kernel(self, L: int) -> torch.Tensor:
        """The (H, L) convolution kernel K_l = 2 Re(sum_n C_n Bbar_n Lbar_n^l) in ``kernel_dtype``."""
        Lbar, Bbar, C = self._discrete()
        return vandermonde_kernel(C * Bbar, Lbar, L, conj_sym=True)

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        _check_input(u, self.d_model)
        L = u.shape[1]
        K = self.kernel(L).to(u.dtype)                                   # (H, L)
        y = fft_conv(u.transpose(1, 2), K).transpose(1, 2)               # (B, L, H)
        return y + self.D.to(u.dtype) * u

    def initial_state(self, batch: int, device: torch.device | str | None = None) -> torch.Tensor:
        """Zero state, shape (batch, H, M), complex in the kernel dtype."""
        cd = torch.complex128 if self.kernel_dtype == torch.float64 else torch.complex64
        return torch.zeros(batch, self.d_model, self.n_modes, dtype=cd, device=device or self.C.device)

    def step(self, u_t: torch.Tensor, state: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """One recurrent step: x_k = Lbar x_{k-1} + Bbar u_k, y_k = 2 Re(sum C x_k) + D u_k.

        Shapes: u_t (batch, H), state (batch, H, M) or None (zeros) -> (y_t (batch, H), new state).
        """
        check_floating(u_t, "u_t")
        if u_t.ndim != 2 or u_t.shape[-1] != self.d_model:
            raise ValueError(f"u_t must have shape (batch, d_model={self.d_model}), got {tuple(u_t.shape)}")
        if state is None:
            state = self.initial_state(u_t.shape[0], u_t.device)
        Lbar, Bbar, C = self._discrete()
        state = Lbar * state + Bbar * u_t.to(Lbar.real.dtype)[..., None]
        y = 2 * (state * C).sum(-1).real
        return y.to(u_t.dtype) + self.D.to(u_t.dtype) * u_t, state


class S5(nn.Module):
    """S5 / S5-PTD layer: one MIMO diagonal SSM with P states shared by all H channels.

    x_k = Lbar x_{k-1} + Bbar u_k, y_k = c Re(C~ x_k) + D u_k with Lbar, Bbar from per-state steps (ZOH or
    bilinear). Computed by a parallel associative scan (``mode="scan"``), by per-state FFT convolution with the
    geometric sequence Lbar^l (``"fft"``, exact for LTI systems) or by a loop (``"sequential"``, reference).

    Reference: arXiv 2208.04933 (S5), Sec. 3 and App. D (init, conjugate symmetry, blocks); arXiv 2310.01698
    (S5-PTD: Lambda, V from the PTD of HiPPO-LegS blocks; B~ = V^{-1} B, C~ = C V with B, C lecun-normal).

    Differs from the reference code:
        * Re(Lambda) is kept <= -1e-4 by clamping in the forward pass (S5's ``clip_eigs``) instead of optional;
        * no bidirectional variant; one step size per state (S5's default), initialised log-uniform.

    Args:
        d_model: H.
        d_state: P, total state size (P/blocks per block; P/(2 blocks) complex modes per block with conj_sym).
        init: "legs" | "lin" | "inv" | "ptd" or a DiagonalInit (of one block).
        blocks: J identical blocks (block size P/J).
        conj_sym: keep one member of each conjugate pair and take 2 Re (S5-PTD's authors switch it off).
        discretization, dt_min, dt_max, freeze_ssm, generator: as in S4D.
        mode: "scan" | "fft" | "sequential".

    Shapes:
        forward: u (batch, L, H) -> (batch, L, H).
    """

    MODES = ("scan", "fft", "sequential")

    def __init__(self, d_model: int, d_state: int = 64, init: str | DiagonalInit = "legs", blocks: int = 1,
                 conj_sym: bool = True, discretization: str = "zoh", dt_min: float = 1e-3, dt_max: float = 1e-1,
                 mode: str = "scan", freeze_ssm: bool = False, generator: torch.Generator | None = None) -> None:
        super().__init__()
        if isinstance(d_model, bool) or not isinstance(d_model, int) or d_model < 1:
            raise ValueError(f"d_model must be a positive int, got {d_model!r}")
        if isinstance(blocks, bool) or not isinstance(blocks, int) or blocks < 1 or d_state % blocks:
            raise ValueError(f"blocks must be a positive int dividing d_state={d_state}, got {blocks!r}")
        if mode not in self.MODES:
            raise ValueError(f"mode must be one of {self.MODES}, got {mode!r}")
        check_generator(generator, torch.device("cpu"))
        self.d_model, self.d_state, self.mode, self.conj_sym = d_model, d_state, mode, conj_sym
        self.discretization = check_method(discretization)
        di = block_diagonal(diagonal_init(init, d_state // blocks, conj_sym), blocks)
        self.conj_sym = di.conj_sym
        self.init_name = di.name
        H, M = d_model, di.eigenvalues.shape[0]
        P = di.eigenvectors.shape[0] if di.eigenvectors is not None else M
        # lecun-normal B (P, H) and C (H, P), rotated into the eigenbasis when V is known.
        B = torch.randn(P, H, dtype=torch.float64, generator=generator) / math.sqrt(H)
        C = torch.randn(H, P, dtype=torch.float64, generator=generator) / math.sqrt(P)
        if di.eigenvectors is not None:
            Bt = di.eigenvectors_inv @ B.to(torch.complex128)
            Ct = C.to(torch.complex128) @ di.eigenvectors
        else:
            Bt = _complex_normal((M, H), generator) / math.sqrt(H)
            Ct = _complex_normal((H, M), generator) / math.sqrt(M)
        make = (lambda t: nn.Parameter(t, requires_grad=not freeze_ssm))
        self.Lambda_re = _tag(make(di.eigenvalues.real.clamp_max(-MIN_DECAY).float()))
        self.Lambda_im = _tag(make(di.eigenvalues.imag.float()))
        self.log_step = _tag(make(_log_dt(M, dt_min, dt_max, generator).float()))
        self.B = _tag(make(torch.view_as_real(Bt).float()))
        self.C = nn.Parameter(torch.view_as_real(Ct).float())
        self.D = nn.Parameter(torch.randn(H, dtype=torch.float64, generator=generator).float())

    @property
    def n_modes(self) -> int:
        return self.Lambda_re.shape[0]

    def dt(self) -> torch.Tensor:
        return torch.exp(self.log_step)

    def _discrete(self, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(Lbar (M,), Bbar (M, H), C~ (H, M)) in the complex dtype matching ``dtype``."""
        rd = torch.float64 if dtype == torch.float64 else torch.float32
        Lam = torch.complex(self.Lambda_re.to(rd).clamp_max(-MIN_DECAY), self.Lambda_im.to(rd))
        Lbar, factor = discretize(Lam, torch.exp(self.log_step.to(rd)), self.discretization)
        B = torch.view_as_complex(self.B.to(rd).contiguous())
        C = torch.view_as_complex(self.C.to(rd).contiguous())
        return Lbar, factor[:, None] * B, C

    def _readout(self, xs: torch.Tensor, C: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        y = (xs @ C.transpose(0, 1)).real
        if self.conj_sym:
            y = 2 * y
        return y.to(u.dtype) + self.D.to(u.dtype) * u

    def forward(self, u: torch.Tensor, mode: str | None = None) -> torch.Tensor:
        _check_input(u, self.d_model)
        mode = mode or self.mode
        if mode not in self.MODES:
            raise ValueError(f"mode must be one of {self.MODES}, got {mode!r}")
        Lbar, Bbar, C = self._discrete(u.dtype)
        Bu = u.to(Lbar.dtype) @ Bbar.transpose(0, 1)                     # (B, L, M)
        L = u.shape[1]
        if mode == "scan":
            xs = linear_scan(Lbar, Bu, dim=1)
        elif mode == "sequential":
            xs = sequential_scan(Lbar.expand_as(Bu), Bu, dim=1)
        else:
            powers = torch.exp(torch.log(Lbar)[:, None] * torch.arange(L, device=u.device))    # (M, L)
            n = 2 * L
            X = torch.fft.ifft(torch.fft.fft(Bu.transpose(1, 2), n=n) * torch.fft.fft(powers, n=n), n=n)
            xs = X[..., :L].transpose(1, 2)
        return self._readout(xs, C, u)

    def initial_state(self, batch: int, device: torch.device | str | None = None,
                      dtype: torch.dtype = torch.float32) -> torch.Tensor:
        cd = torch.complex128 if dtype == torch.float64 else torch.complex64
        return torch.zeros(batch, self.n_modes, dtype=cd, device=device or self.C.device)

    def step(self, u_t: torch.Tensor, state: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """One recurrent step. Shapes: u_t (batch, H), state (batch, M) or None -> (y_t (batch, H), state)."""
        check_floating(u_t, "u_t")
        if u_t.ndim != 2 or u_t.shape[-1] != self.d_model:
            raise ValueError(f"u_t must have shape (batch, d_model={self.d_model}), got {tuple(u_t.shape)}")
        Lbar, Bbar, C = self._discrete(u_t.dtype)
        if state is None:
            state = torch.zeros(u_t.shape[0], self.n_modes, dtype=Lbar.dtype, device=u_t.device)
        state = Lbar * state + u_t.to(Lbar.dtype) @ Bbar.transpose(0, 1)
        return self._readout(state, C, u_t), state
