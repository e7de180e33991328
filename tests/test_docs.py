"""The Python snippets of README.md and docs/ run as written (from the repository root)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SNIPPET = re.compile(r"```python\n(.*?)```", re.DOTALL)
# Snippets that need something this suite does not provide (a third-party plugin package) are marked so.
SKIP_MARK = "# not run:"

snippets = [
    pytest.param(code, id=f"{page.name}:{n}")
    for page in PAGES
    for n, code in enumerate(SNIPPET.findall(page.read_text()))
    if SKIP_MARK not in code
]


@pytest.mark.parametrize("code", snippets)
def test_snippet_runs(code: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    exec(compile(code, "<snippet>", "exec"), {})
