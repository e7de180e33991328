"""Server processes: started lazily and once per task, bounded handshakes, and nothing left behind after a cancel,
a crash or the end of a task, grandchildren included. Processes are counted by the mark every test server carries
(see conftest), so a process reparented to init is still found."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import anyio
import pytest

from wegent_core import AsyncWegent, TaskState
from wegent_core.testing import ScriptedModel

from .conftest import (
    NPM_PREFIX,
    call,
    children,
    count_processes,
    finish,
    marked_processes,
    notices,
    results,
    settled,
    stdio,
    team_yaml,
    tiny,
)

pytestmark = pytest.mark.anyio


async def test_a_hung_handshake_times_out_with_a_notice_and_leaves_no_process(wegent) -> None:
    # never answers, ignores SIGTERM and the end of stdin, and has a child of its own
    servers = {"stuck": tiny("--hang", "--stubborn", "--grandchild", timeout=1), "echo": tiny()}
    began = time.monotonic()
    _, task = await wegent(
        team_yaml({"a": {"mcpServers": servers}}),
        [call("echo__echo", text="hi"), call("count_processes"), "done"],
        tools=[count_processes],
    )
    events, record = await finish(task)
    assert record.status is TaskState.COMPLETED
    assert time.monotonic() - began < 15  # 1 s of handshake, then the SDK's grace periods and a kill
    (notice,) = notices(events)
    assert notice.message == "MCP server 'stuck' is unavailable: no answer to the handshake within 1 s"
    assert results(events)["echo__echo"].output == "hi"
    assert results(events)["count_processes"].output == "1"  # only the echo server: the stuck one and its child died


async def test_a_server_that_crashes_mid_call_is_a_tool_error_and_is_reaped_at_once(wegent) -> None:
    replies = [call("count_processes"), call("t__crash"), call("count_processes"), call("t__echo", text="x"), "done"]
    _, task = await wegent(
        team_yaml({"a": {"mcpServers": {"t": tiny("--grandchild")}}}), replies, tools=[count_processes]
    )
    events, record = await finish(task)
    assert record.status is TaskState.COMPLETED
    calls = [e for e in events if e.type == "tool.result"]
    assert [c.output for c in calls if c.name == "count_processes"] == ["2", "0"]  # server and child; then none
    crash, echo = (c for c in calls if c.name.startswith("t__"))
    assert crash.is_error
    assert "MCP server 't' is not available: the connection closed" in crash.output
    assert echo.is_error
    assert "MCP server 't' is not available" in echo.output


async def test_a_server_is_started_once_per_task_and_shared_across_turns_and_members(wegent, tmp_path: Path) -> None:
    shared_log, own_log = tmp_path / "shared.log", tmp_path / "own.log"
    shared = tiny("--log", str(shared_log))
    ghosts = {
        "a": {"mcpServers": {"t": shared}},
        "b": {"mcpServers": {"t": shared, "own": tiny("--log", str(own_log))}},
    }
    replies = [
        call("t__echo", text="a1"),
        call("t__echo", text="a2"),
        "stage one",
        call("t__echo", text="b1"),
        call("own__echo", text="b2"),
        "stage two",
    ]
    _, task = await wegent(team_yaml(ghosts, mode="pipeline"), replies)
    events, record = await finish(task)
    assert record.status is TaskState.COMPLETED, record
    outputs = [e.output for e in events if e.type == "tool.result"]
    assert outputs == ["a1", "a2", "b1", "b2"]
    assert len(shared_log.read_text().split()) == 1  # one process for both members and all their turns
    assert len(own_log.read_text().split()) == 1


async def test_a_server_is_not_started_before_the_member_needs_it(wegent, tmp_path: Path) -> None:
    log = tmp_path / "b.log"
    ghosts = {"a": {}, "b": {"mcpServers": {"t": tiny("--log", str(log))}}}
    members = [{"botRef": {"name": "a"}, "requireConfirmation": True}, {"botRef": {"name": "b"}}]
    _, task = await wegent(team_yaml(ghosts, mode="pipeline", members=members), ["stage one"])
    _, record = await finish(task)
    assert record.status is TaskState.PENDING_CONFIRMATION  # b has not taken a turn yet ...
    assert not log.exists()  # ... so its server has not started


async def test_a_server_that_leaves_a_child_behind_is_reaped_at_the_end_of_the_task(wegent) -> None:
    # tiny exits as soon as its stdin closes, so the SDK does not kill its process group: the child would live on
    replies = [call("count_processes"), "done"]
    _, task = await wegent(
        team_yaml({"a": {"mcpServers": {"t": tiny("--grandchild")}}}), replies, tools=[count_processes]
    )
    events, record = await finish(task)
    assert record.status is TaskState.COMPLETED
    assert results(events)["count_processes"].output == "2"
    assert await settled(lambda: len(marked_processes())) == 0


async def test_npx_and_its_grandchildren_are_reaped(wegent, everything: str) -> None:
    npx = shutil.which("npx")
    assert npx
    server = stdio(npx, "--no-install", "--prefix", str(NPM_PREFIX), "mcp-server-everything")
    replies = [call("every__echo", message="hi"), call("count_processes"), "done"]
    _, task = await wegent(team_yaml({"a": {"mcpServers": {"every": server}}}), replies, tools=[count_processes])
    events, record = await finish(task)
    assert record.status is TaskState.COMPLETED
    assert results(events)["every__echo"].output == "Echo: hi"
    assert int(results(events)["count_processes"].output) >= 2  # npx and the node server it started
    assert await settled(lambda: len(marked_processes())) == 0


async def test_cancelling_a_task_during_a_handshake_leaves_no_process(wegent) -> None:
    servers = {"slow": tiny("--hang", "--grandchild", timeout=60)}
    _, task = await wegent(team_yaml({"a": {"mcpServers": servers}}), ["never reached"])
    await settled(lambda: len(marked_processes()), expected=2)  # the server and its child are up
    began = time.monotonic()
    await task.cancel()
    assert (await task.wait()).status is TaskState.CANCELLED
    assert await settled(lambda: len(marked_processes())) == 0
    assert time.monotonic() - began < 10


async def test_a_hundred_tasks_that_start_and_cancel_a_stdio_server_leave_no_orphan() -> None:
    """The acceptance test of issue 5: each task starts a server (with a child of its own), calls a tool that never
    answers, and is cancelled; afterwards no process of theirs is left, and this process has no unreaped child."""
    before_children = set(children())
    assert marked_processes() == []
    yaml = team_yaml({"a": {"mcpServers": {"t": tiny("--grandchild")}}})
    model = ScriptedModel([call("t__wait")] * 100, name="m")
    async with AsyncWegent("memory://", models={"m": model}) as wg:
        await wg.apply(yaml)

        async def one() -> None:
            task = await wg.run("team", "wait")
            async for event in task:
                if event.type == "tool.call":  # the server is up and busy
                    await task.cancel()
            assert (await task.wait()).status is TaskState.CANCELLED

        for _ in range(10):  # ten at a time, a hundred in all
            async with anyio.create_task_group() as group:
                for _ in range(10):
                    group.start_soon(one)
        assert model.remaining == 0  # every task reached its tool call
        assert await settled(lambda: len(marked_processes())) == 0
    assert marked_processes() == []
    assert await settled(lambda: len(set(children()) - before_children)) == 0
