"""One run of a task in this process: a `Run` goes from a user message until the task rests (finished, or waiting
for a confirmation), round after round, and is the only writer of its task while it runs.

* Writes go through `Run.commit`: the events emitted so far and the status changes of a step are written in one
  store transaction (`TaskStore.batch`), so a crash never leaves a step completed without its events or the other
  way round. Streamed events (text deltas) go with the next commit, or a flusher's every few milliseconds.
* `member_turn` runs one member's turn as a subtask; a completed step is never run again (a resumed round reuses
  its result), an unfinished one runs again (at least once per step).
* Cancellation cancels the run's cancel scope; whatever ends it, the run leaves the task at rest or failed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

import anyio

from . import _orchestrate
from ._agent import Budget, Turn, TurnResult
from ._concurrency import first_error
from ._errors import ConflictError, LimitExceeded, PluginError, WegentError
from ._events import ConfirmationRequest, Error, Event, Handoff, Message, SubtaskStatus, TaskResumed, TaskStatus
from ._lifecycle import FINISHED, REST, TransitionError, subtask_transition, task_transition
from ._models import ChatMessage, ModelClient, ModelError
from ._plan import ExecutionPlan, MemberPlan
from ._resources import SubtaskState, TaskState
from ._task_store import SubtaskRecord, TaskRecord
from ._toolkits import MemberKit, TaskSession
from ._tools import Tool

if TYPE_CHECKING:
    from ._engine import Engine, RunOptions

log = logging.getLogger("wegent.engine")
T = TypeVar("T")

_FLUSH_EVERY = 0.02  # seconds: streamed deltas are written in batches at most this old


@dataclass
class Run:
    """One task being run by this process."""

    engine: Engine
    record: TaskRecord
    plan: ExecutionPlan
    options: RunOptions
    subtasks: list[SubtaskRecord] = field(default_factory=list)
    budget: Budget = field(init=False)
    cancel_scope: anyio.CancelScope = field(default_factory=anyio.CancelScope)
    ended: anyio.Event = field(default_factory=anyio.Event)  # set when the run stops, whatever the outcome
    _pending: list[Event] = field(default_factory=list)  # emitted, not written yet
    _write_lock: anyio.Lock = field(default_factory=anyio.Lock)
    _dirty: anyio.Event = field(default_factory=anyio.Event)
    _cancel_requested: bool = False
    _staged: list[tuple[str, dict[str, Any], int | None]] = field(default_factory=list)
    session: TaskSession = field(init=False)
    _kits: dict[str, MemberKit] = field(default_factory=dict)
    _kit_locks: dict[str, anyio.Lock] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.budget = Budget(self.plan.limits)
        self.budget.restore(self.record.spec.get("budget") or {})

    @property
    def task_id(self) -> int:
        return self.record.id  # type: ignore[return-value]

    @property
    def store(self) -> Any:
        return self.engine.store

    # --- events and writes ----------------------------------------------------------------------------------------

    def emit(self, event: Event) -> None:
        """Record an event; it is written (by the flusher, or with the next commit) before anyone sees it."""
        self._pending.append(event)
        self._dirty.set()

    async def commit(self, work: Callable[[], T] | None = None) -> T | None:
        """Write the pending events and then `work`'s store calls in one transaction, and wake the consumers."""
        async with self._write_lock:
            pending, self._pending = self._pending, []
            items = [item(event) for event in pending]

            def batch() -> T | None:
                self._staged = list(items)  # every event of the commit goes in one append, at the end, in order
                result = work() if work is not None else None
                if self._staged:
                    self.store.append_events(self.task_id, self._staged)
                self._staged = []
                return result

            try:
                result = await self.engine.db(self.store.batch, batch)
            except BaseException:
                self._pending[:0] = pending  # not written: keep them for the next try
                raise
        self.engine.notify(self.task_id)
        return result

    async def _flusher(self) -> None:
        """Writes streamed events: the first after a quiet spell at once (a consumer sees the first token without
        waiting), the next ones gathered, at most one write every `_FLUSH_EVERY` seconds."""
        last = -_FLUSH_EVERY
        while True:
            await self._dirty.wait()
            self._dirty = anyio.Event()
            wait = last + _FLUSH_EVERY - anyio.current_time()
            if wait > 0:
                await anyio.sleep(wait)
            if self._pending and not self._write_lock.locked():  # a commit on its way takes them anyway
                await self.commit()
            last = anyio.current_time()

    def log(self, items: list[tuple[str, dict[str, Any], int | None]]) -> None:
        """In a commit's work: events to append, with the commit's other events, at its end."""
        self._staged += items

    def update_task(self, **changes: Any) -> TaskRecord:
        """In a commit's work: change the task record (through the state machine), with the run's budget.

        It writes on the version this run last wrote; when another process wrote since (a cancel from a shell, a
        moved stage pointer), the update is refused, and the task is read and checked again."""
        follow_up = changes.pop("_follow", False)
        current = self.record
        for _ in range(3):
            if current.status is TaskState.CANCELLING and changes.get("status") not in (
                TaskState.CANCELLED,
                TaskState.FAILED,
            ):
                raise _CancelRequested()
            task_transition(current.status, changes.get("status", current.status), follow_up=follow_up)
            # Every write names this engine the task's runner: a task confirmed or continued from another process
            # is run by that one now, so `cancel` must reach it there and `resume` must leave it alone.
            spec = {**current.spec, "budget": self.budget.snapshot(), "runner": self.engine.runner}
            try:
                self.record = self.store.update_task(
                    self.task_id, current.version, base=current, **{"spec": spec, **changes}
                )
                return self.record
            except ConflictError:  # nothing was written: read what the other writer left, and decide again
                current = self.record = self.store.get_task(self.task_id)
        raise ConflictError(f"task {self.task_id} keeps changing under this run")

    def set_status(self, status: TaskState, **changes: Any) -> None:
        """In a commit's work: the task's new status, and its event."""
        record = self.update_task(status=status, **changes)
        event = TaskStatus(status=status, stage=record.current_stage, progress=record.progress)
        if record.error_message and status is TaskState.FAILED:
            event = event.model_copy(update={"error": record.error_message})
        self.log([item(event)])

    def set_subtask(self, subtask: SubtaskRecord, status: SubtaskState, **changes: Any) -> SubtaskRecord:
        """In a commit's work: a subtask's new status, and its event."""
        subtask_transition(subtask.status, status)
        if status in (SubtaskState.COMPLETED, SubtaskState.FAILED, SubtaskState.CANCELLED):
            changes.setdefault("completed_at", now())
        updated = self.store.update_subtask(subtask.id, base=subtask, status=status, **changes)
        event = subtask_event(updated, status, error=changes.get("error_message"))
        self.log([item(event, updated.id)])
        self._remember(updated)
        return updated

    def _remember(self, subtask: SubtaskRecord) -> None:
        for index, known in enumerate(self.subtasks):
            if known.id == subtask.id:
                self.subtasks[index] = subtask
                return
        self.subtasks.append(subtask)

    # --- the run --------------------------------------------------------------------------------------------------

    async def load(self) -> None:
        self.subtasks = await self.engine.db(self.store.subtasks, self.task_id)

    async def main(self, started: bool) -> None:
        """Run the task's rounds; the plugins' task contexts (MCP servers, ...) live around them and are closed
        after them, outside the run's cancel scope, so a cancelled run still closes them cleanly."""
        try:
            async with anyio.create_task_group() as services:
                self.session = TaskSession(self.task_id, services)
                try:
                    await self._main(started)
                finally:
                    await self.session.close()
        finally:
            self.ended.set()  # after the close: `wait()` returns once the task's servers and sandbox are gone

    async def _main(self, started: bool) -> None:
        try:
            with self.cancel_scope, first_error():
                async with anyio.create_task_group() as group:
                    group.start_soon(self._flusher)
                    if not started:
                        await self.load()
                    await self._rounds()
                    group.cancel_scope.cancel()
            if self.record.status not in REST and not self.cancel_scope.cancel_called:
                raise AssertionError(f"the run ended with the task {self.record.status}")  # a bug: fail, not hang
            if self.cancel_scope.cancelled_caught or self._cancel_requested:
                await self._end_cancelled()
        except _CancelRequested:
            await self._end_cancelled()
        except (ModelError, WegentError) as error:  # limits, model errors, missing plugins, bad references
            await self._end_failed(str(error), getattr(error, "code", "fatal"))
        except Exception as error:  # a bug: the task fails with it (and the log has the traceback), never hangs
            log.exception("task %s failed", self.task_id)
            await self._end_failed(f"internal error: {type(error).__name__}: {error}", "internal")
        finally:
            if self.engine._runs.get(self.task_id) is self:
                del self.engine._runs[self.task_id]
            self.engine.notify(self.task_id)

    async def _rounds(self) -> None:
        """Run rounds until the task rests: one per user message, and one per pipeline stage that auto-advances,
        within the Team's `timeoutSeconds` (the wall-clock time from a message to the task's rest)."""
        limit = self.plan.limits.timeout_seconds
        try:
            with anyio.fail_after(limit):
                await self._run_rounds()
        except TimeoutError:
            raise LimitExceeded("timeout_seconds", f"the task ran for {limit:g} s") from None

    async def _run_rounds(self) -> None:
        while True:
            user = self.last_user_message()
            if self.record.status is not TaskState.RUNNING:
                await self.commit(lambda: self.set_status(TaskState.RUNNING))
            outcome = await _orchestrate.run_round(self, user)
            if outcome is None:
                return
            # a pipeline advanced: the handoff is the next user message; go on with the next stage

    async def request_cancel(self) -> None:
        self._cancel_requested = True
        with suppress(TransitionError, ConflictError):  # it finished meanwhile, or another process cancelled it
            await self.commit(lambda: self.set_status(TaskState.CANCELLING))
        self.engine.notify(self.task_id)
        self.cancel_scope.cancel()

    async def _end_cancelled(self) -> None:
        with anyio.CancelScope(shield=True):
            await self.commit(self._cancel_everything)

    def _cancel_everything(self) -> None:
        self._end_unfinished_steps(SubtaskState.CANCELLED)
        current = self.store.get_task(self.task_id)
        if current.status not in FINISHED:
            self.set_status(TaskState.CANCELLED, progress=100, completed_at=now())

    def _end_unfinished_steps(self, status: SubtaskState, **changes: Any) -> None:
        """In a commit's work: end every step still pending or running, as the store has them (a step whose write
        was interrupted is in the store, though this run may not have its record)."""
        for sub in self.store.subtasks(self.task_id):
            if sub.status in (SubtaskState.PENDING, SubtaskState.RUNNING):
                self.set_subtask(sub, status, **changes)

    async def _end_failed(self, message: str, code: str) -> None:
        def work() -> None:
            current = self.store.get_task(self.task_id)
            if current.status in FINISHED:
                return
            if current.status is TaskState.CANCELLING:
                self._cancel_everything()
                return
            self._end_unfinished_steps(SubtaskState.FAILED, error_message=message)
            self.log([item(Error(message=message, code=code))])
            self.set_status(TaskState.FAILED, error_message=message, completed_at=now())

        with anyio.CancelScope(shield=True):
            await self.commit(work)

    # --- steps, for the collaboration models ----------------------------------------------------------------------

    def last_user_message(self) -> SubtaskRecord:
        return next(s for s in reversed(self.subtasks) if s.role == "USER")

    def next_message_id(self) -> int:
        return max((s.message_id for s in self.subtasks), default=0) + 1

    def history(self, *, stage: int | None = None, before: int | None = None) -> list[ChatMessage]:
        """The conversation so far, as the member answering a round sees it: each earlier user message and the
        answer to it (in a pipeline, only those of `stage`: every stage starts a fresh session)."""
        messages: list[ChatMessage] = []
        answers = {
            s.parent_id: s
            for s in self.subtasks
            if s.role == "ASSISTANT" and s.status is SubtaskState.COMPLETED and (s.result or {}).get("answer")
        }
        for user in self.subtasks:
            if user.role != "USER" or (before is not None and user.message_id >= before):
                continue
            answer = answers.get(user.message_id)
            if answer is None or (stage is not None and answer.stage != stage):
                continue
            messages += [ChatMessage(role="user", content=user.prompt), _assistant(answer)]
        return messages

    def model_for(self, member: MemberPlan) -> ModelClient:
        return self.engine.model_client(self.task_id, member.model)

    async def kit_for(self, member: MemberPlan) -> MemberKit:
        """The member's kit for this run, from every registered toolkit, made at its first turn."""
        toolkits = self.engine.plugins.toolkits
        async with self._kit_locks.setdefault(member.bot, anyio.Lock()):
            kit = self._kits.get(member.bot)
            if kit is None:
                kit = MemberKit(
                    task_id=self.task_id,
                    member=member,
                    session=self.session,
                    plan=self.plan,
                    plugins=self.engine.plugins,
                    engine_session=self.engine.session,
                    emit=self.emit,
                )
                for registration in toolkits.values():
                    await registration.factory(kit)
                self._kits[member.bot] = kit
            return kit

    async def member_turn(
        self,
        member: MemberPlan,
        prompt: str,
        *,
        parent: int,
        stage: int | None = None,
        history: Sequence[ChatMessage] = (),
        tools: Sequence[Tool] = (),
        system: str | None = None,
        answer: bool = False,
        final: bool = False,
        step: str | None = None,
        title: str = "",
    ) -> TurnResult:
        """One member's turn as a subtask: reused if a completed one for the same step exists (a resumed round),
        run again if it was left unfinished, else created and run. `final`: its answer completes the task, in the
        same write (unless the stage pointer moved meanwhile: a stale completion finishes nothing)."""
        found = self.find_step(parent, member.bot, prompt, step)
        if found is not None and found.status is SubtaskState.COMPLETED:
            saved = found.result or {}
            if final and self.record.status not in REST:
                await self.finish(saved.get("value", ""))
            reused = {"ended_by": saved.get("ended_by"), "state": saved.get("state")}
            return TurnResult(text=saved.get("value", ""), messages=[], reused=True, **reused)
        subtask = found
        if subtask is None:
            record = SubtaskRecord(
                task_id=self.task_id,
                message_id=self.next_message_id(),
                parent_id=parent,
                role="ASSISTANT",
                bot=member.bot,
                stage=stage,
                step=step,
                title=title or f"{self.record.title} - {member.bot.rpartition('/')[2]}",
                prompt=prompt,
            )
            self.subtasks.append(record)  # reserves the message id before the write

            def add() -> SubtaskRecord:
                added = self.store.add_subtask(record.model_copy(update={"status": SubtaskState.RUNNING}))
                self.log([item(subtask_event(added, SubtaskState.RUNNING), added.id)])
                return added

            subtask = await self.commit(add)
            self.subtasks[self.subtasks.index(record)] = subtask
        running = subtask
        if subtask.status is not SubtaskState.RUNNING:
            running = await self.commit(lambda: self.set_subtask(subtask, SubtaskState.RUNNING))
        elif found is not None:  # an unfinished step of a resumed task runs again: say so, so attempts can be told
            await self.commit(lambda: self.log([item(subtask_event(subtask, SubtaskState.RUNNING), subtask.id)]))
        registration = self.engine.plugins.runtimes.get(member.shell.shell_type)
        uses_model = getattr(getattr(registration, "factory", None), "uses_model", True)  # see Turn.model
        turn = Turn(
            task_id=self.task_id,
            subtask_id=running.id,
            message_id=running.message_id,
            member=member,
            model=self.model_for(member) if uses_model else None,
            messages=[*history, ChatMessage(role="user", content=prompt)],
            emit=self.emit,
            budget=self.budget,
            retry=self.engine.retry,
            tools=[*self.engine.tools, *tools],
            system=system,
            kit=await self.kit_for(member),
            state=next(  # the runtime state the member's last completed turn of this task saved (see TurnResult)
                (
                    s.result["state"]
                    for s in reversed(self.subtasks)
                    if s.bot == member.bot and s.status is SubtaskState.COMPLETED and "state" in (s.result or {})
                ),
                {},
            ),
        )
        for hook in turn.kit.turn_hooks if turn.kit is not None else ():
            hook(running.message_id)
        try:
            result = await self._runtime(member)(turn)
        except (ModelError, WegentError) as error:
            message = str(error)
            if not isinstance(error, LimitExceeded):
                await self.commit(lambda: self.set_subtask(running, SubtaskState.FAILED, error_message=message))
            raise

        saved = {"value": result.text, "answer": answer}
        if result.ended_by is not None:
            saved["ended_by"] = result.ended_by  # a route's choice: a resumed round must not lose it
        if result.state is not None:
            saved["state"] = result.state  # the runtime's own state (a conversation id): the member's next turn gets it
        message = Message(role="ASSISTANT", message_id=running.message_id, text=result.text, member=member.bot)

        def done() -> None:
            if result.text:  # a leader that only routed wrote no message
                self.log([item(message, running.id)])
            self.set_subtask(running, SubtaskState.COMPLETED, progress=100, result=saved)
            if final and stage is not None:
                self.update_task()  # reads the task again if another process moved the stage pointer meanwhile
            if final and (stage is None or self.record.current_stage == stage):
                self.set_status(  # with the budget, as every task update
                    TaskState.COMPLETED, progress=100, result={"value": result.text}, completed_at=now()
                )
            else:
                self.update_task()  # saves the budget (and reads the task again if another process changed it)

        await self.commit(done)
        return result

    def find_step(self, parent: int, bot: str, prompt: str, step: str | None = None) -> SubtaskRecord | None:
        """The subtask of a step, if it was started (by this run, or by the process that died): a delegated step by
        its key, any other by who answers what (a member answering `prompt` for message `parent`), which a round
        asks once. A step being written (no id yet) is not found: a second identical call is a step of its own."""
        for sub in self.subtasks:
            if sub.id is None or sub.role != "ASSISTANT" or sub.bot != bot:
                continue
            same = (
                sub.step == step
                if step is not None
                else (sub.parent_id, sub.prompt, sub.step) == (parent, prompt, None)
            )
            if same and sub.status in (SubtaskState.COMPLETED, SubtaskState.PENDING, SubtaskState.RUNNING):
                return sub
        return None

    def _runtime(self, member: MemberPlan) -> Callable[[Turn], Any]:
        shell = member.shell.shell_type
        registration = self.engine.plugins.runtimes.get(shell)
        if registration is None:
            known = ", ".join(sorted(self.engine.plugins.runtimes)) or "none"
            raise PluginError(f"no runtime for shellType {shell!r} of {member.bot} (runtimes: {known})")
        return registration.factory

    # --- rounds that change the task ------------------------------------------------------------------------------

    async def finish(self, text: str) -> None:
        await self.commit(
            lambda: self.set_status(TaskState.COMPLETED, progress=100, result={"value": text}, completed_at=now())
        )

    async def ask_confirmation(self, stage: int, handoff: str, text: str) -> None:
        def work() -> None:
            self.log([item(ConfirmationRequest(stage=stage, next_stage=stage + 1, handoff=handoff))])
            self.set_status(TaskState.PENDING_CONFIRMATION, progress=100, result={"value": text}, completed_at=now())

        await self.commit(work)

    async def advance(self, stage: int, handoff: str, source: str | None, *, progress: int) -> None:
        """Move a pipeline to `stage + 1`: the handoff becomes the next user message, in one write."""
        target = self.plan.members[stage + 1].bot
        message_id = self.next_message_id()

        def work() -> None:
            user = self.store.add_subtask(user_message(self.task_id, message_id, handoff, parent=message_id - 1))
            self._remember(user)
            self.log(
                [
                    item(Handoff(source=source, target=target, text=handoff, reason="pipeline"), user.id),
                    item(Message(role="USER", message_id=message_id, text=handoff), user.id),
                ]
            )
            self.update_task(current_stage=stage + 1, progress=progress)

        await self.commit(work)

    async def confirm(self, message: str | None) -> None:
        stage = self.record.current_stage
        if stage + 1 >= len(self.plan.members):
            await self.commit(lambda: self.set_status(TaskState.COMPLETED, progress=100, completed_at=now()))
            return
        answer = self._answer_of_stage(stage)
        generated = _orchestrate.handoff_text(self, stage, answer) or self.last_user_message().prompt
        handoff = message or generated  # a typed message replaces the generated handoff
        await self.commit(lambda: self.set_status(TaskState.PENDING, completed_at=None))
        progress = int((stage + 1) / len(self.plan.members) * 100)
        await self.advance(stage, handoff, self.plan.members[stage].bot, progress=progress)

    async def add_user_message(self, text: str) -> None:
        message_id = self.next_message_id()

        def work() -> None:
            user = self.store.add_subtask(user_message(self.task_id, message_id, text))
            self._remember(user)
            message = Message(role="USER", message_id=message_id, text=text)
            self.log([item(message, user.id)])
            self.set_status(TaskState.PENDING, progress=0, error_message=None, completed_at=None, _follow=True)

        await self.commit(work)

    async def take_over(self, runner: dict[str, Any]) -> None:
        rerun = [s.message_id for s in self.subtasks if s.status in (SubtaskState.RUNNING, SubtaskState.PENDING)]

        def work() -> None:
            current = self.store.get_task(self.task_id)
            spec = {**current.spec, "runner": runner}
            self.record = self.store.update_task(self.task_id, current.version, spec=spec)
            self.log([item(TaskResumed(pid=runner["pid"], rerun=rerun))])

        await self.commit(work)
        self.budget.restore(self.record.spec.get("budget") or {})

    def _answer_of_stage(self, stage: int) -> str:
        for sub in reversed(self.subtasks):
            if sub.role == "ASSISTANT" and sub.stage == stage and sub.status is SubtaskState.COMPLETED:
                return (sub.result or {}).get("value", "")
        return ""

    def _first_prompt(self) -> str:
        return next((s.prompt for s in self.subtasks if s.role == "USER"), self.record.prompt)


class _CancelRequested(Exception):
    """Raised inside a write that found the task CANCELLING (another process asked): the run stops."""


# --- helpers ------------------------------------------------------------------------------------------------------


def now() -> datetime:
    return datetime.now(UTC)


def item(event: Event, subtask_id: int | None = None) -> tuple[str, dict[str, Any], int | None]:
    return (event.type, event.data(), subtask_id if subtask_id is not None else event.subtask_id)


def user_message(task_id: int, message_id: int, text: str, parent: int | None = None) -> SubtaskRecord:
    return SubtaskRecord(
        task_id=task_id,
        message_id=message_id,
        parent_id=parent,
        role="USER",
        prompt=text,
        status=SubtaskState.COMPLETED,
        progress=100,
    )


def subtask_event(sub: SubtaskRecord, status: SubtaskState, error: str | None = None) -> SubtaskStatus:
    return SubtaskStatus(
        subtask_id=sub.id,
        member=sub.bot,
        status=status,
        message_id=sub.message_id,
        role=sub.role,
        stage=sub.stage,
        error=error,
    )


def _assistant(sub: SubtaskRecord) -> ChatMessage:
    return ChatMessage(role="assistant", content=(sub.result or {}).get("value", ""))
