"""Where the embedded defaults live: the data directory and the default store URL."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

STORE_ENV = "WEGENT_STORE"
HOME_ENV = "WEGENT_HOME"


def data_dir(environ: Mapping[str, str] | None = None) -> Path:
    """`$WEGENT_HOME`, else `$XDG_DATA_HOME/wegent`, else `~/.local/share/wegent`. Not created here."""
    environ = os.environ if environ is None else environ
    if environ.get(HOME_ENV):
        return Path(environ[HOME_ENV]).expanduser()
    base = environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base).expanduser() / "wegent"


def default_store_url(environ: Mapping[str, str] | None = None) -> str:
    """`$WEGENT_STORE`, else the embedded SQLite file `<data dir>/wegent.db`."""
    environ = os.environ if environ is None else environ
    return environ.get(STORE_ENV) or f"sqlite:///{data_dir(environ) / 'wegent.db'}"


def is_default_store(url: str, environ: Mapping[str, str] | None = None) -> bool:
    """Whether `url` is the embedded default, which is created and upgraded without being asked."""
    environ = os.environ if environ is None else environ
    return url == f"sqlite:///{data_dir(environ) / 'wegent.db'}"
