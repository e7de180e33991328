"""The warm pool: what it hands out, when it refills, how it is labelled and reaped, and that it leaves nothing behind.
A fake provider counts creations for the pool logic; the local provider shows a real one end to end, and the whole
conformance suite runs through a pool."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path
from typing import Any

import anyio
import pytest

from wegent_core import ExecResult, SandboxError, SandboxSpec
from wegent_core.testing import SandboxConformance
from wegent_runtimes.sandboxes import LocalProvider, PooledProvider, pooled
from wegent_runtimes.sandboxes._pool import POOL_ENV, POOL_LABEL, SLOT_LABEL, pool_size

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class FakeSandbox:
    def __init__(self, sandbox_id: str, spec: SandboxSpec) -> None:
        self.id = sandbox_id
        self.spec = spec
        self.closed = 0

    async def exec(self, command: Any, **_: Any) -> ExecResult:
        return ExecResult(0, f"ran in {self.id}", "")

    async def read_file(self, path: str, *, outside_workspace: bool = False) -> bytes:
        return b""

    async def write_file(self, path: str, data: bytes, *, mode: int = 0o644, outside_workspace: bool = False) -> None:
        pass

    async def copy_in(self, source: Path, target: str = ".") -> None:
        pass

    async def copy_out(self, source: str, target: Path) -> None:
        pass

    async def close(self) -> None:
        self.closed += 1


class FakeProvider:
    """Counts creations; creating takes `delay` seconds; fails while `failing` is set."""

    name = "fake"
    capabilities = frozenset({"isolation"})

    def __init__(self, delay: float = 0.0) -> None:
        self.made: list[FakeSandbox] = []
        self.delay = delay
        self.failing = False

    async def create(self, spec: SandboxSpec) -> FakeSandbox:
        await anyio.sleep(self.delay)
        if self.failing:
            raise SandboxError("engine down")
        sandbox = FakeSandbox(f"fake-{len(self.made)}", spec)
        self.made.append(sandbox)
        return sandbox

    async def reap(self, keep: Callable[[Mapping[str, str]], bool]) -> int:
        doomed = [s for s in self.made if not s.closed and not keep(s.spec.labels)]
        for sandbox in doomed:
            await sandbox.close()
        return len(doomed)

    @property
    def live(self) -> list[FakeSandbox]:
        return [s for s in self.made if not s.closed]


async def settle(condition: Callable[[], bool]) -> None:
    with anyio.fail_after(5):
        while not condition():
            await anyio.sleep(0.005)


SPEC = SandboxSpec(image="img:1", labels={"task": "7"})


async def test_hands_out_a_prestarted_sandbox_and_refills() -> None:
    fake = FakeProvider()
    async with PooledProvider(fake, 2) as pool:
        await pool.warm(SPEC)
        assert len(fake.made) == 2
        assert pool.idle == 2
        fake.delay = 10  # a creation now would be seen waiting
        with anyio.fail_after(1):
            sandbox = await pool.create(SPEC)
        assert sandbox.id == "fake-0"
        assert sandbox.spec == SPEC  # what the task asked for
        assert fake.made[0].spec.labels[POOL_LABEL] == pool.labels[POOL_LABEL]  # what the container carries
        assert "task" not in fake.made[0].spec.labels
        fake.delay = 0
        await settle(lambda: pool.idle == 2)
        assert len(fake.made) == 3
        assert (await sandbox.exec("x")).stdout == "ran in fake-0"


async def test_first_request_of_a_key_is_cold_then_pooled() -> None:
    fake = FakeProvider()
    async with PooledProvider(fake, 1) as pool:
        cold = await pool.create(SPEC)
        assert cold.spec.labels == {"task": "7"}
        assert POOL_LABEL not in cold.spec.labels
        await settle(lambda: pool.idle == 1)
        warm = await pool.create(SPEC.model_copy(update={"labels": {"task": "8"}}))  # labels are not in the key
        assert POOL_LABEL in fake.made[1].spec.labels
        assert warm.id == fake.made[1].id


@pytest.mark.parametrize(
    "other",
    [
        SPEC.model_copy(update={"image": "img:2"}),
        SPEC.model_copy(update={"network": "host"}),
        SPEC.model_copy(update={"memory_mb": 2048}),
        SPEC.model_copy(update={"env": {"A": "1"}}),
        SPEC.model_copy(update={"user": "1000"}),
    ],
)
async def test_a_different_key_is_not_served_from_the_pool(other: SandboxSpec) -> None:
    fake = FakeProvider()
    async with PooledProvider(fake, 1) as pool:
        await pool.warm(SPEC)
        sandbox = await pool.create(other)
        assert sandbox.spec == other
        assert POOL_LABEL not in sandbox.spec.labels
        assert pool.idle >= 1
        assert not fake.made[0].closed


@pytest.mark.parametrize("update", [{"workspace": "/srv/ws"}, {"preserve": True}])
async def test_host_workspaces_and_preserved_specs_are_never_pooled(update: dict[str, Any]) -> None:
    fake = FakeProvider()
    async with PooledProvider(fake, 1) as pool:
        await pool.warm(SPEC)
        spec = SPEC.model_copy(update=update)
        sandbox = await pool.create(spec)
        assert sandbox.spec is spec
        assert isinstance(sandbox, FakeSandbox)
        with pytest.raises(SandboxError, match="only specs"):
            await pool.warm(spec)


async def test_closing_the_pool_destroys_idle_sandboxes_only() -> None:
    fake = FakeProvider()
    async with PooledProvider(fake, 3) as pool:
        await pool.warm(SPEC)
        taken = await pool.create(SPEC)
        await settle(lambda: pool.idle == 3)
    assert pool.idle == 0
    assert [s.id for s in fake.live] == [taken.id]  # the task's sandbox is the task's to close
    await taken.close()
    assert fake.live == []
    with pytest.raises(SandboxError, match="closed"):
        await pool.create(SPEC)


async def test_closing_while_a_creation_is_under_way() -> None:
    fake = FakeProvider(delay=0.2)
    async with PooledProvider(fake, 2) as pool:
        pool._slot(SPEC)  # starts filling
        await anyio.sleep(0.3)
    assert len(fake.made) == 1
    assert fake.live == []


async def test_a_pool_must_be_entered() -> None:
    with pytest.raises(SandboxError, match="not started"):
        await PooledProvider(FakeProvider(), 1).create(SPEC)


async def test_a_failing_provider_backs_off_and_callers_see_the_error() -> None:
    fake = FakeProvider()
    fake.failing = True
    async with PooledProvider(fake, 1) as pool:
        with pytest.raises(SandboxError, match="engine down"):
            await pool.warm(SPEC)
        with pytest.raises(SandboxError, match="engine down"):
            await pool.create(SPEC)  # cold, and the cold error is the caller's
        fake.failing = False
        with anyio.fail_after(3):  # the filler retried after its back-off
            await pool.warm(SPEC)
        assert pool.idle == 1


async def test_least_recently_used_key_is_evicted() -> None:
    fake = FakeProvider()
    specs = [SPEC.model_copy(update={"image": f"img:{n}"}) for n in range(3)]
    async with PooledProvider(fake, 1, max_keys=2) as pool:
        await pool.warm(specs[0])
        await pool.warm(specs[1])
        await pool.warm(specs[0])  # img:0 used again: img:1 is now the oldest
        await pool.warm(specs[2])
        await settle(lambda: len(fake.live) == 2)
        assert {s.spec.image for s in fake.live} == {"img:0", "img:2"}


async def test_reap_keeps_idle_ones_and_judges_handed_out_ones_by_their_task() -> None:
    fake = FakeProvider()
    async with PooledProvider(fake, 1, labels={"owner": "me"}) as pool:
        await pool.warm(SPEC)
        taken = await pool.create(SPEC)  # serves task 7
        await settle(lambda: pool.idle == 1)
        stranger = await fake.create(SandboxSpec(labels={POOL_LABEL: "other", SLOT_LABEL: "x", "owner": "dead"}))
        seen: list[dict[str, str]] = []

        def keep(labels: Mapping[str, str]) -> bool:
            seen.append(dict(labels))
            return labels.get("task") != "7" and labels.get("owner") != "dead"

        assert await pool.reap(keep) == 2
        assert fake.made[0].closed
        assert stranger.closed
        assert pool.idle == 1
        assert not fake.made[1].closed
        assert {"task": "7", "wegent.task": "7", "owner": "me"}.items() <= seen[0].items()
        await taken.close()
        assert await pool.reap(lambda labels: False) == 0  # released: no longer judged as task 7's


def test_pool_size_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(POOL_ENV, raising=False)
    assert pool_size({}) == 0  # off by default
    monkeypatch.setenv(POOL_ENV, "3")
    assert pool_size(None) == 3
    assert pool_size({"pool": 1}) == 1  # the provider option wins
    assert pool_size({"pool": 0}) == 0
    for bad in ("x", "-1", "1.5"):
        with pytest.raises(SandboxError, match="whole number"):
            pool_size({"pool": bad})


async def test_pooled_is_a_no_op_unless_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(POOL_ENV, raising=False)
    fake = FakeProvider()
    async with pooled(fake, {}) as provider:
        assert provider is fake
    monkeypatch.setenv(POOL_ENV, "2")
    async with pooled(fake, {}, labels={"owner": "me"}) as provider:
        assert isinstance(provider, PooledProvider)
        assert provider.size == 2
        assert provider.labels["owner"] == "me"
        await provider.warm(SPEC)
    assert fake.live == []


async def test_with_the_local_provider(tmp_path: Path) -> None:
    root = tmp_path / "sandboxes"
    async with PooledProvider(LocalProvider({"root": str(root)}), 2) as pool:
        await pool.warm(SandboxSpec())
        sandbox = await pool.create(SandboxSpec(labels={"task": "1"}))
        (tmp_path / "src").mkdir()
        (tmp_path / "src" / "main.py").write_text("print('hi')\n")
        await sandbox.copy_in(tmp_path / "src")
        assert (await sandbox.exec("cat main.py")).stdout == "print('hi')\n"
        workspace = sandbox.workspace  # the local sandbox's own attribute, through the wrapper
        await sandbox.close()
        assert not workspace.exists()
        await settle(lambda: pool.idle == 2)
    assert list(root.iterdir()) == []


class TestPooledLocalConformance(SandboxConformance):
    """A pooled sandbox behaves as any other: the whole suite through a pool of the local provider."""

    @pytest.fixture
    async def provider(self, tmp_path: Path) -> AsyncIterator[PooledProvider]:
        async with PooledProvider(LocalProvider({"root": str(tmp_path / "sandboxes")}), 2) as pool:
            await pool.warm(SandboxSpec())
            yield pool
