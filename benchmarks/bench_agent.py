"""Agent loop benchmark: the loop's own cost per model call, and the latency it adds to the first streamed token.

    python benchmarks/bench_agent.py [--calls 500] [--tasks 30]

* loop: one member turn (`run_turn`, no engine, no store) whose model answers at once: each reply but the last
  calls a trivial tool, so every model call also goes through tool dispatch, events and the budget. Time per model
  call, median of 5 turns (target: under 2 ms).
* first token: tasks run through the public API (`AsyncWegent.run`, `async for event in task`) on a SQLite file and
  on the memory store. The model waits 50 ms (a network round trip), notes the time and yields its first chunk; the
  figure is the time from then until the consumer holds the `text.delta` event, which by then has been written to
  the task's event log. Median and p95 over `--tasks` tasks (target: median under 5 ms).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import AsyncIterator
from typing import Any

import anyio
from _machine import describe_machine
from bench_engine import TEAM, team_yaml

from wegent_core import (
    AsyncWegent,
    Budget,
    ChatMessage,
    ModelRequest,
    TeamLimits,
    TextChunk,
    ToolCallChunk,
    ToolCallRequest,
    Turn,
    UsageChunk,
    run_turn,
    tool,
)
from wegent_storage import SqlStore

LOOP_TARGET, FIRST_TOKEN_TARGET = 0.002, 0.005
TEAM_YAML = team_yaml(max_model_calls=1_000_000)  # bench_engine's solo team: one Chat bot on the Model `m`


class Instant:
    """Calls the tool `noop` until `calls` replies were given, then answers; costs next to nothing."""

    def __init__(self, calls: int) -> None:
        self.calls, self.given = calls, 0

    async def stream(self, request: ModelRequest) -> AsyncIterator[Any]:
        self.given += 1
        if self.given < self.calls:
            yield ToolCallChunk(call=ToolCallRequest(id=f"c{self.given}", name="noop", arguments={}))
        else:
            yield TextChunk(text="done")
        yield UsageChunk(input_tokens=10, output_tokens=2)


class FirstToken:
    """Waits like a network round trip, then notes when it yields its first chunk."""

    def __init__(self) -> None:
        self.yielded: list[float] = []

    async def stream(self, request: ModelRequest) -> AsyncIterator[Any]:
        await anyio.sleep(0.05)
        self.yielded.append(time.perf_counter())
        yield TextChunk(text="first")
        await anyio.sleep(0.01)
        yield TextChunk(text=" and the rest")
        yield UsageChunk(input_tokens=10, output_tokens=3)


async def loop_per_call(calls: int) -> float:
    async with AsyncWegent("memory://") as wg:
        await wg.apply(TEAM_YAML)
        member = (await wg.plan(TEAM)).members[0]

    @tool
    async def noop() -> str:
        """Do nothing."""
        return "ok"

    times = []
    for _ in range(5):
        events: list[Any] = []
        limits = TeamLimits(max_model_calls=calls + 1, max_turns=2)
        turn = Turn(
            task_id=1,
            subtask_id=1,
            message_id=1,
            member=member,
            model=Instant(calls),
            messages=[ChatMessage(role="user", content="go")],
            emit=events.append,
            budget=Budget(limits),
            tools=[noop],
        )
        started = time.perf_counter()
        result = await run_turn(turn)
        times.append((time.perf_counter() - started) / calls)
        assert result.text == "done"
        assert len(events) > 2 * calls
    return statistics.median(times)


async def first_token(store: str, tasks: int) -> list[float]:
    model = FirstToken()
    with tempfile.TemporaryDirectory() as tmp:
        target: Any = SqlStore.open(f"sqlite:///{tmp}/bench.db", upgrade=True) if store == "file" else store
        async with AsyncWegent(target, models={"m": model}) as wg:
            await wg.apply(TEAM_YAML)
            delays = []
            for _ in range(tasks):
                task = await wg.run(TEAM, "go")
                async for event in task:
                    if event.type == "text.delta":
                        delays.append(time.perf_counter() - model.yielded[-1])
                        break
                await task.wait()
        if store == "file":
            target.close()
    return delays


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--tasks", type=int, default=30)
    args = parser.parse_args()
    print(describe_machine())
    per_call = anyio.run(loop_per_call, args.calls)
    verdict = "met" if per_call < LOOP_TARGET else "NOT met"
    print(f"agent loop, per model call (no model, no store): {per_call * 1000:.3f} ms  (target 2 ms: {verdict})")
    for store in ("file", "memory://"):
        delays = sorted(anyio.run(first_token, store, args.tasks))
        median, p95 = statistics.median(delays), delays[int(0.95 * (len(delays) - 1))]
        verdict = "met" if median < FIRST_TOKEN_TARGET else "NOT met"
        name = "SQLite file" if store == "file" else store
        print(
            f"first token, added latency on {name}: median {median * 1000:.2f} ms, p95 {p95 * 1000:.2f} ms  "
            f"(target 5 ms: {verdict})"
        )


if __name__ == "__main__":
    main()
