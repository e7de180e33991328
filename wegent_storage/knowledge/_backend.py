"""The knowledge backend interface: what a plugin registered with `register_knowledge_backends` provides.

A backend holds the chunks of one knowledge base (one collection) with their vectors and metadata. It is synchronous:
callers in async code run it in a worker thread (ingestion and the search tool do). It is given an `Embedder` and
embeds texts itself, so a backend with server-side embeddings may ignore it.

    @hookimpl
    def register_knowledge_backends(register):
        register("mydb", MyBackend.open, description="...")   # open(BackendConfig) -> KnowledgeBackend

Metadata filters (`where`) use the chromadb subset every backend must understand: `{"key": value}` (equality),
`{"key": {"$eq"|"$ne"|"$in"|"$nin"|"$gt"|"$gte"|"$lt"|"$lte": ...}}`, and `{"$and": [...]}` / `{"$or": [...]}`.
Metadata values are str, int, float or bool.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

Metadata = dict[str, str | int | float | bool]
Where = Mapping[str, Any]


@runtime_checkable
class Embedder(Protocol):
    """Texts to vectors. `name()` is stored with the collection: a reopened index must use the same embedding."""

    def __call__(self, input: Sequence[str]) -> Sequence[Sequence[float]]: ...

    @staticmethod
    def name() -> str: ...


@dataclass(frozen=True, slots=True)
class ChunkRecord:
    """A chunk to store: its id, its text, and its metadata (source, location, content hashes, ...)."""

    id: str
    text: str
    metadata: Metadata


@dataclass(frozen=True, slots=True)
class Hit:
    """A chunk a query found, with its similarity `score` (cosine similarity: 1 is the same direction)."""

    id: str
    text: str
    metadata: Metadata
    score: float


@dataclass(frozen=True, slots=True)
class BackendConfig:
    """Everything a backend factory is given. `path` is a directory (embedded, persistent), `url` a server; with
    neither, the backend keeps its data under `data_dir`."""

    collection: str
    embedder: Embedder
    path: Path | None = None
    url: str | None = None
    data_dir: Path | None = None
    options: Mapping[str, Any] = field(default_factory=dict)


@runtime_checkable
class KnowledgeBackend(Protocol):
    def add(self, chunks: Sequence[ChunkRecord]) -> None:
        """Store chunks (an id that exists is replaced)."""
        ...

    def delete(self, *, ids: Sequence[str] | None = None, where: Where | None = None) -> int:
        """Remove chunks by id or by metadata filter; how many were removed."""
        ...

    def query(self, text: str, *, k: int = 5, where: Where | None = None) -> list[Hit]:
        """The `k` chunks most similar to `text` (among those matching `where`), best first."""
        ...

    def get(self, *, where: Where | None = None, limit: int | None = None) -> list[ChunkRecord]:
        """Chunks matching `where` (all if None), without vectors."""
        ...

    def count(self, where: Where | None = None) -> int:
        """How many chunks (matching `where`)."""
        ...

    def persist(self) -> None:
        """Make what was added durable (a no-op for backends that write through)."""
        ...

    def drop(self) -> None:
        """Remove the whole collection."""
        ...

    def close(self) -> None: ...
