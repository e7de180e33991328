"""Loader benchmark: load and dump one multi-document YAML file of 10,000 resources.

    python benchmarks/bench_load.py [--resources 10000] [--runs 5] [--keep FILE]

The file is a realistic mix: shared Models and Shells, Ghosts with multi-line system prompts (some with MCP servers
and skills), Bots, Teams of several members in every collaboration model, and Tasks with labels. The script prints the
median of several runs of `load()` (target: under 2 s for 10,000 resources), resources per second, the median time of
`dump()` to YAML and to JSON, and a one-line summary with the machine that docs can quote.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import textwrap
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pydantic
import yaml

from wegent_core._loader import dump, load

TARGET_SECONDS = 2.0

ROLES = [
    ("planner", "Break the request into small, verifiable steps and name the owner of each."),
    ("developer", "Write the code for the current step, with tests, and keep changes minimal."),
    ("reviewer", "Review the diff for correctness, security and readability; request changes precisely."),
    ("tester", "Run the test suite, reproduce reported bugs and describe failures with exact commands."),
    ("writer", "Turn the result into clear user-facing documentation with examples."),
    ("analyst", "Gather the facts, quantify them and state your confidence in each conclusion."),
]
MODES = ["solo", "pipeline", "route", "coordinate", "collaborate"]
CONTEXT = ["none", "original_user", "previous_bot", "original_and_previous"]


def prompt(role: str, duty: str, i: int) -> str:
    return textwrap.dedent(
        f"""\
        You are the {role} of team {i}. {duty}

        ## Responsibilities
        - Read the whole request before acting; ask one clarifying question if it is ambiguous.
        - Keep a short list of assumptions and check each one against the repository or the data.
        - Work in small steps and report progress after each of them.
        - Never invent file names, APIs or numbers: look them up or say you do not know.

        ## Input
        The user's request, plus the output of the previous stage when there is one.

        ## Output
        1. A one-paragraph summary.
        2. The details, as a numbered list or a unified diff.
        3. Open questions, if any.

        ## Stop conditions
        Stop when the acceptance criteria are met, when you need a decision from the user, or after
        three attempts at the same step. Say which of these applies.
        """
    )


def indent(text: str, spaces: int) -> str:
    return textwrap.indent(text, " " * spaces)


def ghost(name: str, role: str, duty: str, i: int) -> str:
    doc = f"""\
apiVersion: agent.wecode.io/v1
kind: Ghost
metadata:
  name: {name}
  namespace: default
  labels:
    team: team-{i}
spec:
  systemPrompt: |
{indent(prompt(role, duty, i), 4)}"""
    if i % 3 == 0:
        doc += """  mcpServers:
    github:
      command: docker
      args: [run, -i, --rm, -e, GITHUB_PERSONAL_ACCESS_TOKEN, ghcr.io/github/github-mcp-server]
      env:
        GITHUB_PERSONAL_ACCESS_TOKEN: ${GITHUB_TOKEN}
    docs:
      url: http://127.0.0.1:9000/mcp
      type: streamable-http
  skills: [mermaid-diagram, sandbox]
  preload_skills: [sandbox]
"""
    return doc + "status:\n  state: Available\n"


def bot(name: str, ghost_name: str, i: int) -> str:
    model = "claude-sonnet" if i % 2 else "gpt-4o-mini"
    shell = ["Chat", "ClaudeCode", "Agno"][i % 3]
    return f"""\
apiVersion: agent.wecode.io/v1
kind: Bot
metadata:
  name: {name}
  namespace: default
spec:
  ghostRef: {{name: {ghost_name}, namespace: default}}
  shellRef: {{name: {shell}, namespace: default}}
  modelRef: {{name: {model}, namespace: default}}
status:
  state: Available
"""


def team(name: str, bots: list[str], i: int) -> str:
    mode = MODES[i % len(MODES)]
    members = []
    for j, bot_name in enumerate(bots):
        member = f"""\
    - name: {bot_name}
      role: {"leader" if j == 0 else "member"}
      botRef:
        name: {bot_name}
        namespace: default
      prompt: Focus on part {j + 1} of the work and hand over a concise summary.
"""
        if mode == "pipeline":
            member += f"      requireConfirmation: {'true' if j == 0 else 'false'}\n"
            member += f"      contextPassing: {CONTEXT[(i + j) % len(CONTEXT)]}\n"
        members.append(member)
    return f"""\
apiVersion: agent.wecode.io/v1
kind: Team
metadata:
  name: {name}
  namespace: default
  displayName: Team {i}
spec:
  collaborationModel: {mode}
  description: A {mode} team of {len(bots)} agents, number {i}.
  bind_mode: [chat, code]
  members:
{"".join(members)}  limits:
    maxTurns: 12
    maxCostUsd: 1.5
status:
  state: Available
"""


def task(name: str, team_name: str, i: int) -> str:
    return f"""\
apiVersion: agent.wecode.io/v1
kind: Task
metadata:
  name: {name}
  namespace: default
  labels:
    type: online
    taskType: code
    preserveExecutor: {"true" if i % 2 else "false"}
    source: api
