"""The SQL store: resources, task records, subtasks and event logs in SQLite, PostgreSQL or MySQL/MariaDB.

It behaves exactly like the memory store (see wegent_core._store): the same copies, versions, timestamps, ordering
and errors, through the same helpers. How it gets there:

* Every write is one short transaction, retried from the start when the database says "busy" or "deadlock".
* Resource writes are serialised, so versions are handed out in commit order, as etcd does: on a server, puts and
  deletes first lock the store-wide counter row behind `metadata.resource_version`; SQLite has one writer anyway
  (BEGIN IMMEDIATE). Reads take no locks.
* Resource bodies are the resource's JSON (`model_dump_json`), read back with `model_validate_json`; secret values
  are sealed (encrypted) on the way in and unsealed on the way out when a secret box is configured.
* An event's sequence number comes from `last_seq` on its task row, bumped in the appending transaction, so
  concurrent appenders get 1, 2, 3, ... without gaps or duplicates.
"""

from __future__ import annotations

import builtins
import json
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager, nullcontext
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import pydantic
import sqlalchemy as sa
from sqlalchemy.types import NullType

from wegent_core._config import data_dir, is_default_store
from wegent_core._errors import ConflictError, NotFoundError, StoreError
from wegent_core._gc import collector_paused
from wegent_core._resources import KINDS, Resource, TaskState
from wegent_core._selectors import LabelSelector
from wegent_core._store import SelectorLike, check_version, not_found, same_content
from wegent_core._task_store import (
    EventItem,
    EventRecord,
    PruneReport,
    SubtaskRecord,
    TaskRecord,
    check_limit,
    checked_event,
    refuse_managed,
)

from . import _migrate
from ._engine import (
    RETRIES,
    backoff,
    begin,
    create_engine,
    is_transient,
    parse_url,
    safe_url,
    sqlite_file,
    store_error,
)
from ._tables import FINISHED, RESOURCE_VERSION, RawJson, counters, events, resources, subtasks, tasks

T = TypeVar("T")
Key = tuple[str, str, str]  # (namespace, kind, name), as `Resource.key`

_R, _T, _S, _E = resources, tasks, subtasks, events

# Statements are built once: building one costs more than running it on SQLite.
_BODY = sa.cast(_R.c.body, sa.Text).label("body")  # the JSON text, for pydantic to parse in one go
# Timestamps as the driver gives them (SQLite: text), converted by `_utc`, twice as fast as the column type.
_LOADED = (
    _R.c.kind,
    _R.c.resource_version,
    sa.type_coerce(_R.c.created_at, NullType()),
    sa.type_coerce(_R.c.updated_at, NullType()),
    _BODY,
)  # what `_load` takes
_BY_KEY = (
    (_R.c.namespace == sa.bindparam("namespace"))
    & (_R.c.kind == sa.bindparam("kind"))
    & (_R.c.name == sa.bindparam("name"))
)
_GET = sa.select(*_LOADED).where(_BY_KEY)
_FIND = sa.select(_R.c.id, *_LOADED).where(_BY_KEY)
_FIND_NAMES = sa.select(_R.c.id, _R.c.name, *_LOADED).where(
    (_R.c.namespace == sa.bindparam("namespace"))
    & (_R.c.kind == sa.bindparam("kind"))
    & _R.c.name.in_(sa.bindparam("names", expanding=True))
)
_INSERT = sa.insert(_R)
_UPDATE = sa.update(_R).where(_R.c.id == sa.bindparam("row_id"))
_DELETE = sa.delete(_R).where(_R.c.id == sa.bindparam("row_id"))

_COUNTER = counters.c.name == RESOURCE_VERSION
_LOCK_REVISION = sa.select(counters.c.value).where(_COUNTER).with_for_update()
_BUMP_REVISION = sa.update(counters).where(_COUNTER).values(value=counters.c.value + 1).returning(counters.c.value)
_SAVE_REVISION = sa.update(counters).where(_COUNTER).values(value=sa.bindparam("revision"))
_REVISION = sa.select(counters.c.value).where(_COUNTER)
TASK_ID = "task_id"  # the row of wegent_counters behind task ids on SQLite
_TASK_ID_COUNTER = counters.c.name == TASK_ID
_BUMP_TASK_IDS = (
    sa.update(counters).where(_TASK_ID_COUNTER).values(value=counters.c.value + 1).returning(counters.c.value)
)
_MAX_TASK_ID = sa.select(sa.func.max(tasks.c.id))
_INSERT_COUNTER = sa.insert(counters)

