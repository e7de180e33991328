"""The task commands of `wegent` (run, logs, cancel, confirm, resume, `get tasks`, `describe task`) end to end, on a
SQLite file, with teams of scripted models written as YAML: in-process through `main([...])`, and in subprocesses where
another process must run the task (cancel it from here, or kill it and resume it here).

Every test runs with WEGENT_HOME in a temporary directory, so the user's data directory is never touched.
"""

from __future__ import annotations

import io
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

from wegent_server._cli import main

from .conftest import Result, Wegent

HEAVY = ("pydantic", "yaml", "sqlalchemy", "anyio", "rich", "wegent_core", "wegent_storage")


@pytest.fixture
def wegent(capsys: pytest.CaptureFixture[str], url: str) -> Wegent:
    """`wegent(*argv)`: main() in-process on a migrated SQLite file (`--store` is added)."""

    def wegent(*argv: str) -> Result:
        code = main([*argv, "--store", url])
        out, err = capsys.readouterr()
        return Result(code, out, err)

    assert wegent("db", "upgrade").code == 0
    return wegent


@pytest.fixture
def spawn(url: str, home: Path) -> Callable[..., subprocess.Popen[str]]:
    """`spawn(*argv)`: `python -m wegent_server ARGV --store URL` in another process; killed after the test."""
    started: list[subprocess.Popen[str]] = []

    def spawn(*argv: str) -> subprocess.Popen[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("WEGENT_")}
        env["WEGENT_HOME"] = str(home)
        command = [sys.executable, "-m", "wegent_server", *argv, "--store", url]
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        started.append(process)
        return process

    yield spawn
    for process in started:
        if process.poll() is None:
            process.kill()
            process.communicate()


def team(
    path: Path,
    script: Sequence[Any],
    members: Sequence[str | dict[str, Any]] = ("writer",),
    mode: str = "solo",
    extra: str = "",
) -> Path:
    """A Team `team` of Chat bots sharing the scripted Model `m`, written to `path`; `extra` is appended YAML."""
    specs = [m if isinstance(m, dict) else {"bot": m} for m in members]
    model = {"script": list(script)}
    docs: list[dict[str, Any]] = [
        {"kind": "Model", "metadata": {"name": "m"}, "spec": {"protocol": "scripted", "modelConfig": model}},
        {"kind": "Shell", "metadata": {"name": "chat"}, "spec": {"shellType": "Chat"}},
    ]
    for bot in sorted({s["bot"] for s in specs}):
        docs.append({"kind": "Ghost", "metadata": {"name": bot}, "spec": {"systemPrompt": f"You are {bot}."}})
        refs = {"ghostRef": {"name": bot}, "shellRef": {"name": "chat"}, "modelRef": {"name": "m"}}
        docs.append({"kind": "Bot", "metadata": {"name": bot}, "spec": refs})
    team_members = [{"botRef": {"name": s["bot"]}, **{k: v for k, v in s.items() if k != "bot"}} for s in specs]
    spec = {"collaborationModel": mode, "members": team_members}
    docs.append({"kind": "Team", "metadata": {"name": "team"}, "spec": spec})
    text = "---\n".join(yaml.safe_dump({"apiVersion": "agent.wecode.io/v1", **d}) for d in docs)
    path.write_text(text + textwrap.dedent(extra))
    return path


PIPELINE = [
    {"bot": "writer", "requireConfirmation": True, "contextPassing": "previous_bot"},
    "reviewer",
]
PIPELINE_SCRIPT = [{"member": "writer", "text": "draft"}, {"member": "reviewer", "text": "final"}]


def statuses(events: list[dict[str, Any]]) -> list[str]:
    return [e["status"] for e in events if e["type"] == "task.status"]


