"""The `wegent` command line.

stdlib argparse only, and every heavy import (pydantic, the loader, the plugins) happens inside the command that needs
it: `wegent --help` and `wegent version` start in little more than the interpreter's own start-up time.
Exit codes: 0 success, 1 the input or the plugins have problems, 2 usage errors, 130 interrupted.
"""

from __future__ import annotations

import argparse
import sys

TYPE_CHECKING = False  # not `typing.TYPE_CHECKING`: importing typing alone costs a few ms of start-up
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from typing import Any

    from wegent_core._errors import Problem, WegentError
    from wegent_core._plan import ExecutionPlan, MemberPlan
    from wegent_core._plugins import Plugins

    Handler = Callable[[argparse.Namespace], int]

PROMPT_WIDTH = 100


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    try:
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help(sys.stderr)
            return 2
        _check(parser, args)
    except SystemExit as exc:  # --help and usage errors: return the code, so main() is callable in-process
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    try:
        return args.handler(args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `wegent schema | head`: the reader left, which is not our error
        _silence_stdout()
        return 1


# --- the parser ---------------------------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="wegent",
        description="Define AI agent teams in Kubernetes-style YAML, check them and plan them.",
        epilog="Run `wegent COMMAND --help` for a command's options. `-o json` gives machine-readable output.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    validate = _command(
        commands,
        "validate",
        _validate,
        "check resource files and report every problem",
        "wegent validate -f team.yaml -f resources/ --strict",
        ("text", "json"),
    )
    _files_option(validate)
    validate.add_argument("--strict", action="store_true", help="also report unknown fields, and fail on warnings")

    plan = _command(
        commands,
        "plan",
        _plan,
        "resolve a team or a task into an execution plan, without running it",
        "wegent plan -f resources/ --team dev-team --prompt 'Add a README'",
        ("table", "yaml", "json"),
    )
    _files_option(plan)
    target = plan.add_mutually_exclusive_group(required=True)
    target.add_argument("--team", metavar="NAME", help="the Team to plan")
    target.add_argument("--task", metavar="NAME", help="the Task to plan (its team, prompt and model labels)")
    plan.add_argument("-n", "--namespace", default="default", help="namespace of the team or task (default: default)")
    plan.add_argument("--model", metavar="NAME", help="Model for bots that have none (with --force-model: for all)")
    plan.add_argument("--force-model", action="store_true", help="use --model for every bot (teams only)")
    plan.add_argument("--prompt", metavar="TEXT", help="the user prompt (teams only; a task has its own)")

    schema = _command(
        commands,
        "schema",
        _schema,
        "print the JSON Schema of the resources, for editors and CI",
        "wegent schema > wegent.schema.json   # then: # yaml-language-server: $schema=wegent.schema.json",
        ("json",),
    )
    schema.add_argument("kind", nargs="?", metavar="KIND", help="one kind (Team, Bot, ...); default: any resource")
    schema.add_argument("--strict", action="store_true", help="reject unknown fields (flags typos in editors)")

    _command(
        commands,
        "plugins",
        _plugins,
        "list the plugins, what each registered, and those that failed",
        "WEGENT_DISABLE_PLUGINS=name1,name2 wegent plugins   # exit 1 if a plugin failed",
        ("text", "json"),
    )
    _command(
        commands,
        "version",
        _version,
        "print the versions of wegent and Python",
        "wegent version -o json",
        ("text", "json"),
    )
    return parser


def _command(
    commands: Any, name: str, handler: Handler, summary: str, example: str, outputs: tuple[str, ...]
) -> argparse.ArgumentParser:
    description = summary[0].upper() + summary[1:] + "."
    parser: argparse.ArgumentParser = commands.add_parser(
        name, help=summary, description=description, epilog=f"example: {example}"
    )
    parser.add_argument(
        "-o", "--output", choices=outputs, default=outputs[0], help=f"output format (default: {outputs[0]})"
    )
    parser.set_defaults(handler=handler)
    return parser


def _files_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-f",
        "--filename",
        dest="files",
        action="extend",
        nargs="+",
        required=True,
        metavar="PATH",
        help="YAML or JSON files, or directories of them (repeatable)",
    )


