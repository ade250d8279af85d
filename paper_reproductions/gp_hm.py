"""GP-HM (Fang et al., ICLR 2024): the authors' logged relL2 of GP-HM-StM / GP-HM-GM / GP-SE / GP-Matern beside ours.

The paper's Tables 1-2 could not be opened offline; the "paper" numbers are the minimum relL2 over the 21
checkpoints in the authors' committed run logs (reference repo commit 6e8cc85, ``result_log/...``), as listed
in the spec (``shared/specs/gp_pde.md`` A.3). At default (CPU) scale we run scaled-down versions of P1 (Poisson
sin(100x)), A1 (Allen-Cahn sin(100x)) and Q1 (2-D Poisson), the GP-SE / GP-Matern ablations, PINN / RFF-PINN and
the Chen et al. GP-collocation peer; ``--full`` runs the presets at the logged settings with faithful Adam
(GPU hours), checkpointed every ``checkpoint_every`` steps and resumable.

Paper-scale rows on a GPU (one preset at a time; rerun the same command after an interruption, it continues from
the last checkpoint with the saved Adam state, equal to an uninterrupted run: ``test_adam_checkpoint_resume_*``)::

    sciml reproduce gp_hm --full --device cuda --set full_presets=Q1 \
        --set checkpoint_dir=/persistent/gp_hm_ckpt --set resume=true

Estimated GPU time (the authors' logs, their GPU): Q1 (400^2, 1e5 epochs) 5586 s (GM) / 8209 s (StM); Q3
(400^2, 3e6 epochs) ~5 h per kernel; the 1-D presets (400-900 points) take minutes per 1e5 epochs. All eleven
presets x two kernels (``full_presets`` default) add up to tens of GPU hours: run them one by one.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
import warnings

import torch

from sciml.core import ConvergenceWarning
from sciml.gp_pde import advection, allen_cahn, gp_collocation, manufactured, poisson, presets, solve, train_pinn
from sciml.runner import Measured, Paper, ReproductionConfig, Row, RunContext, reproduction

PAPER = Paper(key="gp_hm", title="Solving High Frequency and Multi-Scale PDEs with Gaussian Processes",
              arxiv="2311.04465", venue="ICLR 2024")

# (min relL2 over checkpoints) from the authors' logs: StM, GM, SE, Matern; spec A.3.
LOGGED = {
    "P1": (6.53e-7, 3.99e-7, 2.70e-2, 3.32e-2, "Poisson 1D sin(100x), [0,2pi], 400 pts, 1e5 ep"),
    "P2": (5.76e-4, 3.51e-4, 1.69e-1, 4.03e-1, "Poisson 1D sin x+0.1sin20x+0.05sin100x, [0,1], 900 pts, extra-GP 1e6 ep"),
    "P3": (5.47e-6, 1.52e-6, 1.00e0, 5.16e-2, "Poisson 1D sin6x cos100x, [0,2pi], 400 pts, 1e5 ep"),
    "P4": (8.98e-7, 1.55e-6, 3.20e-1, 1.83e-2, "Poisson 1D x sin200x, [0,2pi], 900 pts, F=50, 1e5 ep"),
    "P5": (4.22e-4, 3.25e-3, 9.75e-1, 6.29e-1, "Poisson 1D sin500x-2(x-0.5)^2, [0,1], 400 pts, F=100, extra-GP 1e6 ep"),
    "A1": (4.90e-6, 7.71e-7, 2.75e-2, 3.33e-2, "Allen-Cahn 1D sin(100x), [0,2pi], 400 pts, 1e5 ep"),
    "A2": (4.76e-6, 4.24e-6, 1.06e-2, 5.16e-2, "Allen-Cahn 1D sin6x cos100x, [0,2pi], 400 pts, 1e5 ep"),
    "Q1": (6.87e-5, 6.46e-5, 1.00e0, 6.29e-1, "Poisson 2D sin100x sin100y, [0,2pi]^2, 400^2, 1e5 ep"),
    "Q2": (1.02e-3, 1.06e-3, 9.53e-1, 3.55e-2, "Poisson 2D sin6x cos20x + (y), [0,2pi]^2, 200^2, 1e6 ep"),
    "Q3": (5.68e-3, 2.58e-3, 3.43e-1, 2.95e-1, "Allen-Cahn 2D multi-scale, [0,1]^2, 400^2, 3e6 ep"),
    "Q4": (1.43e-4, 1.35e-3, 1.15e-2, 2.29e-2, "Advection 200u_x+u_y=0, [0,1]^2, 200^2, 1e6 ep, lambda_b 500"),
}
KINDS = ("stm", "gm", "se", "matern")
NAMES = {"stm": "GP-HM-StM", "gm": "GP-HM-GM", "se": "GP-SE", "matern": "GP-Matern"}
FULL_KINDS = ("stm", "gm")           # --full runs these on every preset; the ablations stay log-only


def _paper_rows() -> list[Row]:
    rows = []
    for key, (*values, setting) in LOGGED.items():
        for kind, value in zip(KINDS, values):
            hm = kind in ("stm", "gm")
            # GP-HM: the logged value or better, up to 10x worse; ablations "fail" but must not diverge: from a
            # tenth of the logged value up to 2 (a relL2 above 2 is a diverging run, not a failing method)
            band = (0.0, 10 * value) if hm else (value / 10, 2.0)
            rows.append(Row(
                key=f"{key}/{kind}", source="authors' run logs (Tables 1-2 settings)", paper_setting=setting,
                metric=f"{NAMES[kind]} relL2, min over 21 checkpoints (lower is better)", paper=value,
                ours_setting="logged setting (presets()), faithful joint Adam; --scale full only" if kind in FULL_KINDS
                else "not run (ablation; log value shown)", expect=band if kind in FULL_KINDS else None,
                same_setting=kind in FULL_KINDS,
                note="paper Tables 1-2 unreadable offline; value from the authors' logs"))
    return rows


def _band(key: str) -> tuple[float, float]:
    """GP-HM rows: the authors' logged GM value or better, up to 10x worse (never wider than the paper allows)."""
    return (0.0, 10 * LOGGED[key][1])


