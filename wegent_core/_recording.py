"""Recording a task's model traffic to a file, and replaying it: deterministic tests of real teams.

A recording is JSON Lines: a header, then one line per model call with the member that asked, the request, the
chunks of the reply as they streamed (or the error it raised). A replay answers each member's calls in the recorded
order (members running in parallel may interleave differently: each has its own queue), streams the same chunks with
the same tool call ids, and raises the same errors, so the task's events come out the same. A strict replay refuses
a request that differs from the recorded one, naming the call and what differs.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import defaultdict, deque
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter

from ._errors import WegentError
from ._models import ERRORS_BY_CODE, Chunk, ModelClient, ModelError, ModelRequest

FORMAT = "wegent-model-recording"
VERSION = 1
_CHUNK: TypeAdapter[Chunk] = TypeAdapter(Chunk)


class ReplayError(WegentError):
    """A replay was asked for a call that the recording does not have, or that differs from the recorded one."""


def fingerprint(request: ModelRequest) -> str:
    """What a replay compares: the system prompt, the messages, the tools offered and the tool choice."""
    data = request.model_dump(mode="json", include={"system", "messages", "tools", "tool_choice"})
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


class Recorder:
    """Appends every model call of the clients it wraps to `path` (created, or truncated, at the first call)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._started = False
        self._calls: dict[str, int] = defaultdict(int)

    def wrap(self, client: ModelClient, model: str) -> ModelClient:
        return _Recording(client, self, model)

    def write(self, entry: dict[str, Any]) -> None:
        with self._lock:
            member = entry["member"]
            self._calls[member] += 1
            entry = {"call": self._calls[member], **entry}
            mode = "a" if self._started else "w"
            with self.path.open(mode, encoding="utf-8") as out:
                if not self._started:
                    out.write(json.dumps({"format": FORMAT, "version": VERSION}) + "\n")
                out.write(json.dumps(entry) + "\n")
            self._started = True


class _Recording:
    def __init__(self, inner: ModelClient, recorder: Recorder, model: str) -> None:
        self.inner, self.recorder, self.model = inner, recorder, model
        self.context_window = getattr(inner, "context_window", None)

    async def stream(self, request: ModelRequest) -> AsyncIterator[Chunk]:
        chunks: list[dict[str, Any]] = []
        entry: dict[str, Any] = {
            "member": request.member or "",
            "model": self.model,
            "fingerprint": fingerprint(request),
            "request": request.model_dump(mode="json", exclude={"model"}),
            "chunks": chunks,
        }
        try:
            async for chunk in self.inner.stream(request):
                chunks.append(chunk.model_dump(mode="json"))
                yield chunk
        except ModelError as error:
            entry["error"] = {"code": error.code, "message": str(error), "retry_after": error.retry_after}
            self.recorder.write(entry)
            raise
        self.recorder.write(entry)


class ReplayModel:
    """A `ModelClient` that answers from a recording, each member's calls in their recorded order."""

    def __init__(self, path: str | Path, *, strict: bool = True) -> None:
        self.path = Path(path)
        self.strict = strict
        self._queues: dict[str, deque[dict[str, Any]]] = defaultdict(deque)
        self._lock = threading.Lock()
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()
        except OSError as error:
            raise ReplayError(f"{self.path}: cannot read the recording: {error.strerror}") from None
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
            except ValueError as error:
                raise ReplayError(f"{self.path}, line {number}: not JSON: {error}") from None
            if number == 1 and (not isinstance(entry, dict) or entry.get("format") != FORMAT):
                raise ReplayError(f"{self.path}: not a wegent model recording (line 1: {line[:80]!r})")
            if number > 1:
                self._queues[entry["member"]].append(entry)

    @property
    def remaining(self) -> int:
        return sum(len(queue) for queue in self._queues.values())

    async def stream(self, request: ModelRequest) -> AsyncIterator[Chunk]:
        entry = self._next(request)
        for chunk in entry["chunks"]:
            yield _CHUNK.validate_python(chunk)
        if "error" in entry:
            error = entry["error"]
            raise ERRORS_BY_CODE.get(error["code"], ModelError)(error["message"], retry_after=error.get("retry_after"))

    def _next(self, request: ModelRequest) -> dict[str, Any]:
        member = request.member or ""
        with self._lock:
            queue = self._queues.get(member)
            if not queue:
                raise ReplayError(f"{self.path}: no recorded call left for {member or 'an unnamed member'}")
            entry = queue.popleft()
        if self.strict and entry["fingerprint"] != fingerprint(request):
            difference = _difference(entry, request)
            raise ReplayError(f"{self.path}: call {entry['call']} of {member} differs from the recording: {difference}")
        return entry


def _difference(entry: dict[str, Any], request: ModelRequest) -> str:
    recorded = entry["request"]
    now = request.model_dump(mode="json", exclude={"model"})
    for key in ("system", "tools", "tool_choice"):
        if recorded.get(key) != now.get(key):
            return f"its {key} changed"
    old, new = recorded.get("messages", []), now["messages"]
    for index, (a, b) in enumerate(zip(old, new, strict=False)):
        if a != b:
            return f"message {index + 1} changed (recorded {a.get('content', '')[:60]!r}, now {b['content'][:60]!r})"
    return f"it has {len(new)} messages, the recording {len(old)}"
