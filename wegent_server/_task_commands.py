"""The task commands of `wegent`: run, logs, cancel, confirm and resume, and the task runs that `get tasks` and
`describe task` show.

Imported only when one of them runs (see `_cli._task_command`). The engine lives in the CLI process: `run`, `confirm`
and `resume` run the task here until it rests (finished, or waiting for a confirmation), and the exit code tells how
it ended (`EXIT_CODES`). Everything a task does is in the store first, so `logs` replays it from any other process,
and `wegent resume` carries on a task whose process died.

Output: without `--follow`, a status line on stderr and the final answer on stdout; with `--follow`, the events as
they happen (a live view with rich on a terminal, plain lines otherwise); with `-o json`, one event per line as JSON
(`Event.model_dump(mode="json")`) and nothing else on stdout.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import IO, Any

from wegent_core._config import default_store_url
from wegent_core._errors import NotFoundError, StoreError, WegentError
from wegent_core._events import Event, event_from_record
from wegent_core._resources import TaskState
from wegent_core._task_store import SubtaskRecord, TaskRecord

from ._cli import _aligned, _print_json, _problem_dict, _report_error, _yaml

EXIT_CODES = {TaskState.COMPLETED: 0, TaskState.FAILED: 1, TaskState.PENDING_CONFIRMATION: 3, TaskState.CANCELLED: 4}
REST = frozenset(EXIT_CODES) | {TaskState.DELETE}  # as the engine's: nothing runs the task until a command does
UNFINISHED = (TaskState.PENDING, TaskState.RUNNING, TaskState.CANCELLING)
POLL_INTERVAL = 0.2  # seconds: `logs --follow` reads the store this often
NONE = "<none>"
TEXT_TAIL = 12  # lines of streamed text a member shows in the live view
TOOL_TAIL = 4  # tool calls and results a member shows in the live view
OUTPUT_WIDTH = 200  # characters of a tool's output or arguments shown on one line


# --- finding tasks ------------------------------------------------------------------------------------------------


def task_store(store: Any) -> Any:
    """`store`, if it keeps task runs."""
    if not callable(getattr(store, "list_tasks", None)):
        raise StoreError(f"the {type(store).__name__} keeps no tasks")
    return store


def find_task(store: Any, ref: str, namespace: str | None = None) -> TaskRecord:
    """The task `ref` names: a numeric id, else a name (the newest task with that name, in `namespace` if given)."""
    task_store(store)
    if ref.isdigit():
        record = store.get_task(int(ref))
        if record is None:
            raise NotFoundError(f"task {ref} not found")
        return record
    for record in store.list_tasks(namespace):  # newest first
        if record.name == ref:
            return record
    raise NotFoundError(f"task '{ref}' not found" + (f" in namespace '{namespace}'" if namespace else ""))


def _label(record: TaskRecord) -> str:
    """`task 7`, or `task 7 (fix-bug)` when it has a name of its own."""
    return f"task {record.id}" + ("" if record.name in (None, f"task-{record.id}") else f" ({record.name})")


# --- the engine in this process -----------------------------------------------------------------------------------


@asynccontextmanager
async def _wegent(url: str | None, **options: Any) -> AsyncIterator[Any]:
    from wegent_core._api import AsyncWegent

    from ._store_commands import _plugins

    async with AsyncWegent(url or default_store_url(), plugins=_plugins(), **options) as wg:
        yield wg


def _session(args: argparse.Namespace, body: Callable[[Any], Awaitable[int]]) -> int:
    """Run `body(wegent)` on an event loop with an engine on the store; WegentErrors are reported, as JSON too with
    `-o json`."""
    import anyio

    from wegent_core._concurrency import first_error

    options = {k: v for k in ("record", "replay") if (v := getattr(args, k, None))}

    async def main() -> int:
        async with _wegent(args.store, **options) as wg:
            return await body(wg)

    try:
        with first_error():  # an error from inside a task group (a broken pipe, say), as itself
            return anyio.run(main)
    except WegentError as exc:
        return _fail(exc, args.output == "json")


def _fail(exc: WegentError, as_json: bool) -> int:
    """As `_report_error`, but the JSON error is one line: these commands print JSON lines."""
    problems = list(getattr(exc, "problems", None) or [])
    for problem in problems:
        print(problem, file=sys.stderr)
    if not problems:
        print(f"error: {exc}", file=sys.stderr)
    if as_json:
        data = {"error": type(exc).__name__, "message": str(exc), "problems": [_problem_dict(p) for p in problems]}
        print(json.dumps(data, ensure_ascii=False), flush=True)
    return 1


async def _db(wg: Any, fn: Callable[..., Any], *args: Any) -> Any:
    return await wg.engine.db(fn, *args)


# --- run ----------------------------------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> int:
    started: list[TaskRecord] = []

    async def body(wg: Any) -> int:
        namespace = args.namespace or "default"
        if args.files:
            await _apply_files(wg, args.files, args.namespace)
        if args.task:
            from ._store_commands import _find

            resource = await _db(wg, _find, wg.store, "Task", args.task, namespace)
            task = await wg.run(resource, model=args.model)
        else:
            task = await wg.run(args.team, args.prompt, namespace=namespace, model=args.model)
        started.append(await task.record())
        return await _watch(wg, [task], args, {task.id: 0})

    try:
        return _session(args, body)
    except KeyboardInterrupt:
        if started:
            _interrupted(started[0])
        raise


async def _apply_files(wg: Any, files: list[str], namespace: str | None) -> None:
    """`wegent apply -f`, before a run: warnings go to stderr; a failed resource stops the run."""
    from wegent_core._loader import load

    resources = await _db(wg, load, *files)
    for warning in resources.warnings:
        print(warning, file=sys.stderr)
    report = await wg.apply(resources, namespace=namespace)
    failed = 0
    for result in report.results:
        where = f"{result.kind}/{result.name} ({result.namespace})"
        for warning in result.warnings:
            print(f"{where}: warning: {warning}", file=sys.stderr)
        if result.operation == "failed":
            failed += 1
            print(f"{where}: failed: {result.error}", file=sys.stderr)
    if failed:
        raise WegentError(f"{failed} of {len(report.results)} resources could not be applied; nothing was run")


def _interrupted(record: TaskRecord) -> None:
    print(
        f"\ninterrupted: {_label(record)} stopped where it was; `wegent resume {record.id}` carries it on, "
        f"`wegent cancel {record.id}` cancels it",
        file=sys.stderr,
    )


# --- confirm and resume -------------------------------------------------------------------------------------------


def confirm(args: argparse.Namespace) -> int:
    async def body(wg: Any) -> int:
        record = await _db(wg, find_task, wg.store, args.task)
        task = await wg.task(record.id)
        after = await _last_seq(wg, record.id)
        await task.confirm(args.message)
        return await _watch(wg, [task], args, {record.id: after})

    return _session(args, body)


def resume(args: argparse.Namespace) -> int:
    async def body(wg: Any) -> int:
        if args.task:
            record = await _db(wg, find_task, wg.store, args.task)
            before = {record.id: await _last_seq(wg, record.id)}
            tasks = await wg.resume(record.id, force=args.force)
            if not tasks:
                return _not_resumed(await _db(wg, find_task, wg.store, str(record.id)))
        else:
            before = {}
            for status in UNFINISHED:
                for record in await _db(wg, wg.store.list_tasks, None, status):
                    before[record.id] = await _last_seq(wg, record.id)
            tasks = await wg.resume()
            if not tasks:
                print("no task to resume: none is unfinished with its process gone", file=sys.stderr)
                return 0
        if args.output != "json":
            for task in tasks:
                print(f"resumed {_label(await task.record())}", file=sys.stderr)
        return await _watch(wg, tasks, args, before)

    return _session(args, body)


def _not_resumed(record: TaskRecord) -> int:
    from wegent_core._engine import runner_alive

    if record.status not in UNFINISHED:
        print(f"{_label(record)} is {record.status}: nothing to resume", file=sys.stderr)
        return 0
    runner = record.spec.get("runner") or {}
    where = f"process {runner.get('pid')} on {runner.get('host')}"
    if runner_alive(record):
        raise WegentError(f"{_label(record)} is {record.status} in {where}, which is alive (--force takes it over)")
    raise WegentError(f"{_label(record)} is {record.status} and could not be resumed")


async def _last_seq(wg: Any, task_id: int) -> int:
    events = await _db(wg, wg.store.events, task_id, 0)
    return events[-1].seq if events else 0


# --- following tasks that run here --------------------------------------------------------------------------------


async def _watch(wg: Any, tasks: list[Any], args: argparse.Namespace, after: dict[int, int]) -> int:
    """Show the tasks' events after `after[id]` until each rests; the exit code of how they ended."""
    import anyio

    start = time.monotonic()
    plans = {}
    if args.output != "json" and getattr(args, "follow", False) and sys.stdout.isatty():
        for task in tasks:
            plans[task.id] = await _plan_of(wg, await task.record())
    view = _view(args, plans, several=len(tasks) > 1)
    try:

        async def follow(task: Any) -> None:
            async for event in task.events(after.get(task.id, 0)):
                view.event(event)

        if len(tasks) == 1:
            await follow(tasks[0])
        else:
            async with anyio.create_task_group() as group:
                for task in tasks:
                    group.start_soon(follow, task)
    finally:
        view.close()
    records = [await task.record() for task in tasks]
    if args.output != "json":
        for record in records:
            _summary(record, view.trackers.get(record.id) or _Tracker(), time.monotonic() - start, view.answers)
    return _exit_code(records)


