"""One real llama-server with SmolLM2 for the whole session, the servers built on it, and Model plans that point at
them. The official SDKs do every call; nothing here stands in for them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from wegent_core import Chunk, ModelPlan, ModelRequest, TextChunk, ThinkingChunk, ToolCallChunk, UsageChunk

from ._servers import LLAMA_KEY, error_app, llama_server, serve
from .gemini_server import gemini_app

# Small models answer this one correctly with this system prompt (without it, SmolLM2 drifts into French).
SYSTEM = "You are a helpful assistant."
QUESTION = "What is the capital of France?"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def llama(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The root URL of a running llama-server (OpenAI chat completions and Responses, Anthropic Messages)."""
    log = Path(tmp_path_factory.mktemp("llama")) / "llama-server.log"
    with llama_server(log) as url:
        yield url


@pytest.fixture(scope="session")
def gemini(llama: str) -> Iterator[tuple[str, Any]]:
    """The root URL of the local Gemini API server, and its app (whose `state.requests` records the requests)."""
    app = gemini_app(llama, LLAMA_KEY)
    with serve(app) as url:
        yield url, app


@pytest.fixture(scope="session")
def errors() -> Iterator[str]:
    with serve(error_app()) as url:
        yield url


def plan(protocol: str, base_url: str, *, api_key: str | None = LLAMA_KEY, **fields: Any) -> ModelPlan:
    """A resolved Model as the engine hands it to a provider."""
    values: dict[str, Any] = {
        "name": "m",
        "namespace": "default",
        "chain": ["default/m"],
        "selected_by": "modelRef",
        "protocol": protocol,
        "model_id": "smollm2",
        "base_url": base_url,
        "api_key": api_key,
        "temperature": 0.0,
        "max_output_tokens": 48,
    }
    values.update(fields)
    return ModelPlan(**values)


async def collect(chunks: AsyncIterator[Chunk]) -> list[Chunk]:
    return [chunk async for chunk in chunks]


def text_of(chunks: list[Chunk]) -> str:
    return "".join(c.text for c in chunks if isinstance(c, TextChunk))


def thinking_of(chunks: list[Chunk]) -> str:
    return "".join(c.text for c in chunks if isinstance(c, ThinkingChunk))


def calls_of(chunks: list[Chunk]) -> list[Any]:
    return [c.call for c in chunks if isinstance(c, ToolCallChunk)]


def usage_of(chunks: list[Chunk]) -> UsageChunk:
    usages = [c for c in chunks if isinstance(c, UsageChunk)]
    assert len(usages) == 1, chunks
    return usages[0]


def question() -> ModelRequest:
    from wegent_core import ChatMessage

    return ModelRequest(system=SYSTEM, messages=(ChatMessage(role="user", content=QUESTION),))
