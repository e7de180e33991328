"""The task engine: starts, confirms, continues, cancels and resumes tasks, and lets any number of consumers follow
their events; a `Run` (`_run`) runs one of them in this process.

* Consumers read events from the store only (`Engine.follow`), woken by the writer in this process or by polling
  for another's: whatever they see is durable, and a late or reconnecting consumer replays from a sequence number.
* Every task record names the engine running it (host, pid, a token per engine): a task whose engine is gone is an
  orphan, which `resume` carries on; a cancel reaches a task running elsewhere through the store.
* Every status change goes through `_lifecycle`.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import anyio
import anyio.lowlevel
from anyio.abc import TaskGroup

from ._agent import Budget
from ._errors import NotFoundError, PluginError, WegentError
from ._events import (
    Event,
    Message,
    TaskStatus,
    event_from_record,
)
from ._lifecycle import (
    CANCELLABLE,
    FOLLOW_UP_FROM,
    REST,
    task_transition,
)
from ._models import ModelClient, RetryPolicy
from ._plan import ExecutionPlan, ModelPlan
from ._plugins import Plugins
from ._recording import Recorder, ReplayModel
from ._resolve import resolve_team
from ._resources import CollaborationModel, SubtaskState, TaskState
from ._run import Run, item, now, subtask_event, user_message
from ._task_store import SubtaskRecord, TaskRecord
from ._toolkits import TaskSession
from ._tools import Tool

log = logging.getLogger("wegent.engine")
T = TypeVar("T")

_ORPHAN_CHECK = 1.0  # seconds without events before a follower checks that the task's process is alive
_CLIENTS_KEPT = 1024  # model clients of recent tasks, reused by their later rounds
_PLANS_KEPT = 256  # resolved plans of recent teams and options
_APPEND_WINDOW_CHAT = timedelta(hours=2)  # upstream's APPEND_CHAT_TASK_EXPIRE_HOURS
_APPEND_WINDOW_CODE = timedelta(hours=24)  # upstream's APPEND_CODE_TASK_EXPIRE_HOURS
_LIVE_ENGINES: set[str] = set()  # the engines open in this process, by the token their task records name


class TaskError(WegentError):
    """A command on a task that its status does not allow (confirm a task that is not waiting, ...)."""


@dataclass
class RunOptions:
    """What a run was started with, kept in the task record (`spec`) so a resume or a follow-up runs the same way."""

    team: str  # namespace/name
    model: str | None = None
    force_model: bool = False
    workspace: str | None = None  # namespace/name of the Workspace of the Task the run was started from
    knowledge_bases: tuple[str, ...] = ()  # the Task's knowledgeBaseRefs, as namespace/name

    def dump(self) -> dict[str, Any]:
        saved = {"team": self.team, "model": self.model, "force_model": self.force_model, "workspace": self.workspace}
        if self.knowledge_bases:
            saved["knowledge_bases"] = list(self.knowledge_bases)
        return saved


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
        record: str | Path | None = None,
        replay: str | Path | ReplayModel | None = None,
    ) -> None:
        self.store = store
        self.recorder = Recorder(record) if record is not None else None
        self.replay = ReplayModel(replay) if isinstance(replay, str | Path) else replay
        self.plugins = plugins
        self.models = dict(models or {})
        self.tools = list(tools)
        self.retry = retry or RetryPolicy()
        self.environ = environ
        self.poll_interval = poll_interval
        self._runs: dict[int, Run] = {}
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
        # The engine's own session (task id 0): contexts plugins keep for the engine's life (sandbox providers and
        # their pools), outside the runs' task group, so they close after every run has closed its sandboxes.
        self._services = anyio.create_task_group()
        await self._services.__aenter__()
        self.session = TaskSession(0, self._services)
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
            await self.session.close()
            await self._services.__aexit__(None, None, None)
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
        workspace: str | None = None,
        knowledge_bases: Sequence[str] = (),
    ) -> int:
        """Create a task for `team` (a name in `namespace`, or namespace/name) and start running it; its id.
        `workspace` (namespace/name) is the Workspace whose repository the task works on; `knowledge_bases`
        (namespace/name) are the task's own knowledge bases."""
        team_ns, _, team_name = team.rpartition("/")
        kbs = tuple(knowledge_bases)
        options = RunOptions(f"{team_ns or namespace}/{team_name}", model, force_model, workspace, kbs)
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
            user = self.store.add_subtask(user_message(task.id, 1, prompt))
            message = Message(role="USER", message_id=1, text=prompt)
            running = TaskStatus(status=TaskState.RUNNING, stage=0, progress=0)
            self.store.append_events(task.id, [item(message, user.id), item(running)])
            return task, user

        def plan_and_create() -> tuple[ExecutionPlan, TaskRecord, SubtaskRecord]:
            plan = self._resolve(options, prompt, labels or {})  # a team that does not resolve creates no task
            return (plan, *create())

        plan, task, user = await self.db(self.store.batch, plan_and_create)  # one worker trip, one transaction
        self._launch(Run(self, task, plan, options, subtasks=[user]), started=True)
        return task.id  # type: ignore[return-value]

    async def cancel(self, task_id: int) -> TaskState:
        """Cancel the task: idempotent; a finished task cannot be cancelled (TaskError)."""
        record = await self.get(task_id)
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
            self.store.append_events(record.id, [item(event)])

        await self.db(self.store.batch, work)
        return TaskState.CANCELLING

    async def confirm(self, task_id: int, message: str | None = None) -> None:
        """Confirm a pipeline stage that waits for it; `message`, if given, replaces the generated handoff."""
        record = await self.get(task_id)
        if record.status is not TaskState.PENDING_CONFIRMATION:
            raise TaskError(f"Task is not awaiting confirmation. Current status: {record.status}")
        options = _options(record)
        plan = await self._plan(options, record.prompt, record.labels)
        if plan.collaboration_model is not CollaborationModel.PIPELINE:
            raise TaskError("Stage confirmation is only available for pipeline teams")
        run = Run(self, record, plan, options)
        await run.load()
        await run.confirm(message)
        self._launch(run, started=True)

    async def send(self, task_id: int, message: str) -> None:
        """A follow-up message: allowed once the task is finished or waits for a confirmation, as upstream."""
        record = await self.get(task_id)
        if record.labels.get("autoDeleteExecutor") == "true":  # as upstream: its executor is gone with the result
            raise TaskError("Task has autoDeleteExecutor=true: it cannot take follow-up messages")
        if record.status not in FOLLOW_UP_FROM:
            if record.status is TaskState.RUNNING:
                raise TaskError("Task is still running; wait for it to finish before sending a message")
            raise TaskError(f"Task is {record.status}: a message can follow only a finished task")
        _check_append_window(record)
        options = _options(record)
        plan = await self._plan(options, message, record.labels)
        run = Run(self, record, plan, options)
        run.budget = Budget(plan.limits)  # a follow-up starts a new run: the Team's limits apply to it afresh
        await run.load()
        await run.add_user_message(message)
        self._launch(run, started=True)

    async def resume(self, task_id: int, *, force: bool = False) -> bool:
        """Carry on a task whose process died (or, with `force`, one whose runner cannot be checked from here).
        False if there was nothing to resume."""
        record = await self.get(task_id)
        if task_id in self._runs or record.status not in (TaskState.PENDING, TaskState.RUNNING, TaskState.CANCELLING):
            return False
        if runner_alive(record) and not force:
            return False
        if record.status is TaskState.CANCELLING:
            await self._finish_cancelled(record)
            return True
        options = _options(record)
        plan = await self._plan(options, record.prompt, record.labels)
        run = Run(self, record, plan, options)
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
        record = await self.get(task_id)
        if record.status in REST and task_id not in self._runs:
            return record
        async for _ in self.follow(task_id, after=await self._last_seq(task_id)):
            pass
        return await self.get(task_id)

    async def follow(self, task_id: int, after: int = 0) -> AsyncIterator[Event]:
        """The task's events after sequence number `after`: the stored ones, then live ones as they are written,
        until the task rests (finished or waiting for a confirmation) with nothing more to read."""
        await self.get(task_id)
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

    def _launch(self, run: Run, *, started: bool = False) -> None:
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
        key = (
            options.team,
            options.model,
            options.force_model,
            options.workspace,
            options.knowledge_bases,
            tuple(sorted(labels.items())),
        )
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
            workspace=options.workspace,
            knowledge_bases=options.knowledge_bases,
        )

    def model_client(self, task_id: int, plan: ModelPlan) -> ModelClient:
        """The client of a Model for a task: the replay if there is one, else an override given to the engine, else
        one from the Model's provider (recorded if the engine records), kept for the task's later rounds (a
        scripted model goes on with its script after a confirmation)."""
        if self.replay is not None:
            return self.replay
        key = f"{plan.namespace}/{plan.name}"
        cached = self._clients.pop((task_id, key), None)
        if cached is None:
            cached = self.models.get(key) or self.models.get(plan.name) or self._provide(plan, key)
            if self.recorder is not None:
                cached = self.recorder.wrap(cached, key)
        self._clients[task_id, key] = cached  # most recently used last
        while len(self._clients) > _CLIENTS_KEPT:
            del self._clients[next(iter(self._clients))]
        return cached

    def _provide(self, plan: ModelPlan, key: str) -> ModelClient:
        if not plan.protocol:
            raise PluginError(f"Model {key} has no protocol, and none can be inferred from its env.model")
        return self.plugins.model_providers[plan.protocol].factory(plan)

    async def get(self, task_id: int) -> TaskRecord:
        """The task's record; `NotFoundError` if there is none."""
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
                    self.store.update_subtask(sub.id, status=SubtaskState.CANCELLED, completed_at=now())
                    items.append(item(subtask_event(sub, SubtaskState.CANCELLED), sub.id))
            task_transition(current.status, TaskState.CANCELLED)
            self.store.update_task(
                current.id, current.version, status=TaskState.CANCELLED, progress=100, completed_at=now()
            )
            items.append(item(TaskStatus(status=TaskState.CANCELLED, stage=current.current_stage, progress=100)))
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
        if (await self.get(task_id)).status not in REST:
            return False
        return last is None or not await self.db(self.store.events, task_id, last.seq, 1)

    async def _check_runner(self, task_id: int) -> None:
        """A followed task that makes no progress: raise if no process runs it any more (it would never rest)."""
        record = await self.get(task_id)
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


