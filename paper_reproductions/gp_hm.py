"""GP-HM (Fang et al., ICLR 2024): the authors' logged relL2 of GP-HM-StM / GP-HM-GM / GP-SE / GP-Matern beside ours.

The paper's Tables 1-2 could not be opened offline; the "paper" numbers are the minimum relL2 over the 21
checkpoints in the authors' committed run logs (reference repo commit 6e8cc85, ``result_log/...``), as listed
in the spec (``shared/specs/gp_pde.md`` A.3). At default (CPU) scale we run scaled-down versions of P1 (Poisson
sin(100x)), A1 (Allen-Cahn sin(100x)) and Q1 (2-D Poisson), the GP-SE / GP-Matern ablations, PINN / RFF-PINN and
the Chen et al. GP-collocation peer; ``--full`` runs the presets at the reference code's settings (GPU hours).
"""

from __future__ import annotations

import math

import torch

from sciml.gp_pde import allen_cahn, gp_collocation, manufactured, poisson, presets, solve, train_pinn
from sciml.runner import Measured, Paper, Row, RunContext, reproduction

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
            # GP-HM: within 10x of the logged value (or better); ablations: within 10x either way (they fail)
            band = (0.0, 10 * value) if hm else (value / 10, min(10 * value, 10.0))
            rows.append(Row(
                key=f"{key}/{kind}", source="authors' run logs (Tables 1-2 settings)", paper_setting=setting,
                metric=f"{NAMES[kind]} relL2, min over 21 checkpoints (lower is better)", paper=value,
                ours_setting="paper setting (reference code config), --full only" if kind in FULL_KINDS else
                "not run (ablation; log value shown)", expect=band if kind in FULL_KINDS else None,
                same_setting=kind in FULL_KINDS,
                note="paper Tables 1-2 unreadable offline; value from the authors' logs"))
    return rows


CPU_P1 = "CPU-scale: sin(100x) on [0,1] (16 periods, not 100), 100 grid pts (not 400), Q=30, F=20"
CPU_PINN = "CPU-scale: sin(100x) on [0,1], 200 random collocation pts + 2 boundary pts"
ROWS = tuple(_paper_rows()) + (
    Row("cpu/P1s/gm", "spec A.5.3", LOGGED["P1"][4], "GP-HM-GM relL2 final iterate", LOGGED["P1"][1],
        CPU_P1 + ", mode=alternating, 300 outer its", expect=(0.0, 1e-3),
        note="scaled P1; spec prototype of this setting: 8.7e-5 after 210 its, 2.8e-5 after 600"),
    Row("cpu/P1s/stm", "spec A.5.3", LOGGED["P1"][4], "GP-HM-StM relL2 final iterate", LOGGED["P1"][0],
        CPU_P1 + ", mode=alternating, 300 outer its", expect=(0.0, 1e-3), note="scaled P1"),
    Row("cpu/P1s/se", "spec A.3 (ablation)", LOGGED["P1"][4], "GP-SE relL2 final iterate", LOGGED["P1"][2],
        CPU_P1 + ", mode=alternating, 300 outer its", expect=(1e-2, 1e3), note="expected to fail (>= 1e-2)"),
    Row("cpu/P1s/matern", "spec A.3 (ablation)", LOGGED["P1"][4], "GP-Matern relL2 final iterate", LOGGED["P1"][3],
        CPU_P1 + ", mode=alternating, 300 outer its", expect=(1e-2, 1e3), note="expected to fail (>= 1e-2)"),
    Row("cpu/A1s/gm", "spec A.5.3", LOGGED["A1"][4], "GP-HM-GM relL2 final iterate", LOGGED["A1"][1],
        CPU_P1.replace("sin(100x)", "Allen-Cahn sin(100x)") + ", mode=alternating (Gauss-Newton U-step), 300 its",
        expect=(0.0, 1e-3), note="scaled A1"),
    Row("cpu/P1s/gm_adam", "spec A.5.2", LOGGED["P1"][4], "GP-HM-GM relL2 final iterate (joint Adam)",
        LOGGED["P1"][1], CPU_P1 + ", mode=adam (faithful), 30k steps; --full only (minutes on CPU)",
        expect=(0.0, 1e-4), note="issue bar: final <= 1e-4; spec prototype 1.1e-6 final, 2.5e-7 best"),
    Row("cpu/P1s/pinn", "paper Sec. 6 (PINN fails on high frequencies)", LOGGED["P1"][4],
        "PINN relL2 final", None, CPU_PINN + "; tanh 3x100, Adam 1e-3, 400 steps (float32)", expect=(1e-1, 1e3),
        note="paper's PINN number not readable offline; band = 'fails'"),
    Row("cpu/P1s/rff_pinn", "paper Sec. 6 (RFF-PINN unstable)", LOGGED["P1"][4], "RFF-PINN relL2 final", None,
        CPU_PINN + "; Fourier sigmas (1, 20, 100), 3x100 per scale, Adam 1e-3, 200 steps (float32)", expect=None,
        note="reported only: the paper calls RFF-PINN hyper-parameter sensitive"),
    Row("cpu/Q1s/gm", "spec A.5.4", LOGGED["Q1"][4], "GP-HM-GM relL2 final iterate", LOGGED["Q1"][1],
        "CPU-scale: sin(20x)sin(20y) on [0,1]^2, 32^2 grid, Q=30, F=20, joint Adam 4000 steps", expect=(0.0, 5e-2),
        note="spec prototype: 1.08e-2 at 4000 steps, still falling"),
    Row("peer/chen/rms", "Chen et al. 2021 (arXiv 2103.12959), spec A.4", "-Δu+u^3=f, [0,1]^2, 400+100 pts, "
        "Gaussian sigma 0.2, nugget 1e-13", "rms error on 60x60 grid", None,
        "same as the peer's benchmark at 400+100 points", expect=(0.0, 1e-5), same_setting=True,
        note="peer baseline; spec's compact re-implementation: 4.5e-6"),
)


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


