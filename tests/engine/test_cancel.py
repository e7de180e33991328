"""Cancellation reaches everything in flight, in every state and at every await point of a turn; it is idempotent,
CANCELLED is sticky, and no error handling swallows it."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest

from wegent_core import AsyncWegent, SubtaskState, TaskError, TaskState, TextChunk, UsageChunk, tool
from wegent_storage import SqlStore

from .conftest import collect, statuses, team_yaml

pytestmark = pytest.mark.anyio


async def until(task, status: TaskState) -> None:
    with anyio.fail_after(5):
        while (await task.record()).status is not status:
            await anyio.sleep(0.01)


async def until_event(task, kind: str) -> None:
    with anyio.fail_after(5):
        while not [e for e in await task.engine.db(task.engine.store.events, task.id) if e.type == kind]:
            await anyio.sleep(0.01)


async def cancelled_quickly(task, started: float) -> list:
    with anyio.fail_after(3):
        assert await task.cancel() in (TaskState.CANCELLING, TaskState.CANCELLED)
        events = await collect(task)
    assert time.monotonic() - started < 3  # the 10 s waits in flight were interrupted
    record = await task.record()
    assert record.status is TaskState.CANCELLED
    assert all(s.status in (SubtaskState.COMPLETED, SubtaskState.CANCELLED) for s in await task.subtasks())
    assert statuses(events)[-1] == "CANCELLED"
    return events


async def test_cancel_while_the_model_streams(engine) -> None:
    _, _, task = await engine([{"text": "slow", "delay": 10}], ["a"])
    started = time.monotonic()
    await until(task, TaskState.RUNNING)
    await until_event(task, "subtask.status")
    events = await cancelled_quickly(task, started)
    assert statuses(events) == ["RUNNING", "CANCELLING", "CANCELLED"]
    assert [e.status for e in events if e.type == "subtask.status"] == ["RUNNING", "CANCELLED"]


async def test_cancel_during_a_tool_call_that_swallows_exceptions(engine) -> None:
    reached = anyio.Event()

    @tool
    async def wait_forever() -> str:
        """Waits."""
        reached.set()
        try:
            await anyio.sleep(10)
        except Exception:  # broad error handling must not swallow cancellation
            return "swallowed"
        return "finished"

    replies = [{"tool_call": {"name": "wait_forever"}}, "never"]
    _, _, task = await engine(replies, ["a"], tools=[wait_forever])
    started = time.monotonic()
    with anyio.fail_after(5):
        await reached.wait()
    events = await cancelled_quickly(task, started)
    assert [e.type for e in events if e.type.startswith("tool.")] == ["tool.call"]  # no result: it never finished


async def test_cancel_reaches_members_running_in_parallel(engine) -> None:
    replies = [{"member": m, "text": m, "delay": 10} for m in ("a", "b", "c")]
    _, _, task = await engine(replies, ["a", "b", "c"], "collaborate")
    started = time.monotonic()
    with anyio.fail_after(5):
        while len([s for s in await task.subtasks() if s.status is SubtaskState.RUNNING]) < 2:
            await anyio.sleep(0.01)
    await cancelled_quickly(task, started)
    assert [s.status for s in await task.subtasks() if s.role == "ASSISTANT"] == [
        "CANCELLED"
    ] * 3  # no leader: all work


async def test_cancel_during_a_retry_backoff(engine) -> None:
    _, _, task = await engine([{"error": "rate_limit"}, "too late"], ["a"])
    task.engine.retry = task.engine.retry.model_copy(update={"base_delay": 10, "max_delay": 10})
    started = time.monotonic()
    await until_event(task, "error")
    await cancelled_quickly(task, started)


async def test_cancel_while_waiting_for_confirmation_is_immediate(engine) -> None:
    _, _, task = await engine(["A"], [{"bot": "a", "requireConfirmation": True}, "b"], "pipeline")
    await task.wait()
    assert await task.cancel() is TaskState.CANCELLED
    assert (await task.record()).status is TaskState.CANCELLED


async def test_cancel_is_idempotent_and_a_finished_task_cannot_be_cancelled(engine) -> None:
    _, _, done = await engine(["ok"], ["a"])
    await done.wait()
    with pytest.raises(TaskError, match="Task is already COMPLETED, cannot cancel"):
        await done.cancel()
    _, _, task = await engine([{"text": "slow", "delay": 10}], ["a"])
    await until(task, TaskState.RUNNING)
    first = await task.cancel()
    second = await task.cancel()
    assert first is TaskState.CANCELLING
    assert second in (TaskState.CANCELLING, TaskState.CANCELLED)
    await task.wait()
    assert await task.cancel() is TaskState.CANCELLED


class StubbornModel:
    """Finishes its reply even when cancelled: a late completion must not revive the task."""

    def __init__(self) -> None:
        self.finished = anyio.Event()

    async def stream(self, request) -> AsyncIterator:
        with anyio.CancelScope(shield=True):
            await anyio.sleep(0.3)
        self.finished.set()
        yield TextChunk(text="late answer")
        yield UsageChunk(input_tokens=1, output_tokens=1)


async def test_cancelled_is_sticky_against_a_late_completion(tmp_path: Path) -> None:
    model = StubbornModel()
    async with AsyncWegent("sqlite://", models={"m": model}) as wg:
        await wg.apply(team_yaml("m", ["a"]))
        task = await wg.run("team", "hi")
        await until(task, TaskState.RUNNING)
        await task.cancel()
        await task.wait()
        with anyio.fail_after(10):
            await model.finished.wait()
        await anyio.sleep(0.1)
        record = await task.record()
        assert record.status is TaskState.CANCELLED
        events = await task.engine.db(wg.store.events, task.id)
        assert not [e for e in events if e.type == "message" and e.data["role"] == "ASSISTANT"]


async def test_another_process_can_cancel_a_running_task(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/tasks.db"
    SqlStore.open(url, upgrade=True).close()
    from wegent_core.testing import ScriptedModel

    model = ScriptedModel([{"text": "slow", "delay": 10}])
    async with AsyncWegent(url, models={"m": model}) as runner, AsyncWegent(url) as other:
        await runner.apply(team_yaml("m", ["a"]))
        task = await runner.run("team", "hi")
        await until(task, TaskState.RUNNING)
        started = time.monotonic()
        remote = await other.task(task.id)
        assert await remote.cancel() is TaskState.CANCELLING  # its runner is alive: it is asked to stop
        with anyio.fail_after(3):
            record = await remote.wait()
        assert record.status is TaskState.CANCELLED
        assert time.monotonic() - started < 3


async def test_a_failed_task_cannot_be_cancelled_and_a_cancelled_one_takes_follow_ups(engine) -> None:
    _, model, failed = await engine([{"error": "fatal"}], ["a"])
    await failed.wait()
    with pytest.raises(TaskError, match="Task is already FAILED, cannot cancel"):
        await failed.cancel()
    model.add({"text": "slow", "delay": 10}, "after the cancel")
    task = await failed.engine.start("team", "again")
    handle = type(failed)(failed.engine, task)
    await until(handle, TaskState.RUNNING)
    await handle.cancel()
    assert (await handle.wait()).status is TaskState.CANCELLED
    await handle.send("and now?")  # a cancelled task takes a follow-up, as upstream allows
    assert await handle.result() == "after the cancel"
