"""Teams for engine tests, built as YAML text, and an engine on an in-memory SQLite store per test."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest

from wegent_core import AsyncTask, AsyncWegent, Event, TaskRecord
from wegent_core.testing import ScriptedModel

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def team_yaml(
    model: str,
    members: Sequence[str | dict[str, Any]],
    *,
    name: str = "team",
    mode: str = "solo",
    limits: dict[str, Any] | None = None,
    script: Sequence[Any] | None = None,
) -> str:
    """YAML for a Team of Chat bots: `members` are bot names or member dicts (`{bot: x, role: leader, ...}`).
    Each bot gets a Ghost whose prompt is `You are <bot>.` and the Model `model` (scripted if `script` is given)."""
    specs = [m if isinstance(m, dict) else {"bot": m} for m in members]
    bots = sorted({m["bot"] for m in specs})
    config: dict[str, Any] = {"script": list(script or [])}  # an empty script when the test gives a model
    docs: list[dict[str, Any]] = [
        {"kind": "Model", "metadata": {"name": model}, "spec": {"protocol": "scripted", "modelConfig": config}},
        {"kind": "Shell", "metadata": {"name": "chat"}, "spec": {"shellType": "Chat"}},
    ]
    for bot in bots:
        docs.append({"kind": "Ghost", "metadata": {"name": bot}, "spec": {"systemPrompt": f"You are {bot}."}})
        docs.append(
            {
                "kind": "Bot",
                "metadata": {"name": bot},
                "spec": {"ghostRef": {"name": bot}, "shellRef": {"name": "chat"}, "modelRef": {"name": model}},
            }
        )
    team_members = []
    for spec in specs:
        member = {"botRef": {"name": spec["bot"]}}
        member.update({k: v for k, v in spec.items() if k != "bot"})
        team_members.append(member)
    team_spec: dict[str, Any] = {"collaborationModel": mode, "members": team_members}
    if limits:
        team_spec["limits"] = limits
    docs.append({"kind": "Team", "metadata": {"name": name}, "spec": team_spec})
    return "\n---\n".join(json.dumps({"apiVersion": "agent.wecode.io/v1", **d}) for d in docs) + "\n"


async def start(
    replies: Sequence[Any],
    members: Sequence[str | dict[str, Any]],
    mode: str = "solo",
    prompt: str = "do it",
    *,
    limits: dict[str, Any] | None = None,
    store: str = "sqlite://",
    tools: Sequence[Any] = (),
) -> tuple[AsyncWegent, ScriptedModel, AsyncTask]:
    """An entered AsyncWegent (close it with `await wg.__aexit__(None, None, None)`), the scripted model every bot
    uses, and a started task of a `mode` team."""
    model = ScriptedModel(replies, name="m")
    wg = AsyncWegent(store, models={"m": model}, tools=tools)
    await wg.__aenter__()
    yaml = team_yaml("m", members, mode=mode, limits=limits)
    await wg.apply(yaml)
    return wg, model, await wg.run("team", prompt)


@pytest.fixture(params=["sqlite://", "memory://"])
async def engine(request: pytest.FixtureRequest) -> AsyncIterator[Any]:
    """`await engine(replies, members, mode, prompt, ...)` -> (wegent, model, task); closed after the test. Every
    test using it runs on the SQL store (in-memory SQLite, through worker threads) and on the memory store (called
    on the event loop)."""
    opened: list[AsyncWegent] = []

    async def make(*args: Any, **kwargs: Any) -> tuple[AsyncWegent, ScriptedModel, AsyncTask]:
        kwargs.setdefault("store", request.param)
        wg, model, task = await start(*args, **kwargs)
        opened.append(wg)
        return wg, model, task

    yield make
    for wg in reversed(opened):  # task groups close in the reverse order of opening
        await wg.__aexit__(None, None, None)


async def collect(task: AsyncTask) -> list[Event]:
    return [event async for event in task]


def types(events: Sequence[Event]) -> list[str]:
    return [e.type for e in events]


def statuses(events: Sequence[Event]) -> list[str]:
    return [str(e.status) for e in events if e.type == "task.status"]  # type: ignore[attr-defined]


def answer(record: TaskRecord) -> str:
    return str((record.result or {}).get("value"))
