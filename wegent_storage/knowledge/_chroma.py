"""The chromadb knowledge backend: an embedded persistent index (a directory) or a chromadb server (a URL).

chromadb is imported when a backend is opened, never before (`wegent --help` and `Plugins.load()` stay fast and work
without the `knowledge` extra). One client per directory or URL is shared by the knowledge bases of a process, since
chromadb keeps one system per path anyway.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from wegent_core import PluginError

from ._backend import BackendConfig, ChunkRecord, Hit, Where
from ._embedding import EXTRA_HINT, quiet_chromadb

_BATCH = 256  # chunks per add() call: progress stays fine-grained and far below chromadb's own batch limit
_lock = threading.Lock()


def _chromadb() -> Any:
    quiet_chromadb()
    try:
        import chromadb
    except ImportError as error:
        raise PluginError(f"the chromadb knowledge backend needs chromadb: {EXTRA_HINT} ({error})") from None
    return chromadb


@functools.cache
def _client(path: str | None, url: str | None) -> Any:
    chromadb = _chromadb()
    settings = chromadb.Settings(anonymized_telemetry=False)
    if url:
        parsed = urlparse(url)
        ssl = parsed.scheme == "https"
        port = parsed.port or (443 if ssl else 8000)
        return chromadb.HttpClient(host=parsed.hostname or "localhost", port=port, ssl=ssl, settings=settings)
    assert path is not None
    Path(path).mkdir(parents=True, exist_ok=True)
    return chromadb.PersistentClient(path=path, settings=settings)


class ChromaBackend:
    """A `KnowledgeBackend` on one chromadb collection (cosine space)."""

    def __init__(self, config: BackendConfig) -> None:
        self.config = config
        if config.url:
            where = None
        elif config.path is not None:
            where = str(Path(config.path).expanduser().resolve())
        elif config.data_dir is not None:
            where = str((config.data_dir / "knowledge" / "chromadb").resolve())
        else:
            raise PluginError("the chromadb backend needs a path, a url, or a data directory")
        self.location = config.url or where
        with _lock:  # chromadb's client cache is not safe to fill from two threads at once
            self.client = _client(where, config.url)
            self.collection = self.client.get_or_create_collection(
                config.collection,
                embedding_function=config.embedder,
                configuration={"hnsw": {"space": "cosine"}},
            )

    @classmethod
    def open(cls, config: BackendConfig) -> ChromaBackend:
        return cls(config)

    def add(self, chunks: Sequence[ChunkRecord]) -> None:
        for start in range(0, len(chunks), _BATCH):
            batch = chunks[start : start + _BATCH]
            self.collection.upsert(
                ids=[c.id for c in batch],
                documents=[c.text for c in batch],
                metadatas=[dict(c.metadata) for c in batch],
            )

    def delete(self, *, ids: Sequence[str] | None = None, where: Where | None = None) -> int:
        if ids is None and where is None:
            raise ValueError("delete needs ids or a where filter (use drop() to remove everything)")
        found = self.collection.get(ids=list(ids) if ids is not None else None, where=_where(where), include=[])
        doomed = found["ids"]
        if doomed:
            self.collection.delete(ids=doomed)
        return len(doomed)

    def query(self, text: str, *, k: int = 5, where: Where | None = None) -> list[Hit]:
        result = self.collection.query(
            query_texts=[text],
            n_results=max(1, k),
            where=_where(where),
            include=["documents", "metadatas", "distances"],
        )
        ids, docs = result["ids"][0], result["documents"][0]
        metas, distances = result["metadatas"][0], result["distances"][0]
        return [
            Hit(id=i, text=d or "", metadata=dict(m or {}), score=1.0 - float(dist))
            for i, d, m, dist in zip(ids, docs, metas, distances, strict=True)
        ]

    def get(self, *, where: Where | None = None, limit: int | None = None) -> list[ChunkRecord]:
        found = self.collection.get(where=_where(where), limit=limit, include=["documents", "metadatas"])
        return [
            ChunkRecord(id=i, text=d or "", metadata=dict(m or {}))
            for i, d, m in zip(found["ids"], found["documents"], found["metadatas"], strict=True)
        ]

    def count(self, where: Where | None = None) -> int:
        if where is None:
            return int(self.collection.count())
        return len(self.collection.get(where=_where(where), include=[])["ids"])

    def persist(self) -> None:
        pass  # chromadb's persistent client and its server write through: nothing is held back

    def drop(self) -> None:
        self.client.delete_collection(self.config.collection)

    def close(self) -> None:
        pass  # the client is shared by every knowledge base at the same location; it lives as long as the process

    def __repr__(self) -> str:
        return f"<chromadb {self.config.collection} at {self.location}>"


def _where(where: Where | None) -> dict[str, Any] | None:
    # chromadb refuses an empty filter; `{}` means "everything" to our callers.
    return dict(where) if where else None
