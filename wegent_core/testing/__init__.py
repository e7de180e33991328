"""Testing helpers for teams and plugins: the scripted model (`ScriptedModel`, and Models with `protocol:
scripted`), recordings of real model traffic and their replay (`Recorder`, `ReplayModel`; or `record=` and `replay=`
on `AsyncWegent`/`Wegent`), and pytest fixtures (this package's `_pytest_plugin`, loaded through the `pytest11`
entry point)."""

from wegent_core._recording import Recorder, ReplayError, ReplayModel

from ._scripted import SCRIPTED, ScriptedModel, ScriptError, ScriptExhausted, scripted_model

__all__ = [
    "SCRIPTED",
    "Recorder",
    "ReplayError",
    "ReplayModel",
    "ScriptError",
    "ScriptExhausted",
    "ScriptedModel",
    "scripted_model",
]
