"""Per-step overhead of the LML corrections, and our samplers against diffusers' schedulers on the same model.

    python benchmarks/bench_diffusion.py [--quick]

(1) Wall time of ``sample(...)`` with each LML mode over the same sampler without it, at equal NFE, on the
digits-sized MLP eps-network (batch 256 x 64, float32) and on an image-sized tensor (batch 16 x 3x32x32) with a
cheap convolutional stand-in for a UNet; target <= 1.1x for ``mode="code"``. ``lm_langevin`` spends half of the
NFE on corrector steps, so its ratio is per NFE.
(2) diffusers' ``DDIMScheduler`` / ``DPMSolverMultistepScheduler`` (dpmsolver++, order 2) loops against our
``sample`` on the same model and time grid; ratio = diffusers time / ours (target >= 1).

Timings are medians of interleaved repeats in one process; the machine is shared, so read only the ratios.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import torch

from sciml.diffusion import EpsMLP, LMCorrection, VPSchedule, sample


def _median_times(fns: dict, repeats: int) -> dict[str, float]:
    times = {k: [] for k in fns}
    for _ in range(repeats):
        for name, fn in fns.items():                  # interleaved, so load changes hit every variant alike
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {k: statistics.median(v) for k, v in times.items()}


class ConvEps(torch.nn.Module):
    """A small conv net standing in for a UNet on 3x32x32 inputs (the LM overhead is relative to the model)."""

    def __init__(self) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(0)
        self.c1 = torch.nn.Conv2d(3, 32, 3, padding=1)
        self.c2 = torch.nn.Conv2d(32, 3, 3, padding=1)
        with torch.no_grad():
            for p in self.parameters():
                p.uniform_(-0.05, 0.05, generator=gen)

    def forward(self, x, t):
        return self.c2(torch.nn.functional.silu(self.c1(x)))


def bench_overhead(repeats: int, nfe: int) -> None:
    sch = VPSchedule.ddpm_linear()
    cases = {"mlp 256x64": (EpsMLP(64, generator=torch.Generator().manual_seed(0)).eval(), (256, 64)),
             "conv 16x3x32x32": (ConvEps().eval(), (16, 3, 32, 32))}
    modes = {"base": None, "code k=0": LMCorrection("code", lam=8e-4),
             "code k=0.3": LMCorrection("code", lam=8e-4, kappa=0.3),
             "code fp32": LMCorrection("code", lam=8e-4, kappa=0.3, compute_dtype="input"),
             "lm_langevin r2": LMCorrection("lm_langevin", lam=1.0, rank=2)}
    print(f"\n(1) LML overhead at NFE {nfe}, float32 (ratio = time / base time of the same sampler)")
    for case, (model, shape) in cases.items():
        x_init = torch.randn(shape, generator=torch.Generator().manual_seed(1))
        for sampler in ("ddim", "dpm_solver++"):
            fns = {name: (lambda c=corr, s=sampler: sample(model, sch, shape, s, nfe=nfe, correction=c, x_init=x_init,
                                                             generator=torch.Generator().manual_seed(2)))
                   for name, corr in modes.items()}
            with torch.no_grad():
                t = _median_times(fns, repeats)
            row = ", ".join(f"{k} {t[k] / t['base']:.3f}x" for k in modes if k != "base")
            print(f"  {case:16s} {sampler:13s} base {t['base'] * 1e3:8.1f} ms | {row}")


def bench_vs_diffusers(repeats: int, nfe: int) -> None:
    try:
        import diffusers
    except ImportError:
        print("\n(2) diffusers not installed (pip install diffusers); skipped")
        return
    model = EpsMLP(64, generator=torch.Generator().manual_seed(0)).eval()
    shape = (256, 64)
    x_init = torch.randn(shape, generator=torch.Generator().manual_seed(1))
    print(f"\n(2) ours vs diffusers {diffusers.__version__} on the MLP (256x64, float32), NFE {nfe}, trailing spacing")
    pairs = {"ddim": (lambda: diffusers.DDIMScheduler(clip_sample=False, timestep_spacing="trailing"), {}),
             "dpm_solver++": (lambda: diffusers.DPMSolverMultistepScheduler(algorithm_type="dpmsolver++",
                                                                            solver_order=2,
                                                                            timestep_spacing="trailing"),
                              {"order": 2})}
    for name, (make, kwargs) in pairs.items():
        scheduler = make()
        schedule = VPSchedule.discrete(scheduler.alphas_cumprod)

        def run_diffusers(scheduler=scheduler):
            scheduler.set_timesteps(nfe)
            x = x_init.clone()
            for t in scheduler.timesteps:
                x = scheduler.step(model(x, t.expand(shape[0])), t, x).prev_sample
            return x

        def run_ours(schedule=schedule, name=name, kwargs=kwargs):
            return sample(model, schedule, shape, name, nfe=nfe, x_init=x_init, **kwargs).samples

        with torch.no_grad():
            t = _median_times({"diffusers": run_diffusers, "ours": run_ours}, repeats)
            diff = float((run_diffusers() - run_ours()).abs().max())
        print(f"  {name:13s} diffusers {t['diffusers'] * 1e3:7.1f} ms  ours {t['ours'] * 1e3:7.1f} ms  "
              f"ratio {t['diffusers'] / t['ours']:.2f}x  (max |diff| {diff:.1e})")
        # the scheduler arithmetic alone, with a zero-cost model, isolates the per-step overhead
        zero = lambda x, t: x * 0.1

        def sched_only(scheduler=scheduler):
            scheduler.set_timesteps(nfe)
            x = x_init.clone()
            for t in scheduler.timesteps:
                x = scheduler.step(zero(x, t), t, x).prev_sample
            return x

        def ours_only(schedule=schedule, name=name, kwargs=kwargs):
            return sample(zero, schedule, shape, name, nfe=nfe, x_init=x_init, **kwargs).samples

        t = _median_times({"diffusers": sched_only, "ours": ours_only}, repeats)
        print(f"  {name:13s} solver-only: diffusers {t['diffusers'] * 1e3:6.2f} ms  ours {t['ours'] * 1e3:6.2f} ms  "
              f"ratio {t['diffusers'] / t['ours']:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    args = parser.parse_args()
    torch.set_num_threads(1)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, load {load:.1f}, "
          f"torch {torch.__version__}, 1 thread")
    repeats = 5 if args.quick else 15
    bench_overhead(repeats, nfe=20)
    bench_vs_diffusers(repeats, nfe=20)


if __name__ == "__main__":
    main()
