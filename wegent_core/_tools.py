"""Tools a member can call, and what a call is told about itself.

A tool is any object with a `spec` (`ToolSpec`: name, description, JSON Schema of the arguments) and an async
`call(arguments, context)` returning text. `tool(fn)` makes one from a typed Python function. Every call carries an
idempotency key that is the same when a resumed task repeats the call, so a tool with side effects can detect the
repeat (`context.idempotency_key`).
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import anyio
from pydantic import TypeAdapter, ValidationError, create_model

from ._errors import WegentError
from ._models import ToolSpec


@dataclass(frozen=True, slots=True)
class ToolContext:
    task_id: int
    member: str  # namespace/name of the calling Bot
    call_id: str
    idempotency_key: str  # task, message, step and call index: stable across a resume
    subtask_id: int | None = None  # the calling turn's subtask: events a tool emits belong to it


class ToolError(WegentError):
    """A tool failed in a way the model should hear about (bad arguments, a refused action): the message goes back
    to the model as the tool's result, marked as an error, and the turn goes on."""


@runtime_checkable
class Tool(Protocol):
    spec: ToolSpec

    async def call(self, arguments: dict[str, Any], context: ToolContext) -> str: ...


class FunctionTool:
    """A tool from a Python function (sync functions run in a worker thread). Arguments are validated against the
    function's type hints; the function may take a `context: ToolContext` parameter."""

    def __init__(self, fn: Callable[..., Any], *, name: str | None = None, description: str | None = None) -> None:
        self.fn = fn
        signature = inspect.signature(fn)
        self._wants_context = "context" in signature.parameters
        fields: dict[str, Any] = {}
        for param in signature.parameters.values():
            if param.name == "context":
                continue
            annotation = Any if param.annotation is inspect.Parameter.empty else param.annotation
            default = ... if param.default is inspect.Parameter.empty else param.default
            fields[param.name] = (annotation, default)
        self._arguments = create_model(f"{fn.__name__}_arguments", **fields)
        schema = TypeAdapter(self._arguments).json_schema()
        schema.pop("title", None)
        self.spec = ToolSpec(
            name=name or fn.__name__,
            description=description or inspect.getdoc(fn) or "",
            parameters=schema,
        )

    async def call(self, arguments: dict[str, Any], context: ToolContext) -> str:
        try:
            parsed = self._arguments.model_validate(arguments)
        except ValidationError as error:
            raise ToolError(f"bad arguments for {self.spec.name}: {error}") from None
        kwargs = dict(parsed)
        if self._wants_context:
            kwargs["context"] = context
        if inspect.iscoroutinefunction(self.fn):
            result = await self.fn(**kwargs)
        else:
            result = await anyio.to_thread.run_sync(lambda: self.fn(**kwargs))
        if isinstance(result, Awaitable):
            result = await result
        return result if isinstance(result, str) else TypeAdapter(Any).dump_json(result).decode()

    def __repr__(self) -> str:
        return f"<tool {self.spec.name}>"


def tool(fn: Callable[..., Any] | None = None, *, name: str | None = None, description: str | None = None) -> Any:
    """Make a `Tool` from a function: `@tool` or `@tool(name="search")`."""
    if fn is None:
        return lambda f: FunctionTool(f, name=name, description=description)
    return FunctionTool(fn, name=name, description=description)
