"""Fitting a conversation into a model's context window by dropping its oldest parts.

Sizes are estimated (about four characters a token, plus a little per message), which errs on the large side for
English and code. What is dropped keeps the conversation valid for every provider: it still starts with a user
message, an assistant's tool calls are never separated from their results, and the newest user message (the one
being answered) always stays.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

from ._models import ChatMessage, ToolSpec

_PER_MESSAGE = 4  # role and separators
_RESERVE = 1024  # tokens left for the reply when the model does not say how long its replies may be


def estimate_tokens(text: str) -> int:
    return (len(text) + 3) // 4


def message_tokens(message: ChatMessage) -> int:
    calls = sum(estimate_tokens(c.name + json.dumps(c.arguments)) for c in message.tool_calls)
    return _PER_MESSAGE + estimate_tokens(message.content) + calls


@dataclass(frozen=True)
class Fitted:
    messages: list[ChatMessage]
    dropped: int  # messages left out
    tokens: int  # the estimated size of what is sent, the system prompt and the tools included


def fit(
    messages: Sequence[ChatMessage],
    *,
    window: int | None,
    system: str = "",
    tools: Sequence[ToolSpec] = (),
    reserve: int | None = None,
) -> Fitted:
    """The newest part of `messages` that fits in `window` tokens less `reserve` (the reply's room)."""
    fixed = estimate_tokens(system) + sum(estimate_tokens(t.model_dump_json()) for t in tools)
    sizes = [message_tokens(m) for m in messages]
    total = fixed + sum(sizes)
    budget = None if window is None else window - (reserve if reserve is not None else min(_RESERVE, window // 4))
    if budget is None or total <= budget:
        return Fitted(list(messages), 0, total)
    keep = list(range(len(messages)))
    for group in _droppable(messages):
        if total <= budget:
            break
        total -= sum(sizes[i] for i in group)
        keep = [i for i in keep if i not in group]
    return Fitted([messages[i] for i in keep], len(messages) - len(keep), total)


def _droppable(messages: Sequence[ChatMessage]) -> list[set[int]]:
    """Groups of message indexes that can go, oldest first: whole exchanges before the last user message (each from
    a user message up to the next), then, after it, each assistant reply with the tool results that answer it."""
    users = [i for i, m in enumerate(messages) if m.role == "user"]
    last = users[-1] if users else 0
    groups = [set(range(start, end)) for start, end in pairwise(users) if end <= last]
    if users and users[0] > 0:  # anything before the first user message goes first (it cannot lead anyway)
        groups.insert(0, set(range(users[0])))
    index = last + 1
    while index < len(messages) - 1:  # the newest reply stays: the model must see what it just did
        group = {index}
        index += 1
        while index < len(messages) and messages[index].role == "tool":
            group.add(index)
            index += 1
        if index <= len(messages) - 1:
            groups.append(group)
    return groups
