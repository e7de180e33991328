"""Registers the MCP toolkit."""
