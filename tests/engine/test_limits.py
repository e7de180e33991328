"""Structural limits (Team `spec.limits`) stop runaway teams: the task fails with a message naming the limit."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator

import anyio
import pytest

from wegent_core import AsyncWegent, TaskState, TextChunk, ToolCallChunk, ToolCallRequest, UsageChunk

from .conftest import collect, statuses, team_yaml

pytestmark = pytest.mark.anyio


class Forever:
    """A model that never stops: the same reply for every request, forever."""

    def __init__(self, reply) -> None:
        self.reply = reply
        self.calls = 0
        self.ids = itertools.count()

    async def stream(self, request) -> AsyncIterator:
        self.calls += 1
        for chunk in self.reply(request, next(self.ids)):
            yield chunk
        yield UsageChunk(input_tokens=10, output_tokens=10, cost_usd=0.01)


async def run_forever(reply, members, mode: str, limits: dict | None = None):
    model = Forever(reply)
    async with AsyncWegent("sqlite://", models={"m": model}) as wg:
        await wg.apply(team_yaml("m", members, mode=mode, limits=limits))
        task = await wg.run("team", "go")
        events = await collect(task)
        return model, await task.record(), events


def keep_delegating(request, n):
    if request.member == "default/lead":
        arguments = {"member": "a", "task": f"t{n}"}
        yield ToolCallChunk(call=ToolCallRequest(id=f"c{n}", name="delegate_to_member", arguments=arguments))
    else:
        yield TextChunk(text="did it")


async def test_a_coordinate_team_that_never_stops_fails_at_the_model_call_limit() -> None:
    model, record, events = await run_forever(
        keep_delegating, [{"bot": "lead", "role": "leader"}, "a"], "coordinate", {"maxModelCalls": 9, "maxTurns": 100}
    )
    assert record.status is TaskState.FAILED
    assert record.error_message.startswith("limit max_model_calls reached")
    assert model.calls == 9
    assert statuses(events)[-1] == "FAILED"
    assert next(e for e in events if e.type == "error").code == "limit"


async def test_a_coordinate_team_that_never_stops_fails_at_the_default_turn_limit() -> None:
    _model, record, _ = await run_forever(keep_delegating, [{"bot": "lead", "role": "leader"}, "a"], "coordinate")
    assert record.status is TaskState.FAILED
    assert "limit max_turns reached" in record.error_message  # 32 turns come before 128 model calls


def keep_routing_badly(request, n):
    yield ToolCallChunk(call=ToolCallRequest(id=f"c{n}", name="route_to_member", arguments={"member": "nobody"}))


async def test_a_route_leader_that_keeps_delegating_fails_at_the_limit() -> None:
    model, record, _ = await run_forever(
        keep_routing_badly, [{"bot": "lead", "role": "leader"}, "a", "b"], "route", {"maxModelCalls": 5}
    )
    assert record.status is TaskState.FAILED
    assert "limit max_model_calls reached" in record.error_message
    assert model.calls == 5


def chatter(request, n):
    yield TextChunk(text="more " * 5)


@pytest.mark.parametrize(
    ("limits", "named"),
    [
        ({"maxTokens": 50}, "max_tokens"),
        ({"maxCostUsd": 0.025}, "max_cost_usd"),
        ({"maxTurns": 2}, "max_turns"),
    ],
)
async def test_budgets(limits: dict, named: str) -> None:
    """A collaborate team of four: each turn costs 20 tokens and one cent."""
    _, record, _ = await run_forever(chatter, ["a", "b", "c", "d"], "collaborate", limits)
    assert record.status is TaskState.FAILED
    assert record.error_message.startswith(f"limit {named} reached")


class Slow:
    async def stream(self, request) -> AsyncIterator:
        await anyio.sleep(5)
        yield TextChunk(text="late")


@pytest.mark.parametrize(("limits", "named"), [({"turnTimeoutSeconds": 0.2}, "turn_timeout_seconds")])
async def test_a_member_turn_times_out(limits: dict, named: str) -> None:
    async with AsyncWegent("sqlite://", models={"m": Slow()}) as wg:
        await wg.apply(team_yaml("m", ["a"], limits=limits))
        task = await wg.run("team", "go")
        record = await task.wait()
    assert record.status is TaskState.FAILED
    assert record.error_message == f"limit {named} reached: default/a did not answer within 0.2 s"


async def test_the_task_timeout_covers_the_whole_task() -> None:
    async with AsyncWegent("sqlite://", models={"m": Slow()}) as wg:
        await wg.apply(team_yaml("m", ["a", "b"], mode="pipeline", limits={"timeoutSeconds": 0.3}))
        task = await wg.run("team", "go")
        record = await task.wait()
    assert record.status is TaskState.FAILED
    assert record.error_message.startswith("limit timeout_seconds reached")
