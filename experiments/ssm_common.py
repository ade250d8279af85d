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


# Long-memory variants tried for the delayed-recall diagnosis (experiments/ssm_delayed_recall.py; model suffixes).
# PTD's decay rates are 1.8x (slowest complex mode: -0.91 vs -0.5 at N = 32 after conj_sym) to ~150x (|Re| 71 at
# omega 157) those of S4D-LegS: PTD keeps HiPPO-LegS' damping, which grows with frequency, where S4D-LegS damps
# every mode by 1/2. With the default steps dt in [1e-3, 1e-1] the initial kernel keeps ~3e-6 (median over channels)
# of its head at lag ~1000 against 2e-3 for LegS.
#   ":long"   steps 10x smaller (dt in [1e-4, 1e-2], S4's Path-X setting; a time rescaling of the same system);
#   ":rehalf" Re(lambda) := -1/2 for every PTD eigenvalue (LegS' damping on PTD's frequencies, B~ and V), and the
#             modes with real eigenvalues dropped: with Re := -1/2 those become near-integrators (|B~| up to 39 at
#             N = 32) whose response to the ~1000 blanks swamps the token signal.
# Measured (seed 0, 300 steps, H 32, L 1024; token accuracy, chance 0.25): LegS 0.99, PTD 0.26, ":long" 0.37;
# Re := -1/2 keeping the real modes 0.39 (initial memory already at LegS' 2.2e-3: memory is necessary, not
# sufficient); + |B~| normalised 0.28; C drawn without the V rotation 0.25; SSM lr 1e-2 0.35 (PTD) / 0.36
# (Re := -1/2); Re := -1/2 without the real modes (":rehalf") 0.85 (seeds 1, 2: 0.79, 0.88). See the
# reproduction's recall rows.
LONG_MEMORY_DT = (1e-4, 1e-2)
#   ":wide"   (S5) P = WIDE_FACTOR x d_state states, and
#   ":window" (S5) each state's initial step in its memory window (sciml.ssm.memory_window: the state keeps an input
#             for L steps, |Re lambda| dt L <= 3, and turns >= 0.5 rad per step, |Im lambda| dt >= 0.5, so that it
#             tells adjacent tokens apart), the geometric middle of the window; the usual log-uniform draw where the
#             window is empty. Combined as "s5:legs:wide+window".
# S5 diagnosis (experiments/ssm_delayed_recall.py, seed 0, 300 steps, H 32, L 1024): a recall model needs modes that
# both remember ~L steps and separate adjacent positions ("positional long-memory modes", logged at init as
# ``positional_modes``). S4D-LegS has 16 modes per channel and one step per channel, so its 32 channels sweep the step
# range and 5-16 (seeds 0-4) of its 512 modes fall in that window; S4-PTD 0 (its fast modes decay: 0.34), ``rehalf``
# 2-5 (0.86). S5 with P = 32 shares 16 modes across channels with one random step per state: 0-1 such modes, and at
# most 2 whatever the steps (only |Im| = 107, 325 >= 85). Token accuracy (seed 0; S5 in complex128 except the window
# runs, complex64): S5-LegS 0.45; scale of B x8 0.48, of C x8 0.30; B rows HiPPO-weighted 0.25 (unnormalised) / 0.41
# (eigenbasis |V^-1 B_H| weights, lecun energy); one step 1e-3 for every state 0.585 (+ SSM lr 1e-2: 0.48); steps
# [1e-4, 1e-2] 0.52; dt = 1/|Im| 0.46; window steps 0.47 (2 modes); 2 blocks of 32 with steps 1e-3 / 1e-1 (P 64) 0.59;
# P 64 with one step 1e-3 0.76; P 64 with the random steps (":wide" alone, 0 window modes) 0.535; P 128 0.87 (4-6
# window modes by chance; 408 s in complex128); P 64 + window steps (7 modes, ":wide+window") 0.88, 5 seeds 0.88 /
# 0.97 / 0.98 / 0.82 / 0.97 (mean 0.925, ~72 s each in complex64); P 128 + window steps (24 modes) 0.996 (199 s).
# On S5-PTD ("s5:ptd:rehalf+wide+window", PTD N = 64, 9 window modes): seeds 0-2 0.78 / 0.85 / 0.91; without rehalf
# ("s5:ptd:wide+window") 0.25: no PTD mode has |Im| / |Re| >= 171, PTD's damping grows with frequency.
# S4-PTD ":rehalf" (5 seeds 0.856) was not lifted by: steps halved, [5e-4, 5e-2], 0.849; keeping the real-eigenvalue
# modes with their own PTD damping (dropping only the fastest, -303) 0.864 (seed 0; ":rehalf" seed 0: 0.85). In
# window terms PTD's fastest complex mode (|Im| 157 vs LegS' 325) has a window of [3.2e-3, 5.9e-3] against LegS'
# [1.5e-3, 5.9e-3] (+ [4.7e-3, 5.9e-3] for |Im| 107): fewer channels land a positional long-memory mode (2-5 vs 5-16).
# Every channel's step drawn inside that window ([3.2e-3, 5.9e-3]): 5 seeds 0.90 / 0.86 / 0.90 / 0.85 / 0.90 (mean
# 0.882; ":rehalf" 0.856): closer, still below 0.9 (not made a variant).
WIDE_FACTOR = 2
VARIANTS = ("long", "rehalf", "wide", "window")
_S5_ONLY = ("wide", "window")


