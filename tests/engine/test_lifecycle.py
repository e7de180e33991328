"""The state machine: any sequence of events and commands leaves a task in a legal state, terminal states stay
terminal under everything but a follow-up message, and DELETE is final. Then the same through the engine."""

from __future__ import annotations

import itertools

import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wegent_core import AsyncWegent, SubtaskState, TaskError, TaskState, TransitionError
from wegent_core._lifecycle import _TASK, FINISHED, can_task_transition, subtask_transition, task_transition
from wegent_core.testing import ScriptedModel

from .conftest import team_yaml

STATES = list(TaskState)
TERMINAL = {TaskState.COMPLETED, TaskState.FAILED, TaskState.CANCELLED}


@given(st.sampled_from(STATES), st.lists(st.tuples(st.sampled_from(STATES), st.booleans()), max_size=30))
def test_any_sequence_keeps_a_legal_state(start: TaskState, steps) -> None:
    state = start
    for target, follow_up in steps:
        before = state
        if not can_task_transition(state, target, follow_up=follow_up):
            with pytest.raises(TransitionError, match=f"a task cannot go from {before} to {target}"):
                task_transition(state, target, follow_up=follow_up)
            continue
        state = task_transition(state, target, follow_up=follow_up)
        assert state == target
        assert target == before or target in _TASK[before]
        if before in TERMINAL and target != before:
            assert target is TaskState.DELETE or (target is TaskState.PENDING and follow_up)
        assert before is not TaskState.DELETE or target is TaskState.DELETE
        if before is TaskState.CANCELLING and target != before:
            assert target in (TaskState.CANCELLED, TaskState.FAILED, TaskState.DELETE)


@pytest.mark.parametrize("late", [TaskState.COMPLETED, TaskState.RUNNING, TaskState.PENDING_CONFIRMATION])
def test_cancelled_is_sticky(late: TaskState) -> None:
    with pytest.raises(TransitionError):
        task_transition(TaskState.CANCELLED, late)


@given(st.sampled_from(list(SubtaskState)), st.lists(st.sampled_from(list(SubtaskState)), max_size=20))
def test_finished_subtasks_only_go_to_delete(start: SubtaskState, targets) -> None:
    state = start
    for target in targets:
        try:
            new = subtask_transition(state, target)
        except TransitionError:
            continue
        if state in (SubtaskState.COMPLETED, SubtaskState.FAILED, SubtaskState.CANCELLED):
            assert new in (state, SubtaskState.DELETE)
        state = new


COMMANDS = st.lists(st.sampled_from(["cancel", "confirm", "send", "sleep"]), min_size=1, max_size=6)


@settings(max_examples=25)
@given(COMMANDS, st.floats(min_value=0, max_value=0.05))
def test_commands_in_any_order_leave_the_engine_legal(commands: list[str], delay: float) -> None:
    """A two-stage pipeline that asks for confirmation, driven by random commands at random moments: every command
    is either applied or refused with a TaskError, the task always ends at rest, and the log agrees with it."""

    async def main() -> None:
        replies = [{"text": "stage", "delay": delay}] * 12
        async with AsyncWegent("sqlite://", models={"m": ScriptedModel(replies)}) as wg:
            await wg.apply(team_yaml("m", [{"bot": "a", "requireConfirmation": True}, "b"], mode="pipeline"))
            task = await wg.run("team", "go")
            for command in commands:
                try:
                    if command == "cancel":
                        await task.cancel()
                    elif command == "confirm":
                        await task.confirm()
                    elif command == "send":
                        await task.send("again")
                    else:
                        await anyio.sleep(delay)
                except TaskError:
                    pass
            with anyio.fail_after(5):
                record = await task.wait()
            assert record.status in (*FINISHED, TaskState.PENDING_CONFIRMATION)
            events = await wg.engine.db(wg.store.events, task.id)
            assert [e.seq for e in events] == list(range(1, len(events) + 1))
            statuses = [e.data["status"] for e in events if e.type == "task.status"]
            assert statuses[-1] == record.status
            for before, after in itertools.pairwise(statuses):
                task_transition(TaskState(before), TaskState(after), follow_up=True)  # every step was legal
            subtasks = await task.subtasks()
            assert all(s.status not in (SubtaskState.RUNNING, SubtaskState.PENDING) for s in subtasks)

    anyio.run(main)