spec:
  title: Task {i}
  prompt: |
    Add input validation to the signup form (task {i}).
    Reject e-mail addresses without a domain and passwords shorter than 12 characters,
    show the error next to the field, and add tests for both rules.
  teamRef:
    name: {team_name}
    namespace: default
  is_group_chat: false
status:
  state: Available
  status: PENDING
  progress: 0
"""


SHARED = """\
apiVersion: agent.wecode.io/v1
kind: Model
metadata:
  name: gpt-4o-mini
spec:
  modelConfig:
    env:
      model: openai
      model_id: gpt-4o-mini
      api_key: ${OPENAI_API_KEY}
      base_url: https://api.openai.com/v1
  protocol: openai
---
apiVersion: agent.wecode.io/v1
kind: Model
metadata:
  name: claude-sonnet
spec:
  modelConfig:
    env:
      model: claude
      model_id: claude-sonnet-4-5
      api_key: ${ANTHROPIC_API_KEY}
  protocol: claude
---
apiVersion: agent.wecode.io/v1
kind: Shell
metadata:
  name: Chat
  labels: {type: direct_chat}
spec:
  shellType: Chat
  supportModel: [claude, openai, gemini]
---
apiVersion: agent.wecode.io/v1
kind: Shell
metadata:
  name: ClaudeCode
  labels: {type: local_engine}
spec:
  shellType: ClaudeCode
  baseImage: ghcr.io/wecode-ai/wegent-executor:latest
---
apiVersion: agent.wecode.io/v1
kind: Shell
metadata:
  name: Agno
  labels: {type: local_engine}
spec:
  runtime: Agno
  baseImage: ghcr.io/wecode-ai/wegent-executor:latest
"""


def generate(total: int) -> str:
    """A stream of exactly `total` resources (at least 5: the shared models and shells)."""
    docs = SHARED.split("---\n")
    i = 0
    while len(docs) < total:
        size = 2 + i % 3  # teams of 2 to 4 members
        names = []
        for j in range(size):
            role, duty = ROLES[(i + j) % len(ROLES)]
            docs.append(ghost(f"ghost-{i}-{j}", role, duty, i))
            docs.append(bot(f"bot-{i}-{j}", f"ghost-{i}-{j}", i))
            names.append(f"bot-{i}-{j}")
        docs.append(team(f"team-{i}", names, i))
        for k in range(2):
            docs.append(task(f"task-{i}-{k}", f"team-{i}", i))
        i += 1
    return "---\n".join(docs[:total])


def median_time(fn: Callable[[], object], runs: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(runs):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    libyaml = "libyaml" if hasattr(yaml, "CSafeLoader") else "pure-Python YAML"
    return (
        f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"pydantic {pydantic.VERSION}, PyYAML {yaml.__version__} ({libyaml})"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--resources", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--keep", type=Path, help="also write the generated file here")
    args = parser.parse_args(argv)

    text = generate(args.resources)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "resources.yaml"
        path.write_text(text, encoding="utf-8")
        if args.keep:
            args.keep.write_text(text, encoding="utf-8")
        size_mb = path.stat().st_size / 1e6

        load(path)  # warm-up: imports, pydantic schema caches
        load_s, resources = median_time(lambda: load(path), args.runs)
        # The floor set by PyYAML: parsing and constructing the same stream without any validation.
        safe_loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        parse_s, _ = median_time(lambda: list(yaml.load_all(text, Loader=safe_loader)), args.runs)
        assert isinstance(resources, list)
        count = len(resources)
        kinds = Counter(r.kind for r in resources)
        dump_yaml_s, _ = median_time(lambda: dump(resources), max(args.runs // 2, 1))
        dump_json_s, _ = median_time(lambda: dump(resources, format="json"), max(args.runs // 2, 1))

    mix = ", ".join(f"{n} {k}" for k, n in kinds.most_common())
    verdict = "meets" if load_s < TARGET_SECONDS else "MISSES"
    print(f"file: {count} resources, {size_mb:.1f} MB ({mix})")
    print(
        f"load:      {load_s:.3f} s median of {args.runs}  ({count / load_s:,.0f} resources/s; "
        f"{verdict} the {TARGET_SECONDS:.0f} s target)"
    )
    print(f"  of which PyYAML alone (yaml.load_all, no validation): {parse_s:.3f} s")
    print(f"dump yaml: {dump_yaml_s:.3f} s  ({count / dump_yaml_s:,.0f} resources/s)")
    print(f"dump json: {dump_json_s:.3f} s  ({count / dump_json_s:,.0f} resources/s)")
    print(
        f"SUMMARY: load() of {count:,} resources ({size_mb:.1f} MB YAML) in {load_s:.2f} s "
        f"({count / load_s:,.0f}/s), dump() in {dump_yaml_s:.2f} s YAML / {dump_json_s:.2f} s JSON; "
        f"{machine()}"
    )
    return 0 if load_s < TARGET_SECONDS else 1


if __name__ == "__main__":
    sys.exit(main())
