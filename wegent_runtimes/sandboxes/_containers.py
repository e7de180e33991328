"""What the Docker and Podman sandboxes share: one hardened container per sandbox, commands run by exec.

The engine-specific part is small (`EngineApi`: create, start, inspect, remove, list, archives, exec create and inspect,
all blocking SDK calls run in a worker thread). The rest lives here:

* exec output is read from the engine's socket directly (an upgraded HTTP connection, the multiplexed stdout/stderr
  frame format both engines speak), with anyio, so output streams as it comes, stdin can be sent and closed, and a
  cancelled caller stops reading at once;
* a command goes through the sandbox's runner (one long-lived exec, see _runner.py) when it is free, else by an exec
  of its own (concurrent commands, commands with stdin);
* every command runs under `sh -c 'echo $$ > /tmp/.wegent-exec-ID; "$@"; ...'`: an exec'd process is a session leader
  in both engines (runc starts it with setsid, and the runner with `setsid`), so that shell's pid is the process group
  of the command and all its children, and timeout or cancellation kills the whole group with a second exec
  (`kill -KILL -PGID`);
* while a command runs, the container is watched: killed or removed from outside, the exec raises `SandboxGone`;
* containers carry labels (`wegent.task`, `wegent.namespace`, `wegent.owner`, ...) by which `reap` finds leftovers.
"""

from __future__ import annotations

import abc
import codecs
import io
import json
import math
import os
import posixpath
import shlex
import shutil
import tarfile
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlparse

import anyio
import anyio.abc
from anyio.streams.buffered import BufferedByteReceiveStream

from wegent_core import ExecResult, SandboxError, SandboxGone, SandboxSpec
from wegent_core._sandbox import (
    ISOLATION,
    LABEL_NAMESPACE,
    LABEL_OWNER,
    LABEL_PRESERVE,
    LABEL_TASK,
    LIMITS,
    MOUNTS,
    NETWORK_POLICY,
    PRESERVE,
    READ_ONLY_ROOT,
    WORKSPACE,
    OnOutput,
    command_line,
    owner_alive,
    owner_label,
    workspace_path,
)

from ._images import DEFAULT_IMAGE
from ._runner import SCRIPT as RUNNER_SCRIPT
from ._runner import Runner, RunnerLost, runner_command

LABEL_SANDBOX = "wegent.sandbox"  # the provider: docker or podman
LABEL_TEMP_WORKSPACE = "wegent.temp-workspace"  # the host directory the provider made, removed with the container
TEMP_PREFIX = "wegent-workspace-"
CONTAINER_CAPABILITIES = frozenset({ISOLATION, NETWORK_POLICY, LIMITS, READ_ONLY_ROOT, MOUNTS, PRESERVE})
KEEPALIVE = ["sleep", "infinity"]
TMPFS_MB = 512
WATCH_INTERVAL = 0.5  # seconds between looks at the container while a command runs (SandboxGone within ~1 s)
KILL_TIMEOUT = 3.0

Labels = Mapping[str, str]


# --- owners ---------------------------------------------------------------------------------------------------------


def dead_owner(labels: Labels) -> bool:
    """True for a sandbox whose owner process is gone on this host and that is not preserved: a leftover."""
    if labels.get(LABEL_PRESERVE) == "true":
        return False
    return owner_alive(labels.get(LABEL_OWNER, "")) is False


def container_labels(spec: SandboxSpec, provider: str, temp_workspace: str | None) -> dict[str, str]:
    """The labels of a sandbox's container: the spec's (`task`, `namespace`, `owner` get the `wegent.` prefix) and
    wegent's own."""
    labels = {LABEL_TASK: "", LABEL_NAMESPACE: "default", LABEL_OWNER: owner_label()}
    for key, value in spec.labels.items():
        labels[f"wegent.{key}" if key in ("task", "namespace", "owner") else key] = value
    labels[LABEL_SANDBOX] = provider
    labels[LABEL_PRESERVE] = "true" if spec.preserve else "false"
    if temp_workspace:
        labels[LABEL_TEMP_WORKSPACE] = temp_workspace
    return labels


