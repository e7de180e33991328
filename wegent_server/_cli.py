"""The `wegent` command line.

stdlib argparse only, and every heavy import (pydantic, the loader, the plugins) happens inside the command that needs
it: `wegent --help` and `wegent version` start in little more than the interpreter's own start-up time.
Exit codes: 0 success, 1 the input, the store or the plugins have problems, 2 usage errors, 130 interrupted; the
commands that run a task (run, confirm, resume) exit with how it ended: 0 COMPLETED, 1 FAILED, 3 PENDING_CONFIRMATION,
4 CANCELLED. The store commands (apply, get, describe, delete, db, prune) live in `_store_commands`, the task commands
(run, logs, cancel, confirm, resume; `get tasks`, `describe task`) in `_task_commands`, each imported when one runs.
"""

from __future__ import annotations

import argparse
import sys

TYPE_CHECKING = False  # not `typing.TYPE_CHECKING`: importing typing alone costs a few ms of start-up
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from typing import Any

    from wegent_core._errors import Problem, WegentError
    from wegent_core._plan import ExecutionPlan, KnowledgeBasePlan, MemberPlan
    from wegent_core._plugins import Plugins

    Handler = Callable[[argparse.Namespace], int]

PROMPT_WIDTH = 100

# Kinds as upstream's CLI spells them: singular, plural or short name, in any case.
KIND_NAMES = {
    "Ghost": ("ghost", "ghosts", "gh"),
    "Model": ("model", "models", "mo"),
    "Shell": ("shell", "shells", "sh"),
    "Bot": ("bot", "bots", "bo"),
    "Team": ("team", "teams", "te"),
    "Workspace": ("workspace", "workspaces", "ws"),
    "Task": ("task", "tasks", "ta"),
    "Skill": ("skill", "skills", "sk"),
    "KnowledgeBase": ("knowledgebase", "knowledgebases", "kb"),
}
_KIND_BY_NAME = {name: kind for kind, names in KIND_NAMES.items() for name in names}
DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


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
        description="Define AI agent teams in Kubernetes-style YAML, check them, plan them and run them.",
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
    _files_option(plan, required=False, extra="; without -f, plan from the store")
    target = plan.add_mutually_exclusive_group(required=True)
    target.add_argument("--team", metavar="NAME", help="the Team to plan")
    target.add_argument("--task", metavar="NAME", help="the Task to plan (its team, prompt and model labels)")
    plan.add_argument("-n", "--namespace", default="default", help="namespace of the team or task (default: default)")
    plan.add_argument("--model", metavar="NAME", help="Model for bots that have none (with --force-model: for all)")
    plan.add_argument("--force-model", action="store_true", help="use --model for every bot (teams only)")
    plan.add_argument("--prompt", metavar="TEXT", help="the user prompt (teams only; a task has its own)")
    _store_option(plan)
    _store_parsers(commands)
    _task_parsers(commands)

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

    _sandbox_parsers(commands)
    from ._kb_commands import kb_parsers  # wegent kb add|query|docs|remove (chromadb loads only when one runs)

    kb_parsers(commands)

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


def _store_parsers(commands: Any) -> None:
    """apply, get, describe, delete, db and prune: the commands that work on a store."""
    for add in (_apply_parser, _get_parser, _describe_parser, _delete_parser, _db_parser, _prune_parser):
        add(commands)


