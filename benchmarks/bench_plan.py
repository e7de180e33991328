"""Resolve an execution plan for an 8-member team from the in-memory store (target: under 1 ms median).

    python benchmarks/bench_plan.py [--runs 2000]

Each member has its own Ghost (with skills and MCP servers), Shell and Model (one of them behind a bind_model
pointer), so every rule of resolution is on the measured path.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

from _machine import describe_machine

from wegent_core._loader import loads
from wegent_core._memory_store import MemoryStore
from wegent_core._resolve import resolve_team

MEMBERS = 8


def build_store() -> MemoryStore:
    docs: list[dict[str, Any]] = [
        {"kind": "Shell", "metadata": {"name": "chat"}, "spec": {"shellType": "Chat"}},
        {"kind": "Model", "metadata": {"name": "alias"}, "spec": {"modelConfig": {"bind_model": "real"}}},
        {
            "kind": "Model",
            "metadata": {"name": "real"},
            "spec": {"modelConfig": {"env": {"model": "openai", "model_id": "m", "api_key": "${OPENAI_API_KEY}"}}},
        },
        {
            "kind": "Skill",
            "metadata": {"name": "search"},
            "spec": {"description": "Search the web", "mcpServers": {"web": {"command": "web-mcp"}}},
        },
    ]
    for i in range(MEMBERS):
        docs.append(
            {
                "kind": "Ghost",
                "metadata": {"name": f"g{i}"},
                "spec": {
                    "systemPrompt": f"You are specialist {i}.\n" * 20,
                    "skills": ["search"],
                    "preload_skills": ["search"],
                    "mcpServers": {"time": {"command": "uvx", "args": ["mcp-server-time"]}},
                },
            }
        )
        docs.append(
            {
                "kind": "Bot",
                "metadata": {"name": f"b{i}"},
                "spec": {
                    "ghostRef": {"name": f"g{i}"},
                    "shellRef": {"name": "chat"},
                    "modelRef": {"name": "alias" if i % 2 else "real"},
                },
            }
        )
    members = [
        {"botRef": {"name": f"b{i}"}, "prompt": f"Stage {i}", **({"role": "leader"} if i == 0 else {})}
        for i in range(MEMBERS)
    ]
    docs.append(
        {"kind": "Team", "metadata": {"name": "big"}, "spec": {"members": members, "collaborationModel": "coordinate"}}
    )
    return MemoryStore.from_resources(loads(docs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2000)
    args = parser.parse_args()
    store = build_store()
    environ = {"OPENAI_API_KEY": "x"}
    for _ in range(100):  # warm up
        resolve_team(store, "big", environ=environ)
    samples = []
    for _ in range(args.runs):
        start = time.perf_counter()
        resolve_team(store, "big", environ=environ)
        samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    median = statistics.median(samples)
    p95 = samples[int(len(samples) * 0.95)]
    print(f"plan for an {MEMBERS}-member team: median {median:.3f} ms, p95 {p95:.3f} ms ({args.runs} runs)")
    print(f"target: under 1 ms median -> {'met' if median < 1 else 'MISSED'}")
    print(describe_machine())


if __name__ == "__main__":
    main()
