"""Many processes on one SQLite file, and processes killed mid-write: no "database is locked", no lost update, no
half-written resource."""

from __future__ import annotations

import inspect
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from wegent_core._errors import ConflictError
from wegent_core._resources import Ghost
from wegent_storage._sql_store import SqlStore

pytestmark = pytest.mark.usefixtures("data_home")  # the children share the parent's secret key file

PROCESSES, EACH, INCREMENTS = 8, 1000, 25


def ghost(name: str, prompt: str, **labels: str) -> Ghost:
    metadata = {"name": name, "labels": labels}
    return Ghost.model_validate({"kind": "Ghost", "metadata": metadata, "spec": {"systemPrompt": prompt}})


def big(i: int) -> str:
    return f"resource {i}: " + "the quick brown fox jumps over the lazy dog. " * (40 + i % 60)


# The start of a child process's code: these imports and the two helpers above.
PRELUDE = f"""
import sys, time
from pathlib import Path
from wegent_core._errors import ConflictError
from wegent_core._resources import Ghost
from wegent_storage._sql_store import SqlStore

{inspect.getsource(ghost)}
{inspect.getsource(big)}
"""

WRITER = (
    PRELUDE
    + """
url, worker, gate = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
with SqlStore.open(url) as store:
    (gate / f"ready-{worker}").touch()
    while not (gate / "go").exists():  # all start writing together, after their imports
        time.sleep(0.01)
    for i in range(EACH):
        store.put(ghost(f"w{worker}-{i}", f"worker {worker} item {i}", worker=str(worker)))
    for _ in range(INCREMENTS):  # read-modify-write of one shared resource, retried on conflict
        while True:
            current = store.get("Ghost", "shared")
            current.metadata.labels["count"] = str(int(current.metadata.labels["count"]) + 1)
            try:
                store.put(current)
                break
            except ConflictError:
                continue
""".replace("EACH", str(EACH)).replace("INCREMENTS", str(INCREMENTS))
)


def python(code: str, *args: object, **popen: object) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", code, *map(str, args)], text=True, **popen)  # type: ignore[call-overload]


def test_eight_processes_writing_one_file(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    with SqlStore.open(url, upgrade=True) as store:
        store.put(ghost("shared", "counter", count="0"))
    gate = tmp_path / "gate"
    gate.mkdir()
    children = [python(WRITER, url, w, gate, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for w in range(PROCESSES)]
    deadline = time.monotonic() + 120
    while len(list(gate.glob("ready-*"))) < PROCESSES and time.monotonic() < deadline:
        assert all(child.poll() is None for child in children), "a writer died before starting"
        time.sleep(0.02)
    (gate / "go").touch()
    results = [child.communicate(timeout=120) for child in children]
    for child, (_, err) in zip(children, results, strict=True):
        assert "locked" not in err
        assert child.returncode == 0, err

    with SqlStore.open(url) as store:
        resources = store.list("Ghost")
        versions = [int(r.metadata.resource_version) for r in resources]
        assert len(resources) == PROCESSES * EACH + 1  # no lost create
        assert len(set(versions)) == len(versions)  # every write got its own version
        shared = store.get("Ghost", "shared")
        assert shared.metadata.labels["count"] == str(PROCESSES * INCREMENTS)  # no lost update
        assert max(versions) == 1 + PROCESSES * EACH + PROCESSES * INCREMENTS  # no version skipped or reused
        by_worker: dict[str, list[Ghost]] = {}
        for resource in resources:
            by_worker.setdefault(resource.metadata.labels.get("worker", "-"), []).append(resource)
        for worker in range(PROCESSES):
            mine = sorted(by_worker[str(worker)], key=lambda r: int(r.metadata.resource_version))
            # each process saw its own writes in order
            assert [r.spec.system_prompt for r in mine] == [f"worker {worker} item {i}" for i in range(EACH)]


STALE = (
    PRELUDE
    + """
with SqlStore.open(sys.argv[1]) as store:
    mine = store.get("Ghost", "g")
    print("read", mine.metadata.resource_version, flush=True)
    sys.stdin.readline()  # the parent updates the resource meanwhile
    mine.spec.system_prompt = "from the child"
    try:
        store.put(mine)
    except ConflictError as error:
        print(error, flush=True)
        sys.exit(3)
"""
)


def test_a_stale_update_from_another_process_is_rejected(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    with SqlStore.open(url, upgrade=True) as store:
        store.put(ghost("g", "first"))
        child = python(STALE, url, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert child.stdout.readline().split() == ["read", "1"]
        store.put(ghost("g", "from the parent"))
        out, err = child.communicate("go\n", timeout=60)
        assert child.returncode == 3, err
        assert out.strip() == "Ghost default/g was changed since it was read (resource version 1, now 2)"
        assert store.get("Ghost", "g").spec.system_prompt == "from the parent"
        stale = store.get("Ghost", "g")
        stale.metadata.resource_version = "1"
        with pytest.raises(ConflictError, match="resource version 1, now 2"):
            store.put(stale)


# --- crashes ------------------------------------------------------------------------------------------------------

LOOP = (
    PRELUDE
    + """
with SqlStore.open(sys.argv[1], upgrade=True) as store:
    i = 0
    while True:
        store.put(ghost(f"c{i}", big(i), n=str(i)))
        i += 1
        if i % 25 == 0:
            print(i, flush=True)
"""
)

BATCH = (
    PRELUDE
    + """
with SqlStore.open(sys.argv[1], upgrade=True) as store:
    store.put(ghost("before", "committed before the batch"))
    print("batch", flush=True)
    store.put_many([ghost(f"b{i}", big(i)) for i in range(20000)])
    print("done", flush=True)
"""
)


def kill_after(child: subprocess.Popen[str], until: str) -> None:
    """SIGKILL the child once it prints a line `until` (or a number at least `until`)."""
    for line in child.stdout:
        line = line.strip()
        if line == until or (line.isdigit() and until.isdigit() and int(line) >= int(until)):
            break
    os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL


def check_file(path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{path}")
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
    engine.dispose()


def test_a_process_killed_while_putting_leaves_whole_resources(tmp_path: Path) -> None:
    path = tmp_path / "crash.db"
    child = python(LOOP, f"sqlite:///{path}", stdout=subprocess.PIPE)
    kill_after(child, "300")
    check_file(path)
    with SqlStore.open(f"sqlite:///{path}") as store:
        found = store.list("Ghost")  # every row loads and validates
        count = len(found)
        assert count >= 300
        assert sorted(r.name for r in found) == sorted(f"c{i}" for i in range(count))  # a prefix, no holes
        for resource in found:
            i = int(resource.metadata.labels["n"])
            assert resource.spec.system_prompt == big(i)
            assert resource.metadata.resource_version == str(i + 1)
        store.put(ghost("after", "the store works on"))
    check_file(path)


def test_a_process_killed_in_a_batch_leaves_none_of_it(tmp_path: Path) -> None:
    path = tmp_path / "batch.db"
    child = python(BATCH, f"sqlite:///{path}", stdout=subprocess.PIPE)
    for line in child.stdout:
        if line.strip() == "batch":
            break
    time.sleep(0.5)  # well inside the batch: 20,000 puts take seconds
    assert child.poll() is None
    os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=30)
    check_file(path)
    with SqlStore.open(f"sqlite:///{path}") as store:
        assert [r.name for r in store.list()] == ["before"]
        assert store.put(ghost("after", "x")).metadata.resource_version == "2"
