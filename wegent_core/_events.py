"""Typed task events. Each is written to the task's event log (which gives it its sequence number) before anyone
sees it, so a consumer that connects late or reconnects replays from a sequence number and then follows live.

`Event.type` names the class (`text.delta`, `tool.call`, ...); `event_from_record` turns a stored record back into
its class, and an event type this version does not know into a plain `Event` (never an error: logs outlive code).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from ._resources import SubtaskState, TaskState
from ._task_store import EventRecord

_ENVELOPE = frozenset({"type", "seq", "task_id", "subtask_id", "at"})


class Event(BaseModel):
    """What every event has: its type, its place in the task's log, and the subtask (message) it belongs to."""

    model_config = ConfigDict(extra="allow", frozen=True)
    TYPES: ClassVar[dict[str, type[Event]]] = {}

    type: str
    seq: int = 0  # set when the event is written: 1, 2, 3, ... within the task
    task_id: int = 0
    subtask_id: int | None = None
    at: datetime | None = None
    member: str | None = Field(default=None, description="namespace/name of the Bot this event is about")

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        default = cls.model_fields["type"].default
        if isinstance(default, str):
            Event.TYPES[default] = cls

    def data(self) -> dict[str, Any]:
        """The event's own fields, as the log stores them."""
        return self.model_dump(mode="json", exclude=_ENVELOPE, exclude_none=True)

    @property
    def terminal(self) -> bool:
        """Whether this event ends a run of the task (it may be reopened by a follow-up message)."""
        return False


class TaskStatus(Event):
    type: Literal["task.status"] = "task.status"
    status: TaskState
    stage: int | None = None
    progress: int = 0
    error: str | None = None

    @property
    def terminal(self) -> bool:
        return self.status in (
            TaskState.COMPLETED,
            TaskState.FAILED,
            TaskState.CANCELLED,
            TaskState.PENDING_CONFIRMATION,
            TaskState.DELETE,
        )


class SubtaskStatus(Event):
    type: Literal["subtask.status"] = "subtask.status"
    status: SubtaskState
    message_id: int
    role: str = "ASSISTANT"
    stage: int | None = None
    error: str | None = None


class Message(Event):
    """A message of the conversation: the user's prompt, a follow-up, a handoff, or a member's final answer."""

    type: Literal["message"] = "message"
    role: str  # USER or ASSISTANT
    message_id: int
    text: str


class TextDelta(Event):
    type: Literal["text.delta"] = "text.delta"
    text: str


class Thinking(Event):
    type: Literal["thinking"] = "thinking"
    text: str


class ToolCall(Event):
    type: Literal["tool.call"] = "tool.call"
    call_id: str
    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)
    idempotency_key: str


class ToolResult(Event):
    type: Literal["tool.result"] = "tool.result"
    call_id: str
    name: str
    output: str
    is_error: bool = False


class Citation(Event):
    """A passage a member retrieved while answering (the `knowledge_search` tool): where it comes from, so the answer
    can be traced to its sources. `call_id` ties it to its `tool.call`; `ref` is the `[n]` the tool's text gave it."""

    type: Literal["citation"] = "citation"
    call_id: str
    ref: int
    knowledge_base: str  # namespace/name
    source: str  # the document: a path as it was ingested
    location: str  # "lines 12-30", "page 4", ...
    chunk_id: str
    score: float
    text: str = ""  # the start of the passage, for display


class Handoff(Event):
    """Work passed from one member to another: a pipeline stage's handoff, a route's choice, a delegation."""

    type: Literal["handoff"] = "handoff"
    source: str | None = None
    target: str
    text: str
    reason: str = ""  # pipeline | route | delegate | collaborate | merge


class ConfirmationRequest(Event):
    type: Literal["confirmation.request"] = "confirmation.request"
    stage: int
    next_stage: int
    handoff: str


class Usage(Event):
    type: Literal["usage"] = "usage"
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    total_tokens: int = 0  # of the whole task so far
    total_cost_usd: float = 0.0


class TaskResumed(Event):
    """The process running the task stopped; this one carries on from the last step it wrote."""

    type: Literal["task.resumed"] = "task.resumed"
    pid: int
    rerun: list[int] = Field(default_factory=list, description="message ids of unfinished steps that run again")


class Notice(Event):
    """Something a person should know that is not an error: a skill that was not found and is skipped, old turns
    trimmed to fit the model's context window, an MCP server that could not start."""

    type: Literal["notice"] = "notice"
    code: str  # skill.missing | context.trimmed | mcp.unavailable | ...
    message: str


class Error(Event):
    type: Literal["error"] = "error"
    message: str
    code: str = "error"  # rate_limit | server | timeout | fatal | limit | internal
    retryable: bool = False
    attempt: int | None = None


def event_from_record(record: EventRecord) -> Event:
    cls = Event.TYPES.get(record.type, Event)
    fields = {**record.data, "type": record.type, "seq": record.seq, "task_id": record.task_id}
    fields.update(subtask_id=record.subtask_id, at=record.created_at)
    try:
        return cls.model_validate(fields)
    except ValueError:  # written by another version with other fields: still readable
        return Event.model_validate(fields)
