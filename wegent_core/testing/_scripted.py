"""The scripted model: a `ModelClient` that gives the replies it is told to, in order, and records every request.

A reply is a dict (the YAML form of `protocol: scripted` Models, under `modelConfig.script`) or a plain string:

    "hello"                                         the text `hello`
    {text: "hello", chunks: ["hel", "lo"]}          text streamed in the given pieces
    {thinking: "...", text: "..."}                  thinking first, then text
    {tool_call: {name: add, arguments: {a: 1}}}     one tool call
    {tool_calls: [{name: ...}, {name: ...}]}        parallel tool calls (text may come with them)
    {error: rate_limit | server | timeout | fatal, message: "..."}
    {usage: {input_tokens: 10, output_tokens: 5, cost_usd: 0.001}}   with any reply; otherwise counted from the text
    {delay: 0.5}                                    with any reply: wait that long first (a slow model)
    {member: reviewer}                              with any reply: only the Bot named `reviewer` gets it

It raises `ScriptExhausted` when a request finds no reply left for it, so a test never hangs on a missing reply.
A Model's script is played per task and per process: a task confirmed, continued or resumed in another process
starts its script again there, so give such scripts `member:` replies (or one Model per stage).
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Any

import anyio

from wegent_core._errors import WegentError
from wegent_core._hookspecs import Register, hookimpl
from wegent_core._models import (
    ERRORS_BY_CODE,
    Chunk,
    ModelRequest,
    TextChunk,
    ThinkingChunk,
    ToolCallChunk,
    ToolCallRequest,
    UsageChunk,
)
from wegent_core._plan import ModelPlan

SCRIPTED = "scripted"
_KEYS = frozenset(
    {"text", "chunks", "thinking", "tool_call", "tool_calls", "error", "message", "usage", "delay", "member"}
)


class ScriptError(WegentError):
    """A script reply that cannot be understood; says which reply and why."""


class ScriptExhausted(WegentError):
    """The model was called once more than its script has replies for."""


class ScriptedModel:
    """A `ModelClient` that plays `replies` in order. `requests` records every request it was given."""

    def __init__(self, replies: Iterable[str | Mapping[str, Any]] = (), *, name: str = "scripted") -> None:
        self.name = name
        self.replies = [_checked(reply, index) for index, reply in enumerate(replies)]
        self.requests: list[ModelRequest] = []
        self._used: set[int] = set()
        self._first = 0  # the first reply not used yet
        self._lock = threading.Lock()
        self._ids = itertools.count(1)

    def add(self, *replies: str | Mapping[str, Any]) -> ScriptedModel:
        """Append replies to the script (returns the model, for chaining)."""
        start = len(self.replies)
        self.replies += [_checked(reply, start + index) for index, reply in enumerate(replies)]
        return self

    @property
    def remaining(self) -> int:
        return len(self.replies) - len(self._used)

    async def stream(self, request: ModelRequest) -> AsyncIterator[Chunk]:
        reply = self._take(request)
        if reply.get("delay"):
            await anyio.sleep(float(reply["delay"]))
        if "error" in reply:
            error = ERRORS_BY_CODE[reply["error"]]
            raise error(reply.get("message") or f"scripted {reply['error']} error")
        if reply.get("thinking"):
            yield ThinkingChunk(text=str(reply["thinking"]))
        text = str(reply.get("text") or "")
        for piece in reply.get("chunks") or ([text] if text else []):
            yield TextChunk(text=str(piece))
        for call in _calls(reply):
            yield ToolCallChunk(call=ToolCallRequest(id=f"call-{next(self._ids)}", **call))
        last = request.messages[-1].content if request.messages else ""
        usage = reply.get("usage") or {  # a rough count, by words of the new message: enough for budgets in tests
            "input_tokens": len(last.split()) + len(request.system.split()),
            "output_tokens": len(text.split()) + 10 * len(_calls(reply)),
        }
        yield UsageChunk(**usage)

    def _take(self, request: ModelRequest) -> dict[str, Any]:
        with self._lock:
            self.requests.append(request)
            member = (request.member or "").rpartition("/")[2]
            while self._first in self._used:
                self._first += 1  # replies before it are all used: a long script stays cheap to play
            for index in range(self._first, len(self.replies)):
                reply = self.replies[index]
                if index not in self._used and reply.get("member") in (None, member):
                    self._used.add(index)
                    return reply
        asked = f" by {request.member}" if request.member else ""
        raise ScriptExhausted(
            f"the scripted model {self.name!r} was called{asked} with no reply left for it "
            f"(its script has {len(self.replies)}; call {len(self.requests)})"
        )

    def __repr__(self) -> str:
        return f"ScriptedModel({self.name!r}, {self.remaining} of {len(self.replies)} replies left)"


def _calls(reply: Mapping[str, Any]) -> list[dict[str, Any]]:
    calls = list(reply.get("tool_calls") or [])
    if reply.get("tool_call"):
        calls.insert(0, reply["tool_call"])
    return [{"name": call["name"], "arguments": dict(call.get("arguments") or {})} for call in calls]


def _checked(reply: str | Mapping[str, Any], index: int) -> dict[str, Any]:
    where = f"script reply {index + 1}"
    if isinstance(reply, str):
        return {"text": reply}
    if not isinstance(reply, Mapping):
        raise ScriptError(f"{where}: expected text or a mapping, got {type(reply).__name__}")
    unknown = sorted(set(reply) - _KEYS)
    if unknown:
        raise ScriptError(f"{where}: unknown key {unknown[0]!r} (known: {', '.join(sorted(_KEYS))})")
    if "error" in reply and reply["error"] not in ERRORS_BY_CODE:
        raise ScriptError(f"{where}: error must be one of {', '.join(ERRORS_BY_CODE)}, got {reply['error']!r}")
    calls = [reply["tool_call"]] if reply.get("tool_call") else []
    for call in [*calls, *(reply.get("tool_calls") or [])]:
        if not isinstance(call, Mapping) or not isinstance(call.get("name"), str):
            raise ScriptError(f"{where}: a tool call needs a name, got {call!r}")
        if not isinstance(call.get("arguments") or {}, Mapping):
            raise ScriptError(f"{where}: tool call {call['name']!r}: arguments must be a mapping")
    if not any(key in reply for key in ("text", "chunks", "tool_call", "tool_calls", "error", "thinking")):
        raise ScriptError(f"{where}: says nothing (give text, chunks, tool_call, tool_calls or error)")
    return dict(reply)


# --- the `scripted` model provider: Models with `protocol: scripted` ----------------------------------------------


def scripted_model(plan: ModelPlan) -> ScriptedModel:
    """A fresh `ScriptedModel` from a Model's `modelConfig.script` (a task gets one per Model it uses)."""
    try:
        return ScriptedModel(plan.script or [], name=f"{plan.namespace}/{plan.name}")
    except ScriptError as error:
        raise ScriptError(f"Model {plan.namespace}/{plan.name} modelConfig.{error}") from None


@hookimpl
def register_model_providers(register: Register) -> None:
    register(SCRIPTED, scripted_model, description="replies from modelConfig.script, for tests (wegent_core.testing)")
