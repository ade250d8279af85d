"""Device and dtype policy.

Library code follows its inputs' device and dtype (``like``); only the runner resolves a device name.
"""

from __future__ import annotations

import re

import torch

DTYPES = {"float32": torch.float32, "float64": torch.float64, "bfloat16": torch.bfloat16,
          "float16": torch.float16, "complex64": torch.complex64, "complex128": torch.complex128}


def resolve_device(name: str | torch.device = "auto") -> torch.device:
    """Map "auto" | "cpu" | "cuda" | "cuda:N" to a torch.device ("auto" = cuda when available)."""
    if isinstance(name, torch.device):
        return name
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if not isinstance(name, str) or not re.fullmatch(r"cuda(:\d+)?", name):
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda[:N]', got {name!r}")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ValueError(f"device {name!r} was asked for but CUDA is not available; use 'cpu' or 'auto'")
        return torch.device(name)
    raise ValueError(f"device must be 'auto', 'cpu' or 'cuda[:N]', got {name!r}")


def resolve_dtype(name: str | torch.dtype) -> torch.dtype:
    """Map a dtype name ("float64", ...) to a torch.dtype."""
    if isinstance(name, torch.dtype):
        return name
    if name not in DTYPES:
        raise ValueError(f"unknown dtype {name!r}; allowed: {sorted(DTYPES)}")
    return DTYPES[name]


def like(x: torch.Tensor, dtype: torch.dtype | None = None) -> dict:
    """Keyword arguments that create a tensor on ``x``'s device with ``x``'s (or the given) dtype."""
    return {"dtype": dtype or x.dtype, "device": x.device}


def real_dtype(dtype: torch.dtype) -> torch.dtype:
    """The real dtype matching a (possibly complex) dtype."""
    return {torch.complex64: torch.float32, torch.complex128: torch.float64}.get(dtype, dtype)


def check_floating(x: torch.Tensor, name: str, *, finite: bool = True) -> None:
    """Raise ValueError unless ``x`` is a floating or complex tensor (with finite entries when ``finite``).

    ``finite=False`` skips the finiteness test, whose ``bool(...)`` is a host sync on a GPU: hot paths (a layer's
    forward) check the type only and leave NaN detection to an opt-in check.
    """
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not (x.is_floating_point() or x.is_complex()):
        raise ValueError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
    if finite and not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name} contains NaN or Inf entries")
