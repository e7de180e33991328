"""The `ClaudeCode` shell: a coding agent whose loop runs in the engine and whose tools run in the task's sandbox."""
