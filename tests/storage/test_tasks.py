"""The task side of the stores, on every SQL backend and on the memory store: task records with optimistic updates,
subtasks, the event log with its gap-free sequence numbers, and pruning. Last, a property: the memory store and the
SQL store give the same results for the same calls."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pydantic
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, initialize, invariant, rule

from wegent_core._errors import ConflictError, NotFoundError
from wegent_core._memory_store import MemoryStore
from wegent_core._resources import SubtaskState, TaskState
from wegent_core._task_store import PruneReport, SubtaskRecord, TaskRecord, TaskStore
from wegent_storage import _sql_store
from wegent_storage._sql_store import SqlStore

Store = SqlStore | MemoryStore  # the `store` fixture gives each

UNFINISHED = [TaskState.PENDING, TaskState.RUNNING, TaskState.CANCELLING, TaskState.PENDING_CONFIRMATION]
FINISHED = [TaskState.COMPLETED, TaskState.FAILED, TaskState.CANCELLED, TaskState.DELETE]


def new_task(store: Store, **fields: object) -> TaskRecord:
    return store.create_task(TaskRecord.model_validate({"team": "default/t", **fields}))


def finish(store: Store, task: TaskRecord, status: TaskState = TaskState.COMPLETED) -> TaskRecord:
    return store.update_task(task.id, task.version, status=status)


@pytest.fixture
def store(any_store: Store) -> Store:
    """Each SQL backend's store, and a MemoryStore: every test here holds both to the same behaviour."""
    return any_store


def test_both_are_task_stores(store: Store) -> None:
    assert isinstance(store, TaskStore)


# --- tasks --------------------------------------------------------------------------------------------------------


def test_create_assigns_id_name_version_and_timestamps(store: Store) -> None:
    before = datetime.now(UTC)
    task = new_task(store, prompt="hi", labels={"a": "1"}, spec={"model": {"name": "m"}})
    assert task.id is not None
    assert task.name == f"task-{task.id}"
    assert task.version == 1
    assert task.status is TaskState.PENDING
    assert before <= task.created_at == task.updated_at <= datetime.now(UTC)
    assert store.get_task(task.id) == task


def test_a_given_name_is_kept_and_ids_are_unique(store: Store) -> None:
    named = new_task(store, name="nightly")
    other = new_task(store)
    assert named.name == "nightly"
    assert other.id != named.id


def test_a_new_task_has_no_id(store: Store) -> None:
    with pytest.raises(ValueError, match="no id"):
        store.create_task(TaskRecord(id=5, team="default/t"))


def test_get_missing_task_is_none(store: Store) -> None:
    assert store.get_task(12345) is None


def test_records_are_copies(store: Store) -> None:
    spec = {"nested": {"k": "v"}}
    task = new_task(store, spec=spec)
    spec["nested"]["k"] = "changed"
    task.spec["nested"]["k"] = "changed too"
    assert store.get_task(task.id).spec == {"nested": {"k": "v"}}
    updated = store.update_task(task.id, 1, spec={"nested": {"k": "v2"}})
    updated.spec["nested"]["k"] = "changed"
    store.list_tasks()[0].spec["nested"]["k"] = "changed too"
    assert store.get_task(task.id).spec == {"nested": {"k": "v2"}}


def test_list_tasks_newest_first_with_filters(store: Store) -> None:
    a = new_task(store, namespace="x")
    b = new_task(store)
    c = new_task(store, namespace="x")
    finish(store, c)
    assert [t.id for t in store.list_tasks()] == [c.id, b.id, a.id]
    assert [t.id for t in store.list_tasks(namespace="x")] == [c.id, a.id]
    assert [t.id for t in store.list_tasks(status=TaskState.PENDING)] == [b.id, a.id]
    assert [t.id for t in store.list_tasks(namespace="x", status=TaskState.COMPLETED)] == [c.id]
    assert [t.id for t in store.list_tasks(limit=2)] == [c.id, b.id]


