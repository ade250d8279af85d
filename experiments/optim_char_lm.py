"""Character-level language model on Python standard-library sources (offline: read from the running
interpreter's own ``.py`` files, a fixed file list): AdamW, Muon, NAMO, NAMO-D (matrices; the rest AdamW at the same
lr, as the reference scripts) and Sophia-G, each at its best lr of a 3-point grid, several seeds (spec
optim_numerics 1.5c and curvature B.8's LM check). Reports validation loss and Sophia's steps to AdamW's final
training loss. At this size differences of 0.01-0.03 nats are within seed noise: ranked, not thresholded."""

from __future__ import annotations

import dataclasses
import os
import sysconfig

import numpy as np
import torch
from torch import nn

from sciml.optim import NAMO, NAMOD, Muon, SophiaG, WithAdamW, matrix_and_other_params, sample_labels
from sciml.runner import ExperimentConfig, RunContext, experiment

STDLIB_FILES = ("textwrap.py", "string.py", "heapq.py", "bisect.py", "difflib.py", "shlex.py", "fractions.py",
                "queue.py", "sched.py", "colorsys.py", "calendar.py", "statistics.py")
LR_GRIDS = {"adamw": (1e-3, 3e-3, 1e-2), "muon": (3e-3, 1e-2, 3e-2), "namo": (3e-3, 1e-2, 3e-2),
            "namo_d": (3e-3, 1e-2, 3e-2), "sophia_g": (3e-4, 1e-3, 3e-3)}


def stdlib_text(max_chars: int = 400_000) -> str:
    folder = sysconfig.get_paths()["stdlib"]
    parts = []
    for name in STDLIB_FILES:
        path = os.path.join(folder, name)
        if os.path.exists(path):
            with open(path, encoding="utf-8", errors="replace") as handle:
                parts.append(handle.read())
    if not parts:
        raise FileNotFoundError(f"none of {STDLIB_FILES} found in {folder}")
    return "".join(parts)[:max_chars]


class CharTransformer(nn.Module):
    def __init__(self, vocab: int, d: int = 64, heads: int = 4, layers: int = 2, context: int = 64) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, d)
        self.pos_embed = nn.Parameter(torch.zeros(context, d))
        layer = nn.TransformerEncoderLayer(d, heads, 4 * d, dropout=0.0, batch_first=True, norm_first=True)
        self.blocks = nn.TransformerEncoder(layer, layers)
        self.norm = nn.LayerNorm(d)
        self.lm_head = nn.Linear(d, vocab, bias=False)
        self.register_buffer("mask", torch.triu(torch.full((context, context), float("-inf")), 1))

    def forward(self, idx: torch.Tensor) -> torch.Tensor:                 # (B, T) -> (B, T, vocab)
        T = idx.shape[1]
        h = self.embed(idx) + self.pos_embed[:T]
        return self.lm_head(self.norm(self.blocks(h, mask=self.mask[:T, :T])))


@dataclasses.dataclass(frozen=True)
class Config(ExperimentConfig):
    optimizers: tuple[str, ...] = ("adamw", "muon", "namo", "namo_d", "sophia_g")
    steps: int = 300
    seeds: int = 3
    batch_size: int = 32
    context: int = 64

    def validate(self) -> None:
        unknown = set(self.optimizers) - set(LR_GRIDS)
        if unknown or not self.optimizers:
            raise ValueError(f"optimizers must be a non-empty subset of {sorted(LR_GRIDS)}, got {self.optimizers}")
        if self.steps < 1 or self.seeds < 1:
            raise ValueError("steps and seeds must be >= 1")


def _make_optimizer(name: str, model: nn.Module, lr: float):
    if name == "adamw":
        return torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.95), weight_decay=0.1)
    if name == "sophia_g":
        return SophiaG(model.parameters(), lr=lr, rho=0.05, weight_decay=0.1)
    matrix, other = matrix_and_other_params(model)
    cls = {"muon": lambda p: Muon(p, lr=lr, adjust_lr_fn="match_rms_adamw"), "namo": lambda p: NAMO(p, lr=lr),
           "namo_d": lambda p: NAMOD(p, lr=lr)}[name]
    return WithAdamW(cls(matrix), other, lr=lr)


