"""The Python API: `AsyncWegent` for async code, `Wegent` for scripts and notebooks, and task handles.

    async with AsyncWegent() as wg:                   # the embedded SQLite store; AsyncWegent("memory://") in memory
        await wg.apply("team.yaml")
        task = await wg.run("dev-team", "Add a rate limiter")
        async for event in task:
            print(event.type, getattr(event, "text", ""))
        result = await task.result()

    wg = Wegent()                                     # the same, blocking; works inside a running loop (Jupyter)
    task = wg.run("dev-team", "Add a rate limiter")
    for event in task: ...

`Wegent` runs an `AsyncWegent` on an event loop of its own, in a background thread, so its calls block the caller
only, never an event loop the caller may be running.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import anyio
from anyio.from_thread import BlockingPortal

from ._apply import ApplyReport
from ._apply import apply as apply_resources
from ._config import default_store_url
from ._engine import Engine, TaskError
from ._events import Event
from ._loader import load, loads
from ._models import ModelClient, RetryPolicy
from ._plan import ExecutionPlan
from ._plugins import Plugins
from ._recording import ReplayModel
from ._resolve import resolve_team, task_knowledge_bases
from ._resources import Resource, Task, TaskState
from ._task_store import SubtaskRecord, TaskRecord
from ._tools import Tool

T = TypeVar("T")
Source = str | Path | Resource | Iterable[Resource]


class AsyncWegent:
    """A store, the plugins, and the engine that runs tasks on them. Use it as `async with`.

    `store` is a store URL (default: $WEGENT_STORE, else the embedded SQLite file in the data directory;
    `memory://` keeps everything in memory) or a store object. `models` replaces the clients of Models by name
    (`name` or `namespace/name`), for tests and for models built in code; `tools` are given to every member.
    `record` writes every model call to a file; `replay` answers every model call from such a file (see
    `wegent_core.testing.ReplayModel`), so a recorded run replays with the same events and no model at all.
    """

    def __init__(
        self,
        store: str | Any | None = None,
        *,
        plugins: Plugins | None = None,
        models: Mapping[str, ModelClient] | None = None,
        tools: Sequence[Tool] = (),
        retry: RetryPolicy | None = None,
        environ: Mapping[str, str] | None = None,
        record: str | Path | None = None,
        replay: str | Path | ReplayModel | None = None,
    ) -> None:
        self.plugins = plugins or Plugins.load()
        self._owns_store = store is None or isinstance(store, str)
        self.store = self.plugins.open_store(store or default_store_url()) if self._owns_store else store
        self.engine = Engine(
            self.store,
            self.plugins,
            models=models,
            tools=tools,
            retry=retry,
            environ=environ,
            record=record,
            replay=replay,
        )

    async def __aenter__(self) -> AsyncWegent:
        await self.engine.__aenter__()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        try:
            await self.engine.__aexit__(*exc)
        finally:
            if self._owns_store and callable(getattr(self.store, "close", None)):
                self.store.close()

    # --- resources ------------------------------------------------------------------------------------------------

    async def apply(self, source: Source, *, namespace: str | None = None) -> ApplyReport:
        """Create or update resources from YAML files or directories, YAML text, or resource objects."""
        resources = _resources(source)
        return await self.engine.db(apply_resources, self.store, resources, namespace=namespace)

    async def plan(
        self, team: str, prompt: str | None = None, *, namespace: str = "default", model: str | None = None
    ) -> ExecutionPlan:
        """What running `team` would do: its members, models, prompts and limits (nothing runs)."""
        team_ns, _, name = team.rpartition("/")
        return await self.engine.db(resolve_team, self.store, name, team_ns or namespace, prompt=prompt, model=model)

    # --- tasks ----------------------------------------------------------------------------------------------------

    async def run(
        self,
        team: str | Task,
        prompt: str | None = None,
        *,
        namespace: str = "default",
        model: str | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> AsyncTask:
        """Start a task: `team` is a Team name (or namespace/name), or a Task resource (its team, prompt and labels).
        `model` (or the label `modelId`) is the model of bots that have none; with the label
        `forceOverrideBotModel: "true"`, of every bot, as upstream's labels say."""
        name = workspace = None
        knowledge_bases: list[str] = []
        if isinstance(team, Task):
            name = team.name  # the run carries the Task's name
            spec = team.spec
            labels = {**team.metadata.labels, **(labels or {})}
            prompt = prompt or spec.prompt
            namespace = team.namespace
            if spec.workspace_ref is not None:
                workspace = f"{spec.workspace_ref.namespace or namespace}/{spec.workspace_ref.name}"
            knowledge_bases = [f"{ns or namespace}/{kb}" for kb, ns in task_knowledge_bases(team)]
            team = f"{spec.team_ref.namespace or team.namespace}/{spec.team_ref.name}"
        labels = dict(labels or {})
        model = model or labels.get("modelId")
        force = labels.get("forceOverrideBotModel") == "true"
        if not prompt:
            raise TaskError("a task needs a prompt")
        task_id = await self.engine.start(
            team,
            prompt,
            namespace=namespace,
            model=model,
            force_model=force,
            labels=labels,
            name=name,
            workspace=workspace,
            knowledge_bases=knowledge_bases,
        )
        return AsyncTask(self.engine, task_id)

    async def task(self, task_id: int) -> AsyncTask:
        """A handle on an existing task, started here or by another process."""
        await self.engine.get(task_id)
        return AsyncTask(self.engine, task_id)

    async def tasks(
        self, *, namespace: str | None = None, status: TaskState | None = None, limit: int | None = None
    ) -> list[TaskRecord]:
        """Task records, newest first."""
        return await self.engine.db(self.store.list_tasks, namespace, status, limit)

    async def resume(self, task_id: int | None = None, *, force: bool = False) -> list[AsyncTask]:
        """Carry on tasks whose process died: one by id, or every such task."""
        if task_id is not None:
            resumed = [task_id] if await self.engine.resume(task_id, force=force) else []
        else:
            resumed = await self.engine.resume_orphans()
        return [AsyncTask(self.engine, i) for i in resumed]


