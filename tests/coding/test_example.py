"""examples/coding: it loads strictly, its Task plans with its Workspace, and it runs on the local sandbox with the
Workspace pointed at a local repository and a scripted model in place of the real one."""

from __future__ import annotations

from pathlib import Path

import pytest

from wegent_core import AsyncWegent, TaskState
from wegent_core._loader import load
from wegent_core._memory_store import MemoryStore
from wegent_core._resolve import resolve_task
from wegent_core.testing import ScriptedModel

from .conftest import call, finish

pytestmark = pytest.mark.anyio
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_the_example_loads_strictly_and_its_task_has_its_workspace() -> None:
    resources = load(EXAMPLES / "common", EXAMPLES / "coding", strict=True)
    assert resources.warnings == []
    plan = resolve_task(MemoryStore.from_resources(resources), "fix-greeting", environ={"ANTHROPIC_API_KEY": "k"})
    assert plan.members[0].shell.shell_type == "ClaudeCode"
    assert plan.members[0].shell.sandbox.network == "none"
    assert plan.workspace is not None
    assert (plan.workspace.git_repo, plan.workspace.branch_name) == ("octocat/Hello-World", "master")


async def test_the_example_runs_on_a_local_repository(
    origin: Path, workspaces: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WEGENT_SANDBOX", "local")
    resources = list(load(EXAMPLES / "common", EXAMPLES / "coding", strict=True))
    model = ScriptedModel(
        [call("edit_file", path="notes.txt", old_string="fixed", new_string="fixed twice"), "Done."], name="m"
    )
    async with AsyncWegent("memory://", models={"claude-model": model}) as wg:
        await wg.apply(resources)
        workspace = wg.store.get("Workspace", "hello-world")
        repository = workspace.spec.repository.model_copy(update={"git_url": str(origin), "branch_name": "feature"})
        await wg.apply(
            [workspace.model_copy(update={"spec": workspace.spec.model_copy(update={"repository": repository})})]
        )
        task = await wg.run(wg.store.get("Task", "fix-greeting"))
        record, _ = await finish(task)
    assert record.status is TaskState.COMPLETED, record.error_message
    assert (workspaces / f"task-{task.id}" / "Hello-World" / "notes.txt").read_text().endswith("fixed twice\n")
    assert "Current working directory: /workspace/Hello-World" in model.requests[0].system
