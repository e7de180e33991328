"""The store commands of `wegent`: apply, get, describe, delete, db and prune, and the store that `plan` reads.

Imported only when one of them runs (see `_cli._store_command`), so `wegent --help` never pays for it. Every command
opens the store named by `--store`, else `$WEGENT_STORE`, else the embedded SQLite file in the data directory, through
the store plugins: a third-party store works here as the built-in ones do.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from wegent_core._apply import ApplyReport, Reference, dependents, references
from wegent_core._apply import apply as apply_resources
from wegent_core._config import default_store_url
from wegent_core._errors import NotFoundError, StoreError, WegentError
from wegent_core._loader import load, to_document
from wegent_core._plugins import Plugins, PluginWarning
from wegent_core._resolve import _PROTOCOL_BY_PROVIDER, _infer_provider
from wegent_core._resources import API_VERSION, Bot, Model, Ref, Resource
from wegent_core._store import lookup
from wegent_core._yaml import to_yaml

from ._cli import KIND_NAMES, _aligned, _plural, _print_json, _report_error

OPERATIONS = ("created", "updated", "unchanged", "failed")
DEFAULT_PRUNE_AGE = 30 * 86400  # seconds: `wegent prune` alone removes what finished more than 30 days ago
NONE = "<none>"
MODEL_ID_KEYS = ("model_id", "ANTHROPIC_MODEL", "OPENAI_MODEL", "GEMINI_MODEL")  # as resolution reads them

Key = tuple[str, str, str]  # (namespace, kind, name), as `Resource.key`
Users = list[tuple[Resource, Reference]]  # what `dependents` returns: each referrer, with its reference


# --- the store ----------------------------------------------------------------------------------------------------


@contextmanager
def opened_store(url: str | None) -> Iterator[Any]:
    """The store at `url` (default: $WEGENT_STORE, else the embedded SQLite file), closed on exit."""
    store = _plugins().open_store(url or default_store_url())
    try:
        yield store
    finally:
        close = getattr(store, "close", None)
        if callable(close):
            close()


def _plugins() -> Plugins:
    """`Plugins.load()`, a failed plugin reported in one line rather than as a Python warning with a source line."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", PluginWarning)
        plugins = Plugins.load()
    for warning in caught:
        if issubclass(warning.category, PluginWarning):
            print(f"warning: {warning.message}", file=sys.stderr)
        else:
            warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
    return plugins


def _find(store: Any, kind: str, name: str, namespace: str) -> Resource:
    """The resource, or `NotFoundError` in upstream's words, with a hint when a reference would find it in public."""
    resource = store.get(kind, name, namespace)
    if resource is not None:
        return resource
    message = f"{kind} '{name}' not found in namespace '{namespace}'"
    shared, _ = lookup(store, kind, name, namespace)
    if shared is not None:
        message += f" (there is one in namespace '{shared.namespace}': add -n {shared.namespace})"
    raise NotFoundError(message)


def _shown(resource: Resource, show_secrets: bool = False) -> Resource:
    if show_secrets:
        return resource
    from wegent_core import redact_resource

    return redact_resource(resource)


def _label(resource: Resource) -> str:
    return f"{resource.kind}/{resource.name} ({resource.namespace})"


# --- apply --------------------------------------------------------------------------------------------------------


def apply(args: argparse.Namespace) -> int:
    as_json = args.output == "json"
    try:
        resources = load(*args.files)
        with opened_store(args.store) as store:
            report = apply_resources(
                store, resources, namespace=args.namespace, public=args.public, dry_run=args.dry_run
            )
    except WegentError as exc:
        return _report_error(exc, as_json)
    for warning in resources.warnings:
        print(warning, file=sys.stderr)
    if as_json:
        _print_json(_apply_data(report))
    else:
        print(_apply_text(report))
    return 0 if report.ok else 1


def _apply_text(report: ApplyReport) -> str:
    dry = " (dry run)" if report.dry_run else ""
    lines = []
    for result in report.results:
        outcome = f"failed: {result.error}" if result.operation == "failed" else result.operation + dry
        lines.append(f"{result.kind}/{result.name} ({result.namespace}): {outcome}")
        lines += [f"  warning: {warning}" for warning in result.warnings]
    counts = ", ".join(f"{report.count(op)} {op}" for op in OPERATIONS if report.count(op))
    lines.append(_plural(len(report.results), "resource") + (f": {counts}" if counts else "") + dry)
    return "\n".join(lines)


