"""What the cloud providers share: settings read from a ModelPlan, lazy SDK imports, error mapping, history helpers."""

from __future__ import annotations

import email.utils
import importlib
import json
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from wegent_core import (
    ChatMessage,
    FatalModelError,
    ModelError,
    ModelPlan,
    ModelTimeoutError,
    PluginError,
    RateLimitError,
    ServerError,
)

DEFAULT_TIMEOUT = 120.0  # seconds; for a stream, the longest wait for the next bytes
DEFAULT_MAX_TOKENS = 4096  # the Messages API requires max_tokens; the others leave it to the model when unset


def require(module: str, extra: str) -> ModuleType:
    """Import an SDK that sits behind an extra, or fail with the command that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise PluginError(
            f"the {extra} model provider needs the {module!r} package: pip install 'wegent[{extra}]' ({error})"
        ) from None


@dataclass(frozen=True, slots=True)
class Settings:
    """The non-secret settings of a Model, as a provider uses them. The key and headers stay in the SDK client."""

    model_id: str
    temperature: float | None
    max_output_tokens: int | None
    think_config: dict[str, Any] | None
    timeout: float
    env: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Connection:
    """What the SDK client is built from. Built at call time from `plan.materialize()` and dropped after."""

    base_url: str | None
    api_key: str | None
    headers: dict[str, str]


def settings_of(plan: ModelPlan, default_model: str) -> tuple[Settings, Connection]:
    raw = plan.materialize()
    env = raw.get("env") or {}
    settings = Settings(
        model_id=str(raw.get("model_id") or default_model),
        temperature=raw.get("temperature"),
        max_output_tokens=raw.get("max_output_tokens") or _int(env.get("max_tokens")),
        think_config=raw.get("think_config") if isinstance(raw.get("think_config"), dict) else None,
        timeout=_float(env.get("timeout")) or DEFAULT_TIMEOUT,
        env=env,
    )
    headers = {str(k): str(v) for k, v in (raw.get("default_headers") or {}).items()}
    connection = Connection(base_url=raw.get("base_url") or None, api_key=raw.get("api_key") or None, headers=headers)
    return settings, connection


def _float(value: Any) -> float | None:
    try:
        return float(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _int(value: Any) -> int | None:
    number = _float(value)
    return int(number) if number else None


# --- errors -------------------------------------------------------------------------------------------------------


def retry_after(headers: Mapping[str, str] | None) -> float | None:
    """Seconds to wait, from `retry-after-ms`, or `retry-after` as seconds or as an HTTP date."""
    if not headers:
        return None
    milliseconds = _float(headers.get("retry-after-ms"))
    if milliseconds is not None:
        return max(milliseconds / 1000, 0.0)
    value = headers.get("retry-after")
    if not value:
        return None
    seconds = _float(value)
    if seconds is not None:
        return max(seconds, 0.0)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - time.time(), 0.0)


def error_for_status(status: int, message: str, *, wait: float | None = None) -> ModelError:
    """The engine's class for an HTTP status: 429 rate limit, 408 timeout, 409/5xx server trouble, else fatal."""
    if status == 429:
        return RateLimitError(message, retry_after=wait)
    if status == 408:
        return ModelTimeoutError(message, retry_after=wait)
    if status == 409 or status >= 500:
        return ServerError(message, retry_after=wait)
    return FatalModelError(message)


# Error types that APIs put in a body sent with status 200 (an error event in a stream).
_STATUS_BY_ERROR_TYPE = {
    "rate_limit_error": 429,
    "rate_limit_exceeded": 429,
    "overloaded_error": 529,
    "api_error": 500,
    "server_error": 500,
    "timeout_error": 408,
    "authentication_error": 401,
    "permission_error": 403,
    "invalid_request_error": 400,
}