def _exit_code(records: Iterable[TaskRecord]) -> int:
    codes = {EXIT_CODES.get(record.status, 1) for record in records}
    for code in (1, 4, 3):  # the worst outcome of several tasks
        if code in codes:
            return code
    return 0


def _summary(record: TaskRecord, tracker: _Tracker, seconds: float, answers: bool) -> None:
    """The status line on stderr and, if `answers`, the answer on stdout."""
    line = f"{_label(record)} {record.status}"
    if record.status is TaskState.COMPLETED:
        line += f" in {seconds:.1f}s" + (f", {tracker.usage()}" if tracker.tokens else "")
    elif record.status is TaskState.PENDING_CONFIRMATION:
        request = tracker.confirmation or {}
        stage = request.get("stage", record.current_stage)
        line += f": stage {stage} is done; `wegent confirm {record.id}` starts stage {stage + 1}"
    elif record.error_message:
        line += f": {record.error_message}"
    print(line, file=sys.stderr, flush=True)
    answer = (record.result or {}).get("value")
    if answers and answer and record.status in (TaskState.COMPLETED, TaskState.PENDING_CONFIRMATION):
        print(answer, flush=True)


async def _plan_of(wg: Any, record: TaskRecord) -> Any:
    """The team's plan, for the live view's members and stages (None if the team cannot be resolved now)."""
    try:
        model = (record.spec.get("run") or {}).get("model")
        return await wg.plan(record.team, record.prompt, model=model)
    except WegentError:
        return None