def parse_model(spec: str) -> tuple[str, str, dict]:
    """'layer:init' or 'layer:init:variants' (variants: names in VARIANTS joined by '+') -> (layer, init, extra).

    ``extra`` holds layer kwargs plus the make_model options ``state_factor`` (":wide") and ``memory_window``
    (":window", True: the caller passes the sequence length). ":rehalf" comes back as init "ptd:rehalf" (resolved by
    make_model, which knows d_state).
    """
    parts = spec.split(":")
    variants = parts[2].split("+") if len(parts) == 3 else []
    if len(parts) not in (2, 3) or parts[0] not in ("s4d", "s5") or parts[1] not in ("legs", "lin", "inv", "ptd") \
            or any(v not in VARIANTS for v in variants) or len(set(variants)) != len(variants) \
            or (parts[0] != "s5" and any(v in _S5_ONLY for v in variants)):
        raise ValueError(f"model entries look like 's4d:legs', 's5:ptd' or 's4d:ptd:<variant>' with variants in "
                         f"{VARIANTS} joined by '+' ({_S5_ONLY} for s5 only), got {spec!r}")
    init, extra = parts[1], {}
    for v in variants:
        if v == "long":
            extra.update(dt_min=LONG_MEMORY_DT[0], dt_max=LONG_MEMORY_DT[1])
        elif v == "rehalf":
            init = f"{init}:rehalf"
        elif v == "wide":
            extra["state_factor"] = WIDE_FACTOR
        else:
            extra["memory_window"] = True
    return parts[0], init, extra


def set_memory_window_steps(model, length: int) -> None:
    """Every S5 layer of ``model``: each state's step := the middle of its memory window for ``length`` steps
    (sciml.ssm.memory_window_dt; unchanged where the window is empty)."""
    from sciml.ssm import S5, memory_window_dt

    for block in model.blocks:
        ssm = block.ssm
        if not isinstance(ssm, S5):
            raise ValueError("memory-window steps need one step per state (S5)")
        with torch.no_grad():
            lam = torch.complex(ssm.Lambda_re.double(), ssm.Lambda_im.double())
            dt = memory_window_dt(lam, length, fallback=ssm.dt().double())
            ssm.log_step.copy_(dt.log().to(ssm.log_step.dtype))


def _resolve_init(init: str, d_state: int):
    """"ptd:rehalf" -> the PTD init of size d_state with every real part set to -1/2 and the real-eigenvalue modes
    dropped (see VARIANTS above); other names unchanged."""
    if not init.endswith(":rehalf"):
        return init
    from sciml.ssm import DiagonalInit, diagonal_init

    base = diagonal_init(init.split(":")[0], d_state, conj_sym=True)
    keep = base.eigenvalues.imag.abs() > 1e-9 * base.eigenvalues.abs().max()
    lam = torch.complex(torch.full_like(base.eigenvalues.real[keep], -0.5), base.eigenvalues.imag[keep])
    V = None if base.eigenvectors is None else base.eigenvectors[:, keep]
    Vinv = None if base.eigenvectors_inv is None else base.eigenvectors_inv[keep]
    return DiagonalInit(eigenvalues=lam, B=base.B[keep], eigenvectors=V, eigenvectors_inv=Vinv, conj_sym=True,
                        name=init)


