"""Databases for the storage tests: a SQLite file, and fresh PostgreSQL and MariaDB databases on the local servers.

The servers are part of the machine (see the reference environment.md). If one does not answer, the session starts
it with the same command CI uses and waits for it; a server that still does not answer fails the tests, never skips
them. Each test module gets its own database per backend (created, migrated, dropped afterwards), and each test
starts from empty tables.

`tests/core/test_store.py` loads this module by path for `SqlStoreFactory`, so the resource store contract runs on
the three backends too.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa

from wegent_core._memory_store import MemoryStore
from wegent_storage import _migrate, _tables
from wegent_storage._engine import create_engine, parse_url
from wegent_storage._sql_store import SqlStore

BACKENDS = ("sqlite", "postgresql", "mariadb")
MEMORY = "memory"  # the `store_url` param of the memory store
SERVERS = ("postgresql", "mariadb")
# A server URL (any database) for creating and dropping test databases; overridable for other machines.
SERVER_URLS = {
    "postgresql": os.environ.get("WEGENT_TEST_POSTGRESQL_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
    "mariadb": os.environ.get("WEGENT_TEST_MARIADB_URL", "mariadb://root@127.0.0.1:3306/test"),
}
START_COMMANDS = {
    "postgresql": "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start",
    "mariadb": "start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd",
}
START_TIMEOUT = 60.0
_answered: set[str] = set()


# --- servers and databases ----------------------------------------------------------------------------------------


def _answers(backend: str) -> bool:
    engine = create_engine(parse_url(SERVER_URLS[backend]))
    try:
        with engine.connect() as connection:
            connection.exec_driver_sql("SELECT 1")
        return True
    except sa.exc.DBAPIError:
        return False
    finally:
        engine.dispose()


def ensure_server(backend: str) -> None:
    """Make sure the server of `backend` answers, starting it if needed; fail (never skip) if it cannot."""
    if backend == "sqlite" or backend in _answered:
        return
    if not _answers(backend):
        started = subprocess.run(START_COMMANDS[backend], shell=True, capture_output=True, text=True, check=False)
        deadline = time.monotonic() + START_TIMEOUT
        while not _answers(backend):
            if time.monotonic() > deadline:
                pytest.fail(
                    f"{backend} does not answer at {SERVER_URLS[backend]} and did not start with "
                    f"`{START_COMMANDS[backend]}` (exit {started.returncode}): {started.stderr.strip()}",
                    pytrace=False,
                )
            time.sleep(0.5)
    _answered.add(backend)


def _admin(backend: str) -> sa.Engine:
    return sa.create_engine(parse_url(SERVER_URLS[backend]), isolation_level="AUTOCOMMIT")


def create_database(backend: str, directory: Path) -> str:
    """A new, empty database; returns its URL."""
    if backend == "sqlite":
        return f"sqlite:///{directory / f'wegent-{secrets.token_hex(4)}.db'}"
    ensure_server(backend)
    name = f"wegent_test_{os.getpid()}_{secrets.token_hex(4)}"
    engine = _admin(backend)
    try:
        with engine.connect() as connection:
            connection.exec_driver_sql(f"CREATE DATABASE {name}")
    finally:
        engine.dispose()
    return parse_url(SERVER_URLS[backend]).set(database=name).render_as_string(hide_password=False)


def drop_database(url: str) -> None:
    parsed = parse_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return  # a file in a temporary directory
    force = " WITH (FORCE)" if backend == "postgresql" else ""  # a test that failed may have left a connection
    engine = _admin("postgresql" if backend == "postgresql" else "mariadb")
    try:
        with engine.connect() as connection:
            connection.exec_driver_sql(f"DROP DATABASE IF EXISTS {parsed.database}{force}")
    finally:
        engine.dispose()


@contextmanager
def database(backend: str, directory: Path, revision: str | None = "head") -> Iterator[str]:
    """A fresh database migrated to `revision` (None: left empty), dropped afterwards."""
    url = create_database(backend, directory)
    try:
        if revision is not None:
            engine = create_engine(parse_url(url))
            try:
                _migrate.upgrade(engine, revision)
            finally:
                engine.dispose()
        yield url
    finally:
        drop_database(url)


def clear(url: str) -> None:
    """Empty every table and restart the version counter: a test's isolation on a shared database."""
    engine = create_engine(parse_url(url))
    try:
        with engine.begin() as connection:
            for table in (_tables.events, _tables.subtasks, _tables.tasks, _tables.resources):
                connection.execute(table.delete())
            connection.execute(_tables.counters.update().values(value=0))
    finally:
        engine.dispose()


