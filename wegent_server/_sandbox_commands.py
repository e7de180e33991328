"""`wegent image build` and `wegent gc`: the sandbox images and the leftover sandboxes of the docker and podman
providers, reached through the plugins (`register_sandboxes`). Imported only when one of them runs."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Mapping
from typing import Any

from ._cli import _print_json


def _engines(choice: str) -> list[str]:
    return ["docker", "podman"] if choice == "all" else [choice]


def _provider(engine: str, options: Mapping[str, Any]) -> Any:
    from ._store_commands import _plugins

    return _plugins().sandboxes[engine].factory(options)


def image_build(args: argparse.Namespace) -> int:
    as_json = args.output == "json"
    log = None if as_json else (lambda message: print(message, file=sys.stderr))
    results, failed = [], []
    for engine in _engines(args.engine):
        try:
            provider = _provider(engine, {"reap_at_start": False})
            if not callable(getattr(provider, "build_image", None)):
                raise ValueError(f"the {engine} sandbox builds no images")
            results.append(provider.build_image(args.base, args.tag, force=args.force, log=log))
        except Exception as exc:  # an engine that is not there must not hide the other's result
            failed.append({"engine": engine, "error": str(exc)})
            print(f"error: {engine}: {exc}", file=sys.stderr)
    if as_json:
        _print_json({"images": [_image_json(result) for result in results], "failed": failed})
    else:
        for result in results:
            state = "built" if result.built else "up to date"
            print(f"{result.engine}\t{result.tag}\t{result.image_id[:19]}\t{state} ({result.seconds:.1f}s)")
    return 1 if failed else 0


def _image_json(result: Any) -> dict[str, Any]:
    return {
        "engine": result.engine,
        "base": result.base,
        "tag": result.tag,
        "hashed_tag": result.hashed_tag,
        "image_id": result.image_id,
        "built": result.built,
        "seconds": round(result.seconds, 3),
    }


def gc(args: argparse.Namespace) -> int:
    """Remove leftover sandbox containers: their owner process is gone on this host, or (not preserved) their task
    is finished in the store. Preserved ones stay unless --include-preserved."""
    import anyio

    as_json = args.output == "json"
    finished = _finished_tasks(args.store)
    report: dict[str, Any] = {}
    errors = 0
    for engine in _engines(args.engine):
        try:
            report[engine] = anyio.run(_gc_engine, engine, args, finished)
        except Exception as exc:  # an engine that is not running has nothing to collect; say so, go on
            errors += 1
            report[engine] = {"error": str(exc)}
    if as_json:
        _print_json(report)
    else:
        for engine, result in report.items():
            if "error" in result:
                print(f"{engine}: {result['error']}", file=sys.stderr)
            else:
                verb = "would remove" if args.dry_run else "removed"
                print(f"{engine}: {verb} {result['removed']} leftover container(s), kept {result['kept']}")
    return 1 if errors == len(report) else 0


async def _gc_engine(engine: str, args: argparse.Namespace, finished: Callable[[str], bool]) -> dict[str, Any]:
    from wegent_core._sandbox import LABEL_OWNER, LABEL_PRESERVE, LABEL_TASK, owner_alive

    options = {"reap_at_start": False, **({"base_url": args.url} if args.url else {})}
    provider = _provider(engine, options)
    seen: list[Mapping[str, str]] = []

    def leftover(labels: Mapping[str, str]) -> bool:
        if labels.get(LABEL_PRESERVE) == "true" and not args.include_preserved:
            return False
        return owner_alive(labels.get(LABEL_OWNER, "")) is False or finished(labels.get(LABEL_TASK, ""))

    def keep(labels: Mapping[str, str]) -> bool:
        seen.append(labels)
        return args.dry_run or not leftover(labels)

    try:
        removed = await provider.reap(keep)
    finally:
        if callable(getattr(provider, "aclose", None)):
            await provider.aclose()
    would = sum(1 for labels in seen if leftover(labels))
    return {"removed": would if args.dry_run else removed, "kept": len(seen) - would, "dry_run": args.dry_run}


def _finished_tasks(url: str | None) -> Callable[[str], bool]:
    """Whether a `wegent.task` label names a finished task of the store (False when there is no store to ask)."""
    from wegent_core._lifecycle import FINISHED

    from ._store_commands import opened_store

    statuses: set[str] = set()
    try:
        with opened_store(url) as store:
            if callable(getattr(store, "list_tasks", None)):
                for status in FINISHED:
                    statuses.update(str(record.id) for record in store.list_tasks(None, status))
    except Exception as exc:  # no store, or a store that keeps no tasks: the owner rule still applies
        print(
            f"warning: cannot read the tasks of the store ({exc}): only containers of dead processes are collected",
            file=sys.stderr,
        )
    return lambda task: task in statuses