CPU_P1 = "CPU-scale: sin(100x) on [0,1] (16 periods, not 100), 100 grid pts (not 400), Q=30"
GN = "matrix-free Gauss-Newton (mode='gauss_newton', all defaults, tolerance stop)"
CPU_PINN = ("CPU-scale: sin(100x) on [0,1], 200 random collocation pts + 2 boundary pts, balanced loss weights "
            "(each term divided by its initial value)")
ROWS = tuple(_paper_rows()) + (
    Row("cpu/P1s/gn", "spec A.5.3", LOGGED["P1"][4], "GP-HM-GM relL2, final iterate", LOGGED["P1"][1],
        f"{CPU_P1}, {GN}", expect=_band("P1"), note="band: up to 10x the logged GM value; measured 1.8e-6 in ~3 s"),
    Row("cpu/P1s/adam", "spec A.5.2", LOGGED["P1"][4], "GP-HM-GM relL2, final iterate (best in note)",
        LOGGED["P1"][1], f"{CPU_P1}, F=20, faithful constant-lr Adam (lr 1e-2), adam_steps (~100 s of CPU)",
        expect=_band("P1"), note="the paper's algorithm at a CPU budget, same band as the GN row; spec prototype: "
        "7e-2 @10.5k, 2.5e-7 @21k, 1.1e-6 @30k steps (non-monotone)"),
    Row("cpu/P1s/se", "spec A.3 (ablation)", LOGGED["P1"][4], "GP-SE relL2, final iterate", LOGGED["P1"][2],
        f"{CPU_P1}, kernel='se', {GN}", expect=(LOGGED["P1"][2] / 10, 2.0), note="expected to fail, not diverge"),
    Row("cpu/P1s/matern", "spec A.3 (ablation)", LOGGED["P1"][4], "GP-Matern relL2, final iterate", LOGGED["P1"][3],
        f"{CPU_P1}, kernel='matern', {GN}", expect=(LOGGED["P1"][3] / 10, 2.0), note="expected to fail, not diverge"),
    Row("cpu/A1s/gn", "spec A.5.3", LOGGED["A1"][4], "GP-HM-GM relL2, final iterate", LOGGED["A1"][1],
        CPU_P1.replace("sin(100x)", "Allen-Cahn sin(100x)") + f", {GN}", expect=_band("A1"), note="scaled A1"),
    Row("cpu/P2/gn", "authors' logs", LOGGED["P2"][4], "GP-HM-GM relL2, final iterate", LOGGED["P2"][1],
        f"P2 problem and grid (900 pts on [0,1]), no extra GP, {GN}, <= 40 its", expect=(0.0, 10 * LOGGED["P2"][1]),
        note="paper: extra-GP, 1e6 Adam epochs"),
    Row("cpu/P5/gn", "authors' logs", LOGGED["P5"][4], "GP-HM-GM relL2, final iterate", LOGGED["P5"][1],
        f"P5 problem and grid (400 pts on [0,1]), no extra GP, {GN}, <= 40 its", expect=(0.0, 10 * LOGGED["P5"][1]),
        note="paper: extra-GP (change point 0.1), 1e6 Adam epochs"),
    Row("cpu/P1s/chen", "Chen et al. 2021 (peer)", LOGGED["P1"][4], "GP collocation relL2", None,
        "sin(100x) on [0,1], chen_points random interior + 2 boundary pts, Gaussian kernel sigma=chen_sigma",
        expect=None, note="peer on the same problem; reported"),
    Row("cpu/P1s/pinn", "paper Sec. 6 (PINN fails on high frequencies)", LOGGED["P1"][4], "PINN relL2 final", None,
        CPU_PINN + "; tanh 3x100, Adam 1e-3, pinn_steps (float32)", expect=(1e-1, 2.0),
        note="paper's PINN number not readable offline; band = fails without diverging"),
    Row("cpu/P1s/rff_pinn", "paper Sec. 6 (RFF-PINN unstable)", LOGGED["P1"][4], "RFF-PINN relL2 final", None,
        CPU_PINN + "; Fourier sigmas (1, 20, 100), 3x100 per scale, Adam 1e-3, pinn_steps (float32)", expect=None,
        note="reported only: the paper calls RFF-PINN hyper-parameter sensitive"),
    Row("cpu/Q1s/gn", "issue 12 bar", LOGGED["Q1"][4], "GP-HM-GM relL2, final iterate", LOGGED["Q1"][1],
        f"CPU-scale: sin(20x)sin(20y) on [0,1]^2, q1_grid^2 grid (default 64, full 256), {GN}", expect=_band("Q1"),
        note="measured 4.8e-7 at 64^2, 1.9e-6 at 256^2"),
    Row("cpu/Q1s/adam", "spec A.5.4", LOGGED["Q1"][4], "GP-HM-GM relL2, min over 21 checkpoints (the paper's "
        "metric; final iterate in the note)", LOGGED["Q1"][1],
        "CPU-scale: sin(20x)sin(20y) on [0,1]^2, 32^2 grid, F=20, faithful joint Adam (constant lr 1e-2), "
        "q1_adam_steps (default 10000; the paper: 1e5 epochs at 400^2)", expect=_band("Q1"),
        note="same band as the GN row (10x the logged value). Budget, not a defect: the same run measured "
        "1.04e-2 @4k (the spec prototype: 1.08e-2 @4k), 1.4e-3 @6k, 5.3e-4 @8k steps, then 5e-4..1.1e-3 at the "
        "constant lr"),
    Row("cpu/Q4s/gn", "issue 12 bar", LOGGED["Q4"][4], "relL2, final iterate", LOGGED["Q4"][1],
        f"CPU-scale advection beta=30 (not 200), sin(x-30y) on [0,1]^2, 64^2, {GN}", expect=_band("Q4"),
        note="issue: Adam 0.69, old alternating 9.2e-2 at 32^2; measured 1.2e-6"),
    Row("peer/chen/rms", "Chen et al. 2021 (arXiv 2103.12959), spec A.4", "-Δu+u^3=f, [0,1]^2, 400+100 pts, "
        "Gaussian sigma 0.2, nugget 1e-13", "rms error on 60x60 grid", None,
        "same as the peer's benchmark at 400+100 points", expect=(0.0, 1e-5), same_setting=True,
        note="peer baseline; spec's compact re-implementation: 4.5e-6"),
)