def test_update_bumps_the_version_and_keeps_created_at(store: Store) -> None:
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


def test_a_stale_update_is_a_conflict_that_changes_nothing(store: Store) -> None:
    task = new_task(store)
    store.update_task(task.id, 1, progress=10)
    with pytest.raises(ConflictError, match=rf"^task {task.id} was changed since it was read \(version 1, now 2\)$"):
        store.update_task(task.id, 1, progress=50)
    assert store.get_task(task.id).progress == 10


def test_updating_a_missing_task_is_not_found(store: Store) -> None:
    with pytest.raises(NotFoundError, match="task 999 not found"):
        store.update_task(999, 1, progress=1)


def test_an_update_from_a_base_record_is_checked_like_any_other(store: Store) -> None:
    task = new_task(store)
    moved = store.update_task(task.id, 1, base=task, progress=10)
    assert (moved.version, moved.progress) == (2, 10)
    assert store.get_task(task.id) == moved
    with pytest.raises(ConflictError, match=r"version 1, now 2"):  # a base of an old version changes nothing
        store.update_task(task.id, 1, base=task, progress=50)
    with pytest.raises(ConflictError, match=r"version 1, now 2"):  # nor does a base that says it is current
        store.update_task(task.id, 1, base=moved.model_copy(update={"version": 1}), progress=50)
    assert store.get_task(task.id) == moved
    with pytest.raises(NotFoundError, match="task 999 not found"):
        store.update_task(999, 2, base=moved.model_copy(update={"id": 999}), progress=1)


def test_a_subtask_update_from_a_stale_base_keeps_what_is_stored(store: Store) -> None:
    task = new_task(store)
    added = store.add_subtask(SubtaskRecord(task_id=task.id, message_id=1, role="ASSISTANT"))
    running = store.update_subtask(added.id, base=added, status=SubtaskState.RUNNING, progress=5)
    assert store.subtasks(task.id) == [running]
    # another writer completed it meanwhile: a write from the old base merges onto what is stored
    store.update_subtask(added.id, status=SubtaskState.COMPLETED, result={"value": "done"})
    merged = store.update_subtask(added.id, base=running, progress=100)
    assert (merged.status, merged.result, merged.progress) == (SubtaskState.COMPLETED, {"value": "done"}, 100)
    assert store.subtasks(task.id) == [merged]


@pytest.mark.parametrize("field", ["id", "version", "created_at", "updated_at"])
def test_store_managed_task_fields_cannot_be_changed(store: Store, field: str) -> None:
    task = new_task(store)
    with pytest.raises(ValueError, match=f"cannot change {field}"):
        store.update_task(task.id, 1, **{field: 1})


def test_invalid_changes_are_refused(store: Store) -> None:
    task = new_task(store)
    with pytest.raises(pydantic.ValidationError):
        store.update_task(task.id, 1, no_such_field=1)
    with pytest.raises(pydantic.ValidationError):
        store.update_task(task.id, 1, progress=101)
    assert store.get_task(task.id).version == 1


