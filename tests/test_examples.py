"""The examples: each collaboration model's folder, together with examples/common, loads strictly and plans as its
folder name says; examples/offline runs the pipeline example end to end with scripted models."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from wegent_core._loader import ResourceSet, load
from wegent_core._resources import CollaborationModel, Ghost, Task, Team

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
COMMON = EXAMPLES / "common"
MODES = {m.value for m in CollaborationModel}
FOLDERS = sorted(p for p in EXAMPLES.iterdir() if p.name in MODES)  # one per collaboration model; others are tools
ENVIRON = {"OPENAI_API_KEY": "sk-test", "ANTHROPIC_API_KEY": "sk-ant-test"}


def load_example(folder: Path) -> ResourceSet:
    return load(COMMON, folder, strict=True)


def test_there_is_an_example_per_collaboration_model() -> None:
    assert {f.name for f in FOLDERS} == MODES
    for folder in FOLDERS:
        assert (folder / "team.yaml").is_file(), folder


def test_common_holds_the_shared_shell_and_models() -> None:
    common = load(COMMON, strict=True)
    assert common.warnings == []
    expected = {"Shell default/Chat", "Model default/default-model", "Model default/claude-model"}
    assert {str(r) for r in common} >= expected
    env = common.find("Model", "default-model").spec.config["env"]
    assert env["api_key"] == "${OPENAI_API_KEY}"
    assert env["base_url"] == "https://api.openai.com/v1"
    assert env["model_id"]
    assert common.find("Model", "claude-model").spec.config["env"]["api_key"] == "${ANTHROPIC_API_KEY}"


@pytest.mark.parametrize("folder", FOLDERS, ids=[f.name for f in FOLDERS])
def test_example_loads_strictly_without_problems(folder: Path) -> None:
    resources = load_example(folder)
    assert resources.warnings == []
    teams = resources.of_kind("Team")
    assert teams, f"{folder.name} has no Team"
    for team in teams:
        assert isinstance(team, Team)
        assert team.spec.collaboration_model.value == folder.name


@pytest.mark.parametrize("folder", FOLDERS, ids=[f.name for f in FOLDERS])
def test_example_prompts_follow_the_prompt_design_advice(folder: Path) -> None:
    for ghost in load_example(folder).of_kind("Ghost"):
        assert isinstance(ghost, Ghost)
        prompt = ghost.spec.system_prompt
        assert prompt.startswith("You "), f"{ghost}: start with the role"
        for section in ("Responsibilities", "Input", "Output", "Stop conditions"):
            assert re.search(rf"^## {section}$", prompt, re.MULTILINE), f"{ghost}: no '## {section}' section"


def test_the_examples_show_what_each_mode_needs() -> None:
    teams = {f.name: load_example(f).of_kind("Team")[0] for f in FOLDERS}
    pipeline = teams["pipeline"].spec.members
    assert any(m.require_confirmation for m in pipeline)
    assert any(m.context_passing.value != "none" for m in pipeline)
    route = teams["route"].spec
    assert route.members[route.leader_index].is_leader
    assert len(route.members) - 1 == 3
    coordinate = teams["coordinate"].spec
    assert coordinate.members[coordinate.leader_index].is_leader
    assert len(coordinate.members) - 1 == 3
    collaborate = teams["collaborate"].spec
    assert collaborate.members[collaborate.leader_index].is_leader
    assert len(collaborate.members) - 1 == 3
    assert any(load_example(f).of_kind("Task") for f in FOLDERS), "one example should have a Task"


def test_readme_lists_every_example_with_its_plan_command() -> None:
    readme = (EXAMPLES / "README.md").read_text()
    for folder in FOLDERS:
        for team in load_example(folder).of_kind("Team"):
            command = f"wegent plan -f examples/common -f examples/{folder.name} --team {team.name}"
            assert command in readme, command


@pytest.mark.parametrize("folder", FOLDERS, ids=[f.name for f in FOLDERS])
def test_example_teams_resolve_to_their_collaboration_model(folder: Path) -> None:
    try:
        from wegent_core._memory_store import MemoryStore
        from wegent_core._resolve import resolve_task, resolve_team
    except ImportError:
        pytest.skip("resolution is not available yet")
    resources = load_example(folder)
    store = MemoryStore.from_resources(resources)
    for team in resources.of_kind("Team"):
        assert isinstance(team, Team)
        plan = resolve_team(store, team.name, team.namespace, prompt="Hello", environ=ENVIRON)
        assert plan.collaboration_model.value == folder.name
        assert len(plan.members) == len(team.spec.members)
        assert plan.leader == team.spec.leader_index
        assert plan.warnings == []
        for member in plan.members:
            assert member.system_prompt.strip()
            assert member.model.api_key in ("${OPENAI_API_KEY}", "${ANTHROPIC_API_KEY}")  # kept as written
    for task in resources.of_kind("Task"):
        assert isinstance(task, Task)
        plan = resolve_task(store, task.name, task.namespace, environ=ENVIRON)
        assert plan.collaboration_model.value == folder.name
        assert plan.prompt == task.spec.prompt


def test_the_offline_models_run_the_pipeline_task_end_to_end() -> None:
    """What `./dev demo` does: the pipeline example's Task, with examples/offline's scripted models in place of the
    real ones, stops for a confirmation after the spec, and the developer and the reviewer then finish it."""
    from wegent_core import TaskState, Wegent

    offline = load(EXAMPLES / "offline", strict=True)
    assert {m.spec.protocol for m in offline.of_kind("Model")} == {"scripted"}
    with Wegent("sqlite://") as wg:
        wg.apply(list(load_example(EXAMPLES / "pipeline")))
        wg.apply(list(offline))  # replaces default-model and claude-model
        task = wg.run(wg.store.get("Task", "add-rate-limiter"))
        assert task.wait().status is TaskState.PENDING_CONFIRMATION
        assert "## Acceptance criteria" in task.result()
        task.confirm()
        record = task.wait()
        assert record.status is TaskState.COMPLETED
        assert record.result["value"].startswith("Approve")
        bots = [s.bot for s in task.subtasks() if s.role == "ASSISTANT"]
        assert bots == ["default/spec-writer-bot", "default/developer-bot", "default/code-reviewer-bot"]
