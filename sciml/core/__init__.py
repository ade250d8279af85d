"""sciml.core: device/dtype policy, randomness, results, configs, registries, warnings.

Knows no domain and imports only torch and numpy.
"""

from sciml.core.config import Config, check_subset
from sciml.core.device import check_floating, like, real_dtype, resolve_device, resolve_dtype
from sciml.core.registry import Registry, close_matches
from sciml.core.result import Result, Status, report_status, to_jsonable
from sciml.core.rng import check_generator, make_generator, spawn
from sciml.core.warnings import ConvergenceWarning, NumericalWarning

__all__ = [
    "Config", "ConvergenceWarning", "check_subset", "NumericalWarning", "Registry", "Result", "Status", "check_floating",
    "check_generator", "close_matches", "like", "make_generator", "real_dtype", "report_status",
    "resolve_device", "resolve_dtype", "spawn", "to_jsonable",
]
