"""Readers for the benchmark formats: DIMACS graphs (MIS), SAC-94 / Drake et al. (MDKP), QAPLIB (QAP)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import torch


def data_dir() -> Path:
    """``<repo>/data/quantum`` (checked-in instances, see its README for provenance)."""
    path = Path(__file__).resolve().parents[2] / "data" / "quantum"
    if not path.is_dir():
        raise FileNotFoundError(f"benchmark data folder {path} is missing; it ships with the repository "
                                "(data/quantum/ with README.md)")
    return path


def instance_path(name: str) -> Path:
    """Path of a checked-in instance such as ``"mis_1tc.16.txt"``, with a clear error if absent."""
    path = data_dir() / name
    if not path.is_file():
        available = sorted(p.name for p in data_dir().iterdir() if p.name != "README.md")
        raise FileNotFoundError(f"instance {name!r} not found in {data_dir()}; available: {available}")
    return path


@dataclasses.dataclass(frozen=True, eq=False)
class GraphInstance:
    n_nodes: int
    edges: torch.Tensor   # (E, 2) int64, 0-based


@dataclasses.dataclass(frozen=True, eq=False)
class MDKPInstance:
    profits: torch.Tensor
    weights: torch.Tensor
    capacities: torch.Tensor
    optimum: float


@dataclasses.dataclass(frozen=True, eq=False)
class QAPInstance:
    flow: torch.Tensor       # QAPLIB's first matrix (A)
    distance: torch.Tensor   # second matrix (B)


def read_dimacs(path: str | Path) -> GraphInstance:
    """DIMACS ``p edge n m`` / ``e u v`` (1-based) -> 0-based edges."""
    n, edges = None, []
    for line in Path(path).read_text().splitlines():
        parts = line.split()
        if not parts or parts[0] == "c":
            continue
        if parts[0] == "p":
            n = int(parts[2])
        elif parts[0] == "e":
            edges.append((int(parts[1]) - 1, int(parts[2]) - 1))
    if n is None:
        raise ValueError(f"{path}: no 'p edge n m' line")
    e = torch.tensor(edges, dtype=torch.int64).reshape(-1, 2)
    if len(e) and (e.min() < 0 or e.max() >= n):
        raise ValueError(f"{path}: an edge refers to a vertex outside 1..{n}")
    return GraphInstance(n, e)


def _numbers(path: str | Path) -> np.ndarray:
    return np.array(Path(path).read_text().split(), dtype=np.float64)


def read_mdkp(path: str | Path) -> MDKPInstance:
    """Drake et al. format: n, m, optimum; n profits; m x n weights (row by row); m capacities."""
    v = _numbers(path)
    n, m = int(v[0]), int(v[1])
    expected = 3 + n + m * n + m
    if v.size != expected:
        raise ValueError(f"{path}: expected {expected} numbers for n = {n}, m = {m}, found {v.size}")
    p = v[3:3 + n]
    W = v[3 + n:3 + n + m * n].reshape(m, n)
    C = v[3 + n + m * n:]
    return MDKPInstance(torch.from_numpy(p), torch.from_numpy(W), torch.from_numpy(C.copy()), float(v[2]))


def read_qaplib(path: str | Path) -> QAPInstance:
    """QAPLIB: n, then A (n x n), then B (n x n)."""
    v = _numbers(path)
    n = int(v[0])
    if v.size != 1 + 2 * n * n:
        raise ValueError(f"{path}: expected {1 + 2 * n * n} numbers for n = {n}, found {v.size}")
    A = v[1:1 + n * n].reshape(n, n)
    B = v[1 + n * n:].reshape(n, n)
    return QAPInstance(torch.from_numpy(A.copy()), torch.from_numpy(B.copy()))
