"""The library's exception tree.

WegentError
├── ValidationError      one or more documents are invalid (every problem listed, with file, line, field path)
├── ResolutionError      a reference chain cannot be resolved (every broken chain listed)
├── StoreError
│   ├── NotFoundError    no such resource
│   └── ConflictError    already exists, or the resource version is stale
├── PluginError          a plugin failed to load, or asked-for plugin is missing
└── LimitExceeded        a task hit one of its Team's limits (turns, model calls, tokens, cost, time)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Severity = Literal["error", "warning"]


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with the input, located as precisely as we can."""

    message: str
    source: str | None = None  # file name, or "<string>"
    line: int | None = None  # 1-based
    path: str = ""  # field path, e.g. "spec.members[1].botRef.name"
    severity: Severity = "error"
    kind: str | None = None
    name: str | None = None

    @property
    def location(self) -> str:
        where = self.source or ""
        if self.line is not None:
            where = f"{where}:{self.line}"
        return where

    def __str__(self) -> str:
        parts = [p for p in (self.location, self.path) if p]
        prefix = " ".join(parts)
        message = f"warning: {self.message}" if self.severity == "warning" else self.message
        return f"{prefix}: {message}" if prefix else message


class WegentError(Exception):
    """Base class of every error the library raises on purpose."""


class _ProblemsError(WegentError):
    def __init__(self, problems: list[Problem], summary: str) -> None:
        self.problems = problems
        lines = [summary, *(f"  {p}" for p in problems)]
        super().__init__("\n".join(lines))


class ValidationError(_ProblemsError):
    """Documents failed to load or validate. `problems` lists every one; `loaded` holds what did load."""

    def __init__(self, problems: list[Problem], loaded: list | None = None) -> None:
        self.loaded = loaded if loaded is not None else []
        errors = [p for p in problems if p.severity == "error"]
        noun = "problem" if len(errors) == 1 else "problems"
        super().__init__(problems, f"{len(errors)} {noun} found:")


class ResolutionError(_ProblemsError):
    """A plan could not be built; each problem names the whole reference chain."""

    def __init__(self, problems: list[Problem]) -> None:
        if len(problems) == 1:
            self.problems = problems
            WegentError.__init__(self, str(problems[0]))
        else:
            super().__init__(problems, f"{len(problems)} references could not be resolved:")


class StoreError(WegentError):
    """A store operation failed."""


class NotFoundError(StoreError, LookupError):
    """The resource does not exist."""


class ConflictError(StoreError):
    """The resource already exists, or was changed since it was read (stale resource version)."""


class PluginError(WegentError):
    """A plugin failed to load, or a requested implementation is not registered."""


class LimitExceeded(WegentError):
    """A structural limit of a Team (`spec.limits`) was reached; the task fails with this message."""

    code = "limit"

    def __init__(self, limit: str, message: str) -> None:
        super().__init__(f"limit {limit} reached: {message}")
        self.limit = limit
