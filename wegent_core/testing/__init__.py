"""Testing helpers for teams and plugins: the scripted model (`ScriptedModel`, and Models with `protocol:
scripted`), recordings of real model traffic and their replay (`Recorder`, `ReplayModel`; or `record=` and `replay=`
on `AsyncWegent`/`Wegent`), and pytest fixtures (this package's `_pytest_plugin`, loaded through the `pytest11`
entry point); and `SandboxConformance`, the suite every sandbox plugin must pass (it needs pytest and hypothesis,
so it is imported on first use)."""

from typing import TYPE_CHECKING, Any

from wegent_core._recording import Recorder, ReplayError, ReplayModel

from ._scripted import SCRIPTED, ScriptedModel, ScriptError, ScriptExhausted, scripted_model

if TYPE_CHECKING:
    from ._sandbox_conformance import SandboxConformance

__all__ = [
    "SCRIPTED",
    "Recorder",
    "ReplayError",
    "ReplayModel",
    "SandboxConformance",
    "ScriptError",
    "ScriptExhausted",
    "ScriptedModel",
    "scripted_model",
]


def __getattr__(name: str) -> Any:
    # The scripted model is loaded as a plugin at run time, where pytest and hypothesis need not be installed.
    if name == "SandboxConformance":
        from ._sandbox_conformance import SandboxConformance

        return SandboxConformance
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
