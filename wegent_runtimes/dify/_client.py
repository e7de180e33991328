"""The Dify Service API calls a turn makes: `GET /v1/info` (the app's mode), the streaming runs, and the stop
endpoints. HTTP and stream failures become wegent's model errors: 429 and 5xx and timeouts are retryable, the rest
(a bad key, a bad request, an unknown conversation) are not. The API key goes only into the Authorization header."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import AsyncIterator
from types import ModuleType
from typing import Any

from wegent_core import FatalModelError, ModelError, ModelTimeoutError, PluginError, RateLimitError, ServerError

from ._config import DifyConfig

log = logging.getLogger("wegent.dify")

CHAT_MODES = frozenset({"chat", "agent-chat", "advanced-chat", "chatflow"})
MODES = CHAT_MODES | {"workflow", "completion"}
INFO_TIMEOUT = 10.0  # seconds, as upstream
STOP_TIMEOUT = 5.0
_modes: dict[tuple[str, str], str] = {}  # (base_url, key digest) -> mode: one key is one app, whose mode is fixed


def _httpx() -> ModuleType:
    """The async HTTP client the model SDKs bring (httpx2), imported at the first call."""
    try:
        import httpx2
    except ImportError as error:
        raise PluginError(f"the Dify runtime needs the 'httpx2' package: pip install httpx2 ({error})") from None
    return httpx2


class ConversationLost(Exception):  # a signal, not an error: the saved conversation is gone on Dify's side
    """Dify no longer knows the conversation this task saved (deleted, or another app's key)."""


class DifyClient:
    """One turn's connection to one Dify app. Use as `async with`."""

    def __init__(self, config: DifyConfig) -> None:
        self.config = config
        self._httpx = _httpx()
        timeout = self._httpx.Timeout(config.timeout, connect=INFO_TIMEOUT)
        self._http = self._httpx.AsyncClient(
            base_url=config.base_url,
            headers={"Authorization": f"Bearer {config.api_key}"},
            timeout=timeout,
        )

    async def __aenter__(self) -> DifyClient:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self._http.aclose()

    async def mode(self) -> str:
        """The app's mode from `GET /v1/info`, cached per app. Any failure means `chat`, as upstream (and is not
        cached, so a Dify that was down is asked again next turn)."""
        key = (self.config.base_url, hashlib.sha256(self.config.api_key.encode()).hexdigest())
        if key in _modes:
            return _modes[key]
        try:
            response = await self._http.get("/v1/info", timeout=INFO_TIMEOUT)
            response.raise_for_status()
            mode = response.json().get("mode")
        except Exception as error:  # upstream's rule: whatever went wrong, assume a chat app
            log.info("dify: GET /v1/info failed (%s): assuming a chat app", type(error).__name__)
            return "chat"
        if mode not in MODES:
            log.info("dify: unknown app mode %r: assuming a chat app", mode)
            return "chat"
        _modes[key] = mode
        return mode

    async def events(self, path: str, body: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        """The events of a streaming run (`response_mode: streaming`), as Dify sends them."""
        try:
            async with self._http.stream("POST", path, json=body) as response:
                if response.status_code >= 400:
                    await response.aread()
                    raise http_error(response.status_code, _body(response), bool(body.get("conversation_id")))
                async for event in _sse(response.aiter_lines()):
                    yield event
        except self._httpx.TimeoutException as error:
            raise ModelTimeoutError(f"Dify API timed out ({type(error).__name__})") from None
        except self._httpx.TransportError as error:
            raise ServerError(f"Dify API unreachable: {type(error).__name__}: {error}") from None

    async def stop(self, path: str, user: str) -> bool:
        """Ask Dify to stop a run; whether it said `{"result": "success"}`. Never raises: a stop is best effort."""
        try:
            response = await self._http.post(path, json={"user": user}, timeout=STOP_TIMEOUT)
            return response.status_code == 200 and _body(response).get("result") == "success"
        except Exception as error:
            log.warning("dify: stop request %s failed: %s", path, type(error).__name__)
            return False


async def _sse(lines: AsyncIterator[str]) -> AsyncIterator[dict[str, Any]]:
    """Server-sent events: `data:` lines up to a blank line make one JSON event; `event: ping` and comments are
    keep-alives."""
    data: list[str] = []
    async for line in lines:
        if line.startswith("data:"):
            data.append(line[5:].strip())
        elif not line.strip() and data:
            yield _event("\n".join(data))
            data = []
    if data:
        yield _event("\n".join(data))


def _event(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        raise ServerError(f"Dify sent an event that is not JSON: {text[:200]}") from None
    if not isinstance(value, dict):
        raise ServerError(f"Dify sent an event that is not an object: {text[:200]}")
    return value


def _body(response: Any) -> dict[str, Any]:
    try:
        value = response.json()
    except ValueError:
        return {"message": response.text[:300]}
    return value if isinstance(value, dict) else {"message": str(value)[:300]}


def http_error(
    status: int, body: dict[str, Any], had_conversation: bool = False, prefix: str = "Dify API error"
) -> ModelError | ConversationLost:
    """The error for a Dify error response (`{"code", "message", "status"}`) or a stream's `error` event."""
    code, message = body.get("code") or "error", body.get("message") or "no message"
    if status == 404 and had_conversation and code == "not_found":
        return ConversationLost(str(message))
    text = f"{prefix}: {message} (HTTP {status}, {code})"
    if status == 429:
        return RateLimitError(text)
    if status >= 500:
        return ServerError(text)
    return FatalModelError(text)
