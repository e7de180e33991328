"""The Python snippets of README.md and docs/ run as written (from the repository root), and a snippet followed by
a ```text block prints exactly that block: the outputs shown in the docs are real."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SNIPPET = re.compile(r"```python\n(.*?)```(?:\n\n```text\n(.*?)```)?", re.DOTALL)
# Snippets that need something this suite does not provide (a third-party plugin package) are marked so.
SKIP_MARK = "# not run:"

snippets = [
    pytest.param(match.group(1), match.group(2), id=f"{page.name}:{n}")
    for page in PAGES
    for n, match in enumerate(SNIPPET.finditer(page.read_text()))
    if SKIP_MARK not in match.group(1)
]


@pytest.mark.parametrize(("code", "output"), snippets)
def test_snippet_runs(code: str, output: str | None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(code, "<snippet>", "exec"), {})
    if output is not None:
        assert printed.getvalue() == output
