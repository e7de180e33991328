"""A task's workspace on the host: the directory a task's sandboxes mount, the repository cloned into it, and the
project's instruction files.

Everything here runs on the host, never in the sandbox: the clone needs the network and the host's git credentials,
and the sandbox may have neither. The directory outlives the sandbox (a paused pipeline gets a new sandbox on the
same workspace), so it is kept under the data directory and found again by the task id.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import anyio

from wegent_core import WegentError, data_dir
from wegent_core._resources import Repository

ROOT_ENV = "WEGENT_WORKSPACES"  # where task workspaces live (default: <data dir>/workspaces)
INSTRUCTIONS_ENV = "CUSTOM_INSTRUCTION_FILES"  # as upstream's executor
DEFAULT_INSTRUCTION_FILES = (".cursorrules", ".windsurfrules")
ALWAYS_READ = ("CLAUDE.md", "AGENTS.md")  # read when present, whatever the setting says
MAX_INSTRUCTION_BYTES = 64 * 1024  # per file: a project's rules, not its documentation
GIT_NAME_ENV, GIT_EMAIL_ENV = "WEGENT_GIT_NAME", "WEGENT_GIT_EMAIL"
CLONE_TIMEOUT = 600.0
_REPO_NAME = re.compile(r"^[A-Za-z0-9._-]+$")


class WorkspaceError(WegentError):
    """The task's workspace could not be prepared (the clone failed, a bad repository name)."""


@dataclass
class Workspace:
    """A prepared workspace: the host directory, and the repository's directory in it (relative; "" for none)."""

    host: Path
    repo: str = ""
    instructions: list[tuple[str, str]] = field(default_factory=list)  # (file name, text)
    refused: list[str] = field(default_factory=list)  # instruction file names refused, with why

    @property
    def cwd(self) -> str:
        """The working directory, relative to the workspace (what the sandbox API takes)."""
        return self.repo or "."


def workspace_root(environ: Mapping[str, str] | None = None) -> Path:
    environ = os.environ if environ is None else environ
    return Path(environ[ROOT_ENV]).expanduser() if environ.get(ROOT_ENV) else data_dir(environ) / "workspaces"


def repo_dir_name(repository: Repository) -> str:
    """The directory the repository is cloned into: the last part of `gitRepo` (owner/repo), else of the URL."""
    name = (repository.git_repo or "").rstrip("/").rpartition("/")[2]
    if not name:
        name = repository.git_url.rstrip("/").rpartition("/")[2].rpartition(":")[2]
    name = name.removesuffix(".git")
    if not _REPO_NAME.match(name) or name in (".", ".."):
        raise WorkspaceError(f"cannot make a directory name from the repository {repository.git_repo!r}")
    return name


async def prepare(
    task_id: int, identity: str, repository: Repository | None, environ: Mapping[str, str] | None = None
) -> Workspace:
    """The task's workspace, made at its first use and found again later. `identity` tells this task from another
    with the same id (an in-memory store numbers its tasks from 1 in every process): a directory left by such a task
    is moved aside, never reused or deleted."""
    environ = os.environ if environ is None else environ
    root = workspace_root(environ)
    host = root / f"task-{task_id}"
    marker = root / f"task-{task_id}.json"
    await anyio.to_thread.run_sync(_claim, host, marker, identity)
    workspace = Workspace(host=host)
    if repository is not None and repository.git_url:
        workspace.repo = repo_dir_name(repository)
        if not (host / workspace.repo / ".git").exists():
            await _clone(repository, host / workspace.repo, environ)
        workspace.instructions, workspace.refused = await anyio.to_thread.run_sync(
            read_instructions, host / workspace.repo, instruction_names(environ)
        )
    return workspace


def _claim(host: Path, marker: Path, identity: str) -> None:
    host.parent.mkdir(parents=True, exist_ok=True)
    if marker.exists():
        try:
            known = json.loads(marker.read_text()).get("identity")
        except (OSError, ValueError):
            known = None
        if known == identity:
            host.mkdir(exist_ok=True)
            return
    if host.exists():  # another task's: keep it for whoever wants it, out of this task's way
        host.rename(host.with_name(f"{host.name}.stale-{time.strftime('%Y%m%d%H%M%S')}-{os.getpid()}"))
    host.mkdir()
    marker.write_text(json.dumps({"identity": identity}))


async def _clone(repository: Repository, target: Path, environ: Mapping[str, str]) -> None:
    command = ["git", "clone", "--quiet"]
    if repository.branch_name:
        command += ["--branch", repository.branch_name]
    partial = target.with_name(f".{target.name}.cloning")
    await _git([*command, "--", repository.git_url, str(partial)], environ, what="clone")
    name = environ.get(GIT_NAME_ENV) or "wegent"
    email = environ.get(GIT_EMAIL_ENV) or "wegent@users.noreply.localhost"
    await _git(["git", "-C", str(partial), "config", "user.name", name], environ, what="configure")
    await _git(["git", "-C", str(partial), "config", "user.email", email], environ, what="configure")
    partial.rename(target)  # a clone cut short is never taken for a finished one


async def _git(command: list[str], environ: Mapping[str, str], *, what: str) -> None:
    env = {**environ, "GIT_TERMINAL_PROMPT": "0"}  # a missing credential fails, it does not wait for a person
    try:
        with anyio.fail_after(CLONE_TIMEOUT):
            result = await anyio.run_process(command, env=env, check=False)
    except TimeoutError:
        raise WorkspaceError(f"git {what} took longer than {CLONE_TIMEOUT:g} s") from None
    except OSError as error:
        raise WorkspaceError(f"git {what} could not run: {error}") from None
    if result.returncode != 0:
        detail = result.stderr.decode(errors="replace").strip()
        raise WorkspaceError(f"git {what} failed: {detail or f'exit code {result.returncode}'}")


def instruction_names(environ: Mapping[str, str]) -> list[str]:
    configured = environ.get(INSTRUCTIONS_ENV)
    names = [n.strip() for n in configured.split(",")] if configured else list(DEFAULT_INSTRUCTION_FILES)
    return list(dict.fromkeys([n for n in names if n] + list(ALWAYS_READ)))


def read_instructions(repo: Path, names: list[str]) -> tuple[list[tuple[str, str]], list[str]]:
    """The instruction files found at the repository's root, and the names refused: absolute paths, `..`, and files
    that lead out of the repository through a symbolic link (the repository is not trusted: it must not make the
    host read its own files into a prompt)."""
    found: list[tuple[str, str]] = []
    refused: list[str] = []
    root = repo.resolve()
    for name in names:
        pure = PurePosixPath(name)
        if pure.is_absolute() or ".." in pure.parts or "\\" in name:
            refused.append(f"{name}: absolute paths and '..' are not allowed")
            continue
        path = (repo / pure).resolve()
        if path != root and root not in path.parents:
            refused.append(f"{name}: leads outside the repository")
            continue
        if not path.is_file():
            continue
        with path.open("rb") as file:
            text = file.read(MAX_INSTRUCTION_BYTES).decode(errors="replace")
        if text.strip():
            found.append((name, text.strip()))
    return found, refused
