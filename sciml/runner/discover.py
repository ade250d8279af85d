"""Find experiments and reproductions: import every module of the ``experiments`` and
``paper_reproductions`` packages (each registers itself on import).

A module that fails to import is isolated: it is recorded in :data:`BROKEN` with its error (``sciml list``
shows it), and every other experiment and reproduction keeps working.
"""

from __future__ import annotations

import importlib
import pkgutil
import traceback

_DISCOVERED = False
PACKAGES = ("experiments", "paper_reproductions")
BROKEN: dict[str, str] = {}   # module name -> one-line error


def discover() -> None:
    """Import all experiment and reproduction modules once; broken ones go to ``BROKEN``."""
    global _DISCOVERED
    if _DISCOVERED:
        return
    for package_name in PACKAGES:
        BROKEN.update(import_package(package_name))
    _DISCOVERED = True


def import_package(package_name: str) -> dict[str, str]:
    """Import every module below ``package_name``; return ``{module: one-line error}`` for those that fail."""
    broken: dict[str, str] = {}
    package = importlib.import_module(package_name)
    for info in pkgutil.walk_packages(package.__path__, prefix=f"{package_name}.",
                                      onerror=lambda name: broken.setdefault(name, "package import failed")):
        try:
            importlib.import_module(info.name)
        except Exception as err:  # noqa: BLE001 - any error in a user's file must not break the others
            frame = traceback.extract_tb(err.__traceback__)[-1] if err.__traceback__ else None
            where = f" ({frame.filename}:{frame.lineno})" if frame else ""
            broken[info.name] = f"{type(err).__name__}: {err}{where}"
    return broken


def broken_hint() -> str:
    """A sentence naming the broken modules, for "unknown name" errors (the name may live in one of them)."""
    if not BROKEN:
        return ""
    return "; these modules failed to import: " + "; ".join(f"{k} ({v})" for k, v in sorted(BROKEN.items()))
