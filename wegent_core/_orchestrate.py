"""The five collaboration models, as orchestration: which member turns a round of a task takes, and what ends it.

A round answers one user message (`user`). Each model is a function `(run, user) -> Advanced | None`: None when the
task rests (completed, or waiting for a confirmation), `ADVANCED` when a pipeline moved to its next stage and the
engine should run the next round at once. Member turns go through `run.member_turn`, which makes them subtasks and,
on a resumed round, reuses the ones that completed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Literal

import anyio

from ._agent import EndTurn, TurnResult
from ._concurrency import first_error
from ._events import Handoff
from ._models import ToolSpec
from ._plan import MemberPlan
from ._resources import CollaborationModel, ContextPassing
from ._task_store import SubtaskRecord
from ._tools import ToolContext, ToolError

if TYPE_CHECKING:
    from ._run import Run

Advanced = Literal["advanced"]
ADVANCED: Advanced = "advanced"

ROUTE_TOOL = "route_to_member"
DELEGATE_TOOL = "delegate_to_member"


async def run_round(run: Run, user: SubtaskRecord) -> Advanced | None:
    model = run.plan.collaboration_model
    members = run.plan.members
    if model is CollaborationModel.PIPELINE:
        return await pipeline(run, user)
    if len(members) == 1 or model is CollaborationModel.SOLO:
        return await solo(run, user)
    return await _MODELS[model](run, user)


# --- solo ---------------------------------------------------------------------------------------------------------


async def solo(run: Run, user: SubtaskRecord) -> None:
    leader = run.plan.members[run.plan.leader]
    history = run.history(before=user.message_id)
    await run.member_turn(leader, user.prompt, parent=user.message_id, history=history, answer=True, final=True)


# --- pipeline -----------------------------------------------------------------------------------------------------


async def pipeline(run: Run, user: SubtaskRecord) -> Advanced | None:
    """One stage per round (reference 3.4): confirmation only when requested and not at the last stage, else
    auto-advance with the stage's handoff as the next user message; a completion for another stage is stale."""
    members = run.plan.members
    stage = min(run.record.current_stage, len(members) - 1)
    member = members[stage]
    last = stage == len(members) - 1
    result = await run.member_turn(
        member,
        user.prompt,
        parent=user.message_id,
        stage=stage,
        history=run.history(stage=stage, before=user.message_id),
        answer=True,
        final=last,
    )
    if run.record.current_stage != stage:
        # Stale: the stage pointer moved while this stage ran (another client set it). No confirmation and no
        # advance follow from this completion; the next round runs the stage the pointer names.
        return ADVANCED
    if last:
        return None
    handoff = handoff_text(run, stage, result.text) or _parent_prompt(run, user)
    if member.require_confirmation:
        await run.ask_confirmation(stage, handoff, result.text)
        return None
    progress = int((stage + 1) / len(members) * 100)
    await run.advance(stage, handoff, member.bot, progress=progress)
    return ADVANCED


def handoff_text(run: Run, stage: int, output: str) -> str:
    """The next stage's message, from the finished stage's `contextPassing` (reference 3.4, exact strings)."""
    passing = run.plan.members[stage].context_passing
    original = f"Original user request:\n{run._first_prompt()}"
    previous = f"Previous stage output:\n{output}"
    if passing is ContextPassing.ORIGINAL_USER:
        return original
    if passing is ContextPassing.PREVIOUS_BOT:
        return previous
    if passing is ContextPassing.ORIGINAL_AND_PREVIOUS:
        return f"{original}\n\n{previous}"
    return ""


def _parent_prompt(run: Run, user: SubtaskRecord) -> str:
    """With `contextPassing: none` the next stage gets the user message that started the stage (as upstream)."""
    return user.prompt or run._first_prompt()


# --- route --------------------------------------------------------------------------------------------------------


async def route(run: Run, user: SubtaskRecord) -> None:
    """The leader picks exactly one member with a tool; that member's answer is the result, unchanged. The leader
    answers itself when no member fits."""
    leader, candidates = _leader_and_others(run)
    names = {_short(m.bot): m for m in candidates}
    choose = _MemberTool(
        ROUTE_TOOL,
        "Hand the user's request to exactly one team member, who answers it directly. "
        "Call this once, with one member; answer yourself only if no member fits.",
        names,
        extra={"reason": {"type": "string", "description": "Why this member fits"}},
        action=_end_turn,
    )
    intro = "You route requests to the members of your team"
    decision = await _leader_turn(run, user, leader, intro, candidates, choose, final=False)
    chosen = names.get(str(decision.ended_by)) if decision.ended_by is not None else None
    if chosen is None:
        await run.finish(decision.text)
        return
    if not decision.reused:
        run.emit(Handoff(source=leader.bot, target=chosen.bot, text=user.prompt, reason="route", member=leader.bot))
    history = run.history(before=user.message_id)
    await run.member_turn(chosen, user.prompt, parent=user.message_id, history=history, answer=True, final=True)


async def _end_turn(member: MemberPlan, arguments: dict[str, Any], context: ToolContext) -> str:
    raise EndTurn(_short(member.bot))


# --- coordinate ---------------------------------------------------------------------------------------------------