_TASK_BY_ID = _T.c.id == sa.bindparam("task_id")
_TAKE_SEQS = sa.update(_T).where(_TASK_BY_ID).values(last_seq=_T.c.last_seq + sa.bindparam("count"))
_TAKE_SEQS_RETURNING = _TAKE_SEQS.returning(_T.c.last_seq)
_LAST_SEQ = sa.select(_T.c.last_seq).where(_TASK_BY_ID)
_INSERT_EVENTS = sa.insert(_E)

_TASK_VALUES = ("namespace", "name", "status", "version", "created_at", "updated_at", "data")  # `_task_values`
_SUBTASK_VALUES = ("task_id", "message_id", "status", "data")  # `_subtask_values`
_GET_TASK = sa.select(_T).where(_TASK_BY_ID)
_TASK_EXISTS = sa.select(_T.c.id).where(_TASK_BY_ID)
_INSERT_TASK = sa.insert(_T)
_NAME_TASK = sa.update(_T).where(_TASK_BY_ID).values(name=sa.bindparam("name"))
_UPDATE_TASK = (
    sa.update(_T)
    .where(_TASK_BY_ID, _T.c.version == sa.bindparam("expected"))
    .values({column: sa.bindparam(column) for column in _TASK_VALUES})
)
_SUBTASK_BY_ID = _S.c.id == sa.bindparam("subtask_id")
_INSERT_SUBTASK = sa.insert(_S)
_LOCK_SUBTASK = sa.select(_S).where(_SUBTASK_BY_ID).with_for_update()
_UPDATE_SUBTASK = sa.update(_S).where(_SUBTASK_BY_ID).values({c: sa.bindparam(c) for c in _SUBTASK_VALUES})
_UPDATE_SUBTASK_FROM = _UPDATE_SUBTASK.where(_S.c.status == sa.bindparam("base_status"))

# The store-managed metadata is kept in columns, not in the body (parsing timestamps out of JSON is slow).
_MANAGED_FIELDS = {"metadata": {"resource_version", "created_at", "updated_at"}}
_SEALED_MARK = "enc:v"  # every sealed value starts so: a body without it has nothing to unseal

# Task and subtask columns; the rest of each record is the row's `data` JSON.
_TASK_COLUMNS = frozenset({"id", "namespace", "name", "status", "version", "created_at", "updated_at"})
_SUBTASK_COLUMNS = frozenset({"id", "task_id", "message_id", "status"})
_LOOKUP_BATCH = 500  # names per lookup query: far below every backend's limit on bound parameters
_PRUNE_BATCH = 500  # tasks per pruning transaction: every write stays short


