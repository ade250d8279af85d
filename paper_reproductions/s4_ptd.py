"""Yu et al., "Robustifying State-space Models for Long Sequences via Approximate Diagonalization" (ICLR 2024).

The paper's Long-Range Arena table needs the LRA data (not available offline) and GPU-days: its rows are shown
as paper-only. Our CPU-scale rows check the paper's mechanisms: the transfer-function spike of S4D-LegS and the
uniform closeness of PTD (Thms. 2-3), the PTD conditioning targets, the frequency-extrapolation failure of S4D-LegS
(Sec. 3.4), and Fourier-noise robustness on digits-as-sequences (Sec. 5.2 analogue; the paper uses sCIFAR).
"""

from __future__ import annotations

import math

import torch

from experiments.ssm_common import digits_robustness, frozen_systems, single_thread
from experiments.ssm_frequency_extrapolation import Config as ExtrapConfig
from experiments.ssm_frequency_extrapolation import run as run_extrapolation
from sciml.runner import Measured, Paper, Row, RunContext, reproduction
from sciml.ssm import hippo_legs, ptd, transfer_function

PAPER = Paper(key="s4_ptd", title="Robustifying State-space Models for Long Sequences via Approximate Diagonalization",
              arxiv="2310.01698", venue="ICLR 2024")

_LRA = "paper scale, data not available offline"
_LRA_SETTING = "LRA test accuracy (%), full models on GPU"
_S4PTD = {"listops": 60.65, "text": 88.32, "retrieval": 91.07, "image": 88.27, "pathfinder": 94.79,
          "pathx": 96.39, "avg": 86.58}

ROWS = (
    *(Row(key=f"tab1/s4_ptd/{task}", source="Table 1", paper_setting=_LRA_SETTING, metric="accuracy % (higher)",
          paper=value, ours_setting="-", expect=None,
          note=_LRA + ("" if task in ("avg", "pathx") else "; per-task value from the spec, not re-read here"))
      for task, value in _S4PTD.items()),
    Row("tab1/s5_ptd/avg", "Table 1 / abstract", _LRA_SETTING, "accuracy % (higher)", 87.61, "-", None,
        note=_LRA + "; abstract: 87.6"),
    Row("tab1/s4d_legs/avg", "Table 1", _LRA_SETTING, "accuracy % (higher)", 84.89, "-", None,
        note=_LRA + "; S4D paper's numbers"),
    Row("tab1/s4d_legs/pathx", "Table 1", _LRA_SETTING, "accuracy % (higher)", 91.95, "-", None, note=_LRA),
    Row("tab1/s4/avg", "Table 1", _LRA_SETTING, "accuracy % (higher)", 86.09, "-", None, note=_LRA),
    Row("tab1/s5/avg", "Table 1", _LRA_SETTING, "accuracy % (higher)", 87.46, "-", None, note=_LRA),
    # Transfer functions (Thm. 2 / Thm. 3); C = ones/sqrt(N), B = B_H, frequency grid incl. A_N's eigenfrequencies.
    Row("thm2/N32/sup_dev_s4d_legs", "Thm. 2 (spec 1.2.5, verified)", "sup_w |G_Diag - G_DPLR|, N=32",
        "sup deviation (spike)", None, "same quantity, exact float64 (no scaling needed)", expect=(20.0, 27.0),
        same_setting=True, note="spec value 23.7 at omega = 325.4; the paper states Theta(1) spikes"),
    Row("thm3/N32/sup_dev_ptd", "Thm. 3", "sup_w |G_PTD - G_DPLR|, N=32", "sup deviation", None,
        "our shipped E (package solver)", expect=(0.0, 0.177),
        note="band: below sup|G_DPLR| = 0.177; spec: 0.011 with the authors' E (rel. size 0.038)"),
    Row("ptd/N32/kappa", "Sec. 4.2 / authors' ptbHiPPO32.mat", "kappa(V~) of the authors' shipped E",
        "condition number", 8.31, "our solver (log kappa + gamma ||E||, Adam)", expect=(1.0, 10.0),
        note="spec target kappa <= 10"),
    Row("ptd/N32/rel_E", "Sec. 4.2 / authors' ptbHiPPO32.mat", "||E||_2/||A_H||_2 of the authors' E",
        "relative perturbation", 0.038, "our solver", expect=(0.03, 0.1), note="spec target band"),
    # Frequency extrapolation (Sec. 3.4 analogue, spec 1.5(c)); the "hippo" row is the exact dense system.
    *(Row(f"sec3.4/{name}/err_78_84", "Sec. 3.4 / Fig. 4", "regress sine amplitude, test across omega_max",
          "mean |pred - a|, s in [78,84)", None, "spec 1.5(c) CPU analogue, N=16 (1500/1500 sequences; spec 3000)", expect=band, note=note)
      for name, band, note in (("s4d_legs", (1.0, math.inf), "S4D-LegS blows up at omega_max = 81 (spec: 2.19)"),
                               ("ptd", (0.0, 0.6), "PTD tracks exact HiPPO (spec: 0.44 vs 0.37)"),
                               ("hippo", (0.0, 0.6), "exact HiPPO-LegS, dense expm (spec: 0.37)"))),
    # Noise robustness (Sec. 5.2 analogue on digits; the paper uses sCIFAR).
    *(Row(f"sec5.2/{model}/{key}", "Sec. 5.2", f"sCIFAR, {setting}", "test accuracy", None,
          f"digits-as-sequences (L=64), 2 layers H=64, N=32, 12 epochs, 1 seed; {ours}", expect=band, note=note)
      for model, key, setting, ours, band, note in (
          ("s4d_legs", "clean", "clean", "clean", (0.95, 1.0), ""),
          ("s4_ptd", "clean", "clean", "clean", (0.95, 1.0), ""),
          ("s4d_legs", "spike_amp1", "noise at the S4D spike", "noise cos(325.4 dt_h k) U(0,1), amp 1", (0.0, 0.5), "spec 3-seed mean 0.27 (collapse)"),
          ("s4_ptd", "spike_amp1", "noise at the S4D spike", "same noise", (0.7, 1.0), "spec 3-seed mean 0.90"),
          ("s4d_legs", "offspike_amp1", "off-spike control", "omega = 200, amp 1", (0.6, 1.0), "spec 0.85"),
          ("s4_ptd", "offspike_amp1", "off-spike control", "omega = 200, amp 1", (0.6, 1.0), "spec 0.91"))),
)


