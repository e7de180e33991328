"""SSE and streamable HTTP against server-everything on a loopback port, headers with `${ENV}` values, and
`mcp_tools` as other toolkits call it (a task session of our own, no engine)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest

from wegent_core import Event, McpServerPlan, TaskSession, TaskState, ToolContext
from wegent_runtimes.mcp import mcp_tools

from .conftest import call, finish, marked_processes, results, team_yaml, tiny

pytestmark = pytest.mark.anyio
CONTEXT = ToolContext(task_id=1, member="default/a", call_id="c1", idempotency_key="k1")


@pytest.fixture
async def session() -> AsyncIterator[TaskSession]:
    """A task session like the engine's; closed (its servers stopped) after the test."""
    async with anyio.create_task_group() as group:
        task_session = TaskSession(1, group)
        try:
            yield task_session
        finally:
            await task_session.close()


def plan(name: str, **fields: Any) -> McpServerPlan:
    return McpServerPlan(name=name, source="ghost", **fields)


@pytest.mark.parametrize(
    ("mode", "kind", "path"), [("sse", "sse", "/sse"), ("streamableHttp", "streamable-http", "/mcp")]
)
async def test_remote_servers_work_through_the_engine(wegent, http_everything, mode: str, kind: str, path: str) -> None:
    url = http_everything(mode) + path
    servers = {"every": {"type": kind, "url": url, "timeout": 20}}
    replies = [
        call("every__echo", message=kind),
        call("every__read_resource", uri="demo://resource/dynamic/text/1"),
        "ok",
    ]
    model, task = await wegent(team_yaml({"a": {"mcpServers": servers}}), replies)
    events, record = await finish(task)
    assert record.status is TaskState.COMPLETED
    assert len(model.requests[0].tools) == 15  # 13 tools, the prompt tool and the resource tool
    assert results(events)["every__echo"].output == f"Echo: {kind}"
    assert results(events)["every__read_resource"].output.startswith("Resource 1:")


async def _capture_one_request(seen: list[bytes], status: bytes) -> Any:
    async def handle(stream: Any) -> None:
        async with stream:
            data = b""
            while b"\r\n\r\n" not in data:
                data += await stream.receive()
            seen.append(data)
            await stream.send(b"HTTP/1.1 " + status + b"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")

    return handle


@pytest.mark.parametrize("kind", ["sse", "streamable-http"])
async def test_headers_get_env_values_which_no_notice_shows(session, monkeypatch, kind: str) -> None:
    monkeypatch.setenv("WEGENT_TEST_TOKEN", "tok-4f9a2c")
    seen: list[bytes] = []
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    events: list[Event] = []
    async with anyio.create_task_group() as group:
        group.start_soon(listener.serve, await _capture_one_request(seen, b"401 Unauthorized"))
        headers = {"Authorization": "Bearer ${WEGENT_TEST_TOKEN}", "X-Task": "${{task_id}}"}
        server = plan(
            "remote",
            type=kind,
            url=f"http://127.0.0.1:{port}/mcp?key=${{WEGENT_TEST_TOKEN}}",
            headers=headers,
            timeout=5,
        )
        tools = await mcp_tools(session, [server], placeholders={"task_id": 42}, emit=events.append)
        group.cancel_scope.cancel()
    assert tools == []
    request = seen[0].decode().lower()
    assert "authorization: bearer tok-4f9a2c" in request
    assert "x-task: 42" in request
    (notice,) = events
    assert notice.code == "mcp.unavailable"
    assert notice.message.startswith("MCP server 'remote' is unavailable: ")
    assert "tok-4f9a2c" not in notice.message


async def test_a_server_is_connected_once_per_session_and_its_failure_announced_once(session, tmp_path) -> None:
    log = tmp_path / "starts.log"
    events: list[Event] = []
    servers = [plan("t", type="stdio", **tiny("--log", str(log))), plan("gone", type="stdio", command="/nonexistent")]
    first = await mcp_tools(session, servers, placeholders={}, emit=events.append)
    second = await mcp_tools(session, servers, placeholders={}, emit=events.append)
    assert (
        [t.spec.name for t in first] == [t.spec.name for t in second] == ["t__echo", "t__crash", "t__wait", "t__fail"]
    )
    assert await second[0].call({"text": "again"}, CONTEXT) == "again"
    assert len(log.read_text().split()) == 1
    assert [e.message for e in events] == ["MCP server 'gone' is unavailable: command not found: /nonexistent"]


async def test_different_placeholder_values_give_different_servers(session, tmp_path) -> None:
    log = tmp_path / "starts.log"
    server = plan("t", type="stdio", **tiny("--log", str(log), env={"BOT": "${{bot.0.name}}"}))
    for bot in ("a", "b", "a"):
        await mcp_tools(session, [server], placeholders={"bot": [{"name": bot}]}, emit=lambda e: None)
    assert len(log.read_text().split()) == 2  # a's and b's configuration differ; a's second call shares the first


async def test_servers_start_in_parallel(session) -> None:
    servers = [plan(f"s{i}", type="stdio", **tiny("--hang", timeout=1)) for i in range(4)]
    events: list[Event] = []
    with anyio.fail_after(6):  # one at a time would take over 4 s of handshakes, plus their shutdowns
        await mcp_tools(session, servers, placeholders={}, emit=events.append)
    assert len(events) == 4


async def test_a_closed_session_stops_its_servers_and_their_tools_say_so() -> None:
    async with anyio.create_task_group() as group:
        task_session = TaskSession(1, group)
        (echo, *_) = await mcp_tools(task_session, [plan("t", type="stdio", **tiny())], placeholders={}, emit=print)
        assert len(marked_processes()) == 1
        await task_session.close()
    assert marked_processes() == []
    with pytest.raises(Exception, match="MCP server 't' is not available: the task's session closed"):
        await echo.call({"text": "late"}, CONTEXT)


async def test_a_value_a_placeholder_brings_in_is_not_expanded_from_the_environment(
    session, everything: str, monkeypatch
) -> None:
    monkeypatch.setenv("WEGENT_TEST_SECRET", "s3cret-value")
    server = plan(
        "every", type="stdio", command=everything, env={"NAME": "${{bot.0.name}}", "OWN": "${WEGENT_TEST_SECRET}"}
    )
    placeholders = {"bot": [{"name": "${WEGENT_TEST_SECRET}"}]}  # a resource name someone else wrote
    tools = {t.spec.name: t for t in await mcp_tools(session, [server], placeholders=placeholders, emit=print)}
    environment = await tools["every__get-env"].call({}, CONTEXT)
    assert '"NAME": "${WEGENT_TEST_SECRET}"' in environment
    assert '"OWN": "s3cret-value"' in environment  # the config's own `${ENV}` is expanded