def _task_parsers(commands: Any) -> None:
    """run, logs, cancel, confirm and resume: the commands on task runs. The engine runs in this process."""
    run = _command(
        commands,
        "run",
        _task_command("run"),
        "run a team or a stored task here until it finishes or waits for a confirmation",
        "wegent run dev-team -f team.yaml --prompt 'Add a README' --follow",
        ("text", "json"),
    )
    run.add_argument("team", nargs="?", metavar="TEAM", help="the Team to run (name or namespace/name)")
    run.add_argument("--task", metavar="NAME", help="run a stored Task resource instead (its team, prompt and labels)")
    run.add_argument("--prompt", metavar="TEXT", help="the user prompt (teams only; a task has its own)")
    _files_option(run, required=False, extra="; applied to the store first, as `wegent apply -f`")
    run.add_argument(
        "-n", "--namespace", help="namespace of the team or task, and of the -f resources (default: default)"
    )
    run.add_argument("--model", metavar="NAME", help="Model for bots that have none")
    recording = run.add_mutually_exclusive_group()
    recording.add_argument("--record", metavar="FILE", help="write every model call of the run to FILE (JSON lines)")
    recording.add_argument(
        "--replay", metavar="FILE", help="answer every model call from a recording instead of the models"
    )
    _follow_option(run)
    _store_option(run)

    logs = _command(
        commands,
        "logs",
        _task_command("logs"),
        "print a task's events from the store",
        "wegent logs 7 --follow   # or: wegent logs fix-bug -o json",
        ("text", "json"),
    )
    _task_argument(logs)
    logs.add_argument("--follow", action="store_true", help="keep printing new events until the task rests")
    _store_option(logs)

    cancel = _command(
        commands,
        "cancel",
        _task_command("cancel"),
        "cancel a task; prints CANCELLING while another process stops it, CANCELLED when nothing runs it",
        "wegent cancel 7",
        ("text", "json"),
    )
    _task_argument(cancel)
    _store_option(cancel)

    confirm = _command(
        commands,
        "confirm",
        _task_command("confirm"),
        "confirm the pipeline stage a task waits on, and run the task here until it rests again",
        "wegent confirm 7 --message 'Use the second draft' --follow",
        ("text", "json"),
    )
    _task_argument(confirm)
    confirm.add_argument("--message", metavar="TEXT", help="the next stage's input, instead of the generated handoff")
    _follow_option(confirm)
    _store_option(confirm)

    resume = _command(
        commands,
        "resume",
        _task_command("resume"),
        "carry on tasks whose process died, running them here until they rest",
        "wegent resume   # every such task; or: wegent resume 7 --force",
        ("text", "json"),
    )
    _task_argument(resume, optional=True)
    resume.add_argument(
        "--force", action="store_true", help="take TASK over even if its process seems alive (another host, say)"
    )
    _follow_option(resume)
    _store_option(resume)


def _sandbox_parsers(commands: Any) -> None:
    """image build and gc: the sandbox images and the leftover containers of the docker and podman sandboxes."""
    image = commands.add_parser(
        "image", help="build sandbox images locally", description="Build sandbox images locally (no registry)."
    )
    image_commands = image.add_subparsers(dest="image_command", metavar="COMMAND", required=True)
    build = _command(
        image_commands,
        "build",
        _sandbox_command("image_build"),
        "build the default sandbox image into Docker and/or Podman from a root filesystem made here",
        "wegent image build --engine all --base busybox",
        ("text", "json"),
    )
    build.add_argument("--engine", choices=("docker", "podman", "all"), default="all", help="default: all")
    build.add_argument(
        "--base",
        choices=("busybox", "debian"),
        default="debian",
        help="busybox: a few MB, seconds; debian: python3, git, coreutils, about a minute (default: debian)",
    )
    build.add_argument(
        "--tag", metavar="NAME", help="image name (default: wegent-sandbox:BASE, and :latest for debian)"
    )
    build.add_argument("--force", action="store_true", help="rebuild even if an image of the same inputs exists")

    gc = _command(
        commands,
        "gc",
        _sandbox_command("gc"),
        "remove leftover sandbox containers: of dead processes, or of finished tasks unless preserved",
        "wegent gc --engine docker --dry-run",
        ("text", "json"),
    )
    gc.add_argument("--engine", choices=("docker", "podman", "all"), default="all", help="default: all")
    gc.add_argument("--url", metavar="URL", help="the engine's socket (default: the engine's usual one)")
    gc.add_argument("--dry-run", action="store_true", help="report what would be removed and remove nothing")
    gc.add_argument(
        "--include-preserved", action="store_true", help="also remove preserved sandboxes (preserveExecutor)"
    )
    _store_option(gc)


