"""A Dify-compatible Service API server for tests: the endpoints the Dify runtime uses, with the real API's request
checks, error bodies (`{"code", "message", "status"}`), status codes and streamed events (`data: {json}` blocks and
`event: ping` keep-alives), as Dify's API documentation and its service_api controllers define them.

Each API key is one app (as in Dify) with a mode and a script: what it answers, how slowly, and which failure it
shows. Every request is recorded, stop requests too, so tests can check what a client sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

CHAT_MODES = ("chat", "agent-chat", "advanced-chat")
ROUTE_MISMATCH = "Please check if your app mode matches the right API route."


@dataclass
class App:
    """One Dify app, as its API key sees it, and its script."""

    mode: str  # chat | agent-chat | advanced-chat | workflow | completion
    name: str = "Test app"
    chunks: Callable[[str, int], list[str]] | None = None  # (query, turn in conversation) -> answer chunks
    outputs: dict[str, Any] | None = None  # a workflow's outputs (default: {"text": "echo: <query>"})
    delay: float = 0.0  # seconds between streamed chunks
    required: list[str] = field(default_factory=list)  # inputs of the user input form that must be given
    error_event: dict[str, Any] | None = None  # sent (as an `error` event) after the first chunk
    http_errors: list[tuple[int, str, str]] = field(default_factory=list)  # answered first, one per request
    usage: dict[str, Any] | None = None
    info_fails: bool = False  # GET /v1/info answers 500


@dataclass
class Conversation:
    id: str
    key: str
    user: str
    queries: list[str] = field(default_factory=list)


def error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"code": code, "message": message, "status": status}, status_code=status)


def usage_of(prompt: str, answer: str) -> dict[str, Any]:
    prompt_tokens, completion_tokens = len(prompt.split()) + 10, len(answer.split())
    return {
        "prompt_tokens": prompt_tokens,
        "prompt_unit_price": "0.001",
        "prompt_price_unit": "0.001",
        "prompt_price": f"{prompt_tokens * 0.000001:.7f}",
        "completion_tokens": completion_tokens,
        "completion_unit_price": "0.002",
        "completion_price_unit": "0.001",
        "completion_price": f"{completion_tokens * 0.000002:.7f}",
        "total_tokens": prompt_tokens + completion_tokens,
        "total_price": f"{prompt_tokens * 0.000001 + completion_tokens * 0.000002:.7f}",
        "currency": "USD",
        "latency": 0.12,
    }


class DifyServer:
    """The app, its state, and a uvicorn server in a thread on a free loopback port. Use as a context manager."""

    def __init__(self, apps: dict[str, App]) -> None:
        self.apps = apps
        self.requests: list[dict[str, Any]] = []  # {method, path, json, query}
        self.stops: list[dict[str, Any]] = []  # {path, task_id, user, known}
        self.conversations: dict[str, Conversation] = {}
        self.running: dict[str, asyncio.Event] = {}  # Dify task id -> its stop flag
        self.finished: list[dict[str, Any]] = []  # {task_id, stopped}
        self._background: set[asyncio.Task[None]] = set()  # runs whose client may be gone
        self.port = _free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.app = Starlette(routes=self._routes())
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle --------------------------------------------------------------------------------------------------

    def __enter__(self) -> DifyServer:
        config = uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="dify-test-server", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the Dify test server did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: Any) -> None:
        assert self._server is not None
        assert self._thread is not None
        self._server.should_exit = True
        self._thread.join(timeout=10)

    def requests_to(self, path: str) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["path"] == path]

    # --- routes -----------------------------------------------------------------------------------------------------

    def _routes(self) -> list[Route]:
        return [
            Route("/v1/info", self.info, methods=["GET"]),
            Route("/v1/parameters", self.parameters, methods=["GET"]),
            Route("/v1/chat-messages", self.chat_messages, methods=["POST"]),
            Route("/v1/completion-messages", self.completion_messages, methods=["POST"]),
            Route("/v1/workflows/run", self.workflows_run, methods=["POST"]),
            Route("/v1/chat-messages/{task_id}/stop", self.stop, methods=["POST"]),
            Route("/v1/completion-messages/{task_id}/stop", self.stop, methods=["POST"]),
            Route("/v1/workflows/tasks/{task_id}/stop", self.stop, methods=["POST"]),
        ]

    async def _enter(self, request: Request) -> tuple[str, App, dict[str, Any]] | Response:
        """Record the request and check the key, as Dify's validate_app_token does; the key, app and JSON body."""
        body: Any = {}
        if request.method == "POST":
            try:
                body = json.loads(await request.body() or b"{}")
            except ValueError:
                return error(
                    400, "bad_request", "The browser (or proxy) sent a request that this server could not understand."
                )
        self.requests.append(
            {"method": request.method, "path": request.url.path, "json": body, "query": dict(request.query_params)}
        )
        header = request.headers.get("authorization", "")
        scheme, _, key = header.partition(" ")
        if scheme != "Bearer" or not key:
            return error(401, "unauthorized", "Authorization header must be provided and start with 'Bearer'")
        app = self.apps.get(key)
        if app is None:
            return error(401, "unauthorized", "Access token is invalid")
        if not isinstance(body, dict):
            return error(400, "invalid_param", "The request body must be a JSON object.")
        if app.http_errors and request.method == "POST" and not request.url.path.endswith("/stop"):
            status, code, message = app.http_errors.pop(0)
            return error(status, code, message)
        return key, app, body

    async def info(self, request: Request) -> Response:
        entered = await self._enter(request)
        if isinstance(entered, Response):
            return entered
        _, app, _ = entered
        if app.info_fails:
            return error(500, "internal_server_error", "Internal Server Error.")
        return JSONResponse(
            {"name": app.name, "description": "A test app", "tags": [], "mode": app.mode, "author_name": "tests"}
        )

    async def parameters(self, request: Request) -> Response:
        entered = await self._enter(request)
        if isinstance(entered, Response):
            return entered
        _, app, _ = entered
        form = [
            {"text-input": {"label": name, "variable": name, "required": True, "max_length": 256, "default": ""}}
            for name in app.required
        ]
        return JSONResponse(
            {
                "opening_statement": "",
                "suggested_questions": [],
                "suggested_questions_after_answer": {"enabled": False},
                "speech_to_text": {"enabled": False},
                "text_to_speech": {"enabled": False, "voice": "", "language": ""},
                "retriever_resource": {"enabled": False},
                "annotation_reply": {"enabled": False},
                "more_like_this": {"enabled": False},
                "user_input_form": form,
                "sensitive_word_avoidance": {"enabled": False},
                "file_upload": {"image": {"enabled": False, "number_limits": 3, "transfer_methods": ["remote_url"]}},
                "system_parameters": {
                    "file_size_limit": 15,
                    "image_file_size_limit": 10,
                    "audio_file_size_limit": 50,
                    "video_file_size_limit": 100,
                },
            }
        )

    async def chat_messages(self, request: Request) -> Response:
        entered = await self._enter(request)
        if isinstance(entered, Response):
            return entered
        key, app, body = entered
        if app.mode not in CHAT_MODES:
            return error(400, "not_chat_app", ROUTE_MISMATCH)
        checked = _check_common(app, body, needs_query=True)
        if checked is not None:
            return checked
        if app.mode == "agent-chat" and body["response_mode"] == "blocking":
            return error(400, "invalid_param", "Agent Chat App does not support blocking mode")
        conversation, missing = self._conversation(key, body)
        if missing is not None:
            return missing
        query = body["query"]
        conversation.queries.append(query)
        chunks = (app.chunks or _echo)(query, len(conversation.queries))
        return await self._respond(app, body, _chat_events(app, chunks, conversation, query))

    async def completion_messages(self, request: Request) -> Response:
        entered = await self._enter(request)
        if isinstance(entered, Response):
            return entered
        _, app, body = entered
        if app.mode != "completion":
            return error(400, "app_unavailable", "App unavailable, please check your app configurations.")
        checked = _check_common(app, body, needs_query=False)
        if checked is not None:
            return checked
        query = str(body["inputs"].get("query", ""))
        chunks = (app.chunks or _echo)(query, 1)
        return await self._respond(app, body, _completion_events(app, chunks, query))

    async def workflows_run(self, request: Request) -> Response:
        entered = await self._enter(request)
        if isinstance(entered, Response):
            return entered
        _, app, body = entered
        if app.mode != "workflow":
            return error(400, "not_workflow_app", ROUTE_MISMATCH)
        checked = _check_common(app, body, needs_query=False)
        if checked is not None:
            return checked
        outputs = app.outputs if app.outputs is not None else {"text": f"echo: {body['inputs'].get('query', '')}"}
        return await self._respond(app, body, _workflow_events(app, outputs))

    async def stop(self, request: Request) -> Response:
        entered = await self._enter(request)
        if isinstance(entered, Response):
            return entered
        _, app, body = entered
        path = request.url.path
        if "/chat-messages/" in path and app.mode not in CHAT_MODES:
            return error(400, "not_chat_app", ROUTE_MISMATCH)
        if "/workflows/" in path and app.mode != "workflow":
            return error(400, "not_workflow_app", ROUTE_MISMATCH)
        if "/completion-messages/" in path and app.mode != "completion":
            return error(400, "app_unavailable", "App unavailable, please check your app configurations.")
        if not body.get("user"):
            return error(400, "invalid_param", "Arg user must be provided.")
        task_id = request.path_params["task_id"]
        flag = self.running.get(task_id)
        self.stops.append({"path": path, "task_id": task_id, "user": body["user"], "known": flag is not None})
        if flag is not None:
            flag.set()
        return JSONResponse({"result": "success"})  # Dify answers so for any task id: stopping is best effort

    # --- answering --------------------------------------------------------------------------------------------------

    def _conversation(self, key: str, body: dict[str, Any]) -> tuple[Conversation, Response | None]:
        wanted = body.get("conversation_id")
        if wanted:
            found = self.conversations.get(wanted)
            if found is None or found.key != key or found.user != body["user"]:
                return Conversation("", key, ""), error(404, "not_found", "Conversation Not Exists.")
            return found, None
        conversation = Conversation(str(uuid.uuid4()), key, body["user"])
        self.conversations[conversation.id] = conversation
        return conversation, None

    async def _respond(self, app: App, body: dict[str, Any], events: Callable[[Run], AsyncIterator[dict]]) -> Response:
        run = Run(task_id=str(uuid.uuid4()), app=app, stop=asyncio.Event())
        self.running[run.task_id] = run.stop
        if body["response_mode"] == "blocking":
            last: dict[str, Any] = {}
            async for event in events(run):
                if event.get("event") == "error":
                    self._done(run)
                    return error(int(event.get("status", 400)), event["code"], event["message"])
                last = event
            self._done(run)
            return JSONResponse(run.blocking(last))
        return StreamingResponse(self._sse(run, events), media_type="text/event-stream")

    async def _sse(self, run: Run, events: Callable[[Run], AsyncIterator[dict]]) -> AsyncIterator[str]:
        """As in Dify, the run goes on in the background and the response only reads its queue: a client that
        disconnects does not end the run (its tokens are still spent); only the stop endpoint does."""
        queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()

        async def produce() -> None:
            try:
                async for event in events(run):
                    await queue.put(event)
                    if event.get("event") == "error":
                        return
            finally:
                self._done(run)
                await queue.put(None)

        self._background.add(task := asyncio.get_running_loop().create_task(produce()))
        task.add_done_callback(self._background.discard)
        yield "event: ping\n\n"
        while (event := await queue.get()) is not None:
            yield f"data: {json.dumps(event)}\n\n"

    def _done(self, run: Run) -> None:
        self.running.pop(run.task_id, None)
        self.finished.append({"task_id": run.task_id, "stopped": run.stop.is_set()})


