"""Teams with skills for the skills toolkit's tests, run by the real engine with a scripted model."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest

from wegent_core import AsyncTask, AsyncWegent, Event
from wegent_core.testing import ScriptedModel

API = "agent.wecode.io/v1"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def skill(name: str, prompt: str | None = None, **spec: Any) -> dict[str, Any]:
    body = {"description": f"How to do {name} work.", **spec}
    if prompt is not None:
        body["prompt"] = prompt
    return {"kind": "Skill", "metadata": {"name": name}, "spec": body}


def team(
    members: Sequence[str | dict[str, Any]],
    *,
    ghosts: dict[str, dict[str, Any]] | None = None,
    skills: Sequence[dict[str, Any]] = (),
    mode: str = "solo",
    shell: str = "Chat",
) -> str:
    """YAML for a Team named `team` of bots whose Ghosts get the extra spec `ghosts[bot]` (skills, preload_skills,
    mcpServers), plus the given Skill documents. Every bot runs on the Model `m` (the test gives it)."""
    specs = [m if isinstance(m, dict) else {"bot": m} for m in members]
    docs: list[dict[str, Any]] = [
        {"kind": "Model", "metadata": {"name": "m"}, "spec": {"protocol": "scripted", "modelConfig": {"script": []}}},
        {"kind": "Shell", "metadata": {"name": "shell"}, "spec": {"shellType": shell}},
        *skills,
    ]
    for bot in sorted({m["bot"] for m in specs}):
        ghost = {"systemPrompt": f"You are {bot}.", **(ghosts or {}).get(bot, {})}
        docs.append({"kind": "Ghost", "metadata": {"name": bot}, "spec": ghost})
        refs = {"ghostRef": {"name": bot}, "shellRef": {"name": "shell"}, "modelRef": {"name": "m"}}
        docs.append({"kind": "Bot", "metadata": {"name": bot}, "spec": refs})
    team_members = [{"botRef": {"name": m["bot"]}, **{k: v for k, v in m.items() if k != "bot"}} for m in specs]
    docs.append(
        {"kind": "Team", "metadata": {"name": "team"}, "spec": {"collaborationModel": mode, "members": team_members}}
    )
    return "\n---\n".join(json.dumps({"apiVersion": API, **d}) for d in docs) + "\n"


@pytest.fixture
async def run() -> AsyncIterator[Any]:
    """`await run(replies, yaml, prompt)` -> (model, task, events): the task run to its end on an in-memory store."""
    opened: list[AsyncWegent] = []

    async def start(
        replies: Sequence[Any], yaml: str, prompt: str = "do it"
    ) -> tuple[ScriptedModel, AsyncTask, list[Event]]:
        model = ScriptedModel(replies, name="m")
        wg = AsyncWegent("memory://", models={"m": model})
        await wg.__aenter__()
        opened.append(wg)
        await wg.apply(yaml)
        task = await wg.run("team", prompt)
        events = [event async for event in task]
        return model, task, events

    yield start
    for wg in reversed(opened):
        await wg.__aexit__(None, None, None)


def load(name: str) -> dict[str, Any]:
    """A scripted reply that calls load_skill."""
    return {"tool_call": {"name": "load_skill", "arguments": {"name": name}}}
