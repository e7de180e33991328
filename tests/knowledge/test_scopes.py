"""A Task's `knowledgeBaseScopes` restrictions: resolved into the member's knowledge base plan, and applied to
retrieval as a metadata filter on the stored chunks' sources."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from wegent_core import KnowledgeBasePlan, MemoryStore, loads, resolve_task
from wegent_core._plan import KnowledgeScope
from wegent_core._resolve import task_knowledge_bases
from wegent_core._resources import KnowledgeBackendSpec
from wegent_storage.knowledge import Knowledge, source_of

from .conftest import CORPUS

API = "agent.wecode.io/v1"
LAYOUT = {  # the corpus in folders: animals/, nature/ (with nature/sea/ below it), health/
    "cats.md": "animals",
    "bread.md": "animals",
    "plants.txt": "nature",
    "volcano.html": "nature",
    "tides.txt": "nature/sea",
    "vaccines.md": "health",
}


@pytest.mark.parametrize(
    ("scope", "allowed"),
    [
        (KnowledgeScope(folders=["/kb/nature"]), {"plants.txt", "volcano.html", "tides.txt"}),
        (KnowledgeScope(folders=["/kb/nature/"], include_subfolders=False), {"plants.txt", "volcano.html"}),
        (KnowledgeScope(folders=["nature"]), {"plants.txt", "volcano.html", "tides.txt"}),
        (KnowledgeScope(folders=["sea"]), {"tides.txt"}),
        (KnowledgeScope(folders=["natu"]), set()),  # a folder is whole path segments, not a string prefix
        (KnowledgeScope(folders=["/kb/nat"]), set()),
        (KnowledgeScope(documents=["cats.md"]), {"cats.md"}),
        (KnowledgeScope(documents=["/kb/health/vaccines.md", "sea/tides.txt"]), {"vaccines.md", "tides.txt"}),
        (KnowledgeScope(documents=["ats.md", "/kb/cats.md"]), set()),
        (KnowledgeScope(folders=["health"], documents=["bread.md"]), {"vaccines.md", "bread.md"}),
        (KnowledgeScope(folders=["/"]), set(LAYOUT)),
    ],
)
def test_a_scope_allows_the_documents_it_names(scope: KnowledgeScope, allowed: set[str]) -> None:
    sources = {name: f"/kb/{folder}/{name}" for name, folder in LAYOUT.items()}
    assert {name for name, source in sources.items() if scope.allows(source)} == allowed


# --- resolution ---------------------------------------------------------------------------------------------------


def task_store(index: Path, scopes: list[dict[str, Any]], refs: list[str] = ()) -> MemoryStore:  # type: ignore[assignment]
    items: list[dict[str, Any]] = [
        {"kind": "Model", "metadata": {"name": "m"}, "spec": {"protocol": "scripted", "modelConfig": {"script": []}}},
        {"kind": "Shell", "metadata": {"name": "chat"}, "spec": {"shellType": "Chat"}},
        {"kind": "KnowledgeBase", "metadata": {"name": "facts"}, "spec": {"backend": {"path": str(index)}}},
        {"kind": "KnowledgeBase", "metadata": {"name": "other"}, "spec": {"backend": {"path": str(index)}}},
        {"kind": "Ghost", "metadata": {"name": "g"}, "spec": {"systemPrompt": "You answer."}},
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
        {
            "kind": "Task",
            "metadata": {"name": "t"},
            "spec": {
                "prompt": "What do plants eat?",
                "teamRef": {"name": "team"},
                "knowledgeBaseRefs": [{"name": name} for name in refs],
                "knowledgeBaseScopes": scopes,
            },
        },
    ]
    store = MemoryStore()
    for resource in loads("\n---\n".join(json.dumps({"apiVersion": API, **item}) for item in items)):
        store.put(resource)
    return store


def test_restricted_scopes_reach_the_plan_and_unrestricted_ones_do_not_narrow(tmp_path: Path) -> None:
    scopes = [
        {"name": "facts", "scopeRestricted": True, "folderIds": ["nature", 12], "includeSubfolders": False},
        {"name": "facts", "scopeRestricted": True, "explicitDocumentIds": ["cats.md"]},
        {"name": "other", "scopeRestricted": False, "folderIds": ["nature"]},
    ]
    plan = resolve_task(task_store(tmp_path, scopes, refs=["facts"]), "t")
    kbs = {kb.name: kb for kb in plan.members[0].knowledge_bases}
    assert kbs["facts"].scopes == [
        KnowledgeScope(folders=["nature"], include_subfolders=False),
        KnowledgeScope(documents=["cats.md"]),
    ]
    assert kbs["other"].scopes == []  # scopeRestricted: false gives the whole knowledge base
    assert "upstream row ids [12]" in " ".join(plan.warnings)


def test_a_scope_of_upstream_row_ids_only_fails_closed(tmp_path: Path) -> None:
    scopes = [{"name": "facts", "scopeRestricted": True, "folderIds": [3], "explicitDocumentIds": [4, 5]}]
    plan = resolve_task(task_store(tmp_path, scopes, refs=["facts"]), "t")
    assert plan.members[0].knowledge_bases == []  # never the whole knowledge base instead
    assert "names no folder or document path; skipped" in " ".join(plan.warnings)


def test_the_engine_is_not_handed_a_knowledge_base_its_task_restricts(tmp_path: Path) -> None:
    scopes = [
        {"name": "facts", "scopeRestricted": True, "folderIds": ["nature"]},
        {"name": "other", "scopeRestricted": False},
    ]
    task = task_store(tmp_path, scopes, refs=["facts"]).get("Task", "t")
    # The engine takes names only and would give the whole of `facts`: it is left out until scopes reach it.
    assert task_knowledge_bases(task) == [("other", "default")]
    assert task_knowledge_bases(task, with_restricted=True) == [
        ("facts", None),
        ("facts", "default"),
        ("other", "default"),
    ]


# --- retrieval ----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def foldered(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The corpus in folders, ingested once: (the folder, the index)."""
    root = tmp_path_factory.mktemp("scoped")
    docs = root / "docs"
    for name, folder in LAYOUT.items():
        (docs / folder).mkdir(parents=True, exist_ok=True)
        (docs / folder / name).write_text(CORPUS[name])
    whole = Knowledge.open(kb_plan(root / "index", []))
    assert whole.ingest([docs]).ok
    return docs, root / "index"


