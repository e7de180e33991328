"""The offline model (protocol `local`): the real SmolLM2-135M-Instruct GGUF, run by llama.cpp in this process."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import anyio
import jsonschema
import pytest

from wegent_core import (
    AsyncWegent,
    ChatMessage,
    FatalModelError,
    ModelPlan,
    ModelRequest,
    PluginError,
    TextChunk,
    ToolCallChunk,
    ToolSpec,
    UsageChunk,
)
from wegent_runtimes.models import LocalModel, default_model_path

pytestmark = pytest.mark.anyio
PLAN = ModelPlan(name="local", namespace="default", chain=["default/local"], selected_by="modelRef", protocol="local")
CLOCK = ToolSpec(
    name="get_current_time",
    description="Get the current time in an IANA timezone",
    parameters={"type": "object", "properties": {"timezone": {"type": "string"}}, "required": ["timezone"]},
)
WEATHER = ToolSpec(
    name="get_weather",
    description="Get the weather of a city",
    parameters={
        "type": "object",
        "properties": {"city": {"type": "string"}, "days": {"type": "integer", "minimum": 1, "maximum": 7}},
        "required": ["city", "days"],
    },
)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def ask(text: str, **fields: Any) -> ModelRequest:
    return ModelRequest(messages=(ChatMessage(role="user", content=text),), **fields)


async def reply(request: ModelRequest, plan: ModelPlan = PLAN) -> list[Any]:
    return [chunk async for chunk in LocalModel(plan).stream(request)]


def text_of(chunks: list[Any]) -> str:
    return "".join(c.text for c in chunks if isinstance(c, TextChunk))


async def test_the_real_model_answers_a_capital_city_and_streams_it() -> None:
    chunks = await reply(ask("What is the capital of Germany?"))
    assert "Berlin" in text_of(chunks)
    assert sum(isinstance(c, TextChunk) for c in chunks) > 2  # streamed token by token
    (usage,) = [c for c in chunks if isinstance(c, UsageChunk)]
    assert usage.input_tokens > 5
    assert usage.output_tokens > 2
    assert isinstance(chunks[-1], UsageChunk)


async def test_the_same_question_gets_the_same_answer() -> None:
    first = text_of(await reply(ask("What is the capital of Japan?")))
    assert first == text_of(await reply(ask("What is the capital of Japan?")))
    assert "Tokyo" in first


@pytest.mark.parametrize("choice", ["get_weather", "required"])
async def test_a_forced_tool_call_is_always_a_valid_call(choice: str) -> None:
    chunks = await reply(
        ask("What will the weather be in Paris for the next 3 days?", tools=(CLOCK, WEATHER), tool_choice=choice)
    )
    calls = [c.call for c in chunks if isinstance(c, ToolCallChunk)]
    assert len(calls) == 1
    assert not text_of(chunks)
    call = calls[0]
    spec = {t.name: t for t in (CLOCK, WEATHER)}[call.name]
    jsonschema.validate(call.arguments, spec.parameters)  # the grammar makes it so, whatever the model "thinks"
    if choice == "get_weather":
        assert call.name == "get_weather"


async def test_a_tool_result_is_turned_into_an_answer() -> None:
    chunks = await reply(ask("What time is it in Europe/Berlin?", tools=(CLOCK,), tool_choice="get_current_time"))
    (call,) = [c.call for c in chunks if isinstance(c, ToolCallChunk)]
    history = (
        ChatMessage(role="user", content="What time is it in Europe/Berlin?"),
        ChatMessage(role="assistant", tool_calls=(call,)),
        ChatMessage(
            role="tool", tool_call_id=call.id, name=call.name, content='{"datetime": "2026-11-22T10:15:00+01:00"}'
        ),
    )
    answer = text_of(await reply(ModelRequest(messages=history, tools=(CLOCK,))))
    assert answer
    assert "{" not in answer[:1]


async def test_a_tool_choice_naming_no_offered_tool_is_fatal() -> None:
    with pytest.raises(FatalModelError, match="tool_choice names 'nope'"):
        await reply(ask("hi", tools=(CLOCK,), tool_choice="nope"))


async def test_a_missing_model_file_is_named(tmp_path: Path) -> None:
    plan = PLAN.model_copy(update={"env": {"model_path": str(tmp_path / "none.gguf")}})
    with pytest.raises(PluginError, match=r"none\.gguf does not exist"):
        await reply(ask("hi"), plan)


async def test_a_cancelled_reply_stops_and_frees_the_model() -> None:
    model = LocalModel(PLAN.model_copy(update={"max_output_tokens": 400}))
    received: list[str] = []
    started = time.perf_counter()
    with anyio.move_on_after(0.5):
        async for chunk in model.stream(ask("Write a long story about a dragon.")):
            if isinstance(chunk, TextChunk):
                received.append(chunk.text)
    assert time.perf_counter() - started < 2.0  # it stopped at a token, not at the end of 400
    assert received
    with anyio.fail_after(30):  # the lock was released: the next reply runs
        assert "Berlin" in text_of(await reply(ask("What is the capital of Germany?")))


async def test_a_team_answers_through_the_engine_on_the_local_model() -> None:
    yaml = """
apiVersion: agent.wecode.io/v1
kind: Model
metadata: {name: offline}
spec: {protocol: local, modelConfig: {}}
---
apiVersion: agent.wecode.io/v1
kind: Shell
metadata: {name: chat}
spec: {shellType: Chat}
---
apiVersion: agent.wecode.io/v1
kind: Ghost
metadata: {name: geographer}
spec: {systemPrompt: "You are a geography expert. Answer in one short sentence."}
---
apiVersion: agent.wecode.io/v1
kind: Bot
metadata: {name: geographer}
spec: {ghostRef: {name: geographer}, shellRef: {name: chat}, modelRef: {name: offline}}
---
apiVersion: agent.wecode.io/v1
kind: Team
metadata: {name: geo}
spec: {collaborationModel: solo, members: [{botRef: {name: geographer}}]}
"""
    async with AsyncWegent("memory://") as wg:
        await wg.apply(yaml)
        task = await wg.run("geo", "What is the capital of Germany?")
        events = [event async for event in task]
        assert "Berlin" in await task.result()
    assert [e.type for e in events].count("text.delta") > 2
    usage = [e for e in events if e.type == "usage"]
    assert usage
    assert usage[-1].total_tokens > 0


def test_the_default_model_file_comes_from_its_package() -> None:
    path = default_model_path()
    assert path.suffix == ".gguf"
    assert path.stat().st_size > 50_000_000