def wait_for_status(wegent: Wegent, status: str, process: subprocess.Popen[str], timeout: float = 15) -> int:
    """Poll `get tasks -o json` until the newest task has `status`; its id."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        items = wegent("get", "tasks", "-o", "json").json()["items"]
        if items and items[0]["status"] == status:
            return int(items[0]["id"])
        time.sleep(0.05)
    raise AssertionError(f"no task became {status}")


# --- run ----------------------------------------------------------------------------------------------------------


def test_run_to_completed_prints_the_answer(wegent: Wegent, tmp_path: Path) -> None:
    path = team(tmp_path / "team.yaml", [{"text": "Hello from the writer"}])
    result = wegent("run", "team", "-f", str(path), "--prompt", "hi")
    assert result.code == 0, result.err
    assert result.out == "Hello from the writer\n"
    assert result.err.startswith("task 1 COMPLETED in ")
    assert "tokens" in result.err
    result = wegent("run", "team", "--prompt", "again")  # the team is in the store now; a new task, a new script
    assert (result.code, result.out) == (0, "Hello from the writer\n")
    assert result.err.startswith("task 2 COMPLETED")


def test_run_applies_files_into_the_namespace_with_warnings_on_stderr(wegent: Wegent, tmp_path: Path) -> None:
    orphan = """
        ---
        apiVersion: agent.wecode.io/v1
        kind: Bot
        metadata: {name: orphan}
        spec: {ghostRef: {name: missing}, shellRef: {name: chat}, modelRef: {name: m}}
    """
    path = team(tmp_path / "team.yaml", [{"text": "namespaced"}], extra=orphan)
    result = wegent("run", "team", "-f", str(path), "--prompt", "hi", "-n", "team-a")
    assert result.code == 0, result.err
    assert result.out == "namespaced\n"
    assert "Bot/orphan (team-a): warning: spec.ghostRef refers to Ghost missing" in result.err
    assert [t["namespace"] for t in wegent("get", "tasks", "-n", "team-a", "-o", "json").json()["items"]] == ["team-a"]
    assert wegent("get", "tasks", "-o", "json").json()["items"] == []
    assert wegent("get", "team", "team", "-n", "team-a").code == 0


def test_json_lines_have_increasing_seq_and_the_expected_types(wegent: Wegent, tmp_path: Path) -> None:
    path = team(tmp_path / "team.yaml", [{"text": "Hello world", "chunks": ["Hello ", "world"]}])
    result = wegent("run", "team", "-f", str(path), "--prompt", "hi", "-o", "json")
    assert result.code == 0, result.err
    events = result.lines()
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert {e["task_id"] for e in events} == {1}
    types = [e["type"] for e in events]
    assert types[:3] == ["message", "task.status", "subtask.status"]
    assert [e["text"] for e in events if e["type"] == "text.delta"] == ["Hello ", "world"]
    assert "usage" in types
    assert statuses(events) == ["RUNNING", "COMPLETED"]
    messages = [(e["role"], e["text"], e["member"]) for e in events if e["type"] == "message"]
    assert messages == [("USER", "hi", None), ("ASSISTANT", "Hello world", "default/writer")]
    assert result.err == ""  # nothing but events, and no status line either


def test_logs_replay_the_runs_json_stream(wegent: Wegent, tmp_path: Path) -> None:
    script = [{"tool_call": {"name": "lookup", "arguments": {"q": "x"}}}, {"text": "done", "thinking": "hmm"}]
    path = team(tmp_path / "team.yaml", script)
    streamed = wegent("run", "team", "-f", str(path), "--prompt", "hi", "-o", "json").lines()
    assert wegent("logs", "1", "-o", "json").lines() == streamed
    assert wegent("logs", "task-1", "-o", "json", "--follow").lines() == streamed  # by name; at rest: ends
    types = {e["type"] for e in streamed}
    assert {"tool.call", "tool.result", "thinking", "text.delta"} <= types


def test_follow_prints_plain_lines_when_not_on_a_terminal(wegent: Wegent, tmp_path: Path) -> None:
    script = [
        {"tool_call": {"name": "lookup", "arguments": {"q": "x"}}},
        {"text": "the answer", "chunks": ["the ", "answer"]},
    ]
    path = team(tmp_path / "team.yaml", script)
    result = wegent("run", "team", "-f", str(path), "--prompt", "hi", "--follow")
    assert result.code == 0, result.err
    assert result.out.splitlines() == [
        "user: hi",
        "task 1: RUNNING",
        "writer: RUNNING",
        'writer -> lookup({"q": "x"})',
        "writer <- lookup: error: there is no tool 'lookup' (tools: none) (error)",
        "writer: the answer",  # streamed as it came, not repeated by the final message
        "writer: COMPLETED",
        "task 1: COMPLETED",
    ]
    assert result.err.startswith("task 1 COMPLETED")
    assert wegent("logs", "1").out == result.out  # logs print the same lines


def test_a_failed_task_exits_1(wegent: Wegent, tmp_path: Path) -> None:
    path = team(tmp_path / "team.yaml", [{"error": "fatal", "message": "the model refused"}])
    result = wegent("run", "team", "-f", str(path), "--prompt", "hi")
    assert result.code == 1
    assert result.out == ""
    assert result.err.strip() == "task 1 FAILED: the model refused"
    events = wegent("logs", "1", "-o", "json").lines()
    assert statuses(events)[-1] == "FAILED"
    assert any(e["type"] == "error" and e["message"] == "the model refused" for e in events)


def test_errors_before_a_task_starts(wegent: Wegent, tmp_path: Path) -> None:
    result = wegent("run", "nope", "--prompt", "hi")
    assert result.code == 1
    assert "Team nope: not found" in result.err
    result = wegent("run", "nope", "--prompt", "hi", "-o", "json")
    assert result.code == 1
    assert [line["error"] for line in result.lines()] == ["ResolutionError"]  # one JSON line
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: Team\nmetadata: {name: t}\nspec: {members: oops}\n")
    result = wegent("run", "t", "-f", str(bad), "--prompt", "hi")
    assert result.code == 1
    assert "bad.yaml" in result.err
    assert wegent("get", "tasks", "-o", "json").json() == {"items": []}  # nothing ran


def test_usage_errors(wegent: Wegent) -> None:
    for argv, message in [
        (["run"], "run takes a TEAM (with --prompt) or --task NAME"),
        (["run", "team"], "run TEAM needs --prompt TEXT"),
        (["run", "team", "--task", "t", "--prompt", "x"], "run takes a TEAM"),
        (["run", "--task", "t", "--prompt", "x"], "--prompt applies to a TEAM only"),
        (["resume", "--force"], "--force applies to one TASK only"),
        (["cancel"], "the following arguments are required: TASK"),
    ]:
        result = wegent(*argv)
        assert result.code == 2, argv
        assert message in result.err


def test_run_a_stored_task(wegent: Wegent, tmp_path: Path) -> None:
    task = """
        ---
        apiVersion: agent.wecode.io/v1
        kind: Task
        metadata: {name: fix-bug, labels: {area: tests}}
        spec: {prompt: Fix the flaky test, teamRef: {name: team}}
    """
    path = team(tmp_path / "team.yaml", [{"text": "fixed"}], extra=task)
    result = wegent("run", "--task", "fix-bug", "-f", str(path))
    assert result.code == 0, result.err
    assert result.out == "fixed\n"
    assert result.err.startswith("task 1 (fix-bug) COMPLETED")
    record = wegent("get", "task", "fix-bug", "-o", "json").json()
    assert (record["name"], record["prompt"], record["labels"]) == ("fix-bug", "Fix the flaky test", {"area": "tests"})
    assert [r["name"] for r in wegent("get", "tasks", "-l", "area=tests", "-o", "json").json()["items"]] == ["fix-bug"]
    assert wegent("get", "tasks", "-l", "area=docs", "-o", "json").json()["items"] == []
    result = wegent("run", "--task", "nope")
    assert result.code == 1
    assert "Task 'nope' not found in namespace 'default'" in result.err


# --- pipelines: confirm -------------------------------------------------------------------------------------------


def test_a_waiting_pipeline_exits_3_and_confirm_with_a_message_runs_it_on(wegent: Wegent, tmp_path: Path) -> None:
    path = team(tmp_path / "team.yaml", PIPELINE_SCRIPT, PIPELINE, "pipeline")
    result = wegent("run", "team", "-f", str(path), "--prompt", "write it")
    assert result.code == 3
    assert result.out == "draft\n"  # the waiting stage's answer
    assert result.err.strip() == "task 1 PENDING_CONFIRMATION: stage 0 is done; `wegent confirm 1` starts stage 1"
    assert wegent("get", "tasks", "-o", "json").json()["items"][0]["status"] == "PENDING_CONFIRMATION"

    result = wegent("confirm", "1", "--message", "use the second draft", "-o", "json")
    assert result.code == 0, result.err
    events = result.lines()
    assert statuses(events) == ["PENDING", "RUNNING", "COMPLETED"]  # only what followed the confirmation
    handoff = next(e for e in events if e["type"] == "handoff")
    assert (handoff["source"], handoff["target"], handoff["text"]) == (
        "default/writer",
        "default/reviewer",
        "use the second draft",
    )
    logged = wegent("logs", "1", "-o", "json").lines()
    users = [e for e in logged if e["type"] == "message" and e["role"] == "USER"]
    assert [(u["message_id"], u["text"]) for u in users] == [(1, "write it"), (3, "use the second draft")]
    assert logged[-len(events) :] == events
    assert (logged[-1]["status"], wegent("logs", "1").out.splitlines()[-1]) == ("COMPLETED", "task 1: COMPLETED")

    runner = wegent("get", "task", "1", "-o", "json").json()["spec"]["runner"]
    assert runner["pid"] == os.getpid()  # the process that confirmed it runs it now (see `_task_commands._claim`)

    result = wegent("confirm", "1")
    assert result.code == 1
    assert result.err.strip() == "error: Task is not awaiting confirmation. Current status: COMPLETED"


def test_confirm_prints_the_answer_and_follows(wegent: Wegent, tmp_path: Path) -> None:
    path = team(tmp_path / "team.yaml", PIPELINE_SCRIPT, PIPELINE, "pipeline")
    assert wegent("run", "team", "-f", str(path), "--prompt", "write it").code == 3
    result = wegent("confirm", "task-1", "--follow")
    assert result.code == 0, result.err
    assert "handoff: writer -> reviewer (pipeline)" in result.out
    assert "user: Previous stage output:" in result.out  # the generated handoff
    assert result.out.splitlines()[-1] == "task 1: COMPLETED"
    record = wegent("get", "task", "1", "-o", "json").json()
    assert (record["status"], record["current_stage"], record["result"]) == ("COMPLETED", 1, {"value": "final"})


# --- cancel -------------------------------------------------------------------------------------------------------


def test_cancel_from_another_process_exits_4_and_resume_leaves_it_alone(
    wegent: Wegent, spawn: Callable[..., Any], tmp_path: Path
) -> None:
    path = team(tmp_path / "team.yaml", [{"text": "too late", "delay": 5}])
    assert wegent("apply", "-f", str(path)).code == 0
    running = spawn("run", "team", "--prompt", "hi")
    task_id = wait_for_status(wegent, "RUNNING", running)
    result = wegent("resume", str(task_id))  # its process is alive: not ours to resume
    assert result.code == 1
    assert f"is RUNNING in process {running.pid} on" in result.err
    assert "--force takes it over" in result.err
    assert wegent("resume").err.startswith("no task to resume")

    result = wegent("cancel", str(task_id))
    assert (result.code, result.out) == (0, f"task {task_id}: CANCELLING\n")  # the other process stops it
    out, err = running.communicate(timeout=15)
    assert running.returncode == 4, err
    assert (out, err) == ("", f"task {task_id} CANCELLED\n")

    result = wegent("cancel", str(task_id), "-o", "json")  # idempotent
    assert (result.code, result.json()) == (0, {"id": task_id, "name": f"task-{task_id}", "status": "CANCELLED"})
    logged = wegent("logs", str(task_id), "-o", "json").lines()
    assert statuses(logged) == ["RUNNING", "CANCELLING", "CANCELLED"]


def test_cancel_a_finished_or_waiting_task(wegent: Wegent, tmp_path: Path) -> None:
    path = team(tmp_path / "team.yaml", [{"text": "done"}])
    assert wegent("run", "team", "-f", str(path), "--prompt", "hi").code == 0
    result = wegent("cancel", "1")
    assert result.code == 1
    assert result.err.strip() == "error: Task is already COMPLETED, cannot cancel"

    path = team(tmp_path / "pipeline.yaml", PIPELINE_SCRIPT, PIPELINE, "pipeline")
    assert wegent("run", "team", "-f", str(path), "--prompt", "hi").code == 3
    assert wegent("cancel", "2").out == "task 2: CANCELLED\n"  # nothing runs a waiting task: cancelled at once
    result = wegent("cancel", "42")
    assert (result.code, result.err.strip()) == (1, "error: task 42 not found")


# --- resume -------------------------------------------------------------------------------------------------------


def test_resume_a_task_whose_process_was_killed(wegent: Wegent, spawn: Callable[..., Any], tmp_path: Path) -> None:
    path = team(tmp_path / "team.yaml", [{"text": "finished here", "delay": 1}])
    assert wegent("apply", "-f", str(path)).code == 0
    running = spawn("run", "team", "--prompt", "hi")
    task_id = wait_for_status(wegent, "RUNNING", running)
    running.send_signal(signal.SIGKILL)
    running.communicate(timeout=15)  # reaped: its pid is gone

    result = wegent("resume")
    assert result.code == 0, result.err
    assert result.out == "finished here\n"
    assert result.err.splitlines() == [f"resumed task {task_id}", result.err.splitlines()[1]]
    assert result.err.splitlines()[1].startswith(f"task {task_id} COMPLETED")
    events = wegent("logs", str(task_id), "-o", "json").lines()
    assert "task.resumed" in [e["type"] for e in events]
    assert statuses(events) == ["RUNNING", "COMPLETED"]

    result = wegent("resume")
    assert (result.code, result.err.strip()) == (0, "no task to resume: none is unfinished with its process gone")
    result = wegent("resume", str(task_id))
    assert (result.code, result.err.strip()) == (0, f"task {task_id} is COMPLETED: nothing to resume")


# --- get tasks, describe task -------------------------------------------------------------------------------------


def test_get_tasks_and_describe_task(wegent: Wegent, tmp_path: Path) -> None:
    path = team(tmp_path / "team.yaml", PIPELINE_SCRIPT, PIPELINE, "pipeline")
    assert wegent("run", "team", "-f", str(path), "--prompt", "write it").code == 3
    result = wegent("get", "tasks")
    header, row = (line.split() for line in result.out.splitlines())
    assert header == ["ID", "NAME", "TEAM", "STATUS", "STAGE", "AGE"]
    assert row[:5] == ["1", "task-1", "team", "PENDING_CONFIRMATION", "0"]
    header, row = (line.split(maxsplit=7) for line in wegent("get", "ta", "-o", "wide").out.splitlines())
    assert header[-2:] == ["PROGRESS", "TITLE"]
    assert row[-2:] == ["100%", "write it"]
    assert wegent("get", "tasks", "-A").out.splitlines()[0].split()[:3] == ["ID", "NAME", "NAMESPACE"]
    assert yaml.safe_load(wegent("get", "task", "1").out)["status"] == "PENDING_CONFIRMATION"  # one: YAML

    result = wegent("describe", "task", "1")
    assert result.code == 0
    out = result.out
    for expected in ("ID:", "Name:", "task-1", "Team:", "default/team", "Status:", "PENDING_CONFIRMATION"):
        assert expected in out
    assert "Prompt:\n  write it\nResult:\n  draft\n" in out
    subtasks = [line.split() for line in out.split("Subtasks:\n", 1)[1].splitlines()]
    assert subtasks == [
        ["MESSAGE", "PARENT", "ROLE", "BOT", "STAGE", "STATUS"],
        ["1", "<none>", "USER", "<none>", "<none>", "COMPLETED"],
        ["2", "1", "ASSISTANT", "default/writer", "0", "COMPLETED"],
    ]
    data = wegent("describe", "ta", "task-1", "-o", "json").json()
    assert data["task"]["id"] == 1
    assert [(s["message_id"], s["role"], s["bot"]) for s in data["subtasks"]] == [
        (1, "USER", None),
        (2, "ASSISTANT", "default/writer"),
    ]


def test_missing_tasks_are_named(wegent: Wegent) -> None:
    assert wegent("get", "tasks").err.strip() == "No tasks found in namespace 'default'."
    for argv, message in [
        (["describe", "task", "7"], "error: task 7 not found"),
        (["get", "task", "nope"], "error: task 'nope' not found"),
        (["get", "task", "nope", "-n", "team-a"], "error: task 'nope' not found in namespace 'team-a'"),
        (["logs", "nope"], "error: task 'nope' not found"),
        (["logs", "3", "--follow"], "error: task 3 not found"),
        (["confirm", "nope"], "error: task 'nope' not found"),
        (["resume", "9"], "error: task 9 not found"),
    ]:
        result = wegent(*argv)
        assert (result.code, result.err.strip()) == (1, message), argv
    result = wegent("logs", "nope", "-o", "json")
    assert result.lines() == [{"error": "NotFoundError", "message": "task 'nope' not found", "problems": []}]


# --- a terminal, and start-up -------------------------------------------------------------------------------------


class Terminal(io.StringIO):
    """A stdout that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def test_follow_on_a_terminal_shows_a_live_view(
    url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = team(tmp_path / "team.yaml", PIPELINE_SCRIPT, ["writer", "reviewer"], "pipeline")
    assert main(["db", "upgrade", "--store", url]) == 0
    terminal = Terminal()
    monkeypatch.setattr(sys, "stdout", terminal)
    monkeypatch.setenv("COLUMNS", "100")
    monkeypatch.setenv("TERM", "xterm")
    assert main(["run", "team", "-f", str(path), "--prompt", "go", "--follow", "--store", url]) == 0
    text = terminal.getvalue()
    assert "\x1b[" in text  # drawn with escape codes
    plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text)
    assert "task 1  default/team  COMPLETED" in plain
    assert re.search(r"stage 0  writer    ━+  COMPLETED", plain)  # a (full) progress bar per stage
    assert re.search(r"stage 1  reviewer  ━+  COMPLETED", plain)
    assert "reviewer COMPLETED (stage 1)" in plain  # a panel per member, with its text
    assert plain.endswith("final\n")  # the whole answer, after the view
    assert capsys.readouterr().err.startswith("task 1 COMPLETED")


