"""A persistent command runner inside a container: one long-lived exec that runs commands sent on its stdin.

Why: every engine exec costs a `runc exec` plus the engine's own work (conmon, its database, events); with Podman that
is about 100 ms for `true`. The runner pays that once per sandbox; a command through it is one write and a few reads
on a stream that is already open.

What stays the same as a plain exec (so the timeout, cancel and gone guarantees hold):

* the command runs in the same container, as the same user, with the same environment, limits and capabilities: the
  runner is just `/bin/sh` started by an ordinary exec;
* every command gets its own session (`setsid`), so its pid is its process group, written to the same pid file as a
  plain exec writes, and timeout or cancel kill the whole group with a second, plain exec;
* its stdout and stderr are FIFOs relayed by `cat`, so the output ends when every process holding them has closed
  them, as an exec stream does; its stdin is /dev/null.

The protocol: the host sends a random nonce line and a one-line shell command; the runner answers, after all the
command's output, `RS nonce status` on stdout and `RS nonce` on stderr (RS is the ASCII record separator). The nonce
lives only in the runner's and the host's memory. Nothing in it is a security boundary: a command could forge its own
result, which it controls anyway. One command at a time goes through a runner; a sandbox runs concurrent commands,
and commands with stdin, by plain execs. A runner that does not start (an image without `setsid` or `mkfifo`), or that
dies, is not used again or is restarted.
"""

from __future__ import annotations

import shlex
import uuid
from collections.abc import Callable, Mapping, Sequence

import anyio
import anyio.abc
from anyio.streams.buffered import BufferedByteReceiveStream

READY = b"wegent-runner-ready\n"
SEPARATOR = b"\x1e"  # starts every marker: output that ends in it is held back a moment, other output never is
SCRIPT = r"""command -v setsid >/dev/null && command -v mkfifo >/dev/null || exit 3
N='
'
o=/tmp/.wegent-runner-$$-out e=/tmp/.wegent-runner-$$-err
printf 'wegent-runner-ready\n'
while IFS= read -r nonce && IFS= read -r cmd; do
  rm -f "$o" "$e"
  if mkfifo -m 600 "$o" "$e"; then
    cat "$o" & a=$!
    cat "$e" >&2 & b=$!
    eval "$cmd" >"$o" 2>"$e" </dev/null &
    wait $!; s=$?
    wait $a $b
    rm -f "$o" "$e"
  else
    s=255
  fi
  printf '\036%s %d\n' "$nonce" "$s"
  printf '\036%s\n' "$nonce" >&2
done
"""


class RunnerLost(Exception):
    """The runner's stream ended before the command's result: the runner (or the container) died."""


def quote(word: str) -> str:
    """A shell word on one line: the runner reads a command per line, so newlines come from its variable N."""
    return shlex.quote(word).replace("\n", "'\"$N\"'")


def runner_command(argv: Sequence[str], env: Mapping[str, str], workdir: str) -> str | None:
    """The runner's one-line command for `argv` in `workdir` with `env`; None when env has a name the shell cannot
    assign (a plain exec runs that one)."""
    if any(not name.isidentifier() or not name.isascii() for name in env):
        return None
    assignments = "".join(f"{name}={quote(value)} " for name, value in env.items())
    words = " ".join(quote(word) for word in argv)
    return f"cd -- {quote(workdir)} || exit 126; {assignments}exec setsid {words}"


class Runner:
    """The host's end of a runner: an exec stream (stdin in, multiplexed stdout/stderr frames out)."""

    def __init__(self, stream: anyio.abc.SocketStream, reader: BufferedByteReceiveStream) -> None:
        self.stream = stream
        self.reader = reader
        self._header: bytes | None = None  # a frame header read before a cancel, whose payload is still to come
        self._pending = {1: b"", 2: b""}
        self._nonce = b""
        self._status: int | None = None
        self._stderr_done = False

    async def ready(self) -> bool:
        """Whether the runner started (it prints READY, or exits at once where the image lacks what it needs)."""
        seen = b""
        try:
            while READY not in seen:
                kind, payload = await self._frame()
                if kind == 1:
                    seen += payload
        except RunnerLost:
            return False
        return True

    async def send(self, command: str) -> None:
        self._nonce = uuid.uuid4().hex.encode()
        self._pending = {1: b"", 2: b""}
        self._status, self._stderr_done = None, False
        try:
            await self.stream.send(self._nonce + b"\n" + command.encode() + b"\n")
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
            raise RunnerLost from None

    async def result(self, deliver: Callable[[int, bytes], None]) -> int:
        """Pass the command's output to `deliver` until both markers came; its exit status. Can be called again
        after a cancel (a timeout): nothing read is lost."""
        while self._status is None or not self._stderr_done:
            kind, payload = await self._frame()
            self._take(1 if kind != 2 else 2, payload, deliver)
        return self._status

    def _take(self, kind: int, payload: bytes, deliver: Callable[[int, bytes], None]) -> None:
        data = self._pending[kind] + payload
        marker = SEPARATOR + self._nonce
        at = data.find(marker)
        if at >= 0:
            if data[:at]:
                deliver(kind, data[:at])
            self._pending[kind] = data[at:]
            self._end(kind, data[at + len(marker) :])
            return
        keep = _partial_marker(data, marker)
        if len(data) > keep:
            deliver(kind, data[: len(data) - keep])
        self._pending[kind] = data[len(data) - keep :]

    def _end(self, kind: int, rest: bytes) -> None:
        """A marker came; it is whole at its newline (stdout's has the status before it)."""
        if b"\n" not in rest:
            return
        if kind == 2:
            self._stderr_done = True
        else:
            self._status = int(rest.split(b"\n", 1)[0].strip() or b"255")

    async def _frame(self) -> tuple[int, bytes]:
        try:
            if self._header is None:
                self._header = await self.reader.receive_exactly(8)
            size = int.from_bytes(self._header[4:8], "big")
            payload = await self.reader.receive_exactly(size) if size else b""
        except (anyio.EndOfStream, anyio.IncompleteRead, anyio.BrokenResourceError, anyio.ClosedResourceError):
            raise RunnerLost from None
        kind, self._header = self._header[0], None
        return kind, payload

    async def aclose(self) -> None:
        await self.stream.aclose()


def _partial_marker(data: bytes, marker: bytes) -> int:
    """How many bytes at the end of `data` could be the start of `marker` (held back until the next frame)."""
    start = data.rfind(SEPARATOR, max(0, len(data) - len(marker) + 1))
    if start < 0 or not marker.startswith(data[start:]):
        return 0
    return len(data) - start
