"""Yu et al., "Robustifying State-space Models for Long Sequences via Approximate Diagonalization" (ICLR 2024).

The paper's Long-Range Arena table needs the LRA data (not available offline) and GPU-days: its rows are shown
as paper-only. Our CPU-scale rows check the paper's mechanisms: the transfer-function spike of S4D-LegS and the
uniform closeness of PTD (Thms. 2-3) at N = 32, 64, 128 against the authors' shipped matrices, the PTD conditioning
targets, the frequency-extrapolation failure of S4D-LegS (Sec. 3.4), Fourier-noise robustness on digits-as-sequences
(Sec. 5.2 analogue; the paper uses sCIFAR) for S4D / S4-PTD / S5 / S5-PTD with trainable and frozen SSMs, and a
delayed-recall long-memory table (spec 1.5(e)).

Scales (``--scale``; ``--set key=value`` overrides a preset field):
  smoke: 1 seed, 2 epochs, 10 recall steps at L = 200 (plumbing only; accuracy rows not measured);
  default: 5 seeds at the spec's lr 3e-3 but 20 epochs (spec: 40) for robustness / digits; recall 5 seeds,
           300 steps at L = 1024, H 32, batch 32 for S4D-LegS, S4-PTD, S4-PTD ``rehalf``, S5-PTD ``rehalf`` and
           S5-LegS ``wide+window`` (the S5 fix, P = 64); 1500/1500 extrapolation sequences (spec 3000). About
           29 min on one core (robustness 9.5 min; recall ~16 min for the first four models, measured on an
           otherwise idle 2-core box, + ~6 min for the S5 fix, 5 x ~72 s measured; S5 now runs in complex64, which
           makes S5-PTD ``rehalf`` ~2x cheaper than before); ``--set robustness=false`` / ``--set recall=false``
           run the tables apart.
  full: 5 seeds, the spec's 40 epochs at lr 3e-3, recall 300 steps for every recall model (adds the S4-PTD
        ``long`` variant, S5-LegS, S5-PTD and S5-PTD ``rehalf+wide+window``), 3000/3000 sequences.
Budgets (1-seed learning curves, lr 3e-3, 20-epoch cosine schedule, clean digits accuracy after epoch 5/10/15/20):
S4D-LegS 0.85/0.97/0.98/0.98 (converged by ~10 epochs), S4-PTD 0.53/0.90/0.94/0.95, S5-PTD 0.52/0.83/0.91/0.91
(at 10 epochs the PTD rows were under-trained, clean 0.68-0.75 over 5 seeds; hence the 20-epoch default;
``full`` is the spec budget).
Recall, S4D-LegS seed 0, L 1024: H 16 / batch 16 / 300 steps 0.68; H 32 / batch 16 / 300 steps 0.73;
H 32 / batch 32 / 200 steps 0.87; H 32 / batch 32 / 300 steps 0.96 (3-seed mean, previous round).
Every accuracy row's note says what ran; rows not at the spec setting are marked paper_setting=False.
"""

from __future__ import annotations

import dataclasses
import math

import torch