class SqlStore:
    """A `ResourceStore` and a `TaskStore` on a SQL database; thread-safe and safe across processes.

    Open one with `SqlStore.open(url)`; close it (or use it as a context manager) to release its connections.
    """

    def __init__(self, engine: sa.Engine, *, secrets: Any = None, reader: sa.Engine | None = None) -> None:
        self.engine = engine
        self.reader = engine if reader is None else reader  # reads: autocommit connections on a server
        self.url = engine.url
        self._box = secrets  # a wegent_storage._secrets.SecretBox, or None: secrets are stored as given
        sqlite = engine.dialect.name == "sqlite"
        # SQLite has one writer per file: this process's threads queue on a lock instead of in SQLite's busy
        # handler, which polls with sleeps. An in-memory database is one shared connection: reads queue too.
        self._write_lock: AbstractContextManager[Any] = threading.Lock() if sqlite else nullcontext()
        memory = sqlite and sqlite_file(engine.url) is None
        self._read_lock: AbstractContextManager[Any] = self._write_lock if memory else nullcontext()
        self._update_returning = engine.dialect.update_returning
        # SQLite numbers a new row max(id) + 1, so the id of a pruned newest task would come back for another task:
        # there, task ids come from a counter that never goes back. Servers' sequences never go back anyway.
        self._own_task_ids = sqlite
        # Server databases lock the version counter before reading anything, so puts and deletes are serialised
        # without deadlocks; on SQLite, BEGIN IMMEDIATE already serialises every writer.
        self._lock_revision_first = not sqlite
        self._batch = threading.local()  # .connection: the transaction of a `batch` running in this thread
        # Calls worth running at once (the engine's worker threads): SQLite has one writer, and more threads only
        # fight over the interpreter lock; a server overlaps the round trips of several connections.
        self.workers = 1 if sqlite else 8

    @classmethod
    def open(cls, url: str, *, upgrade: bool | None = None, secrets: Any = None) -> SqlStore:
        """Open the store at `url` (`sqlite:///PATH`, `sqlite://` in memory, `postgresql://...`, `mysql://...`,
        `mariadb://...`).

        A database whose schema is older than this wegent's (or that has none yet) is upgraded only if `upgrade` is
        true; `None` means "only the embedded default store, and an in-memory database". A newer schema is always
        refused. `secrets` is the `SecretBox` that seals secret values; by default the one the environment and the
        data dir configure.
        """
        parsed = parse_url(url)
        path = sqlite_file(parsed)
        in_memory = path is None and parsed.get_backend_name() == "sqlite"  # always new: nothing to protect
        allowed = (in_memory or is_default_store(url)) if upgrade is None else upgrade
        if path is not None:
            _prepare_file(path, url, create=allowed)
        engine = create_engine(parsed)
        try:
            try:
                _migrate.ensure(engine, url, upgrade_allowed=allowed)
            except sa.exc.DBAPIError as error:
                raise store_error(error, parsed) from error
            box = secrets if secrets is not None else default_secret_box()
        except BaseException:
            engine.dispose()
            raise
        reader = engine if engine.dialect.name == "sqlite" else create_engine(parsed, reads=True)
        return cls(engine, secrets=box, reader=reader)

    def close(self) -> None:
        self.engine.dispose()
        if self.reader is not self.engine:
            self.reader.dispose()

    def __enter__(self) -> SqlStore:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"SqlStore({safe_url(self.url)!r})"

    # --- resources ------------------------------------------------------------------------------------------------

    def get(self, kind: str, name: str, namespace: str = "default") -> Resource | None:
        row = self._run(
            lambda c: c.execute(_GET, {"namespace": namespace, "kind": kind, "name": name}).first(), write=False
        )
        return None if row is None else self._load(*row)

    def list(
        self, kind: str | None = None, namespace: str | None = None, selector: SelectorLike | None = None
    ) -> builtins.list[Resource]:
        wanted = LabelSelector.coerce(selector)  # a bad selector fails before any query
        query = sa.select(_R.c.namespace, _R.c.name, *_LOADED)
        if wanted.requirements:
            query = query.add_columns(_R.c.labels)
        if kind is not None:
            query = query.where(_R.c.kind == kind)
        if namespace is not None:
            query = query.where(_R.c.namespace == namespace)
        rows = self._run(lambda c: c.execute(query).all(), write=False)
        if wanted.requirements:
            rows = [row for row in rows if wanted.matches(row[-1])]
        # Sorted here, not by the database: collations differ, and the memory store sorts by code point.
        rows.sort(key=lambda row: (row[0], row[2], row[1]))
        with collector_paused():
            return [self._load(*row[2:7]) for row in rows]

    def put(self, resource: Resource) -> Resource:
        return self.put_many([resource])[0]

    def put_many(self, resources: Iterable[Resource]) -> builtins.list[Resource]:
        """Put each resource, in order, in one transaction: all are stored or none is (a conflict stops the batch).
        The results are what `put` would have returned one by one."""
        batch = builtins.list(resources)
        if not batch:
            return []
        with collector_paused():
            return self._run(lambda connection: self._put_batch(connection, batch), write=True)

    def delete(
        self, kind: str, name: str, namespace: str = "default", *, resource_version: str | None = None
    ) -> Resource:
        def work(connection: sa.Connection) -> Resource:
            # On a server the counter is locked first: deletes wait for puts, and the other way round.
            revision = _Revision(connection, lock_first=self._lock_revision_first)
            row = connection.execute(_FIND, {"namespace": namespace, "kind": kind, "name": name}).first()
            if row is None:
                raise not_found(kind, name, namespace)
            current = self._load(*row[1:])
            check_version(current, (namespace, kind, name), resource_version)
            connection.execute(_DELETE, {"row_id": row[0]})
            revision.next()  # a delete is a change too (as in etcd): `revision()` moves
            revision.save()
            return current

        return self._run(work, write=True)

    def revision(self) -> int:
        """The store-wide revision: it moves with every put that changes something and every delete."""
        return self._run(lambda c: c.execute(_REVISION).scalar_one(), write=False)

    def _put_batch(self, connection: sa.Connection, batch: builtins.list[Resource]) -> builtins.list[Resource]:
        # The stored rows are read in a few queries and the changes written with one executemany each for inserts
        # and updates: a statement per resource would cost more than all the rest.
        revision = _Revision(connection, lock_first=self._lock_revision_first)
        found = self._find_many(connection, {resource.key for resource in batch})
        inserts: dict[Key, dict[str, Any]] = {}
        updates: dict[Key, dict[str, Any]] = {}
        stored_batch = []
        for resource in batch:
            key = resource.key
            row_id, current, current_body = found.get(key, (None, None, None))
            check_version(current, key, resource.metadata.resource_version)
            body = self._seal(resource).model_dump_json(exclude=_MANAGED_FIELDS)
            if current is not None and _unchanged(resource, body, current, current_body):
                stored_batch.append(current)  # unchanged: same version, same timestamps
                continue
            version, now = revision.next(), datetime.now(UTC)
            created_at = now if current is None else current.metadata.created_at
            stored = self._load(key[1], version, created_at, now, body)  # a copy: cheaper parsed than cloned
            values = {
                "resource_version": version,
                "created_at": created_at,
                "updated_at": now,
                "labels": dict(resource.metadata.labels),
                "body": RawJson(body),
            }
            if row_id is None:
                inserts[key] = {"namespace": key[0], "kind": key[1], "name": key[2], **values}
            else:
                updates[key] = {"row_id": row_id, **values}
            found[key] = (row_id, stored, body)  # a later put of the same key in this batch sees this one
            stored_batch.append(stored)
        if inserts:
            connection.execute(_INSERT, builtins.list(inserts.values()))
        if updates:
            connection.execute(_UPDATE, builtins.list(updates.values()))
        revision.save()
        return stored_batch

    def _find_many(self, connection: sa.Connection, keys: set[Key]) -> dict[Key, tuple[int, Resource, str]]:
        """The stored row id, resource and body of each of `keys` that is stored."""
        found = {}
        names: dict[tuple[str, str], builtins.list[str]] = {}
        for namespace, kind, name in sorted(keys):
            names.setdefault((namespace, kind), []).append(name)
        for (namespace, kind), group in names.items():
            for start in range(0, len(group), _LOOKUP_BATCH):
                chunk = group[start : start + _LOOKUP_BATCH]
                query = {"namespace": namespace, "kind": kind, "names": chunk}
                for row in connection.execute(_FIND_NAMES, query):
                    found[namespace, kind, row.name] = (row.id, self._load(*row[2:]), row.body)
        return found

    def _load(self, kind: str, version: int, created_at: Any, updated_at: Any, body: str) -> Resource:
        try:  # the validator itself: `model_validate_json` only adds a Python call per resource
            resource = KINDS.get(kind, Resource).__pydantic_validator__.validate_json(body)
        except pydantic.ValidationError as error:
            raise StoreError(f"a stored {kind} no longer validates: {error}") from error
        # Straight into the fields (they need no validation), as Resource.clone does: lists set thousands.
        meta = resource.metadata
        meta.__dict__.update(resource_version=str(version), created_at=_utc(created_at), updated_at=_utc(updated_at))
        meta.__pydantic_fields_set__.update(_MANAGED_FIELDS["metadata"])
        if self._box is None or _SEALED_MARK not in body:
            return resource
        return _secrets().unseal(resource, self._box)

    def _seal(self, resource: Resource) -> Resource:
        return resource if self._box is None else _secrets().seal(resource, self._box)

    # --- tasks ----------------------------------------------------------------------------------------------------

    def create_task(self, task: TaskRecord) -> TaskRecord:
        if task.id is not None:
            raise ValueError(f"a new task has no id (the store assigns it), got id {task.id}")
        now = datetime.now(UTC)
        record = TaskRecord.model_validate(
            {**task.model_dump(mode="json"), "created_at": now, "updated_at": now, "version": 1}
        )

        def work(connection: sa.Connection) -> tuple[int, str]:
            values = {**_task_values(record), "last_seq": 0}
            if self._own_task_ids:  # the id is known before the insert: so is the default name
                values["id"] = _next_task_id(connection)
                values["name"] = f"task-{values['id']}" if record.name is None else record.name
            result = connection.execute(_INSERT_TASK, values)
            task_id = result.inserted_primary_key[0]
            name = values["name"]
            if name is None:
                name = f"task-{task_id}"
                connection.execute(_NAME_TASK, {"task_id": task_id, "name": name})
            return task_id, name

        task_id, name = self._run(work, write=True)
        return record.model_copy(update={"id": task_id, "name": name})

    def get_task(self, task_id: int) -> TaskRecord | None:
        row = self._run(lambda c: c.execute(_GET_TASK, {"task_id": task_id}).first(), write=False)
        return None if row is None else _task_from(row)

    def list_tasks(
        self, namespace: str | None = None, status: TaskState | None = None, limit: int | None = None
    ) -> builtins.list[TaskRecord]:
        check_limit(limit)
        query = sa.select(_T).order_by(_T.c.id.desc()).limit(limit)
        if namespace is not None:
            query = query.where(_T.c.namespace == namespace)
        if status is not None:
            query = query.where(_T.c.status == TaskState(status).value)
        return [_task_from(row) for row in self._run(lambda c: c.execute(query).all(), write=False)]

    def update_task(
        self, task_id: int, expected_version: int, *, base: TaskRecord | None = None, **changes: Any
    ) -> TaskRecord:
        refuse_managed(changes, {"id", "version", "created_at", "updated_at"}, "task")
        if base is not None and (base.id, base.version) != (task_id, expected_version):
            base = None  # not the version being changed: read it

        def work(connection: sa.Connection) -> TaskRecord:
            current = base
            if current is None:
                row = connection.execute(_GET_TASK, {"task_id": task_id}).first()
                if row is None:
                    raise NotFoundError(f"task {task_id} not found")
                if row.version != expected_version:
                    raise _task_conflict(task_id, expected_version, row.version)
                current = _task_from(row)
            updated = TaskRecord.model_validate(
                {
                    **current.model_dump(),
                    **changes,
                    "version": expected_version + 1,
                    "updated_at": datetime.now(UTC),
                }
            )
            written = connection.execute(
                _UPDATE_TASK, {**_task_values(updated), "task_id": task_id, "expected": expected_version}
            )
            if written.rowcount != 1:  # changed by another writer since it was read, or gone
                now = connection.execute(sa.select(_T.c.version).where(_T.c.id == task_id)).scalar()
                if now is None and base is not None:
                    raise NotFoundError(f"task {task_id} not found")
                raise _task_conflict(task_id, expected_version, now)
            return updated

        return self._run(work, write=True)

    def add_subtask(self, subtask: SubtaskRecord) -> SubtaskRecord:
        if subtask.id is not None:
            raise ValueError(f"a new subtask has no id (the store assigns it), got id {subtask.id}")
        now = datetime.now(UTC)
        record = SubtaskRecord.model_validate({**subtask.model_dump(mode="json"), "created_at": now, "updated_at": now})

        def work(connection: sa.Connection) -> int:
            try:  # the foreign key finds a missing task: no read first (every backend names the key in its error)
                return connection.execute(_INSERT_SUBTASK, _subtask_values(record)).inserted_primary_key[0]
            except sa.exc.IntegrityError as error:  # the transaction rolls back as this leaves it
                if "foreign key" in str(error.orig).lower():
                    raise NotFoundError(f"task {record.task_id} not found") from None
                raise ConflictError(
                    f"task {record.task_id} already has a subtask with message_id {record.message_id}"
                ) from error

        subtask_id = self._run(work, write=True)
        return record.model_copy(update={"id": subtask_id})

    def update_subtask(self, subtask_id: int, *, base: SubtaskRecord | None = None, **changes: Any) -> SubtaskRecord:
        refuse_managed(changes, {"id", "task_id", "message_id", "created_at", "updated_at"}, "subtask")

        def work(connection: sa.Connection) -> SubtaskRecord:
            if base is not None and base.id == subtask_id:  # written from it, if its status is still the stored one
                updated = SubtaskRecord.model_validate(
                    {**base.model_dump(), **changes, "updated_at": datetime.now(UTC)}
                )
                values = {**_subtask_values(updated), "subtask_id": subtask_id, "base_status": base.status.value}
                if connection.execute(_UPDATE_SUBTASK_FROM, values).rowcount == 1:
                    return updated
            row = connection.execute(_LOCK_SUBTASK, {"subtask_id": subtask_id}).first()
            if row is None:
                raise NotFoundError(f"subtask {subtask_id} not found")
            updated = SubtaskRecord.model_validate(
                {**_subtask_from(row).model_dump(), **changes, "updated_at": datetime.now(UTC)}
            )
            connection.execute(_UPDATE_SUBTASK, {**_subtask_values(updated), "subtask_id": subtask_id})
            return updated

        return self._run(work, write=True)

    def subtasks(self, task_id: int) -> builtins.list[SubtaskRecord]:
        query = sa.select(_S).where(_S.c.task_id == task_id).order_by(_S.c.message_id)
        return [_subtask_from(row) for row in self._run(lambda c: c.execute(query).all(), write=False)]

    # --- events ---------------------------------------------------------------------------------------------------

    def append_event(self, task_id: int, type: str, data: dict[str, Any], subtask_id: int | None = None) -> EventRecord:
        return self.append_events(task_id, [(type, data, subtask_id)])[0]

    def append_events(self, task_id: int, items: Iterable[EventItem]) -> builtins.list[EventRecord]:
        """Append several events in one transaction, numbered consecutively: `(type, data)` or
        `(type, data, subtask_id)` each. The batch form of `append_event`, for bursts such as text deltas."""
        now = datetime.now(UTC)
        batch = [_event_item(item) for item in items]
        if not batch:
            return []

        def work(connection: sa.Connection) -> int:
            first = self._take_seqs(connection, task_id, len(batch)) - len(batch) + 1
            rows = [
                {"task_id": task_id, "seq": first + i, "type": kind, "subtask_id": sub, "created_at": now, "data": text}
                for i, (kind, text, sub) in enumerate(batch)
            ]
            connection.execute(_INSERT_EVENTS, rows)
            return first

        first = self._run(work, write=True)
        return [
            EventRecord(
                task_id=task_id, seq=first + i, type=kind, subtask_id=sub, data=json.loads(text), created_at=now
            )
            for i, (kind, text, sub) in enumerate(batch)
        ]

    def events(self, task_id: int, after: int = 0, limit: int | None = None) -> builtins.list[EventRecord]:
        check_limit(limit)
        query = sa.select(_E).where(_E.c.task_id == task_id, _E.c.seq > after).order_by(_E.c.seq).limit(limit)
        rows = self._run(lambda c: c.execute(query).all(), write=False)
        with collector_paused():
            return [
                EventRecord(
                    task_id=row.task_id,
                    seq=row.seq,
                    type=row.type,
                    subtask_id=row.subtask_id,
                    data=row.data,
                    created_at=row.created_at,
                )
                for row in rows
            ]

    def _take_seqs(self, connection: sa.Connection, task_id: int, count: int) -> int:
        """Reserve `count` sequence numbers of the task's log; returns the last. Locks the task row."""
        params = {"task_id": task_id, "count": count}
        if self._update_returning:
            last = connection.execute(_TAKE_SEQS_RETURNING, params).scalar()
        elif connection.execute(_TAKE_SEQS, params).rowcount == 1:  # MySQL/MariaDB: no UPDATE ... RETURNING
            last = connection.execute(_LAST_SEQ, params).scalar()
        else:
            last = None
        if last is None:
            raise NotFoundError(f"task {task_id} not found")
        return int(last)

    # --- retention ------------------------------------------------------------------------------------------------

    def prune(self, *, older_than: datetime | None = None, keep_last: int | None = None) -> PruneReport:
        """Delete finished tasks (with their subtasks and events) last updated before `older_than` that are not among
        the newest `keep_last` finished ones: both rules must agree, so the newest `keep_last` always stay. Unfinished
        tasks (pending, running, cancelling, waiting for a confirmation) are never touched. Short transactions."""
        if keep_last is not None and keep_last < 0:
            raise ValueError(f"keep_last must be 0 or more, got {keep_last}")
        if older_than is not None and older_than.tzinfo is None:
            raise ValueError(f"older_than must be timezone-aware, got {older_than!r}")
        total = PruneReport()
        if older_than is None and keep_last is None:
            return total
        while True:
            batch = self._run(lambda c: _prune_batch(c, older_than, keep_last), write=True)
            if batch.tasks == 0:
                return total
            total = PruneReport(
                tasks=total.tasks + batch.tasks,
                subtasks=total.subtasks + batch.subtasks,
                events=total.events + batch.events,
            )

    # --- transactions ---------------------------------------------------------------------------------------------

    def batch(self, work: Callable[[], T]) -> T:
        """Call `work`, whose calls on this store (in this thread) share one transaction: all their writes are
        stored or none is. On a transient failure `work` runs again from the start, so it must only use the store.
        A batch inside a batch is a savepoint: if its work raises, its writes are undone and the outer one goes on."""
        connection = getattr(self._batch, "connection", None)
        if connection is not None:
            with connection.begin_nested():
                return work()

        def run(connection: sa.Connection) -> T:
            self._batch.connection = connection
            try:
                return work()
            finally:
                self._batch.connection = None

        return self._run(run, write=True)

    def _run(self, work: Callable[[sa.Connection], T], *, write: bool) -> T:
        """Run `work` in one transaction, from the start again after a transient failure (busy, deadlock)."""
        connection = getattr(self._batch, "connection", None)
        if connection is not None:
            return work(connection)  # inside `batch`: its transaction
        lock, engine = (self._write_lock, self.engine) if write else (self._read_lock, self.reader)
        for attempt in range(RETRIES + 1):
            try:
                with lock, engine.connect() as connection, begin(connection, write=write):
                    return work(connection)
            except sa.exc.DBAPIError as error:
                if attempt == RETRIES or not is_transient(error):
                    raise store_error(error, self.url) from error
            time.sleep(backoff(attempt))
        raise AssertionError("unreachable")


