"""Registers the model providers, one per protocol. The SDKs load at the first call, so registering costs nothing."""

from __future__ import annotations

from wegent_core import ModelClient, ModelPlan
from wegent_core._hookspecs import Register, hookimpl

from ._anthropic import AnthropicModel
from ._auto import auto_model
from ._google import GeminiModel
from ._local import LocalModel
from ._openai import OpenAIResponsesModel, openai_model

AUTO_CHOICES = {"claude": AnthropicModel, "openai": openai_model, "gemini": GeminiModel, "local": LocalModel}


def auto(plan: ModelPlan) -> ModelClient:
    return auto_model(plan, AUTO_CHOICES)


@hookimpl
def register_model_providers(register: Register) -> None:
    register("claude", AnthropicModel, description="Anthropic Messages API (pip install 'wegent[anthropic]')")
    register("anthropic", AnthropicModel, description="alias of claude")
    register(
        "openai", openai_model, description="OpenAI chat completions, or the Responses API when apiFormat is responses"
    )
    register(
        "openai-responses", OpenAIResponsesModel, description="OpenAI Responses API (pip install 'wegent[openai]')"
    )
    register(
        "gemini", GeminiModel, description="Gemini developer API through google-genai (pip install 'wegent[google]')"
    )
    register("google", GeminiModel, description="alias of gemini")
    register("local", LocalModel, description="the offline model, llama.cpp in process (pip install 'wegent[local]')")
    register("auto", auto, description="Anthropic, OpenAI or Google when its API key is set, else the local model")