from experiments.ssm_common import digits_robustness, frozen_systems, mean_sd_min, parse_model, single_thread
from experiments.ssm_delayed_recall import Config as RecallConfig
from experiments.ssm_delayed_recall import recall_run
from experiments.ssm_frequency_extrapolation import Config as ExtrapConfig
from experiments.ssm_frequency_extrapolation import run as run_extrapolation
from sciml.runner import Measured, Paper, ReproductionConfig, Row, RunContext, reproduction
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
    *(Row(f"thm3/N{N}/rel_dev_ptd", "Thm. 3 / authors' shipped matrix (code)",
          f"sup_w |G_PTD - G_H| / sup_w |G_H|, N={N}, C = ones/sqrt(N), B = B_H", "relative sup deviation (lower)",
          paper, "our shipped E (two-stage solver, sciml/ssm/data)", expect=(0.0, paper), same_setting=True,
          note=f"paper column = the authors' {src} measured by us (not in the paper's text); band: at most the "
               "authors' value (issue 15: 'at least as good as the authors' matrices'; its must-show is <= 0.15)")
      for N, paper, src in ((32, 0.062, "ptbHiPPO32.mat"), (64, 0.059, "ptb.mat (complex E, S4-PTD LRA)"),
                            (128, 0.128, "ptbHiPPO128_v2.mat (one eigenvalue at Re = +3.4, flipped)"))),
    Row("thm3/N128/dc_gain_ratio", "Thm. 3 (DC gain = G(0))", "G_PTD(0) / G_H(0), N=128", "ratio (1 = exact)", 0.872,
        "our shipped E", expect=(0.85, 1.15), same_setting=True,
        note="paper column: authors' ptbHiPPO128_v2 (0.0771 / 0.0884); the stage-1-only solver gave 0.33"),
    *(Row(f"ptd/N{N}/kappa", "Sec. 4.2 / authors' matrices", "kappa(V~)", "condition number", paper,
          "our shipped E", expect=(1.0, 10.0), same_setting=True, note="spec target kappa <= 10")
      for N, paper in ((32, 8.31), (64, 9.2), (128, 8.01))),
    Row("ptd/N32/rel_E", "Sec. 4.2 / authors' ptbHiPPO32.mat", "||E||_2/||A_H||_2 of the authors' E",
        "relative perturbation", 0.038, "our solver", expect=(0.03, 0.1), note="spec target band"),
    # Frequency extrapolation (Sec. 3.4 analogue, spec 1.5(c)); the "hippo" row is the exact dense system.
    *(Row(f"sec3.4/{name}/err_78_84", "Sec. 3.4 / Fig. 4", "regress sine amplitude, test across omega_max",
          "mean |pred - a|, s in [78,84)", None, "spec 1.5(c) CPU analogue, N=16", expect=band, note=note)
      for name, band, note in (("s4d_legs", (1.0, math.inf), "S4D-LegS blows up at omega_max = 81 (spec: 2.19)"),
                               ("ptd", (0.0, 0.6), "PTD tracks exact HiPPO (spec: 0.44 vs 0.37)"),
                               ("hippo", (0.0, 0.6), "exact HiPPO-LegS, dense expm (spec: 0.37)"))),
)

# Noise robustness (Sec. 5.2 analogue on digits; spec 1.5(d) acceptance: 3-seed means at omega = 325.4, amp 1:
# S4D <= 0.35 and PTD >= 0.70 in both settings; clean >= 0.97 for both). S5 rows have no spec band (reported),
# except S5-PTD clean accuracy (issue 15 target 0.95).
_ROBUST_SETTING = "digits-as-sequences (L=64), 2 blocks H=64, N=32, AdamW, 5 seeds (epochs / lr: see note)"
_SPIKE, _OFF = 325.4, 200.0
_ROBUST_MODELS = {"s4d_legs": "s4d:legs", "s4_ptd": "s4d:ptd", "s5_legs": "s5:legs", "s5_ptd": "s5:ptd"}


def _robust_band(model: str, key: str) -> tuple[tuple[float, float] | None, str]:
    s4 = model in ("s4d_legs", "s4_ptd")
    if key == "clean":
        if s4:
            return (0.97, 1.0), "spec acceptance: clean >= 0.97"
        if model == "s5_ptd":
            return (0.95, 1.0), ("issue 15 target 0.95. Why it learns slower (measured on the seed-0 init, N = 32): "
                                 "PTD keeps HiPPO's damping, |Re lambda| up to 303 (median 1.7) against S5-LegS' 0.5, "
                                 "so 39% of its 18 modes decay below 1e-3 within the 64-step sequence at init "
                                 "(S5-LegS: 0%); 1-seed curve at lr 3e-3: 0.83 / 0.91 / 0.91 after 10 / 15 / 20 "
                                 "epochs")
        return None, ""
    if key == "spike_amp1" and s4:
        return ((0.0, 0.35), "spec acceptance S4D <= 0.35 (spec 3-seed mean 0.27 / frozen 0.20). Epoch budget "
                "measured (trainable, seeds 0-4): 20 epochs 0.31/0.36/0.42/0.52/0.35 (mean 0.393), the spec's 40 "
                "epochs 0.29/0.27/0.41/0.48/0.35 (mean 0.359; seeds 0-2, the spec's 3 seeds: 0.322)") \
            if model == "s4d_legs" else ((0.70, 1.0), "spec acceptance PTD >= 0.70 (spec 0.90 / frozen 0.75)")
    return None, "reported (no spec band)"