@pytest.mark.parametrize("argv", [["run", "--help"], ["logs", "--help"], ["resume", "--help"], ["run"]])
def test_task_help_imports_nothing_heavy(argv: list[str]) -> None:
    code = textwrap.dedent(f"""
        import sys
        from wegent_server._cli import main
        main({argv!r})
        sys.stderr.write("\\nMODULES " + " ".join(sys.modules))
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    modules = set(result.stderr.rsplit("MODULES ", 1)[1].split())
    assert sorted(m for m in modules for heavy in HEAVY if m == heavy or m.startswith(heavy + ".")) == []
    assert "wegent_server._task_commands" not in modules


def test_record_then_replay_prints_the_same_events(wegent: Wegent, tmp_path: Path) -> None:
    path = team(tmp_path / "team.yaml", [{"chunks": ["Hello ", "from ", "the writer"]}])
    recording = tmp_path / "run.jsonl"
    recorded = wegent("run", "team", "-f", str(path), "--prompt", "hi", "-o", "json", "--record", str(recording))
    assert recorded.code == 0, recorded.err
    # a second run answered by the recording, not by the Model
    replayed = wegent("run", "team", "--prompt", "hi", "-o", "json", "--replay", str(recording))
    assert replayed.code == 0, replayed.err

    def shown(result: Result) -> list[tuple[Any, ...]]:
        return [(e["type"], e.get("text"), e.get("status")) for e in result.lines()]

    assert shown(replayed) == shown(recorded)
    assert [e["text"] for e in replayed.lines() if e["type"] == "text.delta"] == ["Hello ", "from ", "the writer"]
    diverged = wegent("run", "team", "--prompt", "something else", "--replay", str(recording))
    assert diverged.code == 1
    assert "differs from the recording" in diverged.err
    missing = wegent("run", "team", "--prompt", "hi", "--replay", str(tmp_path / "nope.jsonl"))
    assert missing.code == 1
    assert "cannot read the recording" in missing.err
