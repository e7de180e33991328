"""The docker and podman sandboxes on the real engines: hardening seen from outside and inside, exec, kill, cancel,
a container killed from outside, preserve, reap, and the `wegent image build` and `wegent gc` commands."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from pathlib import Path

import anyio
import pytest

from wegent_core import SandboxGone, SandboxSpec
from wegent_runtimes.sandboxes._containers import (
    LABEL_NAMESPACE,
    LABEL_OWNER,
    LABEL_TASK,
    ContainerProvider,
    owner_alive,
    owner_label,
)
from wegent_server._cli import main

from .conftest import SESSION, SESSION_LABEL, Make, engine_api, new_provider

pytestmark = pytest.mark.anyio


def _state(engine: str, container: str) -> str:
    api = engine_api(engine)
    try:
        return api.state(container).status
    finally:
        api.close()


def _dead_owner() -> str:
    """The owner label of a process that has exited (taken while it ran, so it has its real start time)."""
    process = subprocess.Popen(["sleep", "30"])
    label = owner_label(process.pid)
    process.kill()
    process.wait()
    return label


# --- hardening ----------------------------------------------------------------------------------------------------


async def test_hardening_seen_from_outside(engine: str, provider: ContainerProvider, make: Make) -> None:
    sandbox = await make(memory_mb=96, cpus=0.5, pids=64, labels={"task": "42", "namespace": "team-a"})
    info = await provider.inspect(sandbox)
    host = info["HostConfig"]
    assert host["NetworkMode"] == "none"
    assert host["ReadonlyRootfs"] is True
    assert "no-new-privileges" in host["SecurityOpt"]
    # Docker reports the request (ALL), Podman the capabilities it dropped: every default one.
    assert host["CapDrop"] == ["ALL"] or {"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_SETUID", "CAP_KILL"} <= set(
        host["CapDrop"]
    )
    assert not host.get("CapAdd")
    assert host["Memory"] == 96 * 1024 * 1024
    assert host["NanoCpus"] == 500_000_000 or host["CpuQuota"] * 2 == host["CpuPeriod"]
    assert host["PidsLimit"] == 64
    mounts = {mount["Destination"]: mount for mount in info["Mounts"]}
    assert set(mounts) == {"/workspace"}, f"mounts besides the workspace: {sorted(mounts)}"
    assert mounts["/workspace"]["RW"] is True
    binds = " ".join(str(bind) for bind in (host.get("Binds") or []))
    assert "docker.sock" not in binds
    assert "podman.sock" not in binds
    assert info["Config"]["User"] in ("1000:1000", "1000")
    labels = info["Config"]["Labels"]
    assert labels[LABEL_TASK] == "42"
    assert labels[LABEL_NAMESPACE] == "team-a"
    assert labels[LABEL_OWNER] == owner_label()
    assert owner_alive(labels[LABEL_OWNER]) is True
    assert labels[SESSION_LABEL] == SESSION


async def test_hardening_seen_from_inside(make: Make) -> None:
    sandbox = await make()
    status = (await sandbox.exec("cat /proc/self/status")).stdout
    fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
    assert fields["NoNewPrivs"].strip() == "1"
    assert int(fields["CapBnd"], 16) == 0
    assert int(fields["CapEff"], 16) == 0
    assert (await sandbox.exec("id -u")).stdout.strip() == "1000"
    network = await sandbox.exec("nc -w 2 1.1.1.1 53 </dev/null && echo reached", timeout=10)
    assert not network.ok
    assert "reached" not in network.stdout
    assert "network is unreachable" in network.stderr.lower() or network.exit_code != 0
    outside = await sandbox.exec("echo x > /etc/escape || echo x > /escape || echo x > /usr/escape")
    assert not outside.ok
    assert "Read-only file system" in outside.stderr
    assert (await sandbox.exec("echo ok > /workspace/in && echo ok > /tmp/in")).ok
    assert not (await sandbox.exec("ls -la /var/run/docker.sock /run/podman/podman.sock")).ok


# --- exec -------------------------------------------------------------------------------------------------------------


async def test_exec_streams_demultiplexed_output_and_exit_code(make: Make) -> None:
    sandbox = await make()
    seen: list[tuple[str, str, float]] = []
    start = time.monotonic()
    result = await sandbox.exec(
        "echo first; echo oops >&2; sleep 1; echo second; exit 7",
        on_output=lambda kind, text: seen.append((kind, text, time.monotonic() - start)),
    )
    assert result.exit_code == 7
    assert not result.ok
    assert result.stdout == "first\nsecond\n"
    assert result.stderr == "oops\n"
    first = next(when for kind, text, when in seen if "first" in text)
    assert first < result.seconds - 0.8, "the first line came only when the command ended"
    assert ("stderr", "oops\n") in [(kind, text) for kind, text, _ in seen]


async def test_timeout_kills_the_process_group(make: Make) -> None:
    sandbox = await make()
    start = time.monotonic()
    result = await sandbox.exec("sleep 300 & echo $!; sleep 301", timeout=1)
    assert result.timed_out
    assert time.monotonic() - start < 1 + 2
    child = result.stdout.strip()
    assert (await sandbox.exec(f"! kill -0 {child} 2>/dev/null || grep -q '^State:.Z' /proc/{child}/status")).ok
    assert "sleep 30" not in (await sandbox.exec("ps")).stdout.replace("sleep infinity", "")


async def test_cancel_kills_the_running_command_within_2s(make: Make) -> None:
    sandbox = await make()
    started = anyio.Event()
    pids: list[str] = []

    def on_output(_kind: str, text: str) -> None:
        pids.append(text.strip())
        started.set()

    with anyio.CancelScope() as scope:
        async with anyio.create_task_group() as group:
            group.start_soon(lambda: sandbox.exec("sleep 300 & echo $!; wait", on_output=on_output))
            await started.wait()
            cancelled_at = time.monotonic()
            scope.cancel()
    took = time.monotonic() - cancelled_at
    assert took < 2, f"cancel took {took:.2f}s"
    processes = (await sandbox.exec("ps -o pid,stat,args")).stdout
    alive = [line for line in processes.splitlines() if line.split()[0] == pids[0] and " Z " not in f" {line} "]
    assert not alive, f"the command's child survived the cancel: {alive}"


async def test_killed_from_outside_raises_sandbox_gone_within_5s(engine: str, make: Make) -> None:
    sandbox = await make()
    async with anyio.create_task_group() as group:

        async def kill() -> None:
            await anyio.sleep(0.5)
            subprocess.run([engine, "kill", sandbox.id], check=True, capture_output=True)

        group.start_soon(kill)
        start = time.monotonic()
        with pytest.raises(SandboxGone) as caught:
            await sandbox.exec("sleep 60")
    assert time.monotonic() - start < 0.5 + 5
    assert sandbox.id[:12] in str(caught.value)
    assert "stopped" in str(caught.value)
    with pytest.raises(SandboxGone):
        await sandbox.exec("true")


WRAPPER = "cut -d' ' -f4,1,6 /proc/$PPID/stat | awk '{print $2, $1, $3}'"  # the wrapper's parent, pid and session


async def test_commands_go_through_one_runner(make: Make) -> None:
    """A free sandbox runs a command through its runner (one exec for all, see _runner.py): the same runner pid is
    the parent of every command, each command is a session of its own, and output survives the protocol."""
    sandbox = await make()
    first, second = [(await sandbox.exec(WRAPPER)).stdout.split() for _ in range(2)]
    assert first[0] == second[0] != "0", "the two commands had different runners"
    assert first[1] == first[2], "the command is not the leader of its own session (its group is what a kill reaches)"
    tricky = ["a\nb", "it's", "$HOME", "\x1e" + "f" * 32 + " 0\n", "\\n", ""]
    assert (await sandbox.exec(["printf", "%s|", *tricky])).stdout == "|".join(tricky) + "|"
    env = {"MULTI": "line 1\nline 2", "QUOTE": "a'b"}
    assert (await sandbox.exec('printf "%s|%s" "$MULTI" "$QUOTE"', env=env)).stdout == "line 1\nline 2|a'b"
    assert (await sandbox.exec("printf 'no newline at the end\036'")).stdout == "no newline at the end\x1e"
    missing = await sandbox.exec("pwd", cwd="no/such/dir")
    assert missing.exit_code != 0


async def test_a_runner_killed_from_inside_is_replaced(make: Make) -> None:
    sandbox = await make()
    # the runner (the parent of the command's wrapper) dies under its command
    result = await sandbox.exec("kill -KILL $(cut -d' ' -f4 /proc/$PPID/stat); sleep 5")
    assert result.exit_code == 255
    assert "the command runner died" in result.stderr
    assert result.seconds < 4, "the orphaned command was not killed"
    assert (await sandbox.exec("echo again")).stdout == "again\n"  # a new runner
    assert "sleep 5" not in (await sandbox.exec("ps")).stdout


async def test_a_runner_stays_in_step_after_a_timeout(make: Make) -> None:
    sandbox = await make()
    result = await sandbox.exec("echo partial; sleep 30", timeout=0.5)
    assert result.timed_out
    assert result.stdout == "partial\n"
    assert (await sandbox.exec("echo next; echo err >&2")).stdout == "next\n"
    assert (await sandbox.exec("echo err >&2")).stderr == "err\n"


async def test_without_the_runner_every_command_is_an_exec(engine: str) -> None:
    provider = new_provider(engine, runner=False)
    sandbox = await provider.create(SandboxSpec(labels={SESSION_LABEL: SESSION}))
    try:
        assert (await sandbox.exec(WRAPPER)).stdout.split()[0] == "0"  # exec'd from outside the container's pids
        assert (await sandbox.exec("exit 3")).exit_code == 3
        assert sandbox._runner is None
    finally:
        await sandbox.close()
        await provider.aclose()


# --- life cycle -------------------------------------------------------------------------------------------------------


async def test_close_removes_and_preserve_keeps(engine: str, provider: ContainerProvider, make: Make) -> None:
    plain = await make()
    kept = await make(preserve=True, labels={"wegent.test-preserve": plain.id})
    await kept.write_file("notes.txt", b"keep me")
    await plain.close()
    await kept.close()
    assert _state(engine, plain.id) == "removed"
    assert _state(engine, kept.id) == "running"
    # Found again by its labels, with its files, until the reaper is told it may go.
    api = engine_api(engine)
    try:
        assert [cid for cid, _ in api.containers(f"wegent.test-preserve={plain.id}")] == [kept.id]
    finally:
        api.close()
    assert await provider.reap(lambda labels: labels.get("wegent.test-preserve") != plain.id) == 1
    assert _state(engine, kept.id) == "removed"


async def test_temp_workspace_goes_with_the_sandbox(make: Make) -> None:
    sandbox = await make()
    workspace = sandbox.temp_workspace
    assert workspace
    assert Path(workspace).is_dir()
    await sandbox.write_file("f.txt", b"x")
    assert (Path(workspace) / "f.txt").read_bytes() == b"x"
    await sandbox.close()
    assert not Path(workspace).exists()


async def test_provider_reaps_dead_owners_at_start(engine: str, make: Make) -> None:
    dead = await make(labels={"owner": _dead_owner()})
    dead_but_preserved = await make(labels={"owner": _dead_owner()}, preserve=True)
    alive = await make()
    fresh = new_provider(engine)
    try:
        sandbox = await fresh.create(SandboxSpec(labels={SESSION_LABEL: SESSION}))
        await sandbox.close()
    finally:
        await fresh.aclose()
    assert _state(engine, dead.id) == "removed"
    assert _state(engine, dead_but_preserved.id) == "running"
    assert _state(engine, alive.id) == "running"


# --- the command line -------------------------------------------------------------------------------------------------


def test_cli_image_build(engines: tuple[str, ...], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["image", "build", "--engine", "all", "--base", "busybox", "--tag", "wegent-test:busybox"]) == 0
    out = capsys.readouterr().out
    assert "docker\twegent-test:busybox" in out
    assert "podman\twegent-test:busybox" in out
    for engine in engines:
        config = subprocess.run(
            [engine, "image", "inspect", "wegent-test:busybox", "--format", "{{json .Config}}"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert '"User":"1000:1000"' in config
        assert '"WorkingDir":"/workspace"' in config
    # The same inputs a second time: found by the content hash, nothing rebuilt.
    assert main(["image", "build", "--engine", "docker", "--base", "busybox", "-o", "json"]) == 0
    assert '"built": false' in capsys.readouterr().out


async def test_cli_gc(engine: str, make: Make, tmp_path: Path) -> None:
    dead = await make(labels={"owner": _dead_owner()})
    alive = await make()
    store = f"sqlite:///{tmp_path / 'store.db'}"
    command = [sys.executable, "-m", "wegent_server", "gc", "--engine", engine, "--store", store]
    dry = await anyio.run_process([*command, "--dry-run"], check=False)
    assert dry.returncode == 0, dry.stderr.decode()
    assert f"{engine}: would remove" in dry.stdout.decode()
    assert _state(engine, alive.id) == "running"
    done = await anyio.run_process(command, check=False)
    assert done.returncode == 0, done.stderr.decode()
    assert "removed" in done.stdout.decode()
    assert _state(engine, dead.id) == "removed"
    assert _state(engine, alive.id) == "running", "gc removed the sandbox of a live process"


def test_owner_label_tells_a_reused_pid() -> None:
    label = owner_label()
    assert owner_alive(label) is True
    pid, rest = label.split("@", 1)
    host, _, ticks = rest.partition("#")
    assert owner_alive(f"{pid}@{host}#{int(ticks) + 1}") is False  # same pid, another process
    assert owner_alive(f"{pid}@not-this-host-{uuid.uuid4().hex}#1") is None
