"""Tensor Programs (Yang, arXiv 1902.04760; NTK convergence re-presented in TP II, arXiv 2006.14548): spec ssm.md part 2.

The paper has no experiment tables; what is compared (spec 2.3, 2.5):

* **Width table** (2.3 / 2.5.2): relative Frobenius error of one random ReLU MLP's empirical NNGP (last-layer Gram) and
  NTK (J J^T) against the exact kernels (sciml.kernels.mlp_kernel), widths 64..2048, 5 seeds, fitted log-log slope
  (band [-0.65, -0.35] from the spec). The per-width "paper" numbers are the spec author's own measurements
  (10 seeds), not the paper's. TP II Fig. 1 values (RNN / transformer / BN-MLP) are read off a plot and only
  shown (paper-only): transformer and batch-norm kernels are not implemented; TP II's RNN curve used CIFAR-10
  inputs (not offline here), so its row stays paper-only and our RNN rows below use the spec's setting.
* **CNN / RNN width rows** (2.3 table, rows 2-3): CNN-1D (P = 8, C = 3, k = 3, 2 circular conv layers, GAP, ReLU) and
  Elman RNN (erf, T = 5, d = 3, sw = 1, su = 1.4, sb = 0.3) against sciml.kernels.cnn_kernel / rnn_kernel, 6 random
  inputs, fitted slopes (band [-0.65, -0.35]); per-width numbers are the spec author's (10 seeds, one input draw).
  Ours: 20 networks per width and errors averaged over 3 input draws (5 networks left the slopes Monte-Carlo
  dominated: -0.715 / -0.688 for the CNN in round 2; see _arch_rows).
* **Output covariance** (2.5.3): ||mean over M nets of f f^T - K||_F / ||K||_F, M = 2000 nets of width 512
  (spec: 0.028, Monte-Carlo limited ~ M^-1/2); the same check for the CNN and RNN (no reference number: reported).
* **Digits regression** (2.5.6): NNGP / NTK kernel ridge on sklearn digits, 500 train / 500 test, ReLU depth 2,
  sw^2 = 2, sb = 0.1, ridge 1e-3 x mean diagonal (spec: 0.980-0.982, not a paper number). Baseline: the depth-0
  (linear) kernel with the same ridge. Also a 2-D CNN kernel (one circular 3x3 conv layer, GAP) on the 8x8 images,
  fewer images (memory n^2 P^2), beside the MLP kernel on the same split (reported, no reference number).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch

from sciml.kernels import (FiniteCNN, FiniteRNN, cnn_kernel, ensemble_covariance_error, mlp_kernel, mlp_width_sweep,
                           output_covariance_error, rnn_kernel, width_sweep)
from sciml.runner import Measured, Paper, ReproductionConfig, Row, RunContext, reproduction

PAPER = Paper(key="tensor_programs_ntk", title="Scaling Limits of Wide Neural Networks with Weight Sharing: Gaussian "
              "Process Behavior, Gradient Independence, and Neural Tangent Kernel Derivation", arxiv="1902.04760")

SWEEP_SETTING = "MLP ReLU, 2 hidden, sw^2=2, sb=0.1, 6 Gaussian inputs in R^5, one network per seed"
SPEC_NTK = {64: 0.280, 256: 0.186, 1024: 0.085}     # spec 2.3 table (spec author's measurements, 10 seeds)
SPEC_NNGP = {64: 0.361, 256: 0.229, 1024: 0.096}
CNN_SETTING = "CNN-1D ReLU, P=8, C=3, k=3, 2 circular conv layers, GAP, sw^2=2, sb=0.1, 6 Gaussian inputs"
RNN_SETTING = "Elman RNN erf, T=5, d=3, sw=1, su=1.4, sb=0.3, sv=1, last-state readout, 6 Gaussian inputs"
SPEC_ARCH = {   # spec 2.3 table (spec author's measurements, 10 seeds): {width: (NNGP, NTK)}
    "cnn": {64: (0.167, 0.119), 256: (0.115, 0.097), 1024: (0.041, 0.036)},
    "rnn": {64: (0.189, 0.260), 256: (0.103, 0.104), 1024: (0.051, 0.060)},
}
SPEC_SQRTW = {"cnn": (1.0, 1.6), "rnn": (1.7, 2.1)}
ARCH_SETTINGS = {
    "cnn": dict(depth=2, filter_size=3, padding="circular", readout="gap", activation="relu", sigma_w=math.sqrt(2.0),
                sigma_b=0.1),
    "rnn": dict(activation="erf", sigma_w=1.0, sigma_u=1.4, sigma_b=0.3, sigma_v=1.0),
}


@dataclasses.dataclass(frozen=True)
class TPReproConfig(ReproductionConfig):
    widths: tuple[int, ...] = (64, 128, 256, 512, 1024, 2048)
    seeds: int = 5
    cov_networks: int = 2000
    cov_width: int = 512
    digits_train: int = 500
    digits_test: int = 500
    ridge: float = 1e-3                              # x mean diagonal (spec 2.5.6 range 1e-4 .. 1e-2)
    cnn_widths: tuple[int, ...] = (64, 128, 256, 512, 1024)
    rnn_widths: tuple[int, ...] = (64, 128, 256, 512, 1024, 2048)
    arch_seeds: int = 20                             # networks per width for the CNN / RNN rows (see _arch_rows)
    arch_draws: int = 3                              # independent draws of the 6 inputs, errors averaged
    arch_cov_networks: int = 1000
    arch_cov_width: int = 256
    cnn_digits: int = 300                            # train = test size for the CNN-kernel digits row

    def validate(self) -> None:
        super().validate()
        if self.seeds < 1 or len(self.widths) < 2 or min(self.widths) < 1:
            raise ValueError(f"need seeds >= 1 and >= 2 widths, got {self.seeds}, {self.widths}")
        if min(self.cov_networks, self.cov_width, self.digits_train, self.digits_test) < 1 or self.ridge <= 0:
            raise ValueError("cov_networks, cov_width, digits sizes must be >= 1 and ridge > 0")
        if min(self.cnn_widths + self.rnn_widths) < 1 or len(self.cnn_widths) < 2 or len(self.rnn_widths) < 2:
            raise ValueError("cnn_widths and rnn_widths need >= 2 widths, each >= 1")
        if min(self.arch_seeds, self.arch_draws) < 1:
            raise ValueError("arch_seeds and arch_draws must be >= 1")
        if min(self.arch_cov_networks, self.arch_cov_width) < 1 or not 10 <= self.cnn_digits <= 898:
            raise ValueError("arch_cov_networks, arch_cov_width must be >= 1 and cnn_digits in [10, 898]")
        if self.digits_train + self.digits_test > 1797:
            raise ValueError("sklearn digits has 1797 images: digits_train + digits_test must be <= 1797")

    @classmethod
    def preset(cls, scale: str) -> TPReproConfig:
        if scale == "smoke":
            return cls(scale=scale, widths=(64, 128, 256), seeds=2, cov_networks=100, cov_width=128,
                       digits_train=150, digits_test=150, cnn_widths=(64, 128), rnn_widths=(64, 128),
                       arch_seeds=2, arch_draws=1, arch_cov_networks=50, arch_cov_width=64, cnn_digits=40)
        if scale == "full":
            return cls(scale=scale, widths=(64, 128, 256, 512, 1024, 2048, 4096), seeds=10)
        return cls(scale=scale)


_SLOPE_BAND = (-0.65, -0.35)
_ARCH_OURS = ", widths 64..1024 (CNN) / 64..2048 (RNN), 20 networks per width, 3 input draws averaged"
ROWS = [
    Row("width/ntk_slope", "spec 2.5.2 (TP II Fig. 1: error ~ width^-1/2)", SWEEP_SETTING + ", widths 64..2048, 5 seeds",
        "log-log slope of mean relative Frobenius error of the empirical NTK", -0.5, SWEEP_SETTING + ", widths 64..2048",
        expect=_SLOPE_BAND, same_setting=True, note="paper value -1/2 is the theory rate; band from the spec"),
    Row("width/nngp_slope", "spec 2.5.2", SWEEP_SETTING + ", widths 64..2048, 5 seeds",
        "log-log slope of mean relative Frobenius error of the last-layer Gram", -0.5,
        SWEEP_SETTING + ", widths 64..2048", expect=_SLOPE_BAND, same_setting=True),
    Row("width/ntk_sqrtw_err", "spec 2.3 table (spec author's measurement)", SWEEP_SETTING,
        "mean over widths of sqrt(width) * err(NTK)", None, SWEEP_SETTING, expect=(2.2, 3.0), same_setting=True,
        note="band is the spec's observed 2.2-3.0 (10 seeds); 5 seeds fluctuate more"),
    *[Row(f"width/{kind}_err_w{w}", "spec 2.3 table (spec author's measurement, 10 seeds)", SWEEP_SETTING,
          f"mean relative Frobenius error, {kind.upper()}, width {w}", ref[w], SWEEP_SETTING + ", 5 seeds")
      for kind, ref in (("ntk", SPEC_NTK), ("nngp", SPEC_NNGP)) for w in ref],
    *[Row(f"tp2_fig1/{arch}", "TP II Fig. 1 (read off the plot)", f"{arch}, width 64 -> 8192",
          "relative Frobenius deviation of the empirical NTK at width 64 (-> ~1/10 of it at 8192)", value,
          "not run: " + why, note="values read off a plot")
      for arch, value, why in (("rnn", 0.2, "TP II's RNN inputs are CIFAR-10 images (not offline); see the width/rnn_* "
                                             "rows for our RNN in the spec's setting"),
                               ("transformer", 0.15, "architecture not implemented in sciml.kernels"),
                               ("batchnorm_relu_mlp", 0.5, "architecture not implemented in sciml.kernels"))],
    *[row for arch, setting in (("cnn", CNN_SETTING), ("rnn", RNN_SETTING)) for row in (
        Row(f"width/{arch}_ntk_slope", "spec 2.5.2 / 2.3 table", setting + ", 5 seeds",
            f"log-log slope of the mean relative Frobenius error of the empirical NTK ({arch.upper()})", -0.5,
            setting + _ARCH_OURS, expect=_SLOPE_BAND, same_setting=True,
            note="paper value -1/2 is the theory rate; band from the spec"),
        Row(f"width/{arch}_nngp_slope", "spec 2.5.2 / 2.3 table", setting + ", 5 seeds",
            f"log-log slope of the mean relative Frobenius error of the readout Gram ({arch.upper()})", -0.5,
            setting + _ARCH_OURS, expect=_SLOPE_BAND, same_setting=True),
        Row(f"width/{arch}_ntk_sqrtw_err", "spec 2.3 table (spec author's measurement)", setting,
            f"mean over widths of sqrt(width) * err(NTK) ({arch.upper()})", None, setting + _ARCH_OURS,
            expect=SPEC_SQRTW[arch], same_setting=True,
            note="band is the spec's observed range (10 seeds, one input draw); the constant depends on the draw"),
        *[Row(f"width/{arch}_{kind}_err_w{w}", "spec 2.3 table (spec author's measurement, 10 seeds)", setting,
              f"mean relative Frobenius error, {kind.upper()}, width {w}", ref[i], setting + _ARCH_OURS)
          for i, kind in enumerate(("nngp", "ntk")) for w, ref in SPEC_ARCH[arch].items()],
        Row(f"out_cov/{arch}_rel_err", "spec 2.5.3 check applied to this architecture", setting,
            "||mean f f^T - K||_F / ||K||_F over M networks", None, setting + ", M=1000 nets of width 256",
            note="no reference number; Monte-Carlo limited (~M^-1/2)"),
    )],
    Row("out_cov/rel_err", "spec 2.5.3 (spec author's measurement)", "M=2000 nets, width 512, " + SWEEP_SETTING,
        "||mean f f^T - K||_F / ||K||_F", 0.028, "same", expect=(0.018, 0.040), same_setting=True,
        note="Monte-Carlo limited (~M^-1/2): band about +-35%, our choice"),
    Row("digits/nngp_acc", "spec 2.5.6 (not a paper number)", "digits 500/500, ReLU depth 2, sw^2=2, sb=0.1",
        "test accuracy, NNGP kernel ridge", 0.981, "ridge 1e-3 x mean diag", expect=(0.97, 0.99), same_setting=True),
    Row("digits/ntk_acc", "spec 2.5.6 (not a paper number)", "digits 500/500, ReLU depth 2, sw^2=2, sb=0.1",
        "test accuracy, NTK kernel ridge", 0.981, "ridge 1e-3 x mean diag", expect=(0.97, 0.99), same_setting=True),
    Row("digits/linear_baseline_acc", "baseline", "depth-0 (linear) kernel, same ridge", "test accuracy", None,
        "ridge 1e-3 x mean diag"),
    Row("digits/cnn_ntk_acc", "ours (not a paper number)", "-", "test accuracy, 2-D CNN NTK kernel ridge", None,
        "digits 300/300, one circular 3x3 conv layer, GAP, ReLU, sw^2=2, sb=0.1, ridge 1e-3 x mean diag",
        note="beside it the MLP NTK on the same split"),
    Row("digits/cnn_split_mlp_ntk_acc", "ours (baseline for the CNN row)", "-", "test accuracy, MLP NTK, same split",
        None, "digits 300/300, ReLU depth 2, sw^2=2, sb=0.1, ridge 1e-3 x mean diag"),
]


def _digits_accuracy(cfg: TPReproConfig, depth: int, which: str) -> float:
    from sklearn.datasets import load_digits  # bundled with scikit-learn: no download
    data = load_digits()
    perm = np.random.RandomState(0).permutation(len(data.target))
    tr, te = perm[:cfg.digits_train], perm[cfg.digits_train:cfg.digits_train + cfg.digits_test]
    X = torch.tensor(data.data / 16.0, dtype=torch.float64)
    X = X - X[tr].mean(0)                                        # centre with training statistics
    Y = torch.nn.functional.one_hot(torch.tensor(data.target), 10).to(torch.float64)
    settings = dict(depth=depth, activation="relu", sigma_w=math.sqrt(2.0), sigma_b=0.1)
    K = getattr(mlp_kernel(X[tr], **settings), which)
    Ks = getattr(mlp_kernel(X[te], X[tr], **settings), which)
    reg = cfg.ridge * float(torch.diagonal(K).mean())
    alpha = torch.linalg.solve(K + reg * torch.eye(len(tr), dtype=torch.float64), Y[tr])
    return float(((Ks @ alpha).argmax(1) == torch.tensor(data.target[te])).double().mean())


def _arch_problem(arch: str, gen: torch.Generator, draws: int):
    """Inputs (``draws`` sets of 6, stacked), exact kernels and a network factory for the CNN / RNN rows."""
    settings = ARCH_SETTINGS[arch]
    if arch == "cnn":
        X = torch.randn(6 * draws, 8, 3, generator=gen, dtype=torch.float64)
        exact = cnn_kernel(X, **settings)
        make = lambda w, g: FiniteCNN(3, w, spatial_shape=(8,), generator=g, **settings)  # noqa: E731
    else:
        X = torch.randn(6 * draws, 5, 3, generator=gen, dtype=torch.float64)
        exact = rnn_kernel(X, **settings)
        make = lambda w, g: FiniteRNN(3, w, generator=g, **settings)  # noqa: E731
    return X, exact, make


def _arch_rows(cfg: TPReproConfig, ctx: RunContext) -> dict[str, Measured]:
    """CNN / RNN width rows. Measurement (round 3): with 5 networks per width the mean error has a ~20% standard
    error (a single network's relative error has a coefficient of variation ~0.5), which moved fitted slopes by
    +-0.15 (5-network subsets of 20 gave -0.35 .. -0.68 for the CNN); 20 networks per width bring it to ~10%. The
    error constant also depends on the 6 random inputs (RNN sqrt(w)*err 1.99 / 2.03 / 2.42 on three draws with 20
    networks each), so errors are averaged over ``arch_draws`` independent input sets (same networks)."""
    out = {}
    for i, arch in enumerate(("cnn", "rnn")):
        widths = cfg.cnn_widths if arch == "cnn" else cfg.rnn_widths
        X, exact, make = _arch_problem(arch, ctx.make_generator(3 + i, device="cpu"), cfg.arch_draws)
        sweep = width_sweep(make, X, exact.nngp, exact.ntk, widths, cfg.arch_seeds, seed=ctx.seed,
                            groups=cfg.arch_draws, progress=ctx.progress)
        mean = {"nngp": sweep.nngp_errors.mean(1), "ntk": sweep.ntk_errors.mean(1)}
        ctx.log(f"{arch.upper()} widths {widths}: NNGP {np.round(mean['nngp'], 4)}, NTK {np.round(mean['ntk'], 4)}")
        full = cfg.arch_seeds >= 5 and min(widths) <= 64 and max(widths) >= 1024
        note = (f"widths {widths}, {cfg.arch_seeds} networks per width, errors averaged over {cfg.arch_draws} "
                "input draws")
        out[f"width/{arch}_ntk_slope"] = Measured(sweep.ntk_slope, note, paper_setting=full)
        out[f"width/{arch}_nngp_slope"] = Measured(sweep.nngp_slope, note, paper_setting=full)
        out[f"width/{arch}_ntk_sqrtw_err"] = Measured(float(np.mean(np.sqrt(widths) * mean["ntk"])), note,
                                                      paper_setting=full)
        for kind in ("nngp", "ntk"):
            for w, e in zip(widths, mean[kind]):
                if w in SPEC_ARCH[arch]:
                    out[f"width/{arch}_{kind}_err_w{w}"] = Measured(float(e), note + " (spec: 10 seeds, one draw)",
                                                                   paper_setting=False)
        first = slice(0, 6)
        cov = ensemble_covariance_error(make, X[first], exact.nngp[first, first], cfg.arch_cov_networks,
                                        cfg.arch_cov_width, seed=ctx.seed + 10_000)
        out[f"out_cov/{arch}_rel_err"] = Measured(cov, f"M={cfg.arch_cov_networks}, width {cfg.arch_cov_width}")
    return out


def _cnn_digits(cfg: TPReproConfig) -> dict[str, Measured]:
    """NTK ridge with a 2-D CNN kernel on the 8x8 digits (kernel rows in chunks: memory n1 n2 P^2)."""
    from sklearn.datasets import load_digits  # bundled with scikit-learn: no download
    data = load_digits()
    perm = np.random.RandomState(0).permutation(len(data.target))
    tr, te = perm[:cfg.cnn_digits], perm[cfg.cnn_digits:2 * cfg.cnn_digits]
    X = torch.tensor(data.data / 16.0, dtype=torch.float64)
    X = X - X[tr].mean(0)
    images = X.reshape(-1, 8, 8, 1)
    Y = torch.nn.functional.one_hot(torch.tensor(data.target), 10).to(torch.float64)
    settings = dict(depth=1, filter_size=3, padding="circular", readout="gap", activation="relu",
                    sigma_w=math.sqrt(2.0), sigma_b=0.1)

    def kernel(rows, cols):
        return torch.cat([cnn_kernel(images[rows[i:i + 10]], images[cols], **settings).ntk
                          for i in range(0, len(rows), 10)])

    labels = torch.tensor(data.target[te])
    out = {}
    for key, K, Ks in (("digits/cnn_ntk_acc", kernel(tr, tr), kernel(te, tr)),
                       ("digits/cnn_split_mlp_ntk_acc",
                        *(mlp_kernel(X[a], X[tr], depth=2, activation="relu", sigma_w=math.sqrt(2.0), sigma_b=0.1).ntk
                          for a in (tr, te)))):
        reg = cfg.ridge * float(torch.diagonal(K).mean())
        alpha = torch.linalg.solve(K + reg * torch.eye(len(tr), dtype=torch.float64), Y[tr])
        acc = float(((Ks @ alpha).argmax(1) == labels).double().mean())
        out[key] = Measured(acc, f"{len(tr)} train / {len(te)} test")
    return out


@reproduction(PAPER, rows=ROWS, config=TPReproConfig)
def reproduce(cfg: TPReproConfig, ctx: RunContext) -> dict[str, Measured]:
    scaled = cfg.scale == "smoke" or cfg.seeds < 5 or max(cfg.widths) < 2048 or min(cfg.widths) > 64
    X = torch.randn(6, 5, generator=ctx.make_generator(1, device="cpu"), dtype=torch.float64)
    sweep = mlp_width_sweep(X, cfg.widths, cfg.seeds, depth=2, sigma_w=math.sqrt(2.0), sigma_b=0.1, seed=ctx.seed,
                            progress=ctx.progress)
    mean_ntk, mean_nngp = sweep.ntk_errors.mean(1), sweep.nngp_errors.mean(1)
    ctx.log("width  " + "  ".join(f"{w:>6d}" for w in cfg.widths))
    ctx.log("NNGP   " + "  ".join(f"{e:.4f}" for e in mean_nngp))
    ctx.log("NTK    " + "  ".join(f"{e:.4f}" for e in mean_ntk))
    note = f"widths {cfg.widths}, {cfg.seeds} seeds"
    out = {"width/ntk_slope": Measured(sweep.ntk_slope, note, paper_setting=not scaled),
           "width/nngp_slope": Measured(sweep.nngp_slope, note, paper_setting=not scaled),
           "width/ntk_sqrtw_err": Measured(float(np.mean(np.sqrt(cfg.widths) * mean_ntk)), note,
                                           paper_setting=not scaled)}
    for kind, errs, ref in (("ntk", mean_ntk, SPEC_NTK), ("nngp", mean_nngp, SPEC_NNGP)):
        for w, e in zip(cfg.widths, errs):
            if w in ref:
                out[f"width/{kind}_err_w{w}"] = Measured(float(e), f"{cfg.seeds} seeds (spec: 10)", paper_setting=False)
    cov = output_covariance_error(X, cfg.cov_networks, cfg.cov_width, depth=2, sigma_w=math.sqrt(2.0), sigma_b=0.1,
                                  generator=ctx.make_generator(2, device="cpu"))
    cov_scaled = cfg.cov_networks != 2000 or cfg.cov_width != 512
    out["out_cov/rel_err"] = Measured(cov, f"M={cfg.cov_networks}, width {cfg.cov_width}", paper_setting=not cov_scaled)
    dig_scaled = cfg.digits_train != 500 or cfg.digits_test != 500
    note = f"{cfg.digits_train} train / {cfg.digits_test} test, ridge {cfg.ridge} x mean diag"
    for which in ("nngp", "ntk"):
        out[f"digits/{which}_acc"] = Measured(_digits_accuracy(cfg, 2, which), note, paper_setting=not dig_scaled)
    out["digits/linear_baseline_acc"] = Measured(_digits_accuracy(cfg, 0, "ntk"), note)
    out.update(_arch_rows(cfg, ctx))
    out.update(_cnn_digits(cfg))
    return out
