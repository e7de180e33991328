"""`protocol: auto` picks the provider this machine is configured for, else the offline model."""

from __future__ import annotations

import pytest

from wegent_core import ModelPlan, PluginError
from wegent_runtimes.models._auto import choose

PLAN = ModelPlan(name="m", namespace="default", chain=["default/m"], selected_by="modelRef", protocol="auto")


@pytest.mark.parametrize(
    ("environ", "protocol", "model_id", "key"),
    [
        ({}, "local", None, None),
        ({"OPENAI_API_KEY": "sk-1"}, "openai", "gpt-4.1-mini", "${OPENAI_API_KEY}"),
        ({"GOOGLE_API_KEY": "g"}, "gemini", "gemini-2.5-flash", "${GOOGLE_API_KEY}"),
        ({"GEMINI_API_KEY": "g", "GEMINI_MODEL": "gemini-x"}, "gemini", "gemini-x", "${GEMINI_API_KEY}"),
        ({"OPENAI_API_KEY": "sk", "ANTHROPIC_API_KEY": "a"}, "claude", "claude-sonnet-4-5", "${ANTHROPIC_API_KEY}"),
        ({"OPENAI_API_KEY": "sk", "ANTHROPIC_API_KEY": "a", "WEGENT_MODEL_PROVIDER": "openai"}, "openai", None, None),
        ({"ANTHROPIC_API_KEY": "a", "WEGENT_MODEL_PROVIDER": "LOCAL"}, "local", None, None),
    ],
)
def test_the_choice_follows_the_environment(
    environ: dict[str, str], protocol: str, model_id: str | None, key: str | None
) -> None:
    chosen = choose(PLAN, environ)
    assert chosen.protocol == protocol
    if model_id:
        assert chosen.model_id == model_id
    if key:
        assert chosen.api_key == key  # a placeholder: the key itself never enters the plan
        assert chosen.model_dump()["api_key"] == key


def test_a_base_url_variable_moves_the_endpoint() -> None:
    chosen = choose(PLAN, {"OPENAI_API_KEY": "sk", "OPENAI_BASE_URL": "http://127.0.0.1:9/v1"})
    assert (chosen.protocol, chosen.base_url, chosen.api_format) == (
        "openai",
        "http://127.0.0.1:9/v1",
        "chat/completions",
    )


def test_a_forced_provider_needs_its_key_and_a_known_name() -> None:
    with pytest.raises(PluginError, match="WEGENT_MODEL_PROVIDER=claude but none of ANTHROPIC_API_KEY is set"):
        choose(PLAN, {"WEGENT_MODEL_PROVIDER": "claude"})
    with pytest.raises(PluginError, match="expected one of claude, gemini, local, openai"):
        choose(PLAN, {"WEGENT_MODEL_PROVIDER": "mistral"})