def _check(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.command == "plan" and args.task and (args.prompt is not None or args.force_model):
        parser.error("--prompt and --force-model apply to --team only (a task carries its prompt and model labels)")


# --- validate -----------------------------------------------------------------------------------------------------


def _validate(args: argparse.Namespace) -> int:
    from wegent_core._errors import ValidationError
    from wegent_core._loader import load

    try:
        loaded = load(*args.files, strict=args.strict)
        problems = list(loaded.warnings)
    except ValidationError as exc:
        problems, loaded = exc.problems, exc.loaded
    errors = sum(p.severity == "error" for p in problems)
    warnings = len(problems) - errors
    files, count = len(loaded.sources), len(loaded)
    failed = bool(errors or (args.strict and warnings))
    if args.output == "json":
        _print_json(
            {
                "ok": not failed,
                "files": files,
                "resources": count,
                "errors": errors,
                "warnings": warnings,
                "problems": [_problem_dict(p) for p in problems],
            }
        )
    else:
        for problem in problems:
            print(problem)
        tally = ", ".join(_plural(n, word) for n, word in ((errors, "error"), (warnings, "warning")) if n)
        print(f"{_plural(files, 'file')}, {_plural(count, 'resource')}, {tally or 'no problems'}")
    return 1 if failed else 0


# --- plan ---------------------------------------------------------------------------------------------------------


def _plan(args: argparse.Namespace) -> int:
    from wegent_core._errors import WegentError
    from wegent_core._loader import load
    from wegent_core._memory_store import MemoryStore
    from wegent_core._resolve import resolve_task, resolve_team

    try:
        resources = load(*args.files)
        store = MemoryStore.from_resources(resources)
        if args.team:
            plan = resolve_team(
                store, args.team, args.namespace, prompt=args.prompt, model=args.model, force_model=args.force_model
            )
        else:
            plan = resolve_task(store, args.task, args.namespace, model=args.model)
    except WegentError as exc:
        return _report_error(exc, args.output == "json")
    for warning in resources.warnings:
        print(warning, file=sys.stderr)
    if args.output == "json":
        _print_json(plan.model_dump(mode="json"))
    elif args.output == "yaml":
        print(_yaml(plan.model_dump(mode="json")), end="")
    else:
        print(_plan_table(plan))
    return 0


def _plan_table(plan: ExecutionPlan) -> str:
    leader = plan.members[plan.leader] if plan.members else None
    head = [
        ("team", plan.team),
        ("task", plan.task),
        ("collaboration", plan.collaboration_model.value),
        ("leader", f"[{plan.leader}] {leader.bot}" if leader else "-"),
        ("prompt", _first_line(plan.prompt)),
    ]
    lines = _aligned((k, v) for k, v in head if v)
    for member in plan.members:
        lines += ["", f"[{member.index}] {member.role or 'member'}  {member.bot}"]
        rows = _member_rows(member)
        if plan.collaboration_model == "pipeline":
            confirm = "waits for confirmation" if member.require_confirmation else "continues on its own"
            rows.append(("stage", f"{confirm}; hands over: {member.context_passing.value}"))
        lines += ["    " + line for line in _aligned(rows)]
    if plan.warnings:
        lines += ["", "warnings:", *(f"  - {w}" for w in plan.warnings)]
    return "\n".join(lines)


def _member_rows(member: MemberPlan) -> list[tuple[str, str]]:
    model = member.model
    details = ", ".join(f"{k} {v}" for k, v in (("protocol", model.protocol), ("model_id", model.model_id)) if v)
    skills = ", ".join(s.name + (" (preloaded)" if s.preload else "") for s in member.skills)
    mcp = ", ".join(f"{m.name} ({m.type})" for m in member.mcp_servers)
    return [
        ("shell", f"{member.shell.shell_type} ({member.shell.namespace}/{member.shell.name})"),
        ("model", f"{model.namespace}/{model.name}" + (f" ({details})" if details else "")),
        ("skills", skills or "-"),
        ("mcp servers", mcp or "-"),
        ("system prompt", _first_line(member.system_prompt) or "-"),
    ]


def _aligned(rows: Iterable[tuple[str, Any]]) -> list[str]:
    rows = list(rows)
    width = max((len(k) for k, _ in rows), default=0) + 2
    return [f"{k + ':':<{width}}{v}" for k, v in rows]


def _first_line(text: str | None) -> str:
    line = next((ln.strip() for ln in (text or "").splitlines() if ln.strip()), "")
    return line if len(line) <= PROMPT_WIDTH else line[: PROMPT_WIDTH - 3] + "..."


# --- schema, plugins, version -------------------------------------------------------------------------------------


def _schema(args: argparse.Namespace) -> int:
    from wegent_core._schema import json_schema

    try:
        schema = json_schema(args.kind, strict=args.strict)
    except ValueError as exc:
        print(f"wegent schema: error: {exc}", file=sys.stderr)
        return 2
    _print_json(schema)
    return 0


def _plugins(args: argparse.Namespace) -> int:
    import warnings

    from wegent_core._errors import PluginError
    from wegent_core._plugins import Plugins, PluginWarning

    with warnings.catch_warnings():  # failures are part of the listing below
        warnings.simplefilter("ignore", PluginWarning)
        try:
            plugins = Plugins.load()
        except PluginError as exc:
            return _report_error(exc, args.output == "json")
    if args.output == "json":
        _print_json({"plugins": _plugins_data(plugins), "blocked": sorted(plugins.blocked)})
    else:
        print(_plugins_text(plugins))
    return 1 if plugins.failures else 0


def _plugins_data(plugins: Plugins) -> list[dict[str, Any]]:
    from wegent_core._plugins import POINTS

    out = []
    for info in plugins.info():
        registered = {
            point.attr: [
                {"name": n, "description": getattr(plugins, point.attr)[n].description}
                for n in info.registered.get(point.attr, ())
            ]
            for point in POINTS
            if info.registered.get(point.attr)
        }
        out.append(
            {
                "name": info.name,
                "distribution": info.distribution,
                "version": info.version,
                "hooks": list(info.hooks),
                "registered": registered,
                "error": info.error,
            }
        )
    return out


def _plugins_text(plugins: Plugins) -> str:
    from wegent_core._plugins import POINTS

    nouns = {p.attr: p.noun for p in POINTS}
    lines: list[str] = []
    for item in _plugins_data(plugins):
        origin = f"{item['distribution']} {item['version']}" if item["distribution"] else "registered at run time"
        lines.append(f"{item['name']}  ({origin})" + ("  FAILED" if item["error"] else ""))
        if item["error"]:
            lines.append(f"    error: {item['error']}")
        lines.append(f"    hooks: {', '.join(item['hooks']) or '-'}")
        for attr, entries in item["registered"].items():
            lines += [
                f"    {nouns[attr]} {e['name']}" + (f": {e['description']}" if e["description"] else "")
                for e in entries
            ]
    failed = len(plugins.failures)
    loaded = len(plugins.info()) - failed
    lines.append(
        f"{_plural(loaded, 'plugin')} loaded, {failed} failed"
        + (f", blocked: {', '.join(sorted(plugins.blocked))}" if plugins.blocked else "")
    )
    return "\n".join(lines)


def _version(args: argparse.Namespace) -> int:
    from importlib.metadata import PackageNotFoundError, version

    try:
        wegent = version("wegent")
    except PackageNotFoundError:  # running from a source tree that was never installed
        wegent = "unknown"
    python = ".".join(map(str, sys.version_info[:3]))
    if args.output == "json":
        _print_json(
            {"wegent": wegent, "python": python, "implementation": sys.implementation.name, "platform": sys.platform}
        )
    else:
        print(f"wegent {wegent}\nPython {python} ({sys.implementation.name}, {sys.platform})")
    return 0


# --- output helpers -----------------------------------------------------------------------------------------------


def _report_error(exc: WegentError, as_json: bool) -> int:
    """Problems go to stderr, one per line; with `-o json`, stdout also gets them as one JSON document."""
    problems: list[Problem] = list(getattr(exc, "problems", None) or [])
    for problem in problems:
        print(problem, file=sys.stderr)
    if not problems:
        print(f"error: {exc}", file=sys.stderr)
    if as_json:
        _print_json(
            {"error": type(exc).__name__, "message": str(exc), "problems": [_problem_dict(p) for p in problems]}
        )
    return 1


def _problem_dict(problem: Problem) -> dict[str, Any]:
    return {
        "severity": problem.severity,
        "source": problem.source,
        "line": problem.line,
        "path": problem.path,
        "message": problem.message,
        "kind": problem.kind,
        "name": problem.name,
    }


def _print_json(data: Any) -> None:
    import json

    print(json.dumps(data, indent=2, ensure_ascii=False))


def _yaml(data: Any) -> str:
    from wegent_core import to_yaml

    return to_yaml(data)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _silence_stdout() -> None:
    import contextlib
    import os

    with contextlib.suppress(OSError, ValueError):  # no real stdout (in-process tests): nothing to silence
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
