"""The task engine: runs a team's tasks, writes every step to the store before announcing it, and resumes a task
whose process died.

* A task run is a `_Run`: one round per user message (the prompt, a follow-up, a pipeline handoff). The collaboration
  model (`_orchestrate`) decides which member turns a round takes; `_Run.member_turn` runs one, as a subtask.
* Writes go through `_Run.commit`: the events emitted so far and the status changes of a step are written in one
  store transaction (`TaskStore.batch`), so a crash never leaves a step completed without its events or the other
  way round. Streaming events (text deltas) are written in small batches by a flusher as they come.
* Consumers read events from the store only (`Engine.follow`), woken by the writer in this process or by polling
  for another's: whatever they see is durable, and a late or reconnecting consumer replays from a sequence number.
* A completed step is never run again: a resumed round finds the completed subtasks of its steps and reuses their
  results; an unfinished step runs again (at least once per step).
* Every status change goes through `_lifecycle`; cancellation cancels the run's cancel scope, so it reaches model
  streams, tool calls and member turns running in parallel, and the task ends CANCELLED whatever finishes late.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any, TypeVar

import anyio
import anyio.lowlevel
from anyio.abc import TaskGroup

from . import _orchestrate
from ._agent import Budget, Turn, TurnResult
from ._concurrency import first_error
from ._errors import ConflictError, LimitExceeded, NotFoundError, PluginError, WegentError
from ._events import (
    ConfirmationRequest,
    Error,
    Event,
    Handoff,
    Message,
    SubtaskStatus,
    TaskResumed,
    TaskStatus,
    event_from_record,
)
from ._lifecycle import (
    CANCELLABLE,
    FINISHED,
    FOLLOW_UP_FROM,
    TransitionError,
    subtask_transition,
    task_transition,
)
from ._models import ChatMessage, ModelClient, ModelError, RetryPolicy
from ._plan import ExecutionPlan, MemberPlan, ModelPlan
from ._plugins import Plugins
from ._resolve import resolve_team
from ._resources import CollaborationModel, SubtaskState, TaskState
from ._task_store import SubtaskRecord, TaskRecord
from ._tools import Tool

log = logging.getLogger("wegent.engine")
T = TypeVar("T")

REST = frozenset({TaskState.COMPLETED, TaskState.FAILED, TaskState.CANCELLED, TaskState.PENDING_CONFIRMATION})
REST |= {TaskState.DELETE}
_FLUSH_EVERY = 0.02  # seconds: streamed deltas are written in batches at most this old
_ORPHAN_CHECK = 1.0  # seconds without events before a follower checks that the task's process is alive
_CLIENTS_KEPT = 1024  # model clients of recent tasks, reused by their later rounds
_PLANS_KEPT = 256  # resolved plans of recent teams and options
_LIVE_ENGINES: set[str] = set()  # the engines open in this process, by the token their task records name


class TaskError(WegentError):
    """A command on a task that its status does not allow (confirm a task that is not waiting, ...)."""


@dataclass
class RunOptions:
    """What a run was started with, kept in the task record (`spec`) so a resume or a follow-up runs the same way."""

    team: str  # namespace/name
    model: str | None = None
    force_model: bool = False

    def dump(self) -> dict[str, Any]:
        return {"team": self.team, "model": self.model, "force_model": self.force_model}


class Engine:
    """Runs tasks on a store that is both a `ResourceStore` and a `TaskStore`. Use as an async context manager: it
    owns the task group the runs live in."""

    def __init__(
        self,
        store: Any,
        plugins: Plugins,
        *,
        models: Mapping[str, ModelClient] | None = None,
        tools: Sequence[Tool] = (),
        retry: RetryPolicy | None = None,
        environ: Mapping[str, str] | None = None,
        poll_interval: float = 0.2,
    ) -> None:
        self.store = store
        self.plugins = plugins
        self.models = dict(models or {})
        self.tools = list(tools)
        self.retry = retry or RetryPolicy()
        self.environ = environ
        self.poll_interval = poll_interval
        self._runs: dict[int, _Run] = {}
        self._wakeups: dict[int, anyio.Event] = {}
        self._group: TaskGroup | None = None
        self._limiter = anyio.CapacityLimiter(getattr(store, "workers", 4))
        self._clients: dict[tuple[int, str], ModelClient] = {}
        self._plans: dict[tuple[Any, ...], tuple[int, ExecutionPlan]] = {}  # by team and options: (revision, plan)
        self._blocking = getattr(store, "blocking", True)
        self._runner = {"pid": os.getpid(), "host": socket.gethostname(), "engine": uuid.uuid4().hex}

    @property
    def runner(self) -> dict[str, Any]:
        """What task records say of the engine running them: host, pid and a token for this engine."""
        return dict(self._runner)

    async def __aenter__(self) -> Engine:
        self._group = anyio.create_task_group()
        await self._group.__aenter__()
        self._group.start_soon(self._watch_cancels)
        _LIVE_ENGINES.add(self._runner["engine"])
        return self

    async def __aexit__(self, *exc: Any) -> bool | None:
        assert self._group is not None
        # Runs still going stop where they are, as if the process had died: `resume` carries them on.
        _LIVE_ENGINES.discard(self._runner["engine"])
        self._group.cancel_scope.cancel()
        try:
            await self._group.__aexit__(None, None, None)  # an error of the caller's propagates as itself
        finally:
            self._group = None
        return None

    # --- store access ---------------------------------------------------------------------------------------------

    async def db(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Call a store method: in a worker thread, unless the store says its calls never block (`blocking = False`,
        as the memory store does), when a thread would cost more than the call."""
        if not self._blocking:
            await anyio.lowlevel.checkpoint()  # still a point where the task can be cancelled or give way
            return fn(*args, **kwargs)
        return await anyio.to_thread.run_sync(partial(fn, *args, **kwargs), limiter=self._limiter)

    def notify(self, task_id: int) -> None:
        wakeup = self._wakeups.pop(task_id, None)
        if wakeup is not None:
            wakeup.set()

    # --- commands -------------------------------------------------------------------------------------------------

    async def start(
        self,
        team: str,
        prompt: str,
        *,
        namespace: str = "default",
        model: str | None = None,
        force_model: bool = False,
        labels: Mapping[str, str] | None = None,
        title: str | None = None,
        name: str | None = None,
    ) -> int:
        """Create a task for `team` (a name in `namespace`, or namespace/name) and start running it; its id."""
        team_ns, _, team_name = team.rpartition("/")
        options = RunOptions(f"{team_ns or namespace}/{team_name}", model, force_model)
        record = TaskRecord(
            namespace=namespace,
            name=name,
            team=options.team,
            title=title or _title(prompt),
            prompt=prompt,
            status=TaskState.RUNNING,  # created and dispatched in one write: this engine runs it now
            labels=dict(labels or {}),
            spec={"run": options.dump(), "runner": self._runner},
        )

        def create() -> tuple[TaskRecord, SubtaskRecord]:
            task = self.store.create_task(record)
            user = self.store.add_subtask(_user_message(task.id, 1, prompt))
            message = Message(role="USER", message_id=1, text=prompt)
            running = TaskStatus(status=TaskState.RUNNING, stage=0, progress=0)
            self.store.append_events(task.id, [_item(message, user.id), _item(running)])
            return task, user

        def plan_and_create() -> tuple[ExecutionPlan, TaskRecord, SubtaskRecord]:
            plan = self._resolve(options, prompt, labels or {})  # a team that does not resolve creates no task
            return (plan, *self.store.batch(create))

        plan, task, user = await self.db(plan_and_create)  # one trip to a worker thread
        self._launch(_Run(self, task, plan, options, subtasks=[user]), started=True)
        return task.id  # type: ignore[return-value]

    async def cancel(self, task_id: int) -> TaskState:
        """Cancel the task: idempotent; a finished task cannot be cancelled (TaskError)."""
        record = await self._get(task_id)
        if record.status in (TaskState.CANCELLING, TaskState.CANCELLED):
            return record.status
        if record.status not in CANCELLABLE:
            raise TaskError(f"Task is already {record.status}, cannot cancel")
        run = self._runs.get(task_id)
        if run is not None:
            await run.request_cancel()
            return TaskState.CANCELLING
        if record.status is TaskState.PENDING_CONFIRMATION or not runner_alive(record):
            await self._finish_cancelled(record)  # nothing is running it: cancelled at once
            return TaskState.CANCELLED

        def work() -> None:  # its process sees the status and stops the run
            task_transition(record.status, TaskState.CANCELLING)
            self.store.update_task(record.id, record.version, status=TaskState.CANCELLING)
            event = TaskStatus(status=TaskState.CANCELLING, stage=record.current_stage, progress=record.progress)
            self.store.append_events(record.id, [_item(event)])

        await self.db(self.store.batch, work)
        return TaskState.CANCELLING

    async def confirm(self, task_id: int, message: str | None = None) -> None:
        """Confirm a pipeline stage that waits for it; `message`, if given, replaces the generated handoff."""
        record = await self._get(task_id)
        if record.status is not TaskState.PENDING_CONFIRMATION:
            raise TaskError(f"Task is not awaiting confirmation. Current status: {record.status}")
        options = _options(record)
        plan = await self._plan(options, record.prompt, record.labels)
        if plan.collaboration_model is not CollaborationModel.PIPELINE:
            raise TaskError("Stage confirmation is only available for pipeline teams")
        run = _Run(self, record, plan, options)
        await run.load()
        await run.confirm(message)
        self._launch(run, started=True)

    async def send(self, task_id: int, message: str) -> None:
        """A follow-up message: allowed once the task is finished or waits for a confirmation, as upstream."""
        record = await self._get(task_id)
        if record.labels.get("autoDeleteExecutor") == "true":  # as upstream: its executor is gone with the result
            raise TaskError("Task has autoDeleteExecutor=true: it cannot take follow-up messages")
        if record.status not in FOLLOW_UP_FROM:
            if record.status is TaskState.RUNNING:
                raise TaskError("Task is still running; wait for it to finish before sending a message")
            raise TaskError(f"Task is {record.status}: a message can follow only a finished task")
        options = _options(record)
        plan = await self._plan(options, message, record.labels)
        run = _Run(self, record, plan, options)
        run.budget = Budget(plan.limits)  # a follow-up starts a new run: the Team's limits apply to it afresh
        await run.load()
        await run.add_user_message(message)
        self._launch(run, started=True)

    async def resume(self, task_id: int, *, force: bool = False) -> bool:
        """Carry on a task whose process died (or, with `force`, one whose runner cannot be checked from here).
        False if there was nothing to resume."""
        record = await self._get(task_id)
        if task_id in self._runs or record.status not in (TaskState.PENDING, TaskState.RUNNING, TaskState.CANCELLING):
            return False
        if runner_alive(record) and not force:
            return False
        if record.status is TaskState.CANCELLING:
            await self._finish_cancelled(record)
            return True
        options = _options(record)
        plan = await self._plan(options, record.prompt, record.labels)
        run = _Run(self, record, plan, options)
        await run.load()
        await run.take_over(self._runner)
        self._launch(run, started=True)
        return True

    async def resume_orphans(self, namespace: str | None = None) -> list[int]:
        """Resume every unfinished task whose process is gone; their ids."""
        resumed = []
        for status in (TaskState.PENDING, TaskState.RUNNING, TaskState.CANCELLING):
            for record in await self.db(self.store.list_tasks, namespace, status):
                if record.id not in self._runs and not runner_alive(record) and await self.resume(record.id):
                    resumed.append(record.id)
        return resumed

    async def wait(self, task_id: int) -> TaskRecord:
        """The task's record once it rests (finished, or waiting for a confirmation)."""
        run = self._runs.get(task_id)
        if run is not None:
            await run.ended.wait()  # run here: no need to read the log
            if task_id not in self._runs and run.record.status in REST:
                return run.record.model_copy(deep=True)  # what it wrote last
        record = await self._get(task_id)
        if record.status in REST and task_id not in self._runs:
            return record
        async for _ in self.follow(task_id, after=await self._last_seq(task_id)):
            pass
        return await self._get(task_id)

    async def follow(self, task_id: int, after: int = 0) -> AsyncIterator[Event]:
        """The task's events after sequence number `after`: the stored ones, then live ones as they are written,
        until the task rests (finished or waiting for a confirmation) with nothing more to read."""
        await self._get(task_id)
        idle = 0.0
        while True:
            wakeup = self._wakeups.setdefault(task_id, anyio.Event())
            records = await self.db(self.store.events, task_id, after)
            for record in records:
                after = record.seq
                yield event_from_record(record)
            if await self._resting(task_id, records):
                return
            idle = 0.0 if records else idle + self.poll_interval
            if idle >= _ORPHAN_CHECK and task_id not in self._runs:
                idle = 0.0
                await self._check_runner(task_id)
            with anyio.move_on_after(self.poll_interval):
                await wakeup.wait()

    # --- internals ------------------------------------------------------------------------------------------------

    def _launch(self, run: _Run, *, started: bool = False) -> None:
        if self._group is None:
            raise WegentError("the engine is not running: use it as `async with` (or through Wegent)")
        self._runs[run.task_id] = run
        self._group.start_soon(run.main, started)

    async def _plan(self, options: RunOptions, prompt: str, labels: Mapping[str, str]) -> ExecutionPlan:
        return await self.db(self._resolve, options, prompt, labels)

    def _resolve(self, options: RunOptions, prompt: str, labels: Mapping[str, str]) -> ExecutionPlan:
        """The team's plan: resolved again only when the store has changed since (its `revision()`, if it has one),
        since resolving reads several resources and a team's tasks come in bursts. Plans are immutable; the prompt
        is not part of one the engine uses (each round has its own message)."""
        revision = getattr(self.store, "revision", None)
        if revision is None:
            return self._resolve_now(options, prompt, labels)
        key = (options.team, options.model, options.force_model, tuple(sorted(labels.items())))
        now = revision()
        cached = self._plans.get(key)
        if cached is not None and cached[0] == now:
            return cached[1]
        plan = self._resolve_now(options, prompt, labels)
        self._plans[key] = (now, plan)
        while len(self._plans) > _PLANS_KEPT:
            del self._plans[next(iter(self._plans))]
        return plan

    def _resolve_now(self, options: RunOptions, prompt: str, labels: Mapping[str, str]) -> ExecutionPlan:
        namespace, _, name = options.team.rpartition("/")
        return resolve_team(
            self.store,
            name,
            namespace,
            prompt=prompt,
            model=options.model,
            force_model=options.force_model,
            labels=labels,
            environ=self.environ,
        )

    def model_client(self, task_id: int, plan: ModelPlan) -> ModelClient:
        """The client of a Model for a task: an override given to the engine, else one from the Model's provider,
        kept for the task's later rounds (a scripted model goes on with its script after a confirmation)."""
        key = f"{plan.namespace}/{plan.name}"
        client = self.models.get(key) or self.models.get(plan.name)
        if client is not None:
            return client
        cached = self._clients.pop((task_id, key), None)
        if cached is None:
            if not plan.protocol:
                raise PluginError(f"Model {key} has no protocol, and none can be inferred from its env.model")
            cached = self.plugins.model_providers[plan.protocol].factory(plan)
        self._clients[task_id, key] = cached  # most recently used last
        while len(self._clients) > _CLIENTS_KEPT:
            del self._clients[next(iter(self._clients))]
        return cached

    async def _get(self, task_id: int) -> TaskRecord:
        record = await self.db(self.store.get_task, task_id)
        if record is None:
            raise NotFoundError(f"task {task_id} not found")
        return record

    async def _finish_cancelled(self, record: TaskRecord) -> None:
        def work() -> None:
            current = self.store.get_task(record.id)
            subtasks = self.store.subtasks(record.id)
            items = []
            for sub in subtasks:
                if sub.status in (SubtaskState.PENDING, SubtaskState.RUNNING, SubtaskState.PENDING_CONFIRMATION):
                    self.store.update_subtask(sub.id, status=SubtaskState.CANCELLED, completed_at=_now())
                    items.append(_item(_subtask_event(sub, SubtaskState.CANCELLED), sub.id))
            task_transition(current.status, TaskState.CANCELLED)
            self.store.update_task(
                current.id, current.version, status=TaskState.CANCELLED, progress=100, completed_at=_now()
            )
            items.append(_item(TaskStatus(status=TaskState.CANCELLED, stage=current.current_stage, progress=100)))
            self.store.append_events(current.id, items)

        await self.db(self.store.batch, work)
        self.notify(record.id)

    async def _last_seq(self, task_id: int) -> int:
        records = await self.db(self.store.events, task_id, 0)
        starts = [r.seq for r in records if r.type == "task.status" and r.data.get("status") == TaskState.PENDING]
        return starts[-1] - 1 if starts else 0

    async def _resting(self, task_id: int, records: list[Any]) -> bool:
        """Whether a follower that just read `records` has seen everything: no run here, the last event read (if
        any) says the task rests, the task does rest, and nothing was written since."""
        if task_id in self._runs:
            return False
        last = records[-1] if records else None
        if last is not None and not (last.type == "task.status" and last.data.get("status") in REST):
            return False
        if (await self._get(task_id)).status not in REST:
            return False
        return last is None or not await self.db(self.store.events, task_id, last.seq, 1)

    async def _check_runner(self, task_id: int) -> None:
        """A followed task that makes no progress: raise if no process runs it any more (it would never rest)."""
        record = await self._get(task_id)
        if record.status not in REST and not runner_alive(record):
            raise TaskError(
                f"task {task_id} is {record.status} but the process that ran it has stopped: "
                f"`wegent resume {task_id}` carries it on"
            )

    async def _watch_cancels(self) -> None:
        """Cancel runs whose task another process marked CANCELLING (`wegent cancel` from a shell, say)."""
        while True:
            await anyio.sleep(self.poll_interval * 2)
            if not self._runs:
                continue
            try:
                cancelling = await self.db(self.store.list_tasks, None, TaskState.CANCELLING)
            except WegentError as error:  # the store is briefly unavailable: try again next time
                log.warning("cannot check for cancelled tasks: %s", error)
                continue
            for record in cancelling:
                run = self._runs.get(record.id)
                if run is not None:
                    run.cancel_scope.cancel()


