"""One MCP server for one task: connected through the official `mcp` SDK (stdio, SSE or streamable HTTP), with a
bounded handshake, and closed (its processes reaped) when the task's session ends.

`serve(plan)` is the context a `TaskSession` enters. It never raises for a server that cannot start: it yields a
`Server` whose `error` says why (with the end of the server's stderr), so the caller can announce it and go on.
Cancellation always propagates.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import IO, Any, TypeVar

import anyio
import httpx2
import mcp_types as types
from mcp import Client, StdioServerParameters
from mcp.client.sse import sse_client
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.exceptions import MCPError

from wegent_core import McpServerPlan
from wegent_core._plan import PLACEHOLDER, expand_env

from . import _procs
from ._placeholders import TEMPLATED, fill_plan

log = logging.getLogger("wegent.mcp")
T = TypeVar("T")

DEFAULT_TIMEOUT = 30.0  # seconds for the handshake and the listings, when the server sets no `timeout`
TIMEOUT_ENV = "WEGENT_MCP_TIMEOUT"  # overrides that default
SSE_READ_TIMEOUT = 300.0  # seconds an HTTP event stream may stay silent
_PAGES = 20  # listing pages read at most (a server whose cursor never ends cannot hold a task)
_STDERR_TAIL = 600  # characters of a failed server's stderr quoted in its notice


def start_timeout(plan: McpServerPlan, environ: Mapping[str, str] | None = None) -> float:
    """The server's `timeout`, else `$WEGENT_MCP_TIMEOUT`, else `DEFAULT_TIMEOUT`."""
    if plan.timeout and plan.timeout > 0:
        return plan.timeout
    try:
        return float((environ if environ is not None else os.environ).get(TIMEOUT_ENV) or DEFAULT_TIMEOUT)
    except ValueError:
        return DEFAULT_TIMEOUT


class ServerGone(Exception):
    """The connection to the server is closed: the server exited or crashed."""


@dataclass
class Server:
    """A server as a task sees it: what it offers, or why it is not available."""

    name: str
    timeout: float
    call_timeout: float | None = None
    tools: list[types.Tool] = field(default_factory=list)
    prompts: list[types.Prompt] = field(default_factory=list)
    resources: list[types.Resource] = field(default_factory=list)
    templates: list[types.ResourceTemplate] = field(default_factory=list)
    error: str | None = None  # set when the server could not start
    gone: str | None = None  # set when the connection closed after the start
    started_in: float = 0.0
    client: Client | None = None
    _secrets: list[str] = field(default_factory=list)
    _stderr: IO[bytes] | None = None
    _reap: Callable[[], Awaitable[int]] | None = None

    async def request(self, send: Callable[[Client], Awaitable[T]]) -> T:
        """Send one request; a closed connection becomes `ServerGone` (and the server's processes are reaped)."""
        if self.gone is not None or self.client is None:
            raise ServerGone(self.gone or self.error or "not connected")
        try:
            if self.call_timeout is None:
                return await send(self.client)
            with anyio.fail_after(self.call_timeout):
                return await send(self.client)
        except MCPError as error:
            if error.code != types.CONNECTION_CLOSED:
                raise
            self.gone = f"the connection closed{self.stderr_tail()}"
            if self._reap is not None:
                with anyio.CancelScope(shield=True):
                    await self._reap()
            raise ServerGone(self.gone) from None

    def scrub(self, text: str) -> str:
        """The text without the secret values of this server's configuration."""
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def stderr_tail(self) -> str:
        """The end of what a stdio server wrote to its stderr, for a notice or an error."""
        if self._stderr is None or self._stderr.closed:
            return ""
        fd = self._stderr.fileno()
        size = os.fstat(fd).st_size
        raw = os.pread(fd, _STDERR_TAIL * 4, max(0, size - _STDERR_TAIL * 4))
        tail = raw.decode("utf-8", "replace")[-_STDERR_TAIL:].strip()
        return f"; its stderr ends with: {self.scrub(tail)}" if tail else ""


def _client_info() -> types.Implementation:
    try:
        return types.Implementation(name="wegent", version=version("wegent"))
    except PackageNotFoundError:
        return types.Implementation(name="wegent", version="0")


def _secret_values(plan: McpServerPlan, expanded: McpServerPlan) -> list[str]:
    """Values not to repeat in notices and logs: the env and headers, and whatever `${ENV}` put anywhere."""
    named = {name for text in (plan.command or "", plan.url or "", *plan.args) for name in PLACEHOLDER.findall(text)}
    values = [*expanded.env.values(), *expanded.headers.values(), *(os.environ.get(n, "") for n in named)]
    return sorted({v for v in values if len(v) >= 4}, key=len, reverse=True)


def _expand(plan: McpServerPlan) -> McpServerPlan:
    """`${ENV}` placeholders filled from the environment, at start time (the plan keeps them as written)."""
    return plan.model_copy(update=expand_env({k: getattr(plan, k) for k in TEMPLATED}, os.environ))


def _cause(error: BaseException) -> BaseException:
    """The first real error inside exception groups."""
    while isinstance(error, BaseExceptionGroup) and error.exceptions:
        error = error.exceptions[0]
    return error


def _command(command: str) -> str:
    """A bare command name found on PATH, else next to this Python (a server installed into the same virtual
    environment as wegent runs even when that environment is not activated)."""
    if not command or os.sep in command or shutil.which(command):
        return command
    beside = Path(sys.executable).parent / command
    return str(beside) if shutil.which(str(beside)) else command


