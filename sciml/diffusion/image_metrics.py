"""FID and KID for small image data sets with a feature network trained here (no downloaded Inception weights).

FID (Heusel et al. 2017, arXiv 1706.08500) and KID (Bińkowski et al. 2018, arXiv 1801.01401) compare generated and
real images in the feature space of a classifier. The standard Inception-v3 features need a download and are meant
for 299 x 299 natural images; for the 16 x 16 digits we train a small CNN classifier on the real images and use
its penultimate layer (64 features). Numbers are therefore comparable only within this setting, never with the
paper's CIFAR-10 / ImageNet FIDs.

The FID uses exact symmetric square roots (:func:`sciml.diffusion.frechet_distance`, float64 ``eigh``); KID is the
unbiased polynomial-kernel MMD² averaged over random subsets (:func:`sciml.diffusion.kernel_inception_distance`).
"""

from __future__ import annotations

import dataclasses
import math

import torch
from torch import nn
from torch.nn import functional as F

from sciml.core import Result, Status, check_floating, check_generator, report_status
from sciml.diffusion.metrics import frechet_distance, kernel_inception_distance
from sciml.diffusion.networks import seeded_default_init


class FeatureCNN(nn.Module):
    """Classifier ``(B, C, H, W) -> (B, classes)`` (H, W divisible by 4): two conv + pool stages, a 64-unit hidden
    layer (the features) and a linear head."""

    def __init__(self, channels: int = 1, size: int = 16, classes: int = 10, features: int = 64,
                 generator: torch.Generator | None = None) -> None:
        super().__init__()
        if size % 4 or size < 4 or classes < 2 or features < 2:
            raise ValueError(f"need size divisible by 4, classes >= 2, features >= 2; got {size}, {classes}, "
                             f"{features}")
        self.conv1, self.conv2 = nn.Conv2d(channels, 16, 3, padding=1), nn.Conv2d(16, 32, 3, padding=1)
        self.hidden = nn.Linear(32 * (size // 4) ** 2, features)
        self.head = nn.Linear(features, classes)
        seeded_default_init(self, generator)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        h = F.max_pool2d(F.relu(self.conv1(x.float())), 2)
        h = F.max_pool2d(F.relu(self.conv2(h)), 2)
        return F.relu(self.hidden(h.flatten(1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


@dataclasses.dataclass(frozen=True)
class FeatureNetResult(Result):
    """The trained classifier, its accuracy on the held-out images, the loss curve and the status."""

    model: FeatureCNN
    holdout_accuracy: float
    losses: torch.Tensor
    status: Status


def train_feature_net(images: torch.Tensor, labels: torch.Tensor, steps: int = 600, batch_size: int = 128,
                      lr: float = 2e-3, holdout: float = 0.2,
                      generator: torch.Generator | None = None) -> FeatureNetResult:
    """Train :class:`FeatureCNN` with cross-entropy (Adam) on a random ``1 - holdout`` share of the images.

    Args:
        images: (N, C, H, W) real images; labels: (N,) integer classes.
        steps, batch_size, lr: Adam settings; holdout: share kept out for the reported accuracy.
        generator: the split, the initial weights and the batches.

    Returns:
        :class:`FeatureNetResult` (status NONFINITE with a warning if the loss became NaN).
    """
    check_floating(images, "images")
    if images.ndim != 4 or labels.shape != images.shape[:1]:
        raise ValueError(f"images must be (N, C, H, W) with labels (N,), got {tuple(images.shape)} and "
                         f"{tuple(labels.shape)}")
    if steps < 1 or batch_size < 1 or not lr > 0 or not 0 < holdout < 1:
        raise ValueError(f"need steps, batch_size >= 1, lr > 0, 0 < holdout < 1; got {steps}, {batch_size}, {lr}, "
                         f"{holdout}")
    check_generator(generator, images.device)
    labels = labels.long()
    perm = torch.randperm(images.shape[0], generator=generator, device=images.device)
    n_test = max(1, int(holdout * images.shape[0]))
    test, train = perm[:n_test], perm[n_test:]
    model = FeatureCNN(images.shape[1], images.shape[-1], int(labels.max()) + 1, generator=generator)
    model = model.to(images.device)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    losses = torch.empty(steps)
    status = Status.CONVERGED
    for step in range(steps):
        idx = train[torch.randint(0, train.numel(), (batch_size,), generator=generator, device=images.device)]
        loss = F.cross_entropy(model(images[idx]), labels[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses[step] = loss.detach()
        if not math.isfinite(float(losses[step])):
            status = Status.NONFINITE
            break
    report_status(status, "train_feature_net", f"step {step}")
    with torch.no_grad():
        accuracy = float((model(images[test]).argmax(1) == labels[test]).double().mean())
    return FeatureNetResult(model=model.eval(), holdout_accuracy=accuracy, losses=losses[: step + 1], status=status)


class FeatureScores:
    """FID and KID of generated images against a fixed reference set, in a classifier's feature space.

    Args:
        feature_net: a module with ``.features(images) -> (N, k)`` (e.g. a trained :class:`FeatureCNN`).
        reference: (M, C, H, W) real images (their features are computed once).
        batch_size: images per feature pass.
    """

    def __init__(self, feature_net: nn.Module, reference: torch.Tensor, batch_size: int = 1024) -> None:
        if not hasattr(feature_net, "features"):
            raise ValueError("feature_net must have a .features(images) method")
        self.net, self.batch_size = feature_net, batch_size
        self.reference = self.features(reference)
        # KID's kernel (x.y / k + 1)^3 assumes features of size ~1 (Inception pool features); ReLU features of a
        # small CNN can be ~10-100, which would make the cubic term dominate. KID therefore uses features divided
        # by the reference features' root-mean-square value (one scalar); FID uses the raw features.
        self.kid_scale = float(self.reference.pow(2).mean().sqrt()) or 1.0

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) -> (N, k) float64 features; non-finite images are an error, not a NaN score."""
        check_floating(images, "images")
        with torch.no_grad():
            parts = [self.net.features(chunk) for chunk in images.split(self.batch_size)]
        return torch.cat(parts).double()

    def fid(self, images: torch.Tensor) -> float:
        return float(frechet_distance(self.features(images), self.reference))

    def kid(self, images: torch.Tensor, subset_size: int = 1000, n_subsets: int = 50,
            generator: torch.Generator | None = None) -> tuple[float, float]:
        """KID (mean, std over subsets) in the RMS-normalised feature space (see ``kid_scale``)."""
        return kernel_inception_distance(self.features(images) / self.kid_scale, self.reference / self.kid_scale,
                                         subset_size, n_subsets, generator)