class _Revision:
    """The store-wide counter behind resource versions, held until the transaction ends.

    `lock_first`: lock it now (server databases: puts and deletes queue here, so they cannot deadlock). Otherwise
    (SQLite, where BEGIN IMMEDIATE already serialises writers) it is bumped when the first version is taken, so an
    unchanged put writes nothing.
    """

    def __init__(self, connection: sa.Connection, *, lock_first: bool) -> None:
        self._connection = connection
        self.value: int | None = connection.execute(_LOCK_REVISION).scalar_one() if lock_first else None
        self._saved = self.value

    def next(self) -> int:
        if self.value is None:
            self.value = self._saved = self._connection.execute(_BUMP_REVISION).scalar_one()
        else:
            self.value += 1
        return self.value

    def save(self) -> None:
        if self.value != self._saved:
            self._connection.execute(_SAVE_REVISION, {"revision": self.value})


def _unchanged(resource: Resource, body: str, stored: Resource, stored_body: str) -> bool:
    """Whether `resource`, whose body is `body`, says what the stored one says: the same text, else the same JSON
    (keys may come in another order). Sealed bodies differ in their nonces, so for them the resources decide."""
    if body == stored_body:
        return True
    if _SEALED_MARK in body or _SEALED_MARK in stored_body:
        return same_content(stored, resource)
    return json.loads(body) == json.loads(stored_body)