@dataclass
class Run:
    """One run of an app: its Dify task id, and what a blocking response gathers."""

    task_id: str
    app: App
    stop: asyncio.Event
    message_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    answer: str = ""
    conversation_id: str | None = None
    workflow: dict[str, Any] | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    async def pause(self) -> bool:
        """Wait between chunks; whether the run was stopped meanwhile."""
        if self.app.delay:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), self.app.delay)
        return self.stop.is_set()

    def message(self, event: str, answer: str) -> dict[str, Any]:
        self.answer += answer
        data = {"event": event, "task_id": self.task_id, "id": self.message_id, "message_id": self.message_id}
        if self.conversation_id is not None:
            data["conversation_id"] = self.conversation_id
        return {**data, "answer": answer, "created_at": int(time.time())}

    def blocking(self, last: dict[str, Any]) -> dict[str, Any]:
        if self.app.mode == "workflow":
            return {"task_id": self.task_id, "workflow_run_id": self.workflow["id"], "data": self.workflow}
        response = {
            "event": "message",
            "task_id": self.task_id,
            "id": self.message_id,
            "message_id": self.message_id,
            "mode": self.app.mode,
            "answer": self.answer,
            "metadata": self.metadata,
            "created_at": int(time.time()),
        }
        if self.conversation_id is not None:
            response["conversation_id"] = self.conversation_id
        return response