# --- helpers ------------------------------------------------------------------------------------------------------


def _title(prompt: str) -> str:
    return prompt[:50] + ("..." if len(prompt) > 50 else "")  # as upstream's UI


def _check_append_window(record: TaskRecord) -> None:
    """Upstream's append window, for tasks labelled as upstream labels them (`taskType`): a follow-up must come
    within 2 hours of the task's last update (24 hours for `taskType: code`), unless the task's `source` is
    `chat_shell`. Tasks without a `taskType` label take follow-ups at any time."""
    labels = record.labels
    kind = labels.get("taskType")
    if kind is None or labels.get("source") == "chat_shell" or record.updated_at is None:
        return
    window = _APPEND_WINDOW_CODE if kind == "code" else _APPEND_WINDOW_CHAT
    if datetime.now(UTC) - record.updated_at > window:
        hours = int(window.total_seconds() // 3600)
        raise TaskError(
            f"Task has expired: a {kind} task takes follow-up messages for {hours} hours after its last update"
        )


def _options(record: TaskRecord) -> RunOptions:
    saved = record.spec.get("run") or {"team": record.team}
    kbs = tuple(saved.get("knowledge_bases") or ())
    return RunOptions(saved["team"], saved.get("model"), bool(saved.get("force_model")), saved.get("workspace"), kbs)


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
