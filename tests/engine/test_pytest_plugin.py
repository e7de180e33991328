"""The pytest fixtures that wegent ships (entry point `pytest11`: wegent_core.testing._pytest_plugin)."""

from __future__ import annotations

import pytest

from .conftest import team_yaml


def test_the_plugin_is_loaded_through_its_entry_point(pytestconfig: pytest.Config) -> None:
    assert pytestconfig.pluginmanager.has_plugin("wegent")


@pytest.mark.anyio
async def test_wegent_app_and_scripted_model(wegent_app, scripted_model) -> None:
    model = scripted_model({"text": "hello from the fixture"})
    wegent_app.engine.models["m"] = model
    await wegent_app.apply(team_yaml("m", ["a"]))
    task = await wegent_app.run("team", "hi")
    assert await task.result() == "hello from the fixture"
    assert [r.messages[-1].content for r in model.requests] == ["hi"]


def test_wegent_sync(wegent_sync) -> None:
    wegent_sync.apply(team_yaml("m", ["a"], script=["sync answer"]))
    assert wegent_sync.run("team", "hi").result() == "sync answer"
