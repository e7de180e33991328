"""Crash-safe resume: a task whose process dies is carried on from its last written step, every step at least once,
no completed stage ever again, and an event log without gaps, losses or duplicates."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import anyio
import pytest

from wegent_core import AsyncWegent, TaskState, apply, loads
from wegent_core.testing import ScriptedModel
from wegent_storage import SqlStore

from .conftest import team_yaml

CHILD = Path(__file__).with_name("_pipeline_child.py")
STAGES = 3


def pipeline_yaml() -> str:
    """Three stages, each with its own scripted Model: streamed, slow enough that a kill lands anywhere."""
    docs = [{"kind": "Shell", "metadata": {"name": "chat"}, "spec": {"shellType": "Chat"}}]
    members = []
    for i in range(STAGES):
        script = [{"text": f"stage {i} output", "chunks": ["stage ", f"{i} ", "output"], "delay": 0.15}]
        docs += [
            {
                "kind": "Model",
                "metadata": {"name": f"m{i}"},
                "spec": {"protocol": "scripted", "modelConfig": {"script": script}},
            },
            {"kind": "Ghost", "metadata": {"name": f"g{i}"}, "spec": {"systemPrompt": f"Stage {i}."}},
            {
                "kind": "Bot",
                "metadata": {"name": f"b{i}"},
                "spec": {"ghostRef": {"name": f"g{i}"}, "shellRef": {"name": "chat"}, "modelRef": {"name": f"m{i}"}},
            },
        ]
        members.append({"botRef": {"name": f"b{i}"}, "contextPassing": "previous_bot"})
    docs.append(
        {"kind": "Team", "metadata": {"name": "pipe"}, "spec": {"collaborationModel": "pipeline", "members": members}}
    )
    return "\n---\n".join(json.dumps({"apiVersion": "agent.wecode.io/v1", **d}) for d in docs)


def check_log(store: SqlStore, task_id: int) -> None:
    record = store.get_task(task_id)
    assert record.status is TaskState.COMPLETED, record
    assert record.result == {"value": f"stage {STAGES - 1} output"}
    subtasks = store.subtasks(task_id)
    done = Counter(s.stage for s in subtasks if s.role == "ASSISTANT" and s.status == "COMPLETED")
    assert done == {i: 1 for i in range(STAGES)}  # every stage completed exactly once
    assert not [s for s in subtasks if s.status not in ("COMPLETED",)]
    events = store.events(task_id)
    assert [e.seq for e in events] == list(range(1, len(events) + 1))  # no gap, no duplicate sequence number
    completions = Counter(
        e.subtask_id for e in events if e.type == "subtask.status" and e.data["status"] == "COMPLETED"
    )
    assert sorted(completions.values()) == [1] * STAGES
    answers = Counter(e.data["message_id"] for e in events if e.type == "message" and e.data["role"] == "ASSISTANT")
    assert sorted(answers.values()) == [1] * STAGES  # each answer written once, none lost
    handoffs = [e for e in events if e.type == "handoff"]
    assert [h.data["target"] for h in handoffs] == [f"default/b{i}" for i in range(1, STAGES)]
    statuses = [e.data["status"] for e in events if e.type == "task.status"]
    assert statuses[-1] == "COMPLETED"
    assert statuses.count("COMPLETED") == 1
    # The text of each answer is exactly the deltas of its last attempt.
    for sub in (s for s in subtasks if s.role == "ASSISTANT"):
        last_run = max(
            e.seq
            for e in events
            if e.type == "subtask.status" and e.subtask_id == sub.id and e.data["status"] == "RUNNING"
        )
        deltas = [
            e.data["text"] for e in events if e.type == "text.delta" and e.subtask_id == sub.id and e.seq > last_run
        ]
        assert "".join(deltas) == sub.result["value"]


def kill_and_resume(url: str, runs: int, seed: int) -> int:
    """`runs` times: start the pipeline in a child process, SIGKILL it at a random moment, resume the task here
    and check its log. How many kills landed while the task ran."""
    rng = random.Random(seed)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    killed_mid_run = done = 0
    while done < runs:
        child = subprocess.Popen([sys.executable, str(CHILD), url], stdout=subprocess.PIPE, text=True, env=env)
        line = child.stdout.readline()  # the task exists once its id is printed
        if not line.strip().isdigit():
            child.kill()
            child.wait()
            continue
        task_id = int(line)
        time.sleep(rng.uniform(0, 0.15 * STAGES + 0.2))
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        done += 1

        async def resume(task_id: int = task_id) -> bool:
            async with AsyncWegent(url) as wg:
                resumed = await wg.resume(task_id)
                with anyio.fail_after(10):
                    await (await wg.task(task_id)).wait()
                return bool(resumed)

        killed_mid_run += anyio.run(resume)
        with SqlStore.open(url) as store:
            check_log(store, task_id)
    return killed_mid_run


def test_a_killed_pipeline_resumes_with_every_stage_exactly_once(tmp_path: Path) -> None:
    """20 kills at random moments (in 4 parallel sequences, each on its own database file, to save time)."""
    urls = [f"sqlite:///{tmp_path}/tasks-{i}.db" for i in range(4)]
    for url in urls:
        with SqlStore.open(url, upgrade=True) as store:
            apply(store, loads(pipeline_yaml()))
    with ThreadPoolExecutor(len(urls)) as pool:
        killed_mid_run = sum(pool.map(kill_and_resume, urls, [5] * len(urls), range(len(urls))))
    assert killed_mid_run >= 10  # most kills landed while the task ran (else the test proves little)


@pytest.mark.anyio
async def test_an_engine_closed_mid_task_leaves_it_to_resume() -> None:
    store = SqlStore.open("sqlite://")
    replies = [{"member": "a", "text": "A"}, {"member": "b", "text": "B", "delay": 10}, {"member": "b", "text": "B"}]
    model = ScriptedModel(replies)
    async with AsyncWegent(store, models={"m": model}) as first:
        await first.apply(team_yaml("m", ["a", "b"], mode="pipeline"))
        task = await first.run("team", "go")
        with anyio.fail_after(5):
            while len(model.requests) < 2:
                await anyio.sleep(0.01)
    assert store.get_task(task.id).status is TaskState.RUNNING  # left where it was, as if the process had died
    async with AsyncWegent(store, models={"m": model}) as second:
        resumed = await second.resume()
        assert [t.id for t in resumed] == [task.id]
        record = await resumed[0].wait()
    assert (record.status, record.result) == (TaskState.COMPLETED, {"value": "B"})
    events = store.events(task.id)
    resumed_event = next(e for e in events if e.type == "task.resumed")
    assert resumed_event.data["rerun"] == [4]  # stage b's step ran again; stage a's did not
    assert [r.member for r in model.requests] == ["default/a", "default/b", "default/b"]
    store.close()


@pytest.mark.anyio
async def test_a_repeated_tool_call_carries_the_same_idempotency_key() -> None:
    """The process dies during a tool call; the resumed task calls the tool again with the same key, so a tool with
    side effects can tell the repeat."""
    from wegent_core import tool

    keys: list[str] = []
    started = anyio.Event()

    @tool
    async def charge(amount: int, context) -> str:
        """Charge the customer."""
        keys.append(context.idempotency_key)
        started.set()
        await anyio.sleep(10 if len(keys) == 1 else 0)  # the first call never returns: its process dies
        return f"charged {amount}"

    store = SqlStore.open("sqlite://")
    replies = [{"tool_call": {"name": "charge", "arguments": {"amount": 5}}}, "done"]
    async with AsyncWegent(store, models={"m": ScriptedModel(replies)}, tools=[charge]) as first:
        await first.apply(team_yaml("m", ["a"]))
        task = await first.run("team", "charge it")
        with anyio.fail_after(5):
            await started.wait()
    async with AsyncWegent(store, models={"m": ScriptedModel(replies)}, tools=[charge]) as second:
        (resumed,) = await second.resume()
        assert await resumed.result() == "done"
    assert len(keys) == 2
    assert keys[0] == keys[1] == f"task-{task.id}/message-2/step-1/call-1"
    store.close()