@dataclass
class _Run:
    """One task being run by this process."""

    engine: Engine
    record: TaskRecord
    plan: ExecutionPlan
    options: RunOptions
    subtasks: list[SubtaskRecord] = field(default_factory=list)
    budget: Budget = field(init=False)
    cancel_scope: anyio.CancelScope = field(default_factory=anyio.CancelScope)
    ended: anyio.Event = field(default_factory=anyio.Event)  # set when the run stops, whatever the outcome
    _pending: list[tuple[Event, int | None]] = field(default_factory=list)
    _write_lock: anyio.Lock = field(default_factory=anyio.Lock)
    _dirty: anyio.Event = field(default_factory=anyio.Event)
    _cancel_requested: bool = False
    _staged: list[tuple[str, dict[str, Any], int | None]] = field(default_factory=list)

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
        self._pending.append((event, event.subtask_id))
        self._dirty.set()

    async def commit(self, work: Callable[[], T] | None = None) -> T | None:
        """Write the pending events and then `work`'s store calls in one transaction, and wake the consumers."""
        async with self._write_lock:
            pending, self._pending = self._pending, []
            items = [_item(event, subtask_id) for event, subtask_id in pending]

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
        while True:
            await self._dirty.wait()
            self._dirty = anyio.Event()
            await anyio.sleep(_FLUSH_EVERY)  # gather a few deltas into one write
            if self._pending and not self._write_lock.locked():  # a commit on its way takes them anyway
                await self.commit()

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
                self.record = self.store.update_task(self.task_id, current.version, **{"spec": spec, **changes})
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
        self.log([_item(event)])

    def set_subtask(self, subtask: SubtaskRecord, status: SubtaskState, **changes: Any) -> SubtaskRecord:
        """In a commit's work: a subtask's new status, and its event."""
        subtask_transition(subtask.status, status)
        if status in (SubtaskState.COMPLETED, SubtaskState.FAILED, SubtaskState.CANCELLED):
            changes.setdefault("completed_at", _now())
        updated = self.store.update_subtask(subtask.id, status=status, **changes)
        event = _subtask_event(updated, status, error=changes.get("error_message"))
        self.log([_item(event, updated.id)])
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
            self.ended.set()
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
            self.set_status(TaskState.CANCELLED, progress=100, completed_at=_now())

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
            self.log([_item(Error(message=message, code=code))])
            self.set_status(TaskState.FAILED, error_message=message, completed_at=_now())

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
            return TurnResult(text=saved.get("value", ""), messages=[], ended_by=saved.get("ended_by"), reused=True)
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
                self.log([_item(_subtask_event(added, SubtaskState.RUNNING), added.id)])
                return added

            subtask = await self.commit(add)
            self.subtasks[self.subtasks.index(record)] = subtask
        running = subtask
        if subtask.status is not SubtaskState.RUNNING:
            running = await self.commit(lambda: self.set_subtask(subtask, SubtaskState.RUNNING))
        elif found is not None:  # an unfinished step of a resumed task runs again: say so, so attempts can be told
            await self.commit(lambda: self.log([_item(_subtask_event(subtask, SubtaskState.RUNNING), subtask.id)]))
        turn = Turn(
            task_id=self.task_id,
            subtask_id=running.id,
            message_id=running.message_id,
            member=member,
            model=self.model_for(member),
            messages=[*history, ChatMessage(role="user", content=prompt)],
            emit=self.emit,
            budget=self.budget,
            retry=self.engine.retry,
            tools=[*self.engine.tools, *tools],
            system=system,
        )
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
        message = Message(role="ASSISTANT", message_id=running.message_id, text=result.text, member=member.bot)

        def done() -> None:
            if result.text:  # a leader that only routed wrote no message
                self.log([_item(message, running.id)])
            self.set_subtask(running, SubtaskState.COMPLETED, progress=100, result=saved)
            if final and stage is not None:
                self.update_task()  # reads the task again if another process moved the stage pointer meanwhile
            if final and (stage is None or self.record.current_stage == stage):
                self.set_status(  # with the budget, as every task update
                    TaskState.COMPLETED, progress=100, result={"value": result.text}, completed_at=_now()
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
            lambda: self.set_status(TaskState.COMPLETED, progress=100, result={"value": text}, completed_at=_now())
        )

    async def ask_confirmation(self, stage: int, handoff: str, text: str) -> None:
        def work() -> None:
            self.log([_item(ConfirmationRequest(stage=stage, next_stage=stage + 1, handoff=handoff))])
            self.set_status(TaskState.PENDING_CONFIRMATION, progress=100, result={"value": text}, completed_at=_now())

        await self.commit(work)

    async def advance(self, stage: int, handoff: str, source: str | None, *, progress: int) -> None:
        """Move a pipeline to `stage + 1`: the handoff becomes the next user message, in one write."""
        target = self.plan.members[stage + 1].bot
        message_id = self.next_message_id()

        def work() -> None:
            user = self.store.add_subtask(_user_message(self.task_id, message_id, handoff, parent=message_id - 1))
            self._remember(user)
            self.log(
                [
                    _item(Handoff(source=source, target=target, text=handoff, reason="pipeline"), user.id),
                    _item(Message(role="USER", message_id=message_id, text=handoff), user.id),
                ]
            )
            self.update_task(current_stage=stage + 1, progress=progress)

        await self.commit(work)

    async def confirm(self, message: str | None) -> None:
        stage = self.record.current_stage
        if stage + 1 >= len(self.plan.members):
            await self.commit(lambda: self.set_status(TaskState.COMPLETED, progress=100, completed_at=_now()))
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
            user = self.store.add_subtask(_user_message(self.task_id, message_id, text))
            self._remember(user)
            message = Message(role="USER", message_id=message_id, text=text)
            self.log([_item(message, user.id)])
            self.set_status(TaskState.PENDING, progress=0, error_message=None, completed_at=None, _follow=True)

        await self.commit(work)

    async def take_over(self, runner: dict[str, Any]) -> None:
        rerun = [s.message_id for s in self.subtasks if s.status in (SubtaskState.RUNNING, SubtaskState.PENDING)]

        def work() -> None:
            current = self.store.get_task(self.task_id)
            spec = {**current.spec, "runner": runner}
            self.record = self.store.update_task(self.task_id, current.version, spec=spec)
            self.log([_item(TaskResumed(pid=runner["pid"], rerun=rerun))])

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


