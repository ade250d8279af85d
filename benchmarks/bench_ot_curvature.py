"""Entropic-curvature benchmark (issue 20 performance item): ``entropic_curvature`` on a 64^3 field against a
straightforward NumPy reference, ratio in one process, median of repeats, equal results checked.

Field: a log-normal density ``rho = exp(delta)`` with ``delta`` a Gaussian random field (white noise smoothed at
3 cells, unit variance), float64, box L = 64. Two settings, each timed end to end (log, derivatives, curvature
tensor, eigenvalues, n_plus):

1. non-periodic, R = 0: ``np.gradient`` (second-order edges) of ``log rho``, again for the Hessian, symmetrised;
2. periodic, R = 2: NumPy FFT smoothing (``exp(-k^2 R^2 / 2)``) then ``i k`` / ``-k_a k_b`` spectral Hessian of
   ``log(rho * G_R)`` (the ``smooth_then_log`` estimator).

Both references compute eigenvalues with ``np.linalg.eigvalsh``. The max abs difference of the tensors (relative to
their max) and the share of cells whose ``n_plus`` differs are printed beside the speed-up.

Run: ``OMP_NUM_THREADS=1 python benchmarks/bench_ot_curvature.py [--n 64] [--repeats 3]`` (state the machine and
the load average with the numbers).
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(__file__))
from _timing import median_time  # noqa: E402

from sciml.ot.entropic_curvature import entropic_curvature  # noqa: E402


def lognormal_field(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    k = 2 * np.pi * np.fft.fftfreq(n)
    k2 = k[:, None, None] ** 2 + k[None, :, None] ** 2 + k[None, None, :] ** 2
    delta = np.fft.ifftn(np.fft.fftn(rng.standard_normal((n, n, n))) * np.exp(-0.5 * 9.0 * k2)).real
    return np.exp(delta / delta.std())


def reference_fd(rho: np.ndarray, L: float) -> tuple[np.ndarray, np.ndarray]:
    """-Hess log rho by central differences on samples spanning [0, L]; (tensor, eigenvalues)."""
    h = L / (rho.shape[0] - 1)
    grad = np.gradient(np.log(rho), h, edge_order=2)
    K = np.empty(rho.shape + (3, 3))
    for a in range(3):
        second = np.gradient(grad[a], h, edge_order=2)
        for b in range(3):
            K[..., a, b] = -second[b]
    K = 0.5 * (K + np.swapaxes(K, -1, -2))
    return K, np.linalg.eigvalsh(K)


def reference_spectral(rho: np.ndarray, L: float, R: float) -> tuple[np.ndarray, np.ndarray]:
    """-Hess log(rho * G_R) on a periodic box with full complex FFTs (odd-order Nyquist modes zeroed)."""
    n = rho.shape[0]
    k = 2 * np.pi * np.fft.fftfreq(n, d=L / n)
    k_odd = k.copy()
    k_odd[n // 2] = 0.0 if n % 2 == 0 else k_odd[n // 2]
    axes = [k.reshape(-1, 1, 1), k.reshape(1, -1, 1), k.reshape(1, 1, -1)]
    odd = [k_odd.reshape(-1, 1, 1), k_odd.reshape(1, -1, 1), k_odd.reshape(1, 1, -1)]
    window = np.exp(-0.5 * R * R * sum(a ** 2 for a in axes))
    u_hat = np.fft.fftn(np.log(np.fft.ifftn(np.fft.fftn(rho) * window).real))
    K = np.empty(rho.shape + (3, 3))
    for a in range(3):
        K[..., a, a] = np.fft.ifftn(axes[a] ** 2 * u_hat).real
        for b in range(a + 1, 3):
            K[..., a, b] = K[..., b, a] = np.fft.ifftn(odd[a] * odd[b] * u_hat).real
    return K, np.linalg.eigvalsh(K)


def compare(name: str, ours_fn, ref_fn, repeats: int) -> dict[str, float]:
    ours, (K_ref, eig_ref) = ours_fn(), ref_fn()
    K = ours.tensor.numpy()
    rel = float(np.abs(K - K_ref).max() / np.abs(K_ref).max())
    n_plus_diff = float(np.mean(ours.n_plus.numpy() != (eig_ref > 0).sum(-1)))
    # Interleave the two timings so that the box's load affects both alike.
    ours_s, ref_s = [], []
    for _ in range(repeats):
        ours_s.append(median_time(ours_fn, repeat=1, warmup=False))
        ref_s.append(median_time(ref_fn, repeat=1, warmup=False))
    t_ours, t_ref = float(np.median(ours_s)), float(np.median(ref_s))
    print(f"{name}: ours {t_ours * 1e3:.0f} ms, numpy reference {t_ref * 1e3:.0f} ms, speed-up {t_ref / t_ours:.2f}x; "
          f"max |K - K_ref| / max |K_ref| = {rel:.1e}; n_plus differs on {n_plus_diff:.1e} of cells")
    return dict(ours_s=t_ours, ref_s=t_ref, speedup=t_ref / t_ours, rel_diff=rel, n_plus_diff=n_plus_diff)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    L = float(args.n)
    rho_np = lognormal_field(args.n)
    rho = torch.from_numpy(rho_np)
    print(f"entropic curvature, {args.n}^3 log-normal field, float64, median of {args.repeats} interleaved repeats, "
          f"load average {os.getloadavg()[0]:.1f}")
    compare("non-periodic FD, R = 0", lambda: entropic_curvature(rho, L, periodic=False),
            lambda: reference_fd(rho_np, L), args.repeats)
    compare("periodic spectral, R = 2", lambda: entropic_curvature(rho, L, R=2.0),
            lambda: reference_spectral(rho_np, L, 2.0), args.repeats)


if __name__ == "__main__":
    main()