@contextmanager
def wegent_home() -> Iterator[Path]:
    """A private data dir for the session, so a store's default secret key file never lands in the real one."""
    before = os.environ.get("WEGENT_HOME")
    with tempfile.TemporaryDirectory(prefix="wegent-home-") as home:
        os.environ["WEGENT_HOME"] = home
        try:
            yield Path(home)
        finally:
            if before is None:
                os.environ.pop("WEGENT_HOME", None)
            else:
                os.environ["WEGENT_HOME"] = before


class SqlStoreFactory:
    """Makes a fresh, empty store on one backend per call, on one database made on first use (for
    tests/core/test_store.py, whose factories take no arguments). `dispose()` drops the database."""

    def __init__(self, backend: str) -> None:
        self.__name__ = backend  # the test id
        self.backend = backend
        self._resources = ExitStack()
        self._url: str | None = None
        self._opened: list[SqlStore] = []

    def __call__(self) -> SqlStore:
        if self._url is None:
            home = self._resources.enter_context(wegent_home())
            self._url = self._resources.enter_context(database(self.backend, home))
        self.close_stores()
        clear(self._url)
        store = SqlStore.open(self._url, upgrade=False)
        self._opened.append(store)
        return store

    def close_stores(self) -> None:
        while self._opened:
            self._opened.pop().close()

    def dispose(self) -> None:
        self.close_stores()
        self._resources.close()
        self._url = None


# --- fixtures -----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def database_servers() -> None:
    """PostgreSQL and MariaDB answer (started if they did not)."""
    for backend in SERVERS:
        ensure_server(backend)


@pytest.fixture(scope="session")
def data_home() -> Iterator[Path]:
    with wegent_home() as home:
        yield home


@pytest.fixture(scope="module", params=BACKENDS)
def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, data_home: Path
) -> Iterator[str]:
    """One database per backend for the whole module, at head."""
    with _module_database(request, tmp_path_factory) as url:
        yield url


@pytest.fixture(scope="module", params=[*BACKENDS, MEMORY])
def store_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, data_home: Path
) -> Iterator[str]:
    """`database_url`, and `memory://` for a fourth backend: the memory store, held to the SQL store's behaviour."""
    if request.param == MEMORY:
        yield "memory://"
        return
    with _module_database(request, tmp_path_factory) as url:
        yield url


@contextmanager
def _module_database(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if request.param in SERVERS:
        request.getfixturevalue("database_servers")
    with database(request.param, tmp_path_factory.mktemp(request.param)) as url:
        yield url


@pytest.fixture
def backend(database_url: str) -> str:
    return parse_url(database_url).get_backend_name()


@pytest.fixture
def store(database_url: str) -> Iterator[SqlStore]:
    """A store on empty tables."""
    with _empty_store(database_url) as opened:
        yield opened


@pytest.fixture
def any_store(store_url: str) -> Iterator[SqlStore | MemoryStore]:
    """`store` on each backend, and a new `MemoryStore`."""
    if store_url == "memory://":
        yield MemoryStore()
        return
    with _empty_store(store_url) as opened:
        yield opened


@contextmanager
def _empty_store(url: str) -> Iterator[SqlStore]:
    clear(url)
    with SqlStore.open(url, upgrade=False) as opened:
        yield opened


MakeDatabase = Callable[..., str]


@pytest.fixture
def make_database(request: pytest.FixtureRequest, tmp_path: Path, data_home: Path) -> Iterator[MakeDatabase]:
    """`make_database(backend, revision=None)`: the URL of a new database at `revision` (None: empty), for one test;
    all are dropped after it."""
    with ExitStack() as made:

        def make(backend: str, revision: str | None = None) -> str:
            if backend in SERVERS:
                request.getfixturevalue("database_servers")
            return made.enter_context(database(backend, tmp_path, revision))

        yield make
