"""Schema migrations on every backend: a new database, an upgrade from the first schema with data in it, and the
refusals (a newer schema always; an older or empty one unless asked)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from wegent_core._errors import StoreError
from wegent_core._resources import Ghost
from wegent_core._store import SchemaStatus
from wegent_core._task_store import TaskRecord
from wegent_storage import _migrate, _tables
from wegent_storage._engine import create_engine, parse_url
from wegent_storage._sql_store import SqlStore

BACKENDS = ("sqlite", "postgresql", "mariadb")
FIRST = "0001"


@pytest.fixture
def engine_for() -> Iterator:
    engines: list[sa.Engine] = []

    def make(url: str) -> sa.Engine:
        engines.append(create_engine(parse_url(url)))
        return engines[-1]

    yield make
    for engine in engines:
        engine.dispose()


def test_the_revisions() -> None:
    assert _migrate.head() == "0002"
    assert _migrate.known(FIRST)
    assert not _migrate.known("9999")


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_new_database_is_upgraded_to_exactly_the_tables(backend: str, make_database, engine_for) -> None:
    engine = engine_for(make_database(backend))
    assert _migrate.current(engine) is None
    assert _migrate.check(engine).state == "empty"
    _migrate.upgrade(engine)
    assert _migrate.current(engine) == _migrate.head()
    assert _migrate.check(engine).state == "current"
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"version_table": _tables.VERSION_TABLE})
        assert compare_metadata(context, _tables.metadata) == []


@pytest.mark.parametrize("backend", BACKENDS)
def test_upgrading_from_the_first_schema_keeps_the_data(backend: str, make_database, engine_for) -> None:
    url = make_database(backend, FIRST)
    engine = engine_for(url)
    assert _migrate.current(engine) == FIRST
    first = _write_at_first_schema(engine)

    with SqlStore.open(url, upgrade=True) as store:
        assert _migrate.current(engine) == _migrate.head()
        ghost = store.get("Ghost", "g")
        assert ghost.spec.system_prompt == "from 0001"
        assert ghost.metadata.resource_version == "7"
        assert ghost.metadata.created_at == first
        changed = Ghost.model_validate(_GHOST | {"spec": {"systemPrompt": "new"}})
        assert store.put(changed).metadata.resource_version == "8"
        logged, quiet = store.list_tasks()[::-1]
        assert (logged.name, logged.prompt, logged.status) == ("logged", "run it", "RUNNING")
        assert [e.seq for e in store.events(logged.id)] == [1, 2, 3]
        # the counter added by 0002 continues each task's log from the events already there
        assert store.append_event(logged.id, "after", {}).seq == 4
        assert store.append_event(quiet.id, "after", {}).seq == 1
        assert store.update_task(quiet.id, 1, status="COMPLETED").version == 2
        assert store.prune(keep_last=0).tasks == 1


_GHOST = {"kind": "Ghost", "metadata": {"name": "g"}, "spec": {"systemPrompt": "from 0001"}}


def _first_schema() -> tuple[sa.Table, ...]:
    """The tables as revision 0001 made them (the columns written here): tasks have no `last_seq` yet."""
    old = sa.MetaData()
    json, time = _tables.json_type(), sa.DateTime()
    counters = sa.Table("wegent_counters", old, sa.Column("name", sa.String), sa.Column("value", sa.BigInteger))
    resources = sa.Table(
        "wegent_resources",
        old,
        *(sa.Column(name, sa.String) for name in ("namespace", "kind", "name")),
        sa.Column("resource_version", sa.BigInteger),
        *(sa.Column(name, time) for name in ("created_at", "updated_at")),
        *(sa.Column(name, json) for name in ("labels", "body")),
    )
    tasks = sa.Table(
        "wegent_tasks",
        old,
        sa.Column("id", sa.BigInteger, primary_key=True),
        *(sa.Column(name, sa.String) for name in ("namespace", "name", "status")),
        sa.Column("version", sa.Integer),
        *(sa.Column(name, time) for name in ("created_at", "updated_at")),
        sa.Column("data", json),
    )
    events = sa.Table(
        "wegent_events",
        old,
        *(sa.Column(name, sa.BigInteger) for name in ("task_id", "seq")),
        sa.Column("type", sa.String),
        sa.Column("created_at", time),
        sa.Column("data", json),
    )
    return counters, resources, tasks, events


def _write_at_first_schema(engine: sa.Engine) -> datetime:
    """Rows as wegent wrote them at revision 0001: a resource at version 7, two tasks, three events of one."""
    assert "last_seq" not in {c["name"] for c in sa.inspect(engine).get_columns("wegent_tasks")}
    counters, resources, tasks, events = _first_schema()
    when = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    naive = when.replace(tzinfo=None)
    managed = {"metadata": {"resource_version", "created_at", "updated_at"}}
    body = Ghost.model_validate(_GHOST).model_dump(mode="json", exclude=managed)
    task_data = {"team": "default/t", "prompt": "run it", "labels": {}, "spec": {}}
    stamps = {"created_at": naive, "updated_at": naive}
    with engine.begin() as connection:
        connection.execute(counters.update().values(value=7))
        connection.execute(
            resources.insert().values(
                namespace="default", kind="Ghost", name="g", resource_version=7, labels={}, body=body, **stamps
            )
        )
        for name, status in (("logged", "RUNNING"), ("quiet", "PENDING")):
            row = {"namespace": "default", "name": name, "status": status, "version": 1, "data": task_data}
            connection.execute(tasks.insert().values(**row, **stamps))
        logged = connection.execute(sa.select(tasks.c.id).where(tasks.c.name == "logged")).scalar_one()
        connection.execute(
            events.insert(),
            [{"task_id": logged, "seq": s, "type": "e", "created_at": naive, "data": {"n": s}} for s in (1, 2, 3)],
        )
    return when


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_newer_schema_is_refused(backend: str, make_database, engine_for) -> None:
    url = make_database(backend, "head")
    engine = engine_for(url)
    with engine.begin() as connection:
        connection.execute(sa.text(f"UPDATE {_tables.VERSION_TABLE} SET version_num = '9999'"))
    for upgrade in (None, False, True):
        with pytest.raises(StoreError) as caught:
            SqlStore.open(url, upgrade=upgrade)
        message = str(caught.value)
        assert "schema revision 9999, which this wegent does not know (it knows up to 0002)" in message
        assert "upgrade wegent" in message
    with pytest.raises(StoreError, match="9999"):
        _migrate.upgrade(engine)
    assert _migrate.current(engine) == "9999"


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_older_schema_is_upgraded_only_when_asked(backend: str, make_database, engine_for) -> None:
    url = make_database(backend, FIRST)
    for upgrade in (None, False):
        with pytest.raises(StoreError) as caught:
            SqlStore.open(url, upgrade=upgrade)
        message = str(caught.value)
        assert "has schema revision 0001, older than this wegent's 0002" in message
        assert "run `wegent db upgrade --store " in message
    assert _migrate.current(engine_for(url)) == FIRST
    SqlStore.open(url, upgrade=True).close()
    assert _migrate.current(engine_for(url)) == _migrate.head()


@pytest.mark.parametrize("backend", ["postgresql", "mariadb"])
def test_an_empty_server_database_is_set_up_only_when_asked(backend: str, make_database, engine_for) -> None:
    url = make_database(backend)
    with pytest.raises(StoreError, match=r"has no wegent tables yet; run `wegent db upgrade --store"):
        SqlStore.open(url)
    SqlStore.open(url, upgrade=True).close()
    assert _migrate.current(engine_for(url)) == _migrate.head()


def test_the_password_is_hidden_in_messages() -> None:
    status = SchemaStatus(None, "0002", "empty")
    message = _migrate._upgrade_needed(parse_url("postgresql://u:hunter2@h/db"), status)
    assert "hunter2" not in message
    assert "postgresql+psycopg://u:***@h/db" in message


@pytest.mark.parametrize("backend", BACKENDS)
def test_downgrade_and_upgrade_again(backend: str, make_database, engine_for) -> None:
    url = make_database(backend, "head")
    engine = engine_for(url)
    with SqlStore.open(url) as store:
        task = store.create_task(TaskRecord(team="default/t"))
        store.append_events(task.id, [("e", {})] * 3)
    config = _migrate.config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, FIRST)
    assert _migrate.current(engine) == FIRST
    _migrate.upgrade(engine)
    with SqlStore.open(url) as store:
        assert store.append_event(task.id, "e", {}).seq == 4


@pytest.mark.parametrize("backend", BACKENDS)
def test_concurrent_upgraders_take_turns(backend: str, make_database, engine_for) -> None:
    url = make_database(backend)
    errors: list[BaseException] = []

    def open_it() -> None:
        try:
            SqlStore.open(url, upgrade=True).close()
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=open_it) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert _migrate.current(engine_for(url)) == _migrate.head()


def test_the_alembic_command_alone_is_refused(tmp_path: Path) -> None:
    config = _migrate.config()
    with pytest.raises(RuntimeError, match="wegent db upgrade"):
        command.upgrade(config, "head")
