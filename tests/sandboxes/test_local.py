"""The local sandbox: the conformance suite, and what is particular to a sandbox without isolation (its workspace
directories, its minimal environment, its process groups on the host)."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest

from wegent_core import Plugins, SandboxError, SandboxSpec
from wegent_core._sandbox import ISOLATION, LIMITS, NETWORK_POLICY, READ_ONLY_ROOT, Mount, owner_alive
from wegent_core.testing import SandboxConformance
from wegent_runtimes.sandboxes import LocalProvider
from wegent_runtimes.sandboxes._local import LocalSandbox

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "sandboxes"


@pytest.fixture
def provider(root: Path) -> LocalProvider:
    return LocalProvider({"root": str(root)})


@pytest.fixture
async def sandbox(provider: LocalProvider) -> AsyncIterator[LocalSandbox]:
    sandbox = await provider.create(SandboxSpec())
    yield sandbox
    await sandbox.close()


class TestLocalConformance(SandboxConformance):
    @pytest.fixture
    def provider(self, tmp_path: Path) -> LocalProvider:
        return LocalProvider({"root": str(tmp_path / "sandboxes")})


def _alive(pid: int) -> bool:
    """Running (a zombie is not: it waits only to be reaped by whichever process inherited it)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state not in ("Z", "X")


