"""The five collaboration models as orchestration, with the scripted model standing in for every bot."""

from __future__ import annotations

import pytest

from wegent_core import TaskState

from .conftest import answer, collect, statuses, types

pytestmark = pytest.mark.anyio


def delegate(member: str, task: str) -> dict:
    return {"tool_call": {"name": "delegate_to_member", "arguments": {"member": member, "task": task}}}


def route_to(member: str) -> dict:
    return {"tool_call": {"name": "route_to_member", "arguments": {"member": member}}}


async def test_solo_answers_with_the_leader(engine) -> None:
    _, model, task = await engine(
        [{"text": "hi there", "member": "lead"}], ["other", {"bot": "lead", "role": "leader"}]
    )
    events = await collect(task)
    assert statuses(events) == ["RUNNING", "COMPLETED"]
    assert answer(await task.record()) == "hi there"
    assert [r.member for r in model.requests] == ["default/lead"]
    assert model.requests[0].system == "You are lead."


async def test_solo_without_a_leader_role_uses_the_first_member(engine) -> None:
    _, model, task = await engine(["from a"], ["a", "b"])
    assert await task.result() == "from a"
    assert model.requests[0].member == "default/a"


async def test_route_returns_the_chosen_members_answer_unchanged(engine) -> None:
    replies = [
        {"member": "lead", **route_to("billing")},
        {"member": "billing", "text": "Your invoice is attached."},
    ]
    members = [{"bot": "lead", "role": "leader"}, "billing", "tech"]
    _, model, task = await engine(replies, members, "route", "Where is my invoice?")
    events = await collect(task)
    assert await task.result() == "Your invoice is attached."
    handoff = next(e for e in events if e.type == "handoff")
    assert (handoff.source, handoff.target, handoff.reason) == ("default/lead", "default/billing", "route")
    leader_request, member_request = model.requests
    assert [t.name for t in leader_request.tools] == ["route_to_member"]
    assert leader_request.tools[0].parameters["properties"]["member"]["enum"] == ["billing", "tech"]
    assert member_request.tools == ()
    assert member_request.messages[-1].content == "Where is my invoice?"


async def test_route_leader_may_answer_itself(engine) -> None:
    _, model, task = await engine(["I can answer that: 42."], [{"bot": "lead", "role": "leader"}, "a"], "route")
    assert await task.result() == "I can answer that: 42."
    assert len(model.requests) == 1


async def test_route_refuses_an_unknown_member_and_two_choices_at_once(engine) -> None:
    replies = [
        route_to("nobody"),
        {"tool_calls": [route_to("a")["tool_call"], route_to("b")["tool_call"]]},
        route_to("b"),
        {"member": "b", "text": "b answers"},
    ]
    _, model, task = await engine(replies, [{"bot": "lead", "role": "leader"}, "a", "b"], "route")
    assert await task.result() == "b answers"
    tool_messages = [m.content for m in model.requests[2].messages if m.role == "tool"]
    assert "'nobody' is not a member of this team (members: a, b)" in tool_messages[0]
    assert all("call it exactly once" in m for m in tool_messages[1:])


async def test_coordinate_delegates_in_parallel_and_synthesises(engine) -> None:
    replies = [
        {
            "member": "lead",
            "tool_calls": [delegate("a", "part one")["tool_call"], delegate("b", "part two")["tool_call"]],
        },
        {"member": "a", "text": "one done", "delay": 0.2},
        {"member": "b", "text": "two done", "delay": 0.2},
        {"member": "lead", "text": "all done: one done, two done"},
    ]
    _, model, task = await engine(replies, [{"bot": "lead", "role": "leader"}, "a", "b"], "coordinate", "build")
    events = await collect(task)
    assert await task.result() == "all done: one done, two done"
    member_requests = [r for r in model.requests if r.member != "default/lead"]
    assert sorted(r.messages[-1].content for r in member_requests) == ["part one", "part two"]
    assert all(r.tools == () for r in member_requests)  # members never see the delegation tool
    seq = {(e.member, e.status): e.seq for e in events if e.type == "subtask.status"}
    assert seq["default/b", "RUNNING"] < seq["default/a", "COMPLETED"]  # b started before a finished: parallel
    subtasks = await task.subtasks()
    leader_step = next(s for s in subtasks if s.bot == "default/lead")
    assert {s.parent_id for s in subtasks if s.bot in ("default/a", "default/b")} == {leader_step.message_id}
    final = model.requests[-1]
    assert [m.content for m in final.messages if m.role == "tool"] == ["one done", "two done"]


