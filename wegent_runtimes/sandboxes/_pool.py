"""A warm pool: pre-started sandboxes, so a task gets one without waiting for a container to start.

    async with PooledProvider(DockerProvider({}), size=2, labels={"owner": "wegent-host-123"}) as provider:
        sandbox = await provider.create(spec)   # from the pool when one matches; the pool refills in the background

or, switched by configuration (off by default): `async with pooled(provider, options) as provider:` with the
provider option `pool: N` or `WEGENT_SANDBOX_POOL=N`.

What a pooled sandbox is, since a container's labels and mounts are fixed when it is created:

* Only specs without a host workspace and without `preserve` are served from the pool (a host workspace is a mount
  made at creation; a preserved sandbox must carry its task's labels to be found again). Others are created cold.
* The pool key is everything else fixed at creation: image, env, network, mounts, memory, CPUs, pids, user. Each
  key gets `size` sandboxes, made the first time a spec with that key is asked for (or by `warm(spec)`); at most
  `max_keys` keys are kept, the least recently used one's sandboxes are destroyed to make room.
* A pooled sandbox carries the pool's labels (`wegent.pool`, a per-sandbox `wegent.pool.slot`, and the `labels`
  given to the pool: put the owner there so the reaper of a later process can tell a dead pool's leftovers), not the
  task's. The pool records which task labels each handed-out sandbox serves: `sandbox.spec` is the spec asked for,
  and `reap` judges a handed-out sandbox by those task labels. An idle one is never reaped by the pool that owns it.
* Files reach a pooled sandbox through `copy_in` / `write_file` (its workspace starts empty).
* Closing the pool destroys the idle sandboxes; those handed out belong to their tasks and are closed by them.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
from anyio.abc import TaskGroup

from wegent_core import ExecResult, Sandbox, SandboxError, SandboxProvider, SandboxSpec
from wegent_core._sandbox import OnOutput

log = logging.getLogger(__name__)

POOL_ENV = "WEGENT_SANDBOX_POOL"
POOL_LABEL = "wegent.pool"
SLOT_LABEL = "wegent.pool.slot"
MAX_BACKOFF = 30.0  # seconds between attempts when the engine keeps failing to create sandboxes

PoolKey = tuple[Any, ...]


def pool_key(spec: SandboxSpec) -> PoolKey:
    """What a pooled sandbox must share with the spec it serves: everything fixed when it was created."""
    return (
        spec.image,
        tuple(sorted(spec.env.items())),
        spec.network,
        spec.mounts,
        spec.memory_mb,
        spec.cpus,
        spec.pids,
        spec.user,
    )


def poolable(spec: SandboxSpec) -> bool:
    return spec.workspace is None and not spec.preserve


def pool_size(options: Mapping[str, Any] | None = None) -> int:
    """The pool size configured by the provider option `pool`, else `$WEGENT_SANDBOX_POOL`; 0 (off) by default."""
    raw = (options or {}).get("pool")
    if raw is None:
        raw = os.environ.get(POOL_ENV, "0")
    try:
        size = int(raw)
    except (TypeError, ValueError):
        size = -1
    if size < 0:
        raise SandboxError(f"sandbox pool size: expected a whole number of sandboxes, got {raw!r}")
    return size


@asynccontextmanager
async def pooled(
    provider: SandboxProvider, options: Mapping[str, Any] | None = None, *, labels: Mapping[str, str] | None = None
) -> AsyncIterator[SandboxProvider]:
    """`provider` behind a warm pool if one is configured (`pool_size`), else `provider` itself, for the block."""
    size = pool_size(options)
    if not size:
        yield provider
        return
    async with PooledProvider(provider, size, labels=labels) as pool:
        yield pool


class _Slot:
    """The idle sandboxes of one pool key and the task that keeps them topped up."""

    def __init__(self, template: SandboxSpec) -> None:
        self.template = template
        self.idle: deque[Sandbox] = deque()
        self.wanted = anyio.Event()  # set when a sandbox was taken: the filler makes another
        self.changed = anyio.Event()  # set (and replaced) when the filler added one or failed
        self.error: BaseException | None = None
        self.scope = anyio.CancelScope()

    def notify(self) -> None:
        self.changed.set()
        self.changed = anyio.Event()


class PooledProvider:
    """`inner` with `size` pre-started sandboxes per pool key. Use it as an async context manager (the refills run
    in its task group); see the module docstring for what is pooled and how pooled sandboxes are labelled."""

    def __init__(
        self, inner: SandboxProvider, size: int, *, labels: Mapping[str, str] | None = None, max_keys: int = 4
    ) -> None:
        if size < 1 or max_keys < 1:
            raise ValueError("a pool needs size >= 1 and max_keys >= 1")
        self.inner = inner
        self.size = size
        self.max_keys = max_keys
        self.name = inner.name
        self.capabilities = inner.capabilities
        self.labels = {**(labels or {}), POOL_LABEL: uuid.uuid4().hex[:12]}
        self._slots: OrderedDict[PoolKey, _Slot] = OrderedDict()  # least recently used first
        self._assigned: dict[str, dict[str, str]] = {}  # slot label of a handed-out sandbox -> its task's labels
        self._evicted: list[deque[Sandbox]] = []  # idle sandboxes of evicted keys, being closed
        self._group: TaskGroup | None = None
        self._closed = False

    async def __aenter__(self) -> PooledProvider:
        self._group = anyio.create_task_group()
        await self._group.__aenter__()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self._closed = True
        assert self._group is not None
        self._group.cancel_scope.cancel()
        try:
            await self._group.__aexit__(None, None, None)  # an error of the caller's propagates as itself
        finally:
            with anyio.CancelScope(shield=True):
                for idle in [*self._evicted, *(slot.idle for slot in self._slots.values())]:
                    await _close_all(idle)
                self._slots.clear()

    @property
    def idle(self) -> int:
        """How many pre-started sandboxes wait in the pool."""
        return sum(len(slot.idle) for slot in self._slots.values())

    async def create(self, spec: SandboxSpec) -> Sandbox:
        """A pre-started sandbox if the pool has one for the spec's key, else a new one."""
        self._check_open()
        if not poolable(spec):
            return await self.inner.create(spec)
        slot = self._slot(spec)
        if not slot.idle:
            return await self.inner.create(spec)  # cold: the filler is making this key's sandboxes meanwhile
        sandbox = slot.idle.popleft()
        slot.wanted.set()
        self._assigned[sandbox.spec.labels[SLOT_LABEL]] = dict(spec.labels)
        return _PooledSandbox(sandbox, spec, self)

    async def warm(self, spec: SandboxSpec) -> None:
        """Start pooling `spec`'s key and wait until its sandboxes are ready (raises if the provider cannot make
        them)."""
        self._check_open()
        if not poolable(spec):
            raise SandboxError("only specs without a host workspace and without preserve are pooled")
        slot = self._slot(spec)
        while len(slot.idle) < self.size:
            await slot.changed.wait()  # the outcome of the filler's next attempt, not of an earlier one
            if slot.error is not None:
                raise SandboxError(f"the {self.name} pool cannot make sandboxes: {slot.error}") from slot.error

    async def reap(self, keep: Callable[[Mapping[str, str]], bool]) -> int:
        """The inner provider's reap; this pool's idle sandboxes are kept, handed-out ones are judged by the labels
        of the task they serve."""

        def judge(labels: Mapping[str, str]) -> bool:
            if labels.get(POOL_LABEL) != self.labels[POOL_LABEL]:
                return keep(labels)
            task = self._assigned.get(labels.get(SLOT_LABEL, ""))
            if task is None:
                return True
            # As the container would carry them had it been made for the task: the container providers store the
            # spec's `task`, `namespace` and `owner` as `wegent.task`, ... (and a reaper may read either form).
            prefixed = {f"wegent.{key}": task[key] for key in ("task", "namespace", "owner") if key in task}
            return keep({**labels, **task, **prefixed})

        return await self.inner.reap(judge)

    def _check_open(self) -> None:
        if self._closed:
            raise SandboxError(f"the {self.name} sandbox pool is closed")
        if self._group is None:
            raise SandboxError(f"the {self.name} sandbox pool is not started: use `async with PooledProvider(...)`")

    def _slot(self, spec: SandboxSpec) -> _Slot:
        key = pool_key(spec)
        slot = self._slots.get(key)
        if slot is not None:
            self._slots.move_to_end(key)
            return slot
        if len(self._slots) >= self.max_keys:
            _, evicted = self._slots.popitem(last=False)
            evicted.scope.cancel()
            self._evicted.append(evicted.idle)
            assert self._group is not None
            self._group.start_soon(_close_all, evicted.idle, name="wegent:sandbox-pool-evict")
        slot = self._slots[key] = _Slot(spec.model_copy(update={"labels": {}, "workspace": None, "preserve": False}))
        assert self._group is not None
        self._group.start_soon(self._fill, slot, name=f"wegent:sandbox-pool-{self.name}")
        return slot

    async def _fill(self, slot: _Slot) -> None:
        """Keep `size` idle sandboxes in the slot; back off while the provider fails."""
        backoff = 0.5
        with slot.scope:
            while True:
                slot.wanted = anyio.Event()
                while len(slot.idle) < self.size:
                    labels = {**self.labels, SLOT_LABEL: uuid.uuid4().hex}
                    try:
                        sandbox = await self.inner.create(slot.template.model_copy(update={"labels": labels}))
                    except Exception as error:  # the engine is down or the image is missing: callers go cold
                        log.warning("sandbox pool (%s): cannot pre-start a sandbox: %s", self.name, error)
                        slot.error = error
                        slot.notify()
                        await anyio.sleep(backoff)
                        backoff = min(backoff * 2, MAX_BACKOFF)
                        continue
                    slot.error, backoff = None, 0.5
                    slot.idle.append(sandbox)
                    slot.notify()
                await slot.wanted.wait()

    def _release(self, sandbox: Sandbox) -> None:
        self._assigned.pop(sandbox.spec.labels.get(SLOT_LABEL, ""), None)


