"""Task engine benchmark: per-step overhead, solo task latency and throughput, and 1,000 slow tasks at once.

    python benchmarks/bench_engine.py [--store file,sqlite://,memory://] [--tasks 1000] [--steps 50] [--repeat 3]
                                      [--budget 20] [--timeout 300] [--profile]

Every task runs a one-member solo team (a Chat bot) whose Model is a `ScriptedModel`, so a model call costs next to
nothing and the figures are the engine's own: resolving the team, writing every step to the store, the agent loop,
and waiting for the result through the public API (`AsyncWegent.run`, `AsyncTask.result`).

* step: one task whose member makes `--steps` model calls (each reply but the last calls a trivial async tool, the
  last one answers); wall time divided by the steps (target: under 1 ms), median of `--repeat` tasks (at least 5).
  The marginal figure, (T(steps) - T(1)) / (steps - 1), leaves out what a task costs once.
* latency: one single-step task, from `run` to its result, median of 20.
* throughput: `--tasks` single-step tasks, one after another (start, wait, next) and concurrently (start them all,
  then wait for them all), tasks per second (target: at least 300/s on SQLite).
* slow: `--tasks` concurrent tasks whose model call takes 1 s each: wall time (target: under 3 s) and the peak RSS
  of a fresh process that runs only this (target: under 300 MB).

`--store` lists the stores to compare, one column each: `file` is a SQLite file in a new temporary directory (the
default), else any store URL (`sqlite://` is SQLite in memory, `memory://` the memory store). Every run starts on a
new store. Each throughput figure is the best of `--repeat` runs, as timeit does (on a shared machine the slower runs
measure the neighbours), but the repeats of a figure stop once they have taken `--budget` seconds (one run always
happens), so a slow engine keeps the script short. `--profile` then runs the concurrent throughput once more under
cProfile (event loop and worker threads, CPU time) and prints the top 25 functions by own time.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import math
import os
import pstats
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import anyio
from _machine import describe_machine

from wegent_core import AsyncTask, AsyncWegent, tool
from wegent_core.testing import ScriptedModel
from wegent_storage import SqlStore

T = TypeVar("T")
TARGETS = {"step": 0.001, "throughput": 300.0, "slow wall": 3.0, "slow rss": 300.0}
TEAM = "bench"
LATENCY_RUNS = 20
SLOW_DELAY = 1.0


def team_yaml(max_model_calls: int) -> str:
    """A solo Team of one Chat bot on the Model `m` (its client is given to the engine)."""
    docs: list[dict[str, Any]] = [
        {"kind": "Model", "metadata": {"name": "m"}, "spec": {"protocol": "scripted", "modelConfig": {"script": []}}},
        {"kind": "Shell", "metadata": {"name": "chat"}, "spec": {"shellType": "Chat"}},
        {"kind": "Ghost", "metadata": {"name": "worker"}, "spec": {"systemPrompt": "You are a worker."}},
        {
            "kind": "Bot",
            "metadata": {"name": "worker"},
            "spec": {"ghostRef": {"name": "worker"}, "shellRef": {"name": "chat"}, "modelRef": {"name": "m"}},
        },
        {
            "kind": "Team",
            "metadata": {"name": TEAM},
            "spec": {
                "collaborationModel": "solo",
                "members": [{"botRef": {"name": "worker"}}],
                "limits": {"maxModelCalls": max_model_calls},
            },
        },
    ]
    return "\n---\n".join(json.dumps({"apiVersion": "agent.wecode.io/v1", **d}) for d in docs) + "\n"


class Counter:
    """The trivial tool: counts its calls (so the run can be checked), does nothing else."""

    def __init__(self) -> None:
        self.calls = 0

        async def noop(n: int = 0) -> str:
            """Do nothing."""
            self.calls += 1
            return "ok"

        self.tool = tool(noop)


class Script:
    """The model client of `m`: plays a fresh `ScriptedModel` per `load`, so a run does not pay for the replies of
    the runs before it (the scripted model looks for its next reply from the first one)."""

    def __init__(self) -> None:
        self.model = ScriptedModel(name="m")

    def load(self, replies: Sequence[dict[str, Any]]) -> None:
        self.model = ScriptedModel(replies, name="m")

    @property
    def remaining(self) -> int:
        return self.model.remaining

    def stream(self, request: Any) -> AsyncIterator[Any]:
        return self.model.stream(request)


def reply(**fields: Any) -> dict[str, Any]:
    """A script reply with its usage given: otherwise the scripted model counts the words of the whole conversation
    on every call, which is the test double's cost, not the engine's (and grows with the steps)."""
    return {**fields, "usage": {"input_tokens": 10, "output_tokens": 2}}


@asynccontextmanager
async def engine(store: str, *, max_model_calls: int = 128, tools: Sequence[Any] = ()) -> AsyncIterator[Any]:
    """An entered AsyncWegent on a new store, with the bench team applied, and the `Script` its model plays."""
    model = Script()
    with tempfile.TemporaryDirectory() as tmp:
        target: Any = store
        if store == "file":
            target = SqlStore.open(f"sqlite:///{tmp}/bench.db", upgrade=True)
        elif store.startswith("sqlite"):
            target = SqlStore.open(store, upgrade=True)
        try:
            async with AsyncWegent(target, models={"m": model}, tools=tools) as wg:
                await wg.apply(team_yaml(max_model_calls))
                yield wg, model
        finally:
            if target is not store:
                target.close()


async def finish(task: AsyncTask, expected: str) -> None:
    text = await task.result()  # a failed task raises TaskError with its message
    if text != expected:
        raise AssertionError(f"task {task.id} answered {text!r}, expected {expected!r}")


async def limited(work: Awaitable[T], timeout: float) -> T:
    """`work`, failing with a clear message if it takes longer than `timeout` (a task that never finishes)."""
    try:
        with anyio.fail_after(timeout):
            return await work
    except TimeoutError:
        raise RuntimeError(f"not done after {timeout:g} s: a task hangs, or the run needs a longer --timeout") from None


# --- 1. steps and latency -----------------------------------------------------------------------------------------


async def measure_steps(store: str, steps: int, repeat: int) -> dict[str, float]:
    counter = Counter()
    async with engine(store, max_model_calls=steps + 1, tools=[counter.tool]) as (wg, model):

        async def one(n: int) -> float:
            before = counter.calls
            calls = [reply(tool_call={"name": "noop", "arguments": {"n": i}}) for i in range(n - 1)]
            model.load([*calls, reply(text="done")])
            start = time.perf_counter()
            await finish(await wg.run(TEAM, "work in steps"), "done")
            elapsed = time.perf_counter() - start
            if counter.calls - before != n - 1 or model.remaining:
                raise AssertionError(f"{n} steps: {counter.calls - before} tool calls, {model.remaining} replies left")
            return elapsed

        await one(steps)  # warm-up: first-use costs (imports, statement compilation, threads)
        latency = statistics.median([await one(1) for _ in range(max(LATENCY_RUNS, repeat))])
        task = statistics.median([await one(steps) for _ in range(max(repeat, 5))])
    return {"step": task / steps, "step marginal": (task - latency) / max(steps - 1, 1), "latency": latency}


# --- 2. throughput ------------------------------------------------------------------------------------------------


async def sequential(store: str, tasks: int) -> dict[str, float]:
    async with engine(store) as (wg, model):
        model.load([reply(text="ok")] * tasks)
        start = time.perf_counter()
        for _ in range(tasks):
            await finish(await wg.run(TEAM, "say ok"), "ok")
        elapsed = time.perf_counter() - start
        assert model.remaining == 0, model
    return {"sequential": tasks / elapsed}


async def concurrent(store: str, tasks: int) -> dict[str, float]:
    async with engine(store) as (wg, model):
        model.load([reply(text="ok")] * tasks)
        start = time.perf_counter()
        handles = [await wg.run(TEAM, f"say ok ({i})") for i in range(tasks)]
        started = time.perf_counter() - start
        async with anyio.create_task_group() as group:
            for handle in handles:
                group.start_soon(finish, handle, "ok")
        elapsed = time.perf_counter() - start
        assert model.remaining == 0, model
    return {"concurrent": tasks / elapsed, "concurrent start": started / tasks}


# --- 3. slow model calls, in a process of their own ---------------------------------------------------------------


def slow_child(store: str, tasks: int, timeout: float) -> None:
    """The child's side: run the slow scenario and print its figures as one JSON line."""

    async def run() -> dict[str, float]:
        async with engine(store) as (wg, model):
            base = rss_now()
            model.load([reply(text="ok", delay=SLOW_DELAY)] * tasks)
            start = time.perf_counter()
            handles = [await wg.run(TEAM, f"wait ({i})") for i in range(tasks)]
            started = time.perf_counter() - start
            async with anyio.create_task_group() as group:
                for handle in handles:
                    group.start_soon(finish, handle, "ok")
            elapsed = time.perf_counter() - start
            assert model.remaining == 0, model
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return {"slow wall": elapsed, "slow start": started, "slow rss": peak / 1024, "slow rss base": base}

    print(json.dumps(anyio.run(lambda: limited(run(), timeout))))


