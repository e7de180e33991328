"""The SQL store beyond the shared store contract (tests/core/test_store.py runs that on every backend): URLs and
opening, the plugin, what the rows hold (JSON, never pickles; sealed secrets), key order, names, batches, reopening."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from wegent_core._errors import ConflictError, NotFoundError, StoreError, WegentError
from wegent_core._loader import load
from wegent_core._memory_store import MemoryStore
from wegent_core._plugins import Plugins
from wegent_core._resources import KINDS, Ghost, Model, Resource
from wegent_core._store import ResourceStore
from wegent_core._task_store import SubtaskRecord, TaskRecord, TaskStore
from wegent_storage import _plugin, _secrets, _tables
from wegent_storage._engine import parse_url
from wegent_storage._sql_store import SqlStore


def ghost(name: str = "g", namespace: str = "default", prompt: str = "p", **labels: str) -> Ghost:
    return Ghost.model_validate(
        {
            "kind": "Ghost",
            "metadata": {"name": name, "namespace": namespace, "labels": labels},
            "spec": {"systemPrompt": prompt},
        }
    )


def model(name: str = "m", **env: str) -> Model:
    return Model.model_validate({"kind": "Model", "metadata": {"name": name}, "spec": {"modelConfig": {"env": env}}})


def raw_rows(url: str, table: sa.Table, *columns: str) -> list[tuple[Any, ...]]:
    """Rows as the database holds them: JSON columns as text, read without the store."""
    engine = sa.create_engine(parse_url(url))
    try:
        with engine.connect() as connection:
            selected = [sa.cast(table.c[c], sa.Text) for c in columns]
            return [tuple(row) for row in connection.execute(sa.select(*selected))]
    finally:
        engine.dispose()


# --- URLs and opening ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "driver"),
    [
        ("sqlite:///x.db", "sqlite+pysqlite"),
        ("sqlite://", "sqlite+pysqlite"),
        ("postgresql://u@h/db", "postgresql+psycopg"),
        ("postgres://u@h/db", "postgresql+psycopg"),
        ("postgresql+psycopg://u@h/db", "postgresql+psycopg"),
        ("mysql://u@h/db", "mysql+pymysql"),
        ("mariadb://u@h/db", "mysql+pymysql"),
    ],
)
def test_urls_choose_the_installed_drivers(url: str, driver: str) -> None:
    parsed = parse_url(url)
    assert parsed.drivername == driver
    if driver == "mysql+pymysql":
        assert parsed.query["charset"] == "utf8mb4"


@pytest.mark.parametrize("url", ["redis://h/0", "not a url", "oracle://u@h/db"])
def test_other_urls_are_refused(url: str) -> None:
    with pytest.raises(StoreError, match=r"not a database URL|takes sqlite, postgresql, mysql or mariadb URLs"):
        SqlStore.open(url)


def test_a_server_that_does_not_answer_is_a_store_error_without_the_password() -> None:
    with pytest.raises(StoreError) as caught:
        SqlStore.open("postgresql://someone:hunter2@127.0.0.1:1/nothing", upgrade=True)
    assert "127.0.0.1:1" in str(caught.value)
    assert "hunter2" not in str(caught.value)


def test_a_new_sqlite_file_and_its_directories_are_made_when_upgrading(tmp_path: Path, data_home: Path) -> None:
    path = tmp_path / "a" / "b" / "store.db"
    with SqlStore.open(f"sqlite:///{path}", upgrade=True) as store:
        store.put(ghost())
    assert path.is_file()
    with SqlStore.open(f"sqlite:///{path}") as store:  # existing and current: opens without being asked
        assert store.get("Ghost", "g") is not None


def test_a_missing_sqlite_file_is_not_made_without_upgrade(tmp_path: Path, data_home: Path) -> None:
    path = tmp_path / "a" / "store.db"
    with pytest.raises(StoreError, match=r"no database at .*store\.db; create it with `wegent db upgrade --store"):
        SqlStore.open(f"sqlite:///{path}")
    assert not (tmp_path / "a").exists()


def test_the_embedded_default_is_created_without_being_asked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEGENT_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("WEGENT_STORE", raising=False)
    url = f"sqlite:///{tmp_path / 'home' / 'wegent.db'}"
    with SqlStore.open(url) as store:
        store.put(ghost())
    assert (tmp_path / "home" / "wegent.db").is_file()
    assert (tmp_path / "home" / "secret.key").is_file()  # the default secret box keeps its key in the data dir


def test_sqlite_files_use_wal(tmp_path: Path, data_home: Path) -> None:
    with SqlStore.open(f"sqlite:///{tmp_path / 's.db'}", upgrade=True) as store, store.engine.connect() as c:
        assert c.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert c.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
        assert c.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 5000
        assert c.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_in_memory_sqlite_is_one_database_shared_by_threads(data_home: Path) -> None:
    with SqlStore.open("sqlite://") as store:  # always new: made without being asked
        threads = [threading.Thread(target=lambda i=i: store.put(ghost(f"g{i}"))) for i in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(store.list()) == 8


def test_the_store_implements_both_protocols(store: SqlStore) -> None:
    assert isinstance(store, ResourceStore)
    assert isinstance(store, TaskStore)
    assert repr(store).startswith("SqlStore(")


# --- the plugin ---------------------------------------------------------------------------------------------------


def test_the_plugin_registers_the_four_schemes() -> None:
    registered: dict[str, Any] = {}
    _plugin.register_stores(register=lambda name, factory, *, description="": registered.update({name: factory}))
    assert set(registered) == {"sqlite", "postgresql", "mysql", "mariadb"}


def test_plugins_open_sql_stores_by_url(tmp_path: Path, data_home: Path) -> None:
    path = tmp_path / "s.db"
    plugins = Plugins.load()
    with pytest.raises(StoreError, match="wegent db upgrade"):  # not the default store: never created unasked
        plugins.open_store(f"sqlite:///{path}")
    SqlStore.open(f"sqlite:///{path}", upgrade=True).close()
    opened = plugins.open_store(f"sqlite:///{path}")
    assert isinstance(opened, SqlStore)
    opened.close()


def test_importing_the_plugin_imports_no_database_library() -> None:
    code = (
        "import sys, wegent_storage._plugin; print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('sqlalchemy', 'alembic', 'psycopg', 'pymysql', 'cryptography')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# --- what the rows hold -------------------------------------------------------------------------------------------


def test_json_columns_hold_json_never_pickles(store: SqlStore, database_url: str) -> None:
    store.put(ghost(prompt="héllo ✓", team="a"))
    task = store.create_task(TaskRecord(team="default/t", spec={"k": [1, 2]}))
    store.append_event(task.id, "text", {"delta": "hi"})
    store.add_subtask(SubtaskRecord(task_id=task.id, message_id=1, role="USER", result={"value": "x"}))
    checked = 0
    for table in _tables.metadata.sorted_tables:
        json_columns = [c.name for c in table.columns if isinstance(c.type, sa.JSON)]
        if not json_columns:
            continue
        for row in raw_rows(database_url, table, *json_columns):
            for text in row:
                assert isinstance(text, str)
                assert isinstance(json.loads(text), dict)
                checked += 1
    assert checked == 5  # body, labels, task data, subtask data, event data
    [(body,)] = raw_rows(database_url, _tables.resources, "body")
    assert json.loads(body)["kind"] == "Ghost"
    assert json.loads(body)["spec"]["systemPrompt"] == "héllo ✓"


def test_secrets_are_sealed_in_the_rows_and_plain_in_the_store(store: SqlStore, database_url: str) -> None:
    written = store.put(model(api_key="sk-very-secret", OPENAI_BASE_URL="http://x", TOKEN="${MY_TOKEN}"))
    [(body,)] = raw_rows(database_url, _tables.resources, "body")
    assert "sk-very-secret" not in body
    env = json.loads(body)["spec"]["modelConfig"]["env"]
    assert _secrets.is_encrypted(env["api_key"])
    assert env["TOKEN"] == "${MY_TOKEN}"  # placeholders are stored as written
    assert store.get("Model", "m").spec.config["env"]["api_key"] == "sk-very-secret"
    assert store.list("Model")[0] == written
    # ciphertexts differ on every seal, yet an unchanged put is unchanged
    again = store.put(model(api_key="sk-very-secret", OPENAI_BASE_URL="http://x", TOKEN="${MY_TOKEN}"))
    assert again == written
    assert raw_rows(database_url, _tables.resources, "body") == [(body,)]


def test_a_wrong_key_is_a_clear_error(store: SqlStore, database_url: str) -> None:
    store.put(model(api_key="sk-very-secret"))
    other = _secrets.SecretBox(b"k" * 32)
    with SqlStore.open(database_url, secrets=other) as wrong:
        with pytest.raises(WegentError, match="encrypted with key"):
            wrong.get("Model", "m")
        assert wrong.get("Ghost", "nothing") is None


def test_free_form_key_order_survives(store: SqlStore) -> None:
    env = {"zeta": "1", "alpha": "2", "mid": "3", "a_long_key": "4", "b": "5"}
    store.put(model(**env))
    assert list(store.get("Model", "m").spec.config["env"]) == list(env)


def test_names_are_case_sensitive_and_unicode(store: SqlStore) -> None:
    store.put(ghost("a", prompt="lower"))
    store.put(ghost("A", prompt="upper"))
    store.put(ghost("名前-🚀", "ns-ü", prompt="🚀 emoji"))
    assert store.get("Ghost", "a").spec.system_prompt == "lower"
    assert store.get("Ghost", "A").spec.system_prompt == "upper"
    assert store.get("Ghost", "名前-🚀", "ns-ü").spec.system_prompt == "🚀 emoji"
    assert [r.name for r in store.list(namespace="default")] == ["A", "a"]  # code point order, as the memory store


def test_long_names_and_big_bodies(store: SqlStore) -> None:
    name = "n" * 253
    prompt = "x" * 59_000
    store.put(ghost(name, prompt=prompt))
    assert store.get("Ghost", name).spec.system_prompt == prompt


def test_every_kind_round_trips_exactly(store: SqlStore) -> None:
    for fixture in sorted((Path(__file__).parents[1] / "fixtures" / "upstream").glob("*.yaml")):
        for resource in load(fixture):
            stored = store.put(resource)
            assert store.get(resource.kind, resource.name, resource.namespace) == stored
    assert {r.kind for r in store.list()} <= set(KINDS)


def test_a_stored_body_that_no_longer_validates_is_a_store_error(store: SqlStore, database_url: str) -> None:
    store.put(ghost())
    engine = sa.create_engine(parse_url(database_url))
    with engine.begin() as connection:
        connection.execute(_tables.resources.update().values(body={"kind": "Ghost", "metadata": {}}))
    engine.dispose()
    with pytest.raises(StoreError, match="a stored Ghost no longer validates"):
        store.get("Ghost", "g")


# --- batches, reopening, several stores -----------------------------------------------------------------------------


def test_put_many_is_puts_in_one_transaction(store: SqlStore) -> None:
    first = store.put(ghost("a", prompt="1"))
    written = store.put_many([ghost("a", prompt="1"), ghost("b"), ghost("b", prompt="later"), model()])
    assert written[0] == first  # unchanged
    assert [int(r.metadata.resource_version) for r in written[1:]] == [2, 3, 4]
    assert store.get("Ghost", "b").spec.system_prompt == "later"
    assert store.put_many([]) == []


def test_put_many_stores_all_or_nothing(store: SqlStore) -> None:
    store.put(ghost("a"))
    stale = ghost("a", prompt="stale")
    stale.metadata.resource_version = "99"
    with pytest.raises(ConflictError):
        store.put_many([ghost("new"), stale])
    assert store.get("Ghost", "new") is None
    assert store.put(ghost("new")).metadata.resource_version == "2"  # no version was used up


def test_put_many_agrees_with_the_memory_store(store: SqlStore) -> None:
    memory = MemoryStore()
    batch = [ghost("a"), ghost("b", "x"), ghost("a", prompt="2"), model(), ghost("b", "x")]
    expected = [memory.put(r) for r in batch]
    got = store.put_many(batch)
    assert [(r.key, r.metadata.resource_version) for r in got] == [
        (r.key, r.metadata.resource_version) for r in expected
    ]


def test_a_put_with_keys_in_another_order_is_unchanged(store: SqlStore) -> None:
    first = store.put(model("m", A_KEY="1", B_KEY="2"))
    again = store.put_many([model("m", B_KEY="2", A_KEY="1")])[0]
    assert again.metadata.resource_version == first.metadata.resource_version


@settings(max_examples=40)
@given(
    st.lists(
        st.tuples(st.sampled_from("abc"), st.sampled_from(["default", "team"]), st.sampled_from("xy")),
        max_size=12,
    ),
    st.integers(min_value=1, max_value=4),
)
def test_batches_of_any_shape_agree_with_the_memory_store(puts: list[tuple[str, str, str]], chunks: int) -> None:
    """Repeated keys, unchanged and changed puts, split into batches anyhow: the same results as one put at a time."""
    memory, batch = MemoryStore(), [ghost(name, namespace, prompt) for name, namespace, prompt in puts]
    expected = [memory.put(resource) for resource in batch]
    with SqlStore.open("sqlite://") as sql:
        batches = [batch[start : start + chunks] for start in range(0, len(batch), chunks)]
        got = [stored for part in batches for stored in sql.put_many(part)]
        assert [(r.key, r.metadata.resource_version, r.spec) for r in got] == [
            (r.key, r.metadata.resource_version, r.spec) for r in expected
        ]
        assert [r.spec for r in sql.list()] == [r.spec for r in memory.list()]


def test_a_reopened_store_has_everything_and_continues_the_versions(store: SqlStore, database_url: str) -> None:
    written = store.put(ghost())
    store.close()
    with SqlStore.open(database_url) as reopened:
        assert reopened.get("Ghost", "g") == written
        assert int(reopened.put(ghost("h")).metadata.resource_version) == int(written.metadata.resource_version) + 1


def test_two_stores_on_one_database_see_each_other(store: SqlStore, database_url: str) -> None:
    with SqlStore.open(database_url) as other:
        read = other.get("Ghost", "g")
        assert read is None
        store.put(ghost(prompt="1"))
        read = other.get("Ghost", "g")
        store.put(ghost(prompt="2"))
        read.spec.system_prompt = "3"
        with pytest.raises(
            ConflictError, match=r"Ghost default/g was changed since it was read \(resource version 1, now 2\)"
        ):
            other.put(read)
        other.delete("Ghost", "g")
        with pytest.raises(NotFoundError):
            store.delete("Ghost", "g")


def test_resource_versions_are_unique_across_concurrent_stores(store: SqlStore, database_url: str) -> None:
    others = [SqlStore.open(database_url) for _ in range(4)]
    versions: list[int] = []
    lock = threading.Lock()

    def work(index: int) -> None:
        for i in range(25):
            written = others[index].put(ghost(f"g{index}-{i}"))
            with lock:
                versions.append(int(written.metadata.resource_version))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for other in others:
        other.close()
    assert sorted(versions) == list(range(1, 101))


def test_loading_never_changes_a_resource(store: SqlStore) -> None:
    original: Resource = KINDS["Team"].model_validate(
        {
            "kind": "Team",
            "metadata": {"name": "t", "labels": {"flag": True}, "displayName": "T"},
            "spec": {
                "members": [{"botRef": {"name": "b"}, "role": "leader", "x-extra": {"k": 1}}],
                "collaborationModel": "solo",
                "unknown": [1.5],
            },
        }
    )
    written = store.put(original)
    assert store.get("Team", "t") == written
    assert written.model_dump(exclude={"metadata"}) == original.model_dump(exclude={"metadata"})
