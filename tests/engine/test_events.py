"""Events: typed, numbered, written before anyone sees them; a late or reconnecting consumer replays from a sequence
number and then follows live; another process follows through the store."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from wegent_core import AsyncWegent, Event, TaskError, TaskState, TextDelta
from wegent_core._events import event_from_record
from wegent_core.testing import ScriptedModel
from wegent_storage import SqlStore

from .conftest import collect, team_yaml

pytestmark = pytest.mark.anyio

SLOW = [{"text": "abc", "chunks": ["a", "b", "c"], "delay": 0.3}]


async def test_every_event_a_consumer_sees_is_already_in_the_log(engine) -> None:
    wg, _, task = await engine(SLOW, ["a"])
    async for event in task:
        stored = await wg.engine.db(wg.store.events, task.id, event.seq - 1, 1)
        assert stored
        assert stored[0].seq == event.seq
        assert stored[0].type == event.type


async def test_a_consumer_that_reconnects_resumes_from_its_sequence_number(engine) -> None:
    _, _, task = await engine(SLOW, ["a"])
    first: list[Event] = []
    async for event in task:
        first.append(event)
        if len(first) == 2:
            break  # the connection drops
    rest = [event async for event in task.events(after=first[-1].seq)]
    everything = [e.seq for e in first + rest]
    assert everything == list(range(1, len(everything) + 1))
    assert [e.text for e in rest if isinstance(e, TextDelta)] == ["a", "b", "c"]


async def test_a_late_consumer_gets_the_whole_log(engine) -> None:
    _, _, task = await engine(["done"], ["a"])
    await task.wait()
    late = await collect(task)
    assert [e.seq for e in late] == list(range(1, len(late) + 1))
    assert late[-1].type == "task.status"
    assert late[-1].status is TaskState.COMPLETED


async def test_another_process_follows_through_the_store(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/events.db"
    SqlStore.open(url, upgrade=True).close()
    async with AsyncWegent(url, models={"m": ScriptedModel(SLOW)}) as runner, AsyncWegent(url) as watcher:
        await runner.apply(team_yaml("m", ["a"]))
        task = await runner.run("team", "hi")
        with anyio.fail_after(5):
            seen = [event async for event in await watcher.task(task.id)]
        stored = [event_from_record(r) for r in runner.store.events(task.id)]
    assert seen == stored


async def test_unknown_event_types_read_back_as_plain_events() -> None:
    store = SqlStore.open("sqlite://")
    from wegent_core import TaskRecord

    task = store.create_task(TaskRecord(team="default/t"))
    record = store.append_event(task.id, "from.a.newer.version", {"anything": 1})
    event = event_from_record(record)
    assert (type(event), event.type, event.model_extra) == (Event, "from.a.newer.version", {"anything": 1})
    store.close()


async def test_no_follow_up_when_the_executor_is_deleted_on_completion(engine) -> None:
    wg, model, _ = await engine(["one"], ["a"])
    task = await wg.run("team", "hi", labels={"autoDeleteExecutor": "true"})
    model.add("two")
    await task.wait()
    with pytest.raises(TaskError, match="autoDeleteExecutor"):
        await task.send("more")


@pytest.mark.parametrize(
    ("labels", "age_hours", "allowed"),
    [
        ({}, 100, True),  # no taskType label: no window
        ({"taskType": "chat"}, 1, True),
        ({"taskType": "chat"}, 3, False),
        ({"taskType": "code"}, 23, True),
        ({"taskType": "code"}, 25, False),
        ({"taskType": "chat", "source": "chat_shell"}, 100, True),
    ],
)
async def test_the_append_window_of_upstream(labels: dict, age_hours: int, allowed: bool) -> None:
    from datetime import UTC, datetime, timedelta

    from wegent_core import TaskRecord
    from wegent_core._engine import _check_append_window

    record = TaskRecord(team="default/t", labels=labels, updated_at=datetime.now(UTC) - timedelta(hours=age_hours))
    if allowed:
        _check_append_window(record)
    else:
        with pytest.raises(TaskError, match="Task has expired"):
            _check_append_window(record)
