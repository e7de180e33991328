"""pytest fixtures for testing teams (the `pytest11` entry point `wegent` loads this module):

* `scripted_model`: a factory, `scripted_model("first reply", {"tool_call": {...}}, ...)` -> `ScriptedModel`.
* `wegent_app`: an `AsyncWegent` on an in-memory SQLite store, entered for the test (async tests, with anyio).
* `wegent_sync`: the same as a blocking `Wegent`, for plain tests.

Replace a Model by name with `models=`: `AsyncWegent("sqlite://", models={"default-model": scripted_model("hi")})`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from typing import Any

import pytest

from wegent_core._api import AsyncWegent, Wegent

from ._scripted import ScriptedModel


@pytest.fixture
def scripted_model() -> Callable[..., ScriptedModel]:
    def make(*replies: str | Mapping[str, Any], name: str = "scripted") -> ScriptedModel:
        return ScriptedModel(replies, name=name)

    return make


@pytest.fixture
async def wegent_app() -> AsyncIterator[AsyncWegent]:
    async with AsyncWegent("sqlite://") as app:
        yield app


@pytest.fixture
def wegent_sync() -> Iterator[Wegent]:
    with Wegent("sqlite://") as app:
        yield app
