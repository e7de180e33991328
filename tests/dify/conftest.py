"""The Dify test server with one app per mode, and Teams whose bot answers through a Dify app."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from wegent_core import AsyncWegent, Plugins

from ._server import App, DifyServer

pytestmark = pytest.mark.anyio

KEYS = {  # API key -> app mode; one key is one app, as in Dify
    "app-chat": "chat",
    "app-agent": "agent-chat",
    "app-chatflow": "advanced-chat",
    "app-workflow": "workflow",
    "app-completion": "completion",
}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def apps() -> dict[str, App]:
    """The server's apps; a test may change their scripts before it sends anything."""
    return {key: App(mode=mode, name=f"{mode} app") for key, mode in KEYS.items()}


@pytest.fixture
def dify(apps: dict[str, App]) -> Iterator[DifyServer]:
    with DifyServer(apps) as server:
        yield server


def plugins() -> Plugins:
    """The installed plugins, with the Dify runtime registered if the installed entry points predate it."""
    loaded = Plugins.load()
    if "Dify" not in loaded.runtimes:
        from wegent_runtimes.dify import _plugin

        loaded.register(_plugin, "dify")
    return loaded


def dify_yaml(
    base_url: str,
    key: str,
    *,
    params: Any = None,
    system_prompt: str = "A Dify app.",
    extra_env: dict[str, Any] | None = None,
    limits: dict[str, Any] | None = None,
) -> str:
    """A solo Team `team` whose bot `assistant` answers through the Dify app of `key`, as upstream writes it: a
    Shell labelled external_api and a Model holding only the DIFY_* env."""
    env: dict[str, Any] = {"DIFY_API_KEY": key, "DIFY_BASE_URL": base_url, "DIFY_APP_ID": "app-id-1"}
    if params is not None:
        env["DIFY_PARAMS"] = params
    env.update(extra_env or {})
    team: dict[str, Any] = {"collaborationModel": "solo", "members": [{"botRef": {"name": "assistant"}}]}
    if limits:
        team["limits"] = limits
    docs = [
        {"kind": "Model", "metadata": {"name": "dify-model"}, "spec": {"modelConfig": {"env": env}}},
        {
            "kind": "Shell",
            "metadata": {"name": "dify", "labels": {"type": "external_api"}},
            "spec": {"shellType": "Dify", "supportModel": []},
        },
        {"kind": "Ghost", "metadata": {"name": "assistant"}, "spec": {"systemPrompt": system_prompt}},
        {
            "kind": "Bot",
            "metadata": {"name": "assistant"},
            "spec": {
                "ghostRef": {"name": "assistant"},
                "shellRef": {"name": "dify"},
                "modelRef": {"name": "dify-model"},
            },
        },
        {"kind": "Team", "metadata": {"name": "team"}, "spec": team},
    ]
    return "\n---\n".join(json.dumps({"apiVersion": "agent.wecode.io/v1", **d}) for d in docs) + "\n"


@pytest.fixture
async def wegent() -> AsyncIterator[AsyncWegent]:
    async with AsyncWegent("memory://", plugins=plugins()) as wg:
        yield wg
