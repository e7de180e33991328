"""OpenAI through the `openai` SDK: Chat Completions, and the Responses API (`apiFormat: responses`), streamed."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from wegent_core import (
    ChatMessage,
    Chunk,
    FatalModelError,
    ModelError,
    ModelPlan,
    ModelRequest,
    TextChunk,
    ThinkingChunk,
    ToolCallChunk,
    ToolCallRequest,
    UsageChunk,
)

from ._common import (
    Connection,
    SdkModel,
    Settings,
    error_for_status,
    new_call_id,
    parse_arguments,
    require,
    stainless_error,
)

PROVIDER = "openai"


class _OpenAIBase(SdkModel):
    """The SDK client of both APIs; errors mapped to the engine's classes."""

    default_model = "gpt-4"  # upstream's default model_id

    def _make(self, settings: Settings, connection: Connection) -> Any:
        openai = require("openai", "openai")
        try:
            return openai.AsyncOpenAI(
                api_key=connection.api_key,
                base_url=connection.base_url,
                default_headers=connection.headers or None,
                timeout=settings.timeout,
                max_retries=0,  # the engine retries, with backoff and events
            )
        except openai.OpenAIError as error:  # no key given and none in OPENAI_API_KEY
            raise FatalModelError(f"{PROVIDER}: {error}") from None

    async def stream(self, request: ModelRequest) -> AsyncIterator[Chunk]:
        client, settings = self._connect()
        try:
            async for chunk in self._stream(client, settings, request):
                yield chunk
        except Exception as error:
            mapped = stainless_error(error, PROVIDER)
            if mapped is None:
                raise
            raise mapped from error

    def _stream(self, client: Any, settings: Settings, request: ModelRequest) -> AsyncIterator[Chunk]:
        raise NotImplementedError


def _effort(config: dict[str, Any] | None) -> str | None:
    """The reasoning effort of `thinking_config` (`reasoning_effort` or `effort`: minimal, low, medium, high)."""
    if not config:
        return None
    effort = config.get("reasoning_effort") or config.get("effort")
    return str(effort) if effort else None


# --- chat completions ---------------------------------------------------------------------------------------------


class OpenAIChatModel(_OpenAIBase):
    """A `ModelClient` for `/chat/completions` (OpenAI, and the many servers that speak it)."""

    async def _stream(self, client: Any, settings: Settings, request: ModelRequest) -> AsyncIterator[Chunk]:
        params = chat_params(request, settings)
        stream = await client.chat.completions.create(**params, stream=True, stream_options={"include_usage": True})
        calls: dict[int, dict[str, Any]] = {}  # tool calls arrive in fragments, keyed by index
        usage: Any = None
        async with stream:
            async for chunk in stream:
                usage = chunk.usage or usage
                for choice in chunk.choices[:1]:
                    for piece in _chat_delta(choice.delta, calls):
                        yield piece
        for index in sorted(calls):
            call = calls[index]
            arguments = parse_arguments("".join(call["arguments"]))
            yield ToolCallChunk(
                call=ToolCallRequest(id=call["id"] or new_call_id(), name=call["name"], arguments=arguments)
            )
        if usage is not None:
            yield UsageChunk(input_tokens=usage.prompt_tokens or 0, output_tokens=usage.completion_tokens or 0)


def _chat_delta(delta: Any, calls: dict[int, dict[str, Any]]) -> list[Chunk]:
    out: list[Chunk] = []
    extra = delta.model_extra or {}
    # Not in the OpenAI schema: servers that stream reasoning (llama.cpp, vLLM, DeepSeek) name it one of these.
    reasoning = extra.get("reasoning_content") or extra.get("reasoning")
    if isinstance(reasoning, str) and reasoning:
        out.append(ThinkingChunk(text=reasoning))
    if delta.content:
        out.append(TextChunk(text=delta.content))
    for fragment in delta.tool_calls or []:
        index = fragment.index if fragment.index is not None else len(calls)
        call = calls.setdefault(index, {"id": None, "name": "", "arguments": []})
        call["id"] = call["id"] or fragment.id
        if fragment.function is not None:
            call["name"] += fragment.function.name or ""
            call["arguments"].append(fragment.function.arguments or "")
    return out


def chat_params(request: ModelRequest, settings: Settings) -> dict[str, Any]:
    """The keyword arguments of `chat.completions.create` for a request."""
    params: dict[str, Any] = {"model": settings.model_id, "messages": chat_messages(request)}
    if request.tools:
        params["tools"] = [
            {"type": "function", "function": {"name": t.name, "description": t.description, "parameters": t.parameters}}
            for t in request.tools
        ]
        if request.tool_choice == "required":
            params["tool_choice"] = "required"
        elif request.tool_choice:
            params["tool_choice"] = {"type": "function", "function": {"name": request.tool_choice}}
    if settings.temperature is not None:
        params["temperature"] = settings.temperature
    if settings.max_output_tokens:
        # `max_tokens` is deprecated, and refused by reasoning models; servers that follow OpenAI read this one.
        params["max_completion_tokens"] = settings.max_output_tokens
    if effort := _effort(settings.think_config):
        params["reasoning_effort"] = effort
    return params