def _apply_data(report: ApplyReport) -> dict[str, Any]:
    return {
        "ok": report.ok,
        "dry_run": report.dry_run,
        **{op: report.count(op) for op in OPERATIONS},
        "results": [
            {
                "kind": r.kind,
                "name": r.name,
                "namespace": r.namespace,
                "operation": r.operation,
                "error": r.error,
                "warnings": r.warnings,
            }
            for r in report.results
        ],
    }


# --- get ----------------------------------------------------------------------------------------------------------


def get(args: argparse.Namespace) -> int:
    if args.kind == "Task":  # `get tasks` lists task runs (their definitions are read by `plan --task`, `run --task`)
        from ._task_commands import get_tasks

        return get_tasks(args)
    output = args.output or ("yaml" if args.name else "table")
    namespace = None if args.all_namespaces else (args.namespace or "default")
    try:
        with opened_store(args.store) as store:
            if args.name:
                items = [_find(store, args.kind, args.name, args.namespace or "default")]
            else:
                items = store.list(args.kind, namespace, args.selector)
        items = [_shown(r, args.show_secrets) for r in items]
    except WegentError as exc:
        return _report_error(exc, output == "json")
    if output in ("table", "wide"):
        if not items:
            where = f" in namespace '{namespace}'" if namespace else ""
            print(f"No {KIND_NAMES[args.kind][1]} found{where}.", file=sys.stderr)
        else:
            print(_table(items, wide=output == "wide"))
        return 0
    data: Any = to_document(items[0]) if args.name else _list_document(args.kind, items)
    if output == "json":
        _print_json(data)
    else:
        print(to_yaml(data), end="")
    return 0


def _list_document(kind: str, items: list[Resource]) -> dict[str, Any]:
    """Upstream's list shape: `{apiVersion, kind: TeamList, items}`."""
    return {"apiVersion": API_VERSION, "kind": f"{kind}List", "items": [to_document(r) for r in items]}


def _table(items: list[Resource], wide: bool) -> str:
    now = datetime.now(UTC)
    extra = WIDE_COLUMNS.get(items[0].kind, ()) if wide else ()
    header = ["NAME", "NAMESPACE", "STATE", "AGE", *(title for title, _ in extra)]
    rows = [
        [r.name, r.namespace, r.status.state, _age(r.metadata.created_at, now), *(cell(r) for _, cell in extra)]
        for r in items
    ]
    return _columns([header, *rows])