# --- the engine interface -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ContainerConfig:
    """A hardened container, in engine-neutral terms."""

    image: str
    labels: dict[str, str]
    env: dict[str, str]
    user: str | None
    network: Literal["none", "host"]
    binds: tuple[tuple[str, str, bool], ...]  # (host source, target, read only)
    memory_bytes: int | None
    nano_cpus: int | None
    pids: int | None
    command: list[str] = field(default_factory=lambda: list(KEEPALIVE))
    workdir: str = WORKSPACE
    tmpfs: dict[str, str] = field(default_factory=lambda: {"/tmp": f"rw,exec,nosuid,nodev,size={TMPFS_MB}m,mode=1777"})


@dataclass(frozen=True, slots=True)
class State:
    running: bool
    status: str  # created, running, exited, ... ; "removed" when the container is gone
    exit_code: int | None = None
    oom_killed: bool = False
    error: str = ""


class EngineApi(abc.ABC):
    """The blocking calls a container sandbox needs from an engine's SDK. `url` is the engine's socket."""

    name: str
    url: str
    globs_paths = False  # the archive API expands glob patterns in paths

    @abc.abstractmethod
    def image_user(self, image: str) -> str:
        """The user an image runs as ('' for root); SandboxError if the image is not there."""

    @abc.abstractmethod
    def create(self, config: ContainerConfig) -> str: ...

    @abc.abstractmethod
    def start(self, container: str) -> None: ...

    def state(self, container: str) -> State:
        """Whether the container runs, and how it ended if it does not (both engines inspect alike)."""
        try:
            state = self.inspect(container)["State"]
        except Exception as exc:
            if not_found(exc):
                return State(False, "removed")
            raise
        running = bool(state.get("Running")) and not state.get("Paused")
        return State(
            running,
            state.get("Status", ""),
            state.get("ExitCode"),
            bool(state.get("OOMKilled")),
            state.get("Error", ""),
        )

    @abc.abstractmethod
    def inspect(self, container: str) -> dict[str, Any]:
        """The engine's own inspection of the container (for tests and diagnostics)."""

    @abc.abstractmethod
    def remove(self, container: str) -> None:
        """Kill and remove the container; no error if it is gone already."""

    @abc.abstractmethod
    def containers(self, label: str) -> list[tuple[str, dict[str, str]]]:
        """(id, labels) of every container, running or not, that has `label`."""

    @abc.abstractmethod
    def put_archive(self, container: str, path: str, data: bytes) -> None: ...

    @abc.abstractmethod
    def get_archive(self, container: str, path: str) -> bytes: ...

    @abc.abstractmethod
    def exec_create(
        self, container: str, argv: list[str], env: Mapping[str, str], workdir: str, stdin: bool
    ) -> str: ...

    @abc.abstractmethod
    def exec_start_path(self, exec_id: str) -> str:
        """The HTTP path that starts an exec and upgrades the connection to its output stream."""

    @abc.abstractmethod
    def exec_state(self, exec_id: str) -> tuple[bool, int | None]:
        """(running, exit code) of an exec."""

    @abc.abstractmethod
    def close(self) -> None: ...


def connect(engine: str, base_url: str | None = None) -> Any:
    """A docker or podman SDK client."""
    if engine == "docker":
        import docker

        return docker.DockerClient(base_url=base_url) if base_url else docker.from_env()
    import podman

    return podman.PodmanClient(base_url=base_url or default_podman_url())


def default_podman_url() -> str:
    if os.environ.get("CONTAINER_HOST"):
        return os.environ["CONTAINER_HOST"]
    if os.geteuid() == 0:
        return "unix:///run/podman/podman.sock"
    return f"unix://{os.environ.get('XDG_RUNTIME_DIR', f'/run/user/{os.getuid()}')}/podman/podman.sock"


def not_found(exc: BaseException) -> bool:
    """An SDK error that means "no such container/exec/image" (docker.errors.NotFound, podman's NotFound...)."""
    status = getattr(getattr(exc, "response", None), "status_code", None) or getattr(exc, "status_code", None)
    return status == 404 or type(exc).__name__ in ("NotFound", "ImageNotFound")


# --- exec over the engine's socket ----------------------------------------------------------------------------------