@dataclasses.dataclass(frozen=True)
class GPHMReproConfig(ReproductionConfig):
    adam_steps: int = 20_000           # faithful Adam on scaled P1 (~100 s of one CPU core at ~5 ms/step)
    q1_grid: int = 64
    q1_adam_steps: int = 10_000        # faithful Adam on scaled Q1 (~2-3 min of one CPU core)
    pinn_steps: int = 2000
    chen_points: int = 200
    chen_sigma: float = 0.02
    full_presets: tuple[str, ...] = ()  # paper-scale presets run with faithful Adam (GPU hours)
    checkpoint_every: int = 5000
    checkpoint_dir: str = ""           # "" = the run folder; give a fixed folder to resume across runs
    resume: bool = False

    def validate(self) -> None:
        super().validate()
        for name in ("adam_steps", "q1_grid", "q1_adam_steps", "pinn_steps", "chen_points", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)!r}")
        bad = [k for k in self.full_presets if k not in LOGGED]
        if bad:
            raise ValueError(f"full_presets must be keys of {sorted(LOGGED)}, got {bad}")

    @classmethod
    def preset(cls, scale: str) -> "GPHMReproConfig":
        if scale == "smoke":
            return cls(scale=scale, adam_steps=200, q1_grid=24, q1_adam_steps=100, pinn_steps=20, chen_points=60)
        if scale == "full":
            return cls(scale=scale, q1_grid=256, adam_steps=30_000, pinn_steps=20_000, full_presets=tuple(LOGGED))
        return cls(scale=scale)


