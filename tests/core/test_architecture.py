"""The dependency rule of the design: wegent_core needs only pydantic, pluggy, anyio and PyYAML."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.metadata import packages_distributions

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