def _now() -> datetime:
    return datetime.now(UTC)


def _title(prompt: str) -> str:
    return prompt[:50] + ("..." if len(prompt) > 50 else "")  # as upstream's UI


def _item(event: Event, subtask_id: int | None = None) -> tuple[str, dict[str, Any], int | None]:
    return (event.type, event.data(), subtask_id if subtask_id is not None else event.subtask_id)


def _user_message(task_id: int, message_id: int, text: str, parent: int | None = None) -> SubtaskRecord:
    return SubtaskRecord(
        task_id=task_id,
        message_id=message_id,
        parent_id=parent,
        role="USER",
        prompt=text,
        status=SubtaskState.COMPLETED,
        progress=100,
    )


def _subtask_event(sub: SubtaskRecord, status: SubtaskState, error: str | None = None) -> SubtaskStatus:
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


def _options(record: TaskRecord) -> RunOptions:
    saved = record.spec.get("run") or {"team": record.team}
    return RunOptions(saved["team"], saved.get("model"), bool(saved.get("force_model")))


def runner_alive(record: TaskRecord) -> bool:
    """Whether the process that runs the task is alive (from another host we cannot tell, so we assume it is)."""
    runner = record.spec.get("runner") or {}
    if runner.get("host") != socket.gethostname():
        return bool(runner)
    pid = runner.get("pid")
    if not isinstance(pid, int):
        return False
    if pid == os.getpid():
        return runner.get("engine") in _LIVE_ENGINES  # an engine of this process that is still open
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
