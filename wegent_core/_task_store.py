"""The task side of a store: task runs, their subtasks (one per message) and an append-only event log per task.

A Task *resource* (kind Task, in the resource store) is a definition; a task *record* here is one run of a team, with
its status, stage pointer and messages. The records mirror upstream's `tasks` and `subtasks` tables (reference 1.7,
1.10, 4) and hold only JSON-serialisable data.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any, Protocol, TypeVar, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from ._resources import SubtaskState, TaskState

T = TypeVar("T")
EventItem = tuple[str, dict[str, Any]] | tuple[str, dict[str, Any], int | None]  # (type, data[, subtask_id])


class Record(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())


class TaskRecord(Record):
    id: int | None = Field(default=None, description="Assigned by the store on create")
    namespace: str = "default"
    name: str | None = Field(default=None, description="task-<id> unless given")
    team: str = Field(description="namespace/name of the Team")
    title: str = ""
    prompt: str = ""
    status: TaskState = TaskState.PENDING
    progress: int = Field(default=0, ge=0, le=100)
    current_stage: int = 0
    labels: dict[str, str] = Field(default_factory=dict)
    spec: dict[str, Any] = Field(default_factory=dict, description="Run options: model override, Task spec, ...")
    result: dict[str, Any] | None = None
    error_message: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    completed_at: datetime | None = None
    version: int = Field(default=0, description="Bumped by every update; updates name the version they read")


class SubtaskRecord(Record):
    id: int | None = None
    task_id: int
    message_id: int = Field(ge=1, description="1, 2, 3, ... within the task")
    parent_id: int | None = Field(default=None, description="The parent's message_id, as upstream")
    role: str = Field(description="USER or ASSISTANT")
    bot: str | None = Field(default=None, description="namespace/name of the Bot that answers")
    stage: int | None = None
    step: str | None = Field(
        default=None,
        description="A delegated step's key (the delegating tool call's idempotency key): a resumed "
        "task finds the step by it",
    )
    title: str = ""
    prompt: str = ""
    status: SubtaskState = SubtaskState.PENDING
    progress: int = Field(default=0, ge=0, le=100)
    result: dict[str, Any] | None = None
    error_message: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    completed_at: datetime | None = None


class EventRecord(Record):
    task_id: int
    seq: int = Field(ge=1, description="1, 2, 3, ... within the task, without gaps")
    type: str
    subtask_id: int | None = None
    data: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime | None = None


class PruneReport(Record):
    tasks: int = 0
    subtasks: int = 0
    events: int = 0


@runtime_checkable
class TaskStore(Protocol):
    """Task records, subtasks and events. Every write is durable when the call returns."""

    def create_task(self, task: TaskRecord) -> TaskRecord:
        """Store a new task; the returned record has its id, name, timestamps and version 1."""
        ...

    def get_task(self, task_id: int) -> TaskRecord | None: ...

    def list_tasks(
        self, namespace: str | None = None, status: TaskState | None = None, limit: int | None = None
    ) -> list[TaskRecord]:
        """Newest first."""
        ...

    def update_task(
        self, task_id: int, expected_version: int, *, base: TaskRecord | None = None, **changes: Any
    ) -> TaskRecord:
        """Apply changes if the task is still at `expected_version` (else `ConflictError`); bumps the version.
        `base`, the record at that version as the caller has it, lets a store write without reading it first."""
        ...

    def add_subtask(self, subtask: SubtaskRecord) -> SubtaskRecord: ...

    def update_subtask(self, subtask_id: int, *, base: SubtaskRecord | None = None, **changes: Any) -> SubtaskRecord:
        """Apply changes. `base`, the record as the caller last wrote or read it (a task's subtasks have one writer:
        its runner), lets a store write from it without reading, when the stored status is still the base's."""
        ...

    def subtasks(self, task_id: int) -> list[SubtaskRecord]:
        """In message_id order."""
        ...

    def append_event(self, task_id: int, type: str, data: dict[str, Any], subtask_id: int | None = None) -> EventRecord:
        """Append to the task's log; the sequence number is the next one of that task, even under concurrency."""
        ...

    def append_events(self, task_id: int, items: Iterable[EventItem]) -> list[EventRecord]:
        """Append several events in one transaction, in order, with consecutive sequence numbers."""
        ...

    def batch(self, work: Callable[[], T]) -> T:
        """Call `work`, whose calls on this store share one transaction: all their writes are stored or none is.
        `work` may run again after a transient failure, so it must only use the store."""
        ...

    def events(self, task_id: int, after: int = 0, limit: int | None = None) -> list[EventRecord]:
        """Events with seq > after, in order."""
        ...

    def prune(self, *, older_than: datetime | None = None, keep_last: int | None = None) -> PruneReport:
        """Delete finished tasks (COMPLETED, FAILED, CANCELLED, DELETE), with their subtasks and events, that were
        last updated before `older_than` (if given) and are not among the newest `keep_last` finished tasks (if
        given): the newest `keep_last` always stay. Tasks that are running, pending, cancelling or waiting for a
        confirmation are never touched."""
        ...


# --- input rules every task store applies, before it writes anything ------------------------------------------------


def checked_event(item: Sequence[Any]) -> tuple[str, dict[str, Any], int | None]:
    """`(type, data[, subtask_id])` as a triple, refused (TypeError) unless the type is a non-empty string and the
    data a dict."""
    kind, data, subtask_id = (*item, None) if len(item) == 2 else item
    if not isinstance(kind, str) or not kind:
        raise TypeError(f"an event type is a non-empty string, got {kind!r}")
    if not isinstance(data, dict):
        raise TypeError(f"event data must be a dict, got {type(data).__name__}")
    return kind, data, subtask_id


def check_limit(limit: int | None) -> None:
    # SQLite reads a negative LIMIT as none and the servers refuse it: every store refuses it alike.
    if limit is not None and limit < 0:
        raise ValueError(f"limit must be 0 or more, got {limit}")


def refuse_managed(changes: dict[str, Any], managed: set[str], what: str) -> None:
    refused = sorted(changes.keys() & managed)
    if refused:
        raise ValueError(f"cannot change {', '.join(refused)} of a {what}: the store manages them")