def _sandbox_command(name: str) -> Handler:
    def handler(args: argparse.Namespace) -> int:
        from . import _sandbox_commands

        command: Handler = getattr(_sandbox_commands, name)
        return command(args)

    return handler


def _task_argument(parser: argparse.ArgumentParser, optional: bool = False) -> None:
    parser.add_argument(
        "task",
        nargs="?" if optional else None,
        metavar="TASK",
        help="the task's id, or its name (the newest task of that name)" + ("; default: every one" if optional else ""),
    )


def _follow_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--follow",
        action="store_true",
        help="show the events as they happen (a live view on a terminal, plain lines otherwise)",
    )


def _apply_parser(commands: Any) -> None:
    apply = _command(
        commands,
        "apply",
        _store_command("apply"),
        "create or update resources in the store, in dependency order",
        "wegent apply -f resources/ --dry-run",
        ("text", "json"),
    )
    _files_option(apply)
    scope = apply.add_mutually_exclusive_group()
    scope.add_argument("-n", "--namespace", help="put every resource in this namespace (default: each document's own)")
    scope.add_argument("--public", action="store_true", help="put every resource in the shared `public` namespace")
    apply.add_argument("--dry-run", action="store_true", help="report what would change and write nothing")
    _store_option(apply)


def _get_parser(commands: Any) -> None:
    get = _command(
        commands,
        "get",
        _store_command("get"),
        "list the resources of a kind, or show one (`tasks`: task runs, with their status)",
        "wegent get teams -A -o wide   # or: wegent get te dev-team -o json; wegent get tasks",
        ("table", "wide", "yaml", "json"),
        default="table for a list, yaml for one resource",
    )
    _kind_argument(get)
    get.add_argument("name", nargs="?", metavar="NAME", help="one resource (default: list them)")
    where = get.add_mutually_exclusive_group()
    where.add_argument("-n", "--namespace", help="namespace (default: default; a task NAME: any namespace)")
    where.add_argument("-A", "--all-namespaces", action="store_true", help="list the resources of every namespace")
    get.add_argument(
        "-l", "--selector", type=_selector, metavar="SELECTOR", help="label selector, e.g. app=web,tier!=db"
    )
    get.add_argument("--show-secrets", action="store_true", help="show API keys and tokens instead of ***")
    _store_option(get)


def _describe_parser(commands: Any) -> None:
    describe = _command(
        commands,
        "describe",
        _store_command("describe"),
        "show one resource with its references and what refers to it (`task`: a task run and its messages)",
        "wegent describe bot developer-bot   # or: wegent describe task 7",
        ("text", "json"),
    )
    _kind_argument(describe)
    describe.add_argument("name", metavar="NAME")
    describe.add_argument("-n", "--namespace", help="namespace (default: default; a task NAME: any namespace)")
    _store_option(describe)


def _delete_parser(commands: Any) -> None:
    delete = _command(
        commands,
        "delete",
        _store_command("delete"),
        "delete resources, refusing while other resources refer to them",
        "wegent delete team dev-team --cascade --dry-run   # or: wegent delete -f resources/",
        ("text", "json"),
    )
    _kind_argument(delete, optional=True)
    delete.add_argument("name", nargs="?", metavar="NAME")
    _files_option(delete, required=False, extra="; deletes the resources they define")
    delete.add_argument("-n", "--namespace", help="namespace (default: default, or each document's own with -f)")
    delete.add_argument("--cascade", action="store_true", help="also delete what refers to them, recursively")
    delete.add_argument("--dry-run", action="store_true", help="report what would be deleted and delete nothing")
    _store_option(delete)


