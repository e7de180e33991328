"""Knowledge bases on real servers: an embedding `Model` served by llama.cpp's llama-server (OpenAI-compatible
`/v1/embeddings`, SmolLM2 135M), and chromadb's own server in URL mode."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from wegent_core import KnowledgeBasePlan, MemoryStore, PluginError, loads, resolve_knowledge_base
from wegent_core._resources import KnowledgeBackendSpec
from wegent_storage.knowledge import Knowledge

from .conftest import CORPUS, QUERIES, write_corpus

API = "agent.wecode.io/v1"
KEY_VAR = "WEGENT_TEST_EMBED_KEY"
# One sentence of each document, word for word: SmolLM2's embeddings are too weak for paraphrases, but a sentence
# is nearest to the document it comes from.
EXACT = {
    "The domestic cat sleeps for twelve to sixteen hours a day, mostly in short naps.": "cats.md",
    "Photosynthesis: green leaves turn sunlight, water and carbon dioxide into sugar and oxygen.": "plants.txt",
    "Yeast ferments the sugars in dough, releasing gas that makes the loaf rise in the oven.": "bread.md",
    "The gravitational pull of the moon on the oceans causes the tides to rise and fall twice a day.": "tides.txt",
    "Vaccines train the immune system to recognise a pathogen without causing the disease.": "vaccines.md",
}


def embedding_store(base_url: str, index: Path) -> MemoryStore:
    """An embedding Model on `base_url` whose key is a placeholder, and a KnowledgeBase that embeds with it."""
    items: list[dict[str, Any]] = [
        {
            "kind": "Model",
            "metadata": {"name": "smol-embed"},
            "spec": {
                "modelType": "embedding",
                "modelConfig": {
                    "env": {"model_id": "smollm2", "base_url": base_url, "api_key": f"${{{KEY_VAR}}}"},
                },
            },
        },
        {
            "kind": "KnowledgeBase",
            "metadata": {"name": "smol"},
            "spec": {"embedding": {"modelRef": {"name": "smol-embed"}}, "backend": {"path": str(index)}},
        },
    ]
    store = MemoryStore()
    for resource in loads("\n---\n".join(json.dumps({"apiVersion": API, **item}) for item in items)):
        store.put(resource)
    return store


# --- an embedding Model on llama-server -----------------------------------------------------------------------------


def test_an_embedding_model_indexes_and_finds_each_sentence_in_its_own_document(
    llama_embeddings: tuple[str, str], tmp_path: Path
) -> None:
    url, key = llama_embeddings
    plan = resolve_knowledge_base(embedding_store(url, tmp_path / "index"), "smol")
    assert plan.embedding is not None
    assert plan.embedding.api_key == f"${{{KEY_VAR}}}"  # the plan keeps the placeholder, not the key
    kb = Knowledge.open(plan, environ={KEY_VAR: key})
    report = kb.ingest([write_corpus(tmp_path / "docs")])
    assert report.ok
    assert len(report.added) == len(CORPUS)
    for sentence, title in EXACT.items():
        hits = kb.search(sentence, k=3)
        assert hits[0].metadata["title"] == title, (sentence, [h.metadata["title"] for h in hits])
        assert hits[0].score > hits[1].score


def test_the_api_key_is_expanded_at_call_time_and_never_stored(
    llama_embeddings: tuple[str, str], tmp_path: Path
) -> None:
    url, key = llama_embeddings
    index = tmp_path / "index"
    plan = resolve_knowledge_base(embedding_store(url, index), "smol")
    kb = Knowledge.open(plan, environ={KEY_VAR: key})
    kb.ingest([write_corpus(tmp_path / "docs")])
    stored = b"".join(p.read_bytes() for p in index.rglob("*") if p.is_file())
    assert key.encode() not in stored  # not in chromadb's collection configuration, nor anywhere else
    assert b"wegent-openai-compatible" in stored  # the embedding is recorded, by name, model and URL
    assert url.encode() in stored
    # Another environment, another key: the same plan is opened with what the environment says now.
    wrong = Knowledge.open(plan, environ={KEY_VAR: "not-the-key"})
    with pytest.raises(PluginError, match=r"smol-embed.*401") as failure:
        wrong.search("cats")
    assert "not-the-key" not in str(failure.value)
    with pytest.raises(PluginError, match=rf"\${{{KEY_VAR}}}.*not set"):
        Knowledge.open(plan, environ={})


def test_a_reopened_index_answers_with_the_embedding_model(llama_embeddings: tuple[str, str], tmp_path: Path) -> None:
    url, key = llama_embeddings
    index = tmp_path / "index"
    plan = resolve_knowledge_base(embedding_store(url, index), "smol")
    Knowledge.open(plan, environ={KEY_VAR: key}).ingest([write_corpus(tmp_path / "docs")])
    again = Knowledge.open(plan, environ={KEY_VAR: key})
    sentence, title = next(iter(EXACT.items()))
    assert again.search(sentence, k=1)[0].metadata["title"] == title
    assert again.count() == len(CORPUS)


# --- a chromadb server --------------------------------------------------------------------------------------------


def url_plan(url: str, collection: str) -> KnowledgeBasePlan:
    return KnowledgeBasePlan(
        name=collection,
        namespace="default",
        backend=KnowledgeBackendSpec(url=url, collection=collection),
        source="direct",
    )


def test_a_chromadb_server_ingests_answers_and_reopens(chroma_server: str, tmp_path: Path) -> None:
    plan = url_plan(chroma_server, "served")
    kb = Knowledge.open(plan)
    assert repr(kb.backend).endswith(f"at {chroma_server}>")
    corpus = write_corpus(tmp_path / "docs")
    report = kb.ingest([corpus])
    assert report.ok
    assert len(report.added) == len(CORPUS)
    assert {q: kb.search(q, k=1)[0].metadata["title"] for q in QUERIES} == QUERIES
    assert kb.ingest([corpus]).unchanged  # the hashes are read back from the server
    assert kb.remove(corpus / "cats.md") == 1
    # A new client (a fresh process would do the same) finds the collection with its chunks and its embedding.
    from wegent_storage.knowledge import _chroma

    _chroma._client.cache_clear()
    again = Knowledge.open(plan)
    assert again.backend.client is not kb.backend.client
    assert again.count() == len(CORPUS) - 1
    assert again.search("What makes the sea go up and down?", k=1)[0].metadata["title"] == "tides.txt"
    again.backend.drop()


def test_two_knowledge_bases_on_one_server_are_separate(chroma_server: str, tmp_path: Path) -> None:
    first, second = Knowledge.open(url_plan(chroma_server, "first")), Knowledge.open(url_plan(chroma_server, "second"))
    first.ingest([write_corpus(tmp_path / "docs")])
    assert first.count() == len(CORPUS)
    assert second.count() == 0
    assert second.search("cats") == []
    first.backend.drop()
    second.backend.drop()
