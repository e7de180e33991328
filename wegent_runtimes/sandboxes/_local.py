"""The `local` sandbox: commands run as subprocesses of the engine, in a per-sandbox workspace directory.

It isolates NOTHING. A command runs as the engine's user, sees the host's processes and files, reaches the network,
and has no memory, CPU or process limits: use it for trusted work only (tests, a developer's own machine). What it
does give:

* a workspace directory: `spec.workspace`, or a fresh one under `<tmp>/wegent-local-<uid>/<id>/workspace` removed
  at `close()` unless the spec preserves it. Sandbox paths under `/workspace` map onto it, so tool code that works on a
  container works here too; file operations refuse paths that leave it (symlinks included) unless asked;
* a minimal environment: `spec.env` plus PATH, HOME and LANG, never the engine's environment (model keys stay out);
* each command in its own process group, so a timeout, a cancelled caller or `close()` kills the command and its
  children (SIGTERM, then SIGKILL after a short grace). A child that makes itself a new session escapes the group:
  only a container can hold it.
"""

from __future__ import annotations

import codecs
import contextlib
import json
import logging
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import Any, Literal

import anyio
from anyio.abc import ByteReceiveStream, ByteSendStream, Process

from wegent_core import ExecResult, SandboxError, SandboxSpec, workspace_path
from wegent_core._sandbox import (
    LABEL_NAMESPACE,
    LABEL_OWNER,
    LABEL_PRESERVE,
    LABEL_TASK,
    PRESERVE,
    WORKSPACE,
    OnOutput,
    command_line,
    owner_label,
)

log = logging.getLogger(__name__)

DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"
KILL_GRACE = 0.5  # seconds between SIGTERM and SIGKILL: well inside the 2 s a cancel may take
DRAIN = 0.5  # seconds to read output after the command exits (a background child may hold the pipes open)
RECORD = "sandbox.json"  # beside a fresh workspace: its labels, so `reap` can find it after this process is gone


class LocalProvider:
    """Sandboxes that are plain subprocesses in a workspace directory. No isolation: see the module docstring.

    Options: `root` (where fresh workspaces are made; default `<tmp>/wegent-local-<uid>`), `kill_grace` (seconds).
    """

    name = "local"
    # Nothing is isolated, limited or made read-only. PRESERVE: a preserved workspace outlives close() and `reap`
    # finds it again by the labels recorded beside it.
    capabilities: frozenset[str] = frozenset({PRESERVE})

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        options = dict(options or {})
        self.root = Path(options.get("root") or Path(tempfile.gettempdir()) / f"wegent-local-{os.getuid()}")
        self.kill_grace = float(options.get("kill_grace", KILL_GRACE))
        self._open: dict[str, LocalSandbox] = {}

    async def create(self, spec: SandboxSpec) -> LocalSandbox:
        if spec.mounts:
            # Commands see the host's files directly; a mount target would not exist and the caller would be misled.
            raise SandboxError("the local sandbox cannot mount: its commands use host paths directly")
        sandbox_id = f"local-{uuid.uuid4().hex[:12]}"
        home = None if spec.workspace else self.root / sandbox_id
        await anyio.to_thread.run_sync(self._prepare, spec, home)
        workspace = Path(spec.workspace).resolve() if spec.workspace else home / "workspace"  # type: ignore[operator]
        sandbox = LocalSandbox(sandbox_id, spec, workspace, home, self)
        self._open[sandbox_id] = sandbox
        return sandbox

    def _prepare(self, spec: SandboxSpec, home: Path | None) -> None:
        if home is None:
            Path(spec.workspace).mkdir(parents=True, exist_ok=True)  # type: ignore[arg-type]
            return
        self._own_root()
        (home / "workspace").mkdir(parents=True)
        record = {"labels": _labels(spec), "created": time.time()}
        (home / RECORD).write_text(json.dumps(record))

    def _own_root(self) -> None:
        # In a shared /tmp another user could plant the directory first and read or swap our workspaces.
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        if self.root.stat().st_uid != os.getuid():
            raise SandboxError(f"{self.root} belongs to another user: set the local sandbox option `root`")

    async def reap(self, keep: Callable[[Mapping[str, str]], bool]) -> int:
        """Remove fresh workspaces left by closed-but-preserved sandboxes or dead processes when `keep(labels)` is
        False. Only directories this provider made (with their record) are considered, never a `spec.workspace`;
        sandboxes open in this provider are in use, not leftovers."""
        return await anyio.to_thread.run_sync(self._reap, keep)

    def _reap(self, keep: Callable[[Mapping[str, str]], bool]) -> int:
        removed = 0
        for record in self.root.glob(f"local-*/{RECORD}"):
            home = record.parent
            if home.name in self._open:
                continue
            try:
                labels = json.loads(record.read_text()).get("labels", {})
            except (OSError, ValueError):
                continue  # half-written by a sandbox being created right now, or not ours after all
            if not keep(labels):
                shutil.rmtree(home, ignore_errors=True)
                removed += 1
        return removed

    def _forget(self, sandbox_id: str) -> None:
        self._open.pop(sandbox_id, None)


