"""Pipeline rules of upstream (reference 3.4 and 7.3): stages in member order, confirmation only when requested and
not at the last stage, auto-advance, handoff texts, confirm with a replacement message, the stale-completion guard,
follow-ups staying on the current stage."""

from __future__ import annotations

import anyio
import pytest

from wegent_core import TaskError, TaskState

from .conftest import answer, collect, statuses

pytestmark = pytest.mark.anyio


def stage(bot: str, text: str) -> dict:
    return {"member": bot, "text": text}


async def user_messages(task) -> list[str]:
    return [s.prompt for s in await task.subtasks() if s.role == "USER"]


async def test_stages_run_in_member_order_and_auto_advance(engine) -> None:
    replies = [stage("a", "A out"), stage("b", "B out"), stage("c", "C out")]
    _, model, task = await engine(replies, ["a", "b", "c"], "pipeline", "go")
    events = await collect(task)
    assert statuses(events) == ["RUNNING", "COMPLETED"]  # one run: PENDING is not announced between stages
    assert [r.member for r in model.requests] == ["default/a", "default/b", "default/c"]
    record = await task.record()
    assert (record.status, record.current_stage, record.progress, answer(record)) == ("COMPLETED", 2, 100, "C out")
    handoffs = [(e.source, e.target) for e in events if e.type == "handoff"]
    assert handoffs == [("default/a", "default/b"), ("default/b", "default/c")]


@pytest.mark.parametrize(
    ("passing", "expected"),
    [
        ("none", "go"),  # an empty handoff falls back to the message that started the stage
        ("original_user", "Original user request:\ngo"),
        ("previous_bot", "Previous stage output:\nA out"),
        ("original_and_previous", "Original user request:\ngo\n\nPrevious stage output:\nA out"),
    ],
)
async def test_handoff_texts(engine, passing: str, expected: str) -> None:
    members = [{"bot": "a", "contextPassing": passing}, "b"]
    _, model, task = await engine([stage("a", "A out"), stage("b", "B out")], members, "pipeline", "go")
    await task.wait()
    assert await user_messages(task) == ["go", expected]
    assert model.requests[1].messages[-1].content == expected
    assert [m.role for m in model.requests[1].messages] == ["user"]  # a new stage starts a fresh session


async def test_confirmation_pauses_only_when_asked_and_never_at_the_last_stage(engine) -> None:
    members = ["a", {"bot": "b", "requireConfirmation": True}, {"bot": "c", "requireConfirmation": True}]
    replies = [stage("a", "A"), stage("b", "B"), stage("c", "C")]
    _, _, task = await engine(replies, members, "pipeline")
    events = await collect(task)
    record = await task.record()
    assert (record.status, record.current_stage, record.progress) == (TaskState.PENDING_CONFIRMATION, 1, 100)
    request = next(e for e in events if e.type == "confirmation.request")
    assert (request.stage, request.next_stage) == (1, 2)
    assert await task.result() == "B"  # the waiting stage's answer
    await task.confirm()
    assert await task.result() == "C"  # the last stage asks for no confirmation
    assert (await task.record()).status is TaskState.COMPLETED


async def test_confirm_with_a_message_replaces_the_handoff(engine) -> None:
    members = [{"bot": "a", "requireConfirmation": True, "contextPassing": "previous_bot"}, "b"]
    _, model, task = await engine([stage("a", "draft"), stage("b", "final")], members, "pipeline")
    await task.wait()
    await task.confirm("use the second draft instead")
    assert await task.result() == "final"
    assert model.requests[-1].messages[-1].content == "use the second draft instead"
    assert (await user_messages(task))[-1] == "use the second draft instead"


async def test_confirm_without_a_message_sends_the_generated_handoff(engine) -> None:
    members = [{"bot": "a", "requireConfirmation": True, "contextPassing": "previous_bot"}, "b"]
    _, model, task = await engine([stage("a", "draft"), stage("b", "final")], members, "pipeline")
    events = await collect(task)
    request = next(e for e in events if e.type == "confirmation.request")
    await task.confirm()
    await task.wait()
    assert model.requests[-1].messages[-1].content == request.handoff == "Previous stage output:\ndraft"


async def test_confirm_errors_as_upstream(engine) -> None:
    _, _, task = await engine([stage("a", "done")], ["a"], "pipeline")
    await task.wait()
    with pytest.raises(TaskError, match=r"Task is not awaiting confirmation\. Current status: COMPLETED"):
        await task.confirm()
    _, _, solo = await engine(["x"], ["a", "b"], "solo")
    await solo.wait()
    with pytest.raises(TaskError, match="not awaiting confirmation"):
        await solo.confirm()


async def test_a_follow_up_stays_on_the_current_stage(engine) -> None:
    members = ["a", {"bot": "b", "requireConfirmation": True}, "c"]
    replies = [stage("a", "A"), stage("b", "B1"), stage("b", "B2"), stage("c", "C")]
    _, model, task = await engine(replies, members, "pipeline", "start")
    await task.wait()
    await task.send("make it shorter")  # the user iterates on the waiting stage
    assert await task.result() == "B2"
    record = await task.record()
    assert (record.status, record.current_stage) == (TaskState.PENDING_CONFIRMATION, 1)
    stage_b = [r for r in model.requests if r.member == "default/b"]
    handoff = stage_b[0].messages[0].content
    assert [m.content for m in stage_b[1].messages] == [handoff, "B1", "make it shorter"]
    await task.confirm()
    assert await task.result() == "C"


async def test_a_follow_up_after_completion_goes_to_the_last_stage(engine) -> None:
    replies = [stage("a", "A"), stage("b", "B"), stage("b", "B again")]
    _, _, task = await engine(replies, ["a", "b"], "pipeline")
    await task.wait()
    await task.send("once more")
    assert await task.result() == "B again"


async def test_a_stale_completion_neither_confirms_nor_advances(engine) -> None:
    """A stage that completes after the task moved to another stage (reference 3.4): nothing follows from it."""
    members = [{"bot": "a", "requireConfirmation": True}, "b"]
    wg, model, task = await engine([stage("a", "A") | {"delay": 0.3}, stage("b", "B")], members, "pipeline")
    store = wg.store
    while (await task.record()).status is not TaskState.RUNNING:
        await anyio.sleep(0.01)
    record = await task.record()
    store.update_task(task.id, record.version, current_stage=1)  # moved on meanwhile (as another client might)
    events = await collect(task)
    assert not [e for e in events if e.type in ("confirmation.request", "handoff")]
    final = await task.record()
    assert (final.status, final.current_stage, answer(final)) == (TaskState.COMPLETED, 1, "B")
    assert model.requests[-1].messages[-1].content == "do it"  # the stage the pointer names, on the same message
