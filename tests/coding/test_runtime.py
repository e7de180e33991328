"""The ClaudeCode runtime end to end on the `local` sandbox: the clone, the prompt, the tools, the workspace after the
task, and what never enters the sandbox."""

from __future__ import annotations

from pathlib import Path

import pytest

from wegent_core import SandboxSpec, TaskState

from .conftest import FEATURE_APP, SECRET, call, coding_yaml, finish, git, make_origin, tool_outputs

pytestmark = pytest.mark.anyio

EDIT = call("edit_file", path="app.py", old_string='"Hello, "', new_string='"Hi, "')


async def test_a_task_edits_the_cloned_repository_and_the_change_stays_in_the_workspace(
    coding, origin: Path, workspaces: Path
) -> None:
    replies = [
        call("read_file", path="app.py"),
        EDIT,
        call("run_command", command="python3 -B -c 'import app; print(app.greet(\"you\"))'"),
        call(
            "run_command", command="git status --porcelain && git config user.name && git rev-parse --abbrev-ref HEAD"
        ),
        "greet now says Hi.",
    ]
    _, model, task = await coding(coding_yaml(origin), replies)
    record, events = await finish(task)
    assert record.status is TaskState.COMPLETED, record.error_message
    assert record.result["value"] == "greet now says Hi."
    outputs = tool_outputs(events)
    assert not any(is_error for _, _, is_error in outputs), outputs
    assert '2\t    return "Hello, " + name' in outputs[0][1]
    assert "exit code: 0" in outputs[2][1]
    assert "Hi, you" in outputs[2][1]
    assert outputs[3][1].split("--- stdout ---\n")[1].split("\n")[:3] == [" M app.py", "wegent", "feature"]
    repo = workspaces / f"task-{task.id}" / "demo"
    assert (repo / "app.py").read_text() == FEATURE_APP.replace('"Hello, "', '"Hi, "')
    assert "feature" in git("branch", "--show-current", cwd=repo)
    assert len(model.requests) == 5


async def test_the_clone_takes_the_requested_branch(coding, origin: Path, workspaces: Path) -> None:
    _, _, task = await coding(coding_yaml(origin, branch="main"), [call("list_files"), "done"])
    record, events = await finish(task)
    assert record.status is TaskState.COMPLETED, record.error_message
    assert tool_outputs(events)[0][1] == "README.md"
    assert not (workspaces / f"task-{task.id}" / "demo" / "app.py").exists()


async def test_the_system_prompt_has_the_instruction_files_and_the_working_directory(coding, origin: Path) -> None:
    _, model, task = await coding(coding_yaml(origin), ["ok"])
    record, _ = await finish(task)
    assert record.status is TaskState.COMPLETED, record.error_message
    system = model.requests[0].system
    assert system.startswith("You are a careful developer.")
    assert "## Project instructions (.cursorrules)\nAlways write type hints." in system
    assert "## Project instructions (CLAUDE.md)\nRun the tests with `python3 -m pytest`." in system
    assert "Current working directory: /workspace/demo" in system
    assert {t.name for t in model.requests[0].tools} >= {
        "run_command",
        "read_file",
        "write_file",
        "edit_file",
        "list_files",
        "search_files",
    }