async def test_collaborate_runs_every_member_then_the_leader_merges(engine) -> None:
    replies = [
        {"member": "a", "text": "idea A", "delay": 0.1},
        {"member": "b", "text": "idea B", "delay": 0.1},
        {"member": "lead", "text": "merged A+B"},
    ]
    _, model, task = await engine(replies, ["a", {"bot": "lead", "role": "leader"}, "b"], "collaborate", "ideas?")
    assert await task.result() == "merged A+B"
    merge = model.requests[-1]
    assert merge.member == "default/lead"
    assert "### a\nidea A" in merge.messages[-1].content
    assert "### b\nidea B" in merge.messages[-1].content
    assert {r.member for r in model.requests[:2]} == {"default/a", "default/b"}


async def test_collaborate_without_a_leader_has_everyone_work_and_the_first_merge(engine) -> None:
    replies = [{"member": "a", "text": "A"}, {"member": "b", "text": "B"}, {"member": "a", "text": "A and B"}]
    _, model, task = await engine(replies, ["a", "b"], "collaborate")
    assert await task.result() == "A and B"
    assert len(model.requests) == 3


async def test_a_follow_up_sees_the_conversation(engine) -> None:
    _, model, task = await engine(["first answer", "second answer"], ["a"], "solo", "first question")
    assert await task.result() == "first answer"
    await task.send("second question")
    events = await collect(task)
    assert types(events)[0] == "message"
    assert statuses(events) == ["PENDING", "RUNNING", "COMPLETED"]
    assert await task.result() == "second answer"
    history = [(m.role, m.content) for m in model.requests[1].messages]
    assert history == [("user", "first question"), ("assistant", "first answer"), ("user", "second question")]
    record = await task.record()
    assert record.status is TaskState.COMPLETED
    subtasks = await task.subtasks()
    assert [(s.message_id, s.parent_id, s.role) for s in subtasks] == [
        (1, None, "USER"),
        (2, 1, "ASSISTANT"),
        (3, None, "USER"),
        (4, 3, "ASSISTANT"),
    ]


async def test_the_same_delegation_twice_runs_twice(engine) -> None:
    """Two identical delegations in one reply, and again in a later reply: each is a step of its own."""
    call = delegate("a", "count to three")["tool_call"]
    replies = [
        {"member": "lead", "tool_calls": [call, call]},
        {"member": "a", "text": "1 2 3"},
        {"member": "a", "text": "one two three"},
        {"member": "lead", "tool_call": call},
        {"member": "a", "text": "uno dos tres"},
        {"member": "lead", "text": "counted thrice"},
    ]
    _, model, task = await engine(replies, [{"bot": "lead", "role": "leader"}, "a"], "coordinate")
    assert await task.result() == "counted thrice"
    assert len([r for r in model.requests if r.member == "default/a"]) == 3
    delegated = [s for s in await task.subtasks() if s.bot == "default/a"]
    assert len({s.step for s in delegated}) == 3


async def test_a_leader_that_only_routes_writes_no_empty_message(engine) -> None:
    replies = [{"member": "lead", **route_to("a")}, {"member": "a", "text": "answer"}]
    _, _, task = await engine(replies, [{"bot": "lead", "role": "leader"}, "a"], "route")
    events = await collect(task)
    assert [e.text for e in events if e.type == "message" and e.role == "ASSISTANT"] == ["answer"]


async def test_a_changed_team_is_resolved_again(engine) -> None:
    """Plans are reused while the store is unchanged, and resolved again once anything changes."""
    wg, model, task = await engine(["first", "second", "third"], ["a", "b"], "solo")
    assert await task.result() == "first"
    assert (await (await wg.run("team", "again")).wait()).result == {"value": "second"}
    assert [r.member for r in model.requests] == ["default/a", "default/a"]
    team = wg.store.get("Team", "team")
    team.spec.members.reverse()
    wg.store.put(team)
    await (await wg.run("team", "after the change")).wait()
    assert model.requests[-1].member == "default/b"
