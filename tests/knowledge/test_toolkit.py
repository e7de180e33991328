"""Resolution of knowledge base references and the knowledge_search tool, on the real engine with a scripted model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import wegent_storage.knowledge._plugin as knowledge_plugin
from wegent_core import AsyncWegent, Citation, MemoryStore, Plugins, ResolutionError, TaskState, loads, resolve_team
from wegent_core.testing import ScriptedModel
from wegent_storage.knowledge import Knowledge

from .conftest import write_corpus

API = "agent.wecode.io/v1"
pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def docs(index: Path, *, ghost_kbs: list[str], extra: list[dict[str, Any]] = ()) -> str:  # type: ignore[assignment]
    items: list[dict[str, Any]] = [
        {"kind": "Model", "metadata": {"name": "m"}, "spec": {"protocol": "scripted", "modelConfig": {"script": []}}},
        {"kind": "Shell", "metadata": {"name": "chat"}, "spec": {"shellType": "Chat"}},
        {
            "kind": "KnowledgeBase",
            "metadata": {"name": "facts"},
            "spec": {"description": "Short facts about nature", "backend": {"path": str(index)}, "topK": 2},
        },
        {
            "kind": "Ghost",
            "metadata": {"name": "g"},
            "spec": {
                "systemPrompt": "You answer.",
                "defaultKnowledgeBaseRefs": [{"id": 7, "name": n} for n in ghost_kbs],
            },
        },
        {
            "kind": "Bot",
            "metadata": {"name": "b"},
            "spec": {"ghostRef": {"name": "g"}, "shellRef": {"name": "chat"}, "modelRef": {"name": "m"}},
        },
        {
            "kind": "Team",
            "metadata": {"name": "team"},
            "spec": {"collaborationModel": "solo", "members": [{"botRef": {"name": "b"}}]},
        },
        *extra,
    ]
    return "\n---\n".join(json.dumps({"apiVersion": API, **d}) for d in items)


def plugins() -> Plugins:
    loaded = Plugins.load()
    if "knowledge" not in loaded.toolkits:  # until pyproject's entry point is installed
        loaded.register(knowledge_plugin, "knowledge")
    return loaded


def test_ghost_and_task_references_resolve_into_the_member_plan(tmp_path: Path) -> None:
    store = MemoryStore()
    extra = [
        {
            "kind": "Model",
            "metadata": {"name": "emb"},
            "spec": {
                "modelType": "embedding",
                "modelConfig": {
                    "env": {
                        "model_id": "text-embedding-3-small",
                        "base_url": "http://127.0.0.1:9/v1",
                        "api_key": "${EMB_KEY}",
                    }
                },
            },
        },
        {
            "kind": "KnowledgeBase",
            "metadata": {"name": "remote", "namespace": "public"},
            "spec": {"embedding": {"modelRef": {"name": "emb", "namespace": "default"}}},
        },
    ]
    for resource in loads(docs(tmp_path / "i", ghost_kbs=["facts", "gone"], extra=extra)):
        store.put(resource)
    plan = resolve_team(store, "team", knowledge_bases=["remote", "facts"], environ={"EMB_KEY": "k"})
    member = plan.members[0]
    assert [(kb.key, kb.source) for kb in member.knowledge_bases] == [
        ("default/facts", "ghost"),
        ("public/remote", "task"),
    ]
    assert member.missing_knowledge_bases == ["gone"]
    assert member.knowledge_bases[0].embedding is None  # the offline default
    assert member.knowledge_bases[0].top_k == 2
    assert member.knowledge_bases[1].embedding.model_id == "text-embedding-3-small"
    assert "'gone' not found" in " ".join(plan.warnings)


def test_an_embedding_model_must_be_of_type_embedding(tmp_path: Path) -> None:
    store = MemoryStore()
    extra = [{"kind": "KnowledgeBase", "metadata": {"name": "odd"}, "spec": {"embedding": {"modelRef": {"name": "m"}}}}]
    for resource in loads(docs(tmp_path / "i", ghost_kbs=["odd"], extra=extra)):
        store.put(resource)
    with pytest.raises(ResolutionError, match=r"KnowledgeBase odd -> Model m: an embedding Model needs modelType"):
        resolve_team(store, "team")


async def test_search_results_reach_the_model_with_sources_and_citations_reach_the_stream(tmp_path: Path) -> None:
    index = tmp_path / "index"
    corpus = write_corpus(tmp_path / "docs")
    yaml = docs(index, ghost_kbs=["facts", "gone"])
    async with AsyncWegent("memory://", plugins=plugins(), models={}) as wg:
        await wg.apply(yaml)
        from wegent_core import resolve_knowledge_base

        Knowledge.open(resolve_knowledge_base(wg.store, "facts")).ingest([corpus])
        model = ScriptedModel(
            [
                {"tool_call": {"name": "knowledge_search", "arguments": {"query": "How long do kittens snooze?"}}},
                "Cats sleep 12 to 16 hours a day [1].",
            ],
            name="m",
        )
        wg.engine.models["m"] = model
        task = await wg.run("team", "How much do cats sleep?")
        events = [event async for event in task]
        assert (await task.wait()).status is TaskState.COMPLETED
    first = model.requests[0]
    assert "knowledge_search" in [t.name for t in first.tools]
    assert "## Knowledge bases" in first.system
    assert "Short facts about nature" in first.system
    result = next(e for e in events if e.type == "tool.result")
    assert result.output.startswith("[1] cats.md, lines 1-3 (knowledge base facts")
    assert "sixteen hours" in result.output
    citations = [e for e in events if isinstance(e, Citation)]
    assert [c.ref for c in citations] == [1, 2]  # topK 2
    assert citations[0].source.endswith("/docs/cats.md")
    assert citations[0].call_id == result.call_id
    assert citations[0].subtask_id == result.subtask_id is not None  # they belong to the turn that searched
    assert citations[0].knowledge_base == "default/facts"
    assert citations[0].score > citations[1].score
    assert [e.message for e in events if e.type == "notice"] == ["knowledge base 'gone' was not found; skipped"]
    seqs = {e.type: e.seq for e in events}
    assert seqs["citation"] < seqs["tool.result"]


async def test_members_without_knowledge_bases_get_no_tool(tmp_path: Path) -> None:
    async with AsyncWegent("memory://", plugins=plugins(), models={"m": ScriptedModel(["hi"], name="m")}) as wg:
        await wg.apply(docs(tmp_path / "i", ghost_kbs=[]))
        task = await wg.run("team", "hello")
        [event async for event in task]
        model = wg.engine.models["m"]
    assert not model.requests[0].tools
    assert "Knowledge bases" not in model.requests[0].system
