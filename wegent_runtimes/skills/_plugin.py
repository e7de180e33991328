"""Registers the skills toolkit."""

from __future__ import annotations

from wegent_core import hookimpl
from wegent_core._hookspecs import Register

from ._toolkit import skills_toolkit


@hookimpl
def register_toolkits(register: Register) -> None:
    register(
        "skills",
        skills_toolkit,
        description="skills: preloaded into the prompt, or loaded on demand with load_skill (with their MCP servers)",
    )