def make_model(layer: str, init: str, d_state: int, d_model: int, n_layers: int, seed: int, d_input: int = 1,
               d_output: int = 10, freeze_ssm: bool = False, pool: str = "mean", state_factor: int = 1,
               memory_window: int | None = None, **kw) -> SequenceModel:
    """SequenceModel for an experiment; ``state_factor`` multiplies d_state (":wide"), ``memory_window`` = L sets
    S5's steps by set_memory_window_steps (":window")."""
    torch.manual_seed(seed)                      # the Linear layers' default init (experiment code, not library)
    gen = torch.Generator().manual_seed(seed)
    d_state = d_state * state_factor
    # S5 keeps one member of each conjugate pair (S5's default; for PTD with a real E this is the same system as
    # the authors' conj_sym=False, at half the cost).
    extra = {"conj_sym": True} if layer == "s5" else {}
    model = SequenceModel(d_input, d_output, d_model=d_model, n_layers=n_layers, layer=layer, d_state=d_state,
                          init=_resolve_init(init, d_state), freeze_ssm=freeze_ssm, pool=pool, generator=gen,
                          **extra, **kw)
    if memory_window is not None:
        set_memory_window_steps(model, memory_window)
    return model


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
    """Perturbation at every SSM input: amp * U(0,1) (per sample, channel) * wave(k) (spec 1.3 / 1.5(d)).

    S4D (one step per channel h): wave = cos(omega dt_h k), the continuous-time frequency omega for every channel.
    S5 (one step dt_n per state, shared by all channels): every state must see its own resonance, so the wave is
    the superposition sum_n cos(omega dt_n k) / sqrt(M) over the M distinct state steps (same RMS as one cosine);
    aiming at the median step (the previous version) missed most states.
    """
    gen = torch.Generator().manual_seed(seed)

    def perturb(layer, z):
        Bsz, L, H = z.shape
        dt = layer.dt().detach().to(torch.float64)
        k = torch.arange(L, dtype=torch.float64, device=dt.device)
        if dt.shape[0] == H and not hasattr(layer, "Lambda_re"):
            wave = torch.cos(omega * dt[None, :] * k[:, None])                                    # (L, H)
        else:
            steps = torch.unique(dt)
            wave = (torch.cos(omega * steps[None, :] * k[:, None]).sum(-1) / math.sqrt(len(steps)))[:, None]
            wave = wave.expand(L, H)
        wave = wave.to(device=z.device, dtype=z.dtype)
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
                      d_state: int = 32, n_layers: int = 2, lr: float = 3e-3, ssm_lr: float = 1e-3,
                      weight_decay: float = 0.01, freeze_ssm: bool = False, n_train: int = 1400,
                      n_test: int | None = None, **layer_kw) -> dict[str, float]:
    """Train one digits-as-sequences classifier (spec 1.5(d): AdamW lr 3e-3, wd 0.01, cosine, batch 50) and
    evaluate it clean and under Fourier noise at every SSM input.

    Returns {"clean": acc, "w{omega}_a{amp}": acc, "seconds": wall time}.
    """
    import time

    start = time.perf_counter()
    x_tr, y_tr, x_te, y_te = digits_sequences(0, n_train=1400)
    x_tr, y_tr = x_tr[:n_train], y_tr[:n_train]
    if n_test is not None:
        x_te, y_te = x_te[:n_test], y_te[:n_test]
    model = make_model(layer, init, d_state=d_state, d_model=d_model, n_layers=n_layers, seed=seed,
                       freeze_ssm=freeze_ssm, **layer_kw)
    train_classifier(model, x_tr, y_tr, epochs=epochs, lr=lr, ssm_lr=ssm_lr, weight_decay=weight_decay, seed=seed)
    out = {"clean": accuracy(model, x_te, y_te)}
    for omega in omegas:
        for amp in amps:
            out[f"w{omega:g}_a{amp:g}"] = accuracy(model, x_te, y_te, fourier_noise(omega, amp, seed + 1000))
    out["seconds"] = time.perf_counter() - start
    return out


def mean_sd_min(values) -> tuple[float, float, float]:
    v = np.asarray(values, dtype=float)
    return float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else 0.0, float(v.min())


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