# --- views: what the events look like -----------------------------------------------------------------------------


def _view(args: argparse.Namespace, plans: dict[int, Any], several: bool = False) -> _View:
    if args.output == "json":
        return _JsonView()
    if getattr(args, "follow", False):
        if sys.stdout.isatty():
            return _LiveView(plans)
        return _PlainView(prefix=several)
    return _View(answers=True)


def _who(member: str | None) -> str:
    return (member or "task").rpartition("/")[2]


def _short(text: str, width: int = OUTPUT_WIDTH) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 3] + "..."


@dataclass
class _Member:
    """What the live view shows of a member: its latest turn."""

    bot: str
    stage: int | None = None
    status: str = "waiting"
    text: str = ""
    thinking: str = ""
    tools: list[tuple[str, str]] = field(default_factory=list)  # (style, line)


class _Tracker:
    """The state of one task as its events tell it: for the live view and the status line."""

    def __init__(self, task_id: int) -> None:
        self.task_id = task_id
        self.status: str | None = None
        self.progress = 0
        self.tokens = 0
        self.cost = 0.0
        self.confirmation: dict[str, Any] | None = None
        self.error: str | None = None
        self.members: dict[str, _Member] = {}
        self.stages: dict[int, str] = {}

    def member(self, bot: str) -> _Member:
        if bot not in self.members:
            self.members[bot] = _Member(bot)
        return self.members[bot]

    def add(self, event: Event) -> None:
        data = event.model_dump(mode="json")
        kind, bot = event.type, event.member
        if kind == "task.status":
            self.status, self.progress = data["status"], data.get("progress") or 0
            self.error = data.get("error") or self.error
            if data["status"] not in ("PENDING_CONFIRMATION",):
                self.confirmation = None
        elif kind == "subtask.status" and bot and data.get("role") == "ASSISTANT":
            member = self.member(bot)
            if data["status"] == "RUNNING":  # a new turn, or a step that runs again after a resume
                member.text, member.thinking, member.tools = "", "", []
            member.status, member.stage = data["status"], data.get("stage")
            if member.stage is not None:
                self.stages[member.stage] = data["status"]
        elif kind == "text.delta" and bot:
            self.member(bot).text += data["text"]
        elif kind == "message" and bot and data.get("role") == "ASSISTANT":
            self.member(bot).text = data["text"]  # the whole answer, whatever the deltas showed
        elif kind == "thinking" and bot:
            self.member(bot).thinking = data["text"]
        elif kind == "tool.call" and bot:
            args = json.dumps(data.get("arguments") or {}, ensure_ascii=False)
            self.member(bot).tools.append(("cyan", f"-> {data['name']}({_short(args, 80)})"))
        elif kind == "tool.result" and bot:
            style = "red" if data.get("is_error") else "green"
            self.member(bot).tools.append((style, f"<- {data['name']}: {_short(data.get('output') or '', 80)}"))
        elif kind == "usage":
            self.tokens, self.cost = data.get("total_tokens") or 0, data.get("total_cost_usd") or 0.0
        elif kind == "confirmation.request":
            self.confirmation = data
            self.stages[data["stage"]] = "PENDING_CONFIRMATION"
        elif kind == "error":
            self.error = data.get("message")

    def usage(self) -> str:
        return f"{self.tokens} tokens" + (f", ${self.cost:.4f}" if self.cost else "")


