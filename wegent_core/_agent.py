"""One member's turn: the agent loop that `Chat` and `Agno` shells run in the engine's process.

The loop sends the system prompt, the history and the new message to the member's model, streams every delta to the
task's events, runs the tool calls of a reply (in parallel), feeds their results back, and repeats until the model
answers without calling a tool, a tool ends the turn (`EndTurn`, as a route choice does), or a limit is hit.
Model errors are retried with backoff when they are retryable; cancellation is never caught here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import anyio

from ._context import Fitted, fit
from ._errors import LimitExceeded
from ._events import Error, Event, Notice, TextDelta, Thinking, ToolCall, ToolResult, Usage
from ._hookspecs import Register, hookimpl
from ._models import (
    ChatMessage,
    FatalModelError,
    ModelClient,
    ModelError,
    ModelRequest,
    ModelTimeoutError,
    RetryPolicy,
    TextChunk,
    ThinkingChunk,
    ToolCallChunk,
    ToolCallRequest,
    ToolSpec,
    UsageChunk,
)
from ._plan import MemberPlan
from ._resources import TeamLimits
from ._toolkits import MemberKit
from ._tools import Tool, ToolContext, ToolError


class EndTurn(Exception):  # a signal, not an error
    """Raised by a tool to end the caller's turn at once with `value` (a route's choice, say)."""

    def __init__(self, value: Any) -> None:
        super().__init__(value)
        self.value = value
        self.call_id: str | None = None  # set by the loop: the call that raised it


@dataclass
class Budget:
    """What a task has used against its Team's limits; shared by every member turn of the task."""

    limits: TeamLimits
    turns: int = 0
    model_calls: int = 0
    tokens: int = 0
    cost_usd: float = 0.0

    def start_turn(self) -> None:
        if self.turns >= self.limits.max_turns:
            raise LimitExceeded("max_turns", f"the task has taken {self.turns} member turns")
        self.turns += 1

    def start_model_call(self) -> None:
        if self.model_calls >= self.limits.max_model_calls:
            raise LimitExceeded("max_model_calls", f"the task has made {self.model_calls} model calls")
        self.model_calls += 1

    def add_usage(self, tokens: int, cost_usd: float) -> None:
        self.tokens += tokens
        self.cost_usd += cost_usd
        if self.limits.max_tokens is not None and self.tokens > self.limits.max_tokens:
            raise LimitExceeded("max_tokens", f"the task has used {self.tokens} tokens")
        if self.limits.max_cost_usd is not None and self.cost_usd > self.limits.max_cost_usd:
            raise LimitExceeded("max_cost_usd", f"the task has cost ${self.cost_usd:.4f}")

    def snapshot(self) -> dict[str, Any]:
        return {"turns": self.turns, "model_calls": self.model_calls, "tokens": self.tokens, "cost_usd": self.cost_usd}

    def restore(self, saved: dict[str, Any]) -> None:
        self.turns, self.model_calls = int(saved.get("turns", 0)), int(saved.get("model_calls", 0))
        self.tokens, self.cost_usd = int(saved.get("tokens", 0)), float(saved.get("cost_usd", 0.0))


@dataclass
class Turn:
    """Everything one member turn needs. `emit` records an event for the task (it is written before delivery)."""

    task_id: int
    subtask_id: int
    message_id: int
    member: MemberPlan
    # None for a runtime that calls no model of the engine, which it says by `run_turn.uses_model = False` (Dify
    # hands the turn to an external app: its Model holds the app's keys and has no protocol, so no client is made)
    model: ModelClient | None
    messages: Sequence[ChatMessage]  # the history, ending with the message to answer
    emit: Callable[[Event], None]
    budget: Budget
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    tools: Sequence[Tool] = ()
    system: str | None = None  # default: the member's system prompt
    kit: MemberKit | None = None  # the toolkits' tools and instructions; its tools may grow during the turn
    # What this member's runtime kept at its last completed turn of this task (`TurnResult.state`), read back from
    # the store, so it outlives the process: an external agent's conversation id, say. Empty at the first turn.
    state: Mapping[str, Any] = field(default_factory=dict)

    def current_tools(self) -> dict[str, Tool]:
        kit_tools = self.kit.tools if self.kit is not None else ()
        return {t.spec.name: t for t in (*self.tools, *kit_tools)}

    def system_prompt(self) -> str:
        base = self.member.system_prompt if self.system is None else self.system
        return self.kit.system_prompt(base) if self.kit is not None else base


