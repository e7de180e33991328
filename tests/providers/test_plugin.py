"""The providers as plugins (registered by protocol, SDKs loaded at the first call, a missing SDK named with its
extra) and the requests they build for a tool forced by name, which llama-server cannot check (it takes tool_choice
only as a string)."""

from __future__ import annotations

import sys

import pytest

from wegent_core import ChatMessage, ModelRequest, PluginError, Plugins, ToolCallRequest, ToolSpec
from wegent_runtimes.models import AnthropicModel, GeminiModel, OpenAIChatModel, OpenAIResponsesModel
from wegent_runtimes.models._anthropic import build_params
from wegent_runtimes.models._common import retry_after, settings_of
from wegent_runtimes.models._google import build_request
from wegent_runtimes.models._openai import chat_params, responses_params

from .conftest import plan

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.parametrize(
    ("protocol", "api_format", "cls"),
    [
        ("claude", None, AnthropicModel),
        ("anthropic", None, AnthropicModel),
        ("openai", "chat/completions", OpenAIChatModel),
        ("openai", "responses", OpenAIResponsesModel),
        ("openai-responses", "responses", OpenAIResponsesModel),
        ("gemini", None, GeminiModel),
        ("google", None, GeminiModel),
    ],
)
def test_providers_are_registered_by_protocol(protocol: str, api_format: str | None, cls: type) -> None:
    registry = Plugins.load().model_providers
    client = registry[protocol].factory(plan(protocol, "http://127.0.0.1:9", api_format=api_format))
    assert type(client) is cls


@pytest.mark.parametrize(
    ("cls", "module", "extra"),
    [
        (AnthropicModel, "anthropic", "anthropic"),
        (OpenAIChatModel, "openai", "openai"),
        (GeminiModel, "google.genai", "google"),
    ],
)
async def test_a_missing_sdk_names_the_extra(
    cls: type, module: str, extra: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # import fails as if the package were not installed
    client = cls(plan("x", "http://127.0.0.1:9"))  # making the client needs no SDK
    with pytest.raises(PluginError, match=rf"pip install 'wegent\[{extra}\]'"):
        await client.stream(ModelRequest()).__anext__()


WEATHER = ToolSpec(name="get_weather", parameters={"type": "object", "properties": {"city": {"type": "string"}}})
OTHER = ToolSpec(name="get_time")
FORCED = ModelRequest(
    messages=(ChatMessage(role="user", content="hi"),), tools=(WEATHER, OTHER), tool_choice="get_weather"
)


def test_a_tool_forced_by_name_in_each_api() -> None:
    settings, _ = settings_of(plan("x", "http://127.0.0.1:9"), "default")
    assert build_params(FORCED, settings)["tool_choice"] == {"type": "tool", "name": "get_weather"}
    assert chat_params(FORCED, settings)["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert responses_params(FORCED, settings)["tool_choice"] == {"type": "function", "name": "get_weather"}
    _, config = build_request(FORCED, settings)
    assert config["tool_config"] == {
        "function_calling_config": {"mode": "ANY", "allowed_function_names": ["get_weather"]}
    }


def test_claude_thinking_gives_way_to_a_forced_tool() -> None:
    """The Messages API refuses extended thinking with a forced tool; temperature goes with thinking too."""
    settings, _ = settings_of(plan("x", "http://127.0.0.1:9", think_config={"budget_tokens": 1024}), "default")
    free = build_params(ModelRequest(tools=(WEATHER,)), settings)
    assert free["thinking"] == {"type": "enabled", "budget_tokens": 1024}
    assert "extra_body" not in free
    forced = build_params(FORCED, settings)
    assert "thinking" not in forced
    assert forced["extra_body"] == {"temperature": 0.0}


def test_claude_keeps_thinking_blocks_before_the_calls_they_led_to() -> None:
    settings, _ = settings_of(plan("x", "http://127.0.0.1:9"), "default")
    call = ChatMessage(role="assistant", tool_calls=(ToolCallRequest(id="c1", name="get_weather"),))
    block = {"type": "thinking", "thinking": "hmm", "signature": "sig"}
    params = build_params(ModelRequest(messages=(call,)), settings, {"c1": [block]})
    assert [b["type"] for b in params["messages"][0]["content"]] == ["thinking", "tool_use"]


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [({"retry-after": "7"}, 7.0), ({"retry-after-ms": "1500"}, 1.5), ({"retry-after": "soon"}, None), ({}, None)],
)
def test_retry_after(headers: dict[str, str], seconds: float | None) -> None:
    assert retry_after(headers) == seconds