def _utc(value: datetime | str) -> datetime:
    """A stored timestamp (naive UTC; SQLite gives it as text) as an aware UTC datetime."""
    if isinstance(value, str):
        return datetime.fromisoformat(value + "+00:00")  # parsing the zone is 4 times cheaper than replace()
    return value.replace(tzinfo=UTC)


def _prepare_file(path: Path, url: str, *, create: bool) -> None:
    if path.exists():
        return
    if not create:  # refused before anything is made on disk
        raise StoreError(f"no database at {path}; create it with `wegent db upgrade --store {url}`")
    path.parent.mkdir(parents=True, exist_ok=True)


def default_secret_box() -> Any:
    """The `SecretBox` configured by the environment (`WEGENT_SECRET_KEY`, else the key file in the data dir)."""
    return _secrets().SecretBox.from_environment(data_dir())


def _secrets() -> Any:
    from . import _secrets  # on first use: `cryptography` is needed only by a store that opens

    return _secrets


# --- records <-> rows ---------------------------------------------------------------------------------------------


def _task_values(record: TaskRecord) -> dict[str, Any]:
    return {
        "namespace": record.namespace,
        "name": record.name,
        "status": record.status.value,
        "version": record.version,
        "created_at": record.created_at,
        "updated_at": record.updated_at,
        "data": record.model_dump(mode="json", exclude=set(_TASK_COLUMNS)),
    }


