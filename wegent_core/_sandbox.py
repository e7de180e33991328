"""Sandboxes: where a coding agent's commands run and its files live.

A sandbox plugin registers a provider with `register_sandboxes` as `factory(options: Mapping[str, Any]) ->
SandboxProvider` (options from the engine's configuration: a socket URL, a pool size, ...). A provider creates
`Sandbox`es from a `SandboxSpec`; a sandbox runs commands (output streamed, exit code, timeout), reads and writes
files, copies directories in and out, and is destroyed by `close()` unless the spec preserves it.

The defaults are closed: no network, no mounts but the workspace, memory, CPU and process limits, a read-only root
filesystem where the sandbox can have one. A spec only opens what it names. `capabilities` says what a provider
enforces at all (the `local` provider isolates nothing, and says so).

Paths inside a sandbox are POSIX paths; a relative path is relative to the workspace. File operations refuse a path
that leaves the workspace (`..`, or an absolute path elsewhere) unless `outside_workspace=True` is passed.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from ._errors import WegentError

WORKSPACE = "/workspace"

# What a provider can enforce (its `capabilities`), so callers and the conformance suite know what to expect.
ISOLATION = "isolation"  # commands cannot see the host's processes and files
NETWORK_POLICY = "network_policy"  # network "none" is enforced
LIMITS = "limits"  # memory, CPU and pid limits are enforced
READ_ONLY_ROOT = "read_only_root"  # everything but the workspace (and /tmp) is read-only
MOUNTS = "mounts"  # declared host mounts are honoured
PRESERVE = "preserve"  # a preserved sandbox outlives close() and can be found again by its labels
CAPABILITIES = frozenset({ISOLATION, NETWORK_POLICY, LIMITS, READ_ONLY_ROOT, MOUNTS, PRESERVE})


# Labels every provider puts on what it makes, so that the reaper and `wegent gc` find leftovers whatever the provider.
LABEL_TASK = "wegent.task"
LABEL_NAMESPACE = "wegent.namespace"
LABEL_OWNER = "wegent.owner"  # pid@host#start: the process that made the sandbox (start time: a reused pid is not it)
LABEL_PRESERVE = "wegent.preserve"  # "true": kept by close() and by the reaper's default rule


class SandboxError(WegentError):
    """A sandbox could not be created, or an operation on it failed for a reason of the sandbox (not of the command:
    a command that fails is an `ExecResult` with its exit code)."""


class SandboxGone(SandboxError):
    """The sandbox disappeared while in use (its container was killed or removed from outside)."""


class Mount(BaseModel):
    model_config = ConfigDict(frozen=True)

    source: str = Field(description="A host path")
    target: str = Field(description="The path inside the sandbox")
    read_only: bool = True


class SandboxSpec(BaseModel):
    """What a sandbox is made with. The defaults are the closed ones."""

    model_config = ConfigDict(frozen=True)

    image: str | None = Field(default=None, description="Container image (the provider's default image if None)")
    workspace: str | None = Field(
        default=None, description="A host directory to use as the workspace (mounted read-write); None: a fresh one"
    )
    env: dict[str, str] = Field(default_factory=dict)
    network: Literal["none", "host"] = "none"
    mounts: tuple[Mount, ...] = ()
    memory_mb: int | None = 1024
    cpus: float | None = 1.0
    pids: int | None = 256
    user: str | None = Field(default=None, description="Run as this user; None: the image's non-root user if any")
    labels: dict[str, str] = Field(default_factory=dict, description="task, namespace, owner, ... (for the reaper)")
    preserve: bool = Field(default=False, description="Keep the sandbox after close() (upstream preserveExecutor)")


@dataclass(frozen=True, slots=True)
class ExecResult:
    exit_code: int
    stdout: str
    stderr: str
    timed_out: bool = False
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out


OnOutput = Callable[[Literal["stdout", "stderr"], str], None]


@runtime_checkable
class Sandbox(Protocol):
    id: str
    spec: SandboxSpec

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
        """Run a command (a list is run as is, a string by `/bin/sh -c`) in `cwd` (default: the workspace). Output is
        given to `on_output` as it comes and returned whole. Past `timeout` seconds the command and its children are
        killed and `timed_out` is set. Cancelling the caller kills the command too."""
        ...

    async def read_file(self, path: str, *, outside_workspace: bool = False) -> bytes: ...

    async def write_file(self, path: str, data: bytes, *, mode: int = 0o644, outside_workspace: bool = False) -> None:
        """Write a file, creating its parent directories."""
        ...

    async def copy_in(self, source: Path, target: str = ".") -> None:
        """Copy a host directory's contents into the sandbox directory `target`."""
        ...

    async def copy_out(self, source: str, target: Path) -> None:
        """Copy a sandbox directory's contents to the host directory `target`."""
        ...

    async def close(self) -> None:
        """Destroy the sandbox (kill what runs in it), unless its spec preserves it. Idempotent."""
        ...


@runtime_checkable
class SandboxProvider(Protocol):
    name: str
    capabilities: frozenset[str]

    async def create(self, spec: SandboxSpec) -> Sandbox: ...

    async def reap(self, keep: Callable[[Mapping[str, str]], bool]) -> int:
        """Destroy leftover sandboxes of this provider (found by the labels wegent puts on them) for which `keep`
        returns False (their task is finished, or the process that made them is gone); how many were destroyed."""
        ...

    # Optional: `async aclose()` (release the provider's connections), and, for providers with images,
    # `build_image(base, tag=None, *, force=False, log=None)` returning what was built (engine, base, tag,
    # hashed_tag, image_id, built, seconds): `wegent image build` and `wegent gc` reach providers only so.


def workspace_path(path: str, *, root: str = WORKSPACE, outside_workspace: bool = False) -> str:
    """The absolute sandbox path of `path` (relative to the workspace `root`), refusing one that leaves the workspace
    (`..`, or an absolute path elsewhere) unless `outside_workspace`."""
    base = PurePosixPath(root)
    raw = PurePosixPath(path)
    parts: list[str] = []
    for part in (raw if raw.is_absolute() else base / raw).parts[1:]:
        if part == "..":
            if parts:
                parts.pop()
        elif part not in ("", "."):
            parts.append(part)
    resolved = PurePosixPath("/", *parts)
    if not outside_workspace and resolved != base and base not in resolved.parents:
        raise SandboxError(f"path {path!r} is outside the workspace {root}")
    return str(resolved)


def command_line(command: Sequence[str] | str) -> list[str]:
    """A command as an argument vector: a string goes through `/bin/sh -c`."""
    return ["/bin/sh", "-c", command] if isinstance(command, str) else list(command)


def _start_ticks(pid: int) -> str | None:
    """The start time of process `pid` (clock ticks since boot), which tells a reused pid from the original."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def owner_label(pid: int | None = None) -> str:
    """The `wegent.owner` label of what this process makes: `pid@host#start`."""
    pid = pid or os.getpid()
    return f"{pid}@{socket.gethostname()}#{_start_ticks(pid) or '?'}"


def owner_alive(owner: str) -> bool | None:
    """Whether the process an owner label names is alive; None when it ran on another host (we cannot tell)."""
    try:
        pid_text, rest = owner.split("@", 1)
        host, _, ticks = rest.partition("#")
        pid = int(pid_text)
    except ValueError:
        return None
    if host != socket.gethostname():
        return None
    now = _start_ticks(pid)
    return now is not None and (ticks in ("", "?") or now == ticks)
