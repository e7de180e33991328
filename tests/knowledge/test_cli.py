"""`wegent kb add` and `wegent kb query` on a SQLite store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import wegent_storage.knowledge._plugin as knowledge_plugin
from wegent_core import Plugins
from wegent_server import _store_commands
from wegent_server._cli import main

from .conftest import write_corpus


def with_knowledge() -> Plugins:
    plugins = Plugins.load()
    if "knowledge" not in plugins.toolkits:
        plugins.register(knowledge_plugin, "knowledge")
    return plugins


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setattr(_store_commands, "_plugins", with_knowledge)  # until pyproject's entry point is installed
    monkeypatch.setenv("WEGENT_HOME", str(tmp_path / "home"))  # the index goes under the data directory
    url = f"sqlite:///{tmp_path / 'home' / 'wegent.db'}"  # the embedded default: created on first use
    docs = write_corpus(tmp_path / "docs")
    (tmp_path / "kb.yaml").write_text(
        "apiVersion: agent.wecode.io/v1\nkind: KnowledgeBase\nmetadata: {name: facts}\n"
        f"spec: {{description: facts, documents: ['{docs}'], topK: 3}}\n"
    )
    assert main(["apply", "-f", str(tmp_path / "kb.yaml"), "--store", url]) == 0
    return url


def test_add_then_query(store: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    (tmp_path / "notes.bin").write_bytes(b"\x00\x01")
    assert (
        main(
            ["kb", "add", "facts", str(tmp_path / "notes.bin"), str(tmp_path / "docs"), "--store", store, "-o", "json"]
        )
        == 1
    )  # a file was skipped
    out = capsys.readouterr()
    report = json.loads(out.out)
    assert len(report["added"]) == 6
    assert report["skipped"] == [{"path": str(tmp_path / "notes.bin"), "reason": report["skipped"][0]["reason"]}]
    assert f"skipped {tmp_path / 'notes.bin'}: unsupported file type .bin" in out.err
    assert (tmp_path / "home" / "knowledge" / "chromadb").is_dir()

    assert main(["kb", "add", "facts", "--store", store]) == 0  # the spec's documents: all unchanged
    assert "0 added, 0 replaced, 6 unchanged" in capsys.readouterr().out

    assert main(["kb", "query", "facts", "What makes the sea go up and down?", "--store", store]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"[1] {tmp_path / 'docs' / 'tides.txt'} (lines 1-1), score ")
    assert len([line for line in lines if line.startswith("[")]) == 3

    assert main(["kb", "remove", "facts", str(tmp_path / "docs" / "tides.txt"), "--store", store]) == 0
    assert main(["kb", "docs", "facts", "--store", store, "-o", "json"]) == 0
    capsys.readouterr()


def test_an_unknown_knowledge_base_is_an_error(store: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["kb", "query", "nope", "x", "--store", store]) == 1
    assert "KnowledgeBase nope: not found" in capsys.readouterr().err


def test_plan_shows_each_members_knowledge_bases(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    items = [
        {"kind": "Model", "metadata": {"name": "m"}, "spec": {"protocol": "scripted", "modelConfig": {"script": []}}},
        {
            "kind": "Model",
            "metadata": {"name": "emb"},
            "spec": {"modelType": "embedding", "modelConfig": {"env": {"model_id": "e", "base_url": "http://x/v1"}}},
        },
        {"kind": "Shell", "metadata": {"name": "chat"}, "spec": {"shellType": "Chat"}},
        {"kind": "KnowledgeBase", "metadata": {"name": "facts"}, "spec": {}},
        {"kind": "KnowledgeBase", "metadata": {"name": "remote"}, "spec": {"embedding": {"modelRef": {"name": "emb"}}}},
        {"kind": "Ghost", "metadata": {"name": "g"}, "spec": {"systemPrompt": "Hi.", "defaultKnowledgeBaseRefs": []}},
        {
            "kind": "Ghost",
            "metadata": {"name": "reader"},
            "spec": {"systemPrompt": "Read.", "defaultKnowledgeBaseRefs": [{"name": "remote"}, {"name": "gone"}]},
        },
        *(
            {
                "kind": "Bot",
                "metadata": {"name": bot},
                "spec": {"ghostRef": {"name": bot}, "shellRef": {"name": "chat"}, "modelRef": {"name": "m"}},
            }
            for bot in ("g", "reader")
        ),
        {
            "kind": "Team",
            "metadata": {"name": "team"},
            "spec": {
                "collaborationModel": "pipeline",
                "members": [{"botRef": {"name": "g"}}, {"botRef": {"name": "reader"}}],
            },
        },
        {
            "kind": "Task",
            "metadata": {"name": "t"},
            "spec": {
                "prompt": "Go.",
                "teamRef": {"name": "team"},
                "knowledgeBaseScopes": [
                    {"name": "facts", "scopeRestricted": True, "folderIds": ["hr"], "includeSubfolders": False},
                    {"name": "facts", "scopeRestricted": True, "explicitDocumentIds": ["leave.md"]},
                ],
            },
        },
    ]
    path = tmp_path / "team.yaml"
    path.write_text("\n---\n".join(json.dumps({"apiVersion": "agent.wecode.io/v1", **item}) for item in items))
    assert main(["plan", "-f", str(path), "--task", "t"]) == 0
    rows = [line.strip() for line in capsys.readouterr().out.splitlines() if "knowledge bases:" in line]
    facts = "default/facts (offline embedding; scoped to folder hr (no subfolders), document leave.md)"
    assert rows == [
        f"knowledge bases: {facts}",
        f"knowledge bases: default/remote (embedding default/emb), {facts}, gone (not found)",
    ]
