"""SQL store benchmark, per backend: put 10,000 resources, get by name, list 10,000, append 10,000 events to one task.

    python benchmarks/bench_store.py [--backends sqlite,postgresql,mariadb] [--count 10000] [--repeat 3]
                                     [--postgresql-url URL] [--mariadb-url URL]

Targets (SQLite): put 10,000 under 3 s, get by name under 0.5 ms median, list 10,000 under 200 ms, append 10,000
events under 1 s. Each figure is measured both one call at a time (what a loop of `put` or `append_event` costs, one
transaction each) and batched (`put_many` / `append_events`, one transaction). Every repeat starts from a new
database (SQLite: a file in a temporary directory; PostgreSQL and MariaDB: a database created for it and dropped
afterwards), and the table shows each figure's best repeat, as timeit does: on a shared machine the slower runs
measure the neighbours. Secrets at rest are on, as by default (the key lives in a temporary data dir), though these
Ghosts hold no secret.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from _machine import describe_machine

from wegent_core._resources import Ghost, Resource
from wegent_core._task_store import TaskRecord
from wegent_storage._engine import parse_url
from wegent_storage._sql_store import SqlStore

ADMIN_URLS = {
    "postgresql": "postgresql://postgres@127.0.0.1:5432/postgres",
    "mariadb": "mariadb://root@127.0.0.1:3306/test",
}
TARGETS = {"put": 3.0, "get": 0.0005, "list": 0.2, "append": 1.0}
GETS = 2000


def ghosts(count: int, run: int) -> list[Resource]:
    return [
        Ghost.model_validate(
            {
                "kind": "Ghost",
                "metadata": {"name": f"ghost-{i}", "namespace": f"team-{i % 10}", "labels": {"tier": str(i % 3)}},
                "spec": {
                    "systemPrompt": f"You are specialist {i} (run {run}). Answer precisely.\n" * 4,
                    "mcpServers": {"time": {"command": "uvx", "args": ["mcp-server-time"]}},
                },
            }
        )
        for i in range(count)
    ]


@contextmanager
def database(backend: str, admin_urls: dict[str, str]) -> Iterator[str]:
    """A fresh, empty database for one backend; dropped afterwards."""
    if backend == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            yield f"sqlite:///{tmp}/bench.db"
        return
    name = f"wegent_bench_{os.getpid()}"
    admin = sa.create_engine(parse_url(admin_urls[backend]), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.exec_driver_sql(f"CREATE DATABASE {name}")
        yield parse_url(admin_urls[backend]).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f"DROP DATABASE IF EXISTS {name}")
        admin.dispose()


def timed(work: Callable[[], Any]) -> float:
    start = time.perf_counter()
    result = work()
    elapsed = time.perf_counter() - start
    del result  # freeing what a call returned is the caller's time, not the call's
    return elapsed


def measure(url: str, count: int) -> dict[str, float]:
    figures: dict[str, float] = {}
    with SqlStore.open(url, upgrade=True) as store:
        batch = ghosts(count, 0)
        figures["put"] = timed(lambda: [store.put(r) for r in batch])
        figures["put_many"] = timed(lambda: store.put_many(ghosts(count, 1)))
        figures["put unchanged"] = timed(lambda: store.put_many(ghosts(count, 1)))
        picks = random.Random(0).choices(batch, k=GETS)
        figures["get"] = statistics.median(timed(lambda r=r: store.get("Ghost", r.name, r.namespace)) for r in picks)
        figures["list"] = statistics.median(timed(store.list) for _ in range(5))
        selected = [timed(lambda: store.list("Ghost", selector="tier=1")) for _ in range(5)]
        figures["list selector"] = statistics.median(selected)
        task = store.create_task(TaskRecord(team="default/bench"))
        data = {"text": "a token or two", "subtask": 1}
        figures["append"] = timed(lambda: [store.append_event(task.id, "text.delta", data) for _ in range(count)])
        figures["append_events"] = timed(lambda: store.append_events(task.id, [("text.delta", data)] * count))
        figures["events"] = timed(lambda: store.events(task.id))
        assert len(store.list()) == count
        assert len(store.events(task.id)) == 2 * count
    return figures


ROWS = [
    ("put", "put {n} resources, one transaction each", "put"),
    ("put_many", "put_many {n} resources, one transaction", "put"),
    ("put unchanged", "put_many {n} unchanged resources", None),
    ("get", "get by name, median", "get"),
    ("list", "list {n}", "list"),
    ("list selector", "list Ghosts with tier=1 (a third)", None),
    ("append", "append {n} events, one transaction each", "append"),
    ("append_events", "append_events {n} events, one transaction", "append"),
    ("events", "read back {n2} events", None),
]


def show(value: float) -> str:
    return f"{value * 1000:.3f} ms" if value < 0.01 else f"{value:.3f} s"


def report(results: dict[str, dict[str, float]], count: int) -> None:
    backends = list(results)
    width = 44
    print(f"{'operation':<{width}}" + "".join(f"{b:>14}" for b in backends) + f"{'target':>12}")
    for key, label, target in ROWS:
        text = label.format(n=f"{count:,}", n2=f"{2 * count:,}")
        cells = "".join(f"{show(results[b][key]):>14}" for b in backends)
        goal = f"< {show(TARGETS[target])}" if target else ""
        print(f"{text:<{width}}{cells}{goal:>12}")
    print(describe_machine())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="sqlite,postgresql,mariadb")
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3, help="runs per backend, each on a new database")
    parser.add_argument("--postgresql-url", default=ADMIN_URLS["postgresql"], help="a server URL to create databases")
    parser.add_argument("--mariadb-url", default=ADMIN_URLS["mariadb"], help="a server URL to create databases")
    args = parser.parse_args(argv)
    admin_urls = {"postgresql": args.postgresql_url, "mariadb": args.mariadb_url}
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as home:
        os.environ["WEGENT_HOME"] = str(Path(home))  # the secret key file, if one is made, goes here
        for backend in args.backends.split(","):
            print(f"measuring {backend} ...", file=sys.stderr)
            runs = []
            for _ in range(args.repeat):
                with database(backend, admin_urls) as url:
                    runs.append(measure(url, args.count))
            results[backend] = {key: min(run[key] for run in runs) for key in runs[0]}
    report(results, args.count)
    return 0


if __name__ == "__main__":
    sys.exit(main())
