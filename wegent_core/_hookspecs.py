"""Every extension point of wegent, declared in one place.

Hooks are registrar style (as in simonw/llm and tox): each receives a `register` callable and calls it once per thing
it provides, so one plugin can provide many things. A plugin is a module or object with functions marked `@hookimpl`,
found through the `wegent` entry-point group; the built-in features register through the same group.

    from wegent_core import hookimpl

    @hookimpl
    def register_stores(register):
        register("redis", RedisStore.from_url, description="Resources in Redis")

`register(name, factory, *, description="")` for every hook. What `factory` must be is given per hook below.
"""

from __future__ import annotations

from typing import Any, Protocol

import pluggy

PROJECT = "wegent"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


class Register(Protocol):
    def __call__(self, name: str, factory: Any, *, description: str = "") -> None: ...


@hookspec
def register_runtimes(register: Register) -> None:
    """Agent runtimes, by the Shell `shellType` they run (`Chat`, `ClaudeCode`, `Dify`, ...)."""


@hookspec
def register_sandboxes(register: Register) -> None:
    """Sandboxes where commands and files live (`local`, `docker`, `podman`, ...)."""


@hookspec
def register_model_providers(register: Register) -> None:
    """Model providers, by the Model protocol they speak (`openai`, `claude`, `gemini`, `local`, ...)."""


@hookspec
def register_stores(register: Register) -> None:
    """Resource stores, by URL scheme. `factory(url: str)` returns an object implementing `ResourceStore`."""


@hookspec
def register_store_schemas(register: Register) -> None:
    """Schema managers of stores whose database has a versioned schema, by the same URL schemes as the stores.
    `factory(url: str)` returns a `StoreSchema`, which `wegent db current` and `wegent db upgrade` use."""


@hookspec
def register_knowledge_backends(register: Register) -> None:
    """Knowledge backends that index documents and answer queries (`chromadb`, ...)."""


@hookspec
def register_tools(register: Register) -> None:
    """Tools that bots can be given, by tool name."""


@hookspec
def register_toolkits(register: Register) -> None:
    """Toolkits that equip every member of a task (MCP servers, skills, knowledge search). `factory(kit: MemberKit)`
    is awaited once per member per run of a task and adds to `kit.tools` and `kit.instructions` (see `_toolkits`)."""
