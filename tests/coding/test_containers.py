"""The acceptance: a ClaudeCode task with a scripted model edits a file of a cloned workspace inside a Docker container
and inside a Podman container, and the change is visible in the workspace afterwards.

The engines and the busybox sandbox image come from tests/containers/conftest.py (started and built once per
session); the clone happens on the host, so the image needs no git and the container no network.
"""

from __future__ import annotations

import json
import subprocess
import time
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import pytest

from wegent_core import SandboxSpec, SubtaskState, TaskState
from wegent_runtimes.sandboxes._containers import LABEL_OWNER, LABEL_TASK, owner_label

from ..containers import conftest as containers  # noqa: TID252 (the engines' fixtures, shared with that suite)
from .conftest import FEATURE_APP, SECRET, call, coding_yaml, finish, tool_outputs

engines = containers.engines  # started once per session, with the busybox image built in each
engine = containers.engine  # docker, then podman
_no_container_left = containers._no_container_left  # checked by label at the end of the session

pytestmark = pytest.mark.anyio


async def test_a_coding_task_edits_the_cloned_workspace_in_a_container(
    coding, engine: str, origin: Path, workspaces: Path, specs: list[SandboxSpec], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WEGENT_SANDBOX_OPTIONS", json.dumps(containers.provider_options(engine)))
    replies = [
        call("list_files", pattern="*.py"),
        call("edit_file", path="app.py", old_string='"Hello, "', new_string='"Hi, "'),
        call("run_command", command="id -u; pwd; grep -n 'Hi, ' app.py; env"),
        call("search_files", pattern="TODO: (one|two)"),
        call("run_command", command="wget -q -T 2 -O- http://1.1.1.1 || echo no network"),
        "greet now says Hi.",
    ]
    _, _, task = await coding(coding_yaml(origin, sandbox={"type": engine}), replies)
    record, events = await finish(task)
    assert record.status is TaskState.COMPLETED, record.error_message
    outputs = [output for _, output, _ in tool_outputs(events)]
    assert outputs[0].splitlines() == ["app.py", "src/lib/util.py"]
    assert outputs[1] == "replaced 1 occurrence(s) in app.py"
    stdout = outputs[2].split("--- stdout ---\n")[1].splitlines()
    assert stdout[:3] == ["1000", "/workspace/demo", '2:    return "Hi, " + name']  # in the container, as its user
    assert SECRET not in outputs[2]
    assert outputs[3].splitlines() == ["notes.txt:1:TODO: one", "notes.txt:2:TODO: two"]
    assert "no network" in outputs[4]
    repo = workspaces / f"task-{task.id}" / "demo"
    assert (repo / "app.py").read_text() == FEATURE_APP.replace('"Hello, "', '"Hi, "')  # visible on the host
    assert specs[0].env == {}
    assert await _containers_of(engine, str(task.id)) == set(), "the task's container outlived its run"


async def _containers_of(engine: str, task: str, within: float = 10.0) -> set[str]:
    """This process's containers of the task, once they are gone or `within` seconds have passed (the run closes its
    sandbox just after the task comes to rest)."""
    api = containers.engine_api(engine)
    try:
        with anyio.move_on_after(within):
            while True:
                mine = {c for c, labels in api.containers(LABEL_OWNER) if labels.get(LABEL_OWNER) == owner_label()}
                found = mine & {c for c, labels in api.containers(LABEL_TASK) if labels.get(LABEL_TASK) == task}
                if not found:
                    break
                await anyio.sleep(0.2)
        return found
    finally:
        api.close()


async def test_a_container_killed_during_a_turn_fails_the_subtask_within_5s(
    coding, engine: str, origin: Path, workspaces: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WEGENT_SANDBOX_OPTIONS", json.dumps(containers.provider_options(engine)))
    replies = [call("run_command", command="touch started; sleep 60", timeout=120), "never reached"]
    _, model, task = await coding(coding_yaml(origin, sandbox={"type": engine}), replies)
    marker = workspaces / f"task-{task.id}" / "demo" / "started"  # the workspace is a bind mount: seen on the host
    failed_at: list[float] = []
    async with anyio.create_task_group() as group:
        group.start_soon(_note_failure, task, failed_at)
        with anyio.fail_after(60):
            while not marker.exists():  # the command runs in the container: now kill it from outside
                await anyio.sleep(0.05)
        container, killed_at = await _kill_task_container(engine, str(task.id))
    record = await task.record()
    subtask = [sub for sub in await task.subtasks() if sub.role == "ASSISTANT"][-1]
    assert subtask.status is SubtaskState.FAILED
    reason = subtask.error_message or ""
    assert f"{engine} sandbox {container[:12]}" in reason, reason
    assert "the container stopped" in reason, reason
    assert "killed from outside" in reason, reason
    assert failed_at, "no subtask.status FAILED event"
    took = failed_at[0] - killed_at
    assert took < 5, f"FAILED {took:.2f}s after the kill"
    print(f"{engine}: the subtask FAILED {took:.2f}s after the kill")
    assert record.status is TaskState.FAILED
    assert model.remaining == 1, "the model was asked again after the sandbox went"
    assert await _containers_of(engine, str(task.id)) == set(), "the killed container was not removed"


async def _note_failure(task: Any, failed_at: list[float]) -> None:
    """Read the task's events as they come, noting when a subtask turns FAILED."""
    async for event in task:
        if event.type == "subtask.status" and event.status is SubtaskState.FAILED and not failed_at:
            failed_at.append(time.monotonic())


async def _kill_task_container(engine: str, task: str) -> tuple[str, float]:
    """Kill this process's container of the task with the engine's command line, found by its labels: its id and
    the time of the kill."""
    api = containers.engine_api(engine)
    try:
        mine = {c for c, labels in api.containers(LABEL_OWNER) if labels.get(LABEL_OWNER) == owner_label()}
        found = mine & {c for c, labels in api.containers(LABEL_TASK) if labels.get(LABEL_TASK) == task}
    finally:
        api.close()
    assert len(found) == 1, found
    url = ["--url", containers.PODMAN_URL] if engine == "podman" else []
    container = found.pop()
    killed_at = time.monotonic()  # before the command: the 5 s include the engine's own kill
    kill = partial(subprocess.run, [engine, *url, "kill", container], check=True, capture_output=True)
    await anyio.to_thread.run_sync(kill)
    return container, killed_at