class AsyncTask:
    """A running or finished task. Iterate it for its events (from the start, then live, until it rests)."""

    def __init__(self, engine: Engine, task_id: int) -> None:
        self.engine = engine
        self.id = task_id
        self._after = 0

    def __aiter__(self) -> AsyncIterator[Event]:
        return self.events(after=self._after)

    def events(self, after: int = 0) -> AsyncIterator[Event]:
        """Events with a sequence number above `after`, then live ones, until the task rests."""
        return self.engine.follow(self.id, after)

    async def record(self) -> TaskRecord:
        return await self.engine.get(self.id)

    async def subtasks(self) -> list[SubtaskRecord]:
        return await self.engine.db(self.engine.store.subtasks, self.id)

    async def wait(self) -> TaskRecord:
        """Wait until the task rests (finished, or waiting for a confirmation); its record."""
        return await self.engine.wait(self.id)

    async def result(self) -> str:
        """The final answer once the task rests: COMPLETED (or waiting for a confirmation, with the stage's answer).
        A failed or cancelled task raises `TaskError` with its message."""
        record = await self.wait()
        if record.status in (TaskState.COMPLETED, TaskState.PENDING_CONFIRMATION):
            return str((record.result or {}).get("value", ""))
        raise TaskError(
            f"task {self.id} is {record.status}" + (f": {record.error_message}" if record.error_message else "")
        )

    async def cancel(self) -> TaskState:
        return await self.engine.cancel(self.id)

    async def confirm(self, message: str | None = None) -> None:
        """Confirm the pipeline stage the task waits on; `message` replaces the generated handoff."""
        self._after = await self._last_seq()
        await self.engine.confirm(self.id, message)

    async def send(self, message: str) -> None:
        """A follow-up message; iterating the handle then follows the new round."""
        self._after = await self._last_seq()
        await self.engine.send(self.id, message)

    async def _last_seq(self) -> int:
        events = await self.engine.db(self.engine.store.events, self.id, self._after)
        return events[-1].seq if events else self._after

    def __repr__(self) -> str:
        return f"<task {self.id}>"


# --- the blocking API ---------------------------------------------------------------------------------------------


