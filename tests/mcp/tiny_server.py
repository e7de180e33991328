"""A small MCP server over stdio, standard library only (it starts in milliseconds), for the process tests.

Tools: `echo`, `fail` (an error result), `crash` (exits mid-call), `wait` (never answers). Flags: `--hang` never
answers anything (a hung handshake), `--grandchild` starts a `sleep` that outlives the server, `--stubborn` ignores
SIGTERM and the end of stdin, `--log PATH` appends a line to PATH when it starts.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

TOOLS = [
    {
        "name": "echo",
        "description": "Echo the text",
        "inputSchema": {"type": "object", "properties": {"text": {"type": "string"}}},
    },
    {"name": "crash", "description": "Exit at once", "inputSchema": {"type": "object"}},
    {"name": "wait", "description": "Never answer", "inputSchema": {"type": "object"}},
    {"name": "fail", "description": "Answer with an error result", "inputSchema": {"type": "object"}},
]


def send(message: dict) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def answer(request: dict) -> dict | None:
    method, params = request.get("method"), request.get("params") or {}
    if method == "initialize":
        return {
            "protocolVersion": params.get("protocolVersion", "2025-06-18"),
            "capabilities": {"tools": {}},
            "serverInfo": {"name": "tiny", "version": "1"},
        }
    if method == "tools/list":
        return {"tools": TOOLS}
    if method == "tools/call":
        name, arguments = params.get("name"), params.get("arguments") or {}
        if name == "echo":
            return {"content": [{"type": "text", "text": str(arguments.get("text", ""))}]}
        if name == "fail":
            return {"content": [{"type": "text", "text": "it failed"}], "isError": True}
        if name == "crash":
            os._exit(3)
        if name == "wait":
            return None
    raise LookupError(method)


def main() -> None:
    flags = set(sys.argv[1:])
    if "--log" in sys.argv:
        with open(sys.argv[sys.argv.index("--log") + 1], "a") as log:
            log.write(f"{os.getpid()}\n")
    if "--grandchild" in flags:
        subprocess.Popen(["sleep", "600"], stdin=subprocess.DEVNULL)
    if "--stubborn" in flags:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    for line in sys.stdin:
        request = json.loads(line)
        if "--hang" in flags or "id" not in request:
            continue
        try:
            result = answer(request)
        except LookupError:
            send({"jsonrpc": "2.0", "id": request["id"], "error": {"code": -32601, "message": "Method not found"}})
            continue
        if result is not None:
            send({"jsonrpc": "2.0", "id": request["id"], "result": result})
    while "--stubborn" in flags:
        time.sleep(1)


if __name__ == "__main__":
    main()
