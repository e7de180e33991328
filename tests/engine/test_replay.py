"""A task's model traffic recorded to a file replays exactly: the same events, with no model at all."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from wegent_core import AsyncWegent, Event, RetryPolicy, TaskState, tool
from wegent_core.testing import ReplayError, ReplayModel, ScriptedModel

from .conftest import team_yaml

pytestmark = pytest.mark.anyio
NO_WAIT = RetryPolicy(base_delay=0, max_delay=0)


@tool
def lookup(city: str) -> str:
    """The country of a city."""
    return {"Berlin": "Germany", "Paris": "France"}.get(city, "unknown")


SCRIPT: list[Any] = [
    {
        "member": "planner",
        "thinking": "Look it up first.",
        "tool_call": {"name": "lookup", "arguments": {"city": "Berlin"}},
    },
    {"member": "planner", "error": "rate_limit"},
    {"member": "planner", "chunks": ["Berlin is ", "in Germany."]},
    {"member": "writer", "text": "Germany it is.", "usage": {"input_tokens": 7, "output_tokens": 3}},
]


async def _run(path: Path, *, record: bool, prompt: str = "Where is Berlin?") -> tuple[list[Event], Any]:
    options: dict[str, Any] = {"record": path} if record else {"replay": path}
    models = {"m": ScriptedModel(SCRIPT, name="m")} if record else {}
    async with AsyncWegent("memory://", models=models, tools=[lookup], retry=NO_WAIT, **options) as wg:
        await wg.apply(team_yaml("m", ["planner", "writer"], mode="pipeline"))
        task = await wg.run("team", prompt)
        record_ = await task.wait()
        return [e async for e in task.events(0)], record_


def _comparable(events: list[Event]) -> list[tuple[Any, ...]]:
    return [(e.seq, e.type, e.subtask_id, e.member, json.dumps(e.data(), sort_keys=True)) for e in events]


async def test_a_recorded_run_replays_with_identical_events(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    recorded, first = await _run(path, record=True)
    assert first.status is TaskState.COMPLETED
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert lines[0]["format"] == "wegent-model-recording"
    assert [(e["member"], e["call"]) for e in lines[1:]] == [
        ("default/planner", 1),
        ("default/planner", 2),
        ("default/planner", 3),
        ("default/writer", 1),
    ]
    assert lines[2]["error"]["code"] == "rate_limit"

    replayed, second = await _run(path, record=False)
    assert second.status is TaskState.COMPLETED
    assert second.result == first.result
    assert _comparable(replayed) == _comparable(recorded)
    kinds = {e.type for e in replayed}
    assert {"thinking", "tool.call", "tool.result", "error", "text.delta", "usage", "handoff"} <= kinds


async def test_a_replay_refuses_a_request_that_differs(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    await _run(path, record=True)
    _, record = await _run(path, record=False, prompt="Where is Paris?")
    assert record.status is TaskState.FAILED
    assert "call 1 of default/planner differs from the recording" in record.error_message
    assert "Where is Paris?" in record.error_message  # it shows what changed


async def test_a_replay_with_no_call_left_fails_the_task(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    await _run(path, record=True)
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:-1]) + "\n")  # the writer's call is missing
    _, record = await _run(path, record=False)
    assert record.status is TaskState.FAILED
    assert "no recorded call left for default/writer" in record.error_message


def test_a_file_that_is_not_a_recording_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    path.write_text('{"hello": 1}\n')
    with pytest.raises(ReplayError, match="not a wegent model recording"):
        ReplayModel(path)


def test_an_unreadable_recording_is_named(tmp_path: Path) -> None:
    with pytest.raises(ReplayError, match="cannot read the recording"):
        ReplayModel(tmp_path / "missing.jsonl")
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"format": "wegent-model-recording", "version": 1}\n{oops\n')
    with pytest.raises(ReplayError, match="line 2: not JSON"):
        ReplayModel(broken)
