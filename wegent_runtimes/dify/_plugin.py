"""Registers the `Dify` shell type. httpx2 is imported at the first turn, so registering costs nothing."""

from __future__ import annotations

from wegent_core._hookspecs import Register, hookimpl

from ._runtime import run_turn


@hookimpl
def register_runtimes(register: Register) -> None:
    register("Dify", run_turn, description="delegates the turn to a Dify app over its Service API (needs httpx2)")
