"""The skills toolkit on the real engine with a scripted model: what the model is given (system prompt and tools, as
recorded in its requests) and what the task's events say (upstream reference 2.7)."""

from __future__ import annotations

from typing import Any

import pytest

from wegent_core import MemberKit, MemoryStore, Plugins, TaskState, ToolContext, ToolError, loads, resolve_team
from wegent_runtimes.skills import SKILL_TURNS, SkillBook, skills_toolkit

from .conftest import load, skill, team

pytestmark = pytest.mark.anyio

DRAW = "# Drawing\n\nDraw every diagram with ASCII boxes."
BRIEF = "Answer in at most three sentences."


def tool_names(request: Any) -> list[str]:
    return [t.name for t in request.tools]


def results(events: list, name: str = "load_skill") -> list[Any]:
    return [e for e in events if e.type == "tool.result" and e.name == name]


def test_the_skills_toolkit_is_registered() -> None:
    assert "skills" in Plugins.load().toolkits


async def test_preloaded_prompts_are_in_the_system_prompt_and_the_others_are_listed(run) -> None:
    yaml = team(
        ["a"],
        ghosts={"a": {"skills": ["draw"], "preload_skills": ["brief"]}},
        skills=[skill("draw", DRAW, displayName="Diagrams"), skill("brief", BRIEF, displayName="Brevity")],
    )
    model, task, _ = await run(["ok"], yaml)
    (request,) = model.requests
    assert request.system.startswith("You are a.\n\n")
    assert f"## Skill: Brevity (brief)\n\n{BRIEF}" in request.system
    assert "- `draw`: How to do draw work." in request.system
    assert "ASCII boxes" not in request.system  # an on-demand skill's prompt waits for load_skill
    assert "- `brief`" not in request.system  # a preloaded skill is not offered again
    assert tool_names(request) == ["load_skill"]
    assert request.tools[0].parameters["properties"]["name"]["enum"] == ["draw"]
    assert (await task.wait()).status is TaskState.COMPLETED


async def test_a_member_without_skills_gets_no_tool_and_an_unchanged_prompt(run) -> None:
    yaml = team(["a"], ghosts={"a": {"preload_skills": ["brief"]}}, skills=[skill("brief", BRIEF), skill("draw", DRAW)])
    model, _, _ = await run(["ok"], yaml)
    (request,) = model.requests
    assert tool_names(request) == []  # only preloaded skills: nothing to load
    assert request.system == f"You are a.\n\n## Skill: brief\n\n{BRIEF}"
    model, _, _ = await run(["ok"], team(["a"], skills=[skill("draw", DRAW)]))
    assert model.requests[0].system == "You are a."
    assert tool_names(model.requests[0]) == []


async def test_load_skill_gives_the_prompt_to_the_next_model_call(run) -> None:
    yaml = team(["a"], ghosts={"a": {"skills": ["draw", "other"]}}, skills=[skill("draw", DRAW), skill("other", "x")])
    model, task, events = await run([load("draw"), "drawn"], yaml)
    first, second = model.requests
    assert "ASCII boxes" not in first.system
    tool_message = second.messages[-1]
    assert (tool_message.role, tool_message.name, tool_message.content) == ("tool", "load_skill", DRAW)
    (result,) = results(events)
    assert not result.is_error
    assert await task.result() == "drawn"


async def test_a_second_load_in_the_same_turn_is_a_short_confirmation(run) -> None:
    yaml = team(["a"], ghosts={"a": {"skills": ["draw"]}}, skills=[skill("draw", DRAW)])
    parallel = {"tool_calls": [load("draw")["tool_call"], load("draw")["tool_call"]]}
    model, _, events = await run([load("draw"), load("draw"), parallel, "done"], yaml)
    outputs = [r.output for r in results(events)]
    assert outputs[0] == DRAW
    assert outputs[1:] == ["Skill 'draw' is already loaded; its instructions are above."] * 3
    assert sum(DRAW in m.content for m in model.requests[-1].messages) == 1  # the prompt reached the model once


