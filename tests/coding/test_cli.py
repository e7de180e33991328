"""`useCli: true`: the claude command line in the sandbox, proved with a fake `claude` on the local sandbox's PATH."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from wegent_core import SandboxSpec, TaskState

from .conftest import SECRET, call, coding_yaml, finish

pytestmark = pytest.mark.anyio


@pytest.fixture
def fake_claude(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A `claude` that records its arguments, environment and directory, edits app.py and answers."""
    bin_dir, log = tmp_path / "bin", tmp_path / "claude-calls.jsonl"
    bin_dir.mkdir()
    script = bin_dir / "claude"
    script.write_text(
        "#!/usr/bin/env python3\n"
        "import json, os, sys\n"
        f"with open({str(log)!r}, 'a') as f:\n"
        "    f.write(json.dumps({'args': sys.argv[1:], 'env': dict(os.environ), 'cwd': os.getcwd()}) + '\\n')\n"
        "text = open('app.py').read().replace('Hello', 'Howdy')\n"
        "open('app.py', 'w').write(text)\n"
        "print('CLI changed app.py')\n"
    )
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return log


async def test_the_cli_runs_in_the_repository_with_the_key_given_to_it_alone(
    coding, origin: Path, workspaces: Path, fake_claude: Path, specs: list[SandboxSpec]
) -> None:
    wg, model, task = await coding(coding_yaml(origin, sandbox={"useCli": True}), [])
    record, events = await finish(task)
    assert record.status is TaskState.COMPLETED, record.error_message
    assert record.result["value"] == "CLI changed app.py"
    assert "".join(e.text for e in events if e.type == "text.delta").strip() == "CLI changed app.py"
    assert model.requests == []  # the engine's loop did not run
    repo = workspaces / f"task-{task.id}" / "demo"
    assert '"Howdy, "' in (repo / "app.py").read_text()
    (first,) = [json.loads(line) for line in fake_claude.read_text().splitlines()]
    args = first["args"]
    assert args[:2] == ["-p", "Make greet say Hi."]
    assert args[args.index("--permission-mode") + 1] == "bypassPermissions"
    assert "Always write type hints." in args[args.index("--append-system-prompt") + 1]
    assert "--continue" not in args
    assert Path(first["cwd"]).resolve() == repo.resolve()
    assert first["env"]["ANTHROPIC_API_KEY"] == SECRET  # the documented price of this mode, for this process only
    assert specs[0].env == {}  # ... and never the sandbox's own environment

    await wg.engine.send(task.id, "Again.")
    record = await wg.engine.wait(task.id)
    assert record.status is TaskState.COMPLETED, record.error_message
    second = json.loads(fake_claude.read_text().splitlines()[1])
    assert second["args"][:2] == ["-p", "Again."]
    assert "--continue" in second["args"]


async def test_other_commands_do_not_see_the_key_in_cli_mode(coding, origin: Path, monkeypatch) -> None:
    monkeypatch.setenv("PATH", "/usr/bin:/bin")  # no claude here: the engine's loop runs, with a notice
    _, model, task = await coding(
        coding_yaml(origin, sandbox={"useCli": True}), [call("run_command", command="env"), "ok"]
    )
    record, events = await finish(task)
    assert record.status is TaskState.COMPLETED, record.error_message
    assert [e.code for e in events if e.type == "notice"] == ["coding.no_cli"]
    output = next(e.output for e in events if e.type == "tool.result")
    assert "exit code: 0" in output
    assert SECRET not in output
    assert len(model.requests) == 2


async def test_a_failing_cli_fails_the_turn(coding, origin: Path, tmp_path: Path, monkeypatch) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "claude").write_text("#!/bin/sh\necho 'Invalid API key' >&2\nexit 1\n")
    (bin_dir / "claude").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    _, _, task = await coding(coding_yaml(origin, sandbox={"useCli": True}), [])
    record, _ = await finish(task)
    assert record.status is TaskState.FAILED
    assert record.error_message == "claude exited with code 1: Invalid API key"