@reproduction(PAPER, rows=ROWS, summary="GP-HM vs GP-SE/Matern, PINN, RFF-PINN and GP collocation on high-frequency PDEs")
def reproduce(ctx: RunContext) -> dict[str, Measured]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)       # small ops: intra-op threads only contend on a shared CPU
    try:
        return _reproduce(ctx)
    finally:
        torch.set_num_threads(threads)


def _reproduce(ctx: RunContext) -> dict[str, Measured]:
    out: dict[str, Measured] = {}
    smoke, full = ctx.scale == "smoke", ctx.scale == "full"
    its = 40 if smoke else 300
    p1 = _sin100(poisson(1))
    runs = {}
    for kind in (("gm", "se") if smoke else ("gm", "stm", "se", "matern")):
        r = solve(p1, 100, kernel=kind, mode="alternating", steps=its, device=ctx.device, eval_every=its // 10)
        runs[kind] = r
        out[f"cpu/P1s/{kind}"] = Measured(r.rel_l2, f"best {r.best_rel_l2:.2e}, {its} its, {r.seconds:.0f} s")
        ctx.log(f"P1s {kind}: {r.rel_l2:.3e} (best {r.best_rel_l2:.3e})")
    _plot(ctx, p1, runs)
    if not smoke:
        r = solve(_sin100(allen_cahn(1)), 100, mode="alternating", steps=its, device=ctx.device, eval_every=its // 10)
        out["cpu/A1s/gm"] = Measured(r.rel_l2, f"best {r.best_rel_l2:.2e}, {r.seconds:.0f} s")
    pinn_steps = 20 if smoke else 400
    p = train_pinn(p1, steps=pinn_steps, n_collocation=200, generator=ctx.make_generator(1), device=ctx.device)
    out["cpu/P1s/pinn"] = Measured(p.rel_l2, f"{pinn_steps} steps, {p.seconds:.0f} s")
    p = train_pinn(p1, fourier_sigmas=(1.0, 20.0, 100.0), steps=pinn_steps // 2, n_collocation=200,
                   generator=ctx.make_generator(2), device=ctx.device)
    out["cpu/P1s/rff_pinn"] = Measured(p.rel_l2, f"{pinn_steps // 2} steps, best {p.best_rel_l2:.2e}")
    q1 = manufactured(poisson(2), lambda x: torch.sin(20 * x[:, 0]) * torch.sin(20 * x[:, 1]), [(0, 1), (0, 1)])
    q_steps = 100 if smoke else 4000
    r = solve(q1, 32, steps=q_steps, device=ctx.device, test_points=100)
    out["cpu/Q1s/gm"] = Measured(r.rel_l2, f"{q_steps} steps, best {r.best_rel_l2:.2e}, {r.seconds:.0f} s")
    out["peer/chen/rms"] = Measured(_chen_rms(ctx, *((100, 40) if smoke else (400, 100))),
                                    "smoke: 100+40 points" if smoke else "400+100 points")
    if full:
        r = solve(p1, 100, mode="adam", steps=30_000, device=ctx.device)
        out["cpu/P1s/gm_adam"] = Measured(r.rel_l2, f"best {r.best_rel_l2:.2e}, {r.seconds:.0f} s")
        for key, preset in presets().items():
            for kind in FULL_KINDS:
                r = solve(preset.problem, preset.grid, kernel=kind, freq_scale=preset.freq_scale,
                          steps=preset.steps, lambda_b=preset.lambda_b, extra_gp=preset.extra_gp,
                          device=ctx.device, progress=ctx.progress)
                out[f"{key}/{kind}"] = Measured(r.best_rel_l2, f"final {r.rel_l2:.2e}, {r.seconds:.0f} s")
    return out


def _plot(ctx: RunContext, problem, runs) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 3.8))
    x = torch.linspace(0, 1, 2000, dtype=torch.float64)
    exact = problem.solution(x[:, None])
    for kind, r in runs.items():
        axes[0].semilogy(x, (r.predict(x) - exact).abs().clamp_min(1e-16), lw=0.7, label=NAMES[kind])
        axes[1].semilogy(r.history["step"], r.history["rel_l2"], "o-", ms=3, label=NAMES[kind])
    axes[0].set_title("pointwise error, scaled P1")
    axes[0].set_xlabel("x")
    axes[1].set_title("relL2 vs outer iteration (alternating)")
    axes[1].set_xlabel("iteration")
    spec = runs["gm"].spectra[0]
    axes[2].semilogy(spec.frequencies, spec.weights, "o")
    axes[2].axvline(100 / (2 * math.pi), color="k", ls=":")
    axes[2].set_title("GP-HM-GM learned spectrum")
    axes[2].set_xlabel("frequency (cycles / unit)")
    for ax in axes[:2]:
        ax.legend(fontsize=7)
    ctx.save_figure("p1_scaled", fig)
