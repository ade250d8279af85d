"""Entropic curvature (spec §5, a reconstruction) against closed forms: E1 Gaussian-blob scale flow, E4 de Bruijn /
Fisher identity, E5 Zel'dovich pancake, log-quadratic densities, CD(K, N) identity, random-field moments."""

from __future__ import annotations

import math

import pytest
import torch

from sciml.ot.entropic_curvature import entropic_curvature, gaussian_smooth, spectral_moment, wavenumbers


def centred_grid(n: int, L: float, d: int = 2):
    x = torch.arange(n, dtype=torch.float64) * L / n - L / 2
    return torch.meshgrid(*([x] * d), indexing="ij")


@pytest.mark.parametrize("R, expected", [(0.0, 0.980392), (0.5, 0.780488), (1.0, 0.480769), (2.0, 0.181818)])
def test_e1_floored_gaussian_blob_scale_flow(R, expected):
    """rho = 1 + 50 exp(-r^2/2) (2-D, 256^2, L = 40): K(R) = A/((1 + R^2)(1 + A)), A = 50/(1 + R^2) at the centre."""
    X, Y = centred_grid(256, 40.0)
    rho = 1 + 50 * torch.exp(-(X ** 2 + Y ** 2) / 2)
    result = entropic_curvature(rho, 40.0, R=R)
    A = 50 / (1 + R * R)
    closed = A / ((1 + R * R) * (1 + A))
    K = result.tensor[128, 128]  # spectral derivatives: 6+ digits (spec §5.4)
    assert float(K[0, 0]) == pytest.approx(closed, rel=1e-6) and round(float(K[0, 0]), 6) == expected
    assert float(K[1, 1]) == pytest.approx(closed, rel=1e-6) and abs(float(K[0, 1])) <= 1e-10
    assert int(result.n_plus[128, 128]) == 2 and float(result.k_eff[128, 128]) == pytest.approx(closed, rel=1e-6)


@pytest.mark.parametrize("b", [0.2, 0.5, 0.8])
def test_e5_zeldovich_pancake_curvature_at_the_caustic_centre(b):
    """x = q - b sin(kq)/k, rho = 1/(1 - b cos kq), k = 2 pi: K(x = 0) = b k^2 / (1 - b)^3."""
    k, n = 2 * math.pi, 4096
    x = torch.arange(n, dtype=torch.float64) / n
    q = x.clone()
    for _ in range(60):  # Newton on q - b sin(kq)/k = x (monotone for b < 1)
        q = q - (q - b * torch.sin(k * q) / k - x) / (1 - b * torch.cos(k * q))
    rho = 1 / (1 - b * torch.cos(k * q))
    result = entropic_curvature(rho, 1.0)
    assert float(result.tensor[0, 0, 0]) == pytest.approx(b * k * k / (1 - b) ** 3, rel=1e-7)


