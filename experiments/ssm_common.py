"""Shared pieces of the ssm experiments and the s4_ptd reproduction (data, training loop, noise, systems).

Not an experiment itself (registers nothing).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from sciml.ssm import SequenceModel, hippo_legs, hippo_legs_nplr, ptd, ssm_param_groups  # noqa: F401 (re-exported)


def digits_sequences(seed: int = 0, n_train: int = 1400) -> tuple[torch.Tensor, ...]:
    """sklearn's 8x8 digits as length-64 pixel sequences in [-1, 1]; fixed seed-0 permutation split (spec 1.5(d))."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.tensor((d.data / 16.0 - 0.5) / 0.5, dtype=torch.float32)[..., None]      # (1797, 64, 1)
    y = torch.tensor(d.target, dtype=torch.long)
    perm = torch.from_numpy(np.random.default_rng(seed).permutation(len(y)))
    tr, te = perm[:n_train], perm[n_train:]
    return x[tr], y[tr], x[te], y[te]


def make_model(layer: str, init: str, d_state: int, d_model: int, n_layers: int, seed: int, d_input: int = 1,
               d_output: int = 10, freeze_ssm: bool = False, pool: str = "mean", **kw) -> SequenceModel:
    torch.manual_seed(seed)                      # the Linear layers' default init (experiment code, not library)
    gen = torch.Generator().manual_seed(seed)
    extra = {"conj_sym": True} if layer == "s5" else {}
    return SequenceModel(d_input, d_output, d_model=d_model, n_layers=n_layers, layer=layer, d_state=d_state,
                         init=init, freeze_ssm=freeze_ssm, pool=pool, generator=gen, **extra, **kw)


def train_classifier(model, x, y, epochs: int, batch: int = 50, lr: float = 3e-3, ssm_lr: float = 1e-3,
                     weight_decay: float = 0.01, seed: int = 0, x_eval=None, y_eval=None):
    """AdamW with SSM parameter groups, cosine schedule, cross-entropy. Returns per-epoch (loss, eval acc)."""
    opt = torch.optim.AdamW(ssm_param_groups(model, lr, ssm_lr, weight_decay))
    steps = epochs * math.ceil(len(y) / batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=[g["lr"] for g in opt.param_groups],
                                                total_steps=steps, pct_start=0.1)
    gen = torch.Generator().manual_seed(seed)
    history = []
    for _ in range(epochs):
        model.train()
        perm = torch.randperm(len(y), generator=gen)
        total = 0.0
        for i in range(0, len(y), batch):
            idx = perm[i:i + batch]
            loss = torch.nn.functional.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(idx)
        acc = accuracy(model, x_eval, y_eval) if x_eval is not None else math.nan
        history.append((total / len(y), acc))
    return history


@torch.no_grad()
def accuracy(model, x, y, perturb=None, batch: int = 500) -> float:
    model.eval()
    correct = 0
    for i in range(0, len(y), batch):
        correct += int((model(x[i:i + batch], perturb).argmax(-1) == y[i:i + batch]).sum())
    return correct / len(y)


def fourier_noise(omega: float, amp: float, seed: int):
    """Perturbation at every SSM input: amp * U(0,1) (per sample, channel) * cos(omega dt_h k) (spec 1.3 / 1.5(d)).

    The step dt_h is the layer's own (per channel for S4D; S5 has one per state, the median is used).
    """
    gen = torch.Generator().manual_seed(seed)

    def perturb(layer, z):
        Bsz, L, H = z.shape
        dt = layer.dt().detach().to(torch.float64)
        dt = dt if dt.shape[0] == H else dt.median().expand(H)
        k = torch.arange(L, dtype=torch.float64, device=dt.device)
        wave = torch.cos(omega * dt[None, :] * k[:, None]).to(device=z.device, dtype=z.dtype)     # (L, H)
        scale = amp * torch.rand(Bsz, 1, H, generator=gen).to(device=z.device, dtype=z.dtype)
        return z + scale * wave[None]

    return perturb


def frozen_systems(N: int) -> dict[str, tuple[torch.Tensor, ...]]:
    """(A, B) of the systems compared in the transfer-function and extrapolation experiments, float64 dense:
    exact HiPPO-LegS, S4D-LegS (normal part A_N with B_H) and PTD (A_H + E). The diagonal forms are built from
    eigendecompositions in the layers; here the dense matrices serve as the ground truth."""
    f = hippo_legs_nplr(N)
    res = ptd(f.A)
    return {"hippo": (f.A, f.B), "s4d_legs": (f.normal, f.B), "ptd": (f.A + res.perturbation, f.B)}


def diagonal_form(name: str, N: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(lambda (N,), B~ = V^{-1} B (N,), V (N, N)) for "s4d_legs" (unitary V) or "ptd" (all N modes)."""
    f = hippo_legs_nplr(N)
    if name == "s4d_legs":
        S = (f.normal + 0.5 * torch.eye(N, dtype=torch.float64)).to(torch.complex128)
        w, V = torch.linalg.eigh(-1j * S)
        lam = torch.complex(torch.full_like(w, -0.5), w)
        return lam, V.conj().T @ f.B.to(torch.complex128), V
    res = ptd(f.A)
    return res.eigenvalues, res.eigenvectors_inv @ f.B.to(torch.complex128), res.eigenvectors




def digits_robustness(layer: str, init: str, seed: int, epochs: int, omegas, amps, d_model: int = 64,
                      d_state: int = 32, n_layers: int = 2, lr: float = 1e-2, ssm_lr: float = 1e-3,
                      weight_decay: float = 0.01, freeze_ssm: bool = False, n_train: int = 1400,
                      n_test: int | None = None) -> dict[str, float]:
    """Train one digits-as-sequences classifier and evaluate it clean and under Fourier noise at every SSM input.

    Returns {"clean": acc, "w{omega}_a{amp}": acc, "seconds": wall time}.
    """
    import time

    start = time.perf_counter()
    x_tr, y_tr, x_te, y_te = digits_sequences(0, n_train=1400)
    x_tr, y_tr = x_tr[:n_train], y_tr[:n_train]
    if n_test is not None:
        x_te, y_te = x_te[:n_test], y_te[:n_test]
    model = make_model(layer, init, d_state=d_state, d_model=d_model, n_layers=n_layers, seed=seed,
                       freeze_ssm=freeze_ssm)
    train_classifier(model, x_tr, y_tr, epochs=epochs, lr=lr, ssm_lr=ssm_lr, weight_decay=weight_decay, seed=seed)
    out = {"clean": accuracy(model, x_te, y_te)}
    for omega in omegas:
        for amp in amps:
            out[f"w{omega:g}_a{amp:g}"] = accuracy(model, x_te, y_te, fourier_noise(omega, amp, seed + 1000))
    out["seconds"] = time.perf_counter() - start
    return out


class single_thread:
    """Context manager: torch on one thread (on a shared, loaded 2-core box this is ~5x faster for these small
    models than two contending threads); restores the previous setting."""

    def __init__(self, threads: int = 1) -> None:
        self.threads = threads

    def __enter__(self):
        self.previous = torch.get_num_threads()
        if self.threads > 0:
            torch.set_num_threads(self.threads)
        return self

    def __exit__(self, *exc) -> None:
        torch.set_num_threads(self.previous)