def _task_from(row: sa.Row[Any]) -> TaskRecord:
    return TaskRecord.model_validate({**row.data, **{column: getattr(row, column) for column in _TASK_COLUMNS}})


def _subtask_values(record: SubtaskRecord) -> dict[str, Any]:
    return {
        "task_id": record.task_id,
        "message_id": record.message_id,
        "status": record.status.value,
        "data": record.model_dump(mode="json", exclude=set(_SUBTASK_COLUMNS)),
    }


def _subtask_from(row: sa.Row[Any]) -> SubtaskRecord:
    return SubtaskRecord.model_validate({**row.data, **{column: getattr(row, column) for column in _SUBTASK_COLUMNS}})


def _event_item(item: Sequence[Any]) -> tuple[str, Any, int | None]:
    """`checked_event`, with the data as the JSON text this store keeps."""
    kind, data, subtask_id = checked_event(item)
    return kind, RawJson(json.dumps(data, ensure_ascii=False, separators=(",", ":"))), subtask_id


def _next_task_id(connection: sa.Connection) -> int:
    """The next task id from the `task_id` counter, which starts past the highest id when it is first used."""
    taken = connection.execute(_BUMP_TASK_IDS).scalar()
    if taken is not None:
        return int(taken)
    first = int(connection.execute(_MAX_TASK_ID).scalar() or 0) + 1
    connection.execute(_INSERT_COUNTER, {"name": TASK_ID, "value": first})
    return first


