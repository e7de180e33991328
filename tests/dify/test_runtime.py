"""The Dify runtime through the real engine: a Team whose bot has a `shellType: Dify` Shell answers through the test
server's apps, in every mode, streaming into the task's events, keeping its Dify conversation across follow-ups and
restarts, stopping Dify's run on cancel, and failing with clear messages."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import anyio
import pytest

from wegent_core import AsyncTask, AsyncWegent, Event, RetryPolicy, TaskState
from wegent_storage import SqlStore

from ._server import App, DifyServer
from .conftest import dify_yaml, plugins

pytestmark = pytest.mark.anyio


async def run(wg: AsyncWegent, server: DifyServer, key: str, prompt: str = "hello", **yaml: Any) -> AsyncTask:
    await wg.apply(dify_yaml(server.base_url, key, **yaml))
    return await wg.run("team", prompt)


async def log_of(task: AsyncTask) -> list[Event]:
    return [event async for event in task.events()]


def deltas(events: list[Event]) -> str:
    return "".join(e.text for e in events if e.type == "text.delta")  # type: ignore[attr-defined]


def runs(server: DifyServer) -> list[dict[str, Any]]:
    return [r for r in server.requests if r["method"] == "POST" and not r["path"].endswith("/stop")]


async def until_event(task: AsyncTask, kind: str) -> None:
    with anyio.fail_after(5):
        while not [e for e in await task.engine.db(task.engine.store.events, task.id) if e.type == kind]:
            await anyio.sleep(0.01)


# --- the modes -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "path"),
    [
        ("app-chat", "/v1/chat-messages"),
        ("app-agent", "/v1/chat-messages"),
        ("app-chatflow", "/v1/chat-messages"),
        ("app-completion", "/v1/completion-messages"),
    ],
)
async def test_chat_like_modes_answer_and_stream(wegent: AsyncWegent, dify: DifyServer, key: str, path: str) -> None:
    task = await run(wegent, dify, key)
    record = await task.wait()
    assert record.status is TaskState.COMPLETED, record
    assert record.result == {"value": "answer 1: hello"}
    events = await log_of(task)
    assert deltas(events) == "answer 1: hello"
    assert len([e for e in events if e.type == "text.delta"]) == 4  # streamed chunk by chunk, not in one piece
    usage = next(e for e in events if e.type == "usage")
    assert (usage.input_tokens, usage.output_tokens) == (11, 3)  # type: ignore[attr-defined]
    assert usage.cost_usd == pytest.approx(0.000017)  # type: ignore[attr-defined]
    assert [r["path"] for r in dify.requests] == ["/v1/info", path]
    body = runs(dify)[0]["json"]
    assert body["response_mode"] == "streaming"
    assert body["user"] == f"task-{task.id}"
    if path == "/v1/chat-messages":
        assert body == {
            "inputs": {},
            "query": "hello",
            "response_mode": "streaming",
            "user": f"task-{task.id}",
            "auto_generate_name": True,
        }
    else:
        assert body["inputs"] == {"query": "hello"}  # a completion app's prompt is its query input


async def test_workflow_mode_answers_with_its_outputs(wegent: AsyncWegent, dify: DifyServer) -> None:
    task = await run(wegent, dify, "app-workflow", "two words")
    record = await task.wait()
    assert record.status is TaskState.COMPLETED, record
    assert record.result == {"value": json.dumps({"text": "echo: two words"}, indent=2)}
    events = await log_of(task)
    assert deltas(events) == "echo: two words"  # the text chunks stream as they come
    assert next(e for e in events if e.type == "usage").input_tokens == 42  # type: ignore[attr-defined]
    assert runs(dify)[0]["path"] == "/v1/workflows/run"
    assert runs(dify)[0]["json"] == {
        "inputs": {"query": "two words"},
        "response_mode": "streaming",
        "user": f"task-{task.id}",
    }


async def test_agent_tool_use_becomes_tool_events(wegent: AsyncWegent, dify: DifyServer) -> None:
    task = await run(wegent, dify, "app-agent")
    await task.wait()
    events = await log_of(task)
    call = next(e for e in events if e.type == "tool.call")
    result = next(e for e in events if e.type == "tool.result")
    assert (call.name, call.arguments) == ("current_time", {"tz": "UTC"})  # type: ignore[attr-defined]
    assert (result.call_id, result.output) == (call.call_id, "12:00 UTC")  # type: ignore[attr-defined]
    assert len([e for e in events if e.type == "tool.call"]) == 1  # the thought was sent twice, used once


async def test_mode_is_asked_once_per_app_and_a_failing_info_means_chat(
    wegent: AsyncWegent, dify: DifyServer, apps: dict[str, App]
) -> None:
    task = await run(wegent, dify, "app-chatflow")
    await task.wait()
    await task.send("again")
    await task.wait()
    assert [r["path"] for r in dify.requests].count("/v1/info") == 1
    apps["app-chat"].info_fails = True
    other = await run(wegent, dify, "app-chat")
    assert (await other.wait()).status is TaskState.COMPLETED
    assert runs(dify)[-1]["path"] == "/v1/chat-messages"


# --- conversation ----------------------------------------------------------------------------------------------------


async def test_follow_ups_continue_the_dify_conversation(wegent: AsyncWegent, dify: DifyServer) -> None:
    task = await run(wegent, dify, "app-chat")
    await task.wait()
    await task.send("again")
    record = await task.wait()
    assert record.result == {"value": "answer 2: again"}  # Dify saw the second message of one conversation
    first, second = (r["json"] for r in runs(dify))
    assert "conversation_id" not in first
    (conversation,) = dify.conversations
    assert second["conversation_id"] == conversation
    saved = [s.result for s in await task.subtasks() if s.role == "ASSISTANT"]
    assert [r["state"] for r in saved] == [{"conversation_id": conversation}] * 2  # type: ignore[index]


async def test_a_new_task_starts_a_new_conversation(wegent: AsyncWegent, dify: DifyServer) -> None:
    for prompt in ("one", "two"):
        task = await run(wegent, dify, "app-chat", prompt)
        assert (await task.wait()).result == {"value": f"answer 1: {prompt}"}
    assert len(dify.conversations) == 2


async def test_the_conversation_outlives_the_process(dify: DifyServer, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/tasks.db"
    SqlStore.open(url, upgrade=True).close()
    async with AsyncWegent(url, plugins=plugins()) as first:
        task = await run(first, dify, "app-chat")
        await task.wait()
        task_id = task.id
    async with AsyncWegent(url, plugins=plugins()) as second:
        task = await second.task(task_id)
        await task.send("after the restart")
        record = await task.wait()
    assert record.result == {"value": "answer 2: after the restart"}
    (conversation,) = dify.conversations
    assert runs(dify)[-1]["json"]["conversation_id"] == conversation


async def test_a_conversation_gone_from_dify_starts_a_new_one(wegent: AsyncWegent, dify: DifyServer) -> None:
    task = await run(wegent, dify, "app-chat")
    await task.wait()
    dify.conversations.clear()  # deleted on Dify's side
    await task.send("again")
    record = await task.wait()
    assert record.status is TaskState.COMPLETED
    assert record.result == {"value": "answer 1: again"}
    notices = [e for e in await log_of(task) if e.type == "notice"]
    assert [n.code for n in notices] == ["dify.conversation_lost"]  # type: ignore[attr-defined]
    assert "Conversation Not Exists." in notices[0].message  # type: ignore[attr-defined]


# --- cancel ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "stop"),
    [
        ("app-chat", "/v1/chat-messages/{}/stop"),
        ("app-chatflow", "/v1/chat-messages/{}/stop"),
        ("app-completion", "/v1/completion-messages/{}/stop"),
        ("app-workflow", "/v1/workflows/tasks/{}/stop"),
    ],
)
async def test_cancel_stops_the_dify_run(
    wegent: AsyncWegent, dify: DifyServer, apps: dict[str, App], key: str, stop: str
) -> None:
    apps[key].delay = 10.0  # between chunks
    task = await run(wegent, dify, key, "a long run")
    await until_event(task, "text.delta")
    started = time.monotonic()
    await task.cancel()
    with anyio.fail_after(3):
        record = await task.wait()
    assert record.status is TaskState.CANCELLED
    assert time.monotonic() - started < 2
    (stopped,) = dify.stops
    assert stopped == {"path": stop.format(stopped["task_id"]), "task_id": stopped["task_id"],
                       "user": f"task-{task.id}", "known": True}  # fmt: skip
    with anyio.fail_after(3):  # Dify's run ends stopped, not after its 10 s pauses
        while not dify.finished:
            await anyio.sleep(0.01)
    assert dify.finished == [{"task_id": stopped["task_id"], "stopped": True}]


# --- failures --------------------------------------------------------------------------------------------------------


async def failed(task: AsyncTask) -> str:
    record = await task.wait()
    assert record.status is TaskState.FAILED, record
    (subtask,) = [s for s in await task.subtasks() if s.role == "ASSISTANT"]
    assert subtask.error_message
    return subtask.error_message


async def test_an_empty_answer_fails(wegent: AsyncWegent, dify: DifyServer, apps: dict[str, App]) -> None:
    apps["app-chat"].chunks = lambda query, turn: []
    assert await failed(await run(wegent, dify, "app-chat")) == "No answer received from Dify application"
    apps["app-workflow"].outputs = {}
    assert await failed(await run(wegent, dify, "app-workflow")) == "No answer received from Dify application"
    assert len(runs(dify)) == 2  # not retried


@pytest.fixture
async def fast_retry() -> Any:
    async with AsyncWegent("memory://", plugins=plugins(), retry=RetryPolicy(attempts=3, base_delay=0.01)) as wg:
        yield wg


async def test_a_bad_key_fails_at_once(fast_retry: AsyncWegent, dify: DifyServer) -> None:
    message = await failed(await run(fast_retry, dify, "app-unknown"))
    assert message == "Dify API error: Access token is invalid (HTTP 401, unauthorized)"
    assert len(runs(dify)) == 1


async def test_rate_limits_are_retried(fast_retry: AsyncWegent, dify: DifyServer, apps: dict[str, App]) -> None:
    apps["app-chat"].http_errors = [(429, "too_many_requests", "Too many requests.")] * 2
    task = await run(fast_retry, dify, "app-chat")
    assert (await task.wait()).status is TaskState.COMPLETED
    errors = [e for e in await log_of(task) if e.type == "error"]
    assert [(e.code, e.retryable, e.attempt) for e in errors] == [("rate_limit", True, 1), ("rate_limit", True, 2)]  # type: ignore[attr-defined]
    assert len(runs(dify)) == 3


async def test_server_errors_fail_after_the_retries(
    fast_retry: AsyncWegent, dify: DifyServer, apps: dict[str, App]
) -> None:
    apps["app-chat"].http_errors = [(500, "internal_server_error", "Internal Server Error.")] * 3
    message = await failed(await run(fast_retry, dify, "app-chat"))
    assert message == "Dify API error: Internal Server Error. (HTTP 500, internal_server_error)"
    assert len(runs(dify)) == 3


async def test_a_bad_request_is_fatal(fast_retry: AsyncWegent, dify: DifyServer, apps: dict[str, App]) -> None:
    apps["app-chat"].required = ["topic"]
    message = await failed(await run(fast_retry, dify, "app-chat"))
    assert message == "Dify API error: topic is required in input form (HTTP 400, invalid_param)"
    assert len(runs(dify)) == 1


async def test_an_error_event_fails_without_retry(
    fast_retry: AsyncWegent, dify: DifyServer, apps: dict[str, App]
) -> None:
    apps["app-chat"].error_event = {"status": 500, "code": "completion_request_error", "message": "Model broke."}
    message = await failed(await run(fast_retry, dify, "app-chat"))
    assert message == "Dify API error: Model broke. (HTTP 500, completion_request_error)"
    assert len(runs(dify)) == 1  # text had already streamed: a retry would repeat it
    apps["app-workflow"].error_event = {"status": 400, "code": "workflow_request_error", "message": "Node failed."}
    message = await failed(await run(fast_retry, dify, "app-workflow"))
    assert message.startswith("Dify Workflow error: Node failed.")


async def test_a_stalled_stream_times_out(fast_retry: AsyncWegent, dify: DifyServer, apps: dict[str, App]) -> None:
    apps["app-chat"].delay = 5.0
    task = await run(fast_retry, dify, "app-chat", extra_env={"DIFY_TIMEOUT": "0.3"})
    assert await failed(task) == "Dify API timed out (ReadTimeout)"
    with anyio.fail_after(3):  # the server thread ends the run when the stop arrives
        while not dify.finished:
            await anyio.sleep(0.01)
    assert [stop["task_id"] for stop in dify.stops] == [dify.finished[0]["task_id"]]  # abandoned: stopped
    assert dify.finished[0]["stopped"]


async def test_unreachable_dify_is_retried_then_fails(fast_retry: AsyncWegent, dify: DifyServer) -> None:
    await fast_retry.apply(dify_yaml("http://127.0.0.1:9", "app-chat"))  # nothing listens on the discard port
    task = await fast_retry.run("team", "hello")
    message = await failed(task)
    assert message.startswith("Dify API unreachable: ConnectError")
    attempts = [e.attempt for e in await log_of(task) if e.type == "error" and e.attempt]  # type: ignore[attr-defined]
    assert attempts == [1, 2, 3]  # the last error event (no attempt) is the task's failure


@pytest.mark.parametrize("missing", ["DIFY_API_KEY", "DIFY_BASE_URL"])
async def test_missing_configuration(wegent: AsyncWegent, dify: DifyServer, missing: str) -> None:
    yaml = dify_yaml(dify.base_url, "app-chat").replace(f'"{missing}"', '"UNUSED"')
    await wegent.apply(yaml)
    message = await failed(await wegent.run("team", "hello"))
    assert message == f"{missing} is not configured (Model default/dify-model)"
    assert dify.requests == []


async def test_the_api_key_stays_out_of_events_results_and_logs(
    wegent: AsyncWegent, dify: DifyServer, apps: dict[str, App], caplog: pytest.LogCaptureFixture
) -> None:
    secret = "app-s3cr3t-key"
    apps[secret] = App(mode="chat")
    caplog.set_level(logging.DEBUG)
    task = await run(wegent, dify, secret)
    await task.wait()
    await task.send("again")
    await task.wait()
    stored = [e.model_dump_json() for e in await log_of(task)]
    stored += [s.model_dump_json() for s in await task.subtasks()]
    stored.append((await task.record()).model_dump_json())
    assert stored
    assert not [text for text in stored if secret in text]
    assert secret not in caplog.text
    assert (await wegent.plan("team")).model_dump_json().count(secret) == 0


# --- the parameter merge ---------------------------------------------------------------------------------------------


async def test_params_merge_bot_prompt_then_dify_params_then_the_message_block(
    wegent: AsyncWegent, dify: DifyServer
) -> None:
    ghost = json.dumps({"difyAppId": "app-1", "params": {"a": "ghost", "b": "ghost", "c": "ghost"}})
    prompt = '[EXTERNAL_API_PARAMS]{"c": "block"}[/EXTERNAL_API_PARAMS]\nhello'
    task = await run(wegent, dify, "app-chat", prompt, system_prompt=ghost, params='{"b": "env", "c": "env"}')
    assert (await task.wait()).result == {"value": "answer 1: hello"}
    body = runs(dify)[0]["json"]
    assert body["inputs"] == {"a": "ghost", "b": "env", "c": "block"}
    assert body["query"] == "hello"  # the block is not part of the query


async def test_dify_params_as_a_dict_and_the_workflow_query(wegent: AsyncWegent, dify: DifyServer) -> None:
    task = await run(wegent, dify, "app-workflow", "the prompt", params={"user_query": "given", "n": 2})
    await task.wait()
    assert runs(dify)[0]["json"]["inputs"] == {"user_query": "given", "n": 2}  # no query added: the params give one
    block = '[EXTERNAL_API_PARAMS]{"query": "from the block"}[/EXTERNAL_API_PARAMS]\nthe prompt'
    other = await run(wegent, dify, "app-workflow", block)
    assert (await other.wait()).result == {"value": json.dumps({"text": "echo: from the block"}, indent=2)}


async def test_a_bad_block_is_removed_and_announced(wegent: AsyncWegent, dify: DifyServer) -> None:
    task = await run(wegent, dify, "app-chat", "[EXTERNAL_API_PARAMS]{not json[/EXTERNAL_API_PARAMS]\nhello")
    assert (await task.wait()).result == {"value": "answer 1: hello"}
    assert [e.code for e in await log_of(task) if e.type == "notice"] == ["dify.params_ignored"]  # type: ignore[attr-defined]


async def test_bad_dify_params_fail_clearly(wegent: AsyncWegent, dify: DifyServer) -> None:
    message = await failed(await run(wegent, dify, "app-chat", params="{oops"))
    assert message.startswith("DIFY_PARAMS is not valid JSON")