def kb_plan(index: Path, scopes: list[KnowledgeScope]) -> KnowledgeBasePlan:
    return KnowledgeBasePlan(
        name="scoped", namespace="default", backend=KnowledgeBackendSpec(path=str(index)), source="task", scopes=scopes
    )


def titles(kb: Knowledge, query: str, k: int = 10) -> list[str]:
    return [str(hit.metadata["title"]) for hit in kb.search(query, k=k)]


def test_a_search_returns_only_documents_inside_the_scopes(foldered: tuple[Path, Path]) -> None:
    docs, index = foldered
    kb = Knowledge.open(kb_plan(index, [KnowledgeScope(folders=[str(docs / "nature")], include_subfolders=False)]))
    assert sorted(titles(kb, "How long do kittens snooze?")) == ["plants.txt", "volcano.html"]
    deep = Knowledge.open(kb_plan(index, [KnowledgeScope(folders=["nature"]), KnowledgeScope(documents=["cats.md"])]))
    assert titles(deep, "How long do kittens snooze?")[0] == "cats.md"
    assert sorted(titles(deep, "kittens")) == ["cats.md", "plants.txt", "tides.txt", "volcano.html"]
    # An explicit filter of the caller is kept, and narrowed further.
    tides = source_of(docs / "nature" / "sea" / "tides.txt")
    assert [h.metadata["source"] for h in deep.search("sea", where={"source": {"$ne": tides}}, k=10)] != []
    assert tides not in {h.metadata["source"] for h in deep.search("sea", where={"source": {"$ne": tides}}, k=10)}


def test_a_scope_that_matches_no_stored_document_finds_nothing(foldered: tuple[Path, Path]) -> None:
    _, index = foldered
    kb = Knowledge.open(kb_plan(index, [KnowledgeScope(folders=["/elsewhere"])]))
    assert kb.search("How long do kittens snooze?") == []
    whole = Knowledge.open(kb_plan(index, []))
    assert len(whole.search("How long do kittens snooze?", k=10)) == len(CORPUS)
    assert whole.sources() == {str(h.metadata["source"]) for h in whole.search("x", k=10)}
