"""M-FAC inverse products through sciml.curvature (spec B.9): float64 dense references, d = 300, m = 32."""

from __future__ import annotations

import torch

from sciml.curvature import MFACInverseFisher


def dense_fisher(G: torch.Tensor, damping: float) -> torch.Tensor:
    return damping * torch.eye(G.shape[1], dtype=G.dtype) + G.T @ G / G.shape[0]


def rel(a, b) -> float:
    return float((a - b).norm() / b.norm())


def test_static_inverse_products_and_diagonal(gen):
    G = torch.randn(32, 300, generator=gen, dtype=torch.float64)
    F = dense_fisher(G, 1e-2)
    inverse = torch.linalg.inv(F)
    op = MFACInverseFisher(G, 1e-2)
    X = torch.randn(300, 4, generator=gen, dtype=torch.float64)
    assert rel(op.ihvp(X), inverse @ X) <= 1e-12
    assert rel(op.inverse_diagonal(), torch.diagonal(inverse)) <= 1e-12
    assert rel(op @ X, F @ X) <= 1e-14  # the operator itself is the damped Fisher


def test_ring_buffer_after_2m_insertions_equals_fresh_build_on_last_m(gen):
    stream = torch.randn(64, 300, generator=gen, dtype=torch.float64)
    window = MFACInverseFisher(stream[:32], 1e-2)
    for g in stream[32:]:
        window.update(g)
    v = torch.randn(300, generator=gen, dtype=torch.float64)
    assert rel(window.ihvp(v), MFACInverseFisher(stream[32:], 1e-2).ihvp(v)) <= 1e-12
    assert rel(window.ihvp(v), torch.linalg.solve(dense_fisher(stream[32:], 1e-2), v)) <= 1e-12
