"""The official `dify-client` (PyPI) drives the Dify test server on every endpoint the Dify runtime uses, and gets
what the real Service API gives: status codes, JSON shapes, error bodies, streamed events, stops.

dify-client 0.1.10 (the version the registry serves) has methods for `/parameters`, `/chat-messages` and
`/completion-messages`; `/info`, `/workflows/run` and the stop endpoints go through its own request method
(`_send_request`: the same URL building, Bearer header and JSON body as its public methods)."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests
from dify_client import ChatClient, CompletionClient, DifyClient

from ._server import App, DifyServer

USER = "task-1"
MESSAGE_KEYS = {"event", "task_id", "id", "message_id", "answer", "created_at"}
USAGE_KEYS = {"prompt_tokens", "completion_tokens", "total_tokens", "total_price", "currency", "latency"}


def client(cls: type[DifyClient], server: DifyServer, key: str) -> Any:
    made = cls(key)
    assert made.base_url == "https://api.dify.ai/v1"  # the client's default: Dify's cloud, which tests never reach
    made.base_url = f"{server.base_url}/v1"
    return made


def events(response: requests.Response) -> tuple[list[str], list[dict[str, Any]]]:
    """The raw SSE lines (blank ones dropped) and the JSON of every `data:` line."""
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/event-stream")
    lines = [line for line in response.iter_lines(decode_unicode=True) if line]
    data = [json.loads(line[len("data: ") :]) for line in lines if line.startswith("data: ")]
    assert all(line.startswith(("data: ", "event: ")) for line in lines), lines
    return lines, data


def assert_error(response: requests.Response, status: int, code: str, message: str | None = None) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"code", "message", "status"}
    assert (body["code"], body["status"]) == (code, status)
    if message is not None:
        assert body["message"] == message


# --- /v1/info and /v1/parameters -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "mode"),
    [
        ("app-chat", "chat"),
        ("app-agent", "agent-chat"),
        ("app-chatflow", "advanced-chat"),
        ("app-workflow", "workflow"),
        ("app-completion", "completion"),
    ],
)
def test_info_gives_the_app_mode(dify: DifyServer, key: str, mode: str) -> None:
    response = client(DifyClient, dify, key)._send_request("GET", "/info")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"name", "description", "tags", "mode", "author_name"}
    assert body["mode"] == mode
    assert dify.requests[-1]["path"] == "/v1/info"


def test_a_bad_key_or_no_bearer_is_401(dify: DifyServer) -> None:
    response = client(DifyClient, dify, "app-nope")._send_request("GET", "/info")
    assert_error(response, 401, "unauthorized", "Access token is invalid")
    bare = requests.get(f"{dify.base_url}/v1/info", timeout=5)
    assert_error(bare, 401, "unauthorized", "Authorization header must be provided and start with 'Bearer'")


def test_parameters(dify: DifyServer, apps: dict[str, App]) -> None:
    apps["app-chat"].required = ["topic"]
    response = client(ChatClient, dify, "app-chat").get_application_parameters(USER)
    assert response.status_code == 200
    body = response.json()
    assert body["user_input_form"] == [
        {"text-input": {"label": "topic", "variable": "topic", "required": True, "max_length": 256, "default": ""}}
    ]
    assert {"opening_statement", "suggested_questions", "file_upload", "system_parameters"} <= set(body)
    assert dify.requests[-1]["query"] == {"user": USER}


# --- /v1/chat-messages -----------------------------------------------------------------------------------------------


def test_chat_blocking_and_a_conversation(dify: DifyServer) -> None:
    chat = client(ChatClient, dify, "app-chat")
    first = chat.create_chat_message({}, "hello", USER)
    assert first.status_code == 200
    body = first.json()
    assert MESSAGE_KEYS | {"conversation_id", "mode", "metadata"} <= set(body)
    assert (body["event"], body["mode"], body["answer"]) == ("message", "chat", "answer 1: hello")
    assert set(body["metadata"]["usage"]) >= USAGE_KEYS
    second = chat.create_chat_message({}, "again", USER, conversation_id=body["conversation_id"])
    assert second.json()["answer"] == "answer 2: again"
    assert second.json()["conversation_id"] == body["conversation_id"]
    assert dify.requests[-1]["json"]["conversation_id"] == body["conversation_id"]


def test_chat_unknown_conversation_is_404(dify: DifyServer) -> None:
    chat = client(ChatClient, dify, "app-chat")
    response = chat.create_chat_message({}, "hi", USER, conversation_id="0b7a7c5e-0000-0000-0000-000000000000")
    assert_error(response, 404, "not_found", "Conversation Not Exists.")
    owned = chat.create_chat_message({}, "hi", USER).json()["conversation_id"]
    other_user = chat.create_chat_message({}, "hi", "task-2", conversation_id=owned)
    assert_error(other_user, 404, "not_found")  # a conversation belongs to its user


def test_chat_streaming(dify: DifyServer) -> None:
    response = client(ChatClient, dify, "app-chat").create_chat_message({}, "stream me", USER, "streaming")
    lines, data = events(response)
    assert lines[0] == "event: ping"
    assert [d["event"] for d in data] == ["message"] * 4 + ["message_end"]
    assert "".join(d["answer"] for d in data[:-1]) == "answer 1: stream me"
    assert all(MESSAGE_KEYS | {"conversation_id"} <= set(d) for d in data[:-1])
    assert len({d["task_id"] for d in data}) == 1
    assert set(data[-1]["metadata"]["usage"]) >= USAGE_KEYS
    assert data[-1]["conversation_id"] == data[0]["conversation_id"]


def test_agent_chat_streams_thoughts_and_refuses_blocking(dify: DifyServer) -> None:
    agent = client(ChatClient, dify, "app-agent")
    _, data = events(agent.create_chat_message({}, "time?", USER, "streaming"))
    kinds = [d["event"] for d in data]
    assert kinds[:2] == ["agent_thought", "agent_thought"]
    assert set(kinds[2:-1]) == {"agent_message"}
    assert kinds[-1] == "message_end"
    assert data[1]["tool"] == "current_time"
    assert data[1]["observation"] == "12:00 UTC"
    assert data[0]["id"] == data[1]["id"]  # one thought, sent again as it grows
    assert_error(agent.create_chat_message({}, "time?", USER), 400, "invalid_param")


def test_chatflow_streams_workflow_events_around_the_message(dify: DifyServer) -> None:
    _, data = events(client(ChatClient, dify, "app-chatflow").create_chat_message({}, "flow", USER, "streaming"))
    kinds = [d["event"] for d in data]
    assert kinds[:2] == ["workflow_started", "node_started"]
    assert kinds[-3:] == ["node_finished", "workflow_finished", "message_end"]
    assert set(kinds[2:-3]) == {"message"}
    finished = data[-2]["data"]
    assert finished["status"] == "succeeded"
    assert finished["outputs"] == {"answer": "answer 1: flow"}
    assert data[0]["workflow_run_id"] == finished["id"]


def test_chat_request_checks(dify: DifyServer, apps: dict[str, App]) -> None:
    apps["app-chat"].required = ["topic"]
    chat = client(ChatClient, dify, "app-chat")
    assert_error(chat.create_chat_message({}, "x", USER), 400, "invalid_param", "topic is required in input form")
    assert chat.create_chat_message({"topic": "cats"}, "x", USER).status_code == 200
    assert_error(chat.create_chat_message({"topic": "cats"}, "x", ""), 400, "invalid_param")  # no user
    assert_error(chat.create_chat_message({"topic": "cats"}, "x", USER, "sometimes"), 400, "invalid_param")
    no_query = chat._send_request("POST", "/chat-messages", {"inputs": {"topic": "c"}, "user": USER})
    assert_error(no_query, 400, "invalid_param")


def test_each_run_endpoint_refuses_the_other_modes(dify: DifyServer) -> None:
    chat_on_completion = client(ChatClient, dify, "app-completion").create_chat_message({}, "x", USER)
    assert_error(chat_on_completion, 400, "not_chat_app")
    completion_on_chat = client(CompletionClient, dify, "app-chat").create_completion_message({}, "blocking", USER)
    assert_error(completion_on_chat, 400, "app_unavailable")
    workflow_on_chat = client(DifyClient, dify, "app-chat")._send_request(
        "POST", "/workflows/run", {"inputs": {}, "response_mode": "blocking", "user": USER}
    )
    assert_error(workflow_on_chat, 400, "not_workflow_app")


def test_an_error_event_ends_the_stream(dify: DifyServer, apps: dict[str, App]) -> None:
    apps["app-chat"].error_event = {"status": 400, "code": "provider_quota_exceeded", "message": "Quota exceeded."}
    _, data = events(client(ChatClient, dify, "app-chat").create_chat_message({}, "x", USER, "streaming"))
    assert [d["event"] for d in data] == ["message", "error"]
    assert {"status": 400, "code": "provider_quota_exceeded", "message": "Quota exceeded."}.items() <= data[-1].items()


def test_an_http_error_body(dify: DifyServer, apps: dict[str, App]) -> None:
    apps["app-chat"].http_errors = [(429, "too_many_requests", "Too many requests. Please try again later.")]
    chat = client(ChatClient, dify, "app-chat")
    assert_error(chat.create_chat_message({}, "x", USER, "streaming"), 429, "too_many_requests")
    assert chat.create_chat_message({}, "x", USER).status_code == 200  # the script's error was used up


# --- /v1/completion-messages and /v1/workflows/run -------------------------------------------------------------------


def test_completion_blocking_and_streaming(dify: DifyServer) -> None:
    completion = client(CompletionClient, dify, "app-completion")
    body = completion.create_completion_message({"query": "write"}, "blocking", USER).json()
    assert MESSAGE_KEYS | {"mode", "metadata"} <= set(body)
    assert (body["mode"], body["answer"]) == ("completion", "answer 1: write")
    _, data = events(completion.create_completion_message({"query": "write"}, "streaming", USER))
    assert [d["event"] for d in data] == ["message"] * 4 + ["message_end"]
    assert "".join(d["answer"] for d in data[:-1]) == "answer 1: write"


def test_workflow_blocking_and_streaming(dify: DifyServer) -> None:
    workflow = client(DifyClient, dify, "app-workflow")
    run = {"inputs": {"query": "two words"}, "response_mode": "blocking", "user": USER}
    body = workflow._send_request("POST", "/workflows/run", run).json()
    assert set(body) == {"task_id", "workflow_run_id", "data"}
    assert body["data"]["status"] == "succeeded"
    assert body["data"]["outputs"] == {"text": "echo: two words"}
    streaming = workflow._send_request("POST", "/workflows/run", {**run, "response_mode": "streaming"}, stream=True)
    _, data = events(streaming)
    kinds = [d["event"] for d in data]
    assert kinds == ["workflow_started", "node_started"] + ["text_chunk"] * 3 + ["node_finished", "workflow_finished"]
    assert "".join(d["data"]["text"] for d in data if d["event"] == "text_chunk") == "echo: two words"
    assert data[-1]["data"]["outputs"] == {"text": "echo: two words"}
    assert {"elapsed_time", "total_tokens", "total_steps", "finished_at"} <= set(data[-1]["data"])


# --- the stop endpoints ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "stop", "last"),
    [
        ("app-chat", "/chat-messages/{}/stop", "message_end"),
        ("app-completion", "/completion-messages/{}/stop", "message_end"),
        ("app-workflow", "/workflows/tasks/{}/stop", "workflow_finished"),
    ],
)
def test_stop_a_streaming_run(dify: DifyServer, apps: dict[str, App], key: str, stop: str, last: str) -> None:
    apps[key].delay = 5.0  # between chunks: the run is still going when it is stopped
    api = client(DifyClient, dify, key)
    if key == "app-workflow":
        body: dict[str, Any] = {"inputs": {"query": "a long run"}, "response_mode": "streaming", "user": USER}
        response = api._send_request("POST", "/workflows/run", body, stream=True)
    elif key == "app-chat":
        response = client(ChatClient, dify, key).create_chat_message({}, "a long run", USER, "streaming")
    else:
        response = client(CompletionClient, dify, key).create_completion_message({"query": "q"}, "streaming", USER)
    lines = response.iter_lines(decode_unicode=True)
    first = json.loads(next(line for line in lines if line.startswith("data: "))[len("data: ") :])
    stopped = api._send_request("POST", stop.format(first["task_id"]), {"user": USER})
    assert stopped.status_code == 200
    assert stopped.json() == {"result": "success"}
    rest = [json.loads(line[len("data: ") :]) for line in lines if line.startswith("data: ")]
    assert rest[-1]["event"] == last  # the run ends at once, not after the 5 s pauses
    if last == "workflow_finished":
        assert rest[-1]["data"]["status"] == "stopped"
    assert dify.stops == [{"path": "/v1" + stop.format(first["task_id"]), "task_id": first["task_id"], "user": USER,
                           "known": True}]  # fmt: skip


def test_stop_checks(dify: DifyServer) -> None:
    api = client(DifyClient, dify, "app-chat")
    assert api._send_request("POST", "/chat-messages/unknown-task/stop", {"user": USER}).json() == {
        "result": "success"
    }  # Dify answers success for any task id
    assert_error(api._send_request("POST", "/chat-messages/t/stop", {}), 400, "invalid_param")
    assert_error(api._send_request("POST", "/workflows/tasks/t/stop", {"user": USER}), 400, "not_workflow_app")
