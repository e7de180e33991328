"""Gemini through the Gemini developer API (`google-genai` SDK 3.x), streamed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from functools import partial
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
    add_turn,
    error_for_status,
    new_call_id,
    require,
    retry_after,
    tool_names,
    transport_error,
)

PROVIDER = "gemini"
DEFAULT_API_VERSION = "v1beta"  # the version of the Gemini developer API paths (models/{m}:generateContent)
# Gemini 3 refuses a function call in history without the thought signature it came with. A call this client did not
# receive itself (an earlier process, another model) gets the placeholder the Gemini API documents for that case.
SKIP_SIGNATURE = b"skip_thought_signature_validator"


class GeminiModel(SdkModel):
    """A `ModelClient` for `generateContent` / `streamGenerateContent`."""

    default_model = "gemini-2.5-flash"

    def __init__(self, plan: ModelPlan) -> None:
        super().__init__(plan)
        self._signatures: dict[str, bytes] = {}  # thought signatures of the calls this client received, by call id

    def _make(self, settings: Settings, connection: Connection) -> Any:
        genai = require("google.genai", "google")
        options: dict[str, Any] = {
            "api_version": str(settings.env.get("api_version") or DEFAULT_API_VERSION),
            "timeout": int(settings.timeout * 1000),  # milliseconds
            "retry_options": {"attempts": 1},  # the engine retries, with backoff and events
        }
        if connection.base_url:
            options["base_url"] = connection.base_url
        if connection.headers:
            options["headers"] = connection.headers
        try:
            return genai.Client(api_key=connection.api_key, http_options=options)
        except ValueError as error:  # no key given and none in GEMINI_API_KEY / GOOGLE_API_KEY
            raise FatalModelError(f"{PROVIDER}: {error}") from None

    async def _close(self, client: Any) -> None:
        await client.aio.aclose()

    async def stream(self, request: ModelRequest) -> AsyncIterator[Chunk]:
        client, settings = self._connect()
        contents, config = build_request(request, settings, self._signatures)
        try:
            replies = await client.aio.models.generate_content_stream(
                model=settings.model_id, contents=contents, config=config
            )
            usage: Any = None
            async for reply in replies:
                usage = reply.usage_metadata or usage
                for chunk in self._parts(reply):
                    yield chunk
        except Exception as error:
            mapped = gemini_error(error)
            if mapped is None:
                raise
            raise mapped from error
        if usage is not None:
            output = (usage.candidates_token_count or 0) + (usage.thoughts_token_count or 0)
            yield UsageChunk(input_tokens=usage.prompt_token_count or 0, output_tokens=output)

    def _parts(self, reply: Any) -> list[Chunk]:
        out: list[Chunk] = []
        for candidate in (reply.candidates or [])[:1]:
            for part in (candidate.content.parts if candidate.content else None) or []:
                if part.function_call is not None:
                    call = part.function_call
                    request = ToolCallRequest(
                        id=call.id or new_call_id(), name=call.name or "", arguments=call.args or {}
                    )
                    if part.thought_signature:
                        self._signatures[request.id] = part.thought_signature
                    out.append(ToolCallChunk(call=request))
                elif part.text:
                    out.append(ThinkingChunk(text=part.text) if part.thought else TextChunk(text=part.text))
        return out


def gemini_error(error: Exception) -> ModelError | None:
    genai_errors = require("google.genai.errors", "google")
    if not isinstance(error, genai_errors.APIError):
        return transport_error(error, PROVIDER)
    headers = getattr(error.response, "headers", None)
    wait = retry_after(headers) or _retry_delay(error.details)
    status = error.code if isinstance(error.code, int) else 500
    return error_for_status(
        status, f"{PROVIDER}: {status} {error.status or ''} {error.message or ''}".strip(), wait=wait
    )


def _retry_delay(details: Any) -> float | None:
    """Google APIs say how long to wait in the body: `error.details[] {"@type": ...RetryInfo, "retryDelay": "13s"}`."""
    error = details.get("error") if isinstance(details, dict) else None
    for item in (error or {}).get("details") or []:
        if isinstance(item, dict) and str(item.get("@type", "")).endswith("RetryInfo"):
            delay = str(item.get("retryDelay") or "").removesuffix("s")
            try:
                return float(delay)
            except ValueError:
                return None
    return None


# --- the request --------------------------------------------------------------------------------------------------


def build_request(
    request: ModelRequest, settings: Settings, signatures: dict[str, bytes] | None = None
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The `contents` and `config` of `generate_content_stream` for a request, as the dicts the SDK accepts."""
    config: dict[str, Any] = {}
    if request.system:
        config["system_instruction"] = request.system
    if request.tools:
        declarations = [
            {"name": t.name, "description": t.description, "parameters_json_schema": t.parameters}
            for t in request.tools
        ]
        config["tools"] = [{"function_declarations": declarations}]
        if request.tool_choice:
            calling: dict[str, Any] = {"mode": "ANY"}
            if request.tool_choice != "required":
                calling["allowed_function_names"] = [request.tool_choice]
            config["tool_config"] = {"function_calling_config": calling}
    if settings.temperature is not None:
        config["temperature"] = settings.temperature
    if settings.max_output_tokens:
        config["max_output_tokens"] = settings.max_output_tokens
    if thinking := _thinking(settings.think_config):
        config["thinking_config"] = thinking
    return convert_messages(request.messages, signatures or {}), config


def _thinking(config: dict[str, Any] | None) -> dict[str, Any] | None:
    """`thinking_config` as the API's own (`thinking_budget`, `thinking_level`); thoughts are asked for with it."""
    if not config:
        return None
    out: dict[str, Any] = {"include_thoughts": bool(config.get("include_thoughts", True))}
    budget = config.get("thinking_budget", config.get("budget_tokens"))
    if budget is not None:
        out["thinking_budget"] = int(budget)
    if config.get("thinking_level"):
        out["thinking_level"] = str(config["thinking_level"]).upper()
    return out


def convert_messages(messages: tuple[ChatMessage, ...], signatures: dict[str, bytes]) -> list[dict[str, Any]]:
    """History as Gemini contents: the model's turns with their function calls, and every function response of one
    turn together in the user turn that follows it."""
    names = tool_names(messages)
    contents: list[dict[str, Any]] = []
    add = partial(add_turn, contents, key="parts")

    for message in messages:
        if message.role == "tool":
            call_id = message.tool_call_id or ""
            response = {
                "id": call_id,
                "name": message.name or names.get(call_id, ""),
                "response": {"result": message.content},
            }
            add("user", [{"function_response": response}])
        elif message.role == "user":
            add("user", [{"text": message.content}] if message.content else [])
        else:
            parts: list[dict[str, Any]] = [{"text": message.content}] if message.content else []
            for index, call in enumerate(message.tool_calls):
                part: dict[str, Any] = {"function_call": {"id": call.id, "name": call.name, "args": call.arguments}}
                signature = signatures.get(call.id) or (SKIP_SIGNATURE if index == 0 else None)
                if signature:
                    part["thought_signature"] = signature
                parts.append(part)
            add("model", parts)
    return contents
