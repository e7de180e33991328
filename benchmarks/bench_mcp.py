"""MCP benchmark: the round trip of a tool call over stdio after the server started, and the start time.

    python benchmarks/bench_mcp.py [--calls 300] [--starts 5]

* round trip: `Tool.call` on the tool wegent made of a server's tool (the SDK's request, the JSON-RPC exchange over
  the server's stdin and stdout, the result rendered as text), over `--calls` calls after a warm-up. Median and p95
  (target: under 20 ms). Servers: `mcp-server-time` (Python, PyPI), server-everything (Node, npm; installed into
  .nox/npm by the tests) and tests/mcp/tiny_server.py (standard library only: what the client itself costs).
* start: `mcp_tools` for one server in a fresh task session (spawn, handshake, listing of tools, prompts and
  resources), and the close of the session (stdin closed, the process gone, leftovers reaped). Median of `--starts`.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import anyio
from _machine import describe_machine

from wegent_core import McpServerPlan, TaskSession, ToolContext
from wegent_runtimes.mcp import mcp_tools

ROOT = Path(__file__).resolve().parents[1]
ROUND_TRIP_TARGET = 0.020
CONTEXT = ToolContext(task_id=1, member="default/bench", call_id="c", idempotency_key="k")


def servers() -> list[tuple[McpServerPlan, str, dict[str, Any]]]:
    """(server, tool to call, its arguments) for each server found on this machine."""
    found = []
    time_server = shutil.which("mcp-server-time", path=str(Path(sys.executable).parent))
    if time_server:
        plan = McpServerPlan(name="time", type="stdio", command=time_server, source="ghost")
        found.append((plan, "time__get_current_time", {"timezone": "UTC"}))
    everything = ROOT / ".nox" / "npm" / "node_modules" / ".bin" / "mcp-server-everything"
    if everything.exists():
        plan = McpServerPlan(name="every", type="stdio", command=str(everything), source="ghost")
        found.append((plan, "every__echo", {"message": "ping"}))
    tiny = str(ROOT / "tests" / "mcp" / "tiny_server.py")
    plan = McpServerPlan(name="tiny", type="stdio", command=sys.executable, args=[tiny], source="ghost")
    found.append((plan, "tiny__echo", {"text": "ping"}))
    return found


def p95(values: list[float]) -> float:
    return sorted(values)[max(0, int(len(values) * 0.95) - 1)]


async def start_and_close(plan: McpServerPlan) -> tuple[float, float]:
    async with anyio.create_task_group() as group:
        session = TaskSession(1, group)
        began = time.perf_counter()
        tools = await mcp_tools(session, [plan], placeholders={}, emit=print)
        started = time.perf_counter()
        assert tools, f"{plan.name} did not start"
        await session.close()
    return started - began, time.perf_counter() - started


async def round_trips(plan: McpServerPlan, name: str, arguments: dict[str, Any], calls: int) -> list[float]:
    async with anyio.create_task_group() as group:
        session = TaskSession(1, group)
        tools = {t.spec.name: t for t in await mcp_tools(session, [plan], placeholders={}, emit=print)}
        tool = tools[name]
        for _ in range(20):  # warm-up
            await tool.call(arguments, CONTEXT)
        times = []
        for _ in range(calls):
            began = time.perf_counter()
            await tool.call(arguments, CONTEXT)
            times.append(time.perf_counter() - began)
        await session.close()
    return times


async def main(calls: int, starts: int) -> None:
    print(describe_machine())
    print(f"{'server':8} {'start median':>13} {'close median':>13} {'call median':>12} {'call p95':>9}")
    for plan, name, arguments in servers():
        opened = [await start_and_close(plan) for _ in range(starts)]
        times = await round_trips(plan, name, arguments, calls)
        start = statistics.median(s for s, _ in opened)
        close = statistics.median(c for _, c in opened)
        median = statistics.median(times)
        verdict = "ok" if median < ROUND_TRIP_TARGET else "OVER TARGET"
        print(
            f"{plan.name:8} {start * 1000:10.0f} ms {close * 1000:10.0f} ms"
            f" {median * 1000:9.2f} ms {p95(times) * 1000:6.2f} ms  ({calls} calls; {verdict})"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--starts", type=int, default=5)
    args = parser.parse_args()
    anyio.run(main, args.calls, args.starts)