async def test_an_unknown_skill_name_is_a_tool_error_that_lists_the_available_ones(run) -> None:
    yaml = team(
        ["a"],
        ghosts={"a": {"skills": ["draw", "chart"], "preload_skills": ["brief"]}},
        skills=[skill("draw", DRAW), skill("chart", "c"), skill("brief", BRIEF)],
    )
    replies = [load("paint"), load("brief"), {"tool_call": {"name": "load_skill", "arguments": {}}}, "fine"]
    _model, task, events = await run(replies, yaml)
    unknown, preloaded, empty = results(events)
    assert unknown.is_error
    assert unknown.output == "error: there is no skill 'paint'; available skills: chart, draw"
    assert not preloaded.is_error
    assert "preloaded" in preloaded.output
    assert BRIEF not in preloaded.output
    assert empty.is_error
    assert "needs a skill name" in empty.output
    assert (await task.wait()).status is TaskState.COMPLETED


async def test_a_missing_skill_is_announced_and_the_task_completes(run) -> None:
    yaml = team(
        ["a"], ghosts={"a": {"skills": ["draw", "gone"], "preload_skills": ["vanished"]}}, skills=[skill("draw", DRAW)]
    )
    model, task, events = await run([load("gone"), "done anyway"], yaml)
    notices = [e for e in events if e.type == "notice"]
    assert [(n.code, n.member) for n in notices] == [("skill.missing", "default/a")] * 2
    assert "'gone'" in notices[0].message
    assert "'vanished'" in notices[1].message
    assert "gone" not in model.requests[0].system
    (result,) = results(events)
    assert result.is_error  # the model cannot load it either
    record = await task.wait()
    assert record.status is TaskState.COMPLETED
    assert record.result["value"] == "done anyway"


async def test_skills_bound_to_another_shell_are_not_given(run) -> None:
    yaml = team(
        ["a"],
        ghosts={"a": {"skills": ["cc", "chat", "any"], "preload_skills": ["cc-pre"]}},
        skills=[
            skill("cc", "claude code only", bindShells=["ClaudeCode"]),
            skill("cc-pre", "claude code only, preloaded", bindShells=["ClaudeCode"]),
            skill("chat", "for chat", bindShells=["Chat"]),
            skill("any", "for every shell"),
        ],
    )
    model, _, events = await run([load("cc"), "done"], yaml)
    system = model.requests[0].system
    assert "- `chat`" in system
    assert "- `any`" in system
    assert "`cc`" not in system
    assert "claude code only" not in system
    assert results(events)[0].output == "error: there is no skill 'cc'; available skills: any, chat"
    assert not [e for e in events if e.type == "notice"]  # bound elsewhere is not missing


async def test_a_loaded_skill_is_in_the_system_prompt_of_the_members_next_turn(run) -> None:
    delegate = {"name": "delegate_to_member", "arguments": {"member": "a", "task": ""}}
    replies = [
        {"member": "lead", "tool_call": {**delegate, "arguments": {"member": "a", "task": "first"}}},
        {"member": "a", **load("draw")},
        {"member": "a", "text": "drew it"},
        {"member": "lead", "tool_call": {**delegate, "arguments": {"member": "a", "task": "second"}}},
        {"member": "a", **load("draw")},
        {"member": "a", "text": "drew it again"},
        {"member": "lead", "text": "both done"},
    ]
    yaml = team(
        [{"bot": "lead", "role": "leader"}, "a"],
        ghosts={"a": {"skills": ["draw"]}},
        skills=[skill("draw", DRAW)],
        mode="coordinate",
    )
    model, task, _events = await run(replies, yaml)
    turns = [r for r in model.requests if r.member == "default/a"]
    assert [r.messages[-1].content for r in turns] == [
        "first",
        DRAW,
        "second",
        "Skill 'draw' is already loaded; its instructions are in your system prompt.",
    ]
    assert "## Skill: draw" not in turns[0].system
    assert f"## Skill: draw\n\n{DRAW}" in turns[2].system
    assert "load_skill" not in tool_names(model.requests[0])  # the leader has no skills
    assert await task.result() == "both done"


