"""wegent_storage: the SQL resource and task store, its migrations, and secrets at rest.

Depends on wegent_core only, and registers its stores through the `wegent` entry-point group. The names below are
imported on first use: the plugin module is imported by every `Plugins.load()`, and must not pull in SQLAlchemy,
alembic or a database driver before a store is opened.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "SqlStore": "._sql_store",
    "SqlSchema": "._migrate",
    "SecretBox": "._secrets",
    "SecretKeyError": "._secrets",
    "seal": "._secrets",
    "unseal": "._secrets",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(_EXPORTS[name], __name__), name)