@asynccontextmanager
async def _stdio(plan: McpServerPlan, stderr: IO[bytes], server: Server) -> AsyncIterator[Any]:
    """The SDK's stdio transport, with the server's processes marked, and whatever survives it reaped: when the
    connection closes, and as soon as the server process exits (see `_procs`)."""
    mark = uuid.uuid4().hex
    command = _command(plan.command or "")
    params = StdioServerParameters(command=command, args=plan.args, env={**plan.env, _procs.MARK: mark})
    session: int | None = None

    async def reap() -> int:
        return await _procs.reap(mark, session)

    async def watch(leader: int) -> None:
        while _procs.alive(leader):
            await anyio.sleep(_procs.WATCH_EVERY)
        with anyio.CancelScope(shield=True):
            await reap()  # a child holding the server's stdout dies too: the SDK then sees the stream end

    server._reap = reap
    try:
        async with stdio_client(params, errlog=stderr) as streams:  # type: ignore[arg-type]
            session = _procs.leader(mark) if _procs.supported() else None
            async with anyio.create_task_group() as watching:
                if session is not None:
                    watching.start_soon(watch, session)
                try:
                    yield streams
                finally:
                    watching.cancel_scope.cancel()
    finally:
        with anyio.CancelScope(shield=True):
            left = await reap()
        if left:
            log.info("MCP server %s: reaped %d leftover process(es)", plan.name, left)


async def _transport(plan: McpServerPlan, stack: AsyncExitStack, server: Server, stderr: IO[bytes]) -> Any:
    if plan.type == "stdio":
        return _stdio(plan, stderr, server)
    headers = dict(plan.headers)
    if plan.type == "sse":
        return sse_client(plan.url or "", headers=headers, timeout=server.timeout, sse_read_timeout=SSE_READ_TIMEOUT)
    http = create_mcp_http_client(headers=headers, timeout=httpx2.Timeout(server.timeout, read=SSE_READ_TIMEOUT))
    await stack.enter_async_context(http)
    return streamable_http_client(plan.url or "", http_client=http)


async def _pages(fetch: Callable[[str | None], Awaitable[Any]], attribute: str) -> list[Any]:
    items: list[Any] = []
    cursor: str | None = None
    for _ in range(_PAGES):
        page = await fetch(cursor)
        items += getattr(page, attribute)
        cursor = page.next_cursor
        if not cursor:
            break
    return items


async def _list(client: Client, server: Server) -> None:
    capabilities = client.server_capabilities
    if capabilities.tools is not None:
        server.tools = await _pages(lambda c: client.list_tools(cursor=c), "tools")
    if capabilities.prompts is not None:
        server.prompts = await _pages(lambda c: client.list_prompts(cursor=c), "prompts")
    if capabilities.resources is not None:
        server.resources = await _pages(lambda c: client.list_resources(cursor=c), "resources")
        try:
            server.templates = await _pages(lambda c: client.list_resource_templates(cursor=c), "resource_templates")
        except MCPError:  # templates are optional even when resources are offered
            server.templates = []


async def _start(plan: McpServerPlan, stack: AsyncExitStack, server: Server, stderr: IO[bytes]) -> None:
    transport = await _transport(plan, stack, server, stderr)
    client = Client(transport, client_info=_client_info())
    await stack.enter_async_context(client)
    await _list(client, server)
    server.client = client


@asynccontextmanager
async def serve(plan: McpServerPlan, placeholders: Mapping[str, Any]) -> AsyncIterator[Server]:
    """Start and hold one server; see the module docstring. `${ENV}` placeholders are expanded before `${{path}}`
    ones are filled, so a value a placeholder brings in (a name from a resource) cannot pull in the environment."""
    expanded = fill_plan(_expand(plan), placeholders)
    server = Server(name=plan.name, timeout=start_timeout(plan), call_timeout=plan.timeout or None)
    server._secrets = _secret_values(plan, expanded)
    with tempfile.TemporaryFile() as stderr:  # the SDK hands it to the process: any file with a descriptor
        server._stderr = stderr
        began = anyio.current_time()
        # The handshake's deadline is a scope around the connection's whole life: the SDK's transports open task
        # groups that must close inside any scope they were opened in. Once started, the deadline is lifted.
        with anyio.CancelScope(deadline=began + server.timeout) as limit:
            async with AsyncExitStack() as stack:
                try:
                    await _start(expanded, stack, server, stderr)
                except Exception as error:  # the server is unavailable, never the task broken; cancellation passes
                    await stack.aclose()  # stop what did start now, not at the end of the task
                    server.error = _describe(_cause(error), server)
                else:
                    limit.deadline = math.inf
                    server.started_in = anyio.current_time() - began
                    log.info(
                        "MCP server %s started in %.2f s (%d tools)", plan.name, server.started_in, len(server.tools)
                    )
                    try:
                        yield server
                    finally:
                        server.gone, server.client = server.gone or "the task's session closed", None
        if limit.cancelled_caught:
            server.error = _describe(TimeoutError(), server)
        if server.error is not None:
            yield server  # not started: nothing to hold


def _describe(error: BaseException, server: Server) -> str:
    if isinstance(error, TimeoutError):
        reason = f"no answer to the handshake within {server.timeout:g} s"
    elif isinstance(error, FileNotFoundError):
        reason = f"command not found: {error.filename or error}"
    elif isinstance(error, MCPError) and error.code == types.CONNECTION_CLOSED:
        reason = "the connection closed during the handshake"
    elif isinstance(error, MCPError):
        reason = f"the server answered with an error: {error.message}"
    else:
        reason = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
    return server.scrub(reason) + server.stderr_tail()
