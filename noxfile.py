"""Developer tasks. Run them through `./dev SESSION` (which bootstraps nox) or `nox -s SESSION`.

tests   the whole test suite                    lint    ruff check and format check
bench   the benchmarks whose figures docs/ quote demo    the README's main job
"""

from __future__ import annotations

import nox

nox.options.reuse_venv = "yes"
nox.options.sessions = ["lint", "tests"]

DEV = ".[dev]"
# llama.cpp compiles from source: a portable build (no -march=native), so the wheel pip caches runs on any x86-64.
PORTABLE = {"CMAKE_ARGS": "-DGGML_NATIVE=OFF"}


@nox.session
def tests(session: nox.Session) -> None:
    session.install("-e", DEV, env=PORTABLE)
    session.run("pytest", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    session.install("ruff")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def bench(session: nox.Session) -> None:
    session.install("-e", DEV, env=PORTABLE)
    for script in ("bench_load.py", "bench_plan.py", "bench_cli_help.py", "bench_store.py", "bench_engine.py"):
        session.run("python", f"benchmarks/{script}")


@nox.session
def demo(session: nox.Session) -> None:
    """The main job: check every example, apply them to the embedded SQLite store (kept in .nox/demo/home for the
    demo), plan the pipeline Task, and run it end to end: the spec stage waits for a confirmation (exit code 3),
    then `wegent confirm` lets the developer and the reviewer finish it. The models are the scripted stand-in of
    examples/offline until the offline local model lands (issue 5)."""
    session.install("-e", ".")
    env = {"WEGENT_HOME": f"{session.virtualenv.location}/home"}
    examples = [
        "examples/common",
        "examples/solo",
        "examples/pipeline",
        "examples/route",
        "examples/coordinate",
        "examples/collaborate",
    ]
    session.run("wegent", "validate", "--strict", "-f", *examples, env=env)
    session.run("wegent", "apply", "-f", *examples, env=env)
    session.run("wegent", "apply", "-f", "examples/offline", env=env)  # default-model becomes the scripted one
    session.run("wegent", "get", "teams", "-o", "wide", env=env)
    session.run("wegent", "plan", "--task", "add-rate-limiter", env=env)
    session.run("wegent", "run", "--task", "add-rate-limiter", "--follow", *session.posargs, env=env, success_codes=[3])
    session.run("wegent", "confirm", "add-rate-limiter", "--follow", *session.posargs, env=env)
    session.run("wegent", "get", "tasks", env=env)