ROBUST_ROWS = tuple(
    Row(f"sec5.2/{model}{'_frozen' if frozen else ''}/{key}", "Sec. 5.2 / spec 1.5(d)",
        f"sCIFAR, {label}{', frozen A, B, dt' if frozen else ''}", "test accuracy (mean over seeds)", None,
        _ROBUST_SETTING + (", A, B, dt frozen" if frozen else ""), expect=_robust_band(model, key)[0],
        same_setting=True, note=_robust_band(model, key)[1])
    for model in _ROBUST_MODELS for frozen in ((False, True) if model in ("s4d_legs", "s4_ptd") else (False,))
    for key, label in (("clean", "clean"), ("spike_amp1", f"noise amp 1 at the S4D spike omega = {_SPIKE}"),
                       ("offspike_amp1", f"off-spike control omega = {_OFF}, amp 1")))

REVERSAL_ROWS = tuple(
    Row(f"sec5.2/offspike_reversal{suffix}", "spec 1.5(d) table", "omega = 200, amp 1: PTD minus S4D accuracy",
        "accuracy difference (PTD - S4D)", paper, _ROBUST_SETTING, expect=None,
        note="spec (3 seeds): PTD ahead off-spike (+0.06 trainable, -0.07 frozen); issue run: PTD behind (-0.05)")
    for suffix, paper in (("", 0.057), ("_frozen", -0.072)))

_RECALL_MODELS = {"s4d_legs": "s4d:legs", "s4_ptd": "s4d:ptd", "s4_ptd_rehalf": "s4d:ptd:rehalf",
                  "s5_ptd_rehalf": "s5:ptd:rehalf", "s5_legs_wide_window": "s5:legs:wide+window",
                  "s4_ptd_long": "s4d:ptd:long", "s5_legs": "s5:legs", "s5_ptd": "s5:ptd",
                  "s5_ptd_rehalf_wide_window": "s5:ptd:rehalf+wide+window"}
