"""A solo team whose Model points at the real llama-server, run by the engine: resolution infers the protocol from
`env.model`, the provider plugin is found by entry point, and the real model's answer streams out as events."""

from __future__ import annotations

import json

import pytest

from wegent_core import AsyncWegent, TaskState

from ._servers import LLAMA_KEY
from .conftest import QUESTION, SYSTEM

pytestmark = pytest.mark.anyio


def team(env: dict[str, str]) -> str:
    docs = [
        {
            "kind": "Model",
            "metadata": {"name": "llama"},
            "spec": {"modelConfig": {"env": env, "max_output_tokens": 32}},
        },
        {"kind": "Shell", "metadata": {"name": "chat"}, "spec": {"shellType": "Chat"}},
        {"kind": "Ghost", "metadata": {"name": "helper"}, "spec": {"systemPrompt": SYSTEM}},
        {
            "kind": "Bot",
            "metadata": {"name": "helper"},
            "spec": {"ghostRef": {"name": "helper"}, "shellRef": {"name": "chat"}, "modelRef": {"name": "llama"}},
        },
        {
            "kind": "Team",
            "metadata": {"name": "team"},
            "spec": {"collaborationModel": "solo", "members": [{"botRef": {"name": "helper"}}]},
        },
    ]
    return "\n---\n".join(json.dumps({"apiVersion": "agent.wecode.io/v1", **d}) for d in docs)


@pytest.mark.parametrize(("provider", "suffix"), [("openai", "/v1"), ("claude", "")])
@pytest.mark.parametrize("store", ["memory://", "sqlite://"])
async def test_a_team_answers_through_the_engine(
    provider: str, suffix: str, store: str, llama: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WEGENT_TEST_LLAMA_KEY", LLAMA_KEY)
    env = {
        "model": provider,  # the protocol is inferred from it
        "model_id": "smollm2",
        "base_url": llama + suffix,
        "api_key": "${WEGENT_TEST_LLAMA_KEY}",
        "temperature": "0",
    }
    async with AsyncWegent(store) as wg:
        await wg.apply(team(env))
        assert (await wg.plan("team")).members[0].model.protocol == provider
        task = await wg.run("team", QUESTION)
        events = [event async for event in task]
        record = await task.record()
    assert record.status is TaskState.COMPLETED, record.error_message
    answer = (record.result or {}).get("value", "")
    assert "Paris" in answer
    deltas = [e.text for e in events if e.type == "text.delta"]  # type: ignore[attr-defined]
    assert len(deltas) >= 3
    assert "".join(deltas) == answer
    [usage] = [e for e in events if e.type == "usage"]
    assert usage.output_tokens > 0  # type: ignore[attr-defined]
    assert LLAMA_KEY not in json.dumps([e.model_dump(mode="json") for e in events])
