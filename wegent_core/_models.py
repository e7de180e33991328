"""What the engine asks of a language model, and the errors a model may raise.

A model provider (registered with `register_model_providers`, by the Model's protocol) is a factory
`factory(model: ModelPlan) -> ModelClient`. A client streams one reply: text, thinking, tool calls and usage, as
`Chunk`s. Providers map their SDK's failures onto the `ModelError` classes below, which tell the engine whether to
retry (rate limits, server errors, timeouts) or to fail the turn at once.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from ._errors import WegentError
from ._plan import ModelPlan


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class ToolSpec(_Frozen):
    """A tool as the model sees it."""

    name: str
    description: str = ""
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}})


class ToolCallRequest(_Frozen):
    id: str
    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)


class ChatMessage(_Frozen):
    role: Literal["user", "assistant", "tool"]
    content: str = ""
    tool_calls: tuple[ToolCallRequest, ...] = ()
    tool_call_id: str | None = None  # for role "tool": the call this answers
    name: str | None = None  # for role "tool": the tool's name


class ModelRequest(_Frozen):
    model: ModelPlan | None = None
    system: str = ""
    messages: tuple[ChatMessage, ...] = ()
    tools: tuple[ToolSpec, ...] = ()
    tool_choice: str | None = None  # None: the model decides; "required", or a tool name
    member: str | None = None  # namespace/name of the Bot asking, for recordings and scripted replies


class TextChunk(_Frozen):
    kind: Literal["text"] = "text"
    text: str


class ThinkingChunk(_Frozen):
    kind: Literal["thinking"] = "thinking"
    text: str


class ToolCallChunk(_Frozen):
    kind: Literal["tool_call"] = "tool_call"
    call: ToolCallRequest


class UsageChunk(_Frozen):
    kind: Literal["usage"] = "usage"
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0


Chunk = TextChunk | ThinkingChunk | ToolCallChunk | UsageChunk


@runtime_checkable
class ModelClient(Protocol):
    def stream(self, request: ModelRequest) -> AsyncIterator[Chunk]:
        """Stream one reply. Raise a `ModelError` subclass on failure; never hang past the provider's timeout."""
        ...


# --- errors -------------------------------------------------------------------------------------------------------


class ModelError(WegentError):
    """A model call failed. `retryable` errors are retried with backoff; the others fail the turn at once."""

    code = "fatal"
    retryable = False

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after  # seconds the provider asked us to wait, if it said


class RateLimitError(ModelError):
    code, retryable = "rate_limit", True


class ServerError(ModelError):
    code, retryable = "server", True


class ModelTimeoutError(ModelError):
    code, retryable = "timeout", True


class FatalModelError(ModelError):
    code, retryable = "fatal", False


ERRORS_BY_CODE: dict[str, type[ModelError]] = {
    cls.code: cls for cls in (RateLimitError, ServerError, ModelTimeoutError, FatalModelError)
}


class RetryPolicy(BaseModel):
    """Exponential backoff with full jitter (as the AWS architecture blog recommends) for retryable model errors."""

    model_config = ConfigDict(frozen=True)

    attempts: int = Field(default=4, ge=1, description="Calls in all, the first one included")
    base_delay: float = Field(default=0.5, ge=0)
    max_delay: float = Field(default=20.0, ge=0)

    def delay(self, attempt: int, error: ModelError) -> float:
        """Seconds to wait before attempt `attempt + 1` (attempt counts from 1)."""
        ceiling = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
        wait = random.uniform(0, ceiling)
        return max(wait, error.retry_after or 0.0)