_RECALL_DEFAULT = ("s4d_legs", "s4_ptd", "s4_ptd_rehalf", "s5_ptd_rehalf", "s5_legs_wide_window")  # rest: full
_RECALL_NOTES = {
    "s4_ptd_rehalf": "; fix: every PTD real part := -1/2 (LegS' damping) and the real-eigenvalue modes dropped "
                     "(with Re -1/2 they integrate the blanks and swamp the tokens). 300 steps, H 32, seeds 0-2: "
                     "0.85 / 0.79 / 0.88 (mean 0.84; LegS 0.99 / 0.90 / 1.00; PTD 0.26 / 0.35; "
                     "Re := -1/2 alone: 0.39). "
                     "It gives up PTD's HiPPO fidelity (Re no longer HiPPO's). Not lifted (seed 0) by halving the "
                     "steps, [5e-4, 5e-2]: 0.849, nor by keeping the real-eigenvalue modes at their own PTD damping "
                     "(dropping only the fastest, -303): 0.864; PTD's top frequency (157 vs LegS' 325) leaves fewer "
                     "positional long-memory modes (2-5 vs 5-16 at init). All channel steps in that mode's window, "
                     "[3.2e-3, 5.9e-3], 5 seeds: 0.90 / 0.86 / 0.90 / 0.85 / 0.90 (mean 0.882): closer, not 0.9",
    "s5_ptd_rehalf": "; the same fix applied to S5-PTD's per-block init (S5 runs its exact FFT mode here). Not "
                     "enough for S5: with P = 32 its 14 modes are shared by all channels and 0-1 of them (seeds 0-4) "
                     "both keep L steps and turn >= 0.5 rad per step (S4D-LegS: 5-16 of 512; see s5_legs_wide_window)",
    "s5_legs_wide_window": "; S5 fix (experiments/ssm_common.py ':wide+window'): P = 2 x 32 states and each state's "
                           "initial step in its memory window (sciml.ssm.memory_window: |Re lambda| dt L <= 3 and "
                           "|Im lambda| dt >= 0.5, i.e. the state keeps L steps and tells adjacent tokens apart). "
                           "Seed 0 ablation: S5-LegS 0.45; P 64 alone (':wide', random steps, 0 window modes) 0.535; "
                           "window steps alone at P 32 0.47 (2 usable modes); P 64 + window 0.88 (7 modes); P 128 + "
                           "window 0.996 (24 modes, 3x the time). S5 runs in complex64 here",
    "s5_ptd_rehalf_wide_window": "; the S5 fix on S5-PTD rehalf (PTD N = 64, 9 window modes): seeds 0-2 0.78 / "
                                 "0.85 / 0.91 (mean 0.85; S5-PTD rehalf at P 32, 5 seeds: 0.47 / 0.35 / 0.48 / 0.40 / "
                                 "0.54, mean 0.45); not measured over 5 seeds",
    "s4_ptd_long": "; tried fix: dt 10x smaller, [1e-4, 1e-2] (a time rescaling; restores initial memory). "
                   "Seed-0 300-step H 32 run: 0.37 -- not a fix",
}
RECALL_ROWS = tuple(
    Row(f"recall/{model}/token_acc", "spec 1.5(e) (not in the paper)", "delayed recall, 4 tokens of 4, L >= 1000",
        "token accuracy at the last step (chance 0.25)", None,
        "L = 1024, 2 blocks, N = 32, AdamW lr 1e-2 (SSM 1e-3), 5 seeds; steps / width: see note",
        expect=(0.9, 1.0), note="spec 1.5(e): a 2-layer model should solve it with both inits"
        + _RECALL_NOTES.get(model, ""))
    for model in _RECALL_MODELS) + (
    Row("recall/chance/token_acc", "baseline", "uniform guess over the 4-token vocabulary", "token accuracy", None,
        "1 / vocab (forced by the task, not a result)", expect=None, note="reported: the floor every row is read "
        "against"),)
ROWS = ROWS + ROBUST_ROWS + REVERSAL_ROWS + RECALL_ROWS


@dataclasses.dataclass(frozen=True)
class S4PTDReproConfig(ReproductionConfig):
    seeds: int = 5
    robust_epochs: int = 20           # spec 1.5(d): 40 ("full"); see the module docstring for the curves
    robust_lr: float = 3e-3           # spec 1.5(d)
    frozen: bool = True               # the frozen-SSM rows (S4D-LegS and S4-PTD)
    robustness: bool = True           # the robustness / digits table (False: skip, e.g. to run the tables apart)
    recall: bool = True               # the delayed-recall table
    recall_steps: int = 300           # as "full" and the run (200 leaves LegS at 0.83)
    recall_length: int = 1024
    recall_d_model: int = 32
    recall_batch: int = 32
    recall_models: tuple[str, ...] = _RECALL_DEFAULT
    extrapolation_sequences: int = 1500   # spec: 3000 train / 3000 test

    def validate(self) -> None:
        super().validate()
        if self.seeds < 1 or self.robust_epochs < 1 or self.recall_steps < 2 or self.recall_length < 5:
            raise ValueError("seeds and robust_epochs must be >= 1, recall_steps >= 2 and recall_length >= 5")
        unknown = set(self.recall_models) - set(_RECALL_MODELS)
        if unknown:
            raise ValueError(f"recall_models must be among {sorted(_RECALL_MODELS)}, got {sorted(unknown)}")

    @classmethod
    def preset(cls, scale: str) -> "S4PTDReproConfig":
        if scale == "smoke":
            return cls(scale=scale, seeds=1, robust_epochs=2, recall_steps=10, recall_length=200,
                       extrapolation_sequences=600)
        if scale == "full":
            return cls(scale=scale, robust_epochs=40, recall_steps=300, recall_models=tuple(_RECALL_MODELS),
                       extrapolation_sequences=3000)
        return cls(scale=scale)


