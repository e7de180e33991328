"""A connected MCP server's tools, prompts and resources as wegent `Tool`s.

Naming (documented in docs/mcp.md): every tool is `<server>__<tool>`; a server with prompts adds
`<server>__get_prompt`, one with resources or resource templates adds `<server>__read_resource`. Characters that
model APIs refuse in tool names (anything but letters, digits, `_` and `-`) become `_`; a name longer than 64
characters is cut and given a short hash of the full name. Server names are unique within a member's plan, so names
of different servers cannot clash; a clash left within one batch (a server's own tool called `get_prompt`, two names
that differ only in refused characters) is settled first come, first served: servers in the given order, each
server's tools in its order and then the prompt and resource tools, and a later name gets `_2`, `_3`, ...
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from typing import Any

import mcp_types as types
from mcp.shared.exceptions import MCPError

from wegent_core import Tool, ToolContext, ToolError, ToolSpec

from ._client import Server, ServerGone

MAX_NAME = 64  # the longest tool name the model APIs accept
_REFUSED = re.compile(r"[^A-Za-z0-9_-]")
_LISTED = 50  # resources and prompts named in a tool description at most


def _clean(text: str) -> str:
    return _REFUSED.sub("_", text) or "_"


def _fit(name: str, full: str) -> str:
    if len(name) <= MAX_NAME:
        return name
    return f"{name[: MAX_NAME - 9]}_{hashlib.sha256(full.encode()).hexdigest()[:8]}"


def tool_name(server: str, name: str) -> str:
    """The name a model sees for the tool `name` of the server `server`."""
    return _fit(f"{_clean(server)}__{_clean(name)}", f"{server}\0{name}")


def unique(name: str, taken: set[str]) -> str:
    """`name`, or the first of `name_2`, `name_3`, ... not taken yet; recorded as taken."""
    candidate, count = name, 1
    while candidate in taken:
        count += 1
        suffix = f"_{count}"
        candidate = name[: MAX_NAME - len(suffix)] + suffix
    taken.add(candidate)
    return candidate


# --- content as text -------------------------------------------------------------------------------------------------


def _size(data: str) -> int:
    """Bytes encoded by a base64 string."""
    return len(data) * 3 // 4 - data[-2:].count("=")


def render_resource(resource: types.TextResourceContents | types.BlobResourceContents) -> str:
    if isinstance(resource, types.TextResourceContents):
        return resource.text
    return f"[binary resource {resource.uri}: {resource.mime_type or 'unknown type'}, {_size(resource.blob)} bytes]"


def render_block(block: Any) -> str:
    """One content block as text: text as it is; images, audio and binary resources summarised."""
    if isinstance(block, types.TextContent):
        return block.text
    if isinstance(block, types.ImageContent | types.AudioContent):
        return f"[{block.type} {block.mime_type}, {_size(block.data)} bytes]"
    if isinstance(block, types.EmbeddedResource):
        return render_resource(block.resource)
    if isinstance(block, types.ResourceLink):
        return f"[resource {block.name}: {block.uri}]"
    return f"[{getattr(block, 'type', type(block).__name__)} content]"


def render(blocks: Iterable[Any], structured: dict[str, Any] | None = None) -> str:
    text = "\n".join(render_block(block) for block in blocks)
    if not text and structured is not None:
        return json.dumps(structured, ensure_ascii=False)
    return text


# --- the tools ------------------------------------------------------------------------------------------------------


class _ServerTool:
    """Calls on a server, with its failures turned into errors the model hears about."""

    spec: ToolSpec
    server: Server

    async def _request(self, what: str, send: Any) -> Any:
        try:
            return await self.server.request(send)
        except ServerGone as gone:
            raise ToolError(f"MCP server '{self.server.name}' is not available: {gone}") from None
        except MCPError as error:
            raise ToolError(f"MCP server '{self.server.name}' refused {what}: {error.message}") from None
        except TimeoutError:
            limit = self.server.call_timeout
            raise ToolError(f"MCP server '{self.server.name}' did not answer {what} within {limit:g} s") from None

    def __repr__(self) -> str:
        return f"<MCP tool {self.spec.name}>"


class McpTool(_ServerTool):
    """One tool of a server."""

    def __init__(self, server: Server, tool: types.Tool, name: str) -> None:
        self.server, self.remote = server, tool.name
        parameters = {k: v for k, v in (tool.input_schema or {}).items() if k != "$schema"}  # no use to a model
        parameters.setdefault("type", "object")
        parameters.setdefault("properties", {})
        description = tool.description or tool.title or f"The tool {tool.name} of the MCP server {server.name}."
        self.spec = ToolSpec(name=name, description=description, parameters=parameters)

    async def call(self, arguments: dict[str, Any], context: ToolContext) -> str:
        result = await self._request(f"the call of {self.remote}", lambda c: c.call_tool(self.remote, arguments))
        text = render(result.content, result.structured_content)
        if result.is_error:
            raise ToolError(text or f"{self.remote} failed")
        return text


class PromptTool(_ServerTool):
    """`<server>__get_prompt`: one of the server's prompts, filled with arguments, as text."""

    def __init__(self, server: Server, name: str) -> None:
        self.server = server
        lines = [f"Get a prompt of the MCP server {server.name}, filled with its arguments. Prompts:"]
        for prompt in server.prompts[:_LISTED]:
            arguments = ", ".join(a.name + ("*" if a.required else "") for a in prompt.arguments or [])
            lines.append(f"- {prompt.name}({arguments}): {prompt.description or prompt.title or ''}".rstrip(": "))
        if len(server.prompts) > _LISTED:
            lines.append(f"... and {len(server.prompts) - _LISTED} more.")
        lines.append("Arguments marked * are required.")
        parameters = {
            "type": "object",
            "properties": {
                "name": {"type": "string", "enum": [p.name for p in server.prompts]},
                "arguments": {"type": "object", "additionalProperties": {"type": "string"}},
            },
            "required": ["name"],
        }
        self.spec = ToolSpec(name=name, description="\n".join(lines), parameters=parameters)

    async def call(self, arguments: dict[str, Any], context: ToolContext) -> str:
        prompt = arguments.get("name")
        if not isinstance(prompt, str):
            raise ToolError("give the prompt's name")
        values = {
            str(k): v if isinstance(v, str) else json.dumps(v) for k, v in (arguments.get("arguments") or {}).items()
        }
        result = await self._request(f"the prompt {prompt}", lambda c: c.get_prompt(prompt, values))
        lines = [result.description] if result.description else []
        lines += [f"{message.role}: {render_block(message.content)}" for message in result.messages]
        return "\n\n".join(lines)


