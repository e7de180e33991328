"""The task side of the SQL store, on every backend: task records with optimistic updates, subtasks, the event log
with its gap-free sequence numbers, and pruning."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pydantic
import pytest

from wegent_core._errors import ConflictError, NotFoundError
from wegent_core._resources import SubtaskState, TaskState
from wegent_core._task_store import PruneReport, SubtaskRecord, TaskRecord
from wegent_storage import _sql_store
from wegent_storage._sql_store import SqlStore

UNFINISHED = [TaskState.PENDING, TaskState.RUNNING, TaskState.CANCELLING, TaskState.PENDING_CONFIRMATION]
FINISHED = [TaskState.COMPLETED, TaskState.FAILED, TaskState.CANCELLED, TaskState.DELETE]


def new_task(store: SqlStore, **fields: object) -> TaskRecord:
    return store.create_task(TaskRecord.model_validate({"team": "default/t", **fields}))


def finish(store: SqlStore, task: TaskRecord, status: TaskState = TaskState.COMPLETED) -> TaskRecord:
    return store.update_task(task.id, task.version, status=status)


# --- tasks --------------------------------------------------------------------------------------------------------


def test_create_assigns_id_name_version_and_timestamps(store: SqlStore) -> None:
    before = datetime.now(UTC)
    task = new_task(store, prompt="hi", labels={"a": "1"}, spec={"model": {"name": "m"}})
    assert task.id is not None
    assert task.name == f"task-{task.id}"
    assert task.version == 1
    assert task.status is TaskState.PENDING
    assert before <= task.created_at == task.updated_at <= datetime.now(UTC)
    assert store.get_task(task.id) == task


def test_a_given_name_is_kept_and_ids_are_unique(store: SqlStore) -> None:
    named = new_task(store, name="nightly")
    other = new_task(store)
    assert named.name == "nightly"
    assert other.id != named.id


def test_a_new_task_has_no_id(store: SqlStore) -> None:
    with pytest.raises(ValueError, match="no id"):
        store.create_task(TaskRecord(id=5, team="default/t"))


def test_get_missing_task_is_none(store: SqlStore) -> None:
    assert store.get_task(12345) is None


def test_records_are_copies(store: SqlStore) -> None:
    spec = {"nested": {"k": "v"}}
    task = new_task(store, spec=spec)
    spec["nested"]["k"] = "changed"
    task.spec["nested"]["k"] = "changed too"
    assert store.get_task(task.id).spec == {"nested": {"k": "v"}}


def test_list_tasks_newest_first_with_filters(store: SqlStore) -> None:
    a = new_task(store, namespace="x")
    b = new_task(store)
    c = new_task(store, namespace="x")
    finish(store, c)
    assert [t.id for t in store.list_tasks()] == [c.id, b.id, a.id]
    assert [t.id for t in store.list_tasks(namespace="x")] == [c.id, a.id]
    assert [t.id for t in store.list_tasks(status=TaskState.PENDING)] == [b.id, a.id]
    assert [t.id for t in store.list_tasks(namespace="x", status=TaskState.COMPLETED)] == [c.id]
    assert [t.id for t in store.list_tasks(limit=2)] == [c.id, b.id]


def test_update_bumps_the_version_and_keeps_created_at(store: SqlStore) -> None:
    task = new_task(store)
    done_at = datetime.now(UTC)
    updated = store.update_task(
        task.id, 1, status=TaskState.COMPLETED, progress=100, result={"value": "ok"}, completed_at=done_at
    )
    assert updated.version == 2
    assert updated.created_at == task.created_at
    assert updated.updated_at >= task.updated_at
    assert (updated.status, updated.progress, updated.result) == (TaskState.COMPLETED, 100, {"value": "ok"})
    assert store.get_task(task.id) == updated


def test_a_stale_update_is_a_conflict_that_changes_nothing(store: SqlStore) -> None:
    task = new_task(store)
    store.update_task(task.id, 1, progress=10)
    with pytest.raises(ConflictError, match=rf"^task {task.id} was changed since it was read \(version 1, now 2\)$"):
        store.update_task(task.id, 1, progress=50)
    assert store.get_task(task.id).progress == 10


def test_updating_a_missing_task_is_not_found(store: SqlStore) -> None:
    with pytest.raises(NotFoundError, match="task 999 not found"):
        store.update_task(999, 1, progress=1)


@pytest.mark.parametrize("field", ["id", "version", "created_at", "updated_at"])
def test_store_managed_task_fields_cannot_be_changed(store: SqlStore, field: str) -> None:
    task = new_task(store)
    with pytest.raises(ValueError, match=f"cannot change {field}"):
        store.update_task(task.id, 1, **{field: 1})


def test_invalid_changes_are_refused(store: SqlStore) -> None:
    task = new_task(store)
    with pytest.raises(pydantic.ValidationError):
        store.update_task(task.id, 1, no_such_field=1)
    with pytest.raises(pydantic.ValidationError):
        store.update_task(task.id, 1, progress=101)
    assert store.get_task(task.id).version == 1


def test_concurrent_optimistic_updates_lose_nothing(
    store: SqlStore, run_together: Callable[[int, Callable[[int], None]], None]
) -> None:
    task = new_task(store)
    workers, each = 4, 10

    def bump(_: int) -> None:
        for _ in range(each):
            while True:
                current = store.get_task(task.id)
                try:
                    store.update_task(task.id, current.version, current_stage=current.current_stage + 1)
                    break
                except ConflictError:
                    continue

    run_together(workers, bump)
    final = store.get_task(task.id)
    assert final.current_stage == workers * each
    assert final.version == 1 + workers * each


# --- subtasks -----------------------------------------------------------------------------------------------------


def test_subtasks_in_message_order(store: SqlStore) -> None:
    task = new_task(store)
    second = store.add_subtask(SubtaskRecord(task_id=task.id, message_id=2, parent_id=1, role="ASSISTANT", bot="d/b"))
    first = store.add_subtask(SubtaskRecord(task_id=task.id, message_id=1, role="USER", prompt="hi"))
    assert first.id is not None
    assert second.id is not None
    assert first.created_at is not None
    assert store.subtasks(task.id) == [first, second]
    assert store.subtasks(task.id + 1000) == []


def test_a_message_id_is_unique_within_a_task(store: SqlStore) -> None:
    task, other = new_task(store), new_task(store)
    store.add_subtask(SubtaskRecord(task_id=task.id, message_id=1, role="USER"))
    store.add_subtask(SubtaskRecord(task_id=other.id, message_id=1, role="USER"))  # another task: fine
    with pytest.raises(ConflictError, match=f"task {task.id} already has a subtask with message_id 1"):
        store.add_subtask(SubtaskRecord(task_id=task.id, message_id=1, role="ASSISTANT"))
    assert len(store.subtasks(task.id)) == 1


def test_a_subtask_needs_its_task(store: SqlStore) -> None:
    with pytest.raises(NotFoundError, match="task 4242 not found"):
        store.add_subtask(SubtaskRecord(task_id=4242, message_id=1, role="USER"))


def test_update_subtask(store: SqlStore) -> None:
    task = new_task(store)
    added = store.add_subtask(SubtaskRecord(task_id=task.id, message_id=1, role="ASSISTANT"))
    updated = store.update_subtask(added.id, status=SubtaskState.COMPLETED, progress=100, result={"value": "done"})
    assert updated.status is SubtaskState.COMPLETED
    assert updated.created_at == added.created_at
    assert updated.updated_at >= added.updated_at
    assert store.subtasks(task.id) == [updated]
    with pytest.raises(NotFoundError, match="subtask 999 not found"):
        store.update_subtask(999, progress=1)
    with pytest.raises(ValueError, match="cannot change message_id, task_id"):
        store.update_subtask(added.id, task_id=2, message_id=3)


# --- events -------------------------------------------------------------------------------------------------------


def test_events_are_numbered_from_one_per_task(store: SqlStore) -> None:
    a, b = new_task(store), new_task(store)
    first = store.append_event(a.id, "task.status", {"status": "RUNNING"})
    store.append_event(b.id, "text", {"delta": "x"})
    second = store.append_event(a.id, "text", {"delta": "hé ✓", "nested": {"list": [1, 2.5, None, True]}}, 7)
    assert (first.seq, second.seq) == (1, 2)
    assert second.subtask_id == 7
    assert second.created_at is not None
    assert store.events(a.id) == [first, second]
    assert [e.seq for e in store.events(b.id)] == [1]


def test_events_after_and_limit(store: SqlStore) -> None:
    task = new_task(store)
    for i in range(10):
        store.append_event(task.id, "n", {"i": i})
    assert [e.seq for e in store.events(task.id, after=7)] == [8, 9, 10]
    assert [e.seq for e in store.events(task.id, after=2, limit=3)] == [3, 4, 5]
    assert store.events(task.id, after=10) == []
    assert [e.data["i"] for e in store.events(task.id, limit=2)] == [0, 1]


def test_appending_to_a_missing_task_is_not_found(store: SqlStore) -> None:
    with pytest.raises(NotFoundError, match="task 777 not found"):
        store.append_event(777, "x", {})
    with pytest.raises(NotFoundError):
        store.append_events(777, [("x", {})])


def test_append_events_numbers_a_batch_consecutively(store: SqlStore) -> None:
    task = new_task(store)
    store.append_event(task.id, "first", {})
    batch = store.append_events(task.id, [("a", {"k": 1}), ("b", {"k": 2}, 3)])
    assert [(e.seq, e.type, e.subtask_id) for e in batch] == [(2, "a", None), (3, "b", 3)]
    assert store.append_events(task.id, []) == []
    assert store.append_event(task.id, "last", {}).seq == 4
    assert store.events(task.id)[1:3] == batch


def test_event_data_must_be_json(store: SqlStore) -> None:
    task = new_task(store)
    with pytest.raises(TypeError):
        store.append_event(task.id, "x", {"when": datetime.now(UTC)})
    with pytest.raises(TypeError, match="must be a dict"):
        store.append_events(task.id, [("x", ["not", "a", "dict"])])
    assert store.events(task.id) == []


def test_returned_events_are_copies(store: SqlStore) -> None:
    task = new_task(store)
    data = {"nested": {"k": "v"}}
    event = store.append_event(task.id, "x", data)
    data["nested"]["k"] = "changed"
    event.data["nested"]["k"] = "changed too"
    assert store.events(task.id)[0].data == {"nested": {"k": "v"}}


def test_concurrent_appenders_get_gap_free_numbers(
    store: SqlStore, run_together: Callable[[int, Callable[[int], None]], None]
) -> None:
    task = new_task(store)
    workers, each = 8, 25
    seen: dict[int, list[int]] = {}

    def append(worker: int) -> None:
        mine = []
        for i in range(each):
            if i % 5 == 4:
                mine += [e.seq for e in store.append_events(task.id, [("b", {"w": worker}), ("b", {"w": worker})])]
            else:
                mine.append(store.append_event(task.id, "s", {"w": worker, "i": i}).seq)
        seen[worker] = mine

    run_together(workers, append)
    logged = store.events(task.id)
    total = workers * (each + each // 5)
    assert [e.seq for e in logged] == list(range(1, total + 1))
    for worker, mine in seen.items():
        assert mine == sorted(mine)
        assert sorted(e.seq for e in logged if e.data["w"] == worker) == mine


# --- pruning ------------------------------------------------------------------------------------------------------


def with_history(store: SqlStore, task: TaskRecord, events: int = 2) -> None:
    store.add_subtask(SubtaskRecord(task_id=task.id, message_id=1, role="USER"))
    store.append_events(task.id, [("e", {})] * events)


def test_prune_by_age_removes_only_old_finished_tasks(store: SqlStore) -> None:
    old = [new_task(store) for _ in FINISHED]
    for task, status in zip(old, FINISHED, strict=True):
        with_history(store, task, events=3)
        finish(store, task, status)
    waiting = [new_task(store, status=status) for status in UNFINISHED]  # old, but never finished
    cutoff = datetime.now(UTC)
    recent = finish(store, new_task(store))

    report = store.prune(older_than=cutoff)
    assert report == PruneReport(tasks=4, subtasks=4, events=12)
    remaining = {t.id for t in store.list_tasks()}
    assert remaining == {t.id for t in waiting} | {recent.id}
    for task in old:
        assert store.subtasks(task.id) == []
        assert store.events(task.id) == []
    assert store.prune(older_than=cutoff) == PruneReport()


def test_prune_by_count_keeps_the_newest_finished(store: SqlStore) -> None:
    finished = [finish(store, new_task(store)) for _ in range(5)]
    waiting = new_task(store, status=TaskState.PENDING_CONFIRMATION)
    with_history(store, waiting)
    report = store.prune(keep_last=2)
    assert report.tasks == 3
    assert {t.id for t in store.list_tasks()} == {finished[3].id, finished[4].id, waiting.id}
    assert len(store.events(waiting.id)) == 2


def test_prune_with_both_rules_removes_only_what_both_name(store: SqlStore) -> None:
    old = finish(store, new_task(store))
    cutoff = datetime.now(UTC)
    newer = [finish(store, new_task(store)) for _ in range(3)]
    assert store.prune(older_than=cutoff, keep_last=5).tasks == 0  # `old` is among the newest five: it stays
    assert store.prune(older_than=cutoff, keep_last=2).tasks == 1  # only `old` is both old and beyond the newest two
    assert {t.id for t in store.list_tasks()} == {t.id for t in newer}
    assert old.id not in {t.id for t in store.list_tasks()}


def test_prune_never_touches_unfinished_tasks(store: SqlStore) -> None:
    waiting = [new_task(store, status=status) for status in UNFINISHED]
    for task in waiting:
        with_history(store, task)
    report = store.prune(older_than=datetime.now(UTC) + timedelta(days=1), keep_last=0)
    assert report == PruneReport()
    assert len(store.list_tasks()) == len(UNFINISHED)
    assert all(len(store.events(t.id)) == 2 for t in waiting)


def test_prune_works_in_batches(store: SqlStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_sql_store, "_PRUNE_BATCH", 2)
    for _ in range(5):
        with_history(store, finish(store, new_task(store)), events=1)
    assert store.prune(keep_last=0) == PruneReport(tasks=5, subtasks=5, events=5)
    assert store.list_tasks() == []


def test_prune_arguments(store: SqlStore) -> None:
    assert store.prune() == PruneReport()
    with pytest.raises(ValueError, match="keep_last"):
        store.prune(keep_last=-1)
    with pytest.raises(ValueError, match="timezone-aware"):
        store.prune(older_than=datetime.now())


def test_a_pruned_task_is_gone(store: SqlStore) -> None:
    task = finish(store, new_task(store))
    store.prune(keep_last=0)
    assert store.get_task(task.id) is None
    with pytest.raises(NotFoundError):
        store.append_event(task.id, "late", {})
