"""Runtime state: what a runtime returns in `TurnResult.state` is saved with the subtask's result and given back,
as `Turn.state`, to the same member's next turn of the same task (after a restart too); a runtime that says
`uses_model = False` gets no model client, so its Model needs no protocol."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from wegent_core import AsyncWegent, Plugins, TaskState, Turn, TurnResult, hookimpl
from wegent_storage import SqlStore

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Stateful:
    """A runtime that counts its turns in its state; a prompt `forget` returns no state (keep the last)."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, dict[str, Any], bool]] = []  # (member, state given, had a model client)

    async def run_turn(self, turn: Turn) -> TurnResult:
        self.seen.append((turn.member.bot, dict(turn.state), turn.model is not None))
        count = int(turn.state.get("count", 0)) + 1
        state = None if turn.messages[-1].content == "forget" else {"count": count}
        return TurnResult(text=f"turn {count}", messages=[], state=state)

    @hookimpl
    def register_runtimes(self, register: Any) -> None:
        async def without_model(turn: Turn) -> TurnResult:
            return await self.run_turn(turn)

        without_model.uses_model = False  # type: ignore[attr-defined]
        register("Stateful", without_model)
        register("StatefulWithModel", self.run_turn)


def team(shell: str = "Stateful", members: tuple[str, ...] = ("a",), mode: str = "solo") -> str:
    docs: list[dict[str, Any]] = [
        {"kind": "Model", "metadata": {"name": "keys"}, "spec": {"modelConfig": {"env": {"SOME_KEY": "x"}}}},
        {"kind": "Shell", "metadata": {"name": "s"}, "spec": {"shellType": shell}},
    ]
    for bot in members:
        docs.append({"kind": "Ghost", "metadata": {"name": bot}, "spec": {"systemPrompt": bot}})
        spec = {"ghostRef": {"name": bot}, "shellRef": {"name": "s"}, "modelRef": {"name": "keys"}}
        docs.append({"kind": "Bot", "metadata": {"name": bot}, "spec": spec})
    team_spec = {"collaborationModel": mode, "members": [{"botRef": {"name": bot}} for bot in members]}
    docs.append({"kind": "Team", "metadata": {"name": "team"}, "spec": team_spec})
    return "\n---\n".join(json.dumps({"apiVersion": "agent.wecode.io/v1", **d}) for d in docs)


def plugins(runtime: Stateful) -> Plugins:
    loaded = Plugins.load()
    loaded.register(runtime, "stateful")
    return loaded


async def test_state_goes_to_the_members_next_turn(tmp_path: Path) -> None:
    runtime = Stateful()
    async with AsyncWegent("memory://", plugins=plugins(runtime)) as wg:
        await wg.apply(team())
        task = await wg.run("team", "one")
        assert (await task.wait()).result == {"value": "turn 1"}
        for prompt in ("two", "forget", "four"):
            await task.send(prompt)
            await task.wait()
        assert (await task.record()).result == {"value": "turn 3"}  # turn 3 kept no state
        other = await wg.run("team", "a new task")
        assert (await other.wait()).result == {"value": "turn 1"}  # state is per task
    given = [state for _, state, _ in runtime.seen]
    assert given == [{}, {"count": 1}, {"count": 2}, {"count": 2}, {}]  # `forget` saved none: the last one holds
    assert not any(model for _, _, model in runtime.seen)  # uses_model = False: no client, no protocol needed


async def test_state_is_per_member() -> None:
    runtime = Stateful()
    async with AsyncWegent("memory://", plugins=plugins(runtime)) as wg:
        await wg.apply(team(members=("a", "b"), mode="pipeline"))
        task = await wg.run("team", "one")
        assert (await task.wait()).status is TaskState.COMPLETED
    assert runtime.seen == [("default/a", {}, False), ("default/b", {}, False)]


async def test_state_outlives_the_process(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/tasks.db"
    SqlStore.open(url, upgrade=True).close()
    runtime = Stateful()
    async with AsyncWegent(url, plugins=plugins(runtime)) as wg:
        await wg.apply(team())
        task = await wg.run("team", "one")
        await task.wait()
        task_id = task.id
    async with AsyncWegent(url, plugins=plugins(runtime)) as wg:
        task = await wg.task(task_id)
        await task.send("two")
        assert (await task.wait()).result == {"value": "turn 2"}
    assert runtime.seen[-1][1] == {"count": 1}


async def test_a_runtime_that_uses_a_model_still_needs_a_protocol() -> None:
    runtime = Stateful()
    async with AsyncWegent("memory://", plugins=plugins(runtime)) as wg:
        await wg.apply(team(shell="StatefulWithModel"))
        task = await wg.run("team", "one")
        record = await task.wait()
    assert record.status is TaskState.FAILED
    assert "Model default/keys has no protocol" in str(record.error_message)
    assert runtime.seen == []