@reproduction(PAPER, rows=ROWS, summary="S4-PTD / S5-PTD: transfer-function spikes, PTD conditioning, "
              "frequency extrapolation and Fourier-noise robustness at CPU scale; LRA rows paper-only")
def reproduce(ctx: RunContext) -> dict[str, Measured]:
    out: dict[str, Measured] = {}
    N = 32
    systems = frozen_systems(N)
    C = torch.ones(N, dtype=torch.float64) / math.sqrt(N)
    eig = torch.linalg.eigvals(systems["s4d_legs"][0]).imag.abs()
    w = torch.cat([torch.logspace(-1, 5, 4000, dtype=torch.float64), eig]).sort().values
    G = {k: transfer_function(A, B, C, 1j * w) for k, (A, B) in systems.items()}
    out["thm2/N32/sup_dev_s4d_legs"] = Measured(float((G["s4d_legs"] - G["hippo"]).abs().max()))
    out["thm3/N32/sup_dev_ptd"] = Measured(float((G["ptd"] - G["hippo"]).abs().max()))
    res = ptd(hippo_legs(N)[0])
    out["ptd/N32/kappa"] = Measured(res.condition_number, f"backward error {res.backward_error:.1e}")
    out["ptd/N32/rel_E"] = Measured(res.relative_perturbation)

    # Default scale halves the spec's 3000/3000 sequences (time budget); full uses the spec's counts.
    n = 3000 if ctx.scale == "full" else 1500
    cfg = ExtrapConfig(smoke=ctx.smoke, n_train=n, n_test=n)
    m = run_extrapolation(cfg, ctx)
    for name in ("s4d_legs", "ptd", "hippo"):
        out[f"sec3.4/{name}/err_78_84"] = Measured(m[f"{name}_err_s78_84"],
                                                   f"prediction range {m[f'{name}_pred_min']:.2f}..{m[f'{name}_pred_max']:.2f}")

    if ctx.smoke:        # a 2-epoch model says nothing about accuracy: leave these rows not-measured
        return out
    seeds = {"default": (0,), "full": (0, 1, 2)}[ctx.scale]
    epochs = {"default": 12, "full": 40}[ctx.scale]
    with single_thread(1):
        for init, tag in (("legs", "s4d_legs"), ("ptd", "s4_ptd")):
            runs = [digits_robustness("s4d", init, ctx.seed + s, epochs, (325.4, 200.0), (1.0,))
                    for s in seeds]
            note = f"{len(seeds)} seed(s), {epochs} epochs"
            for key, col in (("clean", "clean"), ("spike_amp1", "w325.4_a1"), ("offspike_amp1", "w200_a1")):
                vals = [r[col] for r in runs]
                out[f"sec5.2/{tag}/{key}"] = Measured(sum(vals) / len(vals), note + f", min {min(vals):.3f}")
    return out
