"""Every sciml sampler against its diffusers scheduler, and the LML scheduler's overhead over its base sampler.

    python benchmarks/bench_diffusion.py [--quick] [--device cpu|cuda] [--samplers NAME ...] [--no-lml]

(1) Solver arithmetic: each sampler (DDIM, DPM-Solver++ 2M, DPM-Solver 3, SDE-DPM-Solver++, UniPC, PNDM (PLMS and
with its Runge-Kutta warm-up), Euler, Heun, flow-matching Euler) against its diffusers scheduler with diffusers'
default grid, on a near-zero-cost model (``0.1 x``), image-sized float32 tensors (64 x 3 x 32 x 32), 20 steps: the
per-step cost of the scheduler itself. Ratio = diffusers / ours (> 1: ours faster).
(2) End to end with a small UNet (diffusers ``UNet2DModel``, 2 levels of 32/64 channels, no attention,
8 x 3 x 32 x 32), 10 steps.
(3) LML overhead: ``LMLScheduler`` (released configuration, fp32 operator) over the same scheduler with
``lm=False``, over diffusers' ``DPMSolverMultistepScheduler`` (noise form, order 3, ends at t = 0), and sciml
``sample`` with ``LMCorrection`` over ``sample`` without it; solver-only and with the UNet. Target <= 1.1x with
a model.

Timings are medians of interleaved repeats in one process; the machine is shared, so read only the ratios.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
import warnings

import torch

from sciml.diffusion import FlowSchedule, LMCorrection, LMLScheduler, VPSchedule, sample
from sciml.diffusion.solvers import SAMPLER_REGISTRY


def _median_times(fns: dict, repeats: int, sync) -> dict[str, float]:
    times = {k: [] for k in fns}
    for _ in range(repeats):
        for name, fn in fns.items():                  # interleaved, so load changes hit every variant alike
            sync()
            start = time.perf_counter()
            fn()
            sync()
            times[name].append(time.perf_counter() - start)
    return {k: statistics.median(v) for k, v in times.items()}


def _diffusers_loop(scheduler, model, x_init, steps, generator=None):
    scheduler.set_timesteps(steps, device=x_init.device)
    x = x_init * getattr(scheduler, "init_noise_sigma", 1.0)        # flow matching has neither attribute
    scale = getattr(scheduler, "scale_model_input", lambda x, t: x)
    kwargs = {"generator": generator} if generator is not None else {}
    for t in scheduler.timesteps:
        x = scheduler.step(model(scale(x, t), t), t, x, **kwargs).prev_sample
    return x


def _pairs(diffusers):
    """sciml sampler name, its kwargs, and the diffusers scheduler with the matching (default) configuration."""
    D = diffusers
    return {
        "ddim": ({}, lambda: D.DDIMScheduler(clip_sample=False)),
        "dpm_solver++": ({"order": 2}, lambda: D.DPMSolverMultistepScheduler()),
        "dpm_solver": ({"order": 3}, lambda: D.DPMSolverMultistepScheduler(algorithm_type="dpmsolver", solver_order=3,
                                                                          final_sigmas_type="sigma_min")),
        "sde_dpm_solver++": ({"order": 2}, lambda: D.DPMSolverMultistepScheduler(algorithm_type="sde-dpmsolver++")),
        "unipc": ({"order": 2}, lambda: D.UniPCMultistepScheduler()),
        "pndm": ({}, lambda: D.PNDMScheduler(skip_prk_steps=True)),
        "pndm_prk": ({}, lambda: D.PNDMScheduler()),
        "euler": ({}, lambda: D.EulerDiscreteScheduler()),
        "heun": ({}, lambda: D.HeunDiscreteScheduler()),
    }


def _ours(name, kwargs, model, schedule, x_init, steps, generator=None, correction=None):
    cls = SAMPLER_REGISTRY[name]
    if name == "flow_euler":
        return sample(model, schedule, x_init.shape, name, nfe=steps, x_init=x_init, spacing="diffusers",
                      prediction="velocity").samples
    nfe = cls.evals(steps, cls.diffusers_end == "clean", {})
    return sample(model, schedule, x_init.shape, name, nfe=nfe, x_init=x_init, spacing="diffusers", end="diffusers",
                  start="diffusers", generator=generator, correction=correction, **kwargs).samples


def small_unet(device):
    import diffusers

    torch.manual_seed(0)
    unet = diffusers.UNet2DModel(sample_size=32, in_channels=3, out_channels=3, block_out_channels=(32, 64),
                                 layers_per_block=1, norm_num_groups=8,
                                 down_block_types=("DownBlock2D", "DownBlock2D"),
                                 up_block_types=("UpBlock2D", "UpBlock2D")).eval().to(device)
    return lambda x, t: unet(x, t).sample


def bench_samplers(diffusers, device, repeats, sync, only=None) -> None:
    zero = lambda x, t: 0.1 * x
    unet = small_unet(device)
    print("\n(1) solver arithmetic, 64x3x32x32 float32, 20 steps, model = 0.1 x   |   (2) small UNet, 8x3x32x32, "
          "10 steps")
    pairs = _pairs(diffusers) | {"flow_euler": ({}, lambda: diffusers.FlowMatchEulerDiscreteScheduler())}
    for name, (kwargs, make) in pairs.items():
        if only and name not in only:
            continue
        row = []
        for model, shape, steps in ((zero, (64, 3, 32, 32), 20), (unet, (8, 3, 32, 32), 10)):
            sched = make()
            if name == "flow_euler":       # the model sees t in [0, 1] in ours, 1000 t in diffusers'
                schedule = FlowSchedule(t_start=1.0, t_end=0.0)
                ours_model, ref_model = (lambda x, t, m=model: m(x, 1000 * t)), model
            else:
                schedule = VPSchedule.discrete(sched.alphas_cumprod)
                ours_model = ref_model = model
            x_init = torch.randn(shape, generator=torch.Generator().manual_seed(1)).to(device)
            gen = (lambda: torch.Generator(device).manual_seed(2)) if "sde" in name else (lambda: None)
            fns = {"diffusers": lambda: _diffusers_loop(sched, ref_model, x_init, steps, gen()),
                   "ours": lambda: _ours(name, kwargs, ours_model, schedule, x_init, steps, gen())}
            with torch.no_grad():
                t = _median_times(fns, repeats, sync)
                diff = float((fns["diffusers"]() - fns["ours"]()).abs().max())
            row.append(f"diffusers {t['diffusers'] * 1e3:7.1f} ms ours {t['ours'] * 1e3:7.1f} ms "
                       f"ratio {t['diffusers'] / t['ours']:4.2f}x (|diff| {diff:.0e})")
        print(f"  {name:17s} {row[0]}  |  {row[1]}")


def bench_lml_overhead(diffusers, device, repeats, sync) -> None:
    zero = lambda x, t: 0.1 * x
    unet = small_unet(device)
    print("\n(3) LML overhead (released config: DPM-Solver-3 noise form, lambda 8e-4, kappa 0, fp32 operator)")
    for label, model, shape, steps in (("solver-only 64x3x32x32, 20 steps", zero, (64, 3, 32, 32), 20),
                                       ("small UNet 8x3x32x32, 10 steps", unet, (8, 3, 32, 32), 10)):
        x_init = torch.randn(shape, generator=torch.Generator().manual_seed(1)).to(device)
        lml, base = LMLScheduler(lamb=8e-4), LMLScheduler(lm=False)
        ref = diffusers.DPMSolverMultistepScheduler(algorithm_type="dpmsolver", solver_order=3,
                                                    final_sigmas_type="sigma_min")
        schedule = VPSchedule.discrete(ref.alphas_cumprod)
        kw = {"order": 3, "spacing": "linspace", "end": "zero", "x_init": x_init}
        corr = LMCorrection(lam=8e-4, compute_dtype="input")
        fns = {"lml": lambda: _diffusers_loop(lml, model, x_init, steps),
               "lml_off": lambda: _diffusers_loop(base, model, x_init, steps),
               "diffusers_dpm3": lambda: _diffusers_loop(ref, model, x_init, steps),
               "sample+lm": lambda: sample(model, schedule, shape, "dpm_solver", nfe=steps, correction=corr, **kw),
               "sample": lambda: sample(model, schedule, shape, "dpm_solver", nfe=steps, **kw)}
        with torch.no_grad():
            t = _median_times(fns, repeats, sync)
        print(f"  {label}: LMLScheduler / lm=False {t['lml'] / t['lml_off']:.3f}x, LMLScheduler / diffusers DPM-3 "
              f"{t['lml'] / t['diffusers_dpm3']:.3f}x, sample+LM / sample {t['sample+lm'] / t['sample']:.3f}x "
              f"(LMLScheduler {t['lml'] * 1e3:.1f} ms)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--samplers", nargs="*", help="only these samplers in (1)/(2) (default: all)")
    parser.add_argument("--no-lml", action="store_true", help="skip (3), the LML overhead")
    args = parser.parse_args()
    try:
        import diffusers
    except ImportError:
        print("diffusers is not installed (pip install diffusers): nothing to compare against")
        return
    warnings.filterwarnings("ignore")
    device = torch.device(args.device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    if device.type == "cpu":
        torch.set_num_threads(1)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    name = torch.cuda.get_device_name(0) if device.type == "cuda" else (platform.processor() or platform.machine())
    print(f"device: {name}, {os.cpu_count()} cores, load {load:.1f}, torch {torch.__version__}, "
          f"diffusers {diffusers.__version__}")
    repeats = 3 if args.quick else 9
    bench_samplers(diffusers, device, repeats, sync, args.samplers)
    if not args.no_lml:
        bench_lml_overhead(diffusers, device, repeats, sync)


if __name__ == "__main__":
    main()
