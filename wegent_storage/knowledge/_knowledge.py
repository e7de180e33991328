"""An open knowledge base: ingestion (chunking, dedup, replacement of changed files) and search.

Identity of a document: its absolute path (`source`). Each chunk carries `source`, `doc_hash` (sha256 of the file's
bytes), `chunk` (its index), `start`/`end` (character offsets), `location` ("lines 3-17", "page 2, lines 1-9") and
`title` (the file name).

* A file whose hash is already stored for its source is unchanged: nothing is embedded again.
* A changed file is replaced: its new chunks are stored first, then the old version's chunks are deleted, so a
  failure in between never leaves the source with nothing.
* A file with the same content as another stored (or earlier in the same run) is a duplicate: it is reported and
  not stored twice. Identical chunks within one document are stored once.
* A file that is unsupported, unreadable, or has no text is reported by name and skipped; nothing else changes.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wegent_core import KnowledgeBasePlan, Plugins, data_dir

from ._backend import BackendConfig, ChunkRecord, Hit, KnowledgeBackend, Where
from ._chunking import chunk_text, line_of
from ._embedding import model_embedder, offline_embedder
from ._readers import UnreadableDocument, is_supported, read_document

_FLUSH = 128  # chunks embedded and stored together: batching is most of the ingestion speed


@dataclass(frozen=True, slots=True)
class IngestProgress:
    files_done: int
    files_total: int
    chunks_added: int
    current: str | None = None


Progress = Callable[[IngestProgress], None]


@dataclass(slots=True)
class IngestReport:
    added: list[str] = field(default_factory=list)  # new sources
    replaced: list[str] = field(default_factory=list)  # changed sources, old chunks removed
    unchanged: list[str] = field(default_factory=list)
    duplicates: list[tuple[str, str]] = field(default_factory=list)  # (source, the source with the same content)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    chunks: int = 0  # chunks stored by this run
    cancelled: bool = False

    @property
    def ok(self) -> bool:
        return not self.skipped and not self.cancelled


@dataclass(slots=True)
class _Pending:
    chunks: list[ChunkRecord] = field(default_factory=list)
    stale: list[tuple[str, str]] = field(default_factory=list)  # (source, new hash): old versions to delete


class Knowledge:
    """One knowledge base, open on its backend. Thread-safe for one writer and many readers."""

    def __init__(self, plan: KnowledgeBasePlan, backend: KnowledgeBackend) -> None:
        self.plan = plan
        self.backend = backend
        self._write = threading.Lock()

    @classmethod
    def open(
        cls,
        plan: KnowledgeBasePlan,
        *,
        plugins: Plugins | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> Knowledge:
        """Open the knowledge base's index with its embedding, through the backend plugin its spec names."""
        environ = os.environ if environ is None else environ
        embedder = offline_embedder() if plan.embedding is None else model_embedder(plan.embedding, environ)
        spec = plan.backend
        config = BackendConfig(
            collection=spec.collection or collection_name(plan.namespace, plan.name),
            embedder=embedder,
            path=Path(spec.path).expanduser() if spec.path else None,
            url=spec.url,
            data_dir=data_dir(environ),
            options=spec.options,
        )
        factory = _backend_factory(spec.type, plugins)
        return cls(plan, factory(config))

    # --- search ---------------------------------------------------------------------------------------------------

    def search(self, text: str, *, k: int | None = None, where: Where | None = None) -> list[Hit]:
        """The best chunks for `text`, best first, above the knowledge base's score threshold (if it has one), and
        inside the plan's scopes (a Task's `knowledgeBaseScopes`) if it has any."""
        if self.plan.scopes:
            allowed = sorted(s for s in self.sources() if self.plan.allows(s))
            if not allowed:
                return []
            inside = {"source": {"$in": allowed}}
            where = {"$and": [dict(where), inside]} if where else inside
        hits = self.backend.query(text, k=k or self.plan.top_k, where=where)
        threshold = self.plan.score_threshold
        return [h for h in hits if threshold is None or h.score >= threshold]

    def sources(self) -> set[str]:
        """The stored documents' sources. Read from each document's first chunk (every document has a chunk 0), so
        this costs one metadata row per document, not per chunk."""
        return {str(c.metadata.get("source", "")) for c in self.backend.get(where={"chunk": 0})}

    def count(self, where: Where | None = None) -> int:
        return self.backend.count(where)

    def documents(self) -> dict[str, int]:
        """Stored sources and their chunk counts."""
        counts: dict[str, int] = {}
        for chunk in self.backend.get():
            source = str(chunk.metadata.get("source", ""))
            counts[source] = counts.get(source, 0) + 1
        return dict(sorted(counts.items()))

    # --- writing --------------------------------------------------------------------------------------------------

    def remove(self, path: str | Path) -> int:
        """Delete a document's chunks; how many."""
        with self._write:
            return self.backend.delete(where={"source": source_of(path)})

    def ingest(
        self,
        paths: Iterable[str | Path],
        *,
        progress: Progress | None = None,
        cancelled: Callable[[], bool] | None = None,
    ) -> IngestReport:
        """Ingest files and folders (walked recursively, hidden entries skipped); see the module docstring."""
        report = IngestReport()
        files = list(expand_paths(paths, report))
        pending = _Pending()
        seen: dict[str, str] = {}  # doc hash -> source, within this run
        with self._write:
            for done, path in enumerate(files):
                if cancelled is not None and cancelled():
                    report.cancelled = True
                    break
                self._ingest_file(path, report, pending, seen)
                if len(pending.chunks) >= _FLUSH:
                    self._flush(pending, report)
                if progress is not None:
                    progress(IngestProgress(done + 1, len(files), report.chunks + len(pending.chunks), str(path)))
            self._flush(pending, report)
            self.backend.persist()
        return report

    def _ingest_file(self, path: Path, report: IngestReport, pending: _Pending, seen: dict[str, str]) -> None:
        source = source_of(path)
        try:
            data = path.read_bytes()
        except OSError as error:
            report.skipped.append((str(path), f"cannot read: {error.strerror or error}"))
            return
        digest = hashlib.sha256(data).hexdigest()
        stored = self.backend.get(where={"source": source}, limit=1)
        if stored and stored[0].metadata.get("doc_hash") == digest:
            report.unchanged.append(source)
            return
        twin = seen.get(digest) or self._source_with(digest)
        if twin is not None and twin != source:
            report.duplicates.append((source, twin))
            return
        try:
            sections = read_document(path, data)
        except UnreadableDocument as error:
            report.skipped.append((str(path), str(error)))
            return
        pending.chunks += self._chunks(source, path.name, digest, sections)
        seen[digest] = source
        if stored:
            pending.stale.append((source, digest))
            report.replaced.append(source)
        else:
            report.added.append(source)

    def _source_with(self, digest: str) -> str | None:
        found = self.backend.get(where={"doc_hash": digest}, limit=1)
        return str(found[0].metadata["source"]) if found else None

    def _chunks(self, source: str, title: str, digest: str, sections: Sequence[Any]) -> list[ChunkRecord]:
        chunking = self.plan.chunking
        records: list[ChunkRecord] = []
        texts: set[str] = set()
        for section in sections:
            for piece in chunk_text(section.text, chunking.size, chunking.overlap):
                if piece.text in texts:
                    continue  # a repeated passage (a footer on every page) is stored once
                texts.add(piece.text)
                lines = f"lines {line_of(section.text, piece.start)}-{line_of(section.text, piece.end - 1)}"
                location = f"page {section.page}, {lines}" if section.page else lines
                metadata = {
                    "source": source,
                    "title": title,
                    "doc_hash": digest,
                    "chunk": len(records),
                    "start": piece.start,
                    "end": piece.end,
                    "location": location,
                }
                if section.page:
                    metadata["page"] = section.page
                records.append(ChunkRecord(f"{digest[:24]}-{len(records)}", piece.text, metadata))
        return records

    def _flush(self, pending: _Pending, report: IngestReport) -> None:
        if pending.chunks:
            self.backend.add(pending.chunks)
            report.chunks += len(pending.chunks)
        for source, digest in pending.stale:  # only now: the new version is stored
            self.backend.delete(where={"$and": [{"source": source}, {"doc_hash": {"$ne": digest}}]})
        pending.chunks, pending.stale = [], []

    def close(self) -> None:
        self.backend.close()