def chat_messages(request: ModelRequest) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [{"role": "system", "content": request.system}] if request.system else []
    for message in request.messages:
        out.append(_chat_message(message))
    return out


def _chat_message(message: ChatMessage) -> dict[str, Any]:
    if message.role == "tool":
        return {"role": "tool", "tool_call_id": message.tool_call_id or "", "content": message.content}
    if message.role == "user" or not message.tool_calls:
        return {"role": message.role, "content": message.content}
    calls = [
        {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": json.dumps(c.arguments)}}
        for c in message.tool_calls
    ]
    return {"role": "assistant", "content": message.content or None, "tool_calls": calls}


# --- responses ----------------------------------------------------------------------------------------------------


class OpenAIResponsesModel(_OpenAIBase):
    """A `ModelClient` for `/responses`. Stateless: the whole history is sent each time and nothing is stored."""

    async def _stream(self, client: Any, settings: Settings, request: ModelRequest) -> AsyncIterator[Chunk]:
        stream = await client.responses.create(**responses_params(request, settings), stream=True)
        async with stream:
            async for event in stream:
                for chunk in _responses_event(event):
                    yield chunk


def _responses_event(event: Any) -> list[Chunk]:
    kind = event.type
    if kind == "response.output_text.delta":
        return [TextChunk(text=event.delta)] if event.delta else []
    if kind in ("response.reasoning_summary_text.delta", "response.reasoning_text.delta"):
        return [ThinkingChunk(text=event.delta)] if event.delta else []
    if kind == "response.output_item.done" and event.item.type == "function_call":
        item = event.item
        call = ToolCallRequest(
            id=item.call_id or item.id or new_call_id(), name=item.name, arguments=parse_arguments(item.arguments)
        )
        return [ToolCallChunk(call=call)]
    if kind in ("response.completed", "response.incomplete") and event.response.usage is not None:
        usage = event.response.usage
        return [UsageChunk(input_tokens=usage.input_tokens or 0, output_tokens=usage.output_tokens or 0)]
    if kind == "response.failed":
        raise _failure(event.response.error)
    if kind == "error":
        raise _failure(event)
    return []


def _failure(error: Any) -> ModelError:
    """A failure reported inside the stream: the code says whether it is worth retrying."""
    code = str(getattr(error, "code", None) or "server_error")
    message = f"{PROVIDER}: {code}: {getattr(error, 'message', '') or ''}"
    if code == "rate_limit_exceeded":  # not insufficient_quota: waiting does not refill a quota
        return error_for_status(429, message)
    if code in ("server_error", "internal_error", "overloaded", "vector_store_timeout"):
        return error_for_status(500, message)
    return error_for_status(400, message)


def responses_params(request: ModelRequest, settings: Settings) -> dict[str, Any]:
    """The keyword arguments of `responses.create` for a request."""
    params: dict[str, Any] = {"model": settings.model_id, "input": responses_input(request.messages), "store": False}
    if request.system:
        params["instructions"] = request.system
    if request.tools:
        params["tools"] = [
            {
                "type": "function",
                "name": t.name,
                "description": t.description,
                "parameters": t.parameters,
                "strict": False,
            }
            for t in request.tools
        ]
        if request.tool_choice == "required":
            params["tool_choice"] = "required"
        elif request.tool_choice:
            params["tool_choice"] = {"type": "function", "name": request.tool_choice}
    if settings.temperature is not None:
        params["temperature"] = settings.temperature
    if settings.max_output_tokens:
        params["max_output_tokens"] = settings.max_output_tokens
    if effort := _effort(settings.think_config):
        params["reasoning"] = {"effort": effort, "summary": "auto"}
    return params


def responses_input(messages: tuple[ChatMessage, ...]) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for message in messages:
        if message.role == "tool":
            items.append(
                {"type": "function_call_output", "call_id": message.tool_call_id or "", "output": message.content}
            )
            continue
        if message.content or message.role == "user":
            items.append({"type": "message", "role": message.role, "content": message.content})
        for call in message.tool_calls:
            items.append(
                {
                    "type": "function_call",
                    "call_id": call.id,
                    "name": call.name,
                    "arguments": json.dumps(call.arguments),
                }
            )
    return items


def openai_model(plan: ModelPlan) -> OpenAIChatModel | OpenAIResponsesModel:
    """The `openai` protocol: chat completions, unless the Model's apiFormat asks for the Responses API."""
    if str(plan.api_format or "").lower() in ("responses", "openai-responses") or plan.protocol == "openai-responses":
        return OpenAIResponsesModel(plan)
    return OpenAIChatModel(plan)
