"""What a Dify turn sends: the connection (from the Model's env, expanded at call time) and the app inputs, merged as
upstream merges them (reference 5.6): the Ghost's `bot_prompt` JSON, then `DIFY_PARAMS`, then the
`[EXTERNAL_API_PARAMS]{json}[/EXTERNAL_API_PARAMS]` block of the user's message, each overriding the one before."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from wegent_core import FatalModelError, ModelPlan

DEFAULT_TIMEOUT = 120.0  # seconds without a byte from Dify (it sends a ping every 10 s while a node works)
_BLOCK = re.compile(r"\[EXTERNAL_API_PARAMS\](.*?)\[/EXTERNAL_API_PARAMS\]\n?", re.DOTALL)
_API_SUFFIX = re.compile(r"/v1/?$")


@dataclass(frozen=True, slots=True)
class DifyConfig:
    """One Dify app's connection. Built at call time from `ModelPlan.materialize()`; never stored or logged: the
    key is kept out of `repr`."""

    base_url: str
    api_key: str = field(repr=False)
    app_id: str | None = None  # accepted as upstream does, and unused: one API key is one app
    params: dict[str, Any] = field(default_factory=dict)  # DIFY_PARAMS
    timeout: float = DEFAULT_TIMEOUT

    @classmethod
    def from_plan(cls, plan: ModelPlan) -> DifyConfig:
        env = plan.materialize().get("env") or {}
        key, base = str(env.get("DIFY_API_KEY") or "").strip(), str(env.get("DIFY_BASE_URL") or "").strip()
        if not key or key.startswith("${"):  # an unset ${VAR} placeholder stays as written
            raise FatalModelError(f"DIFY_API_KEY is not configured (Model {plan.namespace}/{plan.name})")
        if not base or base.startswith("${"):
            raise FatalModelError(f"DIFY_BASE_URL is not configured (Model {plan.namespace}/{plan.name})")
        return cls(
            base_url=_API_SUFFIX.sub("", base.rstrip("/")),  # the runtime adds /v1/... itself, as upstream's does
            api_key=key,
            app_id=str(env["DIFY_APP_ID"]) if env.get("DIFY_APP_ID") else None,
            params=parse_params(env.get("DIFY_PARAMS"), "DIFY_PARAMS"),
            timeout=_seconds(env.get("DIFY_TIMEOUT") or env.get("timeout")) or DEFAULT_TIMEOUT,
        )


def parse_params(value: Any, where: str) -> dict[str, Any]:
    """A params dict given as a dict or as a JSON string (upstream accepts both for DIFY_PARAMS)."""
    if value in (None, ""):
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as error:
            raise FatalModelError(f"{where} is not valid JSON: {error}") from None
    if not isinstance(value, dict):
        raise FatalModelError(f"{where} must be a JSON object, not {type(value).__name__}")
    return value


def bot_prompt_params(system_prompt: str) -> dict[str, Any]:
    """The lowest layer: a Ghost whose system prompt is `{"difyAppId": ..., "params": {...}}` (upstream's
    bot_prompt). Any other system prompt gives nothing: a Dify app has its own prompt."""
    try:
        value = json.loads(system_prompt)
    except ValueError:
        return {}
    params = value.get("params") if isinstance(value, dict) else None
    return params if isinstance(params, dict) else {}


def split_prompt(text: str) -> tuple[str, dict[str, Any] | None, str | None]:
    """The prompt without its `[EXTERNAL_API_PARAMS]` block, the block's params, and why the block was ignored
    (bad JSON) if it was. The block is removed in every case: it is never sent as part of the query."""
    match = _BLOCK.search(text)
    if match is None:
        return text, None, None
    prompt = (text[: match.start()] + text[match.end() :]).strip()
    try:
        params = parse_params(match.group(1).strip(), "the [EXTERNAL_API_PARAMS] block")
    except FatalModelError as error:
        return prompt, None, str(error)
    return prompt, params, None


def merge_params(*layers: dict[str, Any] | None) -> dict[str, Any]:
    """Shallow merge, later layers win (bot_prompt < DIFY_PARAMS < the message's block)."""
    merged: dict[str, Any] = {}
    for layer in layers:
        merged.update(layer or {})
    return merged


def _seconds(value: Any) -> float | None:
    try:
        return float(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None