class _View:
    """No events shown: the status line and the answer at the end (`run` without --follow)."""

    def __init__(self, answers: bool = False) -> None:
        self.trackers: dict[int, _Tracker] = {}
        self.answers = answers

    def event(self, event: Event) -> None:
        tracker = self.trackers.get(event.task_id)
        if tracker is None:
            tracker = self.trackers[event.task_id] = _Tracker(event.task_id)
        tracker.add(event)
        self.show(event)

    def show(self, event: Event) -> None:
        pass

    def close(self) -> None:
        pass


class _JsonView(_View):
    def show(self, event: Event) -> None:
        print(json.dumps(event.model_dump(mode="json"), ensure_ascii=False), flush=True)


class _PlainView(_View):
    """One line per event; streamed text as it comes, on the member's line."""

    def __init__(self, out: IO[str] | None = None, prefix: bool = False) -> None:
        super().__init__()
        self.out = out or sys.stdout
        self.prefix = prefix  # several tasks at once: each line says which
        self._open: int | None = None  # the subtask whose streamed text the current line holds
        self._streamed: set[int | None] = set()

    def show(self, event: Event) -> None:
        if event.type == "text.delta":
            if self._open != event.subtask_id:
                self._end_line()
                self.out.write(self._lead(event) + f"{_who(event.member)}: ")
                self._open = event.subtask_id
                self._streamed.add(event.subtask_id)
            self.out.write(str(getattr(event, "text", "")).replace("\n", "\n  "))
            self.out.flush()
            return
        line = event_line(event, streamed=event.subtask_id in self._streamed)
        if line is not None:
            self._end_line()
            print(self._lead(event) + line, file=self.out, flush=True)

    def _lead(self, event: Event) -> str:
        return f"[task {event.task_id}] " if self.prefix else ""

    def _end_line(self) -> None:
        if self._open is not None:
            self.out.write("\n")
            self._open = None

    def close(self) -> None:
        self._end_line()
        self.out.flush()