# --- helpers ------------------------------------------------------------------------------------------------------


def source_of(path: str | Path) -> str:
    """A document's identity: its absolute path (so the same file from another working directory is the same)."""
    return Path(path).expanduser().absolute().as_posix()


def expand_paths(paths: Iterable[str | Path], report: IngestReport) -> Iterator[Path]:
    """Files of `paths`, folders walked in name order; missing paths and unsupported files in folders go to
    `report.skipped`. A file named explicitly is always tried (its reader reports an unsupported type)."""
    for raw in paths:
        path = Path(raw).expanduser()
        if path.is_dir():
            for child in sorted(path.rglob("*")):
                if any(part.startswith(".") for part in child.relative_to(path).parts) or not child.is_file():
                    continue
                if is_supported(child):
                    yield child
                else:
                    report.skipped.append((str(child), f"unsupported file type {child.suffix or '(none)'}"))
        elif path.is_file():
            yield path
        else:
            report.skipped.append((str(path), "no such file or folder"))


def collection_name(namespace: str, name: str) -> str:
    """A chromadb-safe collection name (3-512 characters of [a-zA-Z0-9._-], alphanumeric at both ends) that is
    unique per knowledge base: a readable part and a hash of the exact identity."""
    identity = f"{namespace}/{name}"
    readable = "".join(c if c.isascii() and (c.isalnum() or c in "._-") else "-" for c in identity.replace("/", "."))
    digest = hashlib.sha256(identity.encode()).hexdigest()[:10]
    return f"kb-{readable.strip('.-_')[:400]}-{digest}"


def _backend_factory(kind: str, plugins: Plugins | None) -> Callable[[BackendConfig], KnowledgeBackend]:
    if plugins is not None and kind in plugins.knowledge_backends:
        return plugins.knowledge_backends[kind].factory
    if kind == "chromadb":  # the built-in backend works even when the entry point is not installed
        from ._chroma import ChromaBackend

        return ChromaBackend.open
    if plugins is None:
        plugins = Plugins.load()
    return plugins.knowledge_backends[kind].factory  # raises a PluginError naming what is registered
