"""apply, references and dependents: the rules of issue 3's `wegent apply`, `describe` and `delete`."""

from __future__ import annotations

from typing import Any

from wegent_core import MemoryStore, loads
from wegent_core._apply import apply, dependents, references


def doc(kind: str, name: str, spec: dict[str, Any], namespace: str = "default") -> dict[str, Any]:
    return {"kind": kind, "metadata": {"name": name, "namespace": namespace}, "spec": spec}


GHOST = doc("Ghost", "g", {"systemPrompt": "p", "skills": ["s"]})
SHELL = doc("Shell", "sh", {"shellType": "Chat"})
MODEL = doc("Model", "m", {"modelConfig": {"env": {"model": "openai"}}})
BOT = doc("Bot", "b", {"ghostRef": {"name": "g"}, "shellRef": {"name": "sh"}, "modelRef": {"name": "m"}})
TEAM = doc("Team", "t", {"members": [{"botRef": {"name": "b"}}], "collaborationModel": "solo"})
SKILL = doc("Skill", "s", {"description": "d"})


def ops(report: Any) -> list[tuple[str, str, str]]:
    return [(r.kind, r.name, r.operation) for r in report.results]


def test_apply_creates_in_dependency_order_whatever_the_file_order() -> None:
    store = MemoryStore()
    report = apply(store, loads([TEAM, BOT, MODEL, SHELL, GHOST, SKILL]))
    assert report.ok
    assert ops(report) == [
        ("Skill", "s", "created"),
        ("Shell", "sh", "created"),
        ("Model", "m", "created"),
        ("Ghost", "g", "created"),
        ("Bot", "b", "created"),
        ("Team", "t", "created"),
    ]
    assert all(not r.warnings for r in report.results)
    assert len(store.list()) == 6


def test_reapplying_reports_unchanged_and_a_change_as_updated() -> None:
    store = MemoryStore()
    apply(store, loads([GHOST, SHELL]))
    changed = {**SHELL, "spec": {"shellType": "Agno"}}
    report = apply(store, loads([GHOST, changed]))
    assert ops(report) == [("Shell", "sh", "updated"), ("Ghost", "g", "unchanged")]
    assert store.get("Shell", "sh").spec.shell_type == "Agno"  # type: ignore[union-attr]


def test_dry_run_reports_without_writing() -> None:
    store = MemoryStore()
    apply(store, loads([GHOST]))
    changed_ghost = {**GHOST, "spec": {"systemPrompt": "new"}}
    report = apply(store, loads([changed_ghost, SHELL]), dry_run=True)
    assert report.dry_run
    assert ops(report) == [("Shell", "sh", "created"), ("Ghost", "g", "updated")]
    assert store.get("Shell", "sh") is None
    assert store.get("Ghost", "g").spec.system_prompt == "p"  # type: ignore[union-attr]


def test_missing_references_are_warnings_not_failures() -> None:
    store = MemoryStore()
    report = apply(store, loads([BOT]))
    assert report.ok
    (result,) = report.results
    assert result.operation == "created"
    assert result.warnings == [
        "spec.ghostRef refers to Ghost g, not found (yet) in namespace default or public",
        "spec.shellRef refers to Shell sh, not found (yet) in namespace default or public",
        "spec.modelRef refers to Model m, not found (yet) in namespace default or public",
    ]
    # Applying the rest later completes the graph: no warnings any more.
    apply(store, loads([GHOST, SHELL, MODEL, SKILL]))
    assert apply(store, loads([BOT])).results[0].warnings == []


def test_public_resources_satisfy_default_references() -> None:
    store = MemoryStore()
    apply(store, loads([GHOST, SHELL, MODEL, SKILL]), public=True)
    assert {r.namespace for r in store.list()} == {"public"}
    assert apply(store, loads([BOT])).results[0].warnings == []


def test_namespace_override_moves_the_documents() -> None:
    store = MemoryStore()
    report = apply(store, loads([GHOST, SHELL]), namespace="dev")
    assert {r.namespace for r in report.results} == {"dev"}
    assert store.get("Ghost", "g", "dev") is not None
    assert store.get("Ghost", "g") is None


def test_a_failure_is_reported_and_the_rest_still_applies() -> None:
    store = MemoryStore()
    apply(store, loads([SHELL]))
    stale = {**SHELL, "metadata": {"name": "sh", "resourceVersion": "999"}, "spec": {"shellType": "Agno"}}
    report = apply(store, loads([stale, GHOST]))
    assert not report.ok
    assert report.count("failed") == 1
    failed = next(r for r in report.results if r.operation == "failed")
    assert "resource version 999" in (failed.error or "")
    assert store.get("Ghost", "g") is not None


def test_references_of_every_kind() -> None:
    agent_bot = doc(
        "Bot",
        "ab",
        {"ghostRef": {"name": "g", "namespace": "x"}, "shellRef": {"name": "sh"}, "agent_config": {"bind_model": "bm"}},
        namespace="dev",
    )
    pointer = doc("Model", "p", {"modelConfig": {"bind_model": "m"}})
    derived = doc("Shell", "mine", {"baseShellRef": "ClaudeCode"}, namespace="dev")
    task = doc("Task", "job", {"prompt": "hi", "teamRef": {"name": "t"}, "workspaceRef": {"name": "w"}})
    pinned = doc(
        "Ghost",
        "pg",
        {"systemPrompt": "p", "skills": ["a", "b"], "skill_refs": {"b": {"is_public": True}}},
        namespace="dev",
    )
    found = {r.name: [str(x) for x in references(r)] for r in loads([agent_bot, pointer, derived, task, pinned, TEAM])}
    assert found == {
        "ab": [
            "spec.ghostRef -> Ghost x/g",
            "spec.shellRef -> Shell dev/sh",
            "spec.agent_config.bind_model -> Model dev/bm",
        ],
        "p": ["spec.modelConfig.bind_model -> Model default/m"],
        "mine": ["spec.baseShellRef -> Shell default/ClaudeCode"],
        "job": ["spec.teamRef -> Team default/t", "spec.workspaceRef -> Workspace default/w"],
        "pg": ["spec.skills[0] -> Skill dev/a", "spec.skills[1] -> Skill public/b"],
        "t": ["spec.members[0].botRef -> Bot default/b"],
    }


def test_dependents_follow_resolution_including_the_public_fallback() -> None:
    store = MemoryStore()
    apply(store, loads([GHOST, BOT, TEAM]))
    apply(store, loads([SHELL]), public=True)
    public_shell = store.get("Shell", "sh", "public")
    assert public_shell is not None
    assert [(r.name, ref.path) for r, ref in dependents(store, public_shell)] == [("b", "spec.shellRef")]
    ghost = store.get("Ghost", "g")
    assert ghost is not None
    assert [(r.name, ref.path) for r, ref in dependents(store, ghost)] == [("b", "spec.ghostRef")]
    # Once a default shell of that name exists, the bot resolves to it: the public one has no dependents left.
    apply(store, loads([SHELL]))
    assert dependents(store, public_shell) == []