class LocalSandbox:
    """One workspace directory and the process groups started in it."""

    def __init__(self, sandbox_id: str, spec: SandboxSpec, workspace: Path, home: Path | None, provider: LocalProvider):
        self.id = sandbox_id
        self.spec = spec
        self.workspace = workspace  # the host directory behind /workspace
        self._home = home  # the directory made for a fresh workspace (removed at close), None for spec.workspace
        self._provider = provider
        self._groups: set[int] = set()  # process groups started here (background children may outlive an exec)
        self._closed = False

    # --- paths ----------------------------------------------------------------------------------------------------

    def host_path(self, path: str, *, outside_workspace: bool = False) -> Path:
        """The host path of a sandbox path (relative to the workspace, or absolute: `/workspace/...` maps onto the
        workspace directory, anything else is the host's own path), refused outside the workspace unless asked."""
        mapped = self._map(workspace_path(path, outside_workspace=outside_workspace))
        if not outside_workspace:
            real, root = os.path.realpath(mapped), os.path.realpath(self.workspace)
            if real != root and not real.startswith(root + os.sep):
                raise SandboxError(f"path {path!r} leads outside the workspace (through a symbolic link)")
        return mapped

    def _map(self, absolute: str) -> Path:
        posix, root = PurePosixPath(absolute), PurePosixPath(WORKSPACE)
        if posix == root:
            return self.workspace
        if root in posix.parents:
            return self.workspace / posix.relative_to(root)
        return Path(posix)

    def _check_open(self) -> None:
        if self._closed:
            raise SandboxError(f"sandbox {self.id} is closed")

    # --- commands -------------------------------------------------------------------------------------------------

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
        self._check_open()
        directory = self._map(workspace_path(cwd or ".", outside_workspace=True))
        if not directory.is_dir():
            raise SandboxError(f"cwd {cwd!r} is not a directory in sandbox {self.id}")
        began = time.monotonic()
        try:
            process = await anyio.open_process(
                command_line(command),
                stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                cwd=directory,
                env=self._environment(env),
                start_new_session=True,  # its own process group: a kill reaches its children too
            )
        except (FileNotFoundError, PermissionError) as error:  # as a shell reports a missing or unrunnable command
            return ExecResult(127 if isinstance(error, FileNotFoundError) else 126, "", f"{error}\n")
        self._groups.add(process.pid)
        output: dict[str, list[str]] = {"stdout": [], "stderr": []}
        try:
            timed_out = await self._run(process, timeout, stdin, _Sink(output, on_output))
        except BaseException:  # cancelled (or on_output failed): the command must not outlive its caller
            with anyio.CancelScope(shield=True):
                await _kill_group(process, self._provider.kill_grace)
            raise
        finally:
            with anyio.CancelScope(shield=True):
                await process.aclose()
        return ExecResult(
            exit_code=process.returncode if process.returncode is not None else -1,
            stdout="".join(output["stdout"]),
            stderr="".join(output["stderr"]),
            timed_out=timed_out,
            seconds=time.monotonic() - began,
        )

    def _environment(self, extra: Mapping[str, str] | None) -> dict[str, str]:
        # Never os.environ as a whole: the engine's environment holds model keys.
        base = {
            "PATH": os.environ.get("PATH", DEFAULT_PATH),
            "HOME": os.environ.get("HOME") or str(self.workspace),
            "LANG": os.environ.get("LANG") or "C.UTF-8",
        }
        return {**base, **self.spec.env, **(extra or {})}

    async def _run(self, process: Process, timeout: float | None, stdin: str | None, sink: _Sink) -> bool:
        """Wait for the command, streaming its output; kill its group past `timeout`. True if it timed out."""
        timed_out = False
        async with anyio.create_task_group() as group:
            assert process.stdout is not None
            assert process.stderr is not None
            group.start_soon(sink.pump, process.stdout, "stdout")
            group.start_soon(sink.pump, process.stderr, "stderr")
            if stdin is not None and process.stdin is not None:
                group.start_soon(_feed, process.stdin, stdin)
            with anyio.move_on_after(timeout):
                await process.wait()
            if process.returncode is None:
                timed_out = True
                await _kill_group(process, self._provider.kill_grace)
            with anyio.move_on_after(DRAIN):
                await sink.drained.wait()
            group.cancel_scope.cancel()  # a background child holding the pipes does not hold the caller
        return timed_out

    # --- files ----------------------------------------------------------------------------------------------------

    async def read_file(self, path: str, *, outside_workspace: bool = False) -> bytes:
        self._check_open()
        host = self.host_path(path, outside_workspace=outside_workspace)
        try:
            return await anyio.Path(host).read_bytes()
        except OSError as error:
            raise SandboxError(f"cannot read {path!r} in sandbox {self.id}: {error.strerror}") from error

    async def write_file(self, path: str, data: bytes, *, mode: int = 0o644, outside_workspace: bool = False) -> None:
        self._check_open()
        host = self.host_path(path, outside_workspace=outside_workspace)
        try:
            await anyio.to_thread.run_sync(_write, host, data, mode)
        except OSError as error:
            raise SandboxError(f"cannot write {path!r} in sandbox {self.id}: {error.strerror}") from error

    async def copy_in(self, source: Path, target: str = ".") -> None:
        self._check_open()
        if not Path(source).is_dir():
            raise SandboxError(f"copy_in: {source} is not a directory")
        await anyio.to_thread.run_sync(_copy_tree, Path(source), self.host_path(target))

    async def copy_out(self, source: str, target: Path) -> None:
        self._check_open()
        host = self.host_path(source)
        if not host.is_dir():
            raise SandboxError(f"copy_out: {source!r} is not a directory in sandbox {self.id}")
        await anyio.to_thread.run_sync(_copy_tree, host, Path(target))

    # --- end ------------------------------------------------------------------------------------------------------

    async def close(self) -> None:
        """Kill every process group started here; remove a fresh workspace unless the spec preserves it (then only
        the files are kept: nothing runs on). A `spec.workspace` always stays: it is the caller's directory."""
        if self._closed:
            return
        self._closed = True
        self._provider._forget(self.id)
        with anyio.CancelScope(shield=True):
            await _kill_groups(self._groups, self._provider.kill_grace)
            if self._home is not None and not self.spec.preserve:
                await anyio.to_thread.run_sync(lambda: shutil.rmtree(self._home, ignore_errors=True))