def event_line(event: Event, streamed: bool = False) -> str | None:
    """An event as one line of text (None: not shown; `streamed`: its message's text was shown as it came)."""
    data = event.model_dump(mode="json", exclude={"type", "seq", "task_id", "subtask_id", "at", "member"})
    who, kind = _who(event.member), event.type
    if kind == "message":  # continuation lines indented, as streamed text is
        text = data["text"].replace("\n", "\n  ")
        if data["role"] == "USER":
            return f"user: {text}"
        return None if streamed else f"{who}: {text}"
    if kind == "task.status":
        return f"task {event.task_id}: {data['status']}" + (f": {data['error']}" if data.get("error") else "")
    if kind == "subtask.status":
        if data.get("role") != "ASSISTANT":
            return None
        stage = f" (stage {data['stage']})" if data.get("stage") is not None else ""
        return f"{who}{stage}: {data['status']}" + (f": {data['error']}" if data.get("error") else "")
    if kind == "thinking":
        return f"{who} (thinking): {_short(data['text'])}"
    if kind == "tool.call":
        return f"{who} -> {data['name']}({_short(json.dumps(data.get('arguments') or {}, ensure_ascii=False))})"
    if kind == "tool.result":
        return f"{who} <- {data['name']}: {_short(data['output'])}" + (" (error)" if data.get("is_error") else "")
    if kind == "handoff":
        source = _who(data.get("source")) if data.get("source") else "user"
        return f"handoff: {source} -> {_who(data['target'])} ({data.get('reason') or 'handoff'})"
    if kind == "confirmation.request":
        return f"stage {data['stage']} is done; waiting for a confirmation to start stage {data['next_stage']}"
    if kind == "usage":
        return None
    if kind == "error":
        retry = f", attempt {data['attempt']}, retrying" if data.get("retryable") and data.get("attempt") else ""
        return f"error: {data['message']} ({data.get('code', 'error')}{retry})"
    if kind == "task.resumed":
        rerun = f", running message {', '.join(map(str, data['rerun']))} again" if data.get("rerun") else ""
        return f"task {event.task_id}: resumed by process {data['pid']}{rerun}"
    return f"{kind}: {_short(json.dumps(data, ensure_ascii=False, default=str))}"


class _LiveView(_View):
    """A live view on a terminal: each member with its status, streamed text and tool calls, and a progress bar per
    pipeline stage. It stays on screen when the task rests; the full answer follows it."""

    def __init__(self, plans: dict[int, Any]) -> None:
        from rich.console import Console
        from rich.live import Live

        super().__init__(answers=True)
        self.plans = plans
        self.started = time.monotonic()
        self.console = Console()
        for task_id, plan in plans.items():  # every member from the start, in member order
            tracker = self.trackers[task_id] = _Tracker(task_id)
            for member in plan.members if plan else ():
                stage = member.index if plan.collaboration_model == "pipeline" else None
                tracker.member(member.bot).stage = stage
        self.live = Live(console=self.console, get_renderable=self.render, refresh_per_second=8, transient=False)
        self.live.start()

    def show(self, event: Event) -> None:
        pass  # the view renders the trackers at its own pace

    def close(self) -> None:
        self.live.refresh()
        self.live.stop()

    def render(self) -> Any:
        from rich.console import Group

        parts: list[Any] = []
        for task_id, tracker in self.trackers.items():
            parts += self._task(task_id, tracker)
        return Group(*parts)

    def _task(self, task_id: int, tracker: _Tracker) -> list[Any]:
        from rich.panel import Panel
        from rich.progress_bar import ProgressBar
        from rich.spinner import Spinner
        from rich.table import Table
        from rich.text import Text

        plan = self.plans.get(task_id)
        status = tracker.status or "PENDING"
        head = Text.assemble(
            (f"task {task_id}", "bold"),
            f"  {plan.team}" if plan else "",
            "  ",
            (status, _STYLES.get(status, "")),
            f"  {tracker.usage()}" if tracker.tokens else "",
            f"  {time.monotonic() - self.started:.0f}s",
        )
        parts: list[Any] = [Spinner("dots", head) if status in ("PENDING", "RUNNING", "CANCELLING") else head]
        if plan is not None and plan.collaboration_model == "pipeline":
            stages = Table.grid(padding=(0, 2))
            for member in plan.members:
                state = tracker.stages.get(member.index, "waiting")
                done = state in ("COMPLETED", "PENDING_CONFIRMATION")
                bar = ProgressBar(100, 100 if done else 0, width=30, pulse=state == "RUNNING", finished_style="green")
                label = "done, waiting for a confirmation" if state == "PENDING_CONFIRMATION" else state
                stages.add_row(f"stage {member.index}", _who(member.bot), bar, Text(label, _STYLES.get(state, "")))
            parts.append(stages)
        for member in tracker.members.values():
            body: list[Any] = [Text(line, style) for style, line in member.tools[-TOOL_TAIL:]]
            if member.thinking:
                body.insert(0, Text(_short(member.thinking, 120), "dim italic"))
            lines = member.text.splitlines()
            if lines:
                body.append(Text("\n".join(lines[-TEXT_TAIL:])))
            title = Text.assemble((_who(member.bot), "bold"), " ", (member.status, _STYLES.get(member.status, "")))
            if member.stage is not None:
                title.append(f" (stage {member.stage})")
            border = _STYLES.get(member.status, "dim")
            parts.append(Panel(_group(body), title=title, title_align="left", border_style=border))
        if tracker.error:
            parts.append(Text(f"error: {tracker.error}", "red"))
        return parts


