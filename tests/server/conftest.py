"""What the CLI tests share: the result of a run of `wegent`, and a private data directory and store per test."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)

    def lines(self) -> list[Any]:
        """stdout as JSON lines (`-o json` of the task commands)."""
        return [json.loads(line) for line in self.out.splitlines()]


Wegent = Callable[..., Result]


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """WEGENT_HOME in a temporary directory: the user's data directory is never touched."""
    home = tmp_path / "wegent-home"
    monkeypatch.setenv("WEGENT_HOME", str(home))
    for name in ("WEGENT_STORE", "WEGENT_SECRET_KEY", "WEGENT_SECRET_KEY_PREVIOUS", "WEGENT_DISABLE_PLUGINS"):
        monkeypatch.delenv(name, raising=False)
    return home


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'store.db'}"
