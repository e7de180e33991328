"""Registers the ClaudeCode runtime."""

from __future__ import annotations

from wegent_core import hookimpl
from wegent_core._hookspecs import Register

from ._runtime import run_coding_turn


@hookimpl
def register_runtimes(register: Register) -> None:
    register(
        "ClaudeCode",
        run_coding_turn,
        description="a coding agent: the agent loop in the engine, its tools in the task's sandbox on its workspace",
    )
