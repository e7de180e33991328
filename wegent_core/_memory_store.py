"""The in-process store (resources and tasks), and the plugin that registers it under the URL scheme `memory://`.

This module is itself the plugin object: pyproject's `wegent` entry point `memory-store` names it.
"""

from __future__ import annotations

import builtins
import json
import threading
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple, TypeVar

from ._errors import ConflictError, NotFoundError
from ._hookspecs import Register, hookimpl
from ._lifecycle import FINISHED
from ._resources import Resource, TaskState
from ._selectors import LabelSelector
from ._store import SelectorLike, check_version, not_found, same_content
from ._task_store import (
    EventItem,
    EventRecord,
    PruneReport,
    Record,
    SubtaskRecord,
    TaskRecord,
    check_limit,
    checked_event,
    refuse_managed,
)

T = TypeVar("T")
RecordT = TypeVar("RecordT", bound=Record)
_Key = tuple[str, str, str]  # (namespace, kind, name)


class _Logged(NamedTuple):
    """An event as logged: its data as JSON text, so every read parses a private copy (as the SQL store does)."""

    seq: int
    type: str
    subtask_id: int | None
    created_at: datetime
    text: str


class MemoryStore:
    """A `ResourceStore` and a `TaskStore` in dicts; thread-safe. Nothing persists.

    It behaves as the SQL store does (wegent_storage._sql_store): the same copies, versions, ids, ordering and errors.
    Stored objects are private and never mutated once stored (a put or an update stores a new object; event logs
    only grow), so reads copy them outside the lock: the lock guards only the dicts, the logs and the counters. It is
    reentrant so that `batch` can hold it around the calls of its work.
    """

    blocking = False  # every call is quick and never waits on I/O: the engine calls it on the event loop

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._resources: dict[_Key, Resource] = {}
        self._revision = 0
        self._tasks: dict[int, TaskRecord] = {}  # in id order, so newest last
        self._messages: dict[int, dict[int, int]] = {}  # task id -> {message_id: subtask id}, replaced on change
        self._subtasks: dict[int, SubtaskRecord] = {}
        self._logs: dict[int, list[_Logged]] = {}  # task id -> its events; an event's seq is its index + 1
        # Ids are never reused, even after pruning: a stale reference to a pruned task must not find another one.
        self._last_task_id = 0
        self._last_subtask_id = 0

    @classmethod
    def from_resources(cls, resources: Iterable[Resource]) -> MemoryStore:
        """A store holding the given resources (a later one replaces an earlier one with the same key).

        A new store has no history, so any resource versions the resources carry (from a dump of another store,
        say) are ignored rather than checked.
        """
        store = cls()
        with store._lock:
            for resource in resources:
                store._store(resource, expected_version=None)
        return store

    @classmethod
    def from_url(cls, url: str) -> MemoryStore:
        if url != "memory://":
            raise ValueError(f"the memory store takes the URL 'memory://', got {url!r}")
        return cls()

    def get(self, kind: str, name: str, namespace: str = "default") -> Resource | None:
        with self._lock:
            found = self._resources.get((namespace, kind, name))
        return None if found is None else found.clone()

    def list(
        self, kind: str | None = None, namespace: str | None = None, selector: SelectorLike | None = None
    ) -> builtins.list[Resource]:
        wanted = LabelSelector.coerce(selector)  # a bad selector fails before taking the lock
        with self._lock:
            snapshot = [*self._resources.values()]
        chosen = [
            r
            for r in snapshot
            if (kind is None or r.kind == kind)
            and (namespace is None or r.metadata.namespace == namespace)
            and wanted.matches(r.metadata.labels)
        ]
        chosen.sort(key=lambda r: r.key)
        return [r.clone() for r in chosen]

    def put(self, resource: Resource) -> Resource:
        return self.put_many([resource])[0]

    def put_many(self, resources: Iterable[Resource]) -> builtins.list[Resource]:
        batch = builtins.list(resources)
        with self._lock:
            saved = (dict(self._resources), self._revision)  # all or nothing: undo on the first error
            try:
                stored = [self._store(r, expected_version=r.metadata.resource_version) for r in batch]
            except BaseException:
                self._resources, self._revision = saved
                raise
        return [r.clone() for r in stored]

    def delete(
        self, kind: str, name: str, namespace: str = "default", *, resource_version: str | None = None
    ) -> Resource:
        key = (namespace, kind, name)
        with self._lock:
            current = self._resources.get(key)
            if current is None:
                raise not_found(kind, name, namespace)
            check_version(current, key, resource_version)
            del self._resources[key]
            self._revision += 1  # a delete is a change too (as in etcd): `revision()` moves
        return current  # the store no longer holds it, so the caller may have it without a copy

    def revision(self) -> int:
        """The store-wide revision: it moves with every put that changes something and every delete."""
        return self._revision

    def _store(self, resource: Resource, expected_version: str | None) -> Resource:
        """Store a copy of `resource` unless its content is unchanged; returns what is stored. Needs the lock."""
        key = resource.key
        current = self._resources.get(key)
        check_version(current, key, expected_version)
        if current is not None and same_content(current, resource):
            return current  # unchanged: same version, same timestamps, no copy
        self._revision += 1
        now = datetime.now(UTC)
        stored = resource.clone()
        stored.metadata.resource_version = str(self._revision)
        stored.metadata.created_at = now if current is None else current.metadata.created_at
        stored.metadata.updated_at = now
        self._resources[key] = stored
        return stored

    # --- tasks ----------------------------------------------------------------------------------------------------

    def create_task(self, task: TaskRecord) -> TaskRecord:
        if task.id is not None:
            raise ValueError(f"a new task has no id (the store assigns it), got id {task.id}")
        now = datetime.now(UTC)
        record = TaskRecord.model_validate(  # through JSON, as stored in SQL: a private, JSON-clean copy
            {**task.model_dump(mode="json"), "created_at": now, "updated_at": now, "version": 1}
        )
        with self._lock:
            self._last_task_id += 1
            task_id = self._last_task_id
            stored = record.model_copy(
                update={"id": task_id, "name": f"task-{task_id}" if record.name is None else record.name}
            )
            self._tasks[task_id] = stored
            self._messages[task_id] = {}
            self._logs[task_id] = []
        return stored.model_copy(deep=True)

    def get_task(self, task_id: int) -> TaskRecord | None:
        with self._lock:
            found = self._tasks.get(task_id)
        return None if found is None else found.model_copy(deep=True)

    def list_tasks(
        self, namespace: str | None = None, status: TaskState | None = None, limit: int | None = None
    ) -> builtins.list[TaskRecord]:
        wanted = None if status is None else TaskState(status)
        check_limit(limit)
        with self._lock:
            snapshot = [*self._tasks.values()]
        chosen = [
            t
            for t in reversed(snapshot)  # newest (highest id) first
            if (namespace is None or t.namespace == namespace) and (wanted is None or t.status is wanted)
        ]
        return [t.model_copy(deep=True) for t in chosen[:limit]]

    def update_task(
        self, task_id: int, expected_version: int, *, base: TaskRecord | None = None, **changes: Any
    ) -> TaskRecord:
        refuse_managed(changes, {"id", "version", "created_at", "updated_at"}, "task")
        with self._lock:
            current = self._tasks.get(task_id)
            if current is None:
                raise NotFoundError(f"task {task_id} not found")
            if current.version != expected_version:
                raise ConflictError(
                    f"task {task_id} was changed since it was read (version {expected_version}, now {current.version})"
                )
            updated = TaskRecord.model_validate(
                {**current.model_dump(), **changes, "version": expected_version + 1, "updated_at": datetime.now(UTC)}
            )
            self._tasks[task_id] = _stored(updated)
        return updated  # the SQL store's return value too: validated, but not through JSON

    def add_subtask(self, subtask: SubtaskRecord) -> SubtaskRecord:
        if subtask.id is not None:
            raise ValueError(f"a new subtask has no id (the store assigns it), got id {subtask.id}")
        now = datetime.now(UTC)
        record = SubtaskRecord.model_validate({**subtask.model_dump(mode="json"), "created_at": now, "updated_at": now})
        with self._lock:
            messages = self._messages.get(record.task_id)
            if messages is None:
                raise NotFoundError(f"task {record.task_id} not found")
            if record.message_id in messages:
                raise ConflictError(f"task {record.task_id} already has a subtask with message_id {record.message_id}")
            self._last_subtask_id += 1
            stored = record.model_copy(update={"id": self._last_subtask_id})
            self._subtasks[self._last_subtask_id] = stored
            self._messages[record.task_id] = {**messages, record.message_id: self._last_subtask_id}
        return stored.model_copy(deep=True)

    def update_subtask(self, subtask_id: int, *, base: SubtaskRecord | None = None, **changes: Any) -> SubtaskRecord:
        refuse_managed(changes, {"id", "task_id", "message_id", "created_at", "updated_at"}, "subtask")
        with self._lock:
            current = self._subtasks.get(subtask_id)
            if current is None:
                raise NotFoundError(f"subtask {subtask_id} not found")
            updated = SubtaskRecord.model_validate({**current.model_dump(), **changes, "updated_at": datetime.now(UTC)})
            self._subtasks[subtask_id] = _stored(updated)
        return updated

    def subtasks(self, task_id: int) -> builtins.list[SubtaskRecord]:
        with self._lock:
            messages = self._messages.get(task_id, {})
            chosen = [self._subtasks[messages[m]] for m in sorted(messages)]
        return [s.model_copy(deep=True) for s in chosen]

    # --- events ---------------------------------------------------------------------------------------------------

    def append_event(self, task_id: int, type: str, data: dict[str, Any], subtask_id: int | None = None) -> EventRecord:
        return self.append_events(task_id, [(type, data, subtask_id)])[0]

    def append_events(self, task_id: int, items: Iterable[EventItem]) -> builtins.list[EventRecord]:
        """Append several events at once, numbered consecutively: `(type, data)` or `(type, data, subtask_id)`
        each. The batch form of `append_event`, as the SQL store has it."""
        now = datetime.now(UTC)
        batch = [_event_item(item) for item in items]
        if not batch:
            return []  # as SQL: an empty batch does not look the task up
        with self._lock:
            log = self._logs.get(task_id)
            if log is None:
                raise NotFoundError(f"task {task_id} not found")
            first = len(log) + 1
            # Validated before they are logged: a bad item (a type that is not text, say) leaves the log as it was.
            records = [
                EventRecord(
                    task_id=task_id, seq=first + i, type=kind, subtask_id=sub, data=json.loads(text), created_at=now
                )
                for i, (kind, text, sub) in enumerate(batch)
            ]
            log.extend(
                _Logged(r.seq, r.type, r.subtask_id, now, item[1]) for r, item in zip(records, batch, strict=True)
            )
        return records

    def events(self, task_id: int, after: int = 0, limit: int | None = None) -> builtins.list[EventRecord]:
        check_limit(limit)
        start = max(after, 0)  # seq > after; a negative `after` must not slice from the end
        with self._lock:
            chosen = self._logs.get(task_id, [])[start : None if limit is None else start + limit]
        return [
            EventRecord(
                task_id=task_id,
                seq=e.seq,
                type=e.type,
                subtask_id=e.subtask_id,
                data=json.loads(e.text),
                created_at=e.created_at,
            )
            for e in chosen
        ]

    # --- retention ------------------------------------------------------------------------------------------------

    def prune(self, *, older_than: datetime | None = None, keep_last: int | None = None) -> PruneReport:
        """Delete finished tasks (with their subtasks and events) last updated before `older_than` that are not among
        the newest `keep_last` finished ones (newest: by updated_at, then id). Unfinished tasks are never touched."""
        if keep_last is not None and keep_last < 0:
            raise ValueError(f"keep_last must be 0 or more, got {keep_last}")
        if older_than is not None and older_than.tzinfo is None:
            raise ValueError(f"older_than must be timezone-aware, got {older_than!r}")
        if older_than is None and keep_last is None:
            return PruneReport()
        with self._lock:
            finished = [t for t in self._tasks.values() if t.status in FINISHED]
            finished.sort(key=lambda t: (t.updated_at, t.id), reverse=True)
            victims = finished[keep_last or 0 :]
            if older_than is not None:
                victims = [t for t in victims if t.updated_at < older_than]
            return self._remove_tasks([t.id for t in victims])

    def _remove_tasks(self, task_ids: builtins.list[int]) -> PruneReport:
        """Delete the tasks with their subtasks and events. Needs the lock."""
        subtasks = events = 0
        for task_id in task_ids:
            del self._tasks[task_id]
            for subtask_id in self._messages.pop(task_id).values():
                del self._subtasks[subtask_id]
                subtasks += 1
            events += len(self._logs.pop(task_id))
        return PruneReport(tasks=len(task_ids), subtasks=subtasks, events=events)

    # --- transactions ---------------------------------------------------------------------------------------------

    def batch(self, work: Callable[[], T]) -> T:
        """Call `work` holding the store's lock, so that its calls on this store are one transaction: other threads
        wait until it returns, and an error undoes every write it made. A batch inside a batch is a savepoint: if its
        work raises, its writes are undone and the outer one goes on."""
        with self._lock:
            saved = self._snapshot()  # inside a batch (the lock is reentrant), a batch is a savepoint of it
            try:
                return work()
            except BaseException:
                self._restore(saved)
                raise

    def _snapshot(self) -> tuple[Any, ...]:
        """All the state, cheaply: stored objects are never mutated, and logs only grow. Needs the lock."""
        lengths = {task_id: len(log) for task_id, log in self._logs.items()}
        return (
            dict(self._resources),
            self._revision,
            dict(self._tasks),
            dict(self._messages),
            dict(self._subtasks),
            dict(self._logs),
            lengths,
            self._last_task_id,
            self._last_subtask_id,
        )

    def _restore(self, saved: tuple[Any, ...]) -> None:
        """Back to a `_snapshot`. Needs the lock."""
        (
            self._resources,
            self._revision,
            self._tasks,
            self._messages,
            self._subtasks,
            self._logs,
            lengths,
            self._last_task_id,
            self._last_subtask_id,
        ) = saved
        for task_id, length in lengths.items():
            del self._logs[task_id][length:]


def _stored(record: RecordT) -> RecordT:
    """The copy to store: through its JSON form, as the SQL store keeps records, so it shares nothing with the caller
    and reads back as SQL's would."""
    return type(record).model_validate(record.model_dump(mode="json"))


def _event_item(item: Sequence[Any]) -> tuple[str, Any, int | None]:
    """`checked_event`, with the data as the JSON text this store keeps."""
    kind, data, subtask_id = checked_event(item)
    return kind, json.dumps(data, ensure_ascii=False), subtask_id


@hookimpl
def register_stores(register: Register) -> None:
    register("memory", MemoryStore.from_url, description="In-process store; nothing persists")
