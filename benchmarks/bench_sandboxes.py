"""Container sandbox benchmark: cold acquire and exec round trip, for docker and podman.

    python benchmarks/bench_sandboxes.py [--runs 10] [--execs 50] [--engine docker|podman|all] [--image IMG]

Needs the engines running (see docs/images.md) and the image built (`wegent image build --base busybox`).

* cold acquire: `provider.create(spec)` until a first `exec(["true"])` has returned, then `close()` outside the
  timing; against a bare `docker run --rm --network none IMG true` / `podman run --rm --runtime runc --network none
  IMG true` of the same image (the CLI, which also creates, starts, waits and removes). Median of `--runs`
  (target: within 1.2x of the bare run).
* exec round trip: `exec(["true"])` in a running sandbox, median and p95 of `--execs` (target: under 100 ms):
  through the sandbox's runner (the default, one long-lived exec), and with one engine exec per command (the
  `runner: false` option, and what concurrent commands and commands with stdin use).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import time
from typing import Any

import anyio
from _machine import describe_machine

from wegent_core import SandboxSpec
from wegent_runtimes.sandboxes._docker import DockerProvider
from wegent_runtimes.sandboxes._podman import PodmanProvider

PODMAN = {"runtime": "runc", "ulimits": {"nofile": 1024, "nproc": 1024}}


def bare_run(engine: str, image: str) -> float:
    extra = ["--runtime", "runc", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"]
    command = [engine, "run", "--rm", *(extra if engine == "podman" else []), "--network", "none", image, "true"]
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    return time.perf_counter() - start


async def bench(engine: str, image: str, runs: int, execs: int) -> dict[str, Any]:
    options = {"image": image, **(PODMAN if engine == "podman" else {})}
    provider = DockerProvider(options) if engine == "docker" else PodmanProvider(options)
    spec = SandboxSpec(labels={"task": "bench"})
    await (await provider.create(spec)).close()  # connect, reap at start, warm the engine's caches
    bare_run(engine, image)
    acquire, bare = [], []
    for _ in range(runs):
        start = time.perf_counter()
        sandbox = await provider.create(spec)
        await sandbox.exec(["true"])
        acquire.append(time.perf_counter() - start)
        await sandbox.close()
        bare.append(bare_run(engine, image))
    sandbox = await provider.create(spec)
    try:
        trips = await round_trips(sandbox, execs)
        sandbox.use_runner = False  # the same sandbox, one engine exec per command
        plain = await round_trips(sandbox, execs)
    finally:
        await sandbox.close()
        await provider.aclose()
    cold, bare_median = statistics.median(acquire), statistics.median(bare)
    return {
        "engine": engine,
        "cold_acquire_ms": round(cold * 1000, 1),
        "bare_run_ms": round(bare_median * 1000, 1),
        "ratio": round(cold / bare_median, 2),
        "exec_median_ms": round(statistics.median(trips) * 1000, 1),
        "exec_p95_ms": p95(trips),
        "plain_exec_median_ms": round(statistics.median(plain) * 1000, 1),
        "plain_exec_p95_ms": p95(plain),
    }


async def round_trips(sandbox: Any, execs: int) -> list[float]:
    trips = []
    for _ in range(execs):
        start = time.perf_counter()
        await sandbox.exec(["true"])
        trips.append(time.perf_counter() - start)
    return trips


def p95(seconds: list[float]) -> float:
    return round(sorted(seconds)[int(len(seconds) * 0.95) - 1] * 1000, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--execs", type=int, default=50)
    parser.add_argument("--engine", choices=("docker", "podman", "all"), default="all")
    parser.add_argument("--image", default="wegent-sandbox:busybox")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    engines = ["docker", "podman"] if args.engine == "all" else [args.engine]
    results = [anyio.run(bench, engine, args.image, args.runs, args.execs) for engine in engines]
    if args.json:
        print(json.dumps({"machine": describe_machine(), "image": args.image, "results": results}, indent=2))
        return
    print(describe_machine())
    print(f"image: {args.image}")
    for row in results:
        print(
            f"{row['engine']:7} cold acquire {row['cold_acquire_ms']:7.1f} ms vs bare run {row['bare_run_ms']:7.1f} ms"
            f" ({row['ratio']:.2f}x, target <= 1.2x); exec round trip median {row['exec_median_ms']:.1f} ms,"
            f" p95 {row['exec_p95_ms']:.1f} ms (target < 100 ms); one exec per command: median"
            f" {row['plain_exec_median_ms']:.1f} ms, p95 {row['plain_exec_p95_ms']:.1f} ms"
        )


if __name__ == "__main__":
    main()