async def coordinate(run: Run, user: SubtaskRecord) -> None:
    """The leader delegates sub-tasks to members through a tool (several at once run in parallel) and writes the
    final answer. Members do not see the delegation tool or the leader's tools."""
    leader, members = _leader_and_others(run)

    async def delegate(member: MemberPlan, arguments: dict[str, Any], context: ToolContext) -> str:
        task = str(arguments.get("task") or "").strip()
        if not task:
            raise ToolError("give the member a task: what to do, with what it needs to know")
        leader_step = run.find_step(user.message_id, leader.bot, user.prompt)
        assert leader_step is not None, "the leader's turn is a subtask before it can delegate"
        run.emit(Handoff(source=leader.bot, target=member.bot, text=task, reason="delegate", member=leader.bot))
        step = context.idempotency_key  # the same on a resumed task: a delegation that completed is not asked again
        result = await run.member_turn(member, task, parent=leader_step.message_id, step=step)
        return result.text

    tool = _MemberTool(
        DELEGATE_TOOL,
        "Give a sub-task to one team member and get its answer back. Call it several times in one reply to "
        "work in parallel. When you have what you need, write the final answer yourself.",
        {_short(m.bot): m for m in members},
        extra={"task": {"type": "string", "description": "The sub-task, with everything the member needs"}},
        required=("task",),
        action=delegate,
    )
    await _leader_turn(run, user, leader, "You coordinate the members of your team", members, tool, final=True)


# --- collaborate --------------------------------------------------------------------------------------------------


async def collaborate(run: Run, user: SubtaskRecord) -> None:
    """Every member works on the task at once; then the leader (with no leader, the first member) merges."""
    members = run.plan.members
    has_leader = any(m.leader and m.role == "leader" for m in members)
    merger = members[run.plan.leader]
    workers = [m for m in members if not (has_leader and m is merger)]
    answers: dict[str, str] = {}

    async def work(member: MemberPlan) -> None:
        result = await run.member_turn(member, user.prompt, parent=user.message_id)
        answers[member.bot] = result.text

    with first_error():
        async with anyio.create_task_group() as group:
            for member in workers:
                group.start_soon(work, member)
    merge = _merge_prompt(user.prompt, [(m.bot, answers[m.bot]) for m in workers])
    run.emit(Handoff(source=None, target=merger.bot, text=merge, reason="merge"))
    history = run.history(before=user.message_id)
    await run.member_turn(merger, merge, parent=user.message_id, history=history, answer=True, final=True)


def _merge_prompt(task: str, answers: list[tuple[str, str]]) -> str:
    parts = [f"The task:\n{task}", "Your team's answers:"]
    parts += [f"### {_short(bot)}\n{text}" for bot, text in answers]
    parts.append("Merge them into one final answer to the task: keep what is right, resolve disagreements.")
    return "\n\n".join(parts)


# --- shared -------------------------------------------------------------------------------------------------------


class _MemberTool:
    """A tool whose first argument is a member of the team, restricted to the given names by the schema (and
    checked, since models do not always follow schemas)."""

    def __init__(
        self,
        name: str,
        description: str,
        members: dict[str, MemberPlan],
        *,
        action: Callable[[MemberPlan, dict[str, Any], ToolContext], Awaitable[str]],
        extra: dict[str, Any] | None = None,
        required: tuple[str, ...] = (),
    ) -> None:
        self.members = members
        self.action = action
        properties = {"member": {"type": "string", "enum": sorted(members)}, **(extra or {})}
        parameters = {"type": "object", "properties": properties, "required": ["member", *required]}
        self.spec = ToolSpec(name=name, description=description, parameters=parameters)

    async def call(self, arguments: dict[str, Any], context: ToolContext) -> str:
        name = str(arguments.get("member") or "")
        member = self.members.get(name)
        if member is None:
            known = ", ".join(sorted(self.members))
            raise ToolError(f"{name!r} is not a member of this team (members: {known})")
        return await self.action(member, arguments, context)


async def _leader_turn(
    run: Run, user: SubtaskRecord, leader: MemberPlan, intro: str, members: list[MemberPlan], tool: Any, *, final: bool
) -> TurnResult:
    """The leader's turn of a route or coordinate round: its own prompt, the roster of `members`, and `tool`."""
    return await run.member_turn(
        leader,
        user.prompt,
        parent=user.message_id,
        history=run.history(before=user.message_id),
        tools=[tool],
        system=f"{leader.system_prompt}\n\n{_roster(intro, members)}",
        answer=True,
        final=final,
    )


def _leader_and_others(run: Run) -> tuple[MemberPlan, list[MemberPlan]]:
    leader = run.plan.members[run.plan.leader]
    return leader, [m for m in run.plan.members if m is not leader]


def _roster(intro: str, members: list[MemberPlan]) -> str:
    lines = [f"{intro}:"]
    for member in members:
        about = member.member_prompt or next(iter(member.system_prompt.strip().splitlines()), "")
        lines.append(f"- {_short(member.bot)}: {about}" if about else f"- {_short(member.bot)}")
    return "\n".join(lines)


def _short(bot: str) -> str:
    return bot.rpartition("/")[2]


_MODELS: dict[CollaborationModel, Callable[[Any, SubtaskRecord], Awaitable[Advanced | None]]] = {
    CollaborationModel.SOLO: solo,
    CollaborationModel.ROUTE: route,
    CollaborationModel.COORDINATE: coordinate,
    CollaborationModel.COLLABORATE: collaborate,
}