def test_concurrent_optimistic_updates_lose_nothing(
    store: Store, run_together: Callable[[int, Callable[[int], None]], None]
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


def test_subtasks_in_message_order(store: Store) -> None:
    task = new_task(store)
    second = store.add_subtask(SubtaskRecord(task_id=task.id, message_id=2, parent_id=1, role="ASSISTANT", bot="d/b"))
    first = store.add_subtask(SubtaskRecord(task_id=task.id, message_id=1, role="USER", prompt="hi"))
    assert first.id is not None
    assert second.id is not None
    assert first.created_at is not None
    assert store.subtasks(task.id) == [first, second]
    assert store.subtasks(task.id + 1000) == []


def test_a_message_id_is_unique_within_a_task(store: Store) -> None:
    task, other = new_task(store), new_task(store)
    store.add_subtask(SubtaskRecord(task_id=task.id, message_id=1, role="USER"))
    store.add_subtask(SubtaskRecord(task_id=other.id, message_id=1, role="USER"))  # another task: fine
    with pytest.raises(ConflictError, match=f"task {task.id} already has a subtask with message_id 1"):
        store.add_subtask(SubtaskRecord(task_id=task.id, message_id=1, role="ASSISTANT"))
    assert len(store.subtasks(task.id)) == 1


def test_a_subtask_needs_its_task(store: Store) -> None:
    with pytest.raises(NotFoundError, match="task 4242 not found"):
        store.add_subtask(SubtaskRecord(task_id=4242, message_id=1, role="USER"))


def test_update_subtask(store: Store) -> None:
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


def test_events_are_numbered_from_one_per_task(store: Store) -> None:
    a, b = new_task(store), new_task(store)
    first = store.append_event(a.id, "task.status", {"status": "RUNNING"})
    store.append_event(b.id, "text", {"delta": "x"})
    second = store.append_event(a.id, "text", {"delta": "hé ✓", "nested": {"list": [1, 2.5, None, True]}}, 7)
    assert (first.seq, second.seq) == (1, 2)
    assert second.subtask_id == 7
    assert second.created_at is not None
    assert store.events(a.id) == [first, second]
    assert [e.seq for e in store.events(b.id)] == [1]


def test_events_after_and_limit(store: Store) -> None:
    task = new_task(store)
    for i in range(10):
        store.append_event(task.id, "n", {"i": i})
    assert [e.seq for e in store.events(task.id, after=7)] == [8, 9, 10]
    assert [e.seq for e in store.events(task.id, after=2, limit=3)] == [3, 4, 5]
    assert store.events(task.id, after=10) == []
    assert [e.data["i"] for e in store.events(task.id, limit=2)] == [0, 1]


def test_appending_to_a_missing_task_is_not_found(store: Store) -> None:
    with pytest.raises(NotFoundError, match="task 777 not found"):
        store.append_event(777, "x", {})
    with pytest.raises(NotFoundError):
        store.append_events(777, [("x", {})])


def test_append_events_numbers_a_batch_consecutively(store: Store) -> None:
    task = new_task(store)
    store.append_event(task.id, "first", {})
    batch = store.append_events(task.id, [("a", {"k": 1}), ("b", {"k": 2}, 3)])
    assert [(e.seq, e.type, e.subtask_id) for e in batch] == [(2, "a", None), (3, "b", 3)]
    assert store.append_events(task.id, []) == []
    assert store.append_event(task.id, "last", {}).seq == 4
    assert store.events(task.id)[1:3] == batch


def test_event_data_must_be_json(store: Store) -> None:
    task = new_task(store)
    with pytest.raises(TypeError):
        store.append_event(task.id, "x", {"when": datetime.now(UTC)})
    with pytest.raises(TypeError, match="must be a dict"):
        store.append_events(task.id, [("x", ["not", "a", "dict"])])
    assert store.events(task.id) == []


def test_bad_event_types_and_limits_are_refused_before_anything_is_written(store: Store) -> None:
    task = new_task(store)
    for bad in (5, "", None):
        with pytest.raises(TypeError, match="an event type is a non-empty string"):
            store.append_events(task.id, [("ok", {}), (bad, {})])
    assert store.events(task.id) == []
    with pytest.raises(ValueError, match="limit must be 0 or more, got -1"):
        store.events(task.id, limit=-1)
    with pytest.raises(ValueError, match="limit must be 0 or more, got -1"):
        store.list_tasks(limit=-1)


def test_returned_events_are_copies(store: Store) -> None:
    task = new_task(store)
    data = {"nested": {"k": "v"}}
    event = store.append_event(task.id, "x", data)
    data["nested"]["k"] = "changed"
    event.data["nested"]["k"] = "changed too"
    assert store.events(task.id)[0].data == {"nested": {"k": "v"}}


def test_concurrent_appenders_get_gap_free_numbers(
    store: Store, run_together: Callable[[int, Callable[[int], None]], None]
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


# --- batches ------------------------------------------------------------------------------------------------------


def test_a_batch_is_all_or_nothing(store: Store) -> None:
    task = new_task(store)

    def fail() -> None:
        store.update_task(task.id, 1, progress=50)
        store.add_subtask(SubtaskRecord(task_id=task.id, message_id=1, role="USER"))
        store.append_events(task.id, [("a", {}), ("b", {})])
        new_task(store)
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        store.batch(fail)
    assert store.list_tasks() == [task]
    assert store.subtasks(task.id) == []
    assert store.events(task.id) == []

    def succeed() -> int:
        store.update_task(task.id, 1, progress=50)
        return store.batch(lambda: store.append_event(task.id, "a", {}).seq)  # a batch inside is part of it

    assert store.batch(succeed) == 1  # numbered as if the undone events had never been
    assert store.get_task(task.id).progress == 50
    assert [e.type for e in store.events(task.id)] == ["a"]


def test_a_batch_inside_a_batch_is_a_savepoint(store: Store) -> None:
    """An inner batch that fails undoes its own writes only; the outer one goes on and commits (on PostgreSQL too,
    where a failed statement would otherwise abort the whole transaction)."""
    task = new_task(store)
    store.add_subtask(SubtaskRecord(task_id=task.id, message_id=1, role="USER"))

    def duplicate() -> None:
        store.append_event(task.id, "undone", {})
        store.add_subtask(SubtaskRecord(task_id=task.id, message_id=1, role="USER"))  # taken: a conflict

    def outer() -> None:
        store.append_event(task.id, "kept", {})
        with pytest.raises(ConflictError):
            store.batch(duplicate)
        store.append_event(task.id, "after", {})

    store.batch(outer)
    assert [(e.seq, e.type) for e in store.events(task.id)] == [(1, "kept"), (2, "after")]


# --- pruning ------------------------------------------------------------------------------------------------------


def with_history(store: Store, task: TaskRecord, events: int = 2) -> None:
    store.add_subtask(SubtaskRecord(task_id=task.id, message_id=1, role="USER"))
    store.append_events(task.id, [("e", {})] * events)


def test_prune_by_age_removes_only_old_finished_tasks(store: Store) -> None:
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


def test_prune_by_count_keeps_the_newest_finished(store: Store) -> None:
    finished = [finish(store, new_task(store)) for _ in range(5)]
    waiting = new_task(store, status=TaskState.PENDING_CONFIRMATION)
    with_history(store, waiting)
    report = store.prune(keep_last=2)
    assert report.tasks == 3
    assert {t.id for t in store.list_tasks()} == {finished[3].id, finished[4].id, waiting.id}
    assert len(store.events(waiting.id)) == 2


def test_prune_with_both_rules_removes_only_what_both_name(store: Store) -> None:
    old = finish(store, new_task(store))
    cutoff = datetime.now(UTC)
    newer = [finish(store, new_task(store)) for _ in range(3)]
    assert store.prune(older_than=cutoff, keep_last=5).tasks == 0  # `old` is among the newest five: it stays
    assert store.prune(older_than=cutoff, keep_last=2).tasks == 1  # only `old` is both old and beyond the newest two
    assert {t.id for t in store.list_tasks()} == {t.id for t in newer}
    assert old.id not in {t.id for t in store.list_tasks()}


def test_prune_never_touches_unfinished_tasks(store: Store) -> None:
    waiting = [new_task(store, status=status) for status in UNFINISHED]
    for task in waiting:
        with_history(store, task)
    report = store.prune(older_than=datetime.now(UTC) + timedelta(days=1), keep_last=0)
    assert report == PruneReport()
    assert len(store.list_tasks()) == len(UNFINISHED)
    assert all(len(store.events(t.id)) == 2 for t in waiting)


def test_prune_works_in_batches(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    if not isinstance(store, SqlStore):
        pytest.skip("SQL only: the memory store prunes in one step, there are no batches to shrink")
    monkeypatch.setattr(_sql_store, "_PRUNE_BATCH", 2)
    for _ in range(5):
        with_history(store, finish(store, new_task(store)), events=1)
    assert store.prune(keep_last=0) == PruneReport(tasks=5, subtasks=5, events=5)
    assert store.list_tasks() == []


def test_prune_arguments(store: Store) -> None:
    assert store.prune() == PruneReport()
    with pytest.raises(ValueError, match="keep_last"):
        store.prune(keep_last=-1)
    with pytest.raises(ValueError, match="timezone-aware"):
        store.prune(older_than=datetime.now())


def test_the_id_of_a_pruned_task_never_comes_back(store: Store) -> None:
    """A client holding the id of a pruned task must not find another task under it (SQLite on its own would hand
    out the highest id plus one again)."""
    first = finish(store, new_task(store))
    pruned = finish(store, new_task(store))
    store.prune(keep_last=0)
    assert new_task(store).id > pruned.id > first.id


def test_a_pruned_task_is_gone(store: Store) -> None:
    task = finish(store, new_task(store))
    store.prune(keep_last=0)
    assert store.get_task(task.id) is None
    with pytest.raises(NotFoundError):
        store.append_event(task.id, "late", {})


# --- the memory store agrees with the SQL store --------------------------------------------------------------------

MISSING = 999  # a task or subtask id that is never assigned
_text = st.text(st.sampled_from("ab é✓"), max_size=4)
_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.floats(allow_nan=False, allow_infinity=False) | _text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_text, inner, max_size=3),
    max_leaves=6,
)
_objects = st.dictionaries(_text, _json, max_size=3)
_moments = st.none() | st.datetimes(timezones=st.just(UTC))
_task_changes = st.fixed_dictionaries(
    {},
    optional={
        "status": st.sampled_from(TaskState),
        "progress": st.integers(-1, 101),  # the ends are invalid: both must refuse them alike
        "current_stage": st.integers(0, 3),
        "title": _text,
        "namespace": st.sampled_from(["default", "x"]),
        "name": st.none() | _text,
        "labels": st.dictionaries(_text, _text, max_size=2),
        "spec": _objects,
        "result": st.none() | _objects,
        "error_message": st.none() | _text,
        "completed_at": _moments,
    },
)
_subtask_changes = st.fixed_dictionaries(
    {},
    optional={
        "status": st.sampled_from(SubtaskState),
        "progress": st.integers(-1, 101),
        "bot": st.none() | _text,
        "stage": st.none() | st.integers(0, 3),
        "result": st.none() | _objects,
        "error_message": st.none() | _text,
        "completed_at": _moments,
    },
)
_event_items = st.lists(
    st.tuples(_text, _objects) | st.tuples(_text, _objects, st.none() | st.integers(1, 4)), max_size=3
)


def _seen(value: object) -> object:
    """What a caller can compare across stores: records without their store-made timestamps."""
    if isinstance(value, list):
        return [_seen(v) for v in value]
    if isinstance(value, pydantic.BaseModel):
        return value.model_dump(exclude={"created_at", "updated_at"})
    return value


class MemoryAgreesWithSql(RuleBasedStateMachine):
    """The same calls on a MemoryStore and on a SqlStore in SQLite's memory: the same results and the same errors.

    Nothing is pruned: SQLite may hand a pruned task's id out again, the memory store never does (nor do the
    servers), so the ids would part."""

    tasks = Bundle("tasks")

    @initialize()
    def start(self) -> None:
        self.stores: tuple[Store, Store] = (MemoryStore(), SqlStore.open("sqlite://"))
        self.touched: set[int] = set()  # tasks whose subtasks or events may have changed since the last check

    def teardown(self) -> None:
        if hasattr(self, "stores"):
            self.stores[1].close()

    def both(self, call: Callable[[Store], Any]) -> Any:
        """`call` on each store: the same outcome, a result or an error."""
        outcomes = []
        for store in self.stores:
            try:
                outcomes.append(("result", _seen(call(store))))
            except Exception as error:
                outcomes.append((type(error).__name__, str(error)))
        assert outcomes[0] == outcomes[1]
        return outcomes[0][1]

    @rule(
        target=tasks,
        namespace=st.sampled_from(["default", "x"]),
        name=st.none() | _text,
        status=st.sampled_from(TaskState),
        prompt=_text,
        spec=_objects,
    )
    def create_task(self, namespace: str, name: str | None, status: TaskState, prompt: str, spec: dict) -> int:
        task = TaskRecord(team="default/t", namespace=namespace, name=name, status=status, prompt=prompt, spec=spec)
        return self.both(lambda s: s.create_task(task))["id"]

    @rule(task=tasks | st.just(MISSING), changes=_task_changes, stale=st.sampled_from([0, 0, -1, 1]))
    def update_task(self, task: int, changes: dict[str, Any], stale: int) -> None:
        current = self.stores[0].get_task(task)
        version = (1 if current is None else current.version) + stale
        self.both(lambda s: s.update_task(task, version, **changes))

    @rule(
        task=tasks | st.just(MISSING),
        message_id=st.integers(1, 3),  # repeats are conflicts
        role=st.sampled_from(["USER", "ASSISTANT"]),
        parent_id=st.none() | st.integers(1, 2),
        prompt=_text,
    )
    def add_subtask(self, task: int, message_id: int, role: str, parent_id: int | None, prompt: str) -> None:
        subtask = SubtaskRecord(task_id=task, message_id=message_id, role=role, parent_id=parent_id, prompt=prompt)
        self.both(lambda s: s.add_subtask(subtask))
        self.touched.add(task)

    @rule(subtask=st.integers(1, 6), changes=_subtask_changes)
    def update_subtask(self, subtask: int, changes: dict[str, Any]) -> None:
        updated = self.both(lambda s: s.update_subtask(subtask, **changes))
        if isinstance(updated, dict):
            self.touched.add(updated["task_id"])

    @rule(task=tasks | st.just(MISSING), type=_text, data=_objects, subtask=st.none() | st.integers(1, 4))
    def append_event(self, task: int, type: str, data: dict[str, Any], subtask: int | None) -> None:
        self.both(lambda s: s.append_event(task, type, data, subtask))
        self.touched.add(task)

    @rule(task=tasks | st.just(MISSING), items=_event_items)
    def append_events(self, task: int, items: list[tuple[Any, ...]]) -> None:
        self.both(lambda s: s.append_events(task, items))
        self.touched.add(task)

    @rule(
        task=tasks | st.just(MISSING),
        after=st.integers(-1, 6),
        limit=st.none() | st.integers(0, 3),
        namespace=st.none() | st.sampled_from(["default", "x"]),
        status=st.none() | st.sampled_from(TaskState),
    )
    def read(self, task: int, after: int, limit: int | None, namespace: str | None, status: TaskState | None) -> None:
        self.both(lambda s: s.get_task(task))
        self.both(lambda s: s.events(task, after=after, limit=limit))
        self.both(lambda s: s.list_tasks(namespace=namespace, status=status, limit=limit))

    @invariant()
    def same_contents(self) -> None:
        if not hasattr(self, "stores"):
            return
        self.both(lambda s: s.list_tasks())  # every task record
        for task in self.touched:
            self.both(lambda s, task=task: s.subtasks(task))
            self.both(lambda s, task=task: s.events(task))
        self.touched.clear()


MemoryAgreesWithSql.TestCase.settings = settings(
    max_examples=50, stateful_step_count=30, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
TestMemoryAgreesWithSql = MemoryAgreesWithSql.TestCase
