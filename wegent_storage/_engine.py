"""Store URLs and engines: the driver behind each scheme, the SQLite settings that let many processes share one file,
and which database errors are worth retrying.

SQLite: WAL (readers never block the writer), `synchronous=NORMAL` (durable at checkpoints, never corrupt),
a busy timeout, and `BEGIN IMMEDIATE` for writes, so a write takes the file's write lock before it reads anything and
can never fail to upgrade a read lock half-way (the one case where SQLite gives up without waiting). The driver runs
in autocommit mode and `begin` issues the BEGIN itself (rather than a SQLAlchemy "begin" event, whose listener makes
every statement slower); a read is one statement, hence one snapshot, and needs no BEGIN.
"""

from __future__ import annotations

import json
import random
import sqlite3
import time
from functools import partial
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.pool import StaticPool

from wegent_core._errors import StoreError

from ._tables import json_dumps

BUSY_TIMEOUT_MS = 10_000
RETRIES = 8  # after a busy timeout or a deadlock: the transaction is retried from the start

# The driver used when a URL names none (SQLAlchemy's own defaults, psycopg2 and mysqlclient, are not installed).
_DRIVERS = {
    "sqlite": "sqlite+pysqlite",
    "postgresql": "postgresql+psycopg",
    "postgres": "postgresql+psycopg",
    "mysql": "mysql+pymysql",
    "mariadb": "mysql+pymysql",
}
_EXTRAS = {"psycopg": "postgres", "pymysql": "mysql"}
_SQLSTATE_RETRY = {"40001", "40P01"}  # PostgreSQL: serialization failure, deadlock
_MYSQL_RETRY = {1205, 1213}  # MySQL: lock wait timeout, deadlock


def parse_url(url: str) -> sa.URL:
    """The SQLAlchemy URL for a store URL: `postgresql://` -> psycopg, `mysql://`/`mariadb://` -> pymysql (utf8mb4)."""
    try:
        parsed = sa.make_url(url)
    except sa.exc.ArgumentError as error:
        raise StoreError(f"not a database URL: {url!r}") from error
    backend, _, driver = parsed.drivername.partition("+")
    if backend not in _DRIVERS:
        raise StoreError(
            f"the SQL store takes sqlite, postgresql, mysql or mariadb URLs, not {backend!r} ({safe_url(parsed)})"
        )
    if not driver:
        parsed = parsed.set(drivername=_DRIVERS[backend])
    elif backend == "postgres":
        parsed = parsed.set(drivername=f"postgresql+{driver}")
    if parsed.get_backend_name() in ("mysql", "mariadb") and "charset" not in parsed.query:
        parsed = parsed.update_query_dict({"charset": "utf8mb4"})
    return parsed


def safe_url(url: sa.URL | str) -> str:
    """The URL with its password hidden, for messages."""
    parsed = sa.make_url(url) if isinstance(url, str) else url
    return parsed.render_as_string(hide_password=True)


def sqlite_file(url: sa.URL) -> Path | None:
    """The database file of a SQLite URL; None for any other URL and for an in-memory database."""
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return Path(url.database)


def create_engine(url: sa.URL, *, reads: bool = False) -> sa.Engine:
    """An engine for a store URL. `reads`: for a server, one whose connections autocommit, so that a read (always a
    single statement, hence a consistent snapshot) is one round trip instead of BEGIN, SELECT and COMMIT."""
    options: dict[str, Any] = {"json_serializer": json_dumps, "json_deserializer": json.loads}
    backend = url.get_backend_name()
    try:
        if backend == "sqlite":  # reads are autocommit already: see `begin`
            return _sqlite_engine(url, options)
        # READ COMMITTED (MySQL's default is REPEATABLE READ): no gap locks, and a plain read sees the latest
        # committed row, as on PostgreSQL.
        isolation = "AUTOCOMMIT" if reads else "READ COMMITTED"
        if backend == "postgresql":
            # No server-side prepared statements: a plan made while a table was nearly empty would stay a sequential
            # scan for the connection's life, and poolers such as PgBouncer (transaction mode) refuse them.
            connect = {"prepare_threshold": None}
            return sa.create_engine(url, isolation_level=isolation, connect_args=connect, **options)
        return sa.create_engine(url, isolation_level=isolation, pool_recycle=3600, **options)
    except ModuleNotFoundError as error:
        extra = _EXTRAS.get(error.name or "", "all")
        raise StoreError(f"{safe_url(url)} needs the {error.name} driver: pip install 'wegent[{extra}]'") from error


def _sqlite_engine(url: sa.URL, options: dict[str, Any]) -> sa.Engine:
    path = sqlite_file(url)
    if path is None:  # one shared connection, so every user sees the same in-memory database
        engine = sa.create_engine(url, poolclass=StaticPool, connect_args={"check_same_thread": False}, **options)
    else:
        engine = sa.create_engine(url, connect_args={"check_same_thread": False}, **options)
    event.listen(engine, "connect", partial(_sqlite_connect, wal=path is not None))
    return engine


def _sqlite_connect(dbapi_connection: Any, _record: Any, *, wal: bool) -> None:
    dbapi_connection.isolation_level = None  # the driver must not begin transactions itself: `begin` does
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        if wal:
            _set_wal(cursor)
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
    finally:
        cursor.close()


def _set_wal(cursor: Any) -> None:
    # WAL is a property of the file, kept once set. Switching needs a moment alone with the file, and SQLite reports
    # a busy file here without waiting, so many processes opening a new file at once take turns.
    for attempt in range(200):
        try:
            if cursor.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                cursor.execute("PRAGMA journal_mode = WAL")
            return
        except Exception as error:  # sqlite3.OperationalError: database is locked
            if "locked" not in str(error) or attempt == 199:
                raise
            time.sleep(0.01)


def begin(connection: sa.Connection, *, write: bool) -> sa.RootTransaction:
    """Begin a transaction; on SQLite, a writer takes the file's write lock now (waiting up to the busy timeout)."""
    transaction = connection.begin()
    if write and connection.dialect.name == "sqlite":
        try:  # on the driver's connection: a third of the cost of a statement through SQLAlchemy
            connection.connection.driver_connection.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as error:  # as SQLAlchemy would raise it, so callers retry "locked"
            transaction.rollback()
            raise sa.exc.OperationalError("BEGIN IMMEDIATE", None, error) from error
    return transaction


def is_transient(error: sa.exc.DBAPIError) -> bool:
    """Whether retrying the whole transaction may succeed: a busy SQLite file, a deadlock, a serialization failure.
    Never a lost connection: a commit may have happened."""
    if error.connection_invalidated:
        return False
    orig = error.orig
    if getattr(orig, "sqlstate", None) in _SQLSTATE_RETRY:
        return True
    args = getattr(orig, "args", ())
    if args and args[0] in _MYSQL_RETRY:
        return True
    text = str(orig).lower()
    return "database is locked" in text or "database table is locked" in text or "database is busy" in text


def backoff(attempt: int) -> float:
    """Seconds to wait before retry `attempt` (0-based): short first, doubling, capped, jittered so that the
    processes that collided do not collide again."""
    return min(0.005 * 2**attempt, 0.5) * random.uniform(0.5, 1.5)


def store_error(error: sa.exc.DBAPIError, url: sa.URL) -> StoreError:
    detail = " ".join(str(error.orig).split()) or type(error.orig).__name__
    return StoreError(f"{url.get_backend_name()} store {safe_url(url)}: {detail}")