@dataclass
class TurnResult:
    text: str
    messages: list[ChatMessage]  # what the turn added to the conversation, the answer last
    ended_by: Any = None  # the value of the `EndTurn` that ended the turn, if one did
    reused: bool = False  # the step had completed before (a resumed task): nothing ran now
    state: dict[str, Any] | None = None  # JSON-able runtime state for the member's next turn (None: keep the last)


async def run_turn(turn: Turn) -> TurnResult:
    """Run the member's turn to its answer (see the module docstring)."""
    return await limited_turn(turn, _loop)


async def limited_turn(turn: Turn, body: Callable[[Turn], Awaitable[TurnResult]]) -> TurnResult:
    """Count a turn against the task's limits and run `body` within the Team's turn timeout: every runtime's turn
    goes through here."""
    turn.budget.start_turn()
    limit = turn.budget.limits.turn_timeout_seconds
    try:
        with anyio.fail_after(limit):
            return await body(turn)
    except TimeoutError:
        raise LimitExceeded("turn_timeout_seconds", f"{turn.member.bot} did not answer within {limit:g} s") from None


async def _loop(turn: Turn) -> TurnResult:
    system = turn.system_prompt()
    history, added = list(turn.messages), []
    trimmed = 0
    for step in range(1, 1_000_000):
        tools = turn.current_tools()
        specs = tuple(t.spec for t in tools.values())
        fitted = _fit(turn, history, system, specs)
        if fitted.dropped > trimmed:
            trimmed = fitted.dropped
            turn.emit(_trimmed_notice(turn, fitted))
        request = ModelRequest(
            model=turn.member.model,
            system=system,
            messages=tuple(fitted.messages),
            tools=specs,
            tool_choice="required" if step == 1 and specs and turn.member.model.tool_choice == "required" else None,
            member=turn.member.bot,
        )
        text, calls = await _call_model(turn, request)
        reply = ChatMessage(role="assistant", content=text, tool_calls=tuple(calls))
        history.append(reply)
        added.append(reply)
        if not calls:
            return TurnResult(text=text, messages=added)
        results, ended = await _run_tools(turn, tools, calls, step)
        history += results
        added += results
        if ended is not None:
            return TurnResult(text=text, messages=added, ended_by=ended.value)
    raise AssertionError("unreachable: the budget stops the loop")


def _fit(turn: Turn, history: list[ChatMessage], system: str, specs: tuple[ToolSpec, ...]) -> Fitted:
    """The history that fits the model's context window (the client's own figure wins: it knows its model)."""
    model = turn.member.model
    window = getattr(turn.model, "context_window", None) or model.context_window
    return fit(history, window=window, system=system, tools=specs, reserve=model.max_output_tokens)


def _trimmed_notice(turn: Turn, fitted: Fitted) -> Notice:
    return Notice(
        subtask_id=turn.subtask_id,
        member=turn.member.bot,
        code="context.trimmed",
        message=f"{fitted.dropped} oldest messages left out to fit the model's context window "
        f"(about {fitted.tokens} tokens sent)",
    )


async def _call_model(turn: Turn, request: ModelRequest) -> tuple[str, list[ToolCallRequest]]:
    """One reply, retried on retryable errors; the text and the tool calls it asked for."""
    policy = turn.retry
    for attempt in range(1, policy.attempts + 1):
        turn.budget.start_model_call()
        try:
            return await _stream_reply(turn, request)
        except LimitExceeded:
            raise  # the usage of this reply broke a budget: not the model's failure
        except ModelError as error:
            failure = error
        except (TimeoutError, OSError) as error:
            failure = ModelTimeoutError(f"{type(error).__name__}: {error}")
        except Exception as error:  # a provider bug: the turn fails with its message, the task does not hang
            failure = FatalModelError(f"{type(error).__name__}: {error}")
        model_call_failed(turn, failure, attempt)
        await anyio.sleep(policy.delay(attempt, failure))
    raise AssertionError("unreachable")


def model_call_failed(turn: Turn, error: ModelError, attempt: int, *, final: bool = False) -> None:
    """Announce a failed model call (attempt `attempt`, from 1) as an `error` event, and raise it when it was the
    last: out of attempts, not retryable, or `final` (a runtime that cannot retry it)."""
    last = final or attempt >= turn.retry.attempts or not error.retryable
    turn.emit(
        Error(
            subtask_id=turn.subtask_id,
            member=turn.member.bot,
            message=str(error),
            code=error.code,
            retryable=not last,
            attempt=attempt,
        )
    )
    if last:
        raise error


