"""The conformance suite every sandbox plugin must pass.

Subclass `SandboxConformance` in a test module of your plugin and give it a `provider` fixture (and, if your
provider needs one, an `image` fixture); pytest collects the subclass (name it `Test...`) and runs every test against
your provider::

    import pytest
    from wegent_core.testing import SandboxConformance

    class TestMySandbox(SandboxConformance):
        @pytest.fixture
        def provider(self):
            return MyProvider({"socket": "unix:///run/my.sock"})

        @pytest.fixture
        def image(self):
            return "my-sandbox:latest"  # default: None, the provider's default image

Needs pytest, anyio's pytest plugin (installed with anyio) and hypothesis. The tests run on asyncio; override the
`anyio_backend` fixture to change that. A test that needs a capability the provider does not claim in
`capabilities` (network policy, limits, a read-only root, isolation, mounts, preserve) is skipped, saying which;
every other test is mandatory. Each sandbox a test makes carries the label `wegent.conformance` and is reaped at the
end of the test, so a failing test leaves nothing behind.
"""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wegent_core._sandbox import (
    CAPABILITIES,
    ISOLATION,
    LIMITS,
    MOUNTS,
    NETWORK_POLICY,
    PRESERVE,
    READ_ONLY_ROOT,
    Mount,
    Sandbox,
    SandboxError,
    SandboxProvider,
    SandboxSpec,
)

LABEL = "wegent.conformance"
KILL_WITHIN = 2.0  # seconds: a timeout or a cancel must have killed the command (and its children) by then

# Prints the pid of a background child, then waits for it: killing only the shell would leave the child running.
PARENT_AND_CHILD = "sleep 300 & echo $!; wait"

# A file name any POSIX file system takes: no "/" or NUL, not "." or "..", at most 255 bytes of UTF-8.
_NAME_CHARS = st.characters(codec="utf-8", exclude_characters="/\0", exclude_categories=("Cs", "Cc"))
FILE_NAMES = st.text(_NAME_CHARS, min_size=1, max_size=40).filter(
    lambda name: name not in (".", "..") and len(name.encode()) <= 255
)

Make = Callable[..., Awaitable[Sandbox]]


def _capability(provider: SandboxProvider, capability: str) -> None:
    if capability not in provider.capabilities:
        pytest.skip(f"provider {provider.name!r} does not claim the {capability!r} capability")


async def _child_gone(sandbox: Sandbox, pid: str) -> bool:
    """Whether process `pid` (as the sandbox numbers it) has exited, polled for up to KILL_WITHIN seconds. A zombie
    counts as gone: it runs nothing, and reaping it is its new parent's business."""
    probe = f's=$(cat /proc/{pid}/stat 2>/dev/null) || exit 0; case "${{s##*) }}" in Z*|X*) exit 0;; esac; exit 1'
    deadline = time.monotonic() + KILL_WITHIN
    while True:
        if (await sandbox.exec(probe)).exit_code == 0:
            return True
        if time.monotonic() > deadline:
            return False
        await anyio.sleep(0.1)


def _tree(root: Path) -> dict[str, bytes | None]:
    """Relative path -> contents (None for a directory)."""
    return {
        str(path.relative_to(root)): None if path.is_dir() else path.read_bytes() for path in sorted(root.rglob("*"))
    }


