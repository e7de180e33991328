"""Testing helpers for teams and plugins: the scripted model (`ScriptedModel`, and Models with `protocol:
scripted`), and pytest fixtures (this package's `_pytest_plugin`, loaded through the `pytest11` entry point)."""

from ._scripted import SCRIPTED, ScriptedModel, ScriptError, ScriptExhausted, scripted_model

__all__ = ["SCRIPTED", "ScriptError", "ScriptExhausted", "ScriptedModel", "scripted_model"]
