"""Toolkits: what plugins give a member for its turns in a task besides its model: tools (MCP servers, skills,
knowledge search) and instructions for its system prompt.

A toolkit is registered with `register_toolkits` as `factory(kit: MemberKit) -> Awaitable[None]`. It is called once
per member per run of a task, adds to `kit.tools` and `kit.instructions`, and may add tools later (a skill loaded in
the middle of a turn brings its MCP servers' tools): the agent loop reads `kit.tools` again before every model call.
`kit.turn_hooks` are called at the start of each of the member's turns with the turn's message id, for state that
ages by turns (a loaded skill).

What a toolkit starts for a task (an MCP server process) it enters through the task's `TaskSession`: each context is
entered in a task of its own, once per key, kept across the turns of the run, and exited in that same task when the
run ends, however it ends (finished, failed, cancelled, or paused for a confirmation).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import anyio
from anyio.abc import TaskGroup, TaskStatus

from ._events import Event
from ._plan import ExecutionPlan, MemberPlan
from ._plugins import Plugins
from ._tools import Tool

log = logging.getLogger("wegent.engine")
T = TypeVar("T")

CLOSE_TIMEOUT = 10.0  # seconds the contexts of a task get to exit cleanly before they are cancelled


class TaskSession:
    """Per-task state and long-lived contexts of the plugins, for one run of the task in this process."""

    def __init__(self, task_id: int, group: TaskGroup) -> None:
        self.task_id = task_id
        self.state: dict[str, Any] = {}  # plugins' per-task caches, each under a key of its own
        self._group = group
        self._entered: dict[str, Any] = {}
        self._locks: dict[str, anyio.Lock] = {}
        self._stop = anyio.Event()
        self._open = 0
        self._all_closed = anyio.Event()
        self._all_closed.set()

    async def enter(self, key: str, context: Callable[[], AbstractAsyncContextManager[T]]) -> T:
        """The value of `context()`, entered once per key for this task (concurrent callers wait for the first).
        An error while entering is raised here, and the next call tries again."""
        lock = self._locks.setdefault(key, anyio.Lock())
        async with lock:
            if key not in self._entered:
                if self._stop.is_set():
                    raise RuntimeError(f"the session of task {self.task_id} is closed")
                self._entered[key] = await self._group.start(self._hold, key, context, name=f"wegent:{key}")
            return self._entered[key]

    async def _hold(
        self, key: str, context: Callable[[], AbstractAsyncContextManager[Any]], *, task_status: TaskStatus[Any]
    ) -> None:
        self._open += 1
        self._all_closed = anyio.Event()
        started = False
        try:
            async with context() as value:
                task_status.started(value)
                started = True
                await self._stop.wait()
        except Exception:
            if not started:
                raise  # entering failed: `enter` raises it to its caller
            log.warning("task %s: closing %s failed", self.task_id, key, exc_info=True)  # it is gone either way
        finally:
            self._entered.pop(key, None)
            self._open -= 1
            if not self._open:
                self._all_closed.set()

    async def close(self) -> None:
        """Exit every context (each in its own task), giving them `CLOSE_TIMEOUT` seconds before cancelling them."""
        self._stop.set()
        with anyio.CancelScope(shield=True), anyio.move_on_after(CLOSE_TIMEOUT) as waited:
            await self._all_closed.wait()
        if waited.cancelled_caught:
            log.warning("task %s: plugin contexts did not close in %g s; cancelling them", self.task_id, CLOSE_TIMEOUT)
            self._group.cancel_scope.cancel()


@dataclass
class MemberKit:
    """What the toolkits give one member of a task: tools, and instructions appended to its system prompt."""

    task_id: int
    member: MemberPlan
    session: TaskSession
    plan: ExecutionPlan  # the task's plan: its team, workspace, labels, the other members
    emit: Callable[[Event], None]  # events about the kit (a skill that was not found, a server that failed)
    plugins: Plugins | None = None  # the engine's plugins (a runtime finds the sandbox providers there)
    engine_session: TaskSession | None = None  # contexts kept for the engine's life: providers, pools
    tools: list[Tool] = field(default_factory=list)
    instructions: list[str] = field(default_factory=list)
    turn_hooks: list[Callable[[int], None]] = field(default_factory=list)  # called with each new turn's message id

    def system_prompt(self, base: str) -> str:
        return "\n\n".join([base, *self.instructions]) if self.instructions else base


Toolkit = Callable[[MemberKit], Awaitable[None]]