_STYLES = {
    "RUNNING": "yellow",
    "COMPLETED": "green",
    "FAILED": "red",
    "CANCELLED": "magenta",
    "CANCELLING": "magenta",
    "PENDING_CONFIRMATION": "cyan",
}


def _group(parts: list[Any]) -> Any:
    from rich.console import Group
    from rich.text import Text

    return Group(*parts) if parts else Text("...", "dim")


# --- logs ---------------------------------------------------------------------------------------------------------


def logs(args: argparse.Namespace) -> int:
    """The task's events from the store; with --follow, the new ones as they are written, until the task rests."""
    from wegent_core._engine import runner_alive

    from ._store_commands import opened_store

    as_json = args.output == "json"
    view: _View = _JsonView() if as_json else _PlainView()
    try:
        with opened_store(args.store) as store:
            record = find_task(store, args.task)
            after = 0
            while True:
                for item in store.events(record.id, after):
                    after = item.seq
                    view.event(event_from_record(item))
                if not args.follow:
                    break
                record = store.get_task(record.id)
                if record.status in REST and not store.events(record.id, after, 1):
                    break
                if record.status in UNFINISHED and not runner_alive(record):
                    view.close()
                    print(
                        f"{_label(record)} is {record.status} but the process running it is gone: "
                        f"`wegent resume {record.id}` carries it on",
                        file=sys.stderr,
                    )
                    return 1
                time.sleep(POLL_INTERVAL)
    except WegentError as exc:
        view.close()
        return _fail(exc, as_json)
    view.close()
    return 0


# --- cancel -------------------------------------------------------------------------------------------------------


def cancel(args: argparse.Namespace) -> int:
    async def body(wg: Any) -> int:
        record = await _db(wg, find_task, wg.store, args.task)
        status = await wg.engine.cancel(record.id)
        if args.output == "json":
            _print_json({"id": record.id, "name": record.name, "status": str(status)})
        else:
            print(f"{_label(record)}: {status}")
        return 0

    return _session(args, body)


# --- get tasks, describe task -------------------------------------------------------------------------------------


