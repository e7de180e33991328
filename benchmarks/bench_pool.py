"""Sandbox acquire: from a warm pool versus cold, for each sandbox provider that can run here.

    python benchmarks/bench_pool.py [--runs 30] [--size 2] [--engines local,docker,podman] [--image IMAGE]

* cold: `provider.create(spec)` (for a container: create and start it), median and p95 of `--runs`.
* warm: `PooledProvider.create(spec)` with the pool full (the benchmark waits for the refill before each acquire,
  so every acquire is served from the pool): what a task waits for with `WEGENT_SANDBOX_POOL` set. Target: under
  50 ms.

Each also shows "ready": the acquire plus a first trivial command (`true`), what a task waits for before its first
command has run. Closing the sandboxes is not timed. docker and podman are measured when their provider is installed
and their engine answers (`docker info` / `podman info`); otherwise the script says why it skips them.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import time
from collections.abc import Awaitable, Callable

import anyio
from _machine import describe_machine

from wegent_core import Plugins, Sandbox, SandboxProvider, SandboxSpec
from wegent_runtimes.sandboxes import PooledProvider

WARM_TARGET = 0.050


def p95(values: list[float]) -> float:
    return sorted(values)[max(0, int(len(values) * 0.95) - 1)]


def why_not(engine: str) -> str | None:
    """None if `engine` can be measured here, else the reason it cannot."""
    if engine == "local":
        return None
    if shutil.which(engine) is None:
        return f"the {engine} command is not installed"
    try:
        subprocess.run([engine, "info"], capture_output=True, check=True, timeout=20)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as error:
        return f"the {engine} engine is not running ({type(error).__name__})"
    return None


def provider_for(plugins: Plugins, engine: str) -> SandboxProvider:
    return plugins.sandboxes[engine].factory({})


Times = tuple[list[float], list[float]]  # (acquire, acquire and a first command)


async def timed(acquire: Callable[[], Awaitable[Sandbox]], acquired: list[float], ready: list[float]) -> None:
    began = time.perf_counter()
    sandbox = await acquire()
    acquired.append(time.perf_counter() - began)
    result = await sandbox.exec(["true"])
    ready.append(time.perf_counter() - began)
    assert result.ok, result
    await sandbox.close()


async def cold(provider: SandboxProvider, spec: SandboxSpec, runs: int) -> Times:
    acquired: list[float] = []
    ready: list[float] = []
    for _ in range(runs):
        await timed(lambda: provider.create(spec), acquired, ready)
    return acquired, ready


async def warm(provider: SandboxProvider, spec: SandboxSpec, runs: int, size: int) -> Times:
    acquired: list[float] = []
    ready: list[float] = []
    async with PooledProvider(provider, size) as pool:
        await pool.warm(spec)
        for _ in range(runs):
            with anyio.fail_after(120):
                while pool.idle < size:  # full again: this acquire is served from the pool
                    await anyio.sleep(0.005)
            await timed(lambda: pool.create(spec), acquired, ready)
    return acquired, ready


def ms(times: list[float]) -> str:
    return f"median {statistics.median(times) * 1000:8.2f} ms   p95 {p95(times) * 1000:8.2f} ms"


def line(label: str, times: Times) -> str:
    return f"  {label:<5} acquire {ms(times[0])}   ready {ms(times[1])}"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--size", type=int, default=2, help="pool size")
    parser.add_argument("--engines", default="local,docker,podman")
    parser.add_argument("--image", default=None, help="container image (default: the provider's)")
    args = parser.parse_args()
    print(describe_machine())
    plugins = Plugins.load()
    for engine in args.engines.split(","):
        reason = why_not(engine)
        if reason is None:
            try:
                provider = provider_for(plugins, engine)
            except Exception as error:  # the provider module is missing or its SDK is not installed
                reason = f"no {engine} provider here ({type(error).__name__}: {error})"
        if reason is not None:
            print(f"{engine}: skipped: {reason}")
            continue
        spec = SandboxSpec(image=None if engine == "local" else args.image, labels={"wegent.bench": "pool"})
        cold_times = await cold(provider, spec, args.runs)
        warm_times = await warm(provider, spec, args.runs, args.size)
        verdict = "meets" if statistics.median(warm_times[0]) < WARM_TARGET else "MISSES"
        print(f"{engine}: acquire, {args.runs} runs, pool size {args.size}")
        print(line("cold", cold_times))
        print(line("warm", warm_times) + f"   ({verdict} the 50 ms target)")
        await provider.reap(lambda labels: labels.get("wegent.bench") != "pool")


if __name__ == "__main__":
    anyio.run(main)
