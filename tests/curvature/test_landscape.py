"""Loss landscapes: exact on a quadratic, filter normalisation invariant under BatchNorm rescaling (spec B.5)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from sciml.core import Status
from sciml.curvature import (HessianOperator, hutchinson_trace, largest_log_gap, loss_landscape, normalize_direction,
                             plot_curvature_history, plot_landscape, plot_sorted_spectrum, plot_spectral_density,
                             spectral_density)

from .conftest import make_mlp


def test_line_on_a_quadratic_matches_taylor_expansion(digits, gen):
    """Linear regression + MSE is exactly quadratic: L(theta + a d) = L + a g.d + a^2/2 d^T H d."""
    X, _ = digits
    target = X[:, :3] * 2 - 1
    model = make_mlp(None, out=3)
    loss = nn.MSELoss()
    d = torch.randn(model[0].weight.numel() + 3, generator=gen, dtype=torch.float64)
    land = loss_landscape(model, loss, (X, target), directions=d, normalization="none", steps=7, span=(-2.0, 2.0))
    H = HessianOperator(model, loss, (X, target))
    theta = torch.cat([p.detach().reshape(-1) for p in model.parameters()]).requires_grad_(True)
    W, b = theta[:-3].reshape(3, 64), theta[-3:]
    g = torch.autograd.grad(loss(X @ W.T + b, target), theta)[0]
    a = land.coordinates[0]
    expected = land.center_loss + a * float(g @ d) + 0.5 * a ** 2 * float(d @ (H @ d))
    assert land.status is Status.CONVERGED and land.losses.shape == (7,)
    assert torch.allclose(land.losses, expected, rtol=1e-10, atol=0)


def conv_bn_net(scale: float) -> nn.Module:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 8, 3), nn.BatchNorm2d(8, eps=1e-12), nn.ReLU(), nn.Flatten(),
                        nn.Linear(8 * 36, 10)).double()
    with torch.no_grad():
        net[0].weight *= scale
        net[0].bias *= scale
    return net


def test_filter_normalisation_is_invariant_to_batchnorm_rescaling(digits):
    """Spec B.5: conv weight and bias times 10 leave a BN net's function unchanged; filter-normalised planes
    (same seed) agree to 1e-8, un-normalised ones do not."""
    X, y = digits
    images = X.reshape(-1, 1, 8, 8)
    planes = {}
    for norm in ("filter", "none"):
        for c in (1.0, 10.0):
            planes[norm, c] = loss_landscape(conv_bn_net(c), nn.CrossEntropyLoss(), (images, y), 2, norm, steps=5,
                                             generator=torch.Generator().manual_seed(3), mode="train").losses
    assert float((planes["filter", 1.0] - planes["filter", 10.0]).abs().max()) <= 1e-8
    assert float((planes["none", 1.0] - planes["none", 10.0]).abs().max()) >= 1e-2


def test_normalize_direction_modes(gen):
    theta = [torch.randn(4, 3, generator=gen, dtype=torch.float64), torch.randn(4, generator=gen, dtype=torch.float64)]
    d = [torch.randn(4, 3, generator=gen, dtype=torch.float64), torch.randn(4, generator=gen, dtype=torch.float64)]
    f = normalize_direction(d, theta, "filter")
    assert torch.allclose(f[0].norm(dim=1), theta[0].norm(dim=1), rtol=1e-8)
    assert torch.allclose(f[1].norm(), theta[1].norm(), rtol=1e-8)
    assert float(normalize_direction(d, theta, "filter", one_dim="zero")[1].abs().max()) == 0.0
    lay = normalize_direction(d, theta, "layer")
    assert torch.allclose(lay[0].norm(), theta[0].norm(), rtol=1e-8)
    glob = normalize_direction(d, theta, "model")
    total = torch.sqrt(sum((t ** 2).sum() for t in glob))
    assert torch.allclose(total, torch.sqrt(sum((t ** 2).sum() for t in theta)), rtol=1e-8)
    assert torch.equal(normalize_direction(d, theta, "weight")[0], d[0] * theta[0])
    with pytest.raises(ValueError, match="normalization"):
        normalize_direction(d, theta, "unit")


def test_hessian_axes_and_bad_directions(digits, tanh_mlp, gen):
    land = loss_landscape(tanh_mlp, nn.CrossEntropyLoss(), digits, "hessian", "none", steps=3, generator=gen)
    assert land.losses.shape == (3, 3) and land.directions.shape[1] == 2
    assert abs(float(land.losses[1, 1]) - land.center_loss) <= 1e-12
    with pytest.raises(ValueError, match="directions"):
        loss_landscape(tanh_mlp, nn.CrossEntropyLoss(), digits, 3)
    with pytest.raises(ValueError, match="steps"):
        loss_landscape(tanh_mlp, nn.CrossEntropyLoss(), digits, 1, steps=1)


def test_largest_log_gap_counts_outliers():
    lam = torch.tensor([10.0, 8.0, 6.0, 0.1, 0.09, 0.05, -0.01], dtype=torch.float64)
    assert largest_log_gap(lam) == 3


def test_plots_draw(tmp_path, dense_hessian, gen):
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    density = spectral_density(dense_hessian, 30, 2, gen, num_bins=500)
    figs = [plot_spectral_density(density), plot_sorted_spectrum(torch.linalg.eigvalsh(dense_hessian)),
            plot_curvature_history([0, 1, 2], {"lambda_max": [1.0, 2.0, 1.5]}, thresholds={"2/lr": 4.0})]
    X = torch.randn(20, 64, generator=gen, dtype=torch.float64)
    y = torch.randint(0, 10, (20,), generator=gen)
    model = make_mlp(4)
    figs.append(plot_landscape(loss_landscape(model, nn.CrossEntropyLoss(), (X, y), 2, steps=4, generator=gen)))
    figs.append(plot_landscape(loss_landscape(model, nn.CrossEntropyLoss(), (X, y), 1, steps=4, generator=gen)))
    figs[-1].savefig(tmp_path / "landscape.png")  # one full render; the others are checked for drawn data
    assert (tmp_path / "landscape.png").stat().st_size > 0
    for fig in figs:
        assert fig.axes and fig.axes[0].has_data()
        plt.close(fig)
    assert hutchinson_trace(dense_hessian, 2, gen).num_probes == 2
