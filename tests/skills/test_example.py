"""examples/skills: validates strictly, plans with its skills, and runs offline with its scripted model."""

from __future__ import annotations

from pathlib import Path

import pytest

from wegent_core import MemoryStore, TaskState, Wegent, load, resolve_team
from wegent_server._cli import main

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SKILLS = EXAMPLES / "skills"


def test_the_example_validates_strictly(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "--strict", "-f", str(SKILLS)]) == 0
    assert capsys.readouterr().out.strip().endswith("4 files, 6 resources, no problems")


def test_the_example_plans_its_skills_and_the_skill_mcp_server() -> None:
    resources = load(EXAMPLES / "common", SKILLS, strict=True)
    assert resources.warnings == []
    plan = resolve_team(MemoryStore.from_resources(resources), "release-notes", environ={"OPENAI_API_KEY": "k"})
    assert plan.warnings == []
    (member,) = plan.members
    assert [(s.name, s.preload) for s in member.skills] == [
        ("changelog-style", False),
        ("clock", False),
        ("plain-language", True),
    ]
    assert [(s.name, s.source, s.command) for s in member.mcp_servers] == [
        ("clock_time", "skill:clock", "mcp-server-time")
    ]


def test_the_example_runs_offline_and_the_model_gets_its_skills() -> None:
    with Wegent("sqlite://") as wg:
        wg.apply(list(load(EXAMPLES / "common", SKILLS)))
        wg.apply(list(load(SKILLS / "offline")))
        task = wg.run("release-notes", "Notes for 2.4: faster search (#812), fix login loop (#820)")
        record = task.wait()
        events = list(task.events())
    assert record.status is TaskState.COMPLETED
    assert record.result["value"].startswith("## [2.4]")
    loaded = next(e for e in events if e.type == "tool.result" and e.name == "load_skill")
    assert not loaded.is_error
    assert loaded.output.startswith("# Changelog style")
