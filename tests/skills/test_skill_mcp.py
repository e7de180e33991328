"""A skill's MCP servers are attached while the skill is loaded (upstream reference 2.8 names them).

The wiring is checked with a stand-in for `wegent_runtimes.mcp.mcp_tools` that records what it is asked for; the
last test runs a real server from the registry (`mcp-server-time`, installed in the test environment as a console
script) through the real MCP module, once that module provides `mcp_tools`.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest

import wegent_runtimes.mcp
from wegent_core import (
    AsyncWegent,
    McpServerPlan,
    ModelRequest,
    TaskState,
    TextChunk,
    Tool,
    ToolCallChunk,
    ToolCallRequest,
    UsageChunk,
    tool,
)

from .conftest import load, skill, team

pytestmark = pytest.mark.anyio

RENDER = {"render": {"command": "render-server"}, "export": {"command": "export-server"}}


class FakeMcp:
    """Stands in for `mcp_tools`: one tool per server, named after it; records every call."""

    def __init__(self) -> None:
        self.calls: list[list[McpServerPlan]] = []
        self.placeholders: list[Any] = []

    async def __call__(
        self, session: Any, servers: Sequence[McpServerPlan], *, placeholders: Any, emit: Any
    ) -> list[Tool]:
        self.calls.append(list(servers))
        self.placeholders.append(placeholders)
        return [self.server_tool(s.name) for s in servers]

    @staticmethod
    def server_tool(name: str) -> Tool:
        def run(text: str = "") -> str:
            return f"{name} says {text}"

        return tool(run, name=f"{name}_run", description=f"the {name} server")


@pytest.fixture
def fake_mcp(monkeypatch: pytest.MonkeyPatch) -> FakeMcp:
    fake = FakeMcp()
    monkeypatch.setattr(wegent_runtimes.mcp, "mcp_tools", fake, raising=False)
    return fake


def names(request: ModelRequest) -> list[str]:
    return [t.name for t in request.tools]


async def test_a_skills_servers_are_attached_when_it_is_loaded_and_only_its_own(run, fake_mcp: FakeMcp) -> None:
    yaml = team(
        ["a"],
        ghosts={"a": {"skills": ["diagrams", "search"]}},
        skills=[
            skill("diagrams", "Draw.", mcpServers=RENDER),
            skill("search", "Search.", mcpServers={"search": {"url": "http://127.0.0.1:9/mcp"}}),
        ],
    )
    call_render = {"tool_call": {"name": "diagrams_render_run", "arguments": {"text": "hi"}}}
    model, task, events = await run([load("diagrams"), call_render, "done"], yaml)
    first, second, third = model.requests
    assert names(first) == ["load_skill"]  # nothing is connected before a load
    assert names(second) == ["load_skill", "diagrams_render_run", "diagrams_export_run"]
    assert names(third) == names(second)
    assert [[(s.name, s.source) for s in servers] for servers in fake_mcp.calls] == [
        [("diagrams_render", "skill:diagrams"), ("diagrams_export", "skill:diagrams")]
    ]
    assert fake_mcp.placeholders[0]["bot"][0]["name"] == "a"  # the MCP module's placeholders (kit_placeholders)
    assert fake_mcp.placeholders[0]["task_id"] > 0
    loaded = next(e for e in events if e.type == "tool.result" and e.name == "load_skill")
    assert (
        loaded.output == "Draw.\n\n(Tools of this skill are now available: diagrams_render_run, diagrams_export_run.)"
    )
    rendered = next(e for e in events if e.type == "tool.result" and e.name == "diagrams_render_run")
    assert rendered.output == "diagrams_render says hi"
    assert (await task.wait()).status is TaskState.COMPLETED


async def test_a_preloaded_skills_servers_are_attached_from_the_start(run, fake_mcp: FakeMcp) -> None:
    yaml = team(
        ["a"],
        ghosts={"a": {"preload_skills": ["clock"], "mcpServers": {"ghost-server": {"command": "g"}}}},
        skills=[skill("clock", "Tell the time.", mcpServers={"clock": {"command": "clock-server"}})],
    )
    model, _, _ = await run(["ok"], yaml)
    assert "clock_run" in names(model.requests[0])  # the server shares the skill's name: no prefix
    assert [[s.name for s in servers] for servers in fake_mcp.calls] == [["clock"]]  # not the Ghost's server


async def test_without_the_mcp_module_the_skill_still_loads_and_a_notice_says_why(
    run, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "wegent_runtimes.mcp", None)  # `from wegent_runtimes.mcp import ...` fails
    yaml = team(["a"], ghosts={"a": {"skills": ["diagrams"]}}, skills=[skill("diagrams", "Draw.", mcpServers=RENDER)])
    model, task, events = await run([load("diagrams"), "done"], yaml)
    assert model.requests[1].messages[-1].content == "Draw."
    (notice,) = [e for e in events if e.type == "notice"]
    assert notice.code == "mcp.unavailable"
    assert "diagrams_render, diagrams_export" in notice.message
    assert (await task.wait()).status is TaskState.COMPLETED


async def test_a_failing_server_leaves_the_skill_usable(run, monkeypatch: pytest.MonkeyPatch) -> None:
    async def broken(*args: Any, **kwargs: Any) -> list[Tool]:
        raise OSError("no such command: render-server")

    monkeypatch.setattr(wegent_runtimes.mcp, "mcp_tools", broken, raising=False)
    yaml = team(["a"], ghosts={"a": {"skills": ["diagrams"]}}, skills=[skill("diagrams", "Draw.", mcpServers=RENDER)])
    model, task, events = await run([load("diagrams"), "done"], yaml)
    assert model.requests[1].messages[-1].content == "Draw."
    (notice,) = [e for e in events if e.type == "notice"]
    assert notice.code == "mcp.unavailable"
    assert "no such command" in notice.message
    assert (await task.wait()).status is TaskState.COMPLETED


# --- a real server --------------------------------------------------------------------------------------------------


class ClockModel:
    """Loads the `clock` skill, then calls whichever of the tools it brought asks for the current time."""

    def __init__(self) -> None:
        self.requests: list[ModelRequest] = []

    async def stream(self, request: ModelRequest) -> AsyncIterator[Any]:
        self.requests.append(request)
        step = len(self.requests)
        if step == 1:
            yield ToolCallChunk(call=ToolCallRequest(id="c1", name="load_skill", arguments={"name": "clock"}))
        elif step == 2:
            name = next(t.name for t in request.tools if t.name.endswith("get_current_time"))
            yield ToolCallChunk(call=ToolCallRequest(id="c2", name=name, arguments={"timezone": "UTC"}))
        else:
            yield TextChunk(text="it is " + request.messages[-1].content)
        yield UsageChunk(input_tokens=1, output_tokens=1)


async def test_a_real_mcp_server_is_attached_when_its_skill_is_loaded() -> None:
    if not hasattr(wegent_runtimes.mcp, "mcp_tools"):
        pytest.skip("wegent_runtimes.mcp does not provide mcp_tools yet")
    command = shutil.which("mcp-server-time", path=str(Path(sys.executable).parent))
    assert command, "mcp-server-time is installed with the test environment"
    server = {"time": {"command": command, "args": ["--local-timezone", "UTC"]}}
    yaml = team(
        ["a"], ghosts={"a": {"skills": ["clock"]}}, skills=[skill("clock", "Use the clock.", mcpServers=server)]
    )
    model = ClockModel()
    async with AsyncWegent("memory://", models={"m": model}) as wg:
        await wg.apply(yaml)
        task = await wg.run("team", "what time is it?")
        events = [event async for event in task]
        record = await task.wait()
    assert record.status is TaskState.COMPLETED, record
    assert not any(t.name.endswith("get_current_time") for t in model.requests[0].tools)
    result = next(e for e in events if e.type == "tool.result" and e.name.endswith("get_current_time"))
    assert not result.is_error, result.output
    assert "UTC" in result.output
