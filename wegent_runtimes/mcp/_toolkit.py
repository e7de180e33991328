"""`mcp_tools`: the tools of a set of MCP servers for one task, and the toolkit that gives each member its Ghost's.

Servers start lazily (at the first turn of a member that has them), in parallel, once per task: a server with the
same configuration (after `${{path}}` placeholders are filled) is shared by every member and every turn of the run,
and closed when the run ends. A server that cannot start is announced once with a `Notice` (`mcp.unavailable`) and
left out; the task goes on without its tools.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import anyio

from wegent_core import Event, McpServerPlan, MemberKit, Notice, TaskSession, Tool

from ._placeholders import TEMPLATED, fill_plan

if TYPE_CHECKING:
    from ._client import Server

log = logging.getLogger("wegent.mcp")

_NOTICED = "mcp.noticed"  # session state: the servers already announced as unavailable in this run


def session_key(plan: McpServerPlan) -> str:
    """One connection per name and configuration per task: `plan` with its `${{path}}` placeholders filled, and its
    `${ENV}` ones as written (the digest covers literal secrets too, and is all the key shows of them)."""
    config = {k: getattr(plan, k) for k in (*TEMPLATED, "type", "timeout")}
    digest = hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:16]
    return f"mcp:{plan.name}:{digest}"


def _unavailable(session: TaskSession, key: str, name: str, reason: str, emit: Callable[[Event], None]) -> None:
    noticed: set[str] = session.state.setdefault(_NOTICED, set())
    if key not in noticed:
        noticed.add(key)
        log.warning("task %s: MCP server %s is unavailable: %s", session.task_id, name, reason)
        emit(Notice(code="mcp.unavailable", message=f"MCP server '{name}' is unavailable: {reason}"))


async def mcp_tools(
    session: TaskSession,
    servers: Sequence[McpServerPlan],
    *,
    placeholders: Mapping[str, Any],
    emit: Callable[[Event], None],
) -> list[Tool]:
    """The tools of `servers`, each connected once per task through `session` (see the module docstring)."""
    if not servers:
        return []
    try:
        from ._client import serve
        from ._tools import server_tools
    except ImportError as error:  # the `mcp` extra is not installed
        for plan in servers:
            reason = f"the MCP client is not installed (pip install 'wegent[mcp]'): {error}"
            _unavailable(session, session_key(plan), plan.name, reason, emit)
        return []
    connected: list[Server | None] = [None] * len(servers)

    async def connect(index: int, plan: McpServerPlan) -> None:
        key = session_key(fill_plan(plan, placeholders))
        try:
            server = await session.enter(key, lambda: serve(plan, placeholders))
        except Exception as error:  # the session is closing, or a bug: the server is left out, the task goes on
            log.warning("task %s: MCP server %s failed", session.task_id, plan.name, exc_info=True)
            _unavailable(session, key, plan.name, f"{type(error).__name__}: {error}", emit)
            return
        if server.error is not None:
            _unavailable(session, key, plan.name, server.error, emit)
        else:
            connected[index] = server

    async with anyio.create_task_group() as group:
        for index, plan in enumerate(servers):
            group.start_soon(connect, index, plan)
    return server_tools([server for server in connected if server is not None])


def kit_placeholders(kit: MemberKit) -> dict[str, Any]:
    """What `${{path}}` placeholders may name for a member: `task_id`, `bot.0.name`, `ghost.name`, `team.name`,
    `git_repo`, ..."""
    member, plan = kit.member, kit.plan
    namespace, _, bot = member.bot.rpartition("/")
    ghost_namespace, _, ghost = member.ghost.rpartition("/")
    team_namespace, _, team = plan.team.rpartition("/")
    repository = plan.workspace
    return {
        "task_id": kit.task_id,
        "task": {"id": kit.task_id, "title": plan.title, "labels": dict(plan.labels)},
        "team": {"name": team, "namespace": team_namespace, "collaboration_model": plan.collaboration_model.value},
        "git_repo": repository.git_repo if repository is not None else None,
        "git_url": repository.git_url if repository is not None else None,
        "branch_name": repository.branch_name if repository is not None else None,
        "namespace": namespace,
        "bot": [{"name": bot, "namespace": namespace, "shell_type": member.shell.shell_type, "role": member.role}],
        "ghost": {"name": ghost, "namespace": ghost_namespace},
        "model": {"name": member.model.name, "model_id": member.model.model_id},
        "member": {"index": member.index, "role": member.role, "leader": member.leader, "bot": member.bot},
    }


async def mcp_toolkit(kit: MemberKit) -> None:
    """The toolkit: the member's Ghost servers (a skill's servers come with the skill, through `mcp_tools`)."""
    servers = [server for server in kit.member.mcp_servers if server.source == "ghost"]
    if not servers:
        return

    def emit(event: Event) -> None:
        kit.emit(event if event.member else event.model_copy(update={"member": kit.member.bot}))

    kit.tools += await mcp_tools(kit.session, servers, placeholders=kit_placeholders(kit), emit=emit)
