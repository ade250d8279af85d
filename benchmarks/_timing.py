"""A shared benchmark timer (``from _timing import median_time``: the scripts run from this folder). Median of
``repeat`` timings of ``inner`` calls each, per call, after one warm-up call; CUDA work is synchronised around
each timing so that asynchronous kernels are counted. Scripts that want other defaults wrap it."""

from __future__ import annotations

import statistics
import time
from typing import Callable

import torch


def _sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def median_time(fn: Callable[[], object], repeat: int = 7, inner: int = 1, warmup: bool = True) -> float:
    """Seconds per call of ``fn``: the median over ``repeat`` runs of ``inner`` back-to-back calls."""
    if warmup:
        fn()
    times = []
    for _ in range(repeat):
        _sync()
        start = time.perf_counter()
        for _ in range(inner):
            fn()
        _sync()
        times.append((time.perf_counter() - start) / inner)
    return statistics.median(times)