class SandboxConformance:
    """The behaviour every `SandboxProvider` must show. Subclass it with a `provider` fixture; see the module
    docstring (and docs/sandboxes.md, "Writing a sandbox plugin")."""

    pytestmark = pytest.mark.anyio

    # --- fixtures a plugin provides --------------------------------------------------------------------------------

    @pytest.fixture
    def provider(self) -> SandboxProvider:
        raise NotImplementedError("a SandboxConformance subclass must define the `provider` fixture")

    @pytest.fixture
    def image(self) -> str | None:
        return None

    @pytest.fixture
    def anyio_backend(self) -> str:
        return "asyncio"

    # --- fixtures of the suite -------------------------------------------------------------------------------------

    @pytest.fixture
    async def make(self, provider: SandboxProvider, image: str | None) -> AsyncIterator[Make]:
        """`await make(**spec_fields)`: a sandbox of the provider, closed (and reaped) after the test."""
        run = uuid.uuid4().hex
        made: list[Sandbox] = []

        async def create(**fields: Any) -> Sandbox:
            labels = {LABEL: run, **fields.pop("labels", {})}
            spec = SandboxSpec(**{"image": image, "labels": labels, **fields})
            sandbox = await provider.create(spec)
            made.append(sandbox)
            return sandbox

        yield create
        with anyio.CancelScope(shield=True):
            for sandbox in made:
                await sandbox.close()
            await provider.reap(lambda labels: labels.get(LABEL) != run)

    @pytest.fixture
    async def sandbox(self, make: Make) -> Sandbox:
        return await make()

    # --- the provider ----------------------------------------------------------------------------------------------

    async def test_provider_and_sandbox_follow_the_protocols(self, provider: SandboxProvider, make: Make) -> None:
        assert isinstance(provider, SandboxProvider)
        assert isinstance(provider.name, str)
        assert provider.name
        assert provider.capabilities <= CAPABILITIES, f"unknown capabilities {provider.capabilities - CAPABILITIES}"
        spec_env = {"WEGENT_CONFORMANCE": "1"}
        sandbox = await make(env=spec_env)
        other = await make()
        assert isinstance(sandbox, Sandbox)
        assert sandbox.id
        assert sandbox.id != other.id
        assert sandbox.spec.env == spec_env

    # --- exec ------------------------------------------------------------------------------------------------------

    async def test_exec_a_list_runs_it_as_is(self, sandbox: Sandbox) -> None:
        result = await sandbox.exec(["echo", "a  b", "$HOME"])  # no shell: no word splitting, no expansion
        assert (result.exit_code, result.stdout, result.stderr, result.timed_out) == (0, "a  b $HOME\n", "", False)
        assert result.ok

    async def test_exec_a_string_runs_it_with_a_shell(self, sandbox: Sandbox) -> None:
        result = await sandbox.exec("x=$((40 + 2)); echo $x | tr 4 y")
        assert result.stdout == "y2\n"

    @pytest.mark.parametrize("code", [0, 1, 3, 42])
    async def test_exit_code(self, sandbox: Sandbox, code: int) -> None:
        result = await sandbox.exec(f"exit {code}")
        assert result.exit_code == code
        assert result.ok is (code == 0)

    async def test_a_missing_command_fails_without_raising(self, sandbox: Sandbox) -> None:
        result = await sandbox.exec(["wegent-no-such-command"])
        assert result.exit_code != 0
        assert not result.ok

    async def test_stdout_and_stderr_are_separate(self, sandbox: Sandbox) -> None:
        pieces: list[tuple[str, str]] = []
        result = await sandbox.exec("echo out; echo err >&2; echo out2", on_output=lambda k, t: pieces.append((k, t)))
        assert result.stdout == "out\nout2\n"
        assert result.stderr == "err\n"
        assert "".join(t for k, t in pieces if k == "stdout") == result.stdout
        assert "".join(t for k, t in pieces if k == "stderr") == result.stderr

    async def test_output_is_streamed_while_the_command_runs(self, sandbox: Sandbox) -> None:
        seen: list[tuple[float, str, str]] = []
        result = await sandbox.exec(
            "echo first; echo warn >&2; sleep 2; echo second",
            on_output=lambda kind, text: seen.append((time.monotonic(), kind, text)),
        )
        ended = time.monotonic()
        first = next(at for at, kind, text in seen if kind == "stdout" and "first" in text)
        warn = next(at for at, kind, text in seen if kind == "stderr" and "warn" in text)
        assert ended - first > 1.0, "stdout came only when the command ended"
        assert ended - warn > 1.0, "stderr came only when the command ended"
        assert result.stdout == "first\nsecond\n"

    async def test_large_output_is_whole(self, sandbox: Sandbox) -> None:
        result = await sandbox.exec("head -c 1000000 /dev/zero | tr '\\0' a; head -c 300000 /dev/zero | tr '\\0' b >&2")
        assert result.stdout == "a" * 1_000_000
        assert result.stderr == "b" * 300_000

    async def test_unicode_output(self, sandbox: Sandbox) -> None:
        text = "héllo ✓ 日本 🚀"
        result = await sandbox.exec(["echo", text])
        assert result.stdout == text + "\n"

    async def test_stdin(self, sandbox: Sandbox) -> None:
        result = await sandbox.exec("cat; echo; echo done", stdin="line 1\nline 2")
        assert result.stdout == "line 1\nline 2\ndone\n"

    async def test_env_of_the_spec_and_of_the_call(self, make: Make) -> None:
        sandbox = await make(env={"SPEC_ONLY": "s", "BOTH": "from-spec"})
        result = await sandbox.exec('echo "$SPEC_ONLY $BOTH $CALL_ONLY"', env={"BOTH": "from-call", "CALL_ONLY": "c"})
        assert result.stdout == "s from-call c\n"
        assert (await sandbox.exec('echo "$BOTH${CALL_ONLY:-unset}"')).stdout == "from-specunset\n"

    async def test_the_engine_environment_does_not_leak(self, make: Make, monkeypatch: pytest.MonkeyPatch) -> None:
        # Model keys live in the engine's environment; no command may see them.
        secret = f"sk-conformance-{uuid.uuid4().hex}"
        monkeypatch.setenv("ANTHROPIC_API_KEY", secret)
        monkeypatch.setenv("WEGENT_CONFORMANCE_SECRET", secret)
        sandbox = await make()
        result = await sandbox.exec("env")
        assert result.exit_code == 0
        assert secret not in result.stdout
        assert "WEGENT_CONFORMANCE_SECRET" not in result.stdout

    async def test_cwd_is_the_workspace_by_default(self, sandbox: Sandbox) -> None:
        await sandbox.write_file("marker.txt", b"here")
        assert (await sandbox.exec("cat marker.txt")).stdout == "here"
        assert (await sandbox.exec(["cat", "marker.txt"], cwd="/workspace")).stdout == "here"

    async def test_relative_cwd(self, sandbox: Sandbox) -> None:
        await sandbox.write_file("sub/dir/inner.txt", b"inner")
        result = await sandbox.exec("cat inner.txt; pwd", cwd="sub/dir")
        assert result.stdout.startswith("inner")
        assert result.stdout.rstrip().endswith("/sub/dir")

    async def test_timeout_kills_the_command_and_its_children(self, sandbox: Sandbox) -> None:
        began = time.monotonic()
        with anyio.fail_after(30):  # a provider that cannot kill fails here instead of hanging the suite
            result = await sandbox.exec(PARENT_AND_CHILD, timeout=1)
        took = time.monotonic() - began
        assert result.timed_out
        assert not result.ok
        assert took < 1 + KILL_WITHIN + 1, f"a 1 s timeout took {took:.1f} s"
        child = result.stdout.strip()  # output before the timeout is kept
        assert child.isdigit(), f"expected the child's pid in stdout, got {result.stdout!r}"
        assert await _child_gone(sandbox, child), "the background child survived the timeout"

    async def test_cancelling_the_caller_kills_the_command(self, sandbox: Sandbox) -> None:
        started = anyio.Event()
        output: list[str] = []
        ended: list[float] = []

        def on_output(kind: str, text: str) -> None:
            output.append(text)
            started.set()

        async def run(scope: anyio.CancelScope) -> None:
            with scope:
                await sandbox.exec(PARENT_AND_CHILD, on_output=on_output)
            ended.append(time.monotonic())

        scope = anyio.CancelScope()
        with anyio.fail_after(30):  # a provider that cannot kill fails here instead of hanging the suite
            async with anyio.create_task_group() as group:
                group.start_soon(run, scope)
                await started.wait()
                cancelled = time.monotonic()
                scope.cancel()
        assert ended, "exec did not end"
        assert ended[0] - cancelled < KILL_WITHIN, "exec did not return within 2 s of the cancel"
        assert scope.cancelled_caught, "exec swallowed the cancellation"
        child = "".join(output).strip()
        assert await _child_gone(sandbox, child), "the command's child survived the cancel"

    async def test_concurrent_execs(self, sandbox: Sandbox) -> None:
        results: dict[int, str] = {}

        async def one(n: int) -> None:
            results[n] = (await sandbox.exec(f"sleep 1; echo {n}; echo e{n} >&2")).stdout

        began = time.monotonic()
        with anyio.fail_after(30):
            async with anyio.create_task_group() as group:
                for n in range(4):
                    group.start_soon(one, n)
        assert results == {n: f"{n}\n" for n in range(4)}
        assert time.monotonic() - began < 3.5, "execs in one sandbox ran one after another"

    # --- files -----------------------------------------------------------------------------------------------------

    async def test_binary_file_round_trip(self, sandbox: Sandbox) -> None:
        data = bytes(range(256)) * 64 + b"\r\n\x00end"
        await sandbox.write_file("data.bin", data)
        assert await sandbox.read_file("data.bin") == data
        assert (await sandbox.exec("wc -c < data.bin")).stdout.strip() == str(len(data))
        await sandbox.write_file("data.bin", b"short")  # overwritten, not appended
        assert await sandbox.read_file("data.bin") == b"short"
        await sandbox.write_file("empty", b"")
        assert await sandbox.read_file("empty") == b""

    async def test_commands_and_file_operations_see_the_same_files(self, sandbox: Sandbox) -> None:
        assert (await sandbox.exec("mkdir -p made && printf 'by a command' > made/f.txt")).ok
        assert await sandbox.read_file("made/f.txt") == b"by a command"
        assert await sandbox.read_file("/workspace/made/f.txt") == b"by a command"
        await sandbox.write_file("/workspace/abs.txt", b"absolute")
        assert await sandbox.read_file("abs.txt") == b"absolute"

    async def test_parent_directories_are_created(self, sandbox: Sandbox) -> None:
        await sandbox.write_file("a/b/c/d.txt", b"deep")
        assert (await sandbox.exec("cat a/b/c/d.txt")).stdout == "deep"

    async def test_file_mode(self, sandbox: Sandbox) -> None:
        await sandbox.write_file("bin/run.sh", b"#!/bin/sh\necho ran\n", mode=0o755)
        assert (await sandbox.exec(["./bin/run.sh"])).stdout == "ran\n"

    async def test_reading_a_missing_file_is_a_sandbox_error(self, sandbox: Sandbox) -> None:
        with pytest.raises(SandboxError):
            await sandbox.read_file("no/such/file")

    @pytest.mark.parametrize("path", ["../x", "a/../../x", "/etc/passwd", "/workspace/../etc/passwd", "/tmp/x"])
    async def test_paths_outside_the_workspace_are_refused(self, sandbox: Sandbox, path: str, tmp_path: Path) -> None:
        with pytest.raises(SandboxError):
            await sandbox.read_file(path)
        with pytest.raises(SandboxError):
            await sandbox.write_file(path, b"escaped")
        with pytest.raises(SandboxError):
            await sandbox.copy_out(path, tmp_path / "out")
        (tmp_path / "in").mkdir()
        (tmp_path / "in" / "f").write_bytes(b"x")
        with pytest.raises(SandboxError):
            await sandbox.copy_in(tmp_path / "in", path)

    async def test_outside_workspace_when_asked(self, sandbox: Sandbox) -> None:
        assert b"root:" in await sandbox.read_file("/etc/passwd", outside_workspace=True)

    async def test_copy_a_tree_in_and_out(self, sandbox: Sandbox, tmp_path: Path) -> None:
        source = tmp_path / "source"
        (source / "pkg" / "deeper").mkdir(parents=True)
        (source / "empty-dir").mkdir()
        (source / "top.txt").write_text("top")
        (source / "pkg" / "blob.bin").write_bytes(bytes(range(256)) * 10)
        (source / "pkg" / "deeper" / "empty").write_bytes(b"")
        await sandbox.copy_in(source, "dest")
        assert (await sandbox.exec("cat dest/top.txt")).stdout == "top"
        assert await sandbox.read_file("dest/pkg/blob.bin") == bytes(range(256)) * 10
        await sandbox.copy_in(source)  # default target: the workspace itself
        assert await sandbox.read_file("top.txt") == b"top"
        await sandbox.exec("echo made-inside > dest/pkg/new.txt")
        await sandbox.copy_out("dest", tmp_path / "out")
        expected = {**_tree(source), "pkg/new.txt": b"made-inside\n"}
        assert _tree(tmp_path / "out") == expected

    async def test_missing_copy_source_is_a_sandbox_error(self, sandbox: Sandbox, tmp_path: Path) -> None:
        with pytest.raises(SandboxError):
            await sandbox.copy_out("no-such-dir", tmp_path / "out")
        with pytest.raises(SandboxError):
            await sandbox.copy_in(tmp_path / "no-such-dir")

    # One sandbox for all examples (a fresh one each would cost a container start); no deadline: engines are slow
    # at times, and the test is about names and contents, not speed.
    @settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(name=FILE_NAMES, data=st.binary(max_size=70_000))
    async def test_any_file_name_and_contents_round_trip(
        self, sandbox: Sandbox, tmp_path: Path, name: str, data: bytes
    ) -> None:
        path = f"names/{name}"
        await sandbox.write_file(path, data)
        assert await sandbox.read_file(path) == data
        out = tmp_path / uuid.uuid4().hex
        await sandbox.copy_out("names", out)
        assert (out / name).read_bytes() == data  # the name survives the trip to the host unchanged
        await sandbox.exec(["rm", "-f", "--", path])

    # --- life cycle ------------------------------------------------------------------------------------------------

    async def test_close_is_idempotent_and_destroys(self, provider: SandboxProvider, make: Make) -> None:
        run = uuid.uuid4().hex
        sandbox = await make(labels={"wegent.conformance.close": run})
        await sandbox.write_file("f", b"x")
        await sandbox.close()
        await sandbox.close()
        with pytest.raises(SandboxError):
            await sandbox.exec("true")
        with pytest.raises(SandboxError):
            await sandbox.read_file("f")
        assert await provider.reap(lambda labels: labels.get("wegent.conformance.close") != run) == 0, (
            "a closed sandbox was left behind for the reaper"
        )

    async def test_a_given_workspace_is_used_and_survives_close(self, make: Make, tmp_path: Path) -> None:
        workspace = tmp_path / "ws"
        workspace.mkdir()
        (workspace / "seed.txt").write_text("from the host")
        sandbox = await make(workspace=str(workspace))
        assert (await sandbox.exec("cat seed.txt")).stdout == "from the host"
        await sandbox.write_file("made.txt", b"from the sandbox")
        await sandbox.exec("mkdir -p d && echo by-command > d/c.txt")
        assert (workspace / "made.txt").read_bytes() == b"from the sandbox"
        await sandbox.close()
        assert (workspace / "seed.txt").read_text() == "from the host"
        assert (workspace / "made.txt").read_bytes() == b"from the sandbox"
        assert (workspace / "d" / "c.txt").read_text() == "by-command\n"

    async def test_preserved_sandbox_outlives_close_and_is_reaped(self, provider: SandboxProvider, make: Make) -> None:
        run = uuid.uuid4().hex
        sandbox = await make(preserve=True, labels={"wegent.conformance.preserve": run})
        await sandbox.write_file("kept.txt", b"kept")
        await sandbox.close()
        await sandbox.close()
        _capability(provider, PRESERVE)
        keep = lambda labels: labels.get("wegent.conformance.preserve") != run  # noqa: E731
        assert await provider.reap(lambda labels: True) == 0  # keeping everything destroys nothing
        assert await provider.reap(keep) == 1, "the preserved sandbox was not found again by its labels"
        assert await provider.reap(keep) == 0

    # --- capabilities ----------------------------------------------------------------------------------------------

    async def test_no_network(self, provider: SandboxProvider, make: Make) -> None:
        _capability(provider, NETWORK_POLICY)
        sandbox = await make(network="none")
        result = await sandbox.exec("cat /proc/net/dev")
        interfaces = {line.split(":")[0].strip() for line in result.stdout.splitlines()[2:] if ":" in line}
        assert interfaces <= {"lo"}, f"network 'none' but interfaces {sorted(interfaces)}"

    async def test_limits(self, provider: SandboxProvider, make: Make) -> None:
        _capability(provider, LIMITS)
        sandbox = await make(memory_mb=96, pids=64)
        memory = await sandbox.exec(
            "cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes"
        )
        pids = await sandbox.exec("cat /sys/fs/cgroup/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids/pids.max")
        assert memory.stdout.strip() == str(96 * 1024 * 1024)
        assert pids.stdout.strip() == "64"

    async def test_read_only_root(self, provider: SandboxProvider, sandbox: Sandbox) -> None:
        _capability(provider, READ_ONLY_ROOT)
        assert not (await sandbox.exec("touch /etc/wegent-probe")).ok
        assert not (await sandbox.exec("touch /wegent-probe")).ok
        assert (await sandbox.exec("touch /workspace/probe && touch /tmp/probe")).ok

    async def test_isolation(self, provider: SandboxProvider, make: Make, tmp_path: Path) -> None:
        _capability(provider, ISOLATION)
        marker = f"wegent-conformance-{uuid.uuid4().hex}"
        (tmp_path / "host-only.txt").write_text(marker)
        host = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", marker])
        try:
            sandbox = await make()
            files = await sandbox.exec(["cat", str(tmp_path / "host-only.txt")])
            assert marker not in files.stdout, "a host file is visible in the sandbox"
            processes = await sandbox.exec("cat /proc/[0-9]*/cmdline 2>/dev/null | tr '\\0' ' '")
            assert marker not in processes.stdout, "a host process is visible in the sandbox"
        finally:
            host.kill()
            host.wait()

    async def test_mounts(self, provider: SandboxProvider, make: Make, tmp_path: Path) -> None:
        _capability(provider, MOUNTS)
        shared = tmp_path / "shared"
        shared.mkdir()
        shared.chmod(0o755)  # readable by the sandbox's user, whoever that is (pytest's tmp_path is private)
        (shared / "shared.txt").write_text("shared")
        sandbox = await make(mounts=(Mount(source=str(shared), target="/mnt/wegent-conformance"),))
        result = await sandbox.exec("cat /mnt/wegent-conformance/shared.txt")
        assert result.stdout == "shared", result
        assert not (await sandbox.exec("touch /mnt/wegent-conformance/new")).ok, "a read-only mount was writable"
        assert not (shared / "new").exists()


__all__ = ["LABEL", "SandboxConformance"]
