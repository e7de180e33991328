"""The `ClaudeCode` shell: a coding agent whose loop runs in the engine and whose tools run in the task's sandbox.
See docs/coding.md."""

from ._runtime import run_coding_turn
from ._tools import Workbench, coding_tools
from ._workspace import WorkspaceError

__all__ = ["Workbench", "WorkspaceError", "coding_tools", "run_coding_turn"]