class _Sink:
    """Collects the output of one command and passes each decoded piece to `on_output` as it arrives."""

    def __init__(self, output: dict[str, list[str]], on_output: OnOutput | None) -> None:
        self.output = output
        self.on_output = on_output
        self.drained = anyio.Event()
        self._open = 2

    async def pump(self, stream: ByteReceiveStream, kind: Literal["stdout", "stderr"]) -> None:
        decoder = codecs.getincrementaldecoder("utf-8")("replace")  # a character may straddle two reads
        try:
            async for data in stream:
                self._emit(kind, decoder.decode(data))
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            pass
        self._emit(kind, decoder.decode(b"", final=True))
        self._open -= 1
        if not self._open:
            self.drained.set()

    def _emit(self, kind: Literal["stdout", "stderr"], text: str) -> None:
        if text:
            self.output[kind].append(text)
            if self.on_output is not None:
                self.on_output(kind, text)


async def _feed(stream: ByteSendStream, text: str) -> None:
    try:
        await stream.send(text.encode())
    except (anyio.BrokenResourceError, anyio.ClosedResourceError):
        pass  # the command exited without reading it all
    finally:
        await stream.aclose()


def _signal_group(pgid: int, signum: int) -> bool:
    """Signal a process group; False if it is gone."""
    try:
        os.killpg(pgid, signum)
    except ProcessLookupError:
        return False
    except PermissionError:  # the group id was reused by someone else's process: not ours to kill
        return False
    return True


async def _kill_group(process: Process, grace: float) -> None:
    """SIGTERM to the command's group, then SIGKILL to whatever is left after `grace`."""
    _signal_group(process.pid, signal.SIGTERM)
    with anyio.move_on_after(grace):
        await process.wait()  # reaps the leader, which would otherwise count as a member
        while _signal_group(process.pid, 0):
            await anyio.sleep(0.02)
    _signal_group(process.pid, signal.SIGKILL)
    if process.returncode is None:
        with contextlib.suppress(OSError):  # the leader left its group (setpgid): it is still ours to kill
            process.kill()
    await process.wait()


async def _kill_groups(groups: set[int], grace: float) -> None:
    """Background processes left by finished commands (their leaders are reaped already)."""
    alive = [pgid for pgid in groups if _signal_group(pgid, signal.SIGTERM)]
    with anyio.move_on_after(grace):
        while any(_signal_group(pgid, 0) for pgid in alive):
            await anyio.sleep(0.02)
    for pgid in alive:
        _signal_group(pgid, signal.SIGKILL)
    groups.clear()


def _labels(spec: SandboxSpec) -> dict[str, str]:
    """The labels every provider records (so `wegent gc` reaps local leftovers as it reaps containers): the spec's,
    with `task`, `namespace` and `owner` as `wegent.task`, ..., and the owning process."""
    labels = {LABEL_TASK: "", LABEL_NAMESPACE: "default", LABEL_OWNER: owner_label()}
    for key, value in spec.labels.items():
        labels[f"wegent.{key}" if key in ("task", "namespace", "owner") else key] = value
    labels[LABEL_PRESERVE] = "true" if spec.preserve else "false"
    return labels


def _write(host: Path, data: bytes, mode: int) -> None:
    host.parent.mkdir(parents=True, exist_ok=True)
    host.write_bytes(data)
    host.chmod(mode)


def _copy_tree(source: Path, target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    shutil.copytree(source, target, symlinks=True, dirs_exist_ok=True)
