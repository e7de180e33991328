"""The coding tools: run a command, read, write and edit files, list and search them, all in the task's sandbox
through the Sandbox API, and all confined to its workspace.

Paths given to the sandbox are relative to the workspace, so the same tools work on a container (where the workspace
is /workspace) and on the local sandbox (where it is a host directory). A path the model gives is read relative to
the working directory (the cloned repository); an absolute one must lie inside /workspace.

A failure the model can act on (a bad path, an edit that does not match) is a `ToolError`: the model hears it and
the turn goes on. A sandbox that is gone is not: `on_gone` is told, and the runtime fails the turn.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from pathlib import PurePosixPath

from wegent_core import FunctionTool, Sandbox, SandboxError, SandboxGone, Tool, ToolError, workspace_path
from wegent_core._sandbox import WORKSPACE, ExecResult

MAX_OUTPUT = 16_000  # characters of a command's output the model gets: the head and the tail, the middle cut
MAX_READ_LINES = 2_000
MAX_MATCHES = 200
MAX_FILES = 1_000
DEFAULT_TIMEOUT, MAX_TIMEOUT = 120.0, 1_800.0


def truncate(text: str, limit: int = MAX_OUTPUT) -> str:
    """At most about `limit` characters: a quarter from the head, the rest from the tail (errors come last)."""
    if len(text) <= limit:
        return text
    head, tail = limit // 4, limit - limit // 4
    return f"{text[:head]}\n[... {len(text) - head - tail} characters cut ...]\n{text[-tail:]}"


class Workbench:
    """The sandbox and working directory the tools act on, with path rules and error mapping in one place."""

    def __init__(self, sandbox: Sandbox, cwd: str = ".", on_gone: Callable[[SandboxGone], None] | None = None) -> None:
        self.sandbox = sandbox
        self.cwd = cwd  # relative to the workspace
        self.on_gone = on_gone

    def path(self, path: str) -> str:
        """The workspace-relative path of a path the model gave (relative to the working directory, or absolute
        inside /workspace); a path that leaves the workspace is refused."""
        if not path or not path.strip():
            raise ToolError("a path is required")
        given = PurePosixPath(path)
        absolute = given if given.is_absolute() else PurePosixPath(WORKSPACE) / self.cwd / given
        try:
            resolved = workspace_path(str(absolute))
        except SandboxError:
            raise ToolError(f"refused: {path!r} is outside the workspace {WORKSPACE}") from None
        relative = PurePosixPath(resolved).relative_to(WORKSPACE)
        return str(relative) if relative.parts else "."

    def shown(self, relative: str) -> str:
        """A workspace-relative path as the model sees it: relative to the working directory where possible."""
        path, cwd = PurePosixPath(relative), PurePosixPath(self.cwd)
        if self.cwd != "." and (path == cwd or cwd in path.parents):
            return str(path.relative_to(cwd)) if path != cwd else "."
        return f"{WORKSPACE}/{relative}" if relative != "." else WORKSPACE

    def failed(self, error: SandboxError) -> ToolError:
        if isinstance(error, SandboxGone):
            if self.on_gone is not None:
                self.on_gone(error)
            raise error
        return ToolError(str(error))

    async def exec(self, command: list[str] | str, *, cwd: str, timeout: float) -> ExecResult:
        try:
            return await self.sandbox.exec(command, cwd=cwd, timeout=timeout)
        except SandboxError as error:
            raise self.failed(error) from None

    async def read(self, relative: str) -> str:
        try:
            data = await self.sandbox.read_file(relative)
        except FileNotFoundError:
            raise ToolError(f"no such file: {self.shown(relative)}") from None
        except IsADirectoryError:
            raise ToolError(f"{self.shown(relative)} is a directory") from None
        except SandboxError as error:
            raise self.failed(error) from None
        if b"\0" in data[:8192]:
            raise ToolError(f"{self.shown(relative)} is a binary file")
        return data.decode(errors="replace")

    async def write(self, relative: str, text: str) -> None:
        try:
            await self.sandbox.write_file(relative, text.encode())
        except SandboxError as error:
            raise self.failed(error) from None

    async def files(self, relative: str) -> list[str]:
        """Every file under a directory (workspace-relative paths), `.git` directories left out."""
        command = ["find", ".", "-name", ".git", "-prune", "-o", "-type", "f", "-print"]
        result = await self.exec(command, cwd=relative, timeout=DEFAULT_TIMEOUT)
        if not result.ok:
            raise ToolError(f"cannot list {self.shown(relative)}: {result.stderr.strip() or result.exit_code}")
        base = PurePosixPath(relative)
        found = (line.removeprefix("./") for line in result.stdout.splitlines() if line.strip())
        return sorted(str(base / name) if relative != "." else name for name in found)


def coding_tools(bench: Workbench) -> list[Tool]:
    """The six tools, bound to a workbench."""

    async def run_command(command: str, cwd: str = ".", timeout: float = DEFAULT_TIMEOUT) -> str:
        """Run a shell command (/bin/sh -c) in the sandbox, in `cwd` (relative to the working directory), killed
        after `timeout` seconds. Returns the exit code, stdout and stderr (long output is cut in the middle)."""
        if not command.strip():
            raise ToolError("the command is empty")
        limit = min(max(float(timeout), 1.0), MAX_TIMEOUT)
        result = await bench.exec(command, cwd=bench.path(cwd), timeout=limit)
        status = f"timed out after {limit:g} s (killed)" if result.timed_out else f"exit code: {result.exit_code}"
        return "\n".join(
            [status, "--- stdout ---", truncate(result.stdout), "--- stderr ---", truncate(result.stderr)]
        ).rstrip()

    async def read_file(path: str, start_line: int = 1, end_line: int | None = None) -> str:
        """Read a text file, with line numbers; `start_line` and `end_line` (1-based, inclusive) choose a range.
        At most 2000 lines are returned at once."""
        relative = bench.path(path)
        lines = (await bench.read(relative)).splitlines()
        start = max(start_line, 1)
        end = len(lines) if end_line is None else min(end_line, len(lines))
        end = min(end, start + MAX_READ_LINES - 1)
        if start > max(len(lines), 1):
            raise ToolError(f"{bench.shown(relative)} has {len(lines)} lines; start_line {start_line} is past the end")
        body = "\n".join(f"{n:6}\t{lines[n - 1]}" for n in range(start, end + 1))
        more = f"\n[lines {end + 1}-{len(lines)} not shown]" if end < len(lines) else ""
        return f"{bench.shown(relative)} (lines {start}-{end} of {len(lines)}):\n{body}{more}"

    async def write_file(path: str, content: str) -> str:
        """Create or overwrite a file with `content` (parent directories are created)."""
        relative = bench.path(path)
        await bench.write(relative, content)
        return f"wrote {len(content.encode())} bytes to {bench.shown(relative)}"

    async def edit_file(path: str, old_string: str, new_string: str, replace_all: bool = False) -> str:
        """Replace the exact text `old_string` (whitespace included) in a file with `new_string`. `old_string` must
        occur exactly once, unless `replace_all` is set; add surrounding lines to make it unique."""
        relative = bench.path(path)
        if not old_string:
            raise ToolError("old_string is empty; use write_file to create a file")
        if old_string == new_string:
            raise ToolError("old_string and new_string are the same: nothing to change")
        text = await bench.read(relative)
        count = text.count(old_string)
        if count == 0:
            raise ToolError(
                f"old_string was not found in {bench.shown(relative)}; read the file and copy the exact text, "
                "whitespace and indentation included"
            )
        if count > 1 and not replace_all:
            raise ToolError(
                f"old_string occurs {count} times in {bench.shown(relative)}; include more surrounding lines so it "
                "occurs once, or set replace_all to replace every occurrence"
            )
        await bench.write(relative, text.replace(old_string, new_string))
        return f"replaced {count if replace_all else 1} occurrence(s) in {bench.shown(relative)}"

    async def list_files(pattern: str = "*", path: str = ".") -> str:
        """List the files under `path` whose path (relative to `path`) matches the glob `pattern`; `*` also
        crosses directories, and a pattern without `/` matches the file name at any depth (`*.py`, `src/*.ts`).
        `.git` is left out; at most 1000 files."""
        relative = bench.path(path)
        names = [name for name in await bench.files(relative) if _matches(name, relative, pattern)]
        if not names:
            return f"no files match {pattern!r} under {bench.shown(relative)}"
        shown = [bench.shown(name) for name in names[:MAX_FILES]]
        more = f"\n[{len(names) - MAX_FILES} more not shown]" if len(names) > MAX_FILES else ""
        return "\n".join(shown) + more

    async def search_files(pattern: str, path: str = ".", glob: str | None = None, ignore_case: bool = False) -> str:
        """Search file contents for an extended regular expression (grep -E) under `path`; `glob` limits the files
        searched (as in list_files). Returns `file:line:text` lines, at most 200."""
        relative = bench.path(path)
        command = ["grep", "-rnsE" + ("i" if ignore_case else ""), "-e", pattern, "--", "."]
        result = await bench.exec(command, cwd=relative, timeout=DEFAULT_TIMEOUT)
        if result.exit_code > 1 or result.timed_out:
            raise ToolError(f"search failed: {result.stderr.strip() or f'exit code {result.exit_code}'}")
        matches = []
        for line in result.stdout.splitlines():
            name = line.removeprefix("./").partition(":")[0]
            if ".git" in PurePosixPath(name).parts or (glob and not _matches(name, ".", glob)):
                continue
            file = str(PurePosixPath(relative) / name) if relative != "." else name
            matches.append(f"{bench.shown(file)}:{truncate(line.removeprefix('./').partition(':')[2], 500)}")
        if not matches:
            return f"no matches for {pattern!r} under {bench.shown(relative)}"
        more = f"\n[{len(matches) - MAX_MATCHES} more matches not shown]" if len(matches) > MAX_MATCHES else ""
        return "\n".join(matches[:MAX_MATCHES]) + more

    functions = (run_command, read_file, write_file, edit_file, list_files, search_files)
    return [FunctionTool(fn) for fn in functions]


def _matches(name: str, base: str, pattern: str) -> bool:
    """Whether the file `name` (workspace-relative) matches `pattern`, read relative to the directory `base`."""
    path = PurePosixPath(name)
    inner = str(path.relative_to(base)) if base != "." else name
    if "/" not in pattern:
        return fnmatch.fnmatchcase(path.name, pattern)
    return fnmatch.fnmatchcase(inner, pattern.removeprefix("./")) or fnmatch.fnmatchcase(inner, pattern.lstrip("*/"))
