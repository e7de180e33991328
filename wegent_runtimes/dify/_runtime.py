"""The `Dify` shell type: a member's turn is delegated to a Dify app over its Service API (reference 5.6).

The app's mode (`GET /v1/info`) picks the call: chat, agent-chat and chatflow (advanced-chat) apps answer through
`/v1/chat-messages`, workflow apps through `/v1/workflows/run` (the answer is their outputs as indented JSON), and
completion apps through `/v1/completion-messages`. Every run streams; text reaches the task's events as it comes.
The Dify conversation of a chat app is kept per task and member in `TurnResult.state`, so follow-up messages (and a
resumed task in another process) continue it. A cancelled turn asks Dify to stop its run before it ends.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from typing import Any

import anyio

from wegent_core import ChatMessage, FatalModelError, ModelError, Turn, TurnResult, limited_turn, model_call_failed
from wegent_core._events import Notice, TextDelta, ToolCall, ToolResult, Usage

from ._client import CHAT_MODES, STOP_TIMEOUT, ConversationLost, DifyClient, http_error
from ._config import DifyConfig, bot_prompt_params, merge_params, split_prompt

EMPTY_ANSWER = "No answer received from Dify application"


async def run_turn(turn: Turn) -> TurnResult:
    """Run the member's turn on its Dify app, within the Team's turn timeout (see the module docstring)."""
    return await limited_turn(turn, _turn)


run_turn.uses_model = False  # type: ignore[attr-defined]  # the engine makes no model client (see Turn.model)


def request_for(
    mode: str, prompt: str, params: dict[str, Any], user: str, conversation: str | None
) -> tuple[str, dict[str, Any]]:
    """The path and JSON body of a streaming run of an app of `mode`."""
    if mode == "workflow":  # the prompt is an input too, unless the params already give the query
        inputs = dict(params)
        if "query" not in inputs and "user_query" not in inputs:
            inputs["query"] = prompt
        return "/v1/workflows/run", {"inputs": inputs, "response_mode": "streaming", "user": user}
    if mode == "completion":  # a completion app's prompt is its `query` input
        inputs = {"query": prompt, **params}
        return "/v1/completion-messages", {"inputs": inputs, "response_mode": "streaming", "user": user}
    body = {
        "inputs": params,
        "query": prompt,
        "response_mode": "streaming",
        "user": user,
        "auto_generate_name": True,
    }
    if conversation:
        body["conversation_id"] = conversation
    return "/v1/chat-messages", body


def stop_path(mode: str, dify_task: str) -> str:
    if mode == "workflow":
        return f"/v1/workflows/tasks/{dify_task}/stop"
    if mode == "completion":
        return f"/v1/completion-messages/{dify_task}/stop"
    return f"/v1/chat-messages/{dify_task}/stop"


async def _turn(turn: Turn) -> TurnResult:
    config = DifyConfig.from_plan(turn.member.model)
    prompt, block, ignored = split_prompt(turn.messages[-1].content if turn.messages else "")
    if ignored:
        turn.emit(_notice(turn, "dify.params_ignored", ignored))
    params = merge_params(bot_prompt_params(turn.member.system_prompt), config.params, block)
    user = f"task-{turn.task_id}"
    conversation = turn.state.get("conversation_id")
    async with DifyClient(config) as client:
        mode = await client.mode()
        for attempt in itertools.count(1):
            path, body = request_for(mode, prompt, params, user, conversation)
            turn.budget.start_model_call()
            run = _Run(turn, mode)
            try:
                answer = await _stream(client, run, path, body, user)
            except ConversationLost as lost:
                turn.emit(_notice(turn, "dify.conversation_lost", f"Dify: {lost}; starting a new conversation"))
                conversation = None
                continue
            except ModelError as error:
                # once text was streamed a retry would repeat it (and Dify has kept the message): fail instead
                model_call_failed(turn, error, attempt, final=run.streamed)
                await anyio.sleep(turn.retry.delay(attempt, error))
                continue
            state = {"conversation_id": run.conversation} if mode in CHAT_MODES and run.conversation else None
            return TurnResult(text=answer, messages=[ChatMessage(role="assistant", content=answer)], state=state)
    raise AssertionError("unreachable")


async def _stream(client: DifyClient, run: _Run, path: str, body: dict[str, Any], user: str) -> str:
    """Follow one streaming run to its answer. Cancelled (or the stream broke), it asks Dify to stop the run,
    which would otherwise go on spending tokens for nobody, and re-raises: cancellation is never swallowed."""
    try:
        async for event in client.events(path, body):
            run.on_event(event)
    except (anyio.get_cancelled_exc_class(), ModelError):
        if run.dify_task is not None and not run.ended:  # before the first event there is nothing to stop yet
            with anyio.move_on_after(STOP_TIMEOUT, shield=True):
                await client.stop(stop_path(run.mode, run.dify_task), user)
        raise
    return run.answer()


@dataclass
class _Run:
    """What one streaming run has produced so far."""

    turn: Turn
    mode: str
    chunks: list[str] = field(default_factory=list)
    streamed: bool = False  # text reached the task's events
    dify_task: str | None = None  # Dify's task id: what the stop endpoints take
    conversation: str | None = None
    outputs: Any = None  # a workflow's outputs
    tools_done: set[str] = field(default_factory=set)
    ended: bool = False  # Dify said the run is over (its last event, or an error)

    def on_event(self, event: dict[str, Any]) -> None:
        self.dify_task = event.get("task_id") or self.dify_task
        self.conversation = event.get("conversation_id") or self.conversation
        kind = event.get("event")
        self.ended = kind in ("message_end", "error") or (kind == "workflow_finished" and self.mode == "workflow")
        if kind in ("message", "agent_message"):
            self._text(str(event.get("answer") or ""))
        elif kind == "text_chunk" and self.mode == "workflow":  # a chatflow's text comes again as messages
            self._text(str((event.get("data") or {}).get("text") or ""))
        elif kind == "message_replace":  # Dify's moderation replaced the whole answer
            self.chunks = [str(event.get("answer") or "")]
            self.turn.emit(_notice(self.turn, "dify.answer_replaced", "Dify replaced the answer (moderation)"))
        elif kind == "message_end":
            self._message_usage(((event.get("metadata") or {}).get("usage")) or {})
        elif kind == "agent_thought":
            self._tool(event)
        elif kind == "workflow_finished":
            self._workflow_finished(event.get("data") or {})
        elif kind == "error":
            raise _stream_error(self.mode, event)
        # ping, workflow_started, node_started, node_finished, message_file, tts_message...: nothing to record

    def answer(self) -> str:
        if self.mode == "workflow":
            text = json.dumps(self.outputs, indent=2, ensure_ascii=False) if self.outputs else ""
        else:
            text = "".join(self.chunks)
        if not text.strip():
            raise FatalModelError(EMPTY_ANSWER)
        return text

    def _text(self, text: str) -> None:
        if text:
            self.chunks.append(text)
            self.streamed = True
            self.turn.emit(TextDelta(subtask_id=self.turn.subtask_id, member=self.turn.member.bot, text=text))

    def _workflow_finished(self, data: dict[str, Any]) -> None:
        status = data.get("status")
        if status in ("failed", "stopped") and data.get("error"):
            prefix = "Dify Workflow error" if self.mode == "workflow" else "Dify API error"
            raise FatalModelError(f"{prefix}: {data.get('error')} (workflow {status})")
        self.outputs = data.get("outputs")
        if self.mode == "workflow":  # a chatflow's usage comes with message_end; count it once
            self._usage(int(data.get("total_tokens") or 0), 0, 0.0)

    def _message_usage(self, usage: dict[str, Any]) -> None:
        price = _float(usage.get("total_price")) if usage.get("currency", "USD") == "USD" else 0.0
        self._usage(int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0), price)

    def _usage(self, input_tokens: int, output_tokens: int, cost: float) -> None:
        """Dify's own count (a workflow reports only a total: it is given as input tokens)."""
        budget = self.turn.budget
        budget.add_usage(input_tokens + output_tokens, cost)
        self.turn.emit(
            Usage(
                subtask_id=self.turn.subtask_id,
                member=self.turn.member.bot,
                input_tokens=input_tokens,
                output_tokens=output_tokens,
                cost_usd=cost,
                total_tokens=budget.tokens,
                total_cost_usd=budget.cost_usd,
            )
        )

    def _tool(self, event: dict[str, Any]) -> None:
        """An agent app's tool use, once its observation is in (Dify sends each thought again as it grows)."""
        thought, tool = str(event.get("id") or ""), str(event.get("tool") or "")
        if not tool or not event.get("observation") or thought in self.tools_done:
            return
        self.tools_done.add(thought)
        member, subtask = self.turn.member.bot, self.turn.subtask_id
        arguments = _arguments(event.get("tool_input"))
        key = f"dify/{self.dify_task}/{thought}"
        self.turn.emit(
            ToolCall(
                subtask_id=subtask, member=member, call_id=thought, name=tool, arguments=arguments, idempotency_key=key
            )
        )
        output = str(event.get("observation"))
        self.turn.emit(ToolResult(subtask_id=subtask, member=member, call_id=thought, name=tool, output=output))


def _stream_error(mode: str, event: dict[str, Any]) -> ModelError:
    prefix = "Dify Workflow error" if mode == "workflow" else "Dify API error"
    status = event.get("status")
    error = http_error(status if isinstance(status, int) else 500, event, prefix=prefix)
    assert isinstance(error, ModelError)  # no conversation was given: it cannot be ConversationLost
    return error


def _arguments(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    try:
        parsed = json.loads(value) if isinstance(value, str) and value.strip() else {}
    except ValueError:
        return {"_raw": value}
    return parsed if isinstance(parsed, dict) else {"_raw": value}


def _float(value: Any) -> float:
    try:
        return float(value or 0)
    except (TypeError, ValueError):
        return 0.0


def _notice(turn: Turn, code: str, message: str) -> Notice:
    return Notice(subtask_id=turn.subtask_id, member=turn.member.bot, code=code, message=message)