def _db_parser(commands: Any) -> None:
    db = commands.add_parser(
        "db", help="show or upgrade the schema of a SQL store", description="Show or upgrade the schema of a SQL store."
    )
    db_commands = db.add_subparsers(dest="db_command", metavar="COMMAND", required=True)
    upgrade = _command(
        db_commands,
        "upgrade",
        _store_command("db_upgrade"),
        "migrate the database to the schema this wegent knows",
        "wegent db upgrade --store postgresql://wegent@db/wegent",
        ("text", "json"),
    )
    _store_option(upgrade)
    current = _command(
        db_commands,
        "current",
        _store_command("db_current"),
        "print the schema revision of the database and whether it needs an upgrade",
        "wegent db current -o json",
        ("text", "json"),
    )
    _store_option(current)


def _prune_parser(commands: Any) -> None:
    prune = _command(
        commands,
        "prune",
        _store_command("prune"),
        "delete finished tasks with their subtasks and events",
        "wegent prune --older-than 30d --keep 100",
        ("text", "json"),
    )
    prune.add_argument(
        "--older-than",
        type=_duration,
        metavar="AGE",
        help="finished tasks last updated longer ago than AGE: 90s, 15m, 12h, 30d (default: 30d, unless --keep)",
    )
    prune.add_argument(
        "--keep",
        type=_count,
        metavar="N",
        help="finished tasks beyond the newest N (a task goes if either rule says so)",
    )
    _store_option(prune)


def _command(
    commands: Any,
    name: str,
    handler: Handler,
    summary: str,
    example: str,
    outputs: tuple[str, ...],
    default: str | None = None,
) -> argparse.ArgumentParser:
    """A subcommand with `-o`. `default` describes a default that depends on the input (the value is then None)."""
    description = summary[0].upper() + summary[1:] + "."
    parser: argparse.ArgumentParser = commands.add_parser(
        name, help=summary, description=description, epilog=f"example: {example}"
    )
    parser.add_argument(
        "-o",
        "--output",
        choices=outputs,
        default=None if default else outputs[0],
        help=f"output format (default: {default or outputs[0]})",
    )
    parser.set_defaults(handler=handler)
    return parser


def _store_command(name: str) -> Handler:
    def handler(args: argparse.Namespace) -> int:
        from . import _store_commands

        command: Handler = getattr(_store_commands, name)
        return command(args)

    return handler


def _task_command(name: str) -> Handler:
    def handler(args: argparse.Namespace) -> int:
        from . import _task_commands

        command: Handler = getattr(_task_commands, name)
        return command(args)

    return handler


def _files_option(parser: argparse.ArgumentParser, required: bool = True, extra: str = "") -> None:
    parser.add_argument(
        "-f",
        "--filename",
        dest="files",
        action="extend",
        nargs="+",
        required=required,
        metavar="PATH",
        help=f"YAML or JSON files, or directories of them (repeatable){extra}",
    )


def _store_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--store",
        metavar="URL",
        help="sqlite:///path, postgresql://..., mysql://..., memory:// "
        "(default: $WEGENT_STORE, else the embedded SQLite file in the data directory)",
    )


def _kind_argument(parser: argparse.ArgumentParser, optional: bool = False) -> None:
    parser.add_argument(
        "kind",
        type=_kind,
        nargs="?" if optional else None,
        metavar="KIND",
        help="ghost (gh), model (mo), shell (sh), bot (bo), team (te), workspace (ws), task (ta), skill (sk); "
        "singular or plural, any case",
    )


def _kind(text: str) -> str:
    kind = _KIND_BY_NAME.get(text.lower())
    if kind is None:
        known = ", ".join(f"{names[0]} ({names[2]})" for names in KIND_NAMES.values())
        raise argparse.ArgumentTypeError(f"unknown kind {text!r} (expected one of: {known})")
    return kind


def _selector(text: str) -> str:
    from wegent_core._selectors import LabelSelector  # checked while parsing, so a bad selector is a usage error

    try:
        LabelSelector.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"bad selector {text!r}: {exc}") from None
    return text


