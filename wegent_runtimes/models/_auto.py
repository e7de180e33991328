"""The `auto` protocol: whichever provider this machine is configured for, else the offline local model.

A Model with `protocol: auto` runs on Anthropic when `ANTHROPIC_API_KEY` is set, else on OpenAI with
`OPENAI_API_KEY`, else on Google with `GEMINI_API_KEY` (or `GOOGLE_API_KEY`), else on the local model, so one example
works on a fresh machine and on a developer's laptop alike. `WEGENT_MODEL_PROVIDER` (`claude`, `openai`, `gemini` or
`local`) overrides the choice; `ANTHROPIC_MODEL`, `OPENAI_MODEL` and `GEMINI_MODEL` choose the model id, and the
`*_BASE_URL` variables the endpoint. The key stays a `${...}` placeholder in the derived plan: it is expanded only when
the provider's client is built.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from wegent_core import ModelClient, ModelPlan, PluginError

CHOICE_VARIABLE = "WEGENT_MODEL_PROVIDER"


@dataclass(frozen=True)
class Candidate:
    protocol: str
    keys: tuple[str, ...]  # the first one set is used
    model_variable: str
    default_model: str
    base_url_variable: str


CANDIDATES = (
    Candidate("claude", ("ANTHROPIC_API_KEY",), "ANTHROPIC_MODEL", "claude-sonnet-4-5", "ANTHROPIC_BASE_URL"),
    Candidate("openai", ("OPENAI_API_KEY",), "OPENAI_MODEL", "gpt-4.1-mini", "OPENAI_BASE_URL"),
    Candidate("gemini", ("GEMINI_API_KEY", "GOOGLE_API_KEY"), "GEMINI_MODEL", "gemini-2.5-flash", "GEMINI_BASE_URL"),
)


def choose(plan: ModelPlan, environ: Mapping[str, str] | None = None) -> ModelPlan:
    """The plan of the provider `auto` stands for here: a copy of `plan` with its protocol, model and key set."""
    environ = os.environ if environ is None else environ
    wanted = environ.get(CHOICE_VARIABLE, "").strip().lower()
    if wanted == "local":
        return plan.model_copy(update={"protocol": "local"})
    known = {c.protocol for c in CANDIDATES} | {"local"}
    if wanted and wanted not in known:
        raise PluginError(f"{CHOICE_VARIABLE}={wanted!r}: expected one of {', '.join(sorted(known))}")
    for candidate in CANDIDATES:
        key = next((k for k in candidate.keys if environ.get(k)), None)
        if (wanted and candidate.protocol != wanted) or (key is None and not wanted):
            continue
        if key is None:
            raise PluginError(f"{CHOICE_VARIABLE}={wanted} but none of {', '.join(candidate.keys)} is set")
        return plan.model_copy(
            update={
                "protocol": candidate.protocol,
                "api_format": "chat/completions" if candidate.protocol == "openai" else None,
                "model_id": environ.get(candidate.model_variable) or candidate.default_model,
                "base_url": environ.get(candidate.base_url_variable) or None,
                "api_key": f"${{{key}}}",
            }
        )
    return plan.model_copy(update={"protocol": "local"})


def auto_model(plan: ModelPlan, providers: Mapping[str, Callable[[ModelPlan], ModelClient]]) -> ModelClient:
    chosen = choose(plan)
    return providers[str(chosen.protocol)](chosen)