def get_tasks(args: argparse.Namespace) -> int:
    """`wegent get tasks`: task runs, newest first (or one, by id or name)."""
    from ._store_commands import opened_store

    output = args.output or ("yaml" if args.name else "table")
    namespace = None if args.all_namespaces else (args.namespace or "default")
    try:
        with opened_store(args.store) as store:
            if args.name:
                items = [find_task(store, args.name, args.namespace)]
            else:
                items = task_store(store).list_tasks(namespace)
        if args.selector and not args.name:
            from wegent_core._selectors import LabelSelector

            selector = LabelSelector.parse(args.selector)
            items = [record for record in items if selector.matches(record.labels)]
    except WegentError as exc:
        return _report_error(exc, output == "json")
    if output in ("table", "wide"):
        if not items:
            where = f" in namespace '{namespace}'" if namespace else ""
            print(f"No tasks found{where}.", file=sys.stderr)
        else:
            print(tasks_table(items, wide=output == "wide", namespaces=namespace is None))
        return 0
    data: Any = _record(items[0]) if args.name else {"items": [_record(r) for r in items]}
    if output == "json":
        _print_json(data)
    else:
        print(_yaml(data), end="")
    return 0


def _record(record: TaskRecord | SubtaskRecord) -> dict[str, Any]:
    return record.model_dump(mode="json")


def tasks_table(items: list[TaskRecord], wide: bool = False, namespaces: bool = False) -> str:
    from ._store_commands import _age, _columns

    now = datetime.now(UTC)
    header = ["ID", "NAME", *(["NAMESPACE"] if namespaces else []), "TEAM", "STATUS", "STAGE", "AGE"]
    header += ["PROGRESS", "TITLE"] if wide else []
    rows = []
    for r in items:
        row = [r.id, r.name, *([r.namespace] if namespaces else []), _team(r), r.status.value, r.current_stage]
        row.append(_age(r.created_at, now))
        row += [f"{r.progress}%", r.title] if wide else []
        rows.append(row)
    return _columns([header, *rows])


def _team(record: TaskRecord) -> str:
    namespace, _, name = record.team.rpartition("/")
    return name if namespace in ("", record.namespace) else record.team


def describe_task(args: argparse.Namespace) -> int:
    """`wegent describe task`: the record and its subtasks (one per message)."""
    from ._store_commands import opened_store

    as_json = args.output == "json"
    try:
        with opened_store(args.store) as store:
            record = find_task(store, args.name, args.namespace)
            subtasks = store.subtasks(record.id)
    except WegentError as exc:
        return _report_error(exc, as_json)
    if as_json:
        _print_json({"task": _record(record), "subtasks": [_record(s) for s in subtasks]})
    else:
        print(describe_text(record, subtasks))
    return 0


def describe_text(record: TaskRecord, subtasks: list[SubtaskRecord]) -> str:
    from ._store_commands import _columns, _indented, _joined, _when

    now = datetime.now(UTC)
    runner = record.spec.get("runner") or {}
    head = [
        ("ID", record.id),
        ("Name", record.name),
        ("Namespace", record.namespace),
        ("Team", record.team),
        ("Title", record.title),
        ("Status", record.status.value),
        ("Stage", record.current_stage),
        ("Progress", f"{record.progress}%"),
        ("Labels", _joined(f"{k}={v}" for k, v in sorted(record.labels.items())) or NONE),
        ("Runner", f"process {runner.get('pid')} on {runner.get('host')}" if runner else NONE),
        ("Created", _when(record.created_at, now)),
        ("Updated", _when(record.updated_at, now)),
        ("Completed", _when(record.completed_at, now)),
        ("Error", record.error_message),
    ]
    lines = _aligned((k, v) for k, v in head if v not in (None, ""))
    lines += ["Prompt:", *_indented(record.prompt or NONE)]
    answer = (record.result or {}).get("value")
    if answer:
        lines += ["Result:", *_indented(str(answer))]
    lines.append("Subtasks:")
    rows: list[list[Any]] = [["MESSAGE", "PARENT", "ROLE", "BOT", "STAGE", "STATUS", "ERROR"]]
    for sub in subtasks:
        rows.append([sub.message_id, sub.parent_id, sub.role, sub.bot, sub.stage, sub.status.value, sub.error_message])
    if not any(sub.error_message for sub in subtasks):
        rows = [row[:-1] for row in rows]
    lines += [f"  {line}" for line in _columns(rows).splitlines()] if subtasks else [f"  {NONE}"]
    return "\n".join(lines)