class _PooledSandbox:
    """A pre-started sandbox handed to a task: `spec` is the spec the task asked for."""

    def __init__(self, inner: Sandbox, spec: SandboxSpec, pool: PooledProvider) -> None:
        self.inner = inner
        self.id = inner.id
        self.spec = spec
        self._pool = pool

    def __getattr__(self, name: str) -> Any:  # a provider's extras (the local sandbox's `workspace`, ...)
        return getattr(self.inner, name)

    async def exec(
        self,
        command: Sequence[str] | str,
        *,
        cwd: str | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float | None = None,
        stdin: str | None = None,
        on_output: OnOutput | None = None,
    ) -> ExecResult:
        return await self.inner.exec(command, cwd=cwd, env=env, timeout=timeout, stdin=stdin, on_output=on_output)

    async def read_file(self, path: str, *, outside_workspace: bool = False) -> bytes:
        return await self.inner.read_file(path, outside_workspace=outside_workspace)

    async def write_file(self, path: str, data: bytes, *, mode: int = 0o644, outside_workspace: bool = False) -> None:
        await self.inner.write_file(path, data, mode=mode, outside_workspace=outside_workspace)

    async def copy_in(self, source: Path, target: str = ".") -> None:
        await self.inner.copy_in(source, target)

    async def copy_out(self, source: str, target: Path) -> None:
        await self.inner.copy_out(source, target)

    async def close(self) -> None:
        try:
            await self.inner.close()
        finally:
            self._pool._release(self.inner)


async def _close_all(sandboxes: deque[Sandbox]) -> None:
    while sandboxes:
        sandbox = sandboxes.popleft()
        try:
            await sandbox.close()
        except Exception:  # one that cannot be closed must not keep the others alive
            log.warning("sandbox pool: closing %s failed", sandbox.id, exc_info=True)
