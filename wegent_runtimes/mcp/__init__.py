"""MCP servers as tools of a task's members: the Ghost's `mcpServers` (stdio, SSE, streamable HTTP) through the
official `mcp` SDK, started lazily, shared across the turns of a task, and always closed (see docs/mcp.md).

`mcp_tools(session, servers, placeholders=..., emit=...)` is for other toolkits (a skill attaching its servers);
`kit_placeholders(kit)` gives what `${{path}}` placeholders may name for a member. The `mcp` package is imported
only when a server is started, so this package imports without the `mcp` extra.
"""

from ._placeholders import fill_placeholders
from ._toolkit import kit_placeholders, mcp_tools

__all__ = ["fill_placeholders", "kit_placeholders", "mcp_tools"]
