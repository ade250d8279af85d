"""Frequency extrapolation (paper Sec. 3.4 analogue): S4D-LegS blows up near its spike, PTD tracks HiPPO-LegS.

Inputs u(t_k) = a sin(s t_k), t_k = 0.01 k, L = 1000, a ~ U[0.5, 1.5]; train on s ~ U[0, 50], test on
s ~ U[0, 100]. Frozen SISO systems from the N=16 matrices (S4D-LegS spike at omega_max = 81.0), H = 32 random real
C, ZOH step 0.01, FFT convolution; features = mean |y_h| over the second half; least-squares linear head predicts a.
Ground truth system: exact HiPPO-LegS (dense matrix exponential). Spec 1.5(c).
"""

from __future__ import annotations

import dataclasses

import torch

from experiments.ssm_common import diagonal_form
from sciml.runner import ExperimentConfig, RunContext, experiment
from sciml.ssm import discretize, fft_conv, hippo_legs, vandermonde_kernel

BINS = ((0, 50), (50, 70), (70, 78), (78, 84), (84, 100))


@dataclasses.dataclass(frozen=True)
class Config(ExperimentConfig):
    N: int = 16              # state size (spike of S4D-LegS at 81.0)
    channels: int = 32       # H random real C
    length: int = 1000       # L
    dt: float = 0.01
    n_train: int = 3000
    n_test: int = 3000
    s_train_max: float = 50.0
    s_test_max: float = 100.0

    def validate(self) -> None:
        if self.N < 2 or self.N % 2:
            raise ValueError(f"N must be an even int >= 2, got {self.N}")
        if min(self.channels, self.length, self.n_train, self.n_test) < 1 or self.dt <= 0:
            raise ValueError("channels, length, n_train, n_test must be >= 1 and dt > 0")


def dense_kernels(A: torch.Tensor, B: torch.Tensor, C: torch.Tensor, dt: float, L: int) -> torch.Tensor:
    """(H, L) ZOH kernels C Abar^l Bbar of a dense system, float64 (ground truth)."""
    N = A.shape[0]
    aug = torch.zeros(N + 1, N + 1, dtype=torch.float64)
    aug[:N, :N], aug[:N, N] = dt * A, dt * B
    Ex = torch.linalg.matrix_exp(aug)
    Abar, x = Ex[:N, :N], Ex[:N, N]
    states = torch.empty(L, N, dtype=torch.float64)
    for k in range(L):
        states[k] = x
        x = Abar @ x
    return (states @ C.T).T


def diag_kernels(name: str, N: int, C: torch.Tensor, dt: float, L: int) -> torch.Tensor:
    """(H, L) kernels of the diagonal form (all N modes, no conjugate trick): sciml's Vandermonde path."""
    lam, Bt, V = diagonal_form(name, N)
    Ct = C.to(torch.complex128) @ V                                    # (H, N)
    Lbar, factor = discretize(lam, torch.tensor(dt, dtype=torch.float64), "zoh")
    return vandermonde_kernel(Ct * (factor * Bt)[None], Lbar.expand_as(Ct), L, conj_sym=False)


def features(K: torch.Tensor, u: torch.Tensor, chunk: int = 250) -> torch.Tensor:
    out = []
    for i in range(0, u.shape[0], chunk):
        y = fft_conv(u[i:i + chunk, None, :], K[None])                 # (b, H, L)
        out.append(y[..., y.shape[-1] // 2:].abs().mean(-1))
    return torch.cat(out)


@experiment("ssm/frequency-extrapolation", config=Config, tags=("ssm",),
            summary="Predict sine amplitude from frozen SSM features; S4D-LegS fails near omega_max, PTD does not")
def run(cfg: Config, ctx: RunContext) -> dict[str, float]:
    n_train, n_test = (600, 600) if cfg.smoke else (cfg.n_train, cfg.n_test)
    gen = torch.Generator().manual_seed(ctx.seed)
    C = torch.randn(cfg.channels, cfg.N, dtype=torch.float64, generator=gen)
    t = cfg.dt * torch.arange(cfg.length, dtype=torch.float64)

    def draw(n, s_max):
        a = 0.5 + torch.rand(n, dtype=torch.float64, generator=gen)
        s = s_max * torch.rand(n, dtype=torch.float64, generator=gen)
        return a, s, a[:, None] * torch.sin(s[:, None] * t[None])

    a_tr, _, u_tr = draw(n_train, cfg.s_train_max)
    a_te, s_te, u_te = draw(n_test, cfg.s_test_max)
    A, B = hippo_legs(cfg.N)
    kernels = {"hippo": dense_kernels(A, B, C, cfg.dt, cfg.length),
               "s4d_legs": diag_kernels("s4d_legs", cfg.N, C, cfg.dt, cfg.length),
               "ptd": diag_kernels("ptd", cfg.N, C, cfg.dt, cfg.length)}
    metrics: dict[str, float] = {}
    preds = {}
    for name, K in kernels.items():
        F_tr, F_te = features(K, u_tr), features(K, u_te)
        X_tr = torch.cat([F_tr, torch.ones(n_train, 1, dtype=torch.float64)], 1)
        X_te = torch.cat([F_te, torch.ones(n_test, 1, dtype=torch.float64)], 1)
        w = torch.linalg.lstsq(X_tr, a_tr[:, None]).solution
        pred = (X_te @ w)[:, 0]
        preds[name] = pred
        err = (pred - a_te).abs()
        for lo, hi in BINS:
            mask = (s_te >= lo) & (s_te < hi)
            metrics[f"{name}_err_s{lo}_{hi}"] = float(err[mask].mean()) if bool(mask.any()) else float("nan")
        metrics[f"{name}_pred_min"] = float(pred.min())
        metrics[f"{name}_pred_max"] = float(pred.max())
        ctx.log(f"{name:9s} " + "  ".join(f"[{lo},{hi}): {metrics[f'{name}_err_s{lo}_{hi}']:.3f}" for lo, hi in BINS)
                + f"  range {float(pred.min()):.2f}..{float(pred.max()):.2f}")
    _plot(ctx, s_te, a_te, preds)
    return metrics


def _plot(ctx, s, a, preds) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    order = torch.argsort(s)
    for name, label in (("hippo", "HiPPO-LegS (exact)"), ("s4d_legs", "S4D-LegS"), ("ptd", "PTD")):
        ax.plot(s[order], (preds[name] - a)[order], ".", ms=2, label=label)
    ax.axvline(81.0, color="k", ls=":", lw=1, label="omega_max (N=16) = 81.0")
    ax.axvspan(0, 50, color="grey", alpha=0.1, label="training frequencies")
    ax.set(xlabel="input frequency s", ylabel="prediction - amplitude", ylim=(-2, 10),
           title="amplitude regression from frozen SSM features")
    ax.legend(fontsize=8, markerscale=4)
    ctx.save_figure("frequency_extrapolation", fig)
