"""sciml.core: configs, registry, results, device policy, generators."""

from __future__ import annotations

import dataclasses
import json
import warnings
from typing import Literal

import pytest
import torch

from sciml.core import (Config, ConvergenceWarning, Registry, Result, Status, make_generator, report_status,
                        resolve_device, resolve_dtype, spawn)


@dataclasses.dataclass(frozen=True)
class ToyConfig(Config):
    n: int = 8
    lr: float = 1e-3
    name: str = "a"
    flag: bool = False
    sizes: tuple[int, ...] = (1, 2)
    mode: Literal["fast", "exact"] = "fast"
    limit: float | None = None

    def validate(self) -> None:
        if self.n < 1:
            raise ValueError(f"n must be >= 1, got {self.n}")


def test_config_override_coerces_types():
    cfg = ToyConfig().override(["n=64", "lr=0.5", "flag=true", "sizes=3,4,5", "mode=exact", "limit=none"])
    assert (cfg.n, cfg.lr, cfg.flag, cfg.sizes, cfg.mode, cfg.limit) == (64, 0.5, True, (3, 4, 5), "exact", None)
    assert ToyConfig().override(["limit=2.5"]).limit == 2.5


def test_config_errors_name_the_problem():
    with pytest.raises(ValueError, match="unknown config key 'lrr'.*did you mean 'lr'"):
        ToyConfig().override(["lrr=1"])
    with pytest.raises(ValueError, match="must be an int"):
        ToyConfig().override(["n=abc"])
    with pytest.raises(ValueError, match="n must be >= 1"):
        ToyConfig().override(["n=0"])
    with pytest.raises(ValueError, match="one of"):
        ToyConfig().override(["mode=slow"])
    with pytest.raises(ValueError, match="key=value"):
        ToyConfig().override(["n"])
    with pytest.raises(dataclasses.FrozenInstanceError):
        ToyConfig().n = 3  # type: ignore[misc]


def test_registry_hints_and_duplicates():
    reg: Registry[int] = Registry("widget")
    reg.register("kronecker-scaling", 1)
    with pytest.raises(ValueError, match="registered twice"):
        reg.register("kronecker-scaling", 2)
    with pytest.raises(KeyError, match="did you mean 'kronecker-scaling'"):
        reg.get("kronecker-scalng")
    assert reg.names() == ["kronecker-scaling"] and "kronecker-scaling" in reg


def test_result_json_and_status():
    @dataclasses.dataclass(frozen=True)
    class R(Result):
        x: torch.Tensor
        big: torch.Tensor
        status: Status

    r = R(torch.arange(3.0), torch.zeros(20_000), Status.MAX_ITER)
    data = json.loads(json.dumps(r.to_json()))
    assert data["x"] == [0.0, 1.0, 2.0] and data["big"]["shape"] == [20_000] and data["status"] == "max_iter"
    with pytest.warns(ConvergenceWarning, match="iteration budget"):
        report_status(Status.MAX_ITER, "toy", "3 steps")
    with pytest.raises(RuntimeError, match="toy"):
        report_status(Status.NONFINITE, "toy", on_failure="raise")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        report_status(Status.CONVERGED, "toy")
    for status, hint in ((Status.STALLED, "not a solution"), (Status.INFEASIBLE, "certificate"),
                         (Status.UNBOUNDED, "unbounded")):
        with pytest.warns(ConvergenceWarning, match=hint):
            report_status(status, "toy")
    assert len({s.label for s in Status}) == len(Status)  # labels are what result.json stores: keep them unique


def test_device_and_dtype_resolution():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_dtype("float64") is torch.float64
    with pytest.raises(ValueError, match="device must be"):
        resolve_device("tpu")
    with pytest.raises(ValueError, match="unknown dtype"):
        resolve_dtype("float128")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            resolve_device("cuda")


def test_generators_are_reproducible_and_independent():
    a, b = make_generator(5), make_generator(5)
    assert torch.equal(torch.randn(4, generator=a), torch.randn(4, generator=b))
    kids = spawn(make_generator(1), 2)
    assert not torch.equal(torch.randn(4, generator=kids[0]), torch.randn(4, generator=kids[1]))
    with pytest.raises(ValueError, match="seed"):
        make_generator(-1)


def test_check_subset():
    from sciml.core import check_subset

    check_subset("variants", ("a",), ("a", "b"))
    with pytest.raises(ValueError, match="non-empty subset"):
        check_subset("variants", ("c",), ("a", "b"))
    with pytest.raises(ValueError, match="non-empty subset"):
        check_subset("variants", (), ("a", "b"))


def test_check_floating_can_skip_the_finiteness_sync():
    import pytest

    from sciml.core import check_floating

    bad = torch.tensor([1.0, float("nan")])
    with pytest.raises(ValueError, match="NaN"):
        check_floating(bad, "x")
    check_floating(bad, "x", finite=False)                      # type checked only
    with pytest.raises(ValueError, match="floating-point"):
        check_floating(torch.tensor([1, 2]), "x", finite=False)