def _duration(text: str) -> float:
    """`90s`, `15m`, `12h`, `30d` in seconds."""
    number, unit = text.strip()[:-1], text.strip()[-1:].lower()
    if unit not in DURATION_UNITS or not number.isdigit():
        raise argparse.ArgumentTypeError(f"bad duration {text!r} (expected a number and s, m, h or d: 90s, 30d)")
    return int(number) * DURATION_UNITS[unit]


def _count(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}")
    return int(text)


def _check(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.command == "plan" and args.task and (args.prompt is not None or args.force_model):
        parser.error("--prompt and --force-model apply to --team only (a task carries its prompt and model labels)")
    if args.command == "plan" and args.files and args.store:
        parser.error("plan takes -f (files) or --store (stored resources), not both")
    if args.command == "get" and args.name and (args.all_namespaces or args.selector):
        parser.error("-A and -l list resources; they do not apply to one NAME")
    if args.command == "delete" and bool(args.files) == bool(args.kind):
        parser.error("delete takes KIND NAME or -f PATH...")
    if args.command == "delete" and args.kind and not args.name:
        parser.error(f"delete {args.kind}: which one? give its NAME")
    if args.command == "run" and bool(args.team) == bool(args.task):
        parser.error("run takes a TEAM (with --prompt) or --task NAME")
    if args.command == "run" and args.team and not args.prompt:
        parser.error("run TEAM needs --prompt TEXT")
    if args.command == "run" and args.task and args.prompt is not None:
        parser.error("--prompt applies to a TEAM only (a task carries its prompt)")
    if args.command == "resume" and args.force and not args.task:
        parser.error("--force applies to one TASK only")


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
    from contextlib import nullcontext

    from wegent_core._errors import WegentError
    from wegent_core._loader import load
    from wegent_core._memory_store import MemoryStore
    from wegent_core._resolve import resolve_task, resolve_team

    from ._store_commands import opened_store

    warnings: list[Problem] = []
    try:
        if args.files:
            resources = load(*args.files)
            warnings = resources.warnings
            source: Any = nullcontext(MemoryStore.from_resources(resources))
        else:
            source = opened_store(args.store)
        with source as store:
            if args.team:
                plan = resolve_team(
                    store, args.team, args.namespace, prompt=args.prompt, model=args.model, force_model=args.force_model
                )
            else:
                plan = resolve_task(store, args.task, args.namespace, model=args.model)
    except WegentError as exc:
        return _report_error(exc, args.output == "json")
    for warning in warnings:
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
    kbs = [_knowledge_base(kb) for kb in member.knowledge_bases]
    kbs += [f"{name} (not found)" for name in member.missing_knowledge_bases]
    return [
        ("shell", f"{member.shell.shell_type} ({member.shell.namespace}/{member.shell.name})"),
        ("model", f"{model.namespace}/{model.name}" + (f" ({details})" if details else "")),
        ("skills", skills or "-"),
        ("mcp servers", mcp or "-"),
        ("knowledge bases", ", ".join(kbs) or "-"),
        ("system prompt", _first_line(member.system_prompt) or "-"),
    ]


def _knowledge_base(kb: KnowledgeBasePlan) -> str:
    """`default/handbook (embedding default/emb; scoped to folder hr, document leave.md)`: what a search uses."""
    embedding = f"embedding {kb.embedding.namespace}/{kb.embedding.name}" if kb.embedding else "offline embedding"
    parts = [embedding]
    if kb.scopes:
        entries = [
            f"folder {f}" + ("" if s.include_subfolders else " (no subfolders)") for s in kb.scopes for f in s.folders
        ]
        entries += [f"document {d}" for s in kb.scopes for d in s.documents]
        parts.append("scoped to " + ", ".join(dict.fromkeys(entries)))
    return f"{kb.key} ({'; '.join(parts)})"


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
