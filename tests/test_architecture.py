"""The dependency rule: core <- linalg <- curvature <- domains; domains never import each other; heavy libs
stay lazy. ``sciml.curvature`` is a shared layer (operators of torch models) that domains may build on."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "sciml"
BASE = {"core", "linalg", "curvature"}
SUPPORT = {"testing", "runner", "cli", "__init__"}
# What each top-level part may import from sciml.
ALLOWED = {"core": {"core"}, "linalg": {"core", "linalg"}, "curvature": {"core", "linalg", "curvature"},
           "runner": {"core", "runner"},
           "testing": {"core", "linalg", "testing"}, "cli": {"runner", "core"}, "__init__": set()}


def _sciml_imports(path: Path) -> set[str]:
    """Second component of every ``sciml.X`` import in a file (``from sciml.linalg import ...`` -> linalg)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        for name in names:
            parts = name.split(".")
            if parts[0] == "sciml" and len(parts) > 1:
                found.add(parts[1])
    return found


def test_domains_import_only_the_shared_layers():
    violations = []
    for path in PACKAGE.rglob("*.py"):
        part = path.relative_to(PACKAGE).parts[0].removesuffix(".py")
        allowed = ALLOWED.get(part, BASE | {part})
        bad = _sciml_imports(path) - allowed
        if bad:
            violations.append(f"{path.relative_to(PACKAGE.parent)} imports sciml.{sorted(bad)}")
    assert not violations, "forbidden imports:\n" + "\n".join(violations)


def test_import_sciml_leaves_heavy_libraries_unloaded():
    domains = [p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()
               and p.name not in BASE | SUPPORT]
    shared = [p for p in ("curvature",) if (PACKAGE / p / "__init__.py").exists()]
    domains += shared
    code = ("import sys, importlib, sciml, sciml.core, sciml.linalg\n"
            f"for d in {domains!r}: importlib.import_module('sciml.' + d)\n"
            "heavy = [m for m in ('qiskit', 'qiskit_aer', 'gpytorch', 'linear_operator', 'matplotlib') "
            "if m in sys.modules]\n"
            "print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"importing sciml loaded: {out.stdout.strip()}"