def _check_common(app: App, body: dict[str, Any], *, needs_query: bool) -> Response | None:
    """The request checks every run endpoint makes."""
    if not isinstance(body.get("inputs"), dict):
        return error(400, "invalid_param", "inputs is required and must be an object")
    if needs_query and not isinstance(body.get("query"), str):
        return error(400, "invalid_param", "query is required")
    if body.get("response_mode") not in ("blocking", "streaming"):
        return error(400, "invalid_param", "response_mode must be blocking or streaming")
    if not body.get("user"):
        return error(400, "invalid_param", "Arg user must be provided.")
    for name in app.required:
        if not body["inputs"].get(name):
            return error(400, "invalid_param", f"{name} is required in input form")
    conversation = body.get("conversation_id")
    if conversation is not None and not isinstance(conversation, str):
        return error(400, "invalid_param", "conversation_id must be a string")
    return None


def _echo(query: str, turn: int) -> list[str]:
    return ["answer ", f"{turn}", ": ", query]


def _chat_events(
    app: App, chunks: list[str], conversation: Conversation, query: str
) -> Callable[[Run], AsyncIterator[dict]]:
    async def events(run: Run) -> AsyncIterator[dict]:
        run.conversation_id = conversation.id
        if app.mode == "advanced-chat":
            run.workflow = _workflow_data(run, "running", None)
            yield {
                "event": "workflow_started",
                "task_id": run.task_id,
                "workflow_run_id": run.workflow["id"],
                "data": {k: run.workflow[k] for k in ("id", "workflow_id", "sequence_number", "created_at")},
            }
            yield _node(run, "node_started", "llm")
        if app.mode == "agent-chat":
            thought = {
                "event": "agent_thought",
                "id": str(uuid.uuid4()),
                "task_id": run.task_id,
                "message_id": run.message_id,
                "conversation_id": conversation.id,
                "position": 1,
                "thought": "",
                "tool": "current_time",
                "tool_labels": {},
                "tool_input": '{"tz": "UTC"}',
                "observation": "",
                "message_files": [],
                "created_at": int(time.time()),
            }
            yield thought
            yield {**thought, "observation": "12:00 UTC"}
        kind = "agent_message" if app.mode == "agent-chat" else "message"
        stopped = False
        for index, chunk in enumerate(chunks):
            yield run.message(kind, chunk)
            if index == 0 and app.error_event is not None:
                yield {"event": "error", "task_id": run.task_id, "message_id": run.message_id, **app.error_event}
                return
            if await run.pause():
                stopped = True
                break
        if app.mode == "advanced-chat":
            yield _node(run, "node_finished", "llm")
            status = "stopped" if stopped else "succeeded"
            run.workflow = _workflow_data(run, status, {"answer": run.answer})
            yield {
                "event": "workflow_finished",
                "task_id": run.task_id,
                "workflow_run_id": run.workflow["id"],
                "data": run.workflow,
            }
        run.metadata = {"usage": app.usage or usage_of(query, run.answer), "retriever_resources": []}
        yield {
            "event": "message_end",
            "task_id": run.task_id,
            "id": run.message_id,
            "message_id": run.message_id,
            "conversation_id": conversation.id,
            "metadata": run.metadata,
        }

    return events


