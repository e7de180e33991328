"""wegent_runtimes: agent runtimes, model providers, sandboxes and MCP tools (arriving with issues 5 and 6).

Depends on wegent_core only, and registers its features through the `wegent` entry-point group.
"""