async def _gone_within(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while _alive(pid):
        if time.monotonic() > deadline:
            return False
        await anyio.sleep(0.02)
    return True


# --- what it claims --------------------------------------------------------------------------------------------------


def test_claims_no_isolation(provider: LocalProvider) -> None:
    assert not provider.capabilities & {ISOLATION, NETWORK_POLICY, LIMITS, READ_ONLY_ROOT}
    registered = Plugins.load().sandboxes["local"]
    assert "NO isolation" in registered.description
    assert type(registered.factory({})) is LocalProvider


async def test_mounts_are_refused(provider: LocalProvider, tmp_path: Path) -> None:
    with pytest.raises(SandboxError, match="cannot mount"):
        await provider.create(SandboxSpec(mounts=(Mount(source=str(tmp_path), target="/data"),)))


# --- workspace directories -------------------------------------------------------------------------------------------


async def test_fresh_workspace_is_private_and_removed_at_close(provider: LocalProvider, root: Path) -> None:
    sandbox = await provider.create(SandboxSpec())
    assert sandbox.workspace.is_dir()
    assert root in sandbox.workspace.parents
    assert root.stat().st_mode & 0o777 == 0o700
    await sandbox.exec("echo x > f")
    await sandbox.close()
    assert not sandbox.workspace.exists()
    assert list(root.iterdir()) == []


async def test_workspace_paths_map_onto_the_directory(sandbox: LocalSandbox) -> None:
    assert sandbox.host_path("/workspace/a/b") == sandbox.workspace / "a" / "b"
    assert sandbox.host_path("a/./b/../c") == sandbox.workspace / "a" / "c"
    assert sandbox.host_path("/etc/hostname", outside_workspace=True) == Path("/etc/hostname")
    assert (await sandbox.exec("pwd")).stdout.strip() == str(sandbox.workspace)


async def test_a_symlink_out_of_the_workspace_is_refused(sandbox: LocalSandbox) -> None:
    assert (await sandbox.exec("ln -s /etc etc-link")).ok
    with pytest.raises(SandboxError, match="symbolic link"):
        await sandbox.read_file("etc-link/passwd")
    with pytest.raises(SandboxError, match="symbolic link"):
        await sandbox.write_file("etc-link/wegent-probe", b"x")
    assert b"root:" in await sandbox.read_file("etc-link/passwd", outside_workspace=True)


async def test_root_of_another_user_is_refused(tmp_path: Path) -> None:
    if os.getuid() != 0:
        pytest.skip("needs root to give the directory to another user")
    root = tmp_path / "planted"
    root.mkdir(mode=0o777)
    os.chown(root, 65534, 65534)
    with pytest.raises(SandboxError, match="another user"):
        await LocalProvider({"root": str(root)}).create(SandboxSpec())


async def test_reap_finds_preserved_workspaces_of_another_process(root: Path, tmp_path: Path) -> None:
    first = LocalProvider({"root": str(root)})
    kept = await first.create(SandboxSpec(preserve=True, labels={"task": "1"}))
    done = await first.create(SandboxSpec(preserve=True, labels={"task": "2"}))
    running = await first.create(SandboxSpec(labels={"task": "3"}))
    given = await first.create(SandboxSpec(workspace=str(tmp_path / "mine"), preserve=True, labels={"task": "4"}))
    for sandbox in (kept, done, given):
        await sandbox.close()
    assert kept.workspace.exists()
    assert done.workspace.exists()
    # "a later process": a provider that has none of them open; its keep says task 2 is finished
    later = LocalProvider({"root": str(root)})
    assert await later.reap(lambda labels: labels["wegent.task"] != "2") == 1
    assert kept.workspace.exists()
    assert not done.workspace.exists()
    assert (tmp_path / "mine").exists()  # a workspace the caller gave is never the reaper's
    seen: list[dict[str, str]] = []
    assert await first.reap(lambda labels: bool(seen.append(dict(labels)))) == 1  # running is open: not a leftover
    assert seen[0]["wegent.task"] == "1"
    assert seen[0]["wegent.preserve"] == "true"
    assert owner_alive(seen[0]["wegent.owner"])  # this process
    assert running.workspace.exists()
    await running.close()


# --- environment -----------------------------------------------------------------------------------------------------


async def test_environment_is_minimal(provider: LocalProvider, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-must-not-leak")
    sandbox = await provider.create(SandboxSpec(env={"TOKEN_FOR_TOOL": "t"}))
    try:
        result = await sandbox.exec(["env"])  # no shell, so nothing added by one
        names = {line.split("=", 1)[0] for line in result.stdout.splitlines()}
        assert names == {"PATH", "HOME", "LANG", "TOKEN_FOR_TOOL"}
        assert (await sandbox.exec(["env"], env={"LANG": "C"})).stdout.count("LANG=C\n") == 1
    finally:
        await sandbox.close()


async def test_cwd_that_is_not_a_directory(sandbox: LocalSandbox) -> None:
    with pytest.raises(SandboxError, match="not a directory"):
        await sandbox.exec("true", cwd="missing")


# --- process groups --------------------------------------------------------------------------------------------------


async def test_timeout_kills_a_child_that_ignores_sigterm(sandbox: LocalSandbox) -> None:
    began = time.monotonic()
    result = await sandbox.exec("trap '' TERM; sh -c 'trap \"\" TERM; sleep 300' & echo $!; wait", timeout=0.5)
    assert result.timed_out
    assert time.monotonic() - began < 0.5 + 2
    assert await _gone_within(int(result.stdout.strip()), 0.5)


async def test_cancel_kills_the_group_on_the_host(sandbox: LocalSandbox) -> None:
    pids: list[int] = []
    seen = anyio.Event()

    def on_output(kind: str, text: str) -> None:
        pids.extend(int(word) for word in text.split())
        seen.set()

    with anyio.move_on_after(5) as scope:
        async with anyio.create_task_group() as group:
            group.start_soon(
                lambda: sandbox.exec("sleep 300 & echo $!; sleep 300 & echo $!; wait", on_output=on_output)
            )
            await seen.wait()
            await anyio.sleep(0.1)  # both pids printed
            began = time.monotonic()
            group.cancel_scope.cancel()
    assert not scope.cancelled_caught
    assert time.monotonic() - began < 2
    assert len(pids) == 2
    for pid in pids:
        assert await _gone_within(pid, 0.5)


async def test_close_kills_background_processes(provider: LocalProvider) -> None:
    sandbox = await provider.create(SandboxSpec())
    result = await sandbox.exec("sleep 300 >/dev/null 2>&1 & echo $!")
    pid = int(result.stdout)
    assert result.ok
    assert _alive(pid)
    await sandbox.close()
    assert await _gone_within(pid, 0.5)


async def test_a_background_child_holding_the_pipes_does_not_hold_exec(sandbox: LocalSandbox) -> None:
    began = time.monotonic()
    result = await sandbox.exec("sleep 300 & echo started")
    assert result.stdout == "started\n"
    assert result.exit_code == 0
    assert time.monotonic() - began < 2


async def test_close_during_exec_ends_it(sandbox: LocalSandbox) -> None:
    results = []

    async def run() -> None:
        results.append(await sandbox.exec("sleep 300"))

    async with anyio.create_task_group() as group:
        group.start_soon(run)
        await anyio.sleep(0.3)
        with anyio.fail_after(2):
            await sandbox.close()
    assert results[0].exit_code in (-signal.SIGTERM, -signal.SIGKILL)
