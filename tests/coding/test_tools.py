"""The coding tools on a real `local` sandbox: each tool, its refusals, and what reaches the model."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from wegent_core import SandboxGone, SandboxSpec, TaskState, Tool, ToolContext, ToolError
from wegent_runtimes.coding import Workbench, coding_tools
from wegent_runtimes.coding._tools import truncate
from wegent_runtimes.sandboxes._local import LocalProvider, LocalSandbox

from .conftest import call, coding_yaml, finish, tool_outputs

pytestmark = pytest.mark.anyio
CONTEXT = ToolContext(task_id=1, member="default/coder", call_id="c1", idempotency_key="k1")


@pytest.fixture
async def sandbox(tmp_path: Path) -> AsyncIterator[LocalSandbox]:
    root = tmp_path / "ws"
    (root / "repo" / "src" / "pkg").mkdir(parents=True)
    (root / "repo" / ".git").mkdir()
    (root / "repo" / ".git" / "config").write_text("needle in git\n")
    (root / "repo" / "a.py").write_text("x = 1\ny = 2\nx = 1\n")
    (root / "repo" / "src" / "pkg" / "b.py").write_text("def needle():\n    return 'Needle'\n")
    (root / "repo" / "src" / "notes.md").write_text("a needle here\n")
    (root / "outside.txt").write_text("beside the repository\n")
    box = await LocalProvider({}).create(SandboxSpec(workspace=str(root)))
    yield box
    await box.close()


@pytest.fixture
def tools(sandbox: LocalSandbox) -> dict[str, Tool]:
    return {t.spec.name: t for t in coding_tools(Workbench(sandbox, "repo"))}


async def use(tools: dict[str, Tool], name: str, **arguments: Any) -> str:
    return await tools[name].call(arguments, CONTEXT)


async def test_read_file_numbers_lines_and_takes_a_range(tools: dict[str, Tool]) -> None:
    assert (
        await use(tools, "read_file", path="a.py")
        == "a.py (lines 1-3 of 3):\n     1\tx = 1\n     2\ty = 2\n     3\tx = 1"
    )
    assert await use(tools, "read_file", path="a.py", start_line=2, end_line=2) == (
        "a.py (lines 2-2 of 3):\n     2\ty = 2\n[lines 3-3 not shown]"
    )
    with pytest.raises(ToolError, match="has 3 lines; start_line 9 is past the end"):
        await use(tools, "read_file", path="a.py", start_line=9)
    with pytest.raises(ToolError, match="cannot read"):
        await use(tools, "read_file", path="missing.py")


async def test_paths_outside_the_workspace_are_refused(tools: dict[str, Tool], tmp_path: Path) -> None:
    for path in ("../../x", "/etc/passwd", "/workspace/../etc/passwd", str(tmp_path / "ws" / "repo" / "a.py")):
        with pytest.raises(ToolError, match="outside the workspace"):
            await use(tools, "read_file", path=path)
    with pytest.raises(ToolError, match="outside the workspace"):
        await use(tools, "write_file", path="../../escape.txt", content="no")
    with pytest.raises(ToolError, match="outside the workspace"):
        await use(tools, "run_command", command="pwd", cwd="/tmp")
    assert not (tmp_path / "escape.txt").exists()
    # inside the workspace but outside the repository is allowed, by a relative or a /workspace path
    assert "beside the repository" in await use(tools, "read_file", path="../outside.txt")
    assert "beside the repository" in await use(tools, "read_file", path="/workspace/outside.txt")


async def test_a_symbolic_link_out_of_the_workspace_is_refused(tools: dict[str, Tool], tmp_path: Path) -> None:
    (tmp_path / "secret").write_text("host secret")
    (tmp_path / "ws" / "repo" / "link").symlink_to(tmp_path / "secret")
    with pytest.raises(ToolError, match="outside the workspace"):
        await use(tools, "read_file", path="link")


async def test_write_file_creates_parents(tools: dict[str, Tool], tmp_path: Path) -> None:
    assert await use(tools, "write_file", path="new/dir/c.txt", content="héllo\n") == "wrote 7 bytes to new/dir/c.txt"
    assert (tmp_path / "ws" / "repo" / "new" / "dir" / "c.txt").read_text() == "héllo\n"


async def test_edit_file_replaces_one_exact_match(tools: dict[str, Tool], tmp_path: Path) -> None:
    assert await use(tools, "edit_file", path="a.py", old_string="y = 2", new_string="y = 3") == (
        "replaced 1 occurrence(s) in a.py"
    )
    assert (tmp_path / "ws" / "repo" / "a.py").read_text() == "x = 1\ny = 3\nx = 1\n"


async def test_edit_file_refuses_an_ambiguous_or_missing_match(tools: dict[str, Tool], tmp_path: Path) -> None:
    with pytest.raises(ToolError, match=r"occurs 2 times in a\.py; include more surrounding lines"):
        await use(tools, "edit_file", path="a.py", old_string="x = 1", new_string="x = 9")
    with pytest.raises(ToolError, match=r"old_string was not found in a\.py"):
        await use(tools, "edit_file", path="a.py", old_string="z = 1", new_string="z = 2")
    with pytest.raises(ToolError, match="old_string is empty"):
        await use(tools, "edit_file", path="a.py", old_string="", new_string="z")
    assert (tmp_path / "ws" / "repo" / "a.py").read_text() == "x = 1\ny = 2\nx = 1\n"  # untouched
    await use(tools, "edit_file", path="a.py", old_string="x = 1", new_string="x = 9", replace_all=True)
    assert (tmp_path / "ws" / "repo" / "a.py").read_text() == "x = 9\ny = 2\nx = 9\n"


async def test_list_files_matches_globs_and_leaves_git_out(tools: dict[str, Tool]) -> None:
    assert (await use(tools, "list_files")).splitlines() == ["a.py", "src/notes.md", "src/pkg/b.py"]
    assert (await use(tools, "list_files", pattern="*.py")).splitlines() == ["a.py", "src/pkg/b.py"]
    assert (await use(tools, "list_files", pattern="src/*.md")).splitlines() == ["src/notes.md"]
    assert (await use(tools, "list_files", pattern="*.py", path="src")).splitlines() == ["src/pkg/b.py"]
    assert (await use(tools, "list_files", pattern="*.txt", path="..")).splitlines() == ["/workspace/outside.txt"]
    assert await use(tools, "list_files", pattern="*.rs") == "no files match '*.rs' under ."


async def test_search_files_finds_a_regex_with_lines(tools: dict[str, Tool]) -> None:
    found = (await use(tools, "search_files", pattern="needle|Needle")).splitlines()
    assert found == [
        "src/notes.md:1:a needle here",
        "src/pkg/b.py:1:def needle():",
        "src/pkg/b.py:2:    return 'Needle'",
    ]
    assert (await use(tools, "search_files", pattern="^def ne+dle", glob="*.py")).splitlines() == [
        "src/pkg/b.py:1:def needle():"
    ]
    assert len((await use(tools, "search_files", pattern="NEEDLE", ignore_case=True)).splitlines()) == 3
    assert await use(tools, "search_files", pattern="haystack") == "no matches for 'haystack' under ."
    with pytest.raises(ToolError, match="search failed"):
        await use(tools, "search_files", pattern="(unclosed")


async def test_run_command_reports_exit_code_output_and_timeout(tools: dict[str, Tool]) -> None:
    out = await use(tools, "run_command", command="echo out; echo err >&2; exit 3")
    assert out == "exit code: 3\n--- stdout ---\nout\n\n--- stderr ---\nerr"
    assert (await use(tools, "run_command", command="pwd", cwd="src")).split("\n")[2].endswith("/ws/repo/src")
    slow = await use(tools, "run_command", command="sleep 5", timeout=0.3)
    assert slow.startswith("timed out after 1 s (killed)")  # timeouts under a second are raised to one
    big = await use(tools, "run_command", command="python3 -c \"print('x' * 50000)\"")
    assert len(big) < 17_000
    assert "characters cut" in big


def test_truncate_keeps_the_head_and_the_tail() -> None:
    text = "H" * 100 + "M" * 1000 + "T" * 100
    cut = truncate(text, 400)
    assert cut.startswith("H" * 100)
    assert cut.endswith("T" * 100)
    assert "[... 800 characters cut ...]" in cut


class _Gone:
    """A sandbox whose container was removed from outside."""

    id = "gone"
    spec = SandboxSpec()

    async def read_file(self, path: str, **_: Any) -> bytes:
        raise SandboxGone("container gone-1 was removed")

    async def exec(self, *args: Any, **kwargs: Any) -> Any:
        raise SandboxGone("container gone-1 was removed")


async def test_a_sandbox_that_is_gone_is_not_a_tool_error() -> None:
    told: list[SandboxGone] = []
    tools = {t.spec.name: t for t in coding_tools(Workbench(_Gone(), ".", told.append))}  # type: ignore[arg-type]
    with pytest.raises(SandboxGone):
        await use(tools, "read_file", path="a.py")
    with pytest.raises(SandboxGone):
        await use(tools, "run_command", command="true")
    assert len(told) == 2


async def test_tool_errors_reach_the_model_and_the_turn_goes_on(coding, origin: Path) -> None:
    replies = [
        call("edit_file", path="notes.txt", old_string="TODO", new_string="DONE"),
        call("read_file", path="../../../etc/passwd"),
        call("search_files", pattern="TODO: t"),
        "done",
    ]
    _, model, task = await coding(coding_yaml(origin), replies)
    record, events = await finish(task)
    assert record.status is TaskState.COMPLETED, record.error_message
    outputs = tool_outputs(events)
    assert outputs[0][2]
    assert "occurs 2 times in notes.txt" in outputs[0][1]
    assert outputs[1][2]
    assert "outside the workspace" in outputs[1][1]
    assert outputs[2] == ("search_files", "notes.txt:2:TODO: two", False)
    assert model.requests[1].messages[-1].content.startswith("error: old_string occurs 2 times")


async def test_a_sandbox_gone_during_a_turn_fails_the_task(
    coding, origin: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def gone(self: LocalSandbox, path: str, **_: Any) -> bytes:
        raise SandboxGone(f"sandbox {self.id} was removed from outside")

    monkeypatch.setattr(LocalSandbox, "read_file", gone)
    _, model, task = await coding(coding_yaml(origin), [call("read_file", path="app.py"), "never"])
    record, _ = await finish(task)
    assert record.status is TaskState.FAILED
    assert "was removed from outside" in (record.error_message or "")
    assert len(model.requests) == 1  # the model was not asked again