def _task_conflict(task_id: int, expected: int, actual: int | None) -> ConflictError:
    if actual is None:
        return ConflictError(f"task {task_id} was deleted since it was read (version {expected})")
    return ConflictError(f"task {task_id} was changed since it was read (version {expected}, now {actual})")


def _prune_batch(connection: sa.Connection, older_than: datetime | None, keep_last: int | None) -> PruneReport:
    finished = _T.c.status.in_(FINISHED)
    query = sa.select(_T.c.id).where(finished)
    if older_than is not None:
        query = query.where(_T.c.updated_at < older_than)
    if keep_last is not None:
        newest_first = (_T.c.updated_at.desc(), _T.c.id.desc())
        cut = connection.execute(
            sa.select(_T.c.updated_at, _T.c.id).where(finished).order_by(*newest_first).offset(keep_last).limit(1)
        ).first()  # the newest finished task not kept
        if cut is None:
            return PruneReport()
        query = query.where((_T.c.updated_at < cut[0]) | ((_T.c.updated_at == cut[0]) & (_T.c.id <= cut[1])))
    victims = set(connection.execute(query.order_by(_T.c.id).limit(_PRUNE_BATCH).with_for_update()).scalars())
    if not victims:
        return PruneReport()
    ids = sorted(victims)
    return PruneReport(
        events=connection.execute(sa.delete(_E).where(_E.c.task_id.in_(ids))).rowcount,
        subtasks=connection.execute(sa.delete(_S).where(_S.c.task_id.in_(ids))).rowcount,
        tasks=connection.execute(sa.delete(_T).where(_T.c.id.in_(ids), finished)).rowcount,
    )