def train_char_lm(name: str, lr: float, seed: int, cfg: Config, data: torch.Tensor, vocab: int) -> dict:
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    split = int(0.9 * len(data))
    train, val = data[:split], data[split:]
    model = CharTransformer(vocab, context=cfg.context)
    opt = _make_optimizer(name, model, lr)

    def batch(source, g):
        starts = torch.randint(0, len(source) - cfg.context - 1, (cfg.batch_size,), generator=g)
        idx = starts[:, None] + torch.arange(cfg.context + 1)
        chunk = source[idx]
        return chunk[:, :-1], chunk[:, 1:]

    losses = []
    for step in range(cfg.steps):
        x, y = batch(train, gen)
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(x).reshape(-1, vocab), y.reshape(-1))
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        if name == "sophia_g":
            opt.step(bs=cfg.batch_size * cfg.context)
            if step % 10 == 9:                       # Hessian refresh with labels sampled from the model (B.8)
                opt.zero_grad()
                logits = model(x)
                nn.functional.cross_entropy(logits.reshape(-1, vocab),
                                            sample_labels(logits, gen).reshape(-1)).backward()
                nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                opt.update_hessian()
        else:
            opt.step()
        losses.append(float(loss.detach()))
    with torch.no_grad():
        vgen = torch.Generator().manual_seed(12345)
        val_loss = float(np.mean([float(nn.functional.cross_entropy(model(x).reshape(-1, vocab), y.reshape(-1)))
                                  for x, y in (batch(val, vgen) for _ in range(8))]))
    return {"losses": losses, "val_loss": val_loss}


def char_lm_study(cfg: Config, ctx: RunContext) -> dict[str, float]:
    if cfg.smoke:
        cfg = dataclasses.replace(cfg, steps=5, seeds=1)
    text = stdlib_text()
    chars = sorted(set(text))
    data = torch.tensor([chars.index(c) for c in text], dtype=torch.long)
    metrics: dict[str, float] = {"chars": float(len(text)), "vocab": float(len(chars))}
    curves = {}
    for name in ctx.progress(cfg.optimizers, desc="optimizers"):
        best = None
        for lr in (LR_GRIDS[name][1:2] if cfg.smoke else LR_GRIDS[name]):
            runs = [train_char_lm(name, lr, ctx.seed + s, cfg, data, len(chars)) for s in range(cfg.seeds)]
            val = np.array([r["val_loss"] for r in runs])
            if best is None or val.mean() < best[1].mean():
                best = (lr, val, runs)
        lr, val, runs = best
        metrics |= {f"{name}/best_lr": lr, f"{name}/val_loss": float(val.mean()),
                    f"{name}/val_loss_sd": float(val.std(ddof=1)) if len(val) > 1 else 0.0}
        curves[name] = np.mean([r["losses"] for r in runs], axis=0)
    if "adamw" in curves and "sophia_g" in curves:
        window = max(1, cfg.steps // 20)
        smooth = {k: np.convolve(v, np.ones(window) / window, mode="valid") for k, v in curves.items()}
        target = smooth["adamw"][-1]
        reached = np.flatnonzero(smooth["sophia_g"] <= target)
        metrics["sophia_reached_adamw_final_loss"] = float(len(reached) > 0)
        if len(reached):                             # paper anchor at GPT-2 scale: ~0.5
            metrics["sophia_steps_to_adamw_final_over_adamw"] = float((reached[0] + window) / cfg.steps)
    _plot(ctx, curves)
    return metrics


def _plot(ctx, curves) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for name, losses in curves.items():
        window = max(1, len(losses) // 20)
        ax.plot(np.convolve(losses, np.ones(window) / window, mode="valid"), label=name)
    ax.set(xlabel="step", ylabel="training loss (nats/char)", title="char-LM on stdlib sources, best lr per method")
    ax.legend()
    ctx.save_figure("char_lm_loss", fig)


@experiment("optim/char-lm", config=Config, tags=("optim",),
            summary="char-level transformer on stdlib sources: AdamW, Muon, NAMO, NAMO-D, Sophia-G (lr grid, seeds)")
def run(cfg: Config, ctx: RunContext) -> dict[str, float]:
    return char_lm_study(cfg, ctx)
