"""The agent loop keeps a conversation inside the model's context window, and forces a first tool call when the
Model asks for it (`toolChoice: required`)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wegent_core import AsyncWegent, ChatMessage, Notice, ToolCallRequest, WegentError, tool
from wegent_core._context import estimate_tokens, fit, message_tokens
from wegent_core.testing import ScriptedModel

from .conftest import team_yaml

pytestmark = pytest.mark.anyio


def _exchange(draw: Any, index: int) -> list[ChatMessage]:
    """A user message and what answered it: some tool rounds, then a text reply (or nothing yet)."""
    text = st.text(max_size=200)
    out = [ChatMessage(role="user", content=draw(text))]
    for call in range(draw(st.integers(0, 3))):
        call_id = f"c{index}-{call}"
        request = ToolCallRequest(id=call_id, name="t", arguments={"q": draw(text)})
        out.append(ChatMessage(role="assistant", content="", tool_calls=(request,)))
        out.append(ChatMessage(role="tool", content=draw(text), tool_call_id=call_id, name="t"))
    if draw(st.booleans()):
        out.append(ChatMessage(role="assistant", content=draw(text)))
    return out


@st.composite
def conversations(draw: Any) -> list[ChatMessage]:
    messages: list[ChatMessage] = []
    for index in range(draw(st.integers(1, 6))):
        messages += _exchange(draw, index)
    return messages


@given(conversations(), st.integers(50, 3000), st.text(max_size=400))
def test_fitting_keeps_a_valid_conversation(messages: list[ChatMessage], window: int, system: str) -> None:
    fitted = fit(messages, window=window, system=system, reserve=0)
    kept = fitted.messages
    last_user = max(i for i, m in enumerate(messages) if m.role == "user")
    # what is kept is the original order, with the newest user message and the newest reply always in it
    ids = [id(m) for m in kept]
    assert [id(m) for m in messages if id(m) in ids] == ids
    assert id(messages[last_user]) in ids
    assert id(messages[-1]) in ids
    assert kept[0].role == "user"
    assert fitted.dropped == len(messages) - len(kept)
    # an assistant's tool calls and their results stay together
    ids_called = {c.id for m in kept for c in m.tool_calls}
    ids_answered = {m.tool_call_id for m in kept if m.role == "tool"}
    assert ids_called == ids_answered
    # it fits, unless what can never be dropped is larger than the window already
    size = estimate_tokens(system) + sum(message_tokens(m) for m in kept)
    assert fitted.tokens == size
    if size > window:
        newest = set(range(last_user, len(messages)))
        newest_only = [m for i, m in enumerate(messages) if i in newest]
        assert len(kept) <= len(newest_only)
    if fitted.dropped == 0:
        assert kept == messages


def test_no_window_keeps_everything() -> None:
    messages = [ChatMessage(role="user", content="x" * 10_000)]
    assert fit(messages, window=None).messages == messages


@pytest.fixture
async def wegent() -> AsyncIterator[tuple[AsyncWegent, ScriptedModel]]:
    model = ScriptedModel(name="m")
    async with AsyncWegent("memory://", models={"m": model}) as wg:
        yield wg, model


async def test_a_long_conversation_is_trimmed_with_a_notice(wegent: tuple[AsyncWegent, ScriptedModel]) -> None:
    wg, model = wegent
    model.context_window = 500  # type: ignore[attr-defined]  # the client's own figure wins over the Model's
    model.add(*[f"answer {i}: " + "words " * 60 for i in range(4)])
    await wg.apply(team_yaml("m", ["solo-bot"]))
    task = await wg.run("team", "first question " + "padding " * 50)
    await task.wait()
    for n in range(3):
        await task.send(f"question {n + 2}")
        await task.wait()
    events = [e async for e in task.events(0)]
    notices = [e for e in events if isinstance(e, Notice) and e.code == "context.trimmed"]
    assert notices, "no context.trimmed notice"
    assert "oldest messages left out" in notices[0].message
    first, last = model.requests[0], model.requests[-1]
    assert "first question" in first.messages[0].content  # nothing was trimmed while it fitted
    assert last.messages[-1].content == "question 4"
    assert all("first question" not in m.content for m in last.messages)  # the oldest exchange went first
    assert last.messages[0].role == "user"


def _with_tool_choice(value: str) -> str:
    docs = [json.loads(d) for d in team_yaml("m", ["clock-bot"]).split("\n---\n")]
    docs[0]["spec"]["modelConfig"]["toolChoice"] = value
    return "\n---\n".join(json.dumps(d) for d in docs)


async def test_tool_choice_required_forces_only_the_first_call(wegent: tuple[AsyncWegent, ScriptedModel]) -> None:
    wg, model = wegent

    @tool
    def clock(zone: str) -> str:
        """The time in a zone."""
        return f"12:00 in {zone}"

    await wg.apply(_with_tool_choice("required"))
    wg.engine.tools.append(clock)
    model.add({"tool_call": {"name": "clock", "arguments": {"zone": "UTC"}}}, "It is noon.")
    task = await wg.run("team", "time?")
    assert await task.result() == "It is noon."
    assert [r.tool_choice for r in model.requests] == ["required", None]
    assert model.requests[1].messages[-1].content == "12:00 in UTC"


async def test_an_unknown_tool_choice_is_refused(wegent: tuple[AsyncWegent, ScriptedModel]) -> None:
    wg, _ = wegent
    await wg.apply(_with_tool_choice("always"))
    with pytest.raises(WegentError, match="toolChoice must be one of auto, required"):
        await wg.plan("team")
