"""Knowledge bases: documents chunked, embedded (offline by default) and indexed in a knowledge backend (chromadb
built in), searched by members through the `knowledge_search` tool. See docs/knowledge.md.

Names are imported on first use: the plugin module is imported by every `Plugins.load()` and must not pull in
chromadb, onnxruntime or the document parsers.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "BackendConfig": "._backend",
    "ChunkRecord": "._backend",
    "Embedder": "._backend",
    "Hit": "._backend",
    "KnowledgeBackend": "._backend",
    "ChromaBackend": "._chroma",
    "Piece": "._chunking",
    "chunk_text": "._chunking",
    "OFFLINE_NAME": "._embedding",
    "model_embedder": "._embedding",
    "offline_embedder": "._embedding",
    "IngestionJob": "._jobs",
    "ingest_async": "._jobs",
    "start_ingestion": "._jobs",
    "IngestProgress": "._knowledge",
    "IngestReport": "._knowledge",
    "Knowledge": "._knowledge",
    "collection_name": "._knowledge",
    "source_of": "._knowledge",
    "UnreadableDocument": "._readers",
    "read_document": "._readers",
    "open_knowledge": "._toolkit",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(_EXPORTS[name], __name__), name)
