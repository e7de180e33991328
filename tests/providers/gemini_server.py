"""A local server for the Gemini developer API routes that google-genai calls, answering from a real model.

`POST /v1beta/models/{model}:generateContent` and `:streamGenerateContent?alt=sse` take Gemini contents (text,
functionCall and functionResponse parts, systemInstruction, tools with functionDeclarations, toolConfig,
generationConfig), translate them to the chat completions of the llama-server behind, and translate the answer back:
text parts, whole functionCall parts (with a thoughtSignature, as Gemini 3 sends), usageMetadata. With
`thinkingConfig.includeThoughts` a thought part comes first (its text is fixed: the small model has no thinking mode).

Errors come as Google APIs send them: a wrong `x-goog-api-key` gives 400 INVALID_ARGUMENT (API_KEY_INVALID); the
models `error-429` (RESOURCE_EXHAUSTED with a RetryInfo of 7 s), `error-500`, `error-503` and `error-400` fail with that
status, and `slow` answers after 3 s. Every request is kept in `app.state.requests` (its body with camelCase names).
"""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx2
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

GEMINI_KEY = "gemini-test-key"
_STATUS = {400: "INVALID_ARGUMENT", 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE"}


def gemini_app(llama_url: str, llama_key: str) -> Starlette:
    requests: list[dict[str, Any]] = []

    async def generate(request: Request) -> Response:
        model, _, method = request.path_params["target"].partition(":")
        body = camel(await request.json())
        requests.append(
            {
                "model": model,
                "method": method,
                "query": dict(request.query_params),
                "body": body,
                "headers": dict(request.headers),
            }
        )
        if request.headers.get("x-goog-api-key") != GEMINI_KEY:
            return google_error(400, "API key not valid. Please pass a valid API key.", reason="API_KEY_INVALID")
        if model.startswith("error-"):
            status = int(model.removeprefix("error-"))
            return google_error(status, f"test server: {status}", retry_delay="7s" if status == 429 else None)
        if model == "slow":
            await asyncio.sleep(3)
        chat = to_chat(body)
        thinking = bool(((body.get("generationConfig") or {}).get("thinkingConfig") or {}).get("includeThoughts"))
        if method == "generateContent":
            answer = await _complete(llama_url, llama_key, chat)
            return JSONResponse(_reply(model, answer["text"], answer["calls"], answer["usage"], thinking, final=True))
        if method == "streamGenerateContent":
            return StreamingResponse(_sse(model, llama_url, llama_key, chat, thinking), media_type="text/event-stream")
        return google_error(404, f"unknown method {method}")

    app = Starlette(routes=[Route("/v1beta/models/{target}", generate, methods=["POST"])])
    app.state.requests = requests
    return app


def google_error(status: int, message: str, *, reason: str | None = None, retry_delay: str | None = None) -> Response:
    details: list[dict[str, Any]] = []
    if reason:
        details.append(
            {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": reason, "domain": "googleapis.com"}
        )
    if retry_delay:
        details.append({"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": retry_delay})
    error = {"code": status, "message": message, "status": _STATUS.get(status, "UNKNOWN"), "details": details}
    return JSONResponse({"error": error}, status_code=status)


# --- Gemini request -> chat completions ---------------------------------------------------------------------------


def to_chat(body: dict[str, Any]) -> dict[str, Any]:
    messages: list[dict[str, Any]] = []
    system = body.get("systemInstruction")
    if system:
        messages.append({"role": "system", "content": "".join(p.get("text", "") for p in system.get("parts", []))})
    for content in body.get("contents", []):
        messages += _messages(content)
    chat: dict[str, Any] = {"messages": messages}
    declarations = [d for tool in body.get("tools") or [] for d in tool.get("functionDeclarations") or []]
    calling = ((body.get("toolConfig") or {}).get("functionCallingConfig")) or {}
    allowed = calling.get("allowedFunctionNames")
    if declarations:
        # llama-server takes tool_choice only as a string: a forced function is the only tool offered, required.
        chosen = [d for d in declarations if not allowed or d["name"] in allowed]
        chat["tools"] = [
            {
                "type": "function",
                "function": {"name": d["name"], "description": d.get("description", ""), "parameters": _schema(d)},
            }
            for d in chosen
        ]
        mode = calling.get("mode", "AUTO")
        chat["tool_choice"] = {"ANY": "required", "NONE": "none"}.get(mode, "auto")
    config = body.get("generationConfig") or {}
    if "temperature" in config:
        chat["temperature"] = config["temperature"]
    if "maxOutputTokens" in config:
        chat["max_tokens"] = config["maxOutputTokens"]
    return chat


def _messages(content: dict[str, Any]) -> list[dict[str, Any]]:
    parts = content.get("parts", [])
    if content.get("role") == "model":
        text = "".join(p.get("text", "") for p in parts if "text" in p and not p.get("thought"))
        calls = [
            {
                "id": p["functionCall"].get("id") or "",
                "type": "function",
                "function": {
                    "name": p["functionCall"]["name"],
                    "arguments": json.dumps(p["functionCall"].get("args", {})),
                },
            }
            for p in parts
            if "functionCall" in p
        ]
        message: dict[str, Any] = {"role": "assistant", "content": text or None}
        if calls:
            message["tool_calls"] = calls
        return [message]
    out: list[dict[str, Any]] = []
    for part in parts:
        if "functionResponse" in part:
            response = part["functionResponse"]
            result = response.get("response", {})
            text = result.get("result") if isinstance(result.get("result"), str) else json.dumps(result)
            out.append({"role": "tool", "tool_call_id": response.get("id") or "", "content": text})
        elif "text" in part:
            out.append({"role": "user", "content": part["text"]})
    return out


_OPAQUE = {"parametersJsonSchema", "parameters", "args", "response", "responseJsonSchema"}  # user data inside


def camel(value: Any) -> Any:
    """Field names in lowerCamelCase. google-genai 3.4 sends the fields of nested objects under their proto names
    (`parameters_json_schema`, `include_thoughts`); Google's JSON parsers accept both spellings, and so do we."""
    if isinstance(value, list):
        return [camel(v) for v in value]
    if not isinstance(value, dict):
        return value
    out = {}
    for key, item in value.items():
        head, *rest = key.split("_")
        name = head + "".join(word.title() for word in rest)
        out[name] = item if name in _OPAQUE else camel(item)
    return out


def _schema(declaration: dict[str, Any]) -> dict[str, Any]:
    if "parametersJsonSchema" in declaration:
        return declaration["parametersJsonSchema"]
    return _lower_types(declaration.get("parameters") or {"type": "object", "properties": {}})


def _lower_types(schema: Any) -> Any:
    """Gemini's Schema spells types in capitals (`OBJECT`); JSON Schema in lower case."""
    if isinstance(schema, dict):
        return {k: (v.lower() if k == "type" and isinstance(v, str) else _lower_types(v)) for k, v in schema.items()}
    if isinstance(schema, list):
        return [_lower_types(v) for v in schema]
    return schema


# --- chat completions -> Gemini response --------------------------------------------------------------------------


def _headers(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def _complete(url: str, key: str, chat: dict[str, Any]) -> dict[str, Any]:
    async with httpx2.AsyncClient(timeout=60) as client:
        response = await client.post(f"{url}/v1/chat/completions", json={**chat, "model": "m"}, headers=_headers(key))
        response.raise_for_status()
        data = response.json()
    message = data["choices"][0]["message"]
    calls = [
        {"id": c.get("id"), "name": c["function"]["name"], "args": json.loads(c["function"]["arguments"] or "{}")}
        for c in message.get("tool_calls") or []
    ]
    return {"text": message.get("content") or "", "calls": calls, "usage": data.get("usage") or {}}


async def _sse(model: str, url: str, key: str, chat: dict[str, Any], thinking: bool) -> AsyncIterator[str]:
    if thinking:
        yield _event({"candidates": [{"content": {"role": "model", "parts": [_THOUGHT]}, "index": 0}]})
    calls: dict[int, dict[str, Any]] = {}
    usage: dict[str, Any] = {}
    async with httpx2.AsyncClient(timeout=60) as client:
        payload = {**chat, "model": "m", "stream": True, "stream_options": {"include_usage": True}}
        async with client.stream("POST", f"{url}/v1/chat/completions", json=payload, headers=_headers(key)) as response:
            async for line in response.aiter_lines():
                if not line.startswith("data: ") or line == "data: [DONE]":
                    continue
                chunk = json.loads(line.removeprefix("data: "))
                usage = chunk.get("usage") or usage
                for choice in chunk.get("choices") or []:
                    delta = choice.get("delta") or {}
                    if delta.get("content"):
                        parts = [{"text": delta["content"]}]
                        yield _event({"candidates": [{"content": {"role": "model", "parts": parts}, "index": 0}]})
                    for fragment in delta.get("tool_calls") or []:
                        call = calls.setdefault(fragment.get("index", 0), {"id": None, "name": "", "arguments": ""})
                        call["id"] = call["id"] or fragment.get("id")
                        call["name"] += (fragment.get("function") or {}).get("name") or ""
                        call["arguments"] += (fragment.get("function") or {}).get("arguments") or ""
    whole = [{"id": c["id"], "name": c["name"], "args": json.loads(c["arguments"] or "{}")} for c in calls.values()]
    yield _event(_reply(model, "", whole, usage, thinking, final=True))


_THOUGHT = {"text": "The user asks a question; answer it.", "thought": True}


def _reply(
    model: str, text: str, calls: list[dict[str, Any]], usage: dict[str, Any], thinking: bool, *, final: bool
) -> dict[str, Any]:
    parts: list[dict[str, Any]] = [_THOUGHT] if thinking and text else []
    if text:
        parts.append({"text": text})
    for call in calls:
        call_id = call["id"] or uuid.uuid4().hex[:8]
        signature = base64.b64encode(f"sig-{call_id}".encode()).decode()
        function = {"id": call_id, "name": call["name"], "args": call["args"]}
        parts.append({"functionCall": function, "thoughtSignature": signature})
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
    if final:
        candidate["finishReason"] = "STOP"
    thoughts = len(_THOUGHT["text"].split()) if thinking else 0
    metadata = {
        "promptTokenCount": usage.get("prompt_tokens", 0),
        "candidatesTokenCount": usage.get("completion_tokens", 0),
        "totalTokenCount": usage.get("prompt_tokens", 0) + usage.get("completion_tokens", 0) + thoughts,
    }
    if thoughts:
        metadata["thoughtsTokenCount"] = thoughts
    return {"candidates": [candidate], "usageMetadata": metadata, "modelVersion": model, "responseId": uuid.uuid4().hex}


def _event(data: dict[str, Any]) -> str:
    return f"data: {json.dumps(data)}\n\n"
