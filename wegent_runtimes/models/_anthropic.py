"""Claude through the Anthropic Messages API (`anthropic` SDK 2.x), streamed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from functools import partial
from typing import Any

from wegent_core import (
    ChatMessage,
    Chunk,
    FatalModelError,
    ModelPlan,
    ModelRequest,
    TextChunk,
    ThinkingChunk,
    ToolCallChunk,
    ToolCallRequest,
    UsageChunk,
)

from ._common import (
    DEFAULT_MAX_TOKENS,
    Connection,
    SdkModel,
    Settings,
    add_turn,
    parse_arguments,
    require,
    stainless_error,
)

PROVIDER = "anthropic"


class AnthropicModel(SdkModel):
    """A `ModelClient` for the Messages API."""

    default_model = "claude-sonnet-4-5"

    def __init__(self, plan: ModelPlan) -> None:
        super().__init__(plan)
        # Thinking blocks (with their signatures) of replies that called tools, by the first call's id: the API
        # wants them back, unchanged, before the tool_use blocks when the conversation goes on.
        self._thinking: dict[str, list[dict[str, Any]]] = {}

    def _make(self, settings: Settings, connection: Connection) -> Any:
        anthropic = require("anthropic", "anthropic")
        try:
            return anthropic.AsyncAnthropic(
                api_key=connection.api_key,
                base_url=connection.base_url,
                default_headers=connection.headers or None,
                timeout=settings.timeout,
                max_retries=0,  # the engine retries, with backoff and events
            )
        except anthropic.AnthropicError as error:
            raise FatalModelError(f"{PROVIDER}: {error}") from None

    async def stream(self, request: ModelRequest) -> AsyncIterator[Chunk]:
        client, settings = self._connect()
        params = build_params(request, settings, self._thinking)
        try:
            events = await client.messages.create(**params, stream=True)
            async with events:
                async for chunk in self._read(events):
                    yield chunk
        except Exception as error:
            mapped = stainless_error(error, PROVIDER)
            if mapped is None:
                raise
            raise mapped from error

    async def _read(self, events: Any) -> AsyncIterator[Chunk]:
        blocks: dict[int, dict[str, Any]] = {}  # open content blocks by index
        thinking: list[dict[str, Any]] = []
        first_call: str | None = None
        input_tokens = output_tokens = 0
        async for event in events:
            kind = event.type
            if kind == "message_start":
                input_tokens = _input_tokens(event.message.usage)
                output_tokens = event.message.usage.output_tokens or 0
            elif kind == "content_block_start":
                block = event.content_block
                blocks[event.index] = {"type": block.type, "id": getattr(block, "id", None), "parts": []}
                blocks[event.index]["name"] = getattr(block, "name", None)
                if block.type == "text" and block.text:
                    yield TextChunk(text=block.text)
                elif block.type == "redacted_thinking":
                    thinking.append({"type": "redacted_thinking", "data": block.data})
            elif kind == "content_block_delta":
                chunk = _delta(event.delta, blocks.get(event.index))
                if chunk is not None:
                    yield chunk
            elif kind == "content_block_stop":
                block = blocks.pop(event.index, None) or {}
                if block.get("type") == "tool_use":
                    call = ToolCallRequest(
                        id=block["id"], name=block["name"], arguments=parse_arguments("".join(block["parts"]))
                    )
                    first_call = first_call or call.id
                    yield ToolCallChunk(call=call)
                elif block.get("type") == "thinking":
                    thinking.append(
                        {"type": "thinking", "thinking": "".join(block["parts"]), "signature": block.get("signature")}
                    )
            elif kind == "message_delta" and event.usage is not None:
                output_tokens = event.usage.output_tokens or output_tokens
                input_tokens = _input_tokens(event.usage) or input_tokens
        if first_call and thinking:
            self._thinking[first_call] = thinking
        yield UsageChunk(input_tokens=input_tokens, output_tokens=output_tokens)


def _delta(delta: Any, block: dict[str, Any] | None) -> Chunk | None:
    kind = delta.type
    if kind == "text_delta":
        return TextChunk(text=delta.text) if delta.text else None
    if kind == "thinking_delta":
        if block is not None:
            block["parts"].append(delta.thinking)
        return ThinkingChunk(text=delta.thinking) if delta.thinking else None
    if block is not None and kind == "input_json_delta":
        block["parts"].append(delta.partial_json)
    elif block is not None and kind == "signature_delta":
        block["signature"] = delta.signature
    return None


def _input_tokens(usage: Any) -> int:
    """Input tokens in all: the cache reads and writes are counted apart from `input_tokens` by the API."""
    fields = ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
    return sum(getattr(usage, name, None) or 0 for name in fields)


# --- the request --------------------------------------------------------------------------------------------------


def build_params(
    request: ModelRequest, settings: Settings, thinking: dict[str, list[dict[str, Any]]] | None = None
) -> dict[str, Any]:
    """The keyword arguments of `messages.create` for a request."""
    params: dict[str, Any] = {
        "model": settings.model_id,
        "max_tokens": settings.max_output_tokens or DEFAULT_MAX_TOKENS,
        "messages": convert_messages(request.messages, thinking or {}),
    }
    if request.system:
        params["system"] = request.system
    if request.tools:
        params["tools"] = [
            {"name": t.name, "description": t.description, "input_schema": t.parameters} for t in request.tools
        ]
        if request.tool_choice == "required":
            params["tool_choice"] = {"type": "any"}
        elif request.tool_choice:
            params["tool_choice"] = {"type": "tool", "name": request.tool_choice}
    think = _thinking_param(settings.think_config)
    # The API refuses extended thinking together with a forced tool choice; the forced call wins.
    if think is not None and "tool_choice" not in params:
        params["thinking"] = think
    if settings.temperature is not None and "thinking" not in params:
        # anthropic 2.x has no `temperature` argument any more; the API still reads it from the body.
        params["extra_body"] = {"temperature": settings.temperature}
    return params


def _thinking_param(config: dict[str, Any] | None) -> dict[str, Any] | None:
    """`thinking_config` as the API's own `{"type": "enabled", "budget_tokens": N}` or `{"type": "adaptive"}`, or
    the shorthand `{"budget_tokens": N}`."""
    if not config:
        return None
    if config.get("type") in ("enabled", "adaptive"):
        return dict(config)
    if config.get("type") == "disabled":
        return None
    budget = config.get("budget_tokens") or config.get("budgetTokens")
    return {"type": "enabled", "budget_tokens": int(budget)} if budget else None


def convert_messages(
    messages: tuple[ChatMessage, ...], thinking: dict[str, list[dict[str, Any]]]
) -> list[dict[str, Any]]:
    """History as Messages API turns. The results of one reply's tool calls go in one user turn (the API requires
    every tool_result of a reply right after it), before any text of that turn; consecutive turns of one role merge."""
    turns: list[dict[str, Any]] = []
    add = partial(add_turn, turns, key="content")

    for message in messages:
        if message.role == "tool":
            result = {"type": "tool_result", "tool_use_id": message.tool_call_id or "", "content": message.content}
            add("user", [result])
        elif message.role == "user":
            add("user", [{"type": "text", "text": message.content}] if message.content else [])
        else:
            blocks: list[dict[str, Any]] = []
            if message.tool_calls:
                blocks += thinking.get(message.tool_calls[0].id, [])
            if message.content:
                blocks.append({"type": "text", "text": message.content})
            blocks += [
                {"type": "tool_use", "id": c.id, "name": c.name, "input": c.arguments} for c in message.tool_calls
            ]
            add("assistant", blocks)
    return turns
