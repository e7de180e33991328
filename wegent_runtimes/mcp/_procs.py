"""Reaping what a stdio MCP server leaves behind.

The SDK's stdio client starts the server in a new session and process group, closes its stdin at the end, and kills
the whole group only when the server is still alive after a grace period. A server that exits at once but leaves a
child running (`sh -c 'server & ...'`, a wrapper that forks) is not killed by it. So each server process gets a mark
in its environment (`WEGENT_MCP_SERVER=<id>`, inherited by its children), and when the connection closes, every
process that still carries the mark, or still sits in the server's session, is terminated (SIGTERM, then SIGKILL).
That finds grandchildren whose parent is gone too, which a walk of the process tree would miss.

The same reaping runs as soon as the server process itself exits (it is watched while it is connected): a child
holding the server's stdout open would otherwise keep the SDK from ever seeing the end of the stream, and a call in
flight would wait forever for a server that crashed.

This uses /proc (Linux). Elsewhere only the SDK's own clean-up applies.
"""

from __future__ import annotations

import os
import signal
from contextlib import suppress
from pathlib import Path

import anyio

MARK = "WEGENT_MCP_SERVER"
_PROC = Path("/proc")
_GRACE = 1.0  # seconds between SIGTERM and SIGKILL for the leftovers
_POLL = 0.02
WATCH_EVERY = 0.2  # seconds between two looks at whether a server process still runs


def supported() -> bool:
    return _PROC.joinpath("self", "environ").exists()


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:  # gone meanwhile, or not ours to read
        return b""


def _session(pid: int) -> int | None:
    """The session id of a live process (a zombie has no more to kill and counts as gone)."""
    stat = _read(_PROC / str(pid) / "stat")
    fields = stat[stat.rfind(b")") + 2 :].split()  # after the command name, which may hold spaces
    if len(fields) < 4 or fields[0] == b"Z":
        return None
    return int(fields[3])


def marked(mark: str, session: int | None = None) -> list[int]:
    """Live processes carrying the mark in their environment, or (with `session`) sitting in that session."""
    needle = f"{MARK}={mark}".encode()
    found = []
    for entry in _PROC.iterdir():
        if not entry.name.isdecimal():
            continue
        pid = int(entry.name)
        sid = _session(pid)
        if sid is None or pid == os.getpid():
            continue
        if (session is not None and sid == session) or needle in _read(entry / "environ").split(b"\0"):
            found.append(pid)
    return found


def alive(leader: int) -> bool:
    """Whether the server process (a session leader) still runs; a zombie or a reused pid counts as gone."""
    return _session(leader) == leader


def leader(mark: str) -> int | None:
    """The server process among this process's children: its pid is also its session id."""
    for children in _PROC.glob("self/task/*/children"):
        for pid in _read(children).split():
            if f"{MARK}={mark}".encode() in _read(_PROC / pid.decode() / "environ").split(b"\0"):
                return int(pid)
    return None


def _signal(pids: list[int], sig: signal.Signals) -> None:
    for pid in pids:
        with suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


async def reap(mark: str, session: int | None) -> int:
    """Terminate the processes a server left; how many there were. Safe to call when there are none."""
    if not supported():
        return 0
    left = marked(mark, session)
    if not left:
        return 0
    _signal(left, signal.SIGTERM)
    with anyio.move_on_after(_GRACE):
        while marked(mark, session):
            await anyio.sleep(_POLL)
    _signal(marked(mark, session), signal.SIGKILL)
    return len(left)