class ResourceTool(_ServerTool):
    """`<server>__read_resource`: a resource of the server by URI, as text."""

    def __init__(self, server: Server, name: str) -> None:
        self.server = server
        lines = [f"Read a resource of the MCP server {server.name} by its URI."]
        if server.resources:
            lines.append("Resources:")
            for resource in server.resources[:_LISTED]:
                about = resource.description or resource.title or resource.name
                lines.append(f"- {resource.uri}: {about}")
            if len(server.resources) > _LISTED:
                lines.append(f"... and {len(server.resources) - _LISTED} more.")
        if server.templates:
            lines.append("URI templates (fill in the {variables}):")
            lines += [f"- {t.uri_template}: {t.description or t.title or t.name}" for t in server.templates[:_LISTED]]
        parameters = {"type": "object", "properties": {"uri": {"type": "string"}}, "required": ["uri"]}
        self.spec = ToolSpec(name=name, description="\n".join(lines), parameters=parameters)

    async def call(self, arguments: dict[str, Any], context: ToolContext) -> str:
        uri = arguments.get("uri")
        if not isinstance(uri, str) or not uri:
            raise ToolError("give the resource's uri")
        result = await self._request(f"reading {uri}", lambda c: c.read_resource(uri))
        return "\n".join(render_resource(content) for content in result.contents)


def server_tools(servers: Sequence[Server], taken: set[str] | None = None) -> list[Tool]:
    """The tools of connected servers, named as the module docstring says."""
    taken = set() if taken is None else taken
    tools: list[Tool] = []
    for server in servers:
        for remote in server.tools:
            tools.append(McpTool(server, remote, unique(tool_name(server.name, remote.name), taken)))
        if server.prompts:
            tools.append(PromptTool(server, unique(tool_name(server.name, "get_prompt"), taken)))
        if server.resources or server.templates:
            tools.append(ResourceTool(server, unique(tool_name(server.name, "read_resource"), taken)))
    return tools
