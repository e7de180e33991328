"""Start-up time of the `wegent` command: `wegent --help` (and `wegent version`) against `python -c pass`, the floor
that no Python program can beat.

    python benchmarks/bench_cli_help.py [-n 40]

Each command runs N times in a fresh subprocess after two warm-up runs; wall time includes process creation.
Byte-code caching is enabled for the runs even if PYTHONDONTWRITEBYTECODE is set, as it is for installed users.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

WARM_UP = 2


def wegent_script() -> str:
    beside = Path(sys.executable).parent / "wegent"
    found = str(beside) if beside.exists() else shutil.which("wegent")
    if not found:
        raise SystemExit("the `wegent` console script is not installed: pip install -e .")
    return found


def timings(argv: list[str], runs: int, env: dict[str, str]) -> list[float]:
    """Wall times in milliseconds."""
    samples = []
    for i in range(WARM_UP + runs):
        start = time.perf_counter()
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True, env=env)
        if i >= WARM_UP:
            samples.append((time.perf_counter() - start) * 1000)
    return samples


def p95(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=20, method="inclusive")[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--runs", type=int, default=40, help="timed runs per command (default: 40)")
    args = parser.parse_args()

    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    wegent = wegent_script()
    cases = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "wegent --help": [wegent, "--help"],
        "wegent version": [wegent, "version"],
    }
    print(
        f"CLI start-up, {args.runs} runs each after {WARM_UP} warm-up runs "
        f"(Python {platform.python_version()}, {platform.system()} {platform.machine()}, {os.cpu_count()} CPUs)"
    )
    medians = {}
    for label, argv in cases.items():
        samples = timings(argv, args.runs, env)
        medians[label] = statistics.median(samples)
        print(f"  {label:<16} median {medians[label]:6.1f} ms   p95 {p95(samples):6.1f} ms")
    floor = medians["python -c pass"]
    print(f"  `wegent --help` costs {medians['wegent --help'] - floor:.1f} ms over the interpreter's own start-up.")


if __name__ == "__main__":
    main()
