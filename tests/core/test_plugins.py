"""The plugin manager facade: entry points (real ones, from fake distributions put on sys.path), plugin objects
registered at run time, failures that are recorded instead of breaking the others, and the lookup errors."""

from __future__ import annotations

import ast
import sys
import textwrap
import types
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from wegent_core._errors import PluginError
from wegent_core._hookspecs import hookimpl
from wegent_core._plugins import Plugins, PluginWarning, Registration

CORE = Path(__file__).parents[2] / "wegent_core"


# --- fake distributions -------------------------------------------------------------------------------------------


MakeDist = Callable[..., None]


@pytest.fixture(autouse=True)
def _no_env_blocking(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WEGENT_DISABLE_PLUGINS", raising=False)


@pytest.fixture
def make_dist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[MakeDist]:
    """Install a distribution with `wegent` entry points into a directory on sys.path, the way pip would."""
    monkeypatch.syspath_prepend(str(tmp_path))
    modules: list[str] = []

    def make(dist: str, version: str, entry_points: dict[str, str], sources: dict[str, str]) -> None:
        info = tmp_path / f"{dist.replace('-', '_')}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
        lines = "".join(f"{name} = {target}\n" for name, target in entry_points.items())
        (info / "entry_points.txt").write_text(f"[wegent]\n{lines}")
        for module, source in sources.items():
            (tmp_path / f"{module}.py").write_text(textwrap.dedent(source))
            modules.append(module)

    yield make
    for module in modules:
        sys.modules.pop(module, None)


GOOD_STORE = """
    from wegent_core._hookspecs import hookimpl

    @hookimpl
    def register_stores(register):
        register("fakestore", lambda url: ("fakestore", url), description="A fake store")
"""


def fake_names(plugins: Plugins) -> set[str]:
    return {info.name for info in plugins.info()} - {"memory-store"}


# --- plugin objects -----------------------------------------------------------------------------------------------


class Everything:
    """One thing for every extension point."""

    @hookimpl
    def register_runtimes(self, register: Any) -> None:
        register("Echo", "runtime-factory", description="echoes")

    @hookimpl
    def register_sandboxes(self, register: Any) -> None:
        register("void", "sandbox-factory")

    @hookimpl
    def register_model_providers(self, register: Any) -> None:
        register("scripted", "provider-factory")

    @hookimpl
    def register_stores(self, register: Any) -> None:
        register("fake", lambda url: ("fake store", url))

    @hookimpl
    def register_knowledge_backends(self, register: Any) -> None:
        register("grep", "knowledge-factory")

    @hookimpl
    def register_tools(self, register: Any) -> None:
        register("clock", "tool-factory")


def store_plugin(name: str, factory: Any = None) -> object:
    class StorePlugin:
        @hookimpl
        def register_stores(self, register: Any) -> None:
            register(name, factory or (lambda url: url))

    return StorePlugin()


# --- built-ins and run-time registration --------------------------------------------------------------------------


def test_builtin_memory_store_comes_through_the_real_entry_point() -> None:
    pytest.importorskip("wegent_core._memory_store")
    plugins = Plugins.load()
    registration = plugins.stores["memory"]
    assert registration.plugin == "memory-store"
    info = next(i for i in plugins.info() if i.name == "memory-store")
    assert info.distribution == "wegent"
    assert info.error is None
    assert "register_stores" in info.hooks
    store = plugins.open_store("memory://")
    assert type(store).__name__ == "MemoryStore"


def test_without_entry_points_nothing_is_registered() -> None:
    plugins = Plugins.load(entry_points=False)
    assert plugins.info() == []
    for registry in (
        plugins.runtimes,
        plugins.sandboxes,
        plugins.model_providers,
        plugins.stores,
        plugins.knowledge_backends,
        plugins.tools,
    ):
        assert len(registry) == 0


def test_a_plugin_object_registered_at_run_time_fills_every_registry() -> None:
    plugins = Plugins.load(entry_points=False)
    name = plugins.register(Everything(), name="everything")
    assert name == "everything"
    assert plugins.runtimes["Echo"] == Registration("Echo", "runtime-factory", "everything", "echoes")
    assert plugins.sandboxes["void"].factory == "sandbox-factory"
    assert plugins.model_providers["scripted"].factory == "provider-factory"
    assert plugins.knowledge_backends["grep"].factory == "knowledge-factory"
    assert plugins.tools["clock"].factory == "tool-factory"
    assert plugins.stores["fake"].plugin == "everything"
    [info] = plugins.info()
    assert info.name == "everything"
    assert set(info.hooks) == {
        "register_runtimes",
        "register_sandboxes",
        "register_model_providers",
        "register_stores",
        "register_knowledge_backends",
        "register_tools",
    }


def test_a_module_can_be_a_plugin() -> None:
    module = types.ModuleType("my_wegent_plugin")

    @hookimpl
    def register_tools(register: Any) -> None:
        register("search", "search-tool", description="searches")

    module.register_tools = register_tools  # type: ignore[attr-defined]
    plugins = Plugins.load(entry_points=False)
    plugins.register(module)
    assert plugins.tools["search"].description == "searches"
    assert plugins.tools["search"].plugin == "my_wegent_plugin"


def test_registries_are_read_only_mappings() -> None:
    plugins = Plugins.load(entry_points=False)
    plugins.register(Everything())
    assert isinstance(plugins.stores, Mapping)
    assert "fake" in plugins.stores
    assert "nope" not in plugins.stores
    assert plugins.stores.get("nope") is None
    assert list(plugins.stores) == ["fake"]
    with pytest.raises(TypeError):
        plugins.stores["other"] = plugins.stores["fake"]  # type: ignore[index]


def test_registering_refills_the_registries_the_caller_already_holds() -> None:
    plugins = Plugins.load(entry_points=False)
    stores = plugins.stores
    plugins.register(store_plugin("one"))
    plugins.register(store_plugin("two"))
    assert set(stores) == {"one", "two"}


def test_every_register_hook_is_called_once_per_load(make_dist: MakeDist) -> None:
    make_dist(
        "wegent-counting",
        "1.0",
        {"counting": "counting_plugin"},
        {
            "counting_plugin": """
        from wegent_core._hookspecs import hookimpl
        calls = []

        @hookimpl
        def register_tools(register):
            calls.append(1)
            register("count", len)
    """
        },
    )
    plugins = Plugins.load()
    assert plugins.tools["count"].plugin == "counting"
    assert sys.modules["counting_plugin"].calls == [1]


# --- entry points -------------------------------------------------------------------------------------------------


def test_an_entry_point_plugin_is_loaded_with_its_distribution(make_dist: MakeDist) -> None:
    make_dist("wegent-fake", "1.2", {"fake": "fake_store_plugin"}, {"fake_store_plugin": GOOD_STORE})
    plugins = Plugins.load()
    assert plugins.stores["fakestore"].plugin == "fake"
    assert plugins.stores["fakestore"].description == "A fake store"
    assert plugins.open_store("fakestore://x") == ("fakestore", "fakestore://x")
    info = next(i for i in plugins.info() if i.name == "fake")
    assert (info.distribution, info.version, info.error) == ("wegent-fake", "1.2", None)
    assert info.hooks == ("register_stores",)


def test_a_plugin_that_fails_to_import_is_recorded_and_the_others_still_load(make_dist: MakeDist) -> None:
    make_dist(
        "wegent-redis",
        "0.3",
        {"redis": "wegent_redis_plugin"},
        {"wegent_redis_plugin": "import redis_client_that_is_not_installed\n"},
    )
    make_dist("wegent-fake", "1.2", {"fake": "fake_store_plugin"}, {"fake_store_plugin": GOOD_STORE})
    with pytest.warns(PluginWarning) as caught:
        plugins = Plugins.load()
    [warning] = [str(w.message) for w in caught if "'redis'" in str(w.message)]
    assert "wegent-redis" in warning
    assert "ModuleNotFoundError" in warning
    assert "redis_client_that_is_not_installed" in warning

    assert "fakestore" in plugins.stores
    failed = next(i for i in plugins.info() if i.name == "redis")
    assert failed.distribution == "wegent-redis"
    assert failed.error is not None
    assert "ModuleNotFoundError" in failed.error
    assert [i.name for i in plugins.failures] == ["redis"]


def test_a_lookup_miss_names_what_is_registered_and_what_failed(make_dist: MakeDist) -> None:
    make_dist(
        "wegent-redis",
        "0.3",
        {"redis": "wegent_redis_plugin2"},
        {"wegent_redis_plugin2": "import redis_client_that_is_not_installed\n"},
    )
    make_dist("wegent-fake", "1.2", {"fake": "fake_store_plugin2"}, {"fake_store_plugin2": GOOD_STORE})
    with pytest.warns(PluginWarning):
        plugins = Plugins.load(blocked=["memory-store", "sql-store"])
    with pytest.raises(PluginError) as excinfo:
        plugins.stores["redis"]
    message = str(excinfo.value)
    assert "no store registered for 'redis' (registered: fakestore)" in message
    assert "'redis'" in message
    assert "wegent-redis" in message
    assert "failed to load: ModuleNotFoundError: No module named 'redis_client_that_is_not_installed'" in message
    with pytest.raises(PluginError, match="failed to load"):
        plugins.open_store("redis://localhost")


def test_a_lookup_miss_with_nothing_registered() -> None:
    plugins = Plugins.load(entry_points=False)
    with pytest.raises(PluginError, match=r"no runtime registered for 'Chat' \(registered: none\)"):
        plugins.runtimes["Chat"]


def test_a_lookup_miss_suggests_a_close_name() -> None:
    plugins = Plugins.load(entry_points=False)
    plugins.register(Everything())
    with pytest.raises(PluginError, match="did you mean 'Echo'"):
        plugins.runtimes["echo"]


def test_a_hook_that_raises_is_recorded_and_contributes_nothing(make_dist: MakeDist) -> None:
    make_dist(
        "wegent-boom",
        "2.0",
        {"boom": "boom_plugin"},
        {
            "boom_plugin": """
        from wegent_core._hookspecs import hookimpl

        @hookimpl
        def register_tools(register):
            register("half", "registered before the failure")
            raise RuntimeError("boom")
    """
        },
    )
    make_dist("wegent-fake", "1.2", {"fake": "fake_store_plugin3"}, {"fake_store_plugin3": GOOD_STORE})
    with pytest.warns(PluginWarning, match=r"'boom'.*wegent-boom.*RuntimeError: boom"):
        plugins = Plugins.load()
    assert "half" not in plugins.tools
    assert "fakestore" in plugins.stores
    failed = next(i for i in plugins.info() if i.name == "boom")
    assert failed.error == "RuntimeError: boom"


def test_a_misspelt_hook_name_is_reported(make_dist: MakeDist) -> None:
    make_dist(
        "wegent-typo",
        "1.0",
        {"typo": "typo_plugin"},
        {
            "typo_plugin": """
        from wegent_core._hookspecs import hookimpl

        @hookimpl
        def register_store(register):
            register("never", "never")
    """
        },
    )
    make_dist("wegent-fake", "1.2", {"fake": "fake_store_plugin4"}, {"fake_store_plugin4": GOOD_STORE})
    with pytest.warns(PluginWarning, match="register_store"):
        plugins = Plugins.load()
    failed = next(i for i in plugins.info() if i.name == "typo")
    assert failed.error is not None
    assert "unknown hook 'register_store'" in failed.error
    assert "register_stores" in failed.error  # the suggestion
    assert "fakestore" in plugins.stores
    with pytest.raises(PluginError, match="unknown hook 'register_store'"):
        plugins.stores["never"]


def test_a_misspelt_hook_on_a_plugin_registered_at_run_time_raises() -> None:
    class Typo:
        @hookimpl
        def register_runtime(self, register: Any) -> None:
            register("Never", "never")

    plugins = Plugins.load(entry_points=False)
    with pytest.raises(PluginError, match="unknown hook 'register_runtime'"):
        plugins.register(Typo(), name="typo")
    assert plugins.info() == []
    assert plugins.register(Everything(), name="typo") == "typo"  # the name is free again


def test_a_hook_that_raises_at_run_time_registration_raises_and_is_not_kept() -> None:
    class Broken:
        @hookimpl
        def register_tools(self, register: Any) -> None:
            raise RuntimeError("no tools today")

    plugins = Plugins.load(entry_points=False)
    plugins.register(store_plugin("kept"), name="good")
    with pytest.raises(PluginError, match="no tools today"):
        plugins.register(Broken(), name="broken")
    assert [i.name for i in plugins.info()] == ["good"]
    assert "kept" in plugins.stores


def test_two_plugins_registering_one_name_is_an_error_naming_both() -> None:
    plugins = Plugins.load(entry_points=False)
    plugins.register(store_plugin("shared"), name="first-plugin")
    with pytest.raises(PluginError) as excinfo:
        plugins.register(store_plugin("shared"), name="second-plugin")
    message = str(excinfo.value)
    assert "'shared'" in message
    assert "first-plugin" in message
    assert "second-plugin" in message
    assert plugins.stores["shared"].plugin == "first-plugin"  # the failed registration changed nothing
    assert [i.name for i in plugins.info()] == ["first-plugin"]


def test_two_entry_points_registering_one_name_is_an_error_naming_both(make_dist: MakeDist) -> None:
    make_dist("wegent-one", "1.0", {"one": "dup_one"}, {"dup_one": GOOD_STORE})
    make_dist("wegent-two", "1.0", {"two": "dup_two"}, {"dup_two": GOOD_STORE})
    with pytest.raises(PluginError, match="fakestore") as excinfo:
        Plugins.load()
    assert "'one'" in str(excinfo.value)
    assert "'two'" in str(excinfo.value)
    assert "wegent-one" in str(excinfo.value)


def test_one_name_under_different_hooks_is_fine() -> None:
    class Both:
        @hookimpl
        def register_stores(self, register: Any) -> None:
            register("same", "a store")

        @hookimpl
        def register_tools(self, register: Any) -> None:
            register("same", "a tool")

    plugins = Plugins.load(entry_points=False)
    plugins.register(Both())
    assert plugins.stores["same"].factory == "a store"
    assert plugins.tools["same"].factory == "a tool"


def test_a_name_registered_twice_by_one_plugin_is_that_plugins_failure(make_dist: MakeDist) -> None:
    make_dist(
        "wegent-twice",
        "1.0",
        {"twice": "twice_plugin"},
        {
            "twice_plugin": """
        from wegent_core._hookspecs import hookimpl

        @hookimpl
        def register_tools(register):
            register("again", 1)
            register("again", 2)
    """
        },
    )
    with pytest.warns(PluginWarning, match="again"):
        plugins = Plugins.load()
    assert "again" not in plugins.tools


def test_blocked_entry_points_are_not_loaded(make_dist: MakeDist, monkeypatch: pytest.MonkeyPatch) -> None:
    make_dist("wegent-fake", "1.2", {"fake": "fake_store_plugin5"}, {"fake_store_plugin5": GOOD_STORE})
    make_dist(
        "wegent-other",
        "1.0",
        {"other": "other_plugin"},
        {
            "other_plugin": """
        from wegent_core._hookspecs import hookimpl

        @hookimpl
        def register_tools(register):
            register("other-tool", 1)
    """
        },
    )
    plugins = Plugins.load(blocked=["fake"])
    assert "fakestore" not in plugins.stores
    assert "other-tool" in plugins.tools
    assert "fake" not in fake_names(plugins)
    with pytest.raises(PluginError, match="fake"):
        plugins.stores["fakestore"]

    monkeypatch.setenv("WEGENT_DISABLE_PLUGINS", "nothing-by-that-name, other")
    plugins = Plugins.load()
    assert "fakestore" in plugins.stores
    assert "other-tool" not in plugins.tools


def test_open_store_chooses_the_factory_by_scheme() -> None:
    plugins = Plugins.load(entry_points=False)
    plugins.register(store_plugin("fake", lambda url: ("opened", url)))
    assert plugins.open_store("fake://somewhere") == ("opened", "fake://somewhere")
    assert plugins.open_store("FAKE+driver://x") == ("opened", "FAKE+driver://x")
    with pytest.raises(PluginError, match=r"no store registered for 'redis' \(registered: fake\)"):
        plugins.open_store("redis://localhost:6379")
    with pytest.raises(PluginError, match="not a store URL"):
        plugins.open_store("just-a-path.db")


def test_store_schema_is_found_by_the_store_scheme() -> None:
    class SchemaPlugin:
        @hookimpl
        def register_store_schemas(self, register: Any) -> None:
            register("versioned", lambda url: ("schema of", url))

    plugins = Plugins.load(entry_points=False)
    plugins.register(store_plugin("versioned"))
    plugins.register(store_plugin("plain"))
    plugins.register(SchemaPlugin())
    assert plugins.store_schema("versioned+driver://db") == ("schema of", "versioned+driver://db")
    with pytest.raises(PluginError, match="the 'plain' store has no schema to manage"):
        plugins.store_schema("plain://x")
    with pytest.raises(PluginError, match="no store registered for 'redis'"):
        plugins.store_schema("redis://localhost")


def test_the_sql_store_schema_comes_through_the_real_entry_point(tmp_path: Path) -> None:
    pytest.importorskip("wegent_storage")
    schema = Plugins.load().store_schema(f"sqlite:///{tmp_path}/new.db")
    assert (schema.status().state, (tmp_path / "new.db").exists()) == ("empty", False)  # looking creates nothing
    after = schema.upgrade()
    assert (after.state, after.current) == ("current", after.head)


def test_plugin_modules_import_no_other_wegent_package() -> None:
    for name in ("_plugins.py", "_schema.py"):
        tree = ast.parse((CORE / name).read_text())
        imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
        imported |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
        assert not {m for m in imported if m.split(".")[0] in ("wegent_runtimes", "wegent_storage", "wegent_server")}