async def test_configured_instruction_files_refuse_absolute_paths_and_traversal(
    coding, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = tmp_path / "host-secret.txt"
    secret.write_text("HOST SECRET")
    origin = make_origin(tmp_path, {"docs/rules.md": "Use tabs."})
    work = tmp_path / "origin-work"  # a file of the repository that points outside it, by a symbolic link
    (work / "AGENTS.md").symlink_to(secret)
    git("add", ".", cwd=work)
    git("commit", "-qm", "link", cwd=work)
    git("push", "-q", str(origin), "feature", cwd=work)
    monkeypatch.setenv("CUSTOM_INSTRUCTION_FILES", f"{secret},../host-secret.txt,docs/../../x,docs/rules.md")
    _, model, task = await coding(coding_yaml(origin), ["ok"])
    record, events = await finish(task)
    assert record.status is TaskState.COMPLETED, record.error_message
    system = model.requests[0].system
    assert "HOST SECRET" not in system
    assert "## Project instructions (docs/rules.md)\nUse tabs." in system
    assert ".cursorrules" not in system  # the setting replaces the default names
    refused = [e.message for e in events if e.type == "notice" and e.code == "coding.instructions_refused"]
    assert len(refused) == 4, refused
    assert any(m.startswith("AGENTS.md: leads outside") for m in refused)


async def test_the_models_key_never_enters_the_sandbox(coding, origin: Path, specs: list[SandboxSpec]) -> None:
    _, _, task = await coding(coding_yaml(origin), [call("run_command", command="env; cat /proc/self/environ"), "ok"])
    record, events = await finish(task)
    assert record.status is TaskState.COMPLETED, record.error_message
    output = tool_outputs(events)[0][1]
    assert "exit code: 0" in output
    assert "PATH=" in output
    assert SECRET not in output
    assert [spec.env for spec in specs] == [{}]
    assert SECRET not in specs[0].model_dump_json()


async def test_the_sandbox_spec_follows_the_shell_and_the_task(coding, origin: Path, specs: list[SandboxSpec]) -> None:
    sandbox = {"network": "host", "memoryMb": 512, "cpus": 0.5, "pids": 64}
    yaml = coding_yaml(origin, sandbox=sandbox, labels={"preserveExecutor": "true"})
    _, _, task = await coding(yaml, ["ok"])
    record, _ = await finish(task)
    assert record.status is TaskState.COMPLETED, record.error_message
    (spec,) = specs
    assert (spec.network, spec.memory_mb, spec.cpus, spec.pids, spec.image) == ("host", 512, 0.5, 64, None)
    assert spec.labels == {"task": str(task.id), "namespace": "default"}
    assert spec.preserve is True
    assert spec.workspace is not None
    assert spec.workspace.endswith(f"task-{task.id}")


async def test_declared_mounts_reach_the_provider_which_may_refuse_them(
    coding, origin: Path, specs: list[SandboxSpec]
) -> None:
    yaml = coding_yaml(origin, sandbox={"mounts": [{"source": "/opt", "target": "/opt"}]})
    _, model, task = await coding(yaml, ["never"])
    record, _ = await finish(task)
    assert [(m.source, m.target, m.read_only) for m in specs[0].mounts] == [("/opt", "/opt", True)]
    assert record.status is TaskState.FAILED
    assert record.error_message == "the local sandbox cannot mount: its commands use host paths directly"
    assert model.requests == []


async def test_a_follow_up_run_gets_a_new_sandbox_on_the_same_workspace(
    coding, origin: Path, specs: list[SandboxSpec]
) -> None:
    wg, model, task = await coding(coding_yaml(origin), [EDIT, "edited"])
    record, _ = await finish(task)
    assert record.status is TaskState.COMPLETED, record.error_message
    model.add(call("read_file", path="app.py", start_line=2, end_line=2), "seen")
    await wg.engine.send(task.id, "Show me line 2.")
    record = await wg.engine.wait(task.id)
    assert record.status is TaskState.COMPLETED, record.error_message
    assert len(specs) == 2
    assert specs[0].workspace == specs[1].workspace
    result = model.requests[-1].messages[-1].content
    assert '2\t    return "Hi, " + name' in result
    assert "lines 2-2 of 6" in result


async def test_an_unknown_repository_fails_the_task_with_the_git_error(coding, tmp_path: Path) -> None:
    _, model, task = await coding(coding_yaml(tmp_path / "missing.git"), ["never"])
    record, _ = await finish(task)
    assert record.status is TaskState.FAILED
    assert "git clone failed" in (record.error_message or "")
    assert model.requests == []


async def test_a_task_without_a_workspace_works_in_an_empty_one(coding, workspaces: Path) -> None:
    _, model, task = await coding(coding_yaml(None), [call("write_file", path="hello.txt", content="hi\n"), "ok"])
    record, _ = await finish(task)
    assert record.status is TaskState.COMPLETED, record.error_message
    assert (workspaces / f"task-{task.id}" / "hello.txt").read_text() == "hi\n"
    assert "Current working directory: /workspace\n" in model.requests[0].system + "\n"


async def test_another_task_with_the_same_id_gets_a_fresh_workspace(coding, origin: Path, workspaces: Path) -> None:
    stale = workspaces / "task-1"
    stale.mkdir(parents=True)
    (stale / "left-over").write_text("from an earlier process")
    _, _, task = await coding(coding_yaml(origin), [call("list_files", pattern="left-over"), "ok"])
    record, events = await finish(task)
    assert record.status is TaskState.COMPLETED, record.error_message
    assert task.id == 1
    assert tool_outputs(events)[0][1].startswith("no files match")
    (moved,) = [p for p in workspaces.iterdir() if p.name.startswith("task-1.stale-")]
    assert (moved / "left-over").read_text() == "from an earlier process"