def _sin100(pde):
    return manufactured(pde, lambda x: torch.sin(100 * x[:, 0]), [(0.0, 1.0)])


def _chen_rms(ctx: RunContext, n: int, nb: int) -> float:
    pi = math.pi

    def u(x):
        return torch.sin(pi * x[:, 0]) * torch.sin(pi * x[:, 1]) + 2 * torch.sin(4 * pi * x[:, 0]) * torch.sin(
            4 * pi * x[:, 1])

    def f(x):
        return (2 * pi**2 * torch.sin(pi * x[:, 0]) * torch.sin(pi * x[:, 1])
                + 64 * pi**2 * torch.sin(4 * pi * x[:, 0]) * torch.sin(4 * pi * x[:, 1]) + u(x) ** 3)

    r = gp_collocation(lambda v: v**3, f, u, [(0, 1), (0, 1)], n, nb, generator=ctx.make_generator(7, "cpu"))
    g = torch.linspace(0, 1, 60, dtype=torch.float64)
    pts = torch.stack(torch.meshgrid(g, g, indexing="ij"), -1).reshape(-1, 2)
    return float((r.predict(pts) - u(pts)).pow(2).mean().sqrt())


def _chen_sin100(cfg: GPHMReproConfig, ctx: RunContext, problem) -> tuple[float, float]:
    """Chen et al.'s collocation on u_xx = f (written as -u'' + 0 = -f), both boundary points (stratified)."""
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)     # linear PDE: GN converges in 1 step by design
        r = gp_collocation(lambda v: 0.0 * v, lambda x: -problem.source(x), problem.boundary, [(0.0, 1.0)],
                           cfg.chen_points, 2, sigma=cfg.chen_sigma, generator=ctx.make_generator(3, "cpu"))
    x = torch.linspace(0, 1, 300, dtype=torch.float64)[:, None]
    exact = problem.solution(x)
    return float((r.predict(x) - exact).norm() / exact.norm()), time.perf_counter() - start


@reproduction(PAPER, rows=ROWS, config=GPHMReproConfig,
              summary="GP-HM vs GP-SE/Matern, PINN, RFF-PINN and GP collocation on high-frequency PDEs")
def reproduce(cfg: GPHMReproConfig, ctx: RunContext) -> dict[str, Measured]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)       # small ops: intra-op threads only contend on a shared CPU
    try:
        return _reproduce(cfg, ctx)
    finally:
        torch.set_num_threads(threads)


def _gn(problem, grid, ctx, **options):
    with warnings.catch_warnings():
        # a failing ablation is a result, not an error; Adam's spent budget (MAX_ITER) is the paper's protocol
        warnings.simplefilter("ignore", ConvergenceWarning)
        return solve(problem, grid, device=ctx.device, **options)