async def open_exec_stream(url: str, path: str) -> anyio.abc.SocketStream:
    """Start an exec: POST its start path with an upgrade, as the engines' CLIs do; the connection then carries the
    multiplexed output (and takes stdin)."""
    parsed = urlparse(url)
    if parsed.scheme in ("unix", "http+unix"):
        stream: anyio.abc.SocketStream = await anyio.connect_unix(parsed.path)
    elif parsed.scheme in ("tcp", "http"):
        stream = await anyio.connect_tcp(parsed.hostname or "localhost", parsed.port or 2375)
    else:
        raise SandboxError(f"cannot stream exec output over {url}: use a unix:// or tcp:// engine URL")
    body = json.dumps({"Detach": False, "Tty": False}).encode()
    request = (
        f"POST {path} HTTP/1.1\r\nHost: engine\r\nContent-Type: application/json\r\nConnection: Upgrade\r\n"
        f"Upgrade: tcp\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    await stream.send(request + body)
    return stream


async def read_head(reader: BufferedByteReceiveStream) -> tuple[int, str]:
    head = await reader.receive_until(b"\r\n\r\n", 65536)
    status_line = head.split(b"\r\n", 1)[0].decode("latin-1")
    try:
        status = int(status_line.split()[1])
    except (IndexError, ValueError):
        raise SandboxError(f"unexpected answer to an exec start: {status_line!r}") from None
    return status, head.decode("latin-1")


async def read_frames(reader: BufferedByteReceiveStream, deliver: Callable[[int, bytes], None]) -> None:
    """Read `[kind, 0, 0, 0, size(4, big endian)] payload` frames until the engine closes the stream."""
    while True:
        try:
            header = await reader.receive_exactly(8)
        except (anyio.EndOfStream, anyio.IncompleteRead):
            return
        size = int.from_bytes(header[4:8], "big")
        try:
            payload = await reader.receive_exactly(size) if size else b""
        except (anyio.EndOfStream, anyio.IncompleteRead):
            return
        deliver(header[0], payload)


class _Output:
    """Decodes stdout and stderr incrementally, passes text to `on_output` as it comes and keeps it all."""

    def __init__(self, on_output: OnOutput | None) -> None:
        self.on_output = on_output
        self.parts: dict[str, list[str]] = {"stdout": [], "stderr": []}
        self.decoders = {name: codecs.getincrementaldecoder("utf-8")("replace") for name in self.parts}

    def deliver(self, kind: int, payload: bytes) -> None:
        name: Literal["stdout", "stderr"] = "stderr" if kind == 2 else "stdout"
        self._emit(name, self.decoders[name].decode(payload))

    def finish(self) -> None:
        for name in ("stdout", "stderr"):
            self._emit(name, self.decoders[name].decode(b"", final=True))  # type: ignore[arg-type]

    def _emit(self, name: Literal["stdout", "stderr"], text: str) -> None:
        if text:
            self.parts[name].append(text)
            if self.on_output is not None:
                self.on_output(name, text)

    def text(self, name: str) -> str:
        return "".join(self.parts[name])


# --- the sandbox ------------------------------------------------------------------------------------------------------


class ContainerSandbox:
    """One container: made by `ContainerProvider.create`, destroyed by `close()` unless preserved."""

    def __init__(
        self,
        api: EngineApi,
        container: str,
        spec: SandboxSpec,
        uid: int,
        gid: int,
        temp_workspace: str | None,
        use_runner: bool = True,
    ) -> None:
        self.api = api
        self.id = container
        self.spec = spec
        self.uid = uid
        self.gid = gid
        self.temp_workspace = temp_workspace
        self.closed = False
        self.use_runner = use_runner
        self._runner: Runner | None = None
        self._runner_lock = anyio.Lock()

    def __repr__(self) -> str:
        return f"<{self.api.name} sandbox {self.id[:12]}>"

    async def _call(self, function: Callable[..., Any], *args: Any) -> Any:
        return await anyio.to_thread.run_sync(partial(function, *args))

    # commands

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
        return await self._exec(command, cwd=cwd, env=env, timeout=timeout, stdin=stdin, on_output=on_output)

    async def _exec(
        self,
        command: Sequence[str] | str,
        *,
        cwd: str | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float | None = None,
        stdin: str | bytes | None = None,
        on_output: OnOutput | None = None,
    ) -> ExecResult:
        self._check_open()
        start = time.monotonic()
        pidfile = f"/tmp/.wegent-exec-{uuid.uuid4().hex[:16]}"
        wrapper = f'echo $$ > {pidfile}; "$@"; status=$?; rm -f {pidfile}; exit $status'
        argv = ["/bin/sh", "-c", wrapper, "sh", *command_line(command)]
        workdir = workspace_path(cwd or ".", outside_workspace=True)
        if stdin is None:
            done = await self._exec_by_runner(argv, env or {}, workdir, pidfile, timeout, on_output)
            if done is not None:
                exit_code, stdout, stderr, timed_out = done
                return ExecResult(exit_code, stdout, stderr, timed_out, time.monotonic() - start)
        exec_id = await self._exec_create(argv, env or {}, workdir, stdin is not None)
        output = _Output(on_output)
        gone: list[str] = []
        finished = timed_out = False
        async with anyio.create_task_group() as group:
            group.start_soon(self._watch, gone, group.cancel_scope)
            try:
                with anyio.move_on_after(math.inf if timeout is None else timeout) as deadline:
                    await self._run(exec_id, stdin, output)
                    finished = True
                timed_out = deadline.cancelled_caught
            finally:
                if not finished and not gone:  # timed out, or the caller was cancelled: kill the command's group
                    with anyio.CancelScope(shield=True):
                        await self._kill(pidfile)
                group.cancel_scope.cancel()
        output.finish()
        if gone:
            raise SandboxGone(gone[0])
        exit_code = await self._exit_code(exec_id, timed_out)
        return ExecResult(exit_code, output.text("stdout"), output.text("stderr"), timed_out, time.monotonic() - start)

    async def _exec_by_runner(
        self,
        argv: list[str],
        env: Mapping[str, str],
        workdir: str,
        pidfile: str,
        timeout: float | None,
        on_output: OnOutput | None,
    ) -> tuple[int, str, str, bool] | None:
        """Run a command through the sandbox's runner (see _runner.py): (exit code, stdout, stderr, timed out), or
        None when the runner cannot take it (busy with another command, not startable, or an env name the shell
        cannot assign), for a plain exec to run it."""
        line = runner_command(argv, env, workdir)
        if line is None or not self.use_runner:
            return None
        try:
            self._runner_lock.acquire_nowait()
        except anyio.WouldBlock:
            return None
        try:
            runner = await self._ready_runner()
            if runner is None:
                return None
            output = _Output(on_output)
            exit_code, timed_out = await self._run_by_runner(runner, line, pidfile, timeout, output)
            output.finish()
            return exit_code, output.text("stdout"), output.text("stderr"), timed_out
        finally:
            self._runner_lock.release()

    async def _ready_runner(self) -> Runner | None:
        """The running runner, started at the first command (a plain exec of /bin/sh with stdin); None if it does
        not start, and then the sandbox stops trying."""
        if self._runner is not None:
            return self._runner
        try:
            exec_id = await self._call(self.api.exec_create, self.id, ["/bin/sh", "-c", RUNNER_SCRIPT], {}, "/", True)
            stream = await open_exec_stream(self.api.url, self.api.exec_start_path(exec_id))
        except Exception:
            self.use_runner = False
            return None
        reader = BufferedByteReceiveStream(stream)
        runner = Runner(stream, reader)
        started = False
        try:
            with anyio.move_on_after(KILL_TIMEOUT):
                started = (await read_head(reader))[0] in (101, 200) and await runner.ready()
        except (SandboxError, anyio.EndOfStream, anyio.IncompleteRead, anyio.BrokenResourceError):
            pass
        finally:
            if not started:  # also when cancelled: the stream must not outlive the attempt
                with anyio.CancelScope(shield=True):
                    await runner.aclose()
        if not started:
            self.use_runner = False
            return None
        self._runner = runner
        return runner

    async def _run_by_runner(
        self, runner: Runner, line: str, pidfile: str, timeout: float | None, output: _Output
    ) -> tuple[int, bool]:
        """The command's (exit code, timed out), under the same watch, timeout and kill as a plain exec. The runner
        is kept only when it answered the command in full."""
        gone: list[str] = []
        status: int | None = None
        timed_out = killed = False
        async with anyio.create_task_group() as group:
            group.start_soon(self._watch, gone, group.cancel_scope)
            try:
                await runner.send(line)
                with anyio.move_on_after(math.inf if timeout is None else timeout) as deadline:
                    status = await runner.result(output.deliver)
                if deadline.cancelled_caught:  # kill the command's group, then read on to its end
                    timed_out = True
                    with anyio.CancelScope(shield=True):
                        await self._kill(pidfile)
                    killed = True
                    with anyio.move_on_after(KILL_TIMEOUT):
                        status = await runner.result(output.deliver)
            except RunnerLost:
                pass
            finally:
                if status is None:  # cancelled, timed out without an answer, or the runner died: never reuse it
                    with anyio.CancelScope(shield=True):
                        if not gone and not killed:
                            await self._kill(pidfile)
                        await self._drop_runner()
                group.cancel_scope.cancel()
        if gone:
            raise SandboxGone(gone[0])
        if status is None:  # the runner died under the command (killed from inside, or with the container)
            reason = await self.gone_reason()
            if reason:
                raise SandboxGone(reason)
            output.deliver(
                2,
                b"\nwegent: the command runner died (killed from inside the sandbox?): "
                b"whether the command ran and its exit code are unknown\n",
            )
            return (-1 if timed_out else 255), timed_out
        if status >= 128 and not timed_out:  # killed by a signal: maybe the whole container went
            reason = await self.gone_reason()
            if reason:
                raise SandboxGone(reason)
        return status, timed_out

    async def _drop_runner(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.aclose()  # its stdin ends: the runner exits after its command

    async def _exec_create(self, argv: list[str], env: Mapping[str, str], workdir: str, stdin: bool) -> str:
        try:
            return str(await self._call(self.api.exec_create, self.id, argv, dict(env), workdir, stdin))
        except Exception as exc:
            reason = await self.gone_reason()
            if reason:
                raise SandboxGone(reason) from exc
            raise SandboxError(f"{self}: could not start a command: {exc}") from exc

    async def _run(self, exec_id: str, stdin: str | bytes | None, output: _Output) -> None:
        stream = await open_exec_stream(self.api.url, self.api.exec_start_path(exec_id))
        async with stream:
            reader = BufferedByteReceiveStream(stream)
            status, head = await read_head(reader)
            if status not in (101, 200):
                body = reader.buffer.decode(errors="replace")
                reason = await self.gone_reason()
                if reason:
                    raise SandboxGone(reason)
                raise SandboxError(f"{self}: exec start failed: {head.splitlines()[0]} {body}".strip())
            if stdin is not None:
                await stream.send(stdin.encode() if isinstance(stdin, str) else stdin)
                await stream.send_eof()  # the command sees the end of its input
            await read_frames(reader, output.deliver)

    async def _exit_code(self, exec_id: str, timed_out: bool) -> int:
        """The exec's exit code (the stream can end a moment before the engine records it)."""
        for _ in range(50):
            try:
                running, code = await self._call(self.api.exec_state, exec_id)
            except Exception as exc:
                if not_found(exc):
                    raise SandboxGone(await self.gone_reason() or f"{self}: the command vanished") from exc
                raise
            if not running and code is not None:
                if code >= 128 and not timed_out:  # killed by a signal: maybe the whole container went
                    reason = await self.gone_reason()
                    if reason:
                        raise SandboxGone(reason)
                return int(code)
            await anyio.sleep(0.02)
        reason = await self.gone_reason()
        if reason:
            raise SandboxGone(reason)
        return -1 if timed_out else 255

    async def _watch(self, gone: list[str], scope: anyio.CancelScope) -> None:
        while True:
            await anyio.sleep(WATCH_INTERVAL)
            reason = await self.gone_reason()
            if reason:
                gone.append(reason)
                scope.cancel()
                return

    async def gone_reason(self) -> str | None:
        """Why the container cannot run commands any more, or None while it runs."""
        try:
            state = await self._call(self.api.state, self.id)
        except Exception as exc:
            return f"{self}: the engine does not answer ({exc})"
        if state.running:
            return None
        if state.status == "removed":
            return f"{self}: the container was removed from outside"
        why = "killed by the out-of-memory killer" if state.oom_killed else f"exit code {state.exit_code}"
        extra = f", {state.error}" if state.error else ""
        return f"{self}: the container stopped ({state.status}, {why}{extra}): killed from outside?"

    async def _kill(self, pidfile: str) -> None:
        """Kill the process group of a command (its pid, written by the wrapper, is its group)."""
        script = f'p=$(cat {pidfile} 2>/dev/null) && {{ kill -KILL -- -"$p" 2>/dev/null || kill -KILL "$p"; }}'
        script += f"; rm -f {pidfile}"
        with anyio.move_on_after(KILL_TIMEOUT):
            try:
                exec_id = await self._call(self.api.exec_create, self.id, ["/bin/sh", "-c", script], {}, "/", False)
                stream = await open_exec_stream(self.api.url, self.api.exec_start_path(exec_id))
                async with stream:
                    reader = BufferedByteReceiveStream(stream)
                    await read_head(reader)
                    await read_frames(reader, lambda _kind, _data: None)
            except Exception:  # the container is gone, or the engine is: nothing left to kill
                return

    # files

    async def read_file(self, path: str, *, outside_workspace: bool = False) -> bytes:
        target = workspace_path(path, outside_workspace=outside_workspace)
        if self._by_archive(target):
            data = await self._get_archive(target)
            return _single_file(data, target)
        return await self._read_by_base64(target)  # outside the workspace (a tmpfs, say): read by a command

    async def _read_by_base64(self, target: str) -> bytes:
        import base64

        result = await self._exec(["base64", target])
        if not result.ok:
            raise SandboxError(f"{self}: cannot read {target}: {result.stderr.strip()}")
        return base64.b64decode(result.stdout)

    async def write_file(self, path: str, data: bytes, *, mode: int = 0o644, outside_workspace: bool = False) -> None:
        target = workspace_path(path, outside_workspace=outside_workspace)
        parent, name = posixpath.split(target)
        if self._by_archive(parent):
            await self._ensure_dirs(parent)
            archive = _tar({name: (data, mode)}, self.uid, self.gid)
            await self._put_archive(parent, archive)
            return
        quoted = shlex.quote(target)
        script = f"mkdir -p {shlex.quote(parent)} && cat > {quoted} && chmod {mode:o} {quoted}"
        result = await self._exec(["/bin/sh", "-c", script], stdin=data)
        if not result.ok:
            raise SandboxError(f"{self}: cannot write {target}: {result.stderr.strip()}")

    async def _ensure_dirs(self, directory: str) -> None:
        if directory == WORKSPACE:
            return
        relative = posixpath.relpath(directory, WORKSPACE)
        parts = relative.split("/")
        entries = {"/".join(parts[: index + 1]): None for index in range(len(parts))}
        await self._put_archive(WORKSPACE, _tar(entries, self.uid, self.gid))

    async def copy_in(self, source: Path, target: str = ".") -> None:
        destination = workspace_path(target)
        if not Path(source).is_dir():
            raise SandboxError(f"copy_in: {source} is not a directory")
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as tar:
            for path in sorted(Path(source).rglob("*")):
                info = tar.gettarinfo(str(path), arcname=str(path.relative_to(source)))
                info.uid, info.gid, info.uname, info.gname = self.uid, self.gid, "", ""
                if info.isreg():
                    with path.open("rb") as file:
                        tar.addfile(info, file)
                else:
                    tar.addfile(info)
        await self._ensure_dirs(destination)
        await self._put_archive(destination, buffer.getvalue())

    async def copy_out(self, source: str, target: Path) -> None:
        origin = workspace_path(source)
        data = await self._get_archive(origin + "/.")
        Path(target).mkdir(parents=True, exist_ok=True)
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            for member in tar.getmembers():
                name = posixpath.normpath(member.name)
                parts = name.split("/")
                member.name = "/".join(parts[1:]) if parts[0] == "." else name
                if member.name and member.name not in (".",):
                    tar.extract(member, target, set_attrs=False, filter="data")

    def _by_archive(self, path: str) -> bool:
        """Whether a file is read or written through the engine's archive API: only in the workspace (a bind mount;
        the root is read-only and /tmp a tmpfs the API does not see), and not where the engine would expand a glob
        pattern in the path (Podman does). Otherwise a command in the sandbox does it."""
        in_workspace = path == WORKSPACE or path.startswith(WORKSPACE + "/")
        return in_workspace and not (self.api.globs_paths and any(char in path for char in "*?[\\"))

    async def _put_archive(self, path: str, data: bytes) -> None:
        self._check_open()
        try:
            await self._call(self.api.put_archive, self.id, path, data)
        except Exception as exc:
            raise await self._error(f"cannot write to {path}", exc) from exc

    async def _get_archive(self, path: str) -> bytes:
        self._check_open()
        try:
            return bytes(await self._call(self.api.get_archive, self.id, path))
        except Exception as exc:
            raise await self._error(f"cannot read {path}", exc) from exc

    async def _error(self, what: str, exc: Exception) -> SandboxError:
        reason = await self.gone_reason()
        if reason:
            return SandboxGone(reason)
        if not_found(exc):
            return SandboxError(f"{self}: {what}: no such file or directory")
        return SandboxError(f"{self}: {what}: {exc}")

    def _check_open(self) -> None:
        if self.closed:
            raise SandboxError(f"{self} is closed")

    # lifetime

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        with anyio.CancelScope(shield=True):
            await self._drop_runner()
        if self.spec.preserve:
            return
        await self._call(self.api.remove, self.id)
        if self.temp_workspace:
            await self._call(partial(shutil.rmtree, self.temp_workspace, ignore_errors=True))

    async def __aenter__(self) -> ContainerSandbox:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def _tar(entries: Mapping[str, tuple[bytes, int] | None], uid: int, gid: int) -> bytes:
    """A tarball of files (`(data, mode)`) and directories (None) owned by the sandbox user."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, entry in entries.items():
            info = tarfile.TarInfo(name)
            info.uid, info.gid, info.mtime = uid, gid, int(time.time())
            if entry is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            else:
                info.size, info.mode = len(entry[0]), entry[1]
                tar.addfile(info, io.BytesIO(entry[0]))
    return buffer.getvalue()


def _single_file(archive: bytes, path: str) -> bytes:
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        member = tar.next()
        if member is None or not member.isreg():
            raise SandboxError(f"{path} is not a regular file")
        extracted = tar.extractfile(member)
        assert extracted is not None
        return extracted.read()


# --- the provider -----------------------------------------------------------------------------------------------------


class ContainerProvider:
    """What DockerProvider and PodmanProvider share. Options: `image` (default image), `base_url` (the engine's
    socket), `reap_at_start` (default true: remove leftovers of dead processes at the first create), `runner`
    (default true: commands go through a persistent runner in the container, see _runner.py; false: one engine exec
    per command)."""

    name: str
    capabilities = CONTAINER_CAPABILITIES

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        self.options = dict(options or {})
        self.default_image = str(self.options.get("image") or DEFAULT_IMAGE)
        self._api: EngineApi | None = None
        self._reaped = not self.options.get("reap_at_start", True)
        self.use_runner = bool(self.options.get("runner", True))
        self._lock = anyio.Lock()

    @abc.abstractmethod
    def _connect(self) -> EngineApi: ...

    async def api(self) -> EngineApi:
        async with self._lock:
            if self._api is None:
                try:
                    self._api = await anyio.to_thread.run_sync(self._connect)
                except SandboxError:
                    raise
                except Exception as exc:
                    raise SandboxError(f"cannot reach the {self.name} engine: {exc}") from exc
            if not self._reaped:
                self._reaped = True
                await self._reap(self._api, lambda labels: not dead_owner(labels))
            return self._api

    async def create(self, spec: SandboxSpec) -> ContainerSandbox:
        api = await self.api()
        image = spec.image or self.default_image
        user = spec.user if spec.user is not None else await anyio.to_thread.run_sync(api.image_user, image)
        temp = None if spec.workspace else tempfile.mkdtemp(prefix=TEMP_PREFIX)
        workspace = spec.workspace or temp
        assert workspace is not None
        config = _config(spec, image, user, workspace, container_labels(spec, self.name, temp))
        try:
            container = await anyio.to_thread.run_sync(api.create, config)
        except Exception as exc:
            if temp:
                shutil.rmtree(temp, ignore_errors=True)
            raise SandboxError(f"{self.name}: cannot create a container of {image}: {exc}") from exc
        try:
            uid, gid = await anyio.to_thread.run_sync(_user_ids, api, container, user)
            await anyio.to_thread.run_sync(_own_workspace, workspace, uid, gid)
            await anyio.to_thread.run_sync(api.start, container)
        except BaseException as exc:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(api.remove, container)
                if temp:
                    shutil.rmtree(temp, ignore_errors=True)
            if isinstance(exc, Exception) and not isinstance(exc, SandboxError):
                raise SandboxError(f"{self.name}: cannot start a container of {image}: {exc}") from exc
            raise
        return ContainerSandbox(api, container, spec, uid, gid, temp, self.use_runner)

    async def reap(self, keep: Callable[[Mapping[str, str]], bool]) -> int:
        return await self._reap(await self.api(), keep)

    async def _reap(self, api: EngineApi, keep: Callable[[Mapping[str, str]], bool]) -> int:
        removed = 0
        for container, labels in await anyio.to_thread.run_sync(api.containers, LABEL_OWNER):
            if labels.get(LABEL_SANDBOX, self.name) != self.name or keep(labels):
                continue
            await anyio.to_thread.run_sync(api.remove, container)
            await anyio.to_thread.run_sync(_remove_temp_workspace, labels.get(LABEL_TEMP_WORKSPACE))
            removed += 1
        return removed

    async def inspect(self, sandbox: ContainerSandbox) -> dict[str, Any]:
        """The engine's inspection of a sandbox's container (what tests check the hardening on)."""
        return dict(await anyio.to_thread.run_sync((await self.api()).inspect, sandbox.id))

    def build_image(
        self,
        base: str = "debian",
        tag: str | None = None,
        *,
        force: bool = False,
        log: Callable[[str], None] | None = None,
    ) -> Any:
        """Build the sandbox image of `base` into this provider's engine (see `_images.build_image`)."""
        from ._images import build_image

        return build_image(self.name, base, tag, force=force, log=log)  # type: ignore[arg-type]

    async def aclose(self) -> None:
        if self._api is not None:
            await anyio.to_thread.run_sync(self._api.close)
            self._api = None


def _config(spec: SandboxSpec, image: str, user: str, workspace: str, labels: dict[str, str]) -> ContainerConfig:
    binds = [(str(Path(workspace).resolve()), WORKSPACE, False)]
    binds += [(mount.source, mount.target, mount.read_only) for mount in spec.mounts]
    for source, _target, _read_only in binds:
        if not Path(source).exists():
            raise SandboxError(f"mount source {source} does not exist")
    env = {"HOME": "/tmp", **spec.env}  # the root filesystem is read-only: a home that tools can write to
    return ContainerConfig(
        image=image,
        labels=labels,
        env=env,
        user=user or None,
        network=spec.network,
        binds=tuple(binds),
        memory_bytes=spec.memory_mb * 1024 * 1024 if spec.memory_mb else None,
        nano_cpus=int(spec.cpus * 1e9) if spec.cpus else None,
        pids=spec.pids,
    )


def _remove_temp_workspace(path: str | None) -> None:
    """Remove a workspace the provider made (never another directory a label might name)."""
    if path and Path(path).parent == Path(tempfile.gettempdir()) and Path(path).name.startswith(TEMP_PREFIX):
        shutil.rmtree(path, ignore_errors=True)


def _user_ids(api: EngineApi, container: str, user: str) -> tuple[int, int]:
    """The numeric uid and gid of the user the sandbox runs as (names are looked up in the image's /etc/passwd)."""
    if not user:
        return 0, 0
    name, _, group = user.partition(":")
    if name.isdigit() and (not group or group.isdigit()):
        return int(name), int(group or name)
    passwd = _single_file(api.get_archive(container, "/etc/passwd"), "/etc/passwd").decode(errors="replace")
    for line in passwd.splitlines():
        fields = line.split(":")
        if len(fields) > 3 and fields[0] == name:
            return int(fields[2]), int(group) if group.isdigit() else int(fields[3])
    raise SandboxError(f"user {name!r} is not in the image's /etc/passwd")


def _own_workspace(workspace: str, uid: int, gid: int) -> None:
    """Hand the workspace to the sandbox user, so a non-root user can write in it. Only root can, and only where the
    engine runs on this host (a rootful engine: container uids are host uids)."""
    if os.geteuid() != 0 or uid == 0:
        return
    root = Path(workspace)
    if root.stat().st_uid == uid:
        return
    for path in [root, *root.rglob("*")]:
        os.lchown(path, uid, gid)