def _columns(rows: list[list[Any]]) -> str:
    cells = [[NONE if value in (None, "") else str(value) for value in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(cells[0]))]
    return "\n".join("   ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells)


def _age(created: datetime | None, now: datetime) -> str:
    """`45s`, `5m`, `3h`, `2d`, as kubectl rounds them: down, in the largest whole unit."""
    if created is None:
        return "<unknown>"
    if created.tzinfo is None:
        created = created.replace(tzinfo=UTC)
    seconds = max(0, int((now - created).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _ref(ref: Ref | None, owner: Resource) -> str | None:
    if ref is None:
        return None
    return ref.name if ref.namespace in (None, owner.namespace) else f"{ref.namespace}/{ref.name}"


def _bot_model(bot: Bot) -> str | None:
    bound = (bot.spec.agent_config or {}).get("bind_model")
    return _ref(bot.spec.model_ref, bot) or (f"{bound} (bound)" if bound else None)


def _model_env(model: Model) -> dict[str, Any]:
    config = model.spec.config
    env = config.get("env")
    return env if isinstance(env, dict) else config  # the upstream CLI template writes the keys into modelConfig


def _model_protocol(model: Model) -> str | None:
    """The protocol resolution would use: the spec's, else the one of the provider the env names or implies."""
    env = _model_env(model)
    provider = env.get("model") or _infer_provider(env)
    return (
        model.spec.protocol or model.spec.config.get("protocol") or _PROTOCOL_BY_PROVIDER.get(str(provider), provider)
    )


def _model_id(model: Model) -> str | None:
    env = _model_env(model)
    return next((str(env[k]) for k in MODEL_ID_KEYS if env.get(k)), None)


def _joined(values: Iterable[Any]) -> str:
    return ",".join(str(v) for v in values)


WIDE_COLUMNS: dict[str, tuple[tuple[str, Any], ...]] = {
    "Shell": (
        ("TYPE", lambda r: r.spec.shell_type or (r.spec.base_shell_ref and f"(from {r.spec.base_shell_ref})")),
        ("IMAGE", lambda r: r.spec.base_image),
    ),
    "Bot": (
        ("GHOST", lambda r: _ref(r.spec.ghost_ref, r)),
        ("SHELL", lambda r: _ref(r.spec.shell_ref, r)),
        ("MODEL", _bot_model),
    ),
    "Team": (
        ("MODE", lambda r: r.spec.collaboration_model.value),
        ("MEMBERS", lambda r: _joined(_ref(m.bot_ref, r) for m in r.spec.members)),
    ),
    "Model": (("PROTOCOL", _model_protocol), ("MODEL_ID", _model_id)),
    "Ghost": (("SKILLS", lambda r: _joined(r.spec.skills or ())),),
    "Workspace": (
        ("REPOSITORY", lambda r: r.spec.repository.git_repo),
        ("BRANCH", lambda r: r.spec.repository.branch_name),
    ),
    "Skill": (("VERSION", lambda r: r.spec.version),),
}


# --- describe -----------------------------------------------------------------------------------------------------


def describe(args: argparse.Namespace) -> int:
    if args.kind == "Task":  # a task run, with its subtasks
        from ._task_commands import describe_task

        return describe_task(args)
    as_json = args.output == "json"
    try:
        with opened_store(args.store) as store:
            resource = _find(store, args.kind, args.name, args.namespace or "default")
            resolved = [(ref, lookup(store, ref.kind, ref.name, ref.namespace)[0]) for ref in references(resource)]
            users = dependents(store, resource)
        shown = _shown(resource)
    except WegentError as exc:
        return _report_error(exc, as_json)
    if as_json:
        _print_json(_describe_data(shown, resolved, users))
    else:
        print(_describe_text(shown, resolved, users))
    return 0


def _describe_text(
    resource: Resource, resolved: list[tuple[Reference, Resource | None]], users: list[tuple[Resource, Reference]]
) -> str:
    meta = resource.metadata
    now = datetime.now(UTC)
    head = [
        ("Name", meta.name),
        ("Namespace", meta.namespace),
        ("Kind", resource.kind),
        ("API Version", resource.api_version),
        ("Resource Version", meta.resource_version or NONE),
        ("Display Name", meta.display_name),
        ("Created", _when(meta.created_at, now)),
        ("Updated", _when(meta.updated_at, now)),
        ("Labels", _joined(f"{k}={v}" for k, v in sorted(meta.labels.items())) or NONE),
        ("State", resource.status.state),
    ]
    lines = _aligned((k, v) for k, v in head if v)
    document = to_document(resource)
    for title in ("spec", "status"):
        if document.get(title):
            lines += [f"{title.capitalize()}:", *_indented(to_yaml(document[title]))]
    lines.append("References:")
    lines += [
        f"  {ref.path} -> {ref.kind} {ref.name} ({found.namespace if found else 'missing'})" for ref, found in resolved
    ] or [f"  {NONE}"]
    lines.append("Referenced by:")
    lines += [f"  {user.kind} {user.name} ({user.namespace}) via {ref.path}" for user, ref in users] or [f"  {NONE}"]
    return "\n".join(lines)


def _when(moment: datetime | None, now: datetime) -> str | None:
    return moment and f"{moment.isoformat(timespec='seconds')} ({_age(moment, now)} ago)"


def _indented(text: str) -> list[str]:
    return [f"  {line}" if line else line for line in text.rstrip("\n").splitlines()]


def _describe_data(
    resource: Resource, resolved: list[tuple[Reference, Resource | None]], users: list[tuple[Resource, Reference]]
) -> dict[str, Any]:
    return {
        "resource": to_document(resource),
        "references": [
            {
                "path": ref.path,
                "kind": ref.kind,
                "name": ref.name,
                "namespace": ref.namespace,
                "resolved": found is not None,
                "resolved_namespace": found.namespace if found else None,
            }
            for ref, found in resolved
        ],
        "referenced_by": [
            {"kind": user.kind, "name": user.name, "namespace": user.namespace, "path": ref.path} for user, ref in users
        ],
    }


# --- delete -------------------------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Deletion:
    resource: Resource
    because: Resource | None = None  # None: asked for; else deleted by --cascade as a dependent of this one


@dataclass(slots=True)
class _DeletePlan:
    order: list[_Deletion]  # dependents before what they depend on
    missing: list[Key]
    blocked: dict[Key, Users]  # asked-for resource -> dependents not being deleted


class _Snapshot:
    """Every stored resource, read once: `dependents` scans the whole store for each resource it is asked about."""

    def __init__(self, resources: list[Resource]) -> None:
        self.resources = resources
        self.by_key = {r.key: r for r in resources}

    def get(self, kind: str, name: str, namespace: str = "default") -> Resource | None:
        return self.by_key.get((namespace, kind, name))

    def list(self, kind: str | None = None, namespace: str | None = None, selector: Any = None) -> list[Resource]:
        return [r for r in self.resources if kind in (None, r.kind) and namespace in (None, r.namespace)]


def delete(args: argparse.Namespace) -> int:
    as_json = args.output == "json"
    try:
        targets = _delete_targets(args)
        with opened_store(args.store) as store:
            plan = _plan_deletion(store, targets, args.cascade)
            if not plan.blocked and not args.dry_run:
                for deletion in plan.order:
                    resource = deletion.resource
                    with suppress(NotFoundError):  # deleted meanwhile by someone else: the outcome is the same
                        store.delete(resource.kind, resource.name, resource.namespace)
    except WegentError as exc:
        return _report_error(exc, as_json)
    if as_json:
        _print_json(_delete_data(plan, args.dry_run))
    else:
        _print_delete(plan, args.dry_run)
    return 1 if plan.blocked or plan.missing else 0


def _delete_targets(args: argparse.Namespace) -> list[Key]:
    if not args.files:
        return [(args.namespace or "default", args.kind, args.name)]
    keys = [(args.namespace or r.namespace, r.kind, r.name) for r in load(*args.files)]
    return list(dict.fromkeys(keys))


def _plan_deletion(store: Any, targets: list[Key], cascade: bool) -> _DeletePlan:
    snapshot = _Snapshot(store.list())
    found = [snapshot.by_key[k] for k in targets if k in snapshot.by_key]
    selected = {r.key: _Deletion(r) for r in found}
    users: dict[Key, Users] = {}

    def users_of(resource: Resource) -> Users:
        if resource.key not in users:
            users[resource.key] = dependents(snapshot, resource)
        return users[resource.key]

    queue = deque(found)
    while cascade and queue:  # breadth first: dependents of dependents too
        resource = queue.popleft()
        for user, _ in users_of(resource):
            if user.key not in selected:
                selected[user.key] = _Deletion(user, because=resource)
                queue.append(user)
    blocked = {}
    for resource in found:
        outside = [(user, ref) for user, ref in users_of(resource) if user.key not in selected]
        if outside:
            blocked[resource.key] = outside
    missing = [k for k in targets if k not in snapshot.by_key]
    return _DeletePlan(_dependents_first(selected, users_of), missing, blocked)


def _dependents_first(selected: dict[Key, _Deletion], users_of: Callable[[Resource], Users]) -> list[_Deletion]:
    order: list[_Deletion] = []
    done: set[Key] = set()
    pending = list(selected.values())
    while pending:
        ready = [
            d
            for d in pending
            if all(u.key in done or u.key not in selected or u.key == d.resource.key for u, _ in users_of(d.resource))
        ]
        ready = ready or pending[:1]  # a reference cycle (bind_model, baseShellRef): any order will do
        for deletion in ready:
            order.append(deletion)
            done.add(deletion.resource.key)
        pending = [d for d in pending if d.resource.key not in done]
    return order


def _print_delete(plan: _DeletePlan, dry_run: bool) -> None:
    for key, users in plan.blocked.items():
        namespace, kind, name = key
        print(f"error: {kind}/{name} ({namespace}) is still referenced by:", file=sys.stderr)
        for user, ref in users:
            print(f"  {_label(user)} via {ref.path}", file=sys.stderr)
    if plan.blocked:
        print("nothing was deleted; --cascade deletes what refers to them too", file=sys.stderr)
        return
    for namespace, kind, name in plan.missing:
        print(f"error: {kind} '{name}' not found in namespace '{namespace}'", file=sys.stderr)
    for deletion in plan.order:
        notes = ["dry run"] if dry_run else []
        if deletion.because:
            notes.append(f"it refers to {_label(deletion.because)}")
        print(f"{_label(deletion.resource)}: deleted" + (f" ({'; '.join(notes)})" if notes else ""))
    verb = "would be deleted" if dry_run else "deleted"
    print(f"{_plural(len(plan.order), 'resource')} {verb}")


def _delete_data(plan: _DeletePlan, dry_run: bool) -> dict[str, Any]:
    def key(k: Key) -> dict[str, str]:
        return {"kind": k[1], "name": k[2], "namespace": k[0]}

    return {
        "ok": not plan.blocked and not plan.missing,
        "dry_run": dry_run,
        "deleted": [
            {**key(d.resource.key), "because": key(d.because.key) if d.because else None}
            for d in ([] if plan.blocked else plan.order)
        ],
        "not_found": [key(k) for k in plan.missing],
        "blocked": [
            {**key(k), "referenced_by": [{**key(u.key), "path": ref.path} for u, ref in users]}
            for k, users in plan.blocked.items()
        ],
    }


# --- db -----------------------------------------------------------------------------------------------------------


UPGRADABLE = ("empty", "old")
SCHEMA_STATES = {
    "current": "up to date",
    "empty": "no wegent tables yet: run `wegent db upgrade --store {where}`",
    "old": "older than this wegent: run `wegent db upgrade --store {where}`",
    "newer": "newer than this wegent knows: upgrade wegent to use this database",
}


def db_current(args: argparse.Namespace) -> int:
    as_json = args.output == "json"
    try:
        schema = _plugins().store_schema(args.store or default_store_url())
        status = schema.status()
    except WegentError as exc:
        return _report_error(exc, as_json)
    where = schema.location
    if as_json:
        _print_json(
            {
                "store": where,
                "current": status.current,
                "head": status.head,
                "state": status.state,
                "upgrade_needed": status.state in UPGRADABLE,
            }
        )
        return 0
    status_text = SCHEMA_STATES[status.state].format(where=where)
    rows = [("store", where), ("current", status.current or NONE), ("head", status.head), ("status", status_text)]
    print("\n".join(_aligned(rows)))
    return 0


def db_upgrade(args: argparse.Namespace) -> int:
    as_json = args.output == "json"
    try:
        schema = _plugins().store_schema(args.store or default_store_url())
        before = schema.status()
        if before.state == "newer":
            newer = SCHEMA_STATES["newer"]
            raise StoreError(f"{schema.location}: {newer} (schema {before.current}, head {before.head})")
        after = schema.upgrade()
    except WegentError as exc:
        return _report_error(exc, as_json)
    where = schema.location
    if as_json:
        _print_json({"store": where, "from": before.current, "to": after.current, "head": after.head})
    elif before.current == after.current:
        print(f"{where} is already at the head revision {after.current}")
    else:
        print(f"upgraded {where} from {before.current or 'an empty database'} to {after.current}")
    return 0


# --- prune --------------------------------------------------------------------------------------------------------


def prune(args: argparse.Namespace) -> int:
    as_json = args.output == "json"
    age = DEFAULT_PRUNE_AGE if args.older_than is None and args.keep is None else args.older_than
    cutoff = None if age is None else datetime.now(UTC) - timedelta(seconds=age)
    try:
        with opened_store(args.store) as store:
            if not callable(getattr(store, "prune", None)):
                raise StoreError(f"the {type(store).__name__} keeps no tasks, so there is nothing to prune")
            report = store.prune(older_than=cutoff, keep_last=args.keep)
    except WegentError as exc:
        return _report_error(exc, as_json)
    if as_json:
        _print_json({**report.model_dump(), "older_than_seconds": age, "keep": args.keep})
    else:
        rules = [] if age is None else [f"finished more than {_duration_text(age)} ago"]
        rules += [] if args.keep is None else [f"beyond the newest {args.keep}"]
        which = " and ".join(rules)  # the store prunes a task only when both rules say so
        print(
            f"pruned {_plural(report.tasks, 'task')}, {_plural(report.subtasks, 'subtask')} and "
            f"{_plural(report.events, 'event')} ({which})"
        )
    return 0


def _duration_text(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"
