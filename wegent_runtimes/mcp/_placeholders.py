"""`${{path}}` placeholders in MCP server configs (upstream reference 2.8), filled from what the task knows.

A path is dotted: `${{task_id}}`, `${{bot.0.name}}`, `${{ghost.name}}`; a number indexes a list. A path that leads
nowhere (an unknown key, an index out of range, a null) keeps the placeholder as written, as upstream does. Strings
are inserted as they are; other values as JSON (`true`, `3`, `{"a": 1}`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from wegent_core import McpServerPlan

TEMPLATE = re.compile(r"\$\{\{([^{}]*)\}\}")
_MISSING = object()


def lookup(data: Any, path: str) -> Any:
    """The value at a dotted path, or `_MISSING`."""
    value = data
    for key in path.strip().split("."):
        if isinstance(value, Mapping) and key in value:
            value = value[key]
        elif isinstance(value, Sequence) and not isinstance(value, str) and key.isdecimal() and int(key) < len(value):
            value = value[int(key)]
        else:
            return _MISSING
    return _MISSING if value is None else value


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str)


def fill_placeholders(value: Any, placeholders: Mapping[str, Any]) -> Any:
    """`value` (a string, or lists and mappings of them) with its `${{path}}` placeholders filled."""
    if isinstance(value, str):

        def fill(match: re.Match[str]) -> str:
            found = lookup(placeholders, match.group(1))
            return match.group(0) if found is _MISSING else _text(found)

        return TEMPLATE.sub(fill, value)
    if isinstance(value, Mapping):
        return {k: fill_placeholders(v, placeholders) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [fill_placeholders(v, placeholders) for v in value]
    return value


TEMPLATED = ("command", "args", "env", "url", "headers")  # the fields of a server that placeholders may appear in


def fill_plan(plan: McpServerPlan, placeholders: Mapping[str, Any]) -> McpServerPlan:
    """The server with its `${{path}}` placeholders filled."""
    return plan.model_copy(update={k: fill_placeholders(getattr(plan, k), placeholders) for k in TEMPLATED})
