"""Find experiments and reproductions: import every module of the ``experiments`` and
``paper_reproductions`` packages (each registers itself on import)."""

from __future__ import annotations

import importlib
import pkgutil

_DISCOVERED = False
PACKAGES = ("experiments", "paper_reproductions")


def discover() -> None:
    """Import all experiment and reproduction modules once. An import error is raised with the module name."""
    global _DISCOVERED
    if _DISCOVERED:
        return
    for package_name in PACKAGES:
        package = importlib.import_module(package_name)
        for info in pkgutil.walk_packages(package.__path__, prefix=f"{package_name}."):
            try:
                importlib.import_module(info.name)
            except ImportError as err:
                raise ImportError(f"could not import {info.name}: {err}") from err
    _DISCOVERED = True
