"""Schema migrations: alembic, configured in code (no alembic.ini), with the scripts shipped inside the package.

`SqlSchema` is the SQL store's `StoreSchema` (what `wegent db current` and `wegent db upgrade` use, through the
plugin); `SqlStore.open` calls `ensure`, which uses `check`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from wegent_core._errors import StoreError
from wegent_core._store import SchemaStatus

from ._engine import begin, create_engine, parse_url, safe_url, sqlite_file, store_error
from ._tables import VERSION_TABLE

SCRIPT_LOCATION = "wegent_storage:migrations"
_LOCK_NAME = "wegent_migrate"
_LOCK_KEY = 0x7765_6765_6E74  # "wegent", for pg_advisory_xact_lock

T = TypeVar("T")


def config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", SCRIPT_LOCATION)
    return cfg


@functools.cache
def _scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(config())


def head() -> str:
    """The newest schema revision this wegent knows."""
    found = _scripts().get_current_head()
    assert found is not None, "wegent_storage ships no migrations"
    return found


def known(revision: str) -> bool:
    return any(script.revision == revision for script in _scripts().walk_revisions())


def current(engine: sa.Engine) -> str | None:
    """The database's schema revision, or None if it has none."""
    with engine.connect() as connection:
        return _current(connection)


def _current(connection: sa.Connection) -> str | None:
    context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
    return context.get_current_revision()


def check(engine: sa.Engine) -> SchemaStatus:
    revision, newest = current(engine), head()
    if revision == newest:
        return SchemaStatus(revision, newest, "current")
    if revision is None:
        return SchemaStatus(None, newest, "empty")
    return SchemaStatus(revision, newest, "old" if known(revision) else "newer")


def upgrade(engine: sa.Engine, revision: str = "head") -> None:
    """Upgrade the schema to `revision` in one transaction where the database allows it (SQLite and PostgreSQL do,
    MySQL commits each DDL statement). Concurrent upgraders wait for each other; the later ones find nothing to do."""
    _refuse_newer(engine)
    cfg = config()
    with engine.connect() as connection:
        try:
            with begin(connection, write=True):
                _lock(connection)
                cfg.attributes["connection"] = connection
                command.upgrade(cfg, revision)
        finally:
            _unlock(connection)  # after the commit, so the next upgrader finds this one's work done


def ensure(engine: sa.Engine, url: sa.URL | str, *, upgrade_allowed: bool) -> SchemaStatus:
    """Check the database before a store uses it: refuse a newer schema; upgrade an empty or older one if allowed,
    else refuse it with the command that would. `url` is the store URL as the user gave it, for messages."""
    found = check(engine)
    if found.state == "current":
        return found
    if found.state == "newer":
        raise _newer_error(url, found)
    if not upgrade_allowed:
        raise StoreError(_upgrade_needed(url, found))
    upgrade(engine)
    return check(engine)


def _refuse_newer(engine: sa.Engine) -> None:
    found = check(engine)
    if found.state == "newer":
        raise _newer_error(engine.url, found)


def _newer_error(url: sa.URL | str, found: SchemaStatus) -> StoreError:
    return StoreError(
        f"the database {safe_url(url)} has schema revision {found.current}, which this wegent does not know "
        f"(it knows up to {found.head}): it was created or upgraded by a newer wegent; upgrade wegent to use it"
    )


def _upgrade_needed(url: sa.URL | str, found: SchemaStatus) -> str:
    where = safe_url(url)
    if found.current is None:
        what = f"the database {where} has no wegent tables yet"
    else:
        what = f"the database {where} has schema revision {found.current}, older than this wegent's {found.head}"
    return f"{what}; run `wegent db upgrade --store {where}` first"


def _lock(connection: sa.Connection) -> None:
    """Serialise upgraders across processes (SQLite: BEGIN IMMEDIATE already did)."""
    name = connection.dialect.name
    if name == "postgresql":
        connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})
    elif name in ("mysql", "mariadb"):
        got = connection.execute(sa.text("SELECT GET_LOCK(:name, 300)"), {"name": _LOCK_NAME}).scalar()
        if got != 1:
            where = safe_url(connection.engine.url)
            raise StoreError(f"timed out waiting for another wegent to finish upgrading {where}")


def _unlock(connection: sa.Connection) -> None:
    if connection.dialect.name in ("mysql", "mariadb"):  # a session lock; PostgreSQL's ends with the transaction
        connection.execute(sa.text("SELECT RELEASE_LOCK(:name)"), {"name": _LOCK_NAME})


class SqlSchema:
    """The `StoreSchema` of a SQL store URL. Opens no store (so it works on any schema revision) and creates a
    SQLite file only to upgrade it."""

    def __init__(self, url: str) -> None:
        self._url = parse_url(url)
        self.location = safe_url(url)  # as the user wrote it, less the password (parsed, it names the driver too)

    def status(self) -> SchemaStatus:
        path = sqlite_file(self._url)
        if path is not None and not path.exists():
            return SchemaStatus(None, head(), "empty")
        return self._with_engine(check)

    def upgrade(self) -> SchemaStatus:
        path = sqlite_file(self._url)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)

        def work(engine: sa.Engine) -> SchemaStatus:
            if check(engine).state in ("empty", "old"):
                upgrade(engine)
            return check(engine)

        return self._with_engine(work)

    def _with_engine(self, work: Callable[[sa.Engine], T]) -> T:
        with _engine(self._url) as engine:
            return work(engine)


@contextmanager
def _engine(url: sa.URL) -> Iterator[sa.Engine]:
    engine = create_engine(url)
    try:
        yield engine
    except sa.exc.DBAPIError as error:  # cannot connect, no such database, no permission: not a bug of ours
        raise store_error(error, url) from error
    finally:
        engine.dispose()
