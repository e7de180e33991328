"""MCP servers as tools of a task's members."""
