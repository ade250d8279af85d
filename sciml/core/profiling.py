"""Wall time and peak memory of a call, on CPU or CUDA (used by experiments and benchmarks)."""

from __future__ import annotations

import ctypes
import ctypes.util
import dataclasses
import os
import threading
import time
from typing import Any, Callable

import torch

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def _release_free_heap() -> None:
    """Return glibc's cached free memory to the OS, so that the next allocations show up in the RSS."""
    name = ctypes.util.find_library("c")
    if name:
        try:
            ctypes.CDLL(name).malloc_trim(0)
        except (OSError, AttributeError):  # not glibc: the RSS reading is just less sensitive
            pass


def _rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * _PAGE
    except OSError:  # not Linux: no cheap RSS reading, report 0
        return 0


@dataclasses.dataclass(frozen=True)
class Measurement:
    seconds: float          # best of the repeats
    peak_bytes: int         # peak extra memory during one call (CUDA: allocator peak; CPU: sampled RSS rise)
    value: Any = None       # what the call returned (last repeat)


def measure(fn: Callable[[], Any], *, repeat: int = 3, device: torch.device | str = "cpu") -> Measurement:
    """Time ``fn`` (best of ``repeat``) and its peak memory above the starting level.

    On CPU the peak is the rise of the process's resident set (after glibc's free heap is released), sampled
    every 0.5 ms on a thread: a good estimate for allocations of more than a few MB, blind to small
    short-lived ones.
    """
    device = torch.device(device)
    best, value, peak = float("inf"), None, 0
    for _ in range(max(1, repeat)):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
            torch.cuda.reset_peak_memory_stats(device)
            base = torch.cuda.memory_allocated(device)
            start = time.perf_counter()
            value = fn()
            torch.cuda.synchronize(device)
            best = min(best, time.perf_counter() - start)
            peak = max(peak, torch.cuda.max_memory_allocated(device) - base)
            continue
        _release_free_heap()
        base, samples, stop = _rss_bytes(), [0], threading.Event()

        def sample() -> None:
            while not stop.is_set():
                samples[0] = max(samples[0], _rss_bytes())
                time.sleep(0.0005)

        thread = threading.Thread(target=sample, daemon=True)
        thread.start()
        start = time.perf_counter()
        value = fn()
        best = min(best, time.perf_counter() - start)
        stop.set()
        thread.join()
        peak = max(peak, max(samples[0], _rss_bytes()) - base)
    return Measurement(best, peak, value)
