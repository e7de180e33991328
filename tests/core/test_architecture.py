"""The dependency rule of the design: wegent_core needs only pydantic, pluggy, anyio and PyYAML, and the other
packages reach each other only through wegent_core's plugins."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = {"wegent", "wegent_core", "wegent_runtimes", "wegent_storage", "wegent_server"}

# The four, and what they themselves need.
ALLOWED = {
    "pydantic",
    "pydantic-core",
    "pluggy",
    "anyio",
    "pyyaml",
    "typing-extensions",
    "annotated-types",
    "typing-inspection",
    "idna",
    "sniffio",
}


def imported_after(statement: str) -> set[str]:
    code = (
        "import sys; before = set(sys.modules); "
        f"{statement}; "
        "import json; print(json.dumps(sorted({m.split('.')[0] for m in set(sys.modules) - before})))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return set(json.loads(out))


def test_wegent_core_imports_only_its_four_dependencies() -> None:
    modules = imported_after("import wegent_core")
    owners = packages_distributions()
    distributions = {d.lower().replace("_", "-") for m in modules for d in owners.get(m, ())} - {"wegent"}
    assert distributions <= ALLOWED, distributions - ALLOWED
    assert not {m for m in modules if m.startswith("wegent_") and m != "wegent_core"}


def test_the_facade_is_wegent_core() -> None:
    import wegent
    import wegent_core

    assert wegent.__all__ == wegent_core.__all__
    assert all(getattr(wegent, name) is getattr(wegent_core, name) for name in wegent_core.__all__)


def wegent_imports(package: str) -> dict[str, set[str]]:
    """The other wegent packages each module of `package` imports, read from the source (so lazy imports count)."""
    found = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        tree = ast.parse(path.read_text())
        names = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
        names |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and not node.level}
        others = {name.split(".")[0] for name in names} & PACKAGES - {package}
        if others:
            found[str(path.relative_to(ROOT))] = others
    return found


def test_packages_reach_each_other_only_through_core() -> None:
    """server, runtimes and storage import wegent_core and nothing else of wegent: the rest only through plugins."""
    for package in ("wegent_server", "wegent_runtimes", "wegent_storage"):
        offending = {path: others - {"wegent_core"} for path, others in wegent_imports(package).items()}
        assert not {path: others for path, others in offending.items() if others}, package
