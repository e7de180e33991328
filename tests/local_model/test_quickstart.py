"""The README's main job, end to end: examples/quickstart on the real offline model, its first stage calling the real
`mcp-server-time` over stdio (a tool call forced by the Model's `toolChoice: required`), the second reporting."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from wegent_core import AsyncWegent, TaskState, ToolCall, ToolResult
from wegent_core.testing import ReplayModel

pytestmark = pytest.mark.anyio
QUICKSTART = Path(__file__).resolve().parents[2] / "examples" / "quickstart"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """`protocol: auto` picks the offline model, whatever keys the machine has."""
    monkeypatch.setenv("WEGENT_MODEL_PROVIDER", "local")


async def test_the_quickstart_team_runs_on_the_local_model_with_a_real_mcp_server(tmp_path: Path) -> None:
    recording = tmp_path / "quickstart.jsonl"
    async with AsyncWegent("sqlite://", record=recording) as wg:
        await wg.apply(QUICKSTART)
        task = await wg.run("world-clock", "What time is it in Europe/Berlin?")
        events = [event async for event in task]
        record = await task.wait()
    assert record.status is TaskState.COMPLETED, record.error_message
    (call,) = [e for e in events if isinstance(e, ToolCall)]
    assert (call.member, call.name) == ("default/clock-bot", "time__get_current_time")  # server__tool
    (result,) = [e for e in events if isinstance(e, ToolResult)]
    assert not result.is_error, result.output
    answered = json.loads(result.output)  # what the real server answered, for the zone the model asked about
    assert answered["timezone"] == call.arguments["timezone"]
    assert re.match(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}", answered["datetime"])
    stages = [e.member for e in events if e.type == "message" and e.role == "ASSISTANT"]  # type: ignore[attr-defined]
    assert stages == ["default/clock-bot", "default/reporter-bot"]
    assert (record.result or {}).get("value")

    # the recorded run replays with no model; the clock has moved, so the requests differ: replay without comparing
    async with AsyncWegent("memory://", replay=ReplayModel(recording, strict=False)) as wg:
        await wg.apply(QUICKSTART)
        replayed = await wg.run("world-clock", "What time is it in Europe/Berlin?")
        again = [event async for event in replayed]
    shown = [(e.type, e.member) for e in events]
    assert [(e.type, e.member) for e in again] == shown
    texts = [e.text for e in events if e.type == "text.delta"]  # type: ignore[attr-defined]
    assert [e.text for e in again if e.type == "text.delta"] == texts  # type: ignore[attr-defined]
