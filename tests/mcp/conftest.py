"""Real MCP servers for the MCP tests, and what the tests count processes with.

* `mcp-server-time` and `mcp-server-git` are console scripts of the test environment (PyPI packages).
* `@modelcontextprotocol/server-everything` (npm) is installed into `.nox/npm` by a session fixture when missing.
* `tiny_server.py` (next to this file) is a stdio server of the standard library only, for the process tests.

Every server a test starts carries `WEGENT_TEST_RUN=<id of this pytest process>` in its environment (given in its
config), so leftover processes are counted by that mark, wherever they were reparented, and never confused with the
servers of someone else's test run on the same machine.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import Any

import anyio
import pytest

from wegent_core import AsyncTask, AsyncWegent, Event, TaskRecord, tool
from wegent_core.testing import ScriptedModel

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[2]
NPM_PREFIX = ROOT / ".nox" / "npm"
EVERYTHING = NPM_PREFIX / "node_modules" / ".bin" / "mcp-server-everything"
TINY = str(Path(__file__).with_name("tiny_server.py"))
RUN_MARK = uuid.uuid4().hex
TEST_ENV = {"WEGENT_TEST_RUN": RUN_MARK}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def script(name: str) -> str:
    """A console script of the test environment."""
    found = shutil.which(name, path=str(Path(sys.executable).parent))
    assert found, f"{name} is installed with the test environment"
    return found


@pytest.fixture(scope="session")
def everything() -> str:
    """The server-everything command, installed from npm into .nox/npm when it is not there yet."""
    if not EVERYTHING.exists():
        npm = shutil.which("npm")
        assert npm, "npm is needed to install @modelcontextprotocol/server-everything"
        subprocess.run(
            [
                npm,
                "install",
                "--no-audit",
                "--no-fund",
                "--prefix",
                str(NPM_PREFIX),
                "@modelcontextprotocol/server-everything",
            ],
            check=True,
            capture_output=True,
            timeout=600,
        )
    assert EVERYTHING.exists()
    return str(EVERYTHING)


def stdio(command: str, *args: str, **extra: Any) -> dict[str, Any]:
    """A stdio server config carrying this run's mark."""
    return {"command": command, "args": list(args), **extra, "env": {**TEST_ENV, **extra.get("env", {})}}


def tiny(*flags: str, **extra: Any) -> dict[str, Any]:
    return stdio(sys.executable, TINY, *flags, **extra)


# --- processes ------------------------------------------------------------------------------------------------------


def marked_processes(mark: str = RUN_MARK) -> list[int]:
    """Live processes (zombies excluded) whose environment carries this run's mark."""
    needle = f"WEGENT_TEST_RUN={mark}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdecimal():
            continue
        try:
            stat = (entry / "stat").read_bytes()
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if stat[stat.rfind(b")") + 2 :].startswith(b"Z"):
            continue
        if needle in environ.split(b"\0"):
            found.append(int(entry.name))
    return found


def children() -> list[int]:
    """This process's children, zombies (not reaped) included."""
    pids: list[int] = []
    for path in Path("/proc/self/task").glob("*/children"):
        pids += [int(pid) for pid in path.read_text().split()]
    return pids


async def settled(count: Any, expected: int = 0, within: float = 10.0) -> int:
    """Poll `count()` until it returns `expected` or `within` seconds pass; its last value."""
    deadline = time.monotonic() + within
    value = count()
    while value != expected and time.monotonic() < deadline:
        await anyio.sleep(0.05)
        value = count()
    return value


# --- teams ----------------------------------------------------------------------------------------------------------


def team_yaml(
    ghosts: dict[str, dict[str, Any]], *, mode: str = "solo", members: Sequence[dict[str, Any]] | None = None
) -> str:
    """A Team of Chat bots named after `ghosts` (bot name -> extra Ghost spec, e.g. `mcpServers`), on Model `m`."""
    docs: list[dict[str, Any]] = [
        {"kind": "Model", "metadata": {"name": "m"}, "spec": {"protocol": "scripted", "modelConfig": {"script": []}}},
        {"kind": "Shell", "metadata": {"name": "chat"}, "spec": {"shellType": "Chat"}},
    ]
    for bot, spec in ghosts.items():
        docs.append({"kind": "Ghost", "metadata": {"name": bot}, "spec": {"systemPrompt": f"You are {bot}.", **spec}})
        refs = {"ghostRef": {"name": bot}, "shellRef": {"name": "chat"}, "modelRef": {"name": "m"}}
        docs.append({"kind": "Bot", "metadata": {"name": bot}, "spec": refs})
    team_members = members or [{"botRef": {"name": bot}} for bot in ghosts]
    docs.append(
        {"kind": "Team", "metadata": {"name": "team"}, "spec": {"collaborationModel": mode, "members": team_members}}
    )
    return "\n---\n".join(json.dumps({"apiVersion": "agent.wecode.io/v1", **d}) for d in docs) + "\n"


def call(tool: str, **arguments: Any) -> dict[str, Any]:
    """A scripted reply that calls one tool."""
    return {"tool_call": {"name": tool, "arguments": arguments}}


@pytest.fixture
async def wegent() -> AsyncIterator[Any]:
    """`await wegent(yaml, replies, prompt="go", tools=())` -> (model, task): a started task on an in-memory store.
    The engine closes after the test, and then no process of the test's servers may be left."""
    opened: list[AsyncWegent] = []

    async def make(
        yaml: str, replies: Sequence[Any], prompt: str = "go", tools: Sequence[Any] = ()
    ) -> tuple[ScriptedModel, AsyncTask]:
        model = ScriptedModel(replies, name="m")
        wg = AsyncWegent("memory://", models={"m": model}, tools=tools)
        await wg.__aenter__()
        opened.append(wg)
        await wg.apply(yaml)
        return model, await wg.run("team", prompt)

    yield make
    for wg in reversed(opened):
        await wg.__aexit__(None, None, None)
    assert await settled(lambda: len(marked_processes())) == 0, "a server process outlived its engine"


async def finish(task: AsyncTask) -> tuple[list[Event], TaskRecord]:
    events = [event async for event in task]
    return events, await task.wait()


def results(events: Sequence[Event]) -> dict[str, Any]:
    """The tool results of a task by tool name (the last one of each name)."""
    return {e.name: e for e in events if e.type == "tool.result"}  # type: ignore[attr-defined]


def notices(events: Sequence[Event]) -> list[Any]:
    return [e for e in events if e.type == "notice"]


@tool
def count_processes() -> int:
    """How many processes of this test run's servers are alive now (a tool, so a script can ask mid-task)."""
    return len(marked_processes())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def http_everything(everything: str) -> Iterator[Any]:
    """`start(mode)` -> base URL of server-everything serving `sse` or `streamableHttp` on a free port; stopped
    (its process group killed) after the test."""
    started: list[subprocess.Popen[bytes]] = []

    def start(mode: str) -> str:
        port = free_port()
        env = {**os.environ, "PORT": str(port)}
        process = subprocess.Popen(
            [everything, mode], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        started.append(process)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    return f"http://127.0.0.1:{port}"
            assert process.poll() is None, "server-everything exited"
            time.sleep(0.05)
        raise AssertionError(f"server-everything {mode} did not listen on {port}")

    yield start
    for process in started:
        os.killpg(process.pid, 9)
        process.wait()