def _reproduce(cfg: GPHMReproConfig, ctx: RunContext) -> dict[str, Measured]:
    out: dict[str, Measured] = {}
    smoke = cfg.scale == "smoke"
    p1 = _sin100(poisson(1))
    runs = {}
    for kind in ("gm", "se", "matern"):
        r = _gn(p1, 100, ctx, kernel=kind)
        runs[kind] = r
        key = "cpu/P1s/gn" if kind == "gm" else f"cpu/P1s/{kind}"
        out[key] = Measured(r.rel_l2, f"{r.status.label} after {r.n_steps} its, {r.seconds:.1f} s")
        ctx.log(f"P1s {kind}: {r.rel_l2:.3e} ({r.stop_reason})")
    r = _gn(p1, 100, ctx, mode="adam", freq_scale=20.0, steps=cfg.adam_steps, progress=ctx.progress)
    out["cpu/P1s/adam"] = Measured(r.rel_l2, f"best {r.best_rel_l2:.2e}, {cfg.adam_steps} steps, {r.seconds:.0f} s")
    runs["gm_adam"] = r
    _plot(ctx, p1, runs)
    r = _gn(_sin100(allen_cahn(1)), 100, ctx)
    out["cpu/A1s/gn"] = Measured(r.rel_l2, f"{r.n_steps} its, {r.seconds:.1f} s")
    table = presets()
    for key in ("P2", "P5"):
        pre = table[key]
        r = _gn(pre.problem, pre.grid, ctx, steps=40)      # P2 hovers near tol: 40 its (~90 s) instead of 200
        out[f"cpu/{key}/gn"] = Measured(r.rel_l2, f"{r.status.label}, {r.n_steps} its, {r.seconds:.1f} s",
                                        paper_setting=False)
    err, secs = _chen_sin100(cfg, ctx, p1)
    out["cpu/P1s/chen"] = Measured(err, f"{cfg.chen_points} + 2 points, sigma {cfg.chen_sigma}, {secs:.1f} s")
    for name, sigmas in (("pinn", None), ("rff_pinn", (1.0, 20.0, 100.0))):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)       # a spent step budget is the protocol
            p = train_pinn(p1, fourier_sigmas=sigmas, steps=cfg.pinn_steps, n_collocation=200,
                           generator=ctx.make_generator(1), device=ctx.device)      # balanced loss weights
        out[f"cpu/P1s/{name}"] = Measured(p.rel_l2, f"{cfg.pinn_steps} steps, best {p.best_rel_l2:.2e}, "
                                                    f"{p.seconds:.0f} s")
    q1 = manufactured(poisson(2), lambda x: torch.sin(20 * x[:, 0]) * torch.sin(20 * x[:, 1]), [(0, 1), (0, 1)])
    r = _gn(q1, cfg.q1_grid, ctx, test_points=100)
    out["cpu/Q1s/gn"] = Measured(r.rel_l2, f"{cfg.q1_grid}^2, {r.n_steps} its, {r.seconds:.0f} s")
    r = _gn(q1, 32, ctx, mode="adam", freq_scale=20.0, steps=cfg.q1_adam_steps, test_points=100)
    out["cpu/Q1s/adam"] = Measured(r.best_rel_l2, f"{cfg.q1_adam_steps} steps, final {r.rel_l2:.2e}, "
                                                  f"{r.seconds:.0f} s")
    adv = manufactured(advection(30.0), lambda x: torch.sin(x[:, 0] - 30.0 * x[:, 1]), [(0, 1), (0, 1)])
    r = _gn(adv, 24 if smoke else 64, ctx, test_points=100)
    out["cpu/Q4s/gn"] = Measured(r.rel_l2, f"{r.n_steps} its, {r.seconds:.0f} s")
    out["peer/chen/rms"] = Measured(_chen_rms(ctx, *((100, 40) if smoke else (400, 100))),
                                    "smoke: 100+40 points" if smoke else "400+100 points")
    folder = cfg.checkpoint_dir or str(ctx.path("checkpoints"))
    for key in cfg.full_presets:
        pre = table[key]
        for kind in FULL_KINDS:
            r = _gn(pre.problem, pre.grid, ctx, kernel=kind, mode="adam", freq_scale=pre.freq_scale,
                    steps=pre.steps, lambda_b=pre.lambda_b, extra_gp=pre.extra_gp, progress=ctx.progress,
                    checkpoint_path=os.path.join(folder, f"{key}_{kind}.pt"),
                    checkpoint_every=cfg.checkpoint_every, resume=cfg.resume)
            out[f"{key}/{kind}"] = Measured(r.best_rel_l2, f"final {r.rel_l2:.2e}, {r.seconds:.0f} s on "
                                                           f"{ctx.device}")
    return out


def _plot(ctx: RunContext, problem, runs) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 3.8))
    x = torch.linspace(0, 1, 2000, dtype=torch.float64)
    exact = problem.solution(x[:, None])
    for kind, r in runs.items():
        name = NAMES.get(kind, "GP-HM-GM (faithful Adam)")
        axes[0].semilogy(x, (r.predict(x) - exact).abs().clamp_min(1e-16), lw=0.7, label=name)
        axes[1].semilogy(r.history["step"], r.history["rel_l2"], "o-", ms=3, label=name)
    axes[0].set_title("pointwise error, scaled P1")
    axes[0].set_xlabel("x")
    axes[1].set_title("relL2 vs iteration (GN outer iterations / Adam steps)")
    axes[1].set_xlabel("iteration")
    spec = runs["gm"].spectra[0]
    axes[2].semilogy(spec.frequencies, spec.weights, "o")
    axes[2].axvline(100 / (2 * math.pi), color="k", ls=":")
    axes[2].set_title("GP-HM-GM learned spectrum")
    axes[2].set_xlabel("frequency (cycles / unit)")
    for ax in axes[:2]:
        ax.legend(fontsize=7)
    ctx.save_figure("p1_scaled", fig)