async def _stream_reply(turn: Turn, request: ModelRequest) -> tuple[str, list[ToolCallRequest]]:
    member, subtask = turn.member.bot, turn.subtask_id
    text: list[str] = []
    calls: list[ToolCallRequest] = []
    async for chunk in turn.model.stream(request):
        if isinstance(chunk, TextChunk):
            text.append(chunk.text)
            turn.emit(TextDelta(subtask_id=subtask, member=member, text=chunk.text))
        elif isinstance(chunk, ThinkingChunk):
            turn.emit(Thinking(subtask_id=subtask, member=member, text=chunk.text))
        elif isinstance(chunk, ToolCallChunk):
            calls.append(chunk.call)
        elif isinstance(chunk, UsageChunk):
            turn.budget.add_usage(chunk.input_tokens + chunk.output_tokens, chunk.cost_usd)
            turn.emit(
                Usage(
                    subtask_id=subtask,
                    member=member,
                    input_tokens=chunk.input_tokens,
                    output_tokens=chunk.output_tokens,
                    cost_usd=chunk.cost_usd,
                    total_tokens=turn.budget.tokens,
                    total_cost_usd=turn.budget.cost_usd,
                )
            )
    return "".join(text), calls


async def _run_tools(
    turn: Turn, tools: dict[str, Tool], calls: list[ToolCallRequest], step: int
) -> tuple[list[ChatMessage], EndTurn | None]:
    """Run a reply's tool calls concurrently; their results in call order, and the first `EndTurn` raised."""
    results: list[ChatMessage | None] = [None] * len(calls)
    ended: list[EndTurn] = []
    limits: list[LimitExceeded] = []

    async def run(index: int, call: ToolCallRequest) -> None:
        key = f"task-{turn.task_id}/message-{turn.message_id}/step-{step}/call-{index + 1}"
        context = ToolContext(turn.task_id, turn.member.bot, call.id, key, turn.subtask_id)
        turn.emit(
            ToolCall(
                subtask_id=turn.subtask_id,
                member=turn.member.bot,
                call_id=call.id,
                name=call.name,
                arguments=call.arguments,
                idempotency_key=key,
            )
        )
        try:
            output, is_error = await _call_tool(tools, call, context, ended)
        except LimitExceeded as error:  # stop the other calls, and raise it (not a group of it) below
            limits.append(error)
            group.cancel_scope.cancel()
            return
        turn.emit(
            ToolResult(
                subtask_id=turn.subtask_id,
                member=turn.member.bot,
                call_id=call.id,
                name=call.name,
                output=output,
                is_error=is_error,
            )
        )
        results[index] = ChatMessage(role="tool", content=output, tool_call_id=call.id, name=call.name)

    async with anyio.create_task_group() as group:
        for index, call in enumerate(calls):
            group.start_soon(run, index, call)
    if limits:
        raise limits[0]
    if len(ended) > 1:  # a reply may end the turn through one call only: none of them does, and the model hears why
        for index, call in enumerate(calls):
            if any(end.call_id == call.id for end in ended):
                refusal = f"error: {call.name} was called {len(ended)} times in one reply; call it exactly once"
                results[index] = ChatMessage(role="tool", content=refusal, tool_call_id=call.id, name=call.name)
        ended = []
    return [r for r in results if r is not None], (ended[0] if ended else None)


async def _call_tool(
    tools: dict[str, Tool], call: ToolCallRequest, context: ToolContext, ended: list[EndTurn]
) -> tuple[str, bool]:
    found = tools.get(call.name)
    if found is None:
        known = ", ".join(sorted(tools)) or "none"
        return f"error: there is no tool {call.name!r} (tools: {known})", True
    try:
        return await found.call(call.arguments, context), False
    except EndTurn as end:
        end.call_id = call.id
        ended.append(end)
        return str(end.value), False
    except LimitExceeded:
        raise  # a member turn run by the tool (a delegation) hit a limit of the task
    except ToolError as error:
        return f"error: {error}", True
    except Exception as error:  # the model hears that its tool broke; the task goes on
        return f"error: tool {call.name} failed: {type(error).__name__}: {error}", True


# --- the plugin: the agent loop is the runtime of the Chat and Agno shells -------------------------------------------

RUNTIME_SHELLS = {
    "Chat": "the agent loop in the engine's process: model, tools, streaming",
    "Agno": "the agent loop in the engine's process (team modes are the engine's collaboration models)",
}


@hookimpl
def register_runtimes(register: Register) -> None:
    for shell, description in RUNTIME_SHELLS.items():
        register(shell, run_turn, description=description)
