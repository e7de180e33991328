"""The resource store contract (run against every store factory below) and the namespace fallback rule."""

from __future__ import annotations

import copy
import importlib.util
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pluggy
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, initialize, invariant, rule

from wegent_core import _hookspecs, _memory_store
from wegent_core._errors import ConflictError, NotFoundError, StoreError
from wegent_core._memory_store import MemoryStore
from wegent_core._resources import KINDS, Ghost, Resource
from wegent_core._selectors import LabelSelector
from wegent_core._store import FALLBACK_KINDS, PUBLIC_NAMESPACE, ResourceStore, lookup


def _sql_store_factories() -> list[Callable[[], ResourceStore]]:
    """The SQL store on SQLite, PostgreSQL and MariaDB: the factories and their databases live in
    tests/storage/conftest.py, loaded by path (tests/ is not a package)."""
    path = Path(__file__).parents[1] / "storage" / "conftest.py"
    spec = importlib.util.spec_from_file_location("wegent_tests_storage_databases", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return [module.SqlStoreFactory(backend) for backend in module.BACKENDS]


# Every store implementation should pass this module; later stores add their factory here.
STORE_FACTORIES: list[Callable[[], ResourceStore]] = [MemoryStore, *_sql_store_factories()]

SPECS: dict[str, dict[str, Any]] = {
    "Ghost": {"systemPrompt": "p"},
    "Model": {"modelConfig": {"env": {"model": "openai"}}},
    "Shell": {"shellType": "Chat"},
    "Bot": {"ghostRef": {"name": "g"}, "shellRef": {"name": "s"}},
    "Team": {"members": [{"botRef": {"name": "b"}, "role": "leader"}], "collaborationModel": "solo"},
    "Skill": {"description": "d"},
    "Workspace": {
        "repository": {"gitUrl": "https://x/r.git", "gitRepo": "x/r", "branchName": "main", "gitDomain": "x"}
    },
    "Task": {"prompt": "hi", "teamRef": {"name": "t"}},
    "KnowledgeBase": {"description": "d"},
}


def make(kind: str, name: str, namespace: str = "default", labels: dict[str, str] | None = None) -> Resource:
    # pydantic keeps nested dicts of free-form (`Any`) fields by reference, so each resource gets its own spec.
    spec = copy.deepcopy(SPECS[kind])
    return KINDS[kind].model_validate(
        {"kind": kind, "metadata": {"name": name, "namespace": namespace, "labels": labels or {}}, "spec": spec}
    )


def ghost(name: str = "g", namespace: str = "default", prompt: str = "p", **labels: str) -> Ghost:
    return Ghost.model_validate(
        {
            "kind": "Ghost",
            "metadata": {"name": name, "namespace": namespace, "labels": labels},
            "spec": {"systemPrompt": prompt},
        }
    )


def version(resource: Resource) -> int:
    assert resource.metadata.resource_version is not None
    return int(resource.metadata.resource_version)


@pytest.fixture(params=STORE_FACTORIES, ids=lambda f: getattr(f, "__name__", repr(f)))
def store(request: pytest.FixtureRequest) -> Iterator[ResourceStore]:
    made = request.param()
    yield made
    if hasattr(made, "close"):  # a SQL store releases its connections
        made.close()


@pytest.fixture(scope="module", autouse=True)
def _drop_databases() -> Iterator[None]:
    yield
    for factory in STORE_FACTORIES:
        if hasattr(factory, "dispose"):  # a SQL store's database
            factory.dispose()


def test_memory_store_implements_the_protocol() -> None:
    assert isinstance(MemoryStore(), ResourceStore)


# --- get / put / delete -------------------------------------------------------------------------------------------


def test_get_missing_is_none(store: ResourceStore) -> None:
    assert store.get("Ghost", "nope") is None


def test_put_then_get(store: ResourceStore) -> None:
    before = datetime.now(UTC)
    created = store.put(ghost(prompt="hello", team="a"))
    after = datetime.now(UTC)

    assert created.spec.system_prompt == "hello"
    assert created.metadata.labels == {"team": "a"}
    assert int(created.metadata.resource_version) >= 1
    assert created.metadata.created_at == created.metadata.updated_at
    assert created.metadata.created_at.utcoffset() == timedelta(0)  # timezone-aware UTC
    assert before <= created.metadata.created_at <= after
    assert store.get("Ghost", "g") == created


def test_put_returns_a_new_object_and_leaves_the_callers_alone(store: ResourceStore) -> None:
    mine = ghost()
    created = store.put(mine)
    assert created is not mine
    assert mine.metadata.resource_version is None
    assert mine.metadata.created_at is None
    assert mine.metadata.updated_at is None


def test_identity_is_namespace_kind_and_name(store: ResourceStore) -> None:
    store.put(make("Ghost", "x"))
    store.put(make("Model", "x"))
    store.put(make("Ghost", "x", "other"))
    assert store.get("Ghost", "x").kind == "Ghost"
    assert store.get("Model", "x").kind == "Model"
    assert store.get("Ghost", "x", "other").namespace == "other"
    assert store.get("Shell", "x") is None
    assert store.get("Ghost", "x", "third") is None


def test_get_does_not_fall_back_to_public(store: ResourceStore) -> None:
    store.put(make("Ghost", "shared", PUBLIC_NAMESPACE))
    assert store.get("Ghost", "shared") is None


def test_delete_returns_the_deleted_resource(store: ResourceStore) -> None:
    created = store.put(ghost())
    deleted = store.delete("Ghost", "g")
    assert deleted == created
    assert store.get("Ghost", "g") is None
    assert store.list() == []


def test_the_revision_moves_with_every_change_and_only_then(store: ResourceStore) -> None:
    """What the engine's plan cache relies on: any put that changes something, and any delete, moves it."""
    before = store.revision()
    written = store.put(ghost())
    assert store.revision() == int(written.metadata.resource_version) > before
    store.put(ghost())  # unchanged
    assert store.revision() == int(written.metadata.resource_version)
    store.delete("Ghost", "g")
    after_delete = store.revision()
    assert after_delete > int(written.metadata.resource_version)
    assert int(store.put(ghost()).metadata.resource_version) > after_delete


def test_delete_missing_raises_not_found(store: ResourceStore) -> None:
    store.put(ghost(namespace="other"))
    with pytest.raises(NotFoundError) as caught:
        store.delete("Ghost", "g")
    assert str(caught.value) == "Ghost 'g' not found in namespace 'default'"
    assert isinstance(caught.value, StoreError)


def test_delete_with_current_version(store: ResourceStore) -> None:
    created = store.put(ghost())
    store.delete("Ghost", "g", resource_version=created.metadata.resource_version)
    assert store.get("Ghost", "g") is None


def test_delete_with_stale_version_conflicts_and_keeps_the_resource(store: ResourceStore) -> None:
    first = store.put(ghost(prompt="1"))
    second = store.put(ghost(prompt="2"))
    old, now = first.metadata.resource_version, second.metadata.resource_version
    with pytest.raises(ConflictError) as caught:
        store.delete("Ghost", "g", resource_version=old)
    assert str(caught.value) == f"Ghost default/g was changed since it was read (resource version {old}, now {now})"
    assert store.get("Ghost", "g") == second


def test_recreating_after_delete_continues_the_version_sequence(store: ResourceStore) -> None:
    first = store.put(ghost())
    store.delete("Ghost", "g")
    again = store.put(ghost())
    assert version(again) > version(first)
    assert again.metadata.created_at >= first.metadata.created_at


# --- list ---------------------------------------------------------------------------------------------------------


@pytest.fixture
def filled(store: ResourceStore) -> ResourceStore:
    for resource in [
        make("Team", "t2", "b", {"env": "prod"}),
        make("Ghost", "g1", "b", {"env": "dev", "tier": "front"}),
        make("Team", "t1", "a", {"env": "dev"}),
        make("Ghost", "g2", "a", {"env": "prod", "tier": "back"}),
        make("Ghost", "g1", "a"),
    ]:
        store.put(resource)
    return store


def keys(resources: list[Resource]) -> list[tuple[str, str, str]]:
    return [r.key for r in resources]


def test_list_everything_sorted_by_namespace_kind_name(filled: ResourceStore) -> None:
    assert keys(filled.list()) == [
        ("a", "Ghost", "g1"),
        ("a", "Ghost", "g2"),
        ("a", "Team", "t1"),
        ("b", "Ghost", "g1"),
        ("b", "Team", "t2"),
    ]


def test_list_by_kind_and_namespace(filled: ResourceStore) -> None:
    assert keys(filled.list("Team")) == [("a", "Team", "t1"), ("b", "Team", "t2")]
    assert keys(filled.list(namespace="b")) == [("b", "Ghost", "g1"), ("b", "Team", "t2")]
    assert keys(filled.list("Ghost", "a")) == [("a", "Ghost", "g1"), ("a", "Ghost", "g2")]
    assert filled.list("Shell") == []
    assert filled.list(namespace="nowhere") == []


@pytest.mark.parametrize(
    "selector",
    ["env=prod", {"env": "prod"}, LabelSelector.parse("env in (prod)")],
    ids=["text", "mapping", "selector"],
)
def test_list_by_selector_in_every_form(filled: ResourceStore, selector: Any) -> None:
    assert keys(filled.list(selector=selector)) == [("a", "Ghost", "g2"), ("b", "Team", "t2")]


def test_list_by_selector_kind_and_namespace_together(filled: ResourceStore) -> None:
    assert keys(filled.list("Ghost", selector="tier")) == [("a", "Ghost", "g2"), ("b", "Ghost", "g1")]
    assert keys(filled.list("Ghost", "a", "!env")) == [("a", "Ghost", "g1")]
    assert keys(filled.list(selector="env!=prod")) == [("a", "Ghost", "g1"), ("a", "Team", "t1"), ("b", "Ghost", "g1")]
    assert len(filled.list(selector="")) == 5


def test_list_with_a_bad_selector_raises_value_error(filled: ResourceStore) -> None:
    with pytest.raises(ValueError, match="invalid label selector"):
        filled.list(selector="env in (prod")


# --- optimistic concurrency ---------------------------------------------------------------------------------------


def test_update_with_the_current_version(store: ResourceStore) -> None:
    created = store.put(ghost(prompt="1"))
    change = created.model_copy(deep=True)
    change.spec.system_prompt = "2"
    updated = store.put(change)

    assert version(updated) > version(created)
    assert updated.metadata.created_at == created.metadata.created_at
    assert updated.metadata.updated_at >= created.metadata.updated_at
    assert store.get("Ghost", "g").spec.system_prompt == "2"


def test_update_with_a_stale_version_conflicts(store: ResourceStore) -> None:
    created = store.put(ghost(prompt="1"))
    reader_a, reader_b = store.get("Ghost", "g"), store.get("Ghost", "g")
    reader_a.spec.system_prompt = "from a"
    won = store.put(reader_a)
    reader_b.spec.system_prompt = "from b"

    old, now = created.metadata.resource_version, won.metadata.resource_version
    with pytest.raises(ConflictError) as caught:
        store.put(reader_b)
    assert str(caught.value) == f"Ghost default/g was changed since it was read (resource version {old}, now {now})"
    assert store.get("Ghost", "g") == won


def test_a_version_on_a_missing_resource_is_not_found(store: ResourceStore) -> None:
    phantom = ghost()
    phantom.metadata.resource_version = "7"
    with pytest.raises(NotFoundError, match=r"^Ghost 'g' not found in namespace 'default' "):
        store.put(phantom)
    assert store.get("Ghost", "g") is None


def test_put_without_a_version_replaces_unconditionally(store: ResourceStore) -> None:
    first = store.put(ghost(prompt="1"))
    second = store.put(ghost(prompt="2"))
    assert version(second) > version(first)
    assert second.metadata.created_at == first.metadata.created_at
    assert store.get("Ghost", "g").spec.system_prompt == "2"


@pytest.mark.parametrize("with_version", [False, True])
def test_an_unchanged_put_keeps_version_and_timestamps(store: ResourceStore, with_version: bool) -> None:
    created = store.put(ghost(env="dev"))
    again = ghost(env="dev")
    if with_version:
        again.metadata.resource_version = created.metadata.resource_version
    unchanged = store.put(again)
    assert unchanged == created  # same version, created_at and updated_at
    assert store.get("Ghost", "g") == created
    assert version(store.put(ghost(prompt="other"))) == version(created) + 1  # no version was used up


def test_store_managed_fields_do_not_count_as_a_change(store: ResourceStore) -> None:
    created = store.put(ghost())
    read = store.get("Ghost", "g")
    read.metadata.created_at = datetime(2000, 1, 1, tzinfo=UTC)
    read.metadata.updated_at = datetime(2000, 1, 1, tzinfo=UTC)
    assert store.put(read) == created


def test_the_version_is_checked_before_the_content(store: ResourceStore) -> None:
    created = store.put(ghost(prompt="1"))
    store.put(ghost(prompt="2"))
    stale = ghost(prompt="2")  # the same content as stored, but read at an old version
    stale.metadata.resource_version = created.metadata.resource_version
    with pytest.raises(ConflictError):
        store.put(stale)


@pytest.mark.parametrize(
    "change",
    [
        lambda g: g.metadata.labels.update(new="label"),
        lambda g: setattr(g.metadata, "display_name", "Shown"),
        lambda g: setattr(g.status, "message", "busy"),
        lambda g: setattr(g.spec, "skills", ["s"]),
    ],
    ids=["labels", "display name", "status", "spec"],
)
def test_every_other_field_counts_as_a_change(store: ResourceStore, change: Callable[[Ghost], None]) -> None:
    created = store.put(ghost())
    edited = store.get("Ghost", "g")
    change(edited)
    assert version(store.put(edited)) > version(created)


def test_versions_strictly_increase_across_the_store(store: ResourceStore) -> None:
    seen = [
        store.put(ghost("a")),
        store.put(make("Team", "t")),
        store.put(ghost("b", "other")),
        store.put(ghost("a", prompt="changed")),
    ]
    store.delete("Ghost", "b", "other")
    seen.append(store.put(make("Model", "m")))
    numbers = [version(r) for r in seen]
    assert numbers == sorted(numbers)
    assert len(set(numbers)) == len(numbers)


# --- isolation ----------------------------------------------------------------------------------------------------


def test_mutating_what_was_put_does_not_change_the_store(store: ResourceStore) -> None:
    mine = make("Model", "m", labels={"a": "1"})
    store.put(mine)
    mine.metadata.labels["a"] = "changed"
    mine.spec.config["env"]["model"] = "changed"  # a free-form nested dict
    stored = store.get("Model", "m")
    assert stored.metadata.labels == {"a": "1"}
    assert stored.spec.config == {"env": {"model": "openai"}}


@pytest.mark.parametrize("read", ["put", "get", "list", "delete"])
def test_mutating_what_the_store_returns_does_not_change_the_store(store: ResourceStore, read: str) -> None:
    created = store.put(make("Model", "m", labels={"a": "1"}))
    returned = {
        "put": lambda: store.put(make("Model", "m", labels={"a": "1"})),
        "get": lambda: store.get("Model", "m"),
        "list": lambda: store.list()[0],
        "delete": lambda: store.delete("Model", "m"),
    }[read]()
    returned.metadata.labels["a"] = "changed"
    returned.metadata.resource_version = "999"
    returned.spec.config["env"]["model"] = "changed"
    if read == "delete":
        store.put(make("Model", "m", labels={"a": "1"}))
    stored = store.get("Model", "m")
    assert stored.metadata.labels == {"a": "1"}
    assert stored.spec.config == {"env": {"model": "openai"}}
    assert read == "delete" or stored == created


# --- lookup: the namespace fallback -------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(FALLBACK_KINDS))
def test_lookup_falls_back_from_default_to_public(store: ResourceStore, kind: str) -> None:
    shared = store.put(make(kind, "x", PUBLIC_NAMESPACE))
    assert lookup(store, kind, "x") == (shared, ["default", "public"])
    assert lookup(store, kind, "x", "default") == (shared, ["default", "public"])


@pytest.mark.parametrize("kind", ["Task", "Workspace"])
def test_lookup_never_falls_back_for_tasks_and_workspaces(store: ResourceStore, kind: str) -> None:
    store.put(make(kind, "x", PUBLIC_NAMESPACE))
    assert lookup(store, kind, "x") == (None, ["default"])


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_lookup_prefers_the_exact_namespace(store: ResourceStore, kind: str) -> None:
    store.put(make(kind, "x", PUBLIC_NAMESPACE, {"where": "public"}))
    own = store.put(make(kind, "x", "default", {"where": "default"}))
    assert lookup(store, kind, "x") == (own, ["default"])


@pytest.mark.parametrize("kind", sorted(FALLBACK_KINDS))
def test_lookup_never_falls_back_from_another_namespace(store: ResourceStore, kind: str) -> None:
    store.put(make(kind, "x", PUBLIC_NAMESPACE))
    store.put(make(kind, "x", "default"))
    assert lookup(store, kind, "x", "team-a") == (None, ["team-a"])


def test_lookup_in_public_itself_searches_once(store: ResourceStore) -> None:
    shared = store.put(make("Shell", "x", PUBLIC_NAMESPACE))
    assert lookup(store, "Shell", "x", PUBLIC_NAMESPACE) == (shared, ["public"])


def test_lookup_reports_every_namespace_searched_when_missing(store: ResourceStore) -> None:
    assert lookup(store, "Ghost", "x") == (None, ["default", "public"])
    assert lookup(store, "Task", "x") == (None, ["default"])


def test_fallback_kinds_are_the_shareable_kinds() -> None:
    assert set(KINDS) - FALLBACK_KINDS == {"Task", "Workspace"}


# --- thread safety ------------------------------------------------------------------------------------------------


def test_concurrent_read_modify_write_loses_no_update(
    store: ResourceStore, run_together: Callable[[int, Callable[[int], None]], None]
) -> None:
    store.put(ghost(count="0"))
    workers, increments = 8, 40
    versions: list[int] = []
    lock = threading.Lock()

    def increment(_: int) -> None:
        for _ in range(increments):
            while True:
                current = store.get("Ghost", "g")
                current.metadata.labels["count"] = str(int(current.metadata.labels["count"]) + 1)
                try:
                    written = store.put(current)
                except ConflictError:
                    continue
                with lock:
                    versions.append(version(written))
                break

    run_together(workers, increment)
    assert store.get("Ghost", "g").metadata.labels["count"] == str(workers * increments)
    assert len(set(versions)) == workers * increments


def test_concurrent_puts_get_unique_versions(
    store: ResourceStore, run_together: Callable[[int, Callable[[int], None]], None]
) -> None:
    workers, each = 8, 50
    versions: list[int] = []
    lock = threading.Lock()

    def put_many(worker: int) -> None:
        mine = [version(store.put(ghost(f"g{worker}-{i}", prompt=str(i)))) for i in range(each)]
        assert mine == sorted(mine)  # each thread sees the store's versions increase
        with lock:
            versions.extend(mine)

    run_together(workers, put_many)
    assert len(set(versions)) == workers * each
    assert len(store.list()) == workers * each


# --- construction and the plugin ----------------------------------------------------------------------------------


def test_from_resources_puts_each() -> None:
    store = MemoryStore.from_resources([ghost("a"), make("Team", "t"), ghost("a", prompt="later wins")])
    assert keys(store.list()) == [("default", "Ghost", "a"), ("default", "Team", "t")]
    assert store.get("Ghost", "a").spec.system_prompt == "later wins"


def test_from_resources_ignores_versions_from_elsewhere() -> None:
    dumped = ghost()
    dumped.metadata.resource_version = "42"
    store = MemoryStore.from_resources([dumped])
    assert store.get("Ghost", "g") is not None


def test_from_url() -> None:
    assert isinstance(MemoryStore.from_url("memory://"), MemoryStore)
    for url in ["sqlite:///x.db", "memory:", "memory://x", ""]:
        with pytest.raises(ValueError, match="memory://"):
            MemoryStore.from_url(url)


def test_the_module_registers_the_memory_store_plugin() -> None:
    manager = pluggy.PluginManager(_hookspecs.PROJECT)
    manager.add_hookspecs(_hookspecs)
    manager.register(_memory_store)
    registered: dict[str, tuple[Any, str]] = {}

    def register(name: str, factory: Any, *, description: str = "") -> None:
        registered[name] = (factory, description)

    manager.hook.register_stores(register=register)
    factory, description = registered["memory"]
    assert isinstance(factory("memory://"), MemoryStore)
    assert description


# --- stateful: MemoryStore against a plain dict -------------------------------------------------------------------

_names = st.sampled_from(["a", "b", "c"])
_namespaces = st.sampled_from(["default", "public", "x"])
_prompts = st.sampled_from(["p", "q"])
_label_values = st.sampled_from(["1", "2"])


class StoreAgainstDict(RuleBasedStateMachine):
    """The model maps (namespace, name) to ((prompt, label), version); contents are equal iff those are."""

    keys = Bundle("keys")

    @initialize()
    def start(self) -> None:
        self.store = MemoryStore()
        self.model: dict[tuple[str, str], tuple[tuple[str, str], str]] = {}
        self.last_version = 0

    def _ghost(self, namespace: str, name: str, prompt: str, label: str) -> Ghost:
        return ghost(name, namespace, prompt, v=label)

    def _expect_written(self, key: tuple[str, str], content: tuple[str, str], written: Resource) -> None:
        previous = self.model.get(key)
        if previous is not None and previous[0] == content:
            assert written.metadata.resource_version == previous[1]
        else:
            assert version(written) > self.last_version
            self.last_version = version(written)
        self.model[key] = (content, written.metadata.resource_version)

    @rule(target=keys, namespace=_namespaces, name=_names, prompt=_prompts, label=_label_values)
    def put(self, namespace: str, name: str, prompt: str, label: str) -> tuple[str, str]:
        key = (namespace, name)
        self._expect_written(key, (prompt, label), self.store.put(self._ghost(namespace, name, prompt, label)))
        return key

    @rule(key=keys, prompt=_prompts, label=_label_values)
    def put_with_current_version(self, key: tuple[str, str], prompt: str, label: str) -> None:
        resource = self._ghost(*key, prompt, label)
        if key not in self.model:
            resource.metadata.resource_version = "1"
            with pytest.raises(NotFoundError):
                self.store.put(resource)
            return
        resource.metadata.resource_version = self.model[key][1]
        self._expect_written(key, (prompt, label), self.store.put(resource))

    @rule(key=keys, prompt=_prompts, label=_label_values, stale=st.integers(0, 3))
    def put_with_stale_version(self, key: tuple[str, str], prompt: str, label: str, stale: int) -> None:
        resource = self._ghost(*key, prompt, label)
        resource.metadata.resource_version = str(self.last_version + 1 + stale)  # never issued yet
        with pytest.raises(ConflictError if key in self.model else NotFoundError):
            self.store.put(resource)

    @rule(key=keys)
    def delete(self, key: tuple[str, str]) -> None:
        namespace, name = key
        if key in self.model:
            deleted = self.store.delete("Ghost", name, namespace)
            content, stored_version = self.model.pop(key)
            assert (deleted.spec.system_prompt, deleted.metadata.labels["v"]) == content
            assert deleted.metadata.resource_version == stored_version
        else:
            with pytest.raises(NotFoundError):
                self.store.delete("Ghost", name, namespace)

    @rule(key=keys)
    def get(self, key: tuple[str, str]) -> None:
        found = self.store.get("Ghost", key[1], key[0])
        if key not in self.model:
            assert found is None
        else:
            content, stored_version = self.model[key]
            assert (found.spec.system_prompt, found.metadata.labels["v"]) == content
            assert found.metadata.resource_version == stored_version

    @rule(label=_label_values)
    def list_by_label(self, label: str) -> None:
        listed = self.store.list("Ghost", selector={"v": label})
        expected = sorted((ns, "Ghost", name) for (ns, name), ((_, v), _) in self.model.items() if v == label)
        assert keys(listed) == expected

    @invariant()
    def same_keys_and_versions(self) -> None:
        if not hasattr(self, "store"):
            return
        listed = {(r.namespace, r.name): r.metadata.resource_version for r in self.store.list()}
        assert listed == {key: stored_version for key, (_, stored_version) in self.model.items()}


StoreAgainstDict.TestCase.settings = settings(
    max_examples=50, stateful_step_count=30, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
TestStoreAgainstDict = StoreAgainstDict.TestCase


def test_put_many_is_all_or_nothing(store: ResourceStore) -> None:
    first = store.put(ghost("a"))
    stale = ghost("a", prompt="changed")
    stale.metadata.resource_version = str(version(first) + 100)
    with pytest.raises(ConflictError):
        store.put_many([ghost("b"), stale, ghost("c")])
    assert store.get("Ghost", "b") is None
    assert store.get("Ghost", "c") is None
    assert store.get("Ghost", "a").spec.system_prompt == "p"  # type: ignore[union-attr]
    stored = store.put_many([ghost("b"), ghost("c", prompt="q")])
    assert [r.name for r in stored] == ["b", "c"]
    assert version(stored[0]) < version(stored[1])
