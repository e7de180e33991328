"""`wegent kb add|query|docs|remove`: knowledge bases from the command line (KnowledgeBase resources of the store).

`kb_parsers(commands)` adds the parsers; the handlers import the knowledge package (chromadb, onnxruntime) only when
they run, so `wegent --help` stays fast.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

OUTPUTS = ("text", "json")


def kb_parsers(commands: Any) -> None:
    kb = commands.add_parser(
        "kb",
        help="ingest documents into knowledge bases and query them",
        description="Ingest documents into knowledge bases and query them (KnowledgeBase resources of the store).",
    )
    sub = kb.add_subparsers(dest="kb_command", metavar="COMMAND", required=True)
    add = _sub(
        sub, "add", kb_add, "ingest files and folders (text, Markdown, HTML, PDF)", "wegent kb add handbook docs/"
    )
    add.add_argument("paths", nargs="*", metavar="PATH", help="files and folders (default: the spec's documents)")
    add.add_argument("--no-progress", action="store_true", help="no progress bar")
    query = _sub(
        sub, "query", kb_query, "search a knowledge base", "wegent kb query handbook 'how many vacation days?'"
    )
    query.add_argument("text", metavar="TEXT", help="the question or phrase")
    query.add_argument("-k", type=int, default=None, metavar="N", help="how many passages (default: the KB's topK)")
    _sub(sub, "docs", kb_docs, "list the documents of a knowledge base", "wegent kb docs handbook")
    remove = _sub(sub, "remove", kb_remove, "remove documents from a knowledge base", "wegent kb remove handbook a.md")
    remove.add_argument("paths", nargs="+", metavar="PATH", help="documents, as they were added")


def _sub(sub: Any, name: str, handler: Any, summary: str, example: str) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = sub.add_parser(
        name, help=summary, description=summary[0].upper() + summary[1:] + ".", epilog=f"example: {example}"
    )
    parser.add_argument("kb", metavar="KB", help="the KnowledgeBase's name")
    parser.add_argument("-n", "--namespace", default="default", help="its namespace (default: default)")
    parser.add_argument("-o", "--output", choices=OUTPUTS, default="text", help="output format (default: text)")
    parser.add_argument(
        "--store", metavar="URL", help="the resource store (default: $WEGENT_STORE, else the embedded SQLite file)"
    )
    parser.set_defaults(handler=_guarded(handler))
    return parser


def _guarded(handler: Any) -> Any:
    def run(args: argparse.Namespace) -> int:
        from wegent_core import WegentError

        try:
            return handler(args)
        except WegentError as error:
            print(f"error: {error}", file=sys.stderr)
            return 1

    return run


def _service(plugins: Any) -> Any:
    """The knowledge plugin's service (open, start_ingestion): wegent_server reaches wegent_storage through plugins."""
    from wegent_core import PluginError

    registration = plugins.toolkits.get("knowledge")
    if registration is None or not callable(getattr(registration.factory, "open", None)):
        raise PluginError("knowledge bases need the knowledge plugin: pip install 'wegent[knowledge]'")
    return registration.factory


def _open(args: argparse.Namespace) -> tuple[Any, Any]:
    """(the KnowledgeBase's plan, its open Knowledge); the plugin's service is kept in `args.service`."""
    from wegent_core import resolve_knowledge_base

    from ._store_commands import _plugins, opened_store

    plugins = _plugins()
    args.service = _service(plugins)
    with opened_store(args.store) as store:
        plan = resolve_knowledge_base(store, args.kb, args.namespace)
        documents = store.get("KnowledgeBase", plan.name, plan.namespace).spec.documents
    args.default_paths = documents
    return plan, args.service.open(plan, plugins)


def kb_add(args: argparse.Namespace) -> int:
    _, knowledge = _open(args)
    start_ingestion = args.service.start_ingestion
    paths = args.paths or args.default_paths
    if not paths:
        print(f"error: give paths to add (the KnowledgeBase {args.kb} lists no documents)", file=sys.stderr)
        return 2
    began = time.perf_counter()
    if args.no_progress or args.output == "json" or not sys.stderr.isatty():
        report = start_ingestion(knowledge, paths).result()
    else:
        report = _with_progress_bar(start_ingestion, knowledge, paths)
    seconds = time.perf_counter() - began
    for path, reason in report.skipped:
        print(f"skipped {path}: {reason}", file=sys.stderr)
    if args.output == "json":
        _print_json({**_report_data(report), "seconds": round(seconds, 3), "total_chunks": knowledge.count()})
    else:
        print(
            f"{args.kb}: {len(report.added)} added, {len(report.replaced)} replaced, "
            f"{len(report.unchanged)} unchanged, {len(report.duplicates)} duplicate, {len(report.skipped)} skipped; "
            f"{report.chunks} chunks stored "
            f"in {seconds:.1f}s ({knowledge.count()} in all)"
        )
    return 1 if report.skipped else 0


def _with_progress_bar(start_ingestion: Any, knowledge: Any, paths: list[str]) -> Any:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, transient=True, console=_stderr_console()) as bar:
        task = bar.add_task("ingesting", total=None)

        def update(progress: Any) -> None:
            bar.update(
                task,
                completed=progress.files_done,
                total=progress.files_total,
                description=f"ingesting ({progress.chunks_added} chunks)",
            )

        job = start_ingestion(knowledge, paths, update)
        try:
            while not job.done:
                time.sleep(0.1)
        except KeyboardInterrupt:
            job.cancel()
        return job.result()


def _stderr_console() -> Any:
    from rich.console import Console

    return Console(stderr=True)


def kb_query(args: argparse.Namespace) -> int:
    plan, knowledge = _open(args)
    hits = knowledge.search(args.text, k=args.k)
    if args.output == "json":
        _print_json({"knowledge_base": plan.key, "hits": [_hit_data(h) for h in hits]})
        return 0
    if not hits:
        print("no passages found")
    for ref, hit in enumerate(hits, start=1):
        meta = hit.metadata
        print(f"[{ref}] {meta.get('source')} ({meta.get('location')}), score {hit.score:.3f}")
        print("    " + " ".join(hit.text.split())[:400])
    return 0


def kb_docs(args: argparse.Namespace) -> int:
    _, knowledge = _open(args)
    documents = knowledge.documents()
    if args.output == "json":
        _print_json({"documents": [{"source": s, "chunks": n} for s, n in documents.items()]})
    else:
        for source, chunks in documents.items():
            print(f"{chunks:6d}  {source}")
    return 0


def kb_remove(args: argparse.Namespace) -> int:
    _, knowledge = _open(args)
    removed = {path: knowledge.remove(path) for path in args.paths}
    if args.output == "json":
        _print_json({"removed": removed})
    else:
        for path, chunks in removed.items():
            print(f"{path}: {chunks} chunks removed" if chunks else f"{path}: not in {args.kb}")
    return 0 if all(removed.values()) else 1


def _report_data(report: Any) -> dict[str, Any]:
    return {
        "added": report.added,
        "replaced": report.replaced,
        "unchanged": report.unchanged,
        "duplicates": [{"source": s, "same_as": t} for s, t in report.duplicates],
        "skipped": [{"path": p, "reason": r} for p, r in report.skipped],
        "chunks": report.chunks,
    }


def _hit_data(hit: Any) -> dict[str, Any]:
    return {"id": hit.id, "score": round(hit.score, 4), "text": hit.text, "metadata": hit.metadata}


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False))
