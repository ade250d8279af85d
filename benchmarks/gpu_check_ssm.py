"""GPU check for sciml.ssm (< 60 s on one H100): ``python benchmarks/gpu_check_ssm.py``.

Runs on cuda when available (else cpu) and compares against the CPU result: PTD of HiPPO-LegS (shipped E,
eigendecomposition in complex128 on the device), S4D / S5 forward in float64 and float32, step mode vs convolution,
parallel scan vs FFT, and a 4-layer model forward+backward; prints agreement and timings.
"""

from __future__ import annotations

import time

import torch

from sciml.ssm import S4D, S5, SequenceModel, hippo_legs, ptd


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(fn, device, repeat=5):
    fn()
    sync(device)
    start = time.perf_counter()
    for _ in range(repeat):
        out = fn()
    sync(device)
    return out, (time.perf_counter() - start) / repeat


def rel(a, b):
    return float((a.detach().cpu().double() - b.detach().cpu().double()).norm() / b.detach().cpu().double().norm())


def main() -> None:
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    print(f"device: {device} ({torch.cuda.get_device_name() if device.type == 'cuda' else 'no cuda'}), "
          f"torch {torch.__version__}")
    A, _ = hippo_legs(64)
    r_cpu = ptd(A)
    r_dev = ptd(A.to(device))
    print(f"PTD N=64: kappa cpu {r_cpu.condition_number:.3f} / device {r_dev.condition_number:.3f}, "
          f"backward error device {r_dev.backward_error:.1e}, rel |lambda| diff "
          f"{rel(r_dev.eigenvalues.abs().sort().values, r_cpu.eigenvalues.abs().sort().values):.1e}")

    gen = torch.Generator().manual_seed(0)
    for dtype in (torch.float64, torch.float32):
        for cls, kw in ((S4D, dict(init="ptd")), (S4D, dict(init="legs", discretization="bilinear")),
                        (S5, dict(init="ptd", conj_sym=False, blocks=2))):
            layer = cls(64, 64, generator=torch.Generator().manual_seed(1), **kw).to(dtype)
            u = torch.randn(8, 4096, 64, generator=gen).to(dtype)
            y_cpu = layer(u)
            layer_d = layer.to(device)
            y_dev, t = timed(lambda: layer_d(u.to(device)), device)
            extra = ""
            if cls is S5:
                y_fft = layer_d(u.to(device), mode="fft")
                extra = f", scan vs fft {rel(y_dev, y_fft):.1e}"
            print(f"{cls.__name__}({kw}) {str(dtype)[6:]}: L=4096 rel diff device vs cpu {rel(y_dev, y_cpu):.1e}, "
                  f"{t * 1e3:.2f} ms/forward{extra}")
    layer = S4D(16, 32, init="ptd", generator=gen).double().to(device)
    u = torch.randn(2, 300, 16, dtype=torch.float64, generator=gen).to(device)
    state, ys = None, []
    for k in range(u.shape[1]):
        y, state = layer.step(u[:, k], state)
        ys.append(y)
    print(f"S4D step mode vs convolution (float64, L=300): rel diff {rel(torch.stack(ys, 1), layer(u)):.1e}")

    model = SequenceModel(1, 10, d_model=128, n_layers=4, d_state=64, init="ptd",
                          generator=torch.Generator().manual_seed(2)).to(device)
    x = torch.randn(32, 1024, 1, generator=gen).to(device)
    y = torch.randint(0, 10, (32,), generator=gen).to(device)

    def step():
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        return loss

    _, t = timed(step, device, repeat=3)
    print(f"4-layer S4-PTD model (B 32, L 1024, H 128) fwd+bwd: {t * 1e3:.1f} ms/step, {32 * 1024 / t:.0f} tokens/s")


if __name__ == "__main__":
    main()
