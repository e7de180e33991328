"""A ClaudeCode team as YAML, a bare git repository to clone, and an engine to run a coding task on a sandbox."""

from __future__ import annotations

import json
import subprocess
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from wegent_core import AsyncTask, AsyncWegent, SandboxSpec, TaskRecord
from wegent_core.testing import ScriptedModel
from wegent_runtimes.coding import _runtime

pytestmark = pytest.mark.anyio

SECRET = "sk-ant-never-in-the-sandbox-5f3a9c"  # the Model's key: it must not reach a sandbox
FEATURE_APP = 'def greet(name):\n    return "Hello, " + name\n\n\ndef main():\n    print(greet("world"))\n'


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def workspaces(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Task workspaces of this test, in its own directory (task ids restart at 1 with every in-memory store)."""
    root = tmp_path / "workspaces"
    monkeypatch.setenv("WEGENT_WORKSPACES", str(root))
    monkeypatch.delenv("WEGENT_SANDBOX", raising=False)
    monkeypatch.delenv("CUSTOM_INSTRUCTION_FILES", raising=False)
    return root


@pytest.fixture
def specs(monkeypatch: pytest.MonkeyPatch) -> list[SandboxSpec]:
    """Every SandboxSpec the runtime makes, in order."""
    made: list[SandboxSpec] = []
    original = _runtime.sandbox_spec

    def recording(*args: Any) -> SandboxSpec:
        made.append(original(*args))
        return made[-1]

    monkeypatch.setattr(_runtime, "sandbox_spec", recording)
    return made


def git(*args: str, cwd: Path | None = None) -> str:
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    done = subprocess.run(["git", *args], cwd=cwd, env={**env, "PATH": "/usr/bin:/bin"}, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout


def make_origin(tmp_path: Path, extra: dict[str, str] | None = None) -> Path:
    """A bare repository: `main` has a README only; `feature` adds app.py, notes.txt and instruction files."""
    work = tmp_path / "origin-work"
    work.mkdir()
    git("init", "-q", "-b", "main", cwd=work)
    (work / "README.md").write_text("main branch\n")
    git("add", ".", cwd=work)
    git("commit", "-qm", "main", cwd=work)
    git("checkout", "-qb", "feature", cwd=work)
    files = {
        "app.py": FEATURE_APP,
        "notes.txt": "TODO: one\nTODO: two\nfixed\n",
        "src/lib/util.py": "VALUE = 42  # the answer\n",
        ".cursorrules": "Always write type hints.",
        "CLAUDE.md": "Run the tests with `python3 -m pytest`.",
        **(extra or {}),
    }
    for name, text in files.items():
        (work / name).parent.mkdir(parents=True, exist_ok=True)
        (work / name).write_text(text)
    git("add", ".", cwd=work)
    git("commit", "-qm", "feature", cwd=work)
    bare = tmp_path / "origin.git"
    git("clone", "-q", "--bare", str(work), str(bare))
    return bare


@pytest.fixture
def origin(tmp_path: Path) -> Path:
    return make_origin(tmp_path)


def coding_yaml(
    origin: Path | str | None,
    *,
    sandbox: dict[str, Any] | None = None,
    image: str | None = None,
    branch: str = "feature",
    labels: dict[str, str] | None = None,
    prompt: str = "Make greet say Hi.",
) -> str:
    """A solo team of one ClaudeCode bot on the scripted Model `m` (whose key is SECRET), and the Task `fix` on a
    Workspace of `origin` at `branch`."""
    shell: dict[str, Any] = {"shellType": "ClaudeCode", "sandbox": {"type": "local", **(sandbox or {})}}
    if image:
        shell["baseImage"] = image
    model = {"protocol": "scripted", "modelConfig": {"script": [], "env": {"model": "claude", "api_key": SECRET}}}
    docs: list[dict[str, Any]] = [
        {"kind": "Model", "metadata": {"name": "m"}, "spec": model},
        {"kind": "Shell", "metadata": {"name": "coder-shell"}, "spec": shell},
        {"kind": "Ghost", "metadata": {"name": "coder"}, "spec": {"systemPrompt": "You are a careful developer."}},
        {
            "kind": "Bot",
            "metadata": {"name": "coder"},
            "spec": {"ghostRef": {"name": "coder"}, "shellRef": {"name": "coder-shell"}, "modelRef": {"name": "m"}},
        },
        {
            "kind": "Team",
            "metadata": {"name": "dev"},
            "spec": {"collaborationModel": "solo", "members": [{"botRef": {"name": "coder"}}]},
        },
    ]
    task: dict[str, Any] = {"title": "fix", "prompt": prompt, "teamRef": {"name": "dev"}}
    if origin is not None:
        repository = {
            "gitUrl": str(origin),
            "gitRepo": "acme/demo",
            "branchName": branch,
            "gitDomain": "localhost",
        }
        docs.append({"kind": "Workspace", "metadata": {"name": "ws"}, "spec": {"repository": repository}})
        task["workspaceRef"] = {"name": "ws"}
    docs.append({"kind": "Task", "metadata": {"name": "fix", "labels": labels or {}}, "spec": task})
    return "\n---\n".join(json.dumps({"apiVersion": "agent.wecode.io/v1", **d}) for d in docs) + "\n"


@pytest.fixture
async def coding() -> AsyncIterator[Any]:
    """`await coding(yaml, replies)` -> (wegent, model, task): the Task `fix` started on a memory store."""
    opened: list[AsyncWegent] = []

    async def start(yaml: str, replies: Sequence[Any], store: str = "memory://") -> tuple[Any, ScriptedModel, Any]:
        model = ScriptedModel(replies, name="m")
        wg = AsyncWegent(store, models={"m": model})
        await wg.__aenter__()
        opened.append(wg)
        await wg.apply(yaml)
        task = await wg.run(wg.store.get("Task", "fix"))
        return wg, model, task

    yield start
    for wg in reversed(opened):
        await wg.__aexit__(None, None, None)


def call(name: str, **arguments: Any) -> dict[str, Any]:
    return {"tool_call": {"name": name, "arguments": arguments}}


def tool_outputs(events: Sequence[Any]) -> list[tuple[str, str, bool]]:
    return [(e.name, e.output, e.is_error) for e in events if e.type == "tool.result"]


async def finish(task: AsyncTask) -> tuple[TaskRecord, list[Any]]:
    events = [event async for event in task]
    return await task.record(), events