def rss_now() -> float:
    """The process's resident set now, in MB (Linux; elsewhere its peak so far)."""
    statm = Path("/proc/self/statm")
    if statm.exists():
        return int(statm.read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure_slow(store: str, tasks: int, timeout: float) -> dict[str, float]:
    command = [sys.executable, __file__, "--slow-child", "--store", store, "--tasks", str(tasks)]
    command += ["--timeout", str(timeout)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout + 30, check=False)
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-15:])  # the end of the child's traceback
        raise RuntimeError(f"the slow scenario's process failed (exit {done.returncode}):\n{tail}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# --- running and reporting ----------------------------------------------------------------------------------------


def best_of(
    work: Callable[[], Awaitable[dict[str, float]]], repeat: int, budget: float, timeout: float
) -> dict[str, float]:
    """The best of up to `repeat` runs (highest rate, lowest time), stopping once `budget` seconds are used."""
    runs: list[dict[str, float]] = []
    began = time.perf_counter()
    while len(runs) < repeat and (not runs or time.perf_counter() - began < budget):
        runs.append(anyio.run(lambda: limited(work(), timeout)))
    rates = {"sequential", "concurrent"}
    return {key: (max if key in rates else min)(run[key] for run in runs) for key in runs[0]}


def measure(store: str, args: argparse.Namespace) -> dict[str, float]:
    figures: dict[str, float] = {}
    stages: list[tuple[str, Callable[[], dict[str, float]]]] = [
        ("steps", lambda: anyio.run(lambda: limited(measure_steps(store, args.steps, args.repeat), args.timeout))),
        ("sequential", lambda: best_of(lambda: sequential(store, args.tasks), args.repeat, args.budget, args.timeout)),
        ("concurrent", lambda: best_of(lambda: concurrent(store, args.tasks), args.repeat, args.budget, args.timeout)),
        ("slow", lambda: measure_slow(store, args.tasks, args.timeout)),
    ]
    for name, stage in stages:
        print(f"  {name} ...", file=sys.stderr)
        try:
            figures |= stage()
        except Exception as error:  # a broken or hung engine: say so, and go on with the other figures
            print(f"  {name} failed: {type(error).__name__}: {error}", file=sys.stderr)
            figures["failed"] = 1
    return figures


ROWS = [
    ("step", "engine time per step, {s}-step task, median", "step"),
    ("step marginal", "  marginal step: (T({s}) - T(1)) / {s1}", None),
    ("latency", "single-step task, run to result, median", None),
    ("sequential", "solo tasks/s, {n} one after another", "throughput"),
    ("concurrent", "solo tasks/s, {n} started then awaited", "throughput"),
    ("concurrent start", "  run() call while they start, mean", None),
    ("slow wall", "{n} concurrent tasks, 1 s model call: wall", "slow wall"),
    ("slow start", "  of which starting them all", None),
    ("slow rss", "  peak RSS of the process", "slow rss"),
    ("slow rss base", "  RSS before the first task", None),
]


def show(key: str, value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "failed"
    if key in ("sequential", "concurrent", "throughput"):
        return f"{value:,.0f}/s"
    if key.startswith("slow rss"):
        return f"{value:,.0f} MB"
    return f"{value * 1000:.3f} ms" if value < 0.01 else f"{value:.3f} s"


def report(results: dict[str, dict[str, float]], args: argparse.Namespace) -> None:
    stores = list(results)
    width = 48
    names = {"file": "sqlite file"}
    print(f"{'operation':<{width}}" + "".join(f"{names.get(s, s):>14}" for s in stores) + f"{'target':>12}")
    for key, label, target in ROWS:
        text = label.format(s=args.steps, s1=args.steps - 1, n=f"{args.tasks:,}")
        cells = "".join(f"{show(key, results[s].get(key)):>14}" for s in stores)
        goal = ""
        if target == "throughput":
            goal = f">= {TARGETS[target]:.0f}/s"
        elif target:
            goal = f"< {show(target, TARGETS[target])}"
        print(f"{text:<{width}}{cells}{goal:>12}")
    print(describe_machine())


# --- profile ------------------------------------------------------------------------------------------------------


def profile(store: str, tasks: int, timeout: float) -> None:
    """The concurrent throughput run under cProfile: the event loop thread and every worker thread (the store
    calls run there), CPU time, merged; the top 25 by own time."""
    profiles: list[cProfile.Profile] = []
    lock = threading.Lock()

    def start_thread_profile(*_: Any) -> None:  # the first profile event of a new thread: profile it from now on
        profiler = cProfile.Profile(time.thread_time)
        with lock:
            profiles.append(profiler)
        profiler.enable()

    main = cProfile.Profile(time.thread_time)
    threading.setprofile(start_thread_profile)
    cpu = time.process_time()
    main.enable()
    try:
        figures = anyio.run(lambda: limited(concurrent(store, tasks), timeout))
    finally:
        main.disable()
        threading.setprofile(None)  # type: ignore[arg-type]
        for profiler in profiles:
            profiler.disable()  # a no-op from this thread for the others; their stats are read below anyway
    cpu = time.process_time() - cpu
    loop = pstats.Stats(main).total_tt
    workers = pstats.Stats(*profiles).total_tt if profiles else 0.0
    print(
        f"\nprofile: {tasks:,} concurrent solo tasks on {store}: {figures['concurrent']:,.0f}/s under the profiler; "
        f"process CPU {cpu:.2f} s; profiled CPU: event loop thread {loop:.2f} s, "
        f"{len(profiles)} worker threads {workers:.2f} s"
    )
    stats = pstats.Stats(main, *profiles) if profiles else pstats.Stats(main)
    stats.sort_stats("tottime").print_stats(25)
    if profiles:  # the store calls run in the worker threads, where a function's cumulative time means something
        print("store and engine functions in the worker threads, by cumulative CPU time:")
        pstats.Stats(*profiles).sort_stats("cumulative").print_stats(r"wegent_(storage|core)/", 20)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", default="file", help="stores to compare: file (a SQLite file), or store URLs")
    parser.add_argument("--tasks", type=int, default=1000, help="tasks of the throughput and slow scenarios")
    parser.add_argument("--steps", type=int, default=50, help="model calls of the multi-step task")
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure, each on a new store")
    parser.add_argument("--budget", type=float, default=20.0, help="seconds after which a figure's repeats stop")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds after which a run counts as hung")
    parser.add_argument("--profile", action="store_true", help="profile the concurrent run (first store)")
    parser.add_argument("--slow-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    stores = args.store.split(",")
    with tempfile.TemporaryDirectory() as home:
        os.environ["WEGENT_HOME"] = str(Path(home))  # the secret key file, if one is made, goes here
        if args.slow_child:
            slow_child(stores[0], args.tasks, args.timeout)
            return 0
        results: dict[str, dict[str, float]] = {}
        for store in stores:
            print(f"measuring {store} ...", file=sys.stderr)
            results[store] = measure(store, args)
        report(results, args)
        if args.profile:
            profile(stores[0], args.tasks, args.timeout)
    return 1 if any(figures.get("failed") for figures in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