def _transfer_rows(out: dict[str, Measured]) -> None:
    N = 32
    systems = frozen_systems(N)
    C = torch.ones(N, dtype=torch.float64) / math.sqrt(N)
    eig = torch.linalg.eigvals(systems["s4d_legs"][0]).imag.abs()
    w = torch.cat([torch.logspace(-1, 5, 4000, dtype=torch.float64), eig]).sort().values
    G = {k: transfer_function(A, B, C, 1j * w) for k, (A, B) in systems.items()}
    out["thm2/N32/sup_dev_s4d_legs"] = Measured(float((G["s4d_legs"] - G["hippo"]).abs().max()))
    for N in (32, 64, 128):
        res = ptd(hippo_legs(N)[0])
        out[f"thm3/N{N}/rel_dev_ptd"] = Measured(res.transfer_deviation, f"uniform over unit C: "
                                                 f"{res.uniform_transfer_deviation:.3f}; kappa {res.condition_number:.2f}")
        out[f"ptd/N{N}/kappa"] = Measured(res.condition_number, f"||E||/||A|| {res.relative_perturbation:.3f}, "
                                          f"backward error {res.backward_error:.1e}")
        if N == 128:
            out["thm3/N128/dc_gain_ratio"] = Measured(res.dc_gain / res.dc_gain_reference,
                                                      f"G_PTD(0) {res.dc_gain:.4f} vs G_H(0) {res.dc_gain_reference:.4f}")
        if N == 32:
            out["ptd/N32/rel_E"] = Measured(res.relative_perturbation)


def _robust_rows(cfg: S4PTDReproConfig, ctx: RunContext, out: dict[str, Measured]) -> None:
    scaled = cfg.robust_epochs < 40 or cfg.robust_lr != 3e-3
    for model, spec in ctx.progress(list(_ROBUST_MODELS.items()), desc="robustness"):
        layer, init, extra = parse_model(spec)
        for frozen in ((False, True) if cfg.frozen and layer == "s4d" else (False,)):
            runs = [digits_robustness(layer, init, ctx.seed + s, cfg.robust_epochs, (_SPIKE, _OFF), (1.0,),
                                      lr=cfg.robust_lr, freeze_ssm=frozen, **extra) for s in range(cfg.seeds)]
            tag = f"{model}{'_frozen' if frozen else ''}"
            ran = (f"ran: {cfg.seeds} seeds, {cfg.robust_epochs} epochs ({cfg.robust_epochs * 28} steps of batch "
                   f"50), lr {cfg.robust_lr:g}" + (" (spec: 40 epochs at lr 3e-3)" if scaled else " (spec setting)"))
            for key, col in (("clean", "clean"), ("spike_amp1", f"w{_SPIKE:g}_a1"), ("offspike_amp1", f"w{_OFF:g}_a1")):
                mean, sd, lo = mean_sd_min([r[col] for r in runs])
                out[f"sec5.2/{tag}/{key}"] = Measured(
                    mean, f"{ran}; per seed " + "/".join(f"{r[col]:.3f}" for r in runs)
                    + f"; sd {sd:.3f}, worst seed {lo:.3f}", paper_setting=not scaled)
            ctx.log(f"{tag}: " + ", ".join(f"{k} {out[f'sec5.2/{tag}/{k}'].value:.3f}"
                                            for k in ("clean", "spike_amp1", "offspike_amp1")))
    for suffix in ("", "_frozen"):
        a, b = out.get(f"sec5.2/s4_ptd{suffix}/offspike_amp1"), out.get(f"sec5.2/s4d_legs{suffix}/offspike_amp1")
        if a is not None and b is not None:
            # the raw difference mixes robustness with clean accuracy (an under-trained PTD starts lower), so the
            # note also gives each model's drop from its own clean accuracy
            drop_p = out[f"sec5.2/s4_ptd{suffix}/clean"].value - a.value
            drop_s = out[f"sec5.2/s4d_legs{suffix}/clean"].value - b.value
            out[f"sec5.2/offspike_reversal{suffix}"] = Measured(
                a.value - b.value, f"negative = PTD worse than S4D off its spike; drop from clean accuracy: PTD "
                f"{drop_p:.3f}, S4D {drop_s:.3f} ({'PTD' if drop_p > drop_s else 'S4D'} hurt more)",
                paper_setting=not scaled)