def _completion_events(app: App, chunks: list[str], query: str) -> Callable[[Run], AsyncIterator[dict]]:
    async def events(run: Run) -> AsyncIterator[dict]:
        for index, chunk in enumerate(chunks):
            yield run.message("message", chunk)
            if index == 0 and app.error_event is not None:
                yield {"event": "error", "task_id": run.task_id, "message_id": run.message_id, **app.error_event}
                return
            if await run.pause():
                break
        run.metadata = {"usage": app.usage or usage_of(query, run.answer), "retriever_resources": []}
        yield {
            "event": "message_end",
            "task_id": run.task_id,
            "id": run.message_id,
            "message_id": run.message_id,
            "metadata": run.metadata,
        }

    return events


def _workflow_events(app: App, outputs: dict[str, Any]) -> Callable[[Run], AsyncIterator[dict]]:
    async def events(run: Run) -> AsyncIterator[dict]:
        run.workflow = _workflow_data(run, "running", None)
        base = {"task_id": run.task_id, "workflow_run_id": run.workflow["id"]}
        yield {
            "event": "workflow_started",
            **base,
            "data": {k: run.workflow[k] for k in ("id", "workflow_id", "sequence_number", "created_at")},
        }
        yield _node(run, "node_started", "llm")
        stopped = False
        text = str(outputs.get("text", "")) if outputs else ""
        for index, word in enumerate(text.split(" ") if text else []):
            chunk = word if index == 0 else " " + word
            yield {"event": "text_chunk", **base, "data": {"text": chunk, "from_variable_selector": ["llm", "text"]}}
            if index == 0 and app.error_event is not None:
                yield {"event": "error", **base, **app.error_event}
                return
            if await run.pause():
                stopped = True
                break
        yield _node(run, "node_finished", "llm")
        run.workflow = _workflow_data(run, "stopped" if stopped else "succeeded", None if stopped else outputs)
        if stopped:
            run.workflow["error"] = "Workflow execution stopped by user."
        yield {"event": "workflow_finished", **base, "data": run.workflow}

    return events


def _workflow_data(run: Run, status: str, outputs: dict[str, Any] | None) -> dict[str, Any]:
    previous = run.workflow or {}
    return {
        "id": previous.get("id") or str(uuid.uuid4()),
        "workflow_id": previous.get("workflow_id") or str(uuid.uuid4()),
        "sequence_number": 1,
        "status": status,
        "outputs": outputs,
        "error": None,
        "elapsed_time": 0.05,
        "total_tokens": 42 if status != "running" else 0,
        "total_steps": 3,
        "created_at": previous.get("created_at") or int(time.time()),
        "finished_at": int(time.time()) if status != "running" else None,
    }


def _node(run: Run, event: str, node_type: str) -> dict[str, Any]:
    workflow = run.workflow or {}
    data = {
        "id": str(uuid.uuid4()),
        "node_id": node_type,
        "node_type": node_type,
        "title": node_type.upper(),
        "index": 1,
        "predecessor_node_id": "start",
        "inputs": {},
        "created_at": int(time.time()),
    }
    if event == "node_finished":
        data.update(status="succeeded", outputs={}, elapsed_time=0.01, execution_metadata={})
    return {"event": event, "task_id": run.task_id, "workflow_run_id": workflow.get("id"), "data": data}


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
