"""Shared fixtures: a freshly seeded generator per test, and the devices to test on (cuda when present)."""

from __future__ import annotations

import pytest
import torch

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture
def gen() -> torch.Generator:
    return torch.Generator().manual_seed(20261128)


@pytest.fixture(params=DEVICES)
def device(request) -> torch.device:
    return torch.device(request.param)


@pytest.fixture(params=[torch.float64, torch.float32], ids=["f64", "f32"])
def dtype(request) -> torch.dtype:
    return request.param


@pytest.fixture(autouse=True)
def _one_thread():
    """One torch thread per test: the tests use small tensors, and on a shared 2-core box two OpenMP threads
    spin-wait on each other (small LAPACK calls measured 10-1000x slower)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
