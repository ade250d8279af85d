"""scikit-learn's bundled 8x8 digits (offline), split 1400 train / 397 test by a fixed permutation: the small real
data set that the curvature, compression and optimizer experiments share (specs B.6, B.9, B.10, optim 1.5)."""

from __future__ import annotations

import numpy as np
import torch


def digits_split(seed: int = 0, dtype: torch.dtype = torch.float32, images: bool = False):
    """((x_train, y_train), (x_test, y_test)); pixels / 16; x is (n, 64), or (n, 1, 8, 8) with ``images``."""
    from sklearn.datasets import load_digits

    d = load_digits()
    perm = np.random.default_rng(seed).permutation(len(d.target))
    x = torch.tensor((d.images if images else d.data)[perm] / 16.0, dtype=dtype)
    if images:
        x = x.unsqueeze(1)
    y = torch.tensor(d.target[perm])
    return (x[:1400], y[:1400]), (x[1400:], y[1400:])


def fit_adam(model: torch.nn.Module, train_data, epochs: int, lr: float, batch_size: int,
             generator: torch.Generator) -> torch.nn.Module:
    """Minibatch Adam on the mean cross-entropy, reshuffled each epoch from ``generator``; returns ``model``."""
    x, y = train_data
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    for _ in range(epochs):
        for idx in torch.randperm(len(y), generator=generator).split(batch_size):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x[idx]), y[idx]).backward()
            opt.step()
    return model
