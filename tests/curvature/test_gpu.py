"""The operators and estimators follow the data's device (run only where CUDA exists: pytest -m gpu)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from sciml.curvature import GGNOperator, HessianOperator, hutchinson_trace, spectral_density, top_eigenvalues

from .conftest import make_mlp


@pytest.mark.gpu
def test_operators_on_cuda_match_cpu(digits):
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    X, y = digits
    model = make_mlp(8)
    cpu = {cls: cls(model, nn.CrossEntropyLoss(), (X, y)) for cls in (HessianOperator, GGNOperator)}
    gpu_model = make_mlp(8).cuda()
    V = torch.randn(cpu[HessianOperator].shape[0], 3, dtype=torch.float64)
    for cls, op in cpu.items():
        g = cls(gpu_model, nn.CrossEntropyLoss(), (X.cuda(), y.cuda()))
        assert g.device.type == "cuda"
        assert float((g @ V.cuda()).cpu().sub(op @ V).norm() / (op @ V).norm()) <= 1e-10
    gen = torch.Generator(device="cuda").manual_seed(0)
    Hg = HessianOperator(gpu_model, nn.CrossEntropyLoss(), (X.cuda(), y.cuda()))
    exact = torch.linalg.eigvalsh(cpu[HessianOperator].to_dense())
    assert torch.allclose(top_eigenvalues(Hg, 2, gen).eigenvalues.cpu(), exact[-2:].flip(0), rtol=1e-6)
    assert hutchinson_trace(Hg, 10, gen).status.label == "converged"
    assert spectral_density(Hg, 20, 2, gen).grid.device.type == "cuda"
    with pytest.raises(ValueError, match="generator"):
        hutchinson_trace(Hg, 10, torch.Generator())