def _recall_rows(cfg: S4PTDReproConfig, ctx: RunContext, out: dict[str, Measured]) -> None:
    rc = RecallConfig(models=tuple(_RECALL_MODELS.values()), length=cfg.recall_length, steps=cfg.recall_steps,
                      d_model=cfg.recall_d_model, batch=cfg.recall_batch)
    scaled = cfg.recall_steps < 300 or cfg.recall_d_model < 32 or cfg.recall_batch < 32
    for model in ctx.progress(list(cfg.recall_models), desc="recall"):
        spec = _RECALL_MODELS[model]
        runs = [recall_run(spec, rc, ctx.seed + s, cfg.recall_length, cfg.recall_steps, 512) for s in range(cfg.seeds)]
        mean, sd, lo = mean_sd_min([r["token_acc"] for r in runs])
        mem = runs[0]
        out[f"recall/{model}/token_acc"] = Measured(
            mean, f"ran: {cfg.seeds} seeds, {cfg.recall_steps} steps, batch {cfg.recall_batch}, H "
            f"{cfg.recall_d_model}, L {cfg.recall_length}; per seed "
            + "/".join(f"{r['token_acc']:.2f}" for r in runs) + f"; sd {sd:.3f}, worst {lo:.3f}; "
            f"{sum(r['seconds'] for r in runs):.0f} s; positional long-memory modes at init (per seed) "
            + "/".join(f"{r['positional_modes']:.0f}" for r in runs)
            + f"; seed-0 init kernel memory {mem['kernel_memory']:.1e}, slowest decay "
            f"{mem['slowest_decay']:.2f}, median decay {mem['median_decay']:.2f}, |B~| rms {mem['B_norm']:.2f}",
            paper_setting=not scaled)
        ctx.log(f"recall {model}: {out[f'recall/{model}/token_acc'].note}")
    out["recall/chance/token_acc"] = Measured(1 / rc.vocab, "1 / vocab", paper_setting=False)


@reproduction(PAPER, rows=ROWS, config=S4PTDReproConfig,
              summary="S4-PTD / S5-PTD: transfer-function spikes and PTD fidelity vs the authors' matrices, "
              "frequency extrapolation, Fourier-noise robustness and delayed recall at CPU scale; LRA rows paper-only")
def reproduce(cfg: S4PTDReproConfig, ctx: RunContext) -> dict[str, Measured]:
    out: dict[str, Measured] = {}
    _transfer_rows(out)
    n = cfg.extrapolation_sequences
    m = run_extrapolation(ExtrapConfig(smoke=cfg.scale == "smoke", n_train=n, n_test=n), ctx)
    for name in ("s4d_legs", "ptd", "hippo"):
        out[f"sec3.4/{name}/err_78_84"] = Measured(
            m[f"{name}_err_s78_84"], f"{n}/{n} sequences; prediction range {m[f'{name}_pred_min']:.2f}.."
            f"{m[f'{name}_pred_max']:.2f}", paper_setting=n >= 3000)
    if cfg.scale == "smoke":        # a 2-epoch / 10-step model says nothing about accuracy
        return out
    with single_thread(1):
        if cfg.robustness:
            _robust_rows(cfg, ctx, out)
        if cfg.recall:
            _recall_rows(cfg, ctx, out)
    return out
