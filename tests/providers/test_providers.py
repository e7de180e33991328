"""Every cloud provider through its official SDK against a local server that speaks its wire protocol: llama-server
with the real SmolLM2 model for the Anthropic Messages API and OpenAI's chat completions and Responses API, and the
local Gemini API server (answering from the same model) for google-genai. Text, streaming, a forced tool call and
its round trip, usage, headers, the history of parallel tool calls, and every error class."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from wegent_core import (
    ChatMessage,
    FatalModelError,
    ModelClient,
    ModelRequest,
    ModelTimeoutError,
    RateLimitError,
    ServerError,
    TextChunk,
    ToolCallRequest,
    ToolSpec,
    UsageChunk,
)
from wegent_runtimes.models import AnthropicModel, GeminiModel, OpenAIChatModel, OpenAIResponsesModel, openai_model

from ._servers import recording_proxy, serve
from .conftest import SYSTEM, calls_of, collect, plan, question, text_of, thinking_of, usage_of
from .gemini_server import GEMINI_KEY

pytestmark = pytest.mark.anyio

WEATHER = ToolSpec(
    name="get_weather",
    description="Get the current weather in a city",
    parameters={"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)


@dataclass(frozen=True)
class Provider:
    protocol: str
    client: type
    api_format: str | None = None

    def url(self, root: str) -> str:
        """The base_url a user writes for a server at `root`: OpenAI's includes `/v1`, the others add it."""
        return f"{root}/v1" if self.protocol.startswith("openai") else root

    def make(self, root: str, **fields: Any) -> ModelClient:
        if self.protocol == "gemini":
            fields.setdefault("api_key", GEMINI_KEY)
        model = plan(self.protocol, self.url(root), api_format=self.api_format, **fields)
        client = openai_model(model) if self.protocol.startswith("openai") else self.client(model)
        _OPEN.append(client)
        return client


_OPEN: list[Any] = []


@pytest.fixture(autouse=True)
async def _close_clients() -> AsyncIterator[None]:
    """Close every SDK client on the test's own event loop (left to the garbage collector, it would close later,
    on a loop that is gone)."""
    yield
    while _OPEN:
        await _OPEN.pop().aclose()


CLAUDE = Provider("claude", AnthropicModel)
CHAT = Provider("openai", OpenAIChatModel, "chat/completions")
RESPONSES = Provider("openai", OpenAIResponsesModel, "responses")
GEMINI = Provider("gemini", GeminiModel)
ALL = [
    pytest.param(p, id=i) for p, i in ((CLAUDE, "claude"), (CHAT, "chat"), (RESPONSES, "responses"), (GEMINI, "gemini"))
]


@pytest.fixture
def root(request: pytest.FixtureRequest, llama: str) -> str:
    """The server a provider talks to: llama-server, or the Gemini API server in front of it."""
    provider = request.getfixturevalue("provider")
    return request.getfixturevalue("gemini")[0] if provider is GEMINI else llama


# --- the real model, through each SDK -----------------------------------------------------------------------------


@pytest.mark.parametrize("provider", ALL)
async def test_the_real_model_answers_a_question(provider: Provider, root: str) -> None:
    client = provider.make(root)
    assert isinstance(client, provider.client)
    chunks = await collect(client.stream(question()))
    assert "Paris" in text_of(chunks)
    usage = usage_of(chunks)
    assert usage.input_tokens > 10
    assert 0 < usage.output_tokens <= 48
    assert isinstance(chunks[-1], UsageChunk)  # usage closes the reply


@pytest.mark.parametrize("provider", ALL)
async def test_text_is_streamed_in_pieces(provider: Provider, root: str) -> None:
    chunks = await collect(provider.make(root).stream(question()))
    pieces = [c for c in chunks if isinstance(c, TextChunk)]
    assert len(pieces) >= 3  # token by token, not one block at the end
    assert all(c.text for c in pieces)


@pytest.mark.parametrize("provider", ALL)
async def test_a_forced_tool_call_and_its_round_trip(provider: Provider, root: str) -> None:
    client = provider.make(root)
    ask = ChatMessage(role="user", content="What is the weather in Paris?")
    request = ModelRequest(system=SYSTEM, messages=(ask,), tools=(WEATHER,), tool_choice="required")
    chunks = await collect(client.stream(request))
    [call] = calls_of(chunks)
    assert call.name == "get_weather"
    assert "Paris" in call.arguments["city"]
    assert call.id
    assert usage_of(chunks).output_tokens > 0

    # The result goes back under the call's id; the model answers from it (the small model repeats it).
    reply = ChatMessage(role="assistant", tool_calls=(call,))
    result = ChatMessage(role="tool", tool_call_id=call.id, name=call.name, content="Sunny, 24 degrees")
    final = await collect(client.stream(ModelRequest(system=SYSTEM, messages=(ask, reply, result))))
    assert not calls_of(final)
    assert "24" in text_of(final) or "Sunny" in text_of(final)