class Wegent:
    """`AsyncWegent`, blocking: for scripts and notebooks. Close it (or use `with`) to stop its event loop thread."""

    def __init__(self, store: str | Any | None = None, **options: Any) -> None:
        self._portal, self._thread = _start_portal()
        try:
            self._async = self._portal.call(lambda: _make(store, options))
            self._context = self._portal.wrap_async_context_manager(self._async)
            self._context.__enter__()
        except BaseException:
            self._stop_portal()
            raise
        self._closed = False
        self.store = self._async.store
        self.plugins = self._async.plugins

    def __enter__(self) -> Wegent:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        """Stop the engine and its thread. Tasks still running stop where they are, resumable as after a crash."""
        if self._closed:
            return
        self._closed = True
        try:
            self._context.__exit__(None, None, None)
        finally:
            self._stop_portal()

    def _stop_portal(self) -> None:
        self._portal.call(self._portal.stop)
        self._thread.join()

    def apply(self, source: Source, *, namespace: str | None = None) -> ApplyReport:
        return self._portal.call(lambda: self._async.apply(source, namespace=namespace))

    def plan(self, team: str, prompt: str | None = None, **options: Any) -> ExecutionPlan:
        return self._portal.call(lambda: self._async.plan(team, prompt, **options))

    def run(self, team: str | Task, prompt: str | None = None, **options: Any) -> TaskHandle:
        return TaskHandle(self._portal, self._portal.call(lambda: self._async.run(team, prompt, **options)))

    def task(self, task_id: int) -> TaskHandle:
        return TaskHandle(self._portal, self._portal.call(self._async.task, task_id))

    def tasks(self, **options: Any) -> list[TaskRecord]:
        return self._portal.call(lambda: self._async.tasks(**options))

    def resume(self, task_id: int | None = None, *, force: bool = False) -> list[TaskHandle]:
        handles = self._portal.call(lambda: self._async.resume(task_id, force=force))
        return [TaskHandle(self._portal, handle) for handle in handles]


class TaskHandle:
    """`AsyncTask`, blocking. Iterating it yields events as they come."""

    def __init__(self, portal: BlockingPortal, task: AsyncTask) -> None:
        self._portal = portal
        self._task = task
        self.id = task.id

    def __iter__(self) -> Iterator[Event]:
        return self._iterate(self._task._after)

    def events(self, after: int = 0) -> Iterator[Event]:
        return self._iterate(after)

    def _iterate(self, after: int) -> Iterator[Event]:
        with self._portal.wrap_async_context_manager(_Cursor(self._task.events(after))) as cursor:
            while True:
                event = self._portal.call(cursor.next)
                if event is None:
                    return
                yield event

    def record(self) -> TaskRecord:
        return self._portal.call(self._task.record)

    def subtasks(self) -> list[SubtaskRecord]:
        return self._portal.call(self._task.subtasks)

    def wait(self) -> TaskRecord:
        return self._portal.call(self._task.wait)

    def result(self) -> str:
        return self._portal.call(self._task.result)

    def cancel(self) -> TaskState:
        return self._portal.call(self._task.cancel)

    def confirm(self, message: str | None = None) -> None:
        self._portal.call(self._task.confirm, message)

    def send(self, message: str) -> None:
        self._portal.call(self._task.send, message)

    def __repr__(self) -> str:
        return f"<task {self.id}>"


class _Cursor:
    """An async iterator as an async context manager with a `next` that returns None at the end, so a blocking
    caller can step through it and close it (through the portal) when it stops early."""

    def __init__(self, events: AsyncIterator[Event]) -> None:
        self._events = events

    async def __aenter__(self) -> _Cursor:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        close = getattr(self._events, "aclose", None)
        if close is not None:
            await close()

    async def next(self) -> Event | None:
        try:
            return await self._events.__anext__()
        except StopAsyncIteration:
            return None


def _start_portal() -> tuple[BlockingPortal, threading.Thread]:
    """An event loop in a daemon thread, and the portal into it. A daemon, so that a script that never closes its
    `Wegent` still exits (its running tasks then stop as in a crash, and `resume` carries them on)."""
    ready: queue.Queue[BlockingPortal | BaseException] = queue.Queue()

    async def serve() -> None:
        async with BlockingPortal() as portal:
            ready.put(portal)
            await portal.sleep_until_stopped()

    def main() -> None:
        try:
            anyio.run(serve)
        except BaseException as error:  # pragma: no cover - the loop failed to start
            ready.put(error)

    thread = threading.Thread(target=main, name="wegent-engine", daemon=True)
    thread.start()
    portal = ready.get()
    if isinstance(portal, BaseException):
        raise portal
    return portal, thread


async def _make(store: Any, options: dict[str, Any]) -> AsyncWegent:
    return AsyncWegent(store, **options)


def _resources(source: Source) -> list[Resource]:
    """Resources from a file or directory path, YAML text (a string with a line break), or resource objects."""
    if isinstance(source, Resource):
        return [source]
    if isinstance(source, str) and "\n" in source:
        return list(loads(source))
    if isinstance(source, str | Path):
        return list(load(source))
    return list(source)
