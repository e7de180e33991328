"""The SQL store's plugin: pyproject's `wegent` entry point `sql-store` names this module.

It imports nothing heavy: SQLAlchemy, alembic and the drivers load when a store is opened, so `wegent plugins` and
`wegent --help` stay fast.
"""

from __future__ import annotations

from typing import Any

from wegent_core._hookspecs import Register, hookimpl

_SCHEMES = {
    "sqlite": "SQL store in a SQLite file (the embedded default); sqlite:// is in memory",
    "postgresql": "SQL store on PostgreSQL (psycopg; pip install 'wegent[postgres]')",
    "mysql": "SQL store on MySQL (pymysql, utf8mb4; pip install 'wegent[mysql]')",
    "mariadb": "SQL store on MariaDB (pymysql, utf8mb4; pip install 'wegent[mysql]')",
}


def open_store(url: str) -> Any:
    """Open the SQL store at `url`, upgrading the schema only for the embedded default store."""
    from ._sql_store import SqlStore

    return SqlStore.open(url)


def store_schema(url: str) -> Any:
    """The schema of the SQL database at `url`, for `wegent db`."""
    from ._migrate import SqlSchema

    return SqlSchema(url)


@hookimpl
def register_stores(register: Register) -> None:
    for scheme, description in _SCHEMES.items():
        register(scheme, open_store, description=description)


@hookimpl
def register_store_schemas(register: Register) -> None:
    for scheme in _SCHEMES:
        register(scheme, store_schema, description="alembic migrations shipped in wegent_storage")
