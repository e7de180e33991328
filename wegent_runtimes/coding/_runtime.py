"""The `ClaudeCode` runtime: the engine's agent loop with the coding tools, on the task's workspace and sandbox.

Per run of a task (not per turn), through the task's session: the workspace is prepared on the host (made, cloned,
its instruction files read) and a sandbox is created on it from the Shell's sandbox block; the sandbox is closed when
the run ends (a preserved one outlives that, as its provider keeps it). The loop itself, and so the model's
credentials, stay in the engine: the sandbox is made with no environment of the Model at all.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import anyio

from wegent_core import (
    MemberKit,
    Notice,
    PluginError,
    Sandbox,
    SandboxGone,
    SandboxProvider,
    SandboxSpec,
    Turn,
    TurnResult,
    run_turn,
)
from wegent_core._plan import MemberPlan
from wegent_core._sandbox import WORKSPACE, Mount
from wegent_runtimes.sandboxes import pooled

from . import _cli
from ._tools import Workbench, coding_tools
from ._workspace import Workspace, prepare

SANDBOX_ENV = "WEGENT_SANDBOX"
OPTIONS_ENV = "WEGENT_SANDBOX_OPTIONS"  # a JSON object: the provider's options (engine URL, default image, ...)
DEFAULT_SANDBOX = "docker"
PRESERVE_LABEL = "preserveExecutor"


async def run_coding_turn(turn: Turn) -> TurnResult:
    """One turn of a ClaudeCode member (see the module docstring)."""
    kit = _kit(turn)
    workspace = await kit.session.enter("coding.workspace", lambda: _workspace_context(kit))
    sandbox = await kit.session.enter(_sandbox_key(turn.member), lambda: _sandbox_context(kit, turn.member, workspace))
    if turn.member.shell.sandbox.use_cli:
        if await _cli.available(sandbox):
            return await _cli.run(turn, sandbox, workspace, system_prompt(turn, workspace))
        turn.emit(
            Notice(
                subtask_id=turn.subtask_id,
                member=turn.member.bot,
                code="coding.no_cli",
                message="the Shell asks for the claude command line, but the sandbox's image has none: "
                "the agent loop runs in the engine instead",
            )
        )
    return await _loop(turn, sandbox, workspace)


async def _loop(turn: Turn, sandbox: Sandbox, workspace: Workspace) -> TurnResult:
    """The engine's agent loop with the coding tools. A sandbox that disappears fails the turn at once (the loop
    would otherwise tell the model, which would try again and again)."""
    gone: list[SandboxGone] = []
    with anyio.CancelScope() as scope:

        def on_gone(error: SandboxGone) -> None:
            gone.append(error)
            scope.cancel()

        bench = Workbench(sandbox, workspace.cwd, on_gone)
        coding = dataclasses.replace(
            turn, tools=[*turn.tools, *coding_tools(bench)], system=system_prompt(turn, workspace)
        )
        result = await run_turn(coding)
    if gone:
        raise gone[0]
    return result


def system_prompt(turn: Turn, workspace: Workspace) -> str:
    """The member's prompt, the project's instruction files, and where it works (as upstream appends it)."""
    base = turn.member.system_prompt if turn.system is None else turn.system
    parts = [base] if base.strip() else []
    for name, text in workspace.instructions:
        parts.append(f"## Project instructions ({name})\n{text}")
    cwd = f"{WORKSPACE}/{workspace.repo}" if workspace.repo else WORKSPACE
    where = [
        "You work on the task's workspace in a sandbox, through the tools run_command, read_file, write_file, "
        "edit_file, list_files and search_files. Relative paths are relative to the working directory.",
        f"Current working directory: {cwd}",
    ]
    repository = _kit(turn).plan.workspace
    if repository is not None and repository.git_url:
        where.append(f"Project: {without_credentials(repository.git_url)} (branch {repository.branch_name})")
    parts.append("\n".join(where))
    return "\n\n".join(parts)


def without_credentials(url: str) -> str:
    """A git URL without the user and password it may carry (https://token@host/...)."""
    parts = urlsplit(url)
    if not parts.netloc or "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def _kit(turn: Turn) -> MemberKit:
    if turn.kit is None:
        raise PluginError("the ClaudeCode runtime needs the task's kit (run it through the engine)")
    return turn.kit


def _sandbox_key(member: MemberPlan) -> str:
    # Members on the same Shell share one sandbox; a Shell with other settings gets its own, on the same workspace.
    return f"coding.sandbox/{member.shell.namespace}/{member.shell.name}"


@asynccontextmanager
async def _workspace_context(kit: MemberKit) -> AsyncIterator[Workspace]:
    plan = kit.plan
    repository = plan.workspace
    identity = "|".join(
        [
            plan.team,
            plan.task or "",
            repository.git_url if repository else "",
            repository.branch_name if repository else "",
        ]
    )
    workspace = await prepare(kit.task_id, identity, repository)
    for refusal in workspace.refused:
        kit.emit(Notice(member=kit.member.bot, code="coding.instructions_refused", message=refusal))
    yield workspace  # nothing to undo: the workspace outlives the run


@asynccontextmanager
async def _sandbox_context(kit: MemberKit, member: MemberPlan, workspace: Workspace) -> AsyncIterator[Sandbox]:
    if kit.plugins is None:
        raise PluginError("the ClaudeCode runtime needs the engine's plugins to find a sandbox")
    kind = sandbox_type(member)
    factory = kit.plugins.sandboxes[kind].factory
    if kit.engine_session is not None:  # one provider (and its warm pool, if on) for the engine's life
        provider = await kit.engine_session.enter(f"sandbox-provider:{kind}", lambda: _provider_context(factory))
        sandbox = await provider.create(sandbox_spec(kit, member, workspace))
        try:
            yield sandbox
        finally:
            with anyio.CancelScope(shield=True):  # a cancelled run still removes its container
                await sandbox.close()
        return
    async with _provider_context(factory) as provider:
        sandbox = await provider.create(sandbox_spec(kit, member, workspace))
        try:
            yield sandbox
        finally:
            with anyio.CancelScope(shield=True):
                await sandbox.close()


@asynccontextmanager
async def _provider_context(factory: Callable[[Mapping[str, Any]], SandboxProvider]) -> AsyncIterator[SandboxProvider]:
    """A provider from its factory, behind a warm pool when one is configured (`WEGENT_SANDBOX_POOL`), closed at
    the end."""
    options = provider_options()
    provider = factory(options)
    try:
        async with pooled(provider, options) as ready:
            yield ready
    finally:
        closing = getattr(provider, "aclose", None)  # not in the protocol: a provider holding a connection has it
        if closing is not None:
            with anyio.CancelScope(shield=True):
                await closing()


def sandbox_type(member: MemberPlan, environ: Mapping[str, str] | None = None) -> str:
    environ = os.environ if environ is None else environ
    return member.shell.sandbox.type or environ.get(SANDBOX_ENV) or DEFAULT_SANDBOX


def provider_options(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    environ = os.environ if environ is None else environ
    raw = environ.get(OPTIONS_ENV)
    if not raw:
        return {}
    try:
        options = json.loads(raw)
    except ValueError as error:
        raise PluginError(f"{OPTIONS_ENV} is not JSON: {error}") from None
    if not isinstance(options, dict):
        raise PluginError(f"{OPTIONS_ENV} must be a JSON object")
    return options


def sandbox_spec(kit: MemberKit, member: MemberPlan, workspace: Workspace) -> SandboxSpec:
    """The sandbox of the member's Shell. `env` stays empty: nothing of the Model (its key above all) goes in."""
    settings = member.shell.sandbox
    plan = kit.plan
    namespace = (plan.task or plan.team).partition("/")[0]
    labels: dict[str, Any] = {"task": str(kit.task_id), "namespace": namespace}
    return SandboxSpec(
        image=member.shell.base_image or None,
        workspace=str(workspace.host),
        env={},
        network=settings.network,
        mounts=tuple(Mount(source=m.source, target=m.target, read_only=m.read_only) for m in settings.mounts),
        memory_mb=settings.memory_mb,
        cpus=settings.cpus,
        pids=settings.pids,
        labels=labels,
        preserve=plan.labels.get(PRESERVE_LABEL) == "true",
    )