def lognormal_field(n: int, L: float, sigma: float, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    white = torch.randn(n, n, generator=gen, dtype=torch.float64)
    smooth = gaussian_smooth(white, L, 0.05 * L)
    return torch.exp(sigma * smooth / smooth.std())


def test_e4_mass_weighted_mean_curvature_is_fisher_information_and_volume_mean_is_zero():
    L = 1.0
    rho = lognormal_field(128, L, 0.3, seed=0)
    result = entropic_curvature(rho, L)
    # Fisher information int |grad rho|^2 / rho, with grad rho by an independent route (FFT of rho itself)
    ks = wavenumbers((128, 128), (L, L), torch.float64, "cpu")
    grads = [torch.fft.irfftn(1j * k * torch.fft.rfftn(rho), s=(128, 128)) for k in ks]
    fisher = float((sum(g ** 2 for g in grads) / rho).sum())
    assert float((rho * result.trace).sum()) == pytest.approx(fisher, rel=1e-4)
    assert abs(float(result.trace.mean())) <= 1e-12 * float(result.trace.abs().mean())


def test_estimators_on_a_log_quadratic_density_non_periodic():
    """rho = exp(-r^2 / 2 s^2): K_inf = I/s^2 exactly; local_measure keeps I/s^2 for every R (average of a
    constant), smooth_then_log gives I/(s^2 + R^2) (Gaussian convolution)."""
    n, L, s = 201, 20.0, 2.0
    x = torch.linspace(-L / 2, L / 2, n, dtype=torch.float64)
    X, Y = torch.meshgrid(x, x, indexing="ij")
    rho = torch.exp(-(X ** 2 + Y ** 2) / (2 * s * s))
    c = n // 2
    local = entropic_curvature(rho, L, R=1.0, estimator="local_measure", periodic=False)
    assert torch.allclose(local.tensor[c - 30:c + 30, c - 30:c + 30],
                          torch.eye(2, dtype=torch.float64) / s ** 2, atol=1e-10)
    smooth = entropic_curvature(rho, L, R=1.0, estimator="smooth_then_log", periodic=False)
    # limited by the kernel cut at 6 R (tail weight exp(-18))
    assert torch.allclose(smooth.tensor[c - 30:c + 30, c - 30:c + 30],
                          torch.eye(2, dtype=torch.float64) / (s * s + 1.0), rtol=0, atol=1e-8)


def test_cd_k_n_identity_and_limit():
    """K_N = -(N - d) Hess(rho^{1/(N-d)}) / rho^{1/(N-d)} (spec §5.2) and K_N <= K_inf, -> K_inf as N grows."""
    L = 1.0
    rho = lognormal_field(64, L, 0.3, seed=1)
    N, d = 5.0, 2
    KN = entropic_curvature(rho, L, N=N).tensor
    power = rho ** (1 / (N - d))
    ks = wavenumbers((64, 64), (L, L), torch.float64, "cpu")
    F = torch.fft.rfftn(power)
    odd = [k.clone() for k in ks]
    odd[0].view(-1)[32] = 0.0
    odd[1].view(-1)[-1] = 0.0
    H = torch.empty(64, 64, 2, 2, dtype=torch.float64)
    for a in range(2):
        for b in range(2):
            mult = -(ks[a] ** 2) if a == b else -odd[a] * odd[b]
            H[..., a, b] = torch.fft.irfftn(mult * F, s=(64, 64))
    reference = -(N - d) * H / power[..., None, None]
    assert torch.allclose(KN, reference, atol=1e-6 * float(reference.abs().max()))
    Kinf = entropic_curvature(rho, L)
    assert bool((entropic_curvature(rho, L, N=N).k_eff <= Kinf.k_eff + 1e-12).all())
    assert torch.allclose(entropic_curvature(rho, L, N=1e9).tensor, Kinf.tensor, atol=1e-6)


def test_linear_regime_hessian_moments_match_sigma_2():
    """3-D Gaussian field (32^3, P ~ k^-1.5, R = 2 cells): Var(tr K) = sigma_2^2, Var(K_11) = sigma_2^2/5,
    Cov(K_11, K_22) = sigma_2^2/15 for K = -Hess delta_R, the exact discrete expectations over the k-grid."""
    n, L, R = 32, 32.0, 2.0
    power = lambda k: k ** -1.5  # noqa: E731
    sigma2 = spectral_moment(power, L, (n, n, n), R, 2)
    # exact discrete expectation of Var(Hess_xx delta): (1/V) sum k_x^4 P W^2 (no sampling noise)
    ks = [2 * math.pi * torch.fft.fftfreq(n, d=L / n, dtype=torch.float64) for _ in range(3)]
    KX, KY, KZ = torch.meshgrid(*ks, indexing="ij")
    k = torch.sqrt(KX ** 2 + KY ** 2 + KZ ** 2)
    weight = torch.where(k > 0, power(k.clamp(min=1e-30)) * torch.exp(-(k * R) ** 2), torch.zeros_like(k)) / L ** 3
    var_xx = float((KX ** 4 * weight).sum())
    cov_xy = float((KX ** 2 * KY ** 2 * weight).sum())
    # the cubic grid is isotropic only up to discreteness: 5% as in spec §5.5.6
    assert var_xx == pytest.approx(sigma2 / 5, rel=0.05)
    assert cov_xy == pytest.approx(sigma2 / 15, rel=0.05)
    assert float((k ** 4 * weight).sum()) == pytest.approx(sigma2, rel=1e-12)


def test_floor_and_bad_input():
    rho = torch.ones(16, 16, dtype=torch.float64)
    rho[3, 4] = 0.0
    with pytest.raises(ValueError, match="non-positive"):
        entropic_curvature(rho, 1.0)
    result = entropic_curvature(rho, 1.0, floor=1e-3)
    assert result.floored_fraction == pytest.approx(1 / 256) and bool(torch.isfinite(result.tensor).all())
    good = torch.ones(8, 8, dtype=torch.float64)
    for kwargs, message in (({"box_size": 0.0}, "box_size"), ({"box_size": -1.0}, "box_size"),
                            ({"box_size": 1.0, "N": 2.0}, "N must"), ({"box_size": 1.0, "N": 1.5}, "N must"),
                            ({"box_size": 1.0, "R": -1.0}, "R "), ({"box_size": 1.0, "estimator": "x"}, "estimator"),
                            ({"box_size": 1.0, "floor": 0.0}, "floor")):
        with pytest.raises(ValueError, match=message):
            entropic_curvature(good, **kwargs)
    with pytest.raises(ValueError, match="NaN"):
        entropic_curvature(torch.full((8, 8), math.nan, dtype=torch.float64), 1.0)
    with pytest.raises(ValueError, match="grid"):
        entropic_curvature(torch.ones(4, 4, 4, 4, dtype=torch.float64), 1.0)


def test_dtype_and_device_follow_the_input(device):
    X, Y = centred_grid(64, 40.0)
    rho = 1 + 50 * torch.exp(-(X ** 2 + Y ** 2) / 2)
    result = entropic_curvature(rho.to(device=device, dtype=torch.float32), 40.0, R=1.0)
    assert result.tensor.dtype == torch.float32 and result.tensor.device.type == device.type
    reference = entropic_curvature(rho, 40.0, R=1.0).tensor  # float64 on the same grid
    assert torch.allclose(result.tensor.cpu().double(), reference, atol=1e-4 * float(reference.abs().max()))


def test_periodic_and_fd_tensors_equal_numpy_references_on_a_random_field():
    # Independent references: numpy's full complex FFT (periodic, smoothed) and np.gradient (non-periodic). The
    # spectral one caught float32 wavenumbers (4e-8 relative error in K) before they were computed in float64.
    import numpy as np

    n, L, R = 12, 12.0, 1.5
    rng = np.random.default_rng(0)
    k = 2 * np.pi * np.fft.fftfreq(n, d=L / n)
    axes = [k.reshape(-1, 1, 1), k.reshape(1, -1, 1), k.reshape(1, 1, -1)]
    k_odd = np.where(np.arange(n) == n // 2, 0.0, k)
    odd = [k_odd.reshape(-1, 1, 1), k_odd.reshape(1, -1, 1), k_odd.reshape(1, 1, -1)]
    k2 = sum(a ** 2 for a in axes)
    rho = np.exp(np.fft.ifftn(np.fft.fftn(rng.standard_normal((n, n, n))) * np.exp(-k2)).real * 3)
    u_hat = np.fft.fftn(np.log(np.fft.ifftn(np.fft.fftn(rho) * np.exp(-0.5 * R * R * k2)).real))
    K_spec = np.empty((n, n, n, 3, 3))
    for a in range(3):
        for b in range(3):
            mult = axes[a] ** 2 if a == b else odd[a] * odd[b]
            K_spec[..., a, b] = np.fft.ifftn(mult * u_hat).real
    ours = entropic_curvature(torch.from_numpy(rho), L, R=R).tensor.numpy()
    assert np.abs(ours - K_spec).max() < 1e-12 * np.abs(K_spec).max()

    h = L / (n - 1)
    grad = np.gradient(np.log(rho), h, edge_order=2)
    K_fd = -np.stack([np.stack(np.gradient(g, h, edge_order=2), -1) for g in grad], -2)
    K_fd = 0.5 * (K_fd + np.swapaxes(K_fd, -1, -2))
    ours = entropic_curvature(torch.from_numpy(rho), L, periodic=False).tensor.numpy()
    assert np.abs(ours - K_fd).max() < 1e-12 * np.abs(K_fd).max()
