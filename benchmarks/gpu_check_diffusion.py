"""GPU check for sciml.diffusion (< 60 s on one H100; falls back to the CPU when CUDA is absent).

    python benchmarks/gpu_check_diffusion.py

Prints: agreement of the exact GMM eps/Hessian (float64) and of deterministic samplers (DDIM, DPM-Solver++ 3M,
Heun, LM code mode kappa 0.3) between the device and the CPU from the same initial noise; the kappa = 0 identity on
the device; the float32 rounding noise of the released LM formula on an image-sized tensor; the LM-Langevin
corrector's finiteness; and wall-time ratios device/CPU.
"""

from __future__ import annotations

import time

import torch

from sciml.diffusion import EpsMLP, LMCorrection, VPSchedule, gmm_16d_5mode, lm_operator, sample, sliced_w2


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _timed(fn, device):
    _sync(device)
    start = time.perf_counter()
    out = fn()
    _sync(device)
    return out, time.perf_counter() - start


def main() -> None:
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    cpu = torch.device("cpu")
    print(f"device: {dev} ({torch.cuda.get_device_name(0) if dev.type == 'cuda' else 'no CUDA'}), "
          f"torch {torch.__version__}")
    mix_cpu = gmm_16d_5mode(torch.Generator().manual_seed(0))
    mix_dev = mix_cpu.to(dev)
    sch = VPSchedule.continuous()

    # 1. exact quantities, float64
    x = torch.randn(2000, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(1)) * 3
    for name in ("eps", "hessian"):
        a = getattr(mix_cpu, name)(x, 0.3, sch)
        b = getattr(mix_dev, name)(x.to(dev), 0.3, sch).cpu()
        print(f"gmm16d {name:8s} float64 max rel diff device vs cpu: {float((a - b).abs().max() / a.abs().max()):.2e}")

    # 2. deterministic samplers from the same noise, float64
    n = 10000
    x_init = torch.randn(n, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    cases = {"ddim": {"sampler": "ddim"}, "dpm++3m": {"sampler": "dpm_solver++", "order": 3},
             "heun": {"sampler": "heun"}, "ddim+code k0.3": {"sampler": "ddim",
                                                              "correction": LMCorrection(lam=1.0, kappa=0.3)}}
    for name, kwargs in cases.items():
        out_c, t_c = _timed(lambda: sample(mix_cpu.eps_model(sch), sch, (n, 16), nfe=20, x_init=x_init,
                                           **kwargs).samples, cpu)
        out_d, t_d = _timed(lambda: sample(mix_dev.eps_model(sch), sch, (n, 16), nfe=20, x_init=x_init.to(dev),
                                           **kwargs).samples, dev)
        print(f"{name:15s} n={n} NFE 20 float64: max |dev - cpu| {float((out_d.cpu() - out_c).abs().max()):.2e}, "
              f"cpu {t_c:.2f}s, {dev.type} {t_d:.3f}s, speedup {t_c / t_d:.1f}x")

    # 3. kappa = 0 identity on the device and the fp32 rounding noise of the released formula
    d = torch.randn(64, 3, 32, 32, device=dev, generator=torch.Generator(dev).manual_seed(3))
    exact = lm_operator(d, d, 8e-4, 0.0)
    fp32 = lm_operator(d, d, 8e-4, 0.5, compute_dtype=None)      # v = d, computed in fp32 like the repo
    rel = ((fp32 - d).flatten(1).norm(dim=1) / d.flatten(1).norm(dim=1))
    print(f"LM kappa=0 float64 path identity: {bool(torch.equal(exact, d))}; fp32 repo formula relative noise "
          f"(|d|² ~ 3072, lambda 8e-4): median {float(rel.median()):.2e} (expected ~ u (lambda + |d|²)/lambda = "
          f"{6e-8 * 3072 / 8e-4:.1e})")

    # 4. LM-Langevin corrector and the MLP on the device (float32), against the CPU
    model = EpsMLP(64, generator=torch.Generator().manual_seed(0)).eval()
    ddpm = VPSchedule.ddpm_linear()
    xi = torch.randn(4096, 64, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        a, t_c = _timed(lambda: sample(model, ddpm, xi.shape, "dpm_solver++", nfe=20, x_init=xi).samples, cpu)
        model_d = model.to(dev)
        b, t_d = _timed(lambda: sample(model_d, ddpm, xi.shape, "dpm_solver++", nfe=20, x_init=xi.to(dev)).samples,
                        dev)
        lm = sample(model_d, ddpm, xi.shape, "ddim", nfe=20, x_init=xi.to(dev),
                    correction=LMCorrection("lm_langevin", lam=1.0), generator=torch.Generator(dev).manual_seed(5))
    print(f"MLP dpm++2m float32 4096x64: max |dev - cpu| {float((b.cpu() - a).abs().max()):.2e} (scale "
          f"{float(a.abs().max()):.1f}), cpu {t_c:.2f}s, {dev.type} {t_d:.3f}s; lm_langevin finite "
          f"{bool(torch.isfinite(lm.samples).all())}, nfe {lm.nfe}")
    ref = mix_dev.sample(n, torch.Generator(dev).manual_seed(6))
    out = sample(mix_dev.eps_model(sch), sch, (n, 16), "dpm_solver++", nfe=20, device=dev,
                 generator=torch.Generator(dev).manual_seed(7)).samples
    print(f"gmm16d dpm++2m NFE 20 on {dev.type}: SW2 to exact samples {float(sliced_w2(out, ref)):.3f}")

    # 5. new samplers and the diffusers-compatible LML scheduler on the device (float64 GMM, image-shaped fp32)
    for name, kwargs in (("unipc", {"order": 3}), ("pndm", {}), ("pndm_prk", {}), ("sde_dpm_solver++", {"order": 2})):
        gen = (lambda d: torch.Generator(d).manual_seed(8)) if name.startswith("sde") else (lambda d: None)
        out_c = sample(mix_cpu.eps_model(sch), sch, (n, 16), name, nfe=20, x_init=x_init, generator=gen(cpu),
                       **kwargs).samples
        out_d = sample(mix_dev.eps_model(sch), sch, (n, 16), name, nfe=20, x_init=x_init.to(dev), generator=gen(dev),
                       **kwargs).samples
        print(f"{name:15s} n={n} NFE 20 float64: max |dev - cpu| {float((out_d.cpu() - out_c).abs().max()):.2e}"
              + (" (different noise streams on the two devices)" if name.startswith("sde") else ""))
    from sciml.diffusion import LMLScheduler

    img = torch.randn(64, 3, 32, 32, generator=torch.Generator().manual_seed(9))
    results = {}
    for device in (cpu, dev):
        sched, x = LMLScheduler(lamb=1.0, kappa=0.3), img.to(device)
        sched.set_timesteps(10, device=device)
        for t in sched.timesteps:
            x = sched.step(0.1 * x, t, x).prev_sample
        results[device.type] = x.cpu()
    print(f"LMLScheduler kappa 0.3, 64x3x32x32 fp32: max |dev - cpu| "
          f"{float((results[dev.type] - results['cpu']).abs().max()):.2e} "
          f"(scale {float(results['cpu'].abs().max()):.2g})")

    # 6. the TinyUNet image model: a few DDPM training steps and DPM-Solver-3 sampling on the device, vs cpu
    from sciml.diffusion import TinyUNet, train_eps_model

    images = torch.rand(256, 1, 16, 16, generator=torch.Generator().manual_seed(10)) * 2 - 1
    start = time.perf_counter()
    net = TinyUNet(1, 12, generator=torch.Generator().manual_seed(11)).to(dev)
    trained = train_eps_model(net, images.to(dev), ddpm, steps=200, batch_size=64,
                              generator=torch.Generator(dev).manual_seed(12)).model
    _sync(dev)
    train_s = time.perf_counter() - start
    z = torch.randn(512, 1, 16, 16, generator=torch.Generator().manual_seed(13))
    with torch.no_grad():
        out_d, t_d = _timed(lambda: sample(trained, ddpm, z.shape, "dpm_solver", nfe=10, order=3, x_init=z.to(dev),
                                           dtype=torch.float32).samples, dev)
        out_c, t_c = _timed(lambda: sample(trained.cpu(), ddpm, z.shape, "dpm_solver", nfe=10, order=3, x_init=z,
                                           dtype=torch.float32).samples, cpu)
    print(f"TinyUNet: 200 training steps on {dev.type} {train_s:.1f}s; DPM-3 NFE 10, 512 images: {dev.type} "
          f"{t_d * 1e3:.0f} ms vs cpu {t_c * 1e3:.0f} ms, "
          f"max |dev - cpu| {float((out_d.cpu() - out_c).abs().max()):.1e}")


if __name__ == "__main__":
    main()