async def test_through_the_engine_a_loaded_skill_leaves_after_five_turns(run) -> None:
    delegate = {"name": "delegate_to_member", "arguments": {"member": "a", "task": ""}}
    replies: list[Any] = [
        {"member": "lead", "tool_call": {**delegate, "arguments": {"member": "a", "task": "turn 1"}}},
        {"member": "a", **load("draw")},
        {"member": "a", "text": "loaded"},
    ]
    for n in range(2, 8):  # turns 2..7 of member a, none of which loads the skill again
        replies += [
            {"member": "lead", "tool_call": {**delegate, "arguments": {"member": "a", "task": f"turn {n}"}}},
            {"member": "a", "text": f"answer {n}"},
        ]
    replies.append({"member": "lead", "text": "all done"})
    yaml = team(
        [{"bot": "lead", "role": "leader"}, "a"],
        ghosts={"a": {"skills": ["draw"]}},
        skills=[skill("draw", DRAW)],
        mode="coordinate",
    )
    model, task, _events = await run(replies, yaml)
    turns = {r.messages[-1].content: r.system for r in model.requests if r.member == "default/a"}
    block = f"## Skill: draw\n\n{DRAW}"
    assert all(block in turns[f"turn {n}"] for n in range(2, 6))  # turns 1-5 count: it stays through turn 5
    assert block not in turns["turn 6"]  # the engine's turn hook aged it out, with no load_skill call
    assert block not in turns["turn 7"]
    assert await task.result() == "all done"


# --- turns and expiry, on one member's kit --------------------------------------------------------------------------


def member_kit(ghost: dict[str, Any], skills: list[dict[str, Any]], session: Any = None) -> MemberKit:
    docs = loads(team(["a"], ghosts={"a": ghost}, skills=skills))
    plan = resolve_team(MemoryStore.from_resources(docs), "team", environ={})
    (member,) = plan.members
    return MemberKit(task_id=1, member=member, session=session, plan=plan, emit=lambda event: None)


def context(message: int, step: int = 1) -> ToolContext:
    return ToolContext(1, "default/a", f"call-{message}-{step}", f"task-1/message-{message}/step-{step}/call-1")


async def test_a_loaded_skill_stays_for_five_turns_counting_the_one_it_was_loaded_in() -> None:
    kit = member_kit({"skills": ["draw", "chart"]}, [skill("draw", DRAW), skill("chart", "Chart it.")])
    await skills_toolkit(kit)
    (load_tool,) = kit.tools
    book: SkillBook = load_tool.book
    base = list(kit.instructions)
    assert await load_tool.call({"name": "draw"}, context(2)) == DRAW
    block = f"## Skill: draw\n\n{DRAW}"
    assert kit.instructions == [*base, block]
    for turn in range(3, 2 + SKILL_TURNS):
        book.start_turn(turn)
        assert "draw" in book.loaded, turn
    book.start_turn(2 + SKILL_TURNS)  # the sixth turn, counting the one it was loaded in
    assert "draw" not in book.loaded
    assert kit.instructions == base
    assert await load_tool.call({"name": "draw"}, context(20)) == DRAW  # loadable again once gone


async def test_loading_again_in_a_later_turn_refreshes_its_turns() -> None:
    kit = member_kit({"skills": ["draw"]}, [skill("draw", DRAW)])
    await skills_toolkit(kit)
    (load_tool,) = kit.tools
    book: SkillBook = load_tool.book
    await load_tool.call({"name": "draw"}, context(1))
    for turn in range(2, 5):
        book.start_turn(turn)
    again = await load_tool.call({"name": "draw"}, context(5))
    assert again == "Skill 'draw' is already loaded; its instructions are in your system prompt."
    for turn in range(6, 10):
        book.start_turn(turn)
    assert "draw" in book.loaded  # turns 5 to 9: five, counting the reload
    book.start_turn(10)
    assert "draw" not in book.loaded


async def test_turns_are_told_apart_by_the_message_id_of_the_calls() -> None:
    kit = member_kit({"skills": ["draw"]}, [skill("draw", DRAW)])
    await skills_toolkit(kit)
    (load_tool,) = kit.tools
    await load_tool.call({"name": "draw"}, context(4, step=1))
    same_turn = await load_tool.call({"name": "draw"}, context(4, step=7))
    later_turn = await load_tool.call({"name": "draw"}, context(9))
    assert same_turn.endswith("are above.")
    assert later_turn.endswith("in your system prompt.")
    with pytest.raises(ToolError, match="available skills: draw"):
        await load_tool.call({"name": "nope"}, context(9))
