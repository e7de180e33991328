"""Registers the MCP toolkit: every member gets the tools of its Ghost's MCP servers."""

from __future__ import annotations

from wegent_core import hookimpl
from wegent_core._hookspecs import Register

from ._toolkit import mcp_toolkit


@hookimpl
def register_toolkits(register: Register) -> None:
    register("mcp", mcp_toolkit, description="the tools, prompts and resources of the Ghost's MCP servers")
