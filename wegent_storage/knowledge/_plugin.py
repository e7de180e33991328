"""The knowledge plugin: the chromadb backend and the `knowledge_search` toolkit.

Its entry point is `knowledge = "wegent_storage.knowledge._plugin"` in the `wegent` group. It imports nothing heavy:
chromadb, onnxruntime and the document parsers load when a knowledge base is opened.
"""

from __future__ import annotations

from typing import Any

from wegent_core import MemberKit, hookimpl
from wegent_core._hookspecs import Register


def open_chromadb(config: Any) -> Any:
    from ._chroma import ChromaBackend

    return ChromaBackend.open(config)


class KnowledgeToolkit:
    """The `knowledge` toolkit's registration. Called with a member's kit, it gives the member `knowledge_search`;
    `open` and `start_ingestion` are how wegent_server (which reaches wegent_storage only through plugins) and host
    applications open a knowledge base and ingest into it."""

    async def __call__(self, kit: MemberKit) -> None:
        if not kit.member.knowledge_bases and not kit.member.missing_knowledge_bases:
            return  # most members have none: do not import the toolkit's module for them
        from ._toolkit import knowledge_toolkit

        await knowledge_toolkit(kit)

    def open(self, plan: Any, plugins: Any = None) -> Any:
        """A `Knowledge` on the plan's index (`KnowledgeBasePlan`, from `resolve_knowledge_base`)."""
        from ._knowledge import Knowledge

        return Knowledge.open(plan, plugins=plugins)

    def start_ingestion(self, knowledge: Any, paths: Any, progress: Any = None) -> Any:
        """An `IngestionJob` running in the background (see `_jobs`)."""
        from ._jobs import start_ingestion

        return start_ingestion(knowledge, paths, progress=progress)


knowledge_toolkit = KnowledgeToolkit()


@hookimpl
def register_knowledge_backends(register: Register) -> None:
    register(
        "chromadb",
        open_chromadb,
        description="chromadb: a persistent directory (default: <data dir>/knowledge/chromadb) or a server URL",
    )


@hookimpl
def register_toolkits(register: Register) -> None:
    register("knowledge", knowledge_toolkit, description="knowledge_search over the member's knowledge bases")