@pytest.mark.parametrize("provider", ALL)
async def test_the_sdk_client_is_made_once_per_model_client(provider: Provider, root: str) -> None:
    client = provider.make(root, max_output_tokens=4)
    assert client._client is None  # nothing is imported or connected before the first call
    await collect(client.stream(question()))
    first = client._client
    await collect(client.stream(question()))
    assert client._client is first


@pytest.mark.parametrize("provider", ALL)
async def test_a_wrong_key_is_fatal(provider: Provider, root: str) -> None:
    with pytest.raises(FatalModelError) as caught:
        await collect(provider.make(root, api_key="wrong").stream(question()))
    assert "wrong" not in str(caught.value)  # the key is not echoed into events and logs


@pytest.mark.parametrize("provider", ALL)
async def test_the_key_can_be_an_environment_placeholder(
    provider: Provider, root: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = GEMINI_KEY if provider is GEMINI else "llama-test-key"
    monkeypatch.setenv("WEGENT_TEST_MODEL_KEY", key)
    chunks = await collect(
        provider.make(root, api_key="${WEGENT_TEST_MODEL_KEY}", max_output_tokens=4).stream(question())
    )
    assert text_of(chunks)


# --- what each SDK sends: headers, temperature, the history of parallel tool calls --------------------------------

PARALLEL = (
    ChatMessage(role="user", content="Weather in Paris and Rome?"),
    ChatMessage(
        role="assistant",
        content="Let me look.",
        tool_calls=(
            ToolCallRequest(id="call_a", name="get_weather", arguments={"city": "Paris"}),
            ToolCallRequest(id="call_b", name="get_weather", arguments={"city": "Rome"}),
        ),
    ),
    ChatMessage(role="tool", tool_call_id="call_a", content="Sunny"),
    ChatMessage(role="tool", tool_call_id="call_b", content="Rain"),
    ChatMessage(role="user", content="Thanks. Summarise."),
)


async def _sent(provider: Provider, llama: str, gemini: tuple[str, Any]) -> tuple[dict[str, Any], list[Any]]:
    """Send the parallel-call history with DEFAULT_HEADERS through `provider`; the request as the server got it."""
    # No tools offered: with tools, llama-server expects the functionary form in the reply, and the small model,
    # asked to summarise, does not always write it.
    request = ModelRequest(system=SYSTEM, messages=PARALLEL)
    headers = {"X-Wegent-Team": "demo", "X-Trace": "42"}
    if provider is GEMINI:
        url, app = gemini
        app.state.requests.clear()
        chunks = await collect(provider.make(url, default_headers=headers).stream(request))
        return app.state.requests[-1], chunks
    recorded: list[dict[str, Any]] = []
    with serve(recording_proxy(llama, recorded)) as url:
        chunks = await collect(provider.make(url, default_headers=headers).stream(request))
    return recorded[-1], chunks


@pytest.mark.parametrize("provider", ALL)
async def test_headers_and_parallel_tool_call_history_as_sent(
    provider: Provider, llama: str, gemini: tuple[str, Any]
) -> None:
    sent, chunks = await _sent(provider, llama, gemini)
    assert (sent["headers"]["x-wegent-team"], sent["headers"]["x-trace"]) == ("demo", "42")
    assert usage_of(chunks).output_tokens > 0  # and the real model answered the converted history
    body = sent["body"]
    if provider is CLAUDE:
        assert body["temperature"] == 0.0  # through extra_body: anthropic 2.x has no temperature argument
        assert body["system"] == SYSTEM
        roles = [m["role"] for m in body["messages"]]
        assert roles == ["user", "assistant", "user"]
        assistant, results = body["messages"][1]["content"], body["messages"][2]["content"]
        assert [b["type"] for b in assistant] == ["text", "tool_use", "tool_use"]
        assert [b.get("tool_use_id") for b in results] == ["call_a", "call_b", None]  # both results in one turn,
        assert [b["type"] for b in results] == ["tool_result", "tool_result", "text"]  # before the new text
    elif provider is CHAT:
        assert (body["temperature"], body["max_completion_tokens"], body["stream"]) == (0.0, 48, True)
        assert [m["role"] for m in body["messages"]] == ["system", "user", "assistant", "tool", "tool", "user"]
        assistant = body["messages"][2]
        assert [c["id"] for c in assistant["tool_calls"]] == ["call_a", "call_b"]
        assert assistant["tool_calls"][1]["function"] == {"name": "get_weather", "arguments": '{"city": "Rome"}'}
        assert [m.get("tool_call_id") for m in body["messages"][3:5]] == ["call_a", "call_b"]
    elif provider is RESPONSES:
        assert (body["instructions"], body["store"], body["max_output_tokens"]) == (SYSTEM, False, 48)
        kinds = [item.get("role", item["type"]) for item in body["input"]]
        assert kinds == ["user", "assistant", "function_call", "function_call", "function_call_output",
                         "function_call_output", "user"]  # fmt: skip
        assert [item.get("call_id") for item in body["input"][2:6]] == ["call_a", "call_b", "call_a", "call_b"]
    else:
        assert (sent["method"], sent["query"]["alt"]) == ("streamGenerateContent", "sse")
        assert body["generationConfig"]["temperature"] == 0.0
        assert [c["role"] for c in body["contents"]] == ["user", "model", "user"]
        model_parts, user_parts = body["contents"][1]["parts"], body["contents"][2]["parts"]
        assert [p["functionCall"]["id"] for p in model_parts if "functionCall" in p] == ["call_a", "call_b"]
        responses = [p["functionResponse"] for p in user_parts if "functionResponse" in p]
        assert [(r["id"], r["name"], r["response"]) for r in responses] == [
            ("call_a", "get_weather", {"result": "Sunny"}),
            ("call_b", "get_weather", {"result": "Rain"}),
        ]
        assert user_parts[-1] == {"text": "Thanks. Summarise."}


async def test_gemini_thoughts_and_thought_signatures(gemini: tuple[str, Any]) -> None:
    """Thoughts arrive as thinking; a call's signature goes back with it in the next request (Gemini 3 needs it)."""
    url, app = gemini
    client = GEMINI.make(url, think_config={"include_thoughts": True, "thinking_budget": 128})
    ask = ChatMessage(role="user", content="What is the weather in Paris?")
    chunks = await collect(
        client.stream(ModelRequest(system=SYSTEM, messages=(ask,), tools=(WEATHER,), tool_choice="required"))
    )
    assert thinking_of(chunks) == "The user asks a question; answer it."
    assert app.state.requests[-1]["body"]["generationConfig"]["thinkingConfig"] == {
        "includeThoughts": True,
        "thinkingBudget": 128,
    }
    [call] = calls_of(chunks)
    history = (
        ask,
        ChatMessage(role="assistant", tool_calls=(call,)),
        ChatMessage(role="tool", tool_call_id=call.id, content="Sunny"),
    )
    await collect(client.stream(ModelRequest(system=SYSTEM, messages=history)))
    [sent] = [p for p in app.state.requests[-1]["body"]["contents"][1]["parts"] if "functionCall" in p]
    assert base64.b64decode(sent["thoughtSignature"]) == f"sig-{call.id}".encode()
    assert usage_of(chunks).output_tokens > 7  # the thought's 7 words are counted as output


# --- errors -------------------------------------------------------------------------------------------------------

STATUS_CASES = [
    pytest.param(429, RateLimitError, 7.0, id="429"),
    pytest.param(500, ServerError, None, id="500"),
    pytest.param(503, ServerError, None, id="503"),
    pytest.param(400, FatalModelError, None, id="400"),
]


def _failing(provider: Provider, errors: str, gemini: tuple[str, Any], mode: str, **fields: Any) -> ModelClient:
    if provider is GEMINI:  # the Gemini server fails by model name, with Google's error bodies
        return GEMINI.make(gemini[0], model_id="slow" if mode == "slow" else f"error-{mode}", **fields)
    return provider.make(f"{errors}/{mode}", **fields)


@pytest.mark.parametrize("provider", ALL)
@pytest.mark.parametrize(("status", "error", "wait"), STATUS_CASES)
async def test_statuses_map_to_the_engines_errors(
    provider: Provider, status: int, error: type, wait: float | None, errors: str, gemini: tuple[str, Any]
) -> None:
    client = _failing(provider, errors, gemini, str(status))
    with pytest.raises(error) as caught:
        await collect(client.stream(question()))
    assert type(caught.value) is error
    assert caught.value.retry_after == wait  # from retry-after, or from Google's RetryInfo for Gemini
    assert str(status) in str(caught.value)


@pytest.mark.parametrize("provider", ALL)
async def test_a_timeout_is_retryable(provider: Provider, errors: str, gemini: tuple[str, Any]) -> None:
    client = _failing(provider, errors, gemini, "slow", env={"timeout": "0.5"})
    with pytest.raises(ModelTimeoutError):
        await collect(client.stream(question()))


async def test_an_error_event_inside_a_claude_stream(errors: str) -> None:
    with pytest.raises(ServerError, match="529"):  # overloaded_error: retryable
        await collect(CLAUDE.make(f"{errors}/stream-error").stream(question()))


@pytest.mark.parametrize("provider", ALL)
async def test_no_server_is_a_retryable_error(provider: Provider) -> None:
    from ._servers import free_port

    client = provider.make(f"http://127.0.0.1:{free_port()}")
    with pytest.raises(ServerError, match="connection failed"):
        await collect(client.stream(question()))
