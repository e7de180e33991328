"""A Ghost's MCP servers through the engine: real servers from the registries, a scripted model calling their tools."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from wegent_core import TaskState

from .conftest import call, finish, notices, results, script, stdio, team_yaml, tiny

pytestmark = pytest.mark.anyio


async def test_a_ghost_servers_tools_are_listed_and_called(wegent) -> None:
    servers = {"time": stdio(script("mcp-server-time"), "--local-timezone", "UTC")}
    yaml = team_yaml({"a": {"mcpServers": servers}})
    model, task = await wegent(yaml, [call("time__get_current_time", timezone="Asia/Tokyo"), "done"])
    events, record = await finish(task)
    assert record.status is TaskState.COMPLETED, record
    assert [t.name for t in model.requests[0].tools] == ["time__get_current_time", "time__convert_time"]
    result = results(events)["time__get_current_time"]
    assert not result.is_error, result.output
    assert '"timezone": "Asia/Tokyo"' in result.output
    assert "+09:00" in result.output
    assert model.requests[1].messages[-1].content == result.output  # the model got the server's answer


async def test_git_server_reads_a_real_repository(wegent, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    (repo / "notes.txt").write_text("hello\n")
    servers = {"git": stdio(script("mcp-server-git"), "--repository", str(repo))}
    model, task = await wegent(
        team_yaml({"a": {"mcpServers": servers}}), [call("git__git_status", repo_path=str(repo)), "done"]
    )
    events, record = await finish(task)
    assert record.status is TaskState.COMPLETED
    assert len([t for t in model.requests[0].tools if t.name.startswith("git__git_")]) == 12
    status = results(events)["git__git_status"]
    assert not status.is_error, status.output
    assert "notes.txt" in status.output
    assert "main" in status.output


async def test_everything_server_tools_prompts_and_resources(wegent, everything: str) -> None:
    replies = [
        call("every__echo", message="ping"),
        call("every__get_prompt", name="args-prompt", arguments={"city": "Paris"}),
        call("every__read_resource", uri="demo://resource/dynamic/text/3"),
        call("every__get-tiny-image"),
        call("every__get-sum", a="one", b=2),
        "done",
    ]
    model, task = await wegent(team_yaml({"a": {"mcpServers": {"every": stdio(everything)}}}), replies)
    events, record = await finish(task)
    assert record.status is TaskState.COMPLETED
    names = [t.name for t in model.requests[0].tools]
    assert len([n for n in names if n not in ("every__get_prompt", "every__read_resource")]) == 13
    assert names[-2:] == ["every__get_prompt", "every__read_resource"]
    prompt_tool = next(t for t in model.requests[0].tools if t.name == "every__get_prompt")
    assert "args-prompt(city*, state)" in prompt_tool.description
    assert prompt_tool.parameters["properties"]["name"]["enum"][:2] == ["simple-prompt", "args-prompt"]
    found = results(events)
    assert found["every__echo"].output == "Echo: ping"
    assert "Paris" in found["every__get_prompt"].output
    assert found["every__get_prompt"].output.startswith("user:")
    assert found["every__read_resource"].output.startswith("Resource 3:")
    assert "[image image/png," in found["every__get-tiny-image"].output  # summarised, not base64
    assert found["every__get-sum"].is_error
    assert "expected number" in found["every__get-sum"].output


async def test_placeholders_env_and_the_nested_form_reach_the_server(wegent, everything: str, monkeypatch) -> None:
    monkeypatch.setenv("WEGENT_TEST_SECRET", "s3cret-value")
    env = {
        "TASK": "${{task_id}}",
        "BOT": "${{bot.0.name}}@${{bot.0.namespace}}",
        "GHOST": "${{ghost.name}}",
        "TEAM": "${{team.name}}/${{team.collaboration_model}}",
        "UNKNOWN": "${{user.name}}",
        "TOKEN": "${WEGENT_TEST_SECRET}",
    }
    nested = {"mcpServers": {"mcp_servers": {"every": stdio(everything, env=env)}}}
    _model, task = await wegent(team_yaml({"agent": {"mcpServers": nested}}), [call("every__get-env"), "done"])
    events, record = await finish(task)
    assert record.status is TaskState.COMPLETED
    output = results(events)["every__get-env"].output
    assert f'"TASK": "{record.id}"' in output
    assert '"BOT": "agent@default"' in output
    assert '"GHOST": "agent"' in output
    assert '"TEAM": "team/solo"' in output
    assert '"UNKNOWN": "${{user.name}}"' in output  # an unknown path keeps the placeholder
    assert '"TOKEN": "s3cret-value"' in output  # ${ENV} is expanded at start, from this process's environment
    assert "s3cret-value" not in str(record.spec)  # ... and never stored with the task


async def test_a_server_that_cannot_start_is_announced_and_the_task_goes_on(wegent) -> None:
    servers = {"ghostly": stdio("/nonexistent/mcp-server"), "echo": tiny()}
    _, task = await wegent(team_yaml({"a": {"mcpServers": servers}}), [call("echo__echo", text="still here"), "done"])
    events, record = await finish(task)
    assert record.status is TaskState.COMPLETED
    (notice,) = notices(events)
    assert (notice.code, notice.member) == ("mcp.unavailable", "default/a")
    assert notice.message == "MCP server 'ghostly' is unavailable: command not found: /nonexistent/mcp-server"
    assert results(events)["echo__echo"].output == "still here"


async def test_an_error_result_reaches_the_model_as_an_error(wegent) -> None:
    model, task = await wegent(team_yaml({"a": {"mcpServers": {"t": tiny()}}}), [call("t__fail"), "done"])
    events, _ = await finish(task)
    failed = results(events)["t__fail"]
    assert failed.is_error
    assert failed.output == "error: it failed"
    assert model.requests[1].messages[-1].content == "error: it failed"


async def test_a_server_that_dies_at_start_is_announced_with_its_stderr_and_no_secret(wegent, monkeypatch) -> None:
    monkeypatch.setenv("WEGENT_TEST_SECRET", "s3cret-value")
    program = "import os, sys; sys.stderr.write('bad key ' + os.environ['API_KEY'] + '\\n'); sys.exit(2)"
    servers = {"crashy": stdio(sys.executable, "-c", program, env={"API_KEY": "${WEGENT_TEST_SECRET}"})}
    _, task = await wegent(team_yaml({"a": {"mcpServers": servers}}), ["done"])
    events, record = await finish(task)
    assert record.status is TaskState.COMPLETED
    (notice,) = notices(events)
    assert notice.message == (
        "MCP server 'crashy' is unavailable: the connection closed during the handshake;"
        " its stderr ends with: bad key ***"
    )