def stainless_error(error: Exception, provider: str) -> ModelError | None:
    """Map an exception of the Anthropic or OpenAI SDK (both Stainless-generated) to the engine's classes."""
    name = type(error).__name__
    if name == "APITimeoutError":
        return ModelTimeoutError(f"{provider}: request timed out")
    if name == "APIConnectionError":
        return ServerError(f"{provider}: connection failed: {error.__cause__ or error}")
    if type(error).__module__.split(".")[0] not in ("anthropic", "openai"):
        return None
    status = getattr(error, "status_code", None)
    kind = _error_type(getattr(error, "body", None))
    if not isinstance(status, int) or status < 400:
        if not hasattr(error, "body"):  # not from the API: credentials missing, bad arguments
            return FatalModelError(f"{provider}: {error}")
        # An error event inside a 200 stream: its body says what it was; a failure mid-reply is the server's.
        status = _STATUS_BY_ERROR_TYPE.get(kind, 500)
    if kind == "insufficient_quota":  # OpenAI sends it as a 429, but waiting does not refill a quota
        return FatalModelError(f"{provider}: {status} {_short(error)}")
    response = getattr(error, "response", None)
    wait = retry_after(getattr(response, "headers", None))
    return error_for_status(status, f"{provider}: {status} {_short(error)}", wait=wait)


def _error_type(body: Any) -> str:
    if isinstance(body, dict):
        inner = body.get("error") if isinstance(body.get("error"), dict) else body
        return str(inner.get("type") or inner.get("code") or "")
    return ""


def _short(error: Exception, limit: int = 300) -> str:
    text = getattr(error, "message", None) or str(error)
    return text if len(text) <= limit else text[:limit] + "..."


def transport_error(error: Exception, provider: str) -> ModelError | None:
    """httpx / httpx2 / aiohttp failures that an SDK let through: timeouts and refused connections. (google-genai
    uses aiohttp whenever it is installed, and aiohttp's timeouts are the builtin `TimeoutError`.)"""
    if isinstance(error, TimeoutError):
        return ModelTimeoutError(f"{provider}: request timed out")
    module = type(error).__module__.split(".")[0]
    if module not in ("httpx", "httpx2", "httpcore", "aiohttp"):
        return None
    if "Timeout" in type(error).__name__:
        return ModelTimeoutError(f"{provider}: request timed out ({type(error).__name__})")
    return ServerError(f"{provider}: connection failed: {type(error).__name__}: {error}")


# --- messages -----------------------------------------------------------------------------------------------------


def parse_arguments(text: str | None) -> dict[str, Any]:
    """Tool-call arguments as streamed (a JSON object as text). Anything else is kept under `_raw` so that the tool
    reports the bad input instead of the stream failing."""
    if not text or not text.strip():
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        return {"_raw": text}
    return value if isinstance(value, dict) else {"_raw": text}


def new_call_id(prefix: str = "call") -> str:
    return f"{prefix}_{uuid.uuid4().hex[:24]}"


def tool_names(messages: Iterable[ChatMessage]) -> dict[str, str]:
    """Tool name by call id, from the assistant messages (a tool result may not carry the name)."""
    return {call.id: call.name for message in messages for call in message.tool_calls}


def add_turn(turns: list[dict[str, Any]], role: str, items: list[dict[str, Any]], key: str) -> None:
    """Append `items` as a turn of `role` (its list under `key`), merged into the last turn when that has the same
    role: the Messages and Gemini APIs want alternating roles, and a reply's tool results in one user turn."""
    if not items:
        return
    if turns and turns[-1]["role"] == role:
        turns[-1][key].extend(items)
    else:
        turns.append({"role": role, key: items})


class SdkModel:
    """Base of the cloud providers' `ModelClient`s: the SDK client is made at the first call, from the settings of
    `plan.materialize()` (the key goes into the SDK client only), and kept for later calls until `aclose()`."""

    default_model: str  # upstream's default model_id for the provider

    def __init__(self, plan: ModelPlan) -> None:
        self.plan = plan
        self._client: Any = None
        self._settings: Settings | None = None

    def _make(self, settings: Settings, connection: Connection) -> Any:
        """The provider's SDK client; `FatalModelError` when it cannot be made (no key, say)."""
        raise NotImplementedError

    async def _close(self, client: Any) -> None:
        await client.close()

    def _connect(self) -> tuple[Any, Settings]:
        if self._client is None:
            settings, connection = settings_of(self.plan, self.default_model)
            self._client = self._make(settings, connection)
            self._settings = settings
        assert self._settings is not None
        return self._client, self._settings

    async def aclose(self) -> None:
        """Close the SDK client's connections (a later call opens a new one)."""
        client, self._client = self._client, None
        if client is not None:
            await self._close(client)
