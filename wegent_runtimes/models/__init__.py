"""Model providers: Anthropic, OpenAI, Google, the offline local model, and `auto` (whichever is configured).

Each is a `ModelClient` made from a `ModelPlan` and registered by protocol (see `_plugin`); the SDKs sit behind the
extras `anthropic`, `openai` and `google` and load at the first call.
"""

from ._anthropic import AnthropicModel
from ._auto import choose as choose_auto
from ._google import GeminiModel
from ._local import LocalModel, default_model_path
from ._openai import OpenAIChatModel, OpenAIResponsesModel, openai_model

__all__ = [
    "AnthropicModel",
    "GeminiModel",
    "LocalModel",
    "OpenAIChatModel",
    "OpenAIResponsesModel",
    "choose_auto",
    "default_model_path",
    "openai_model",
]
