"""examples/knowledge: loads strictly, ingests its documents and answers paraphrased questions from the right file;
the team runs offline with its scripted model, and the answer's citations reach the event stream."""

from __future__ import annotations

from pathlib import Path

import pytest

import wegent_storage.knowledge._plugin as knowledge_plugin
from wegent_core import AsyncWegent, Plugins, load, resolve_knowledge_base
from wegent_storage.knowledge import Knowledge

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "knowledge"
pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def wegent_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("WEGENT_HOME", str(tmp_path))
    monkeypatch.chdir(ROOT)  # the KnowledgeBase lists its documents relative to the repository root
    return tmp_path


def test_the_example_loads_strictly() -> None:
    resources = load(ROOT / "examples" / "common", EXAMPLE, strict=True)
    assert load(EXAMPLE / "offline", strict=True).warnings == []
    assert resources.find("KnowledgeBase", "handbook").spec.documents == ["examples/knowledge/documents"]


async def test_the_help_desk_answers_from_its_documents_with_citations(wegent_home: Path) -> None:
    plugins = Plugins.load()
    if "knowledge" not in plugins.toolkits:
        plugins.register(knowledge_plugin, "knowledge")
    async with AsyncWegent("memory://", plugins=plugins) as wg:
        for folder in (ROOT / "examples" / "common", EXAMPLE, EXAMPLE / "offline"):
            await wg.apply(load(folder))
        kb = Knowledge.open(resolve_knowledge_base(wg.store, "handbook"))
        report = kb.ingest(wg.store.get("KnowledgeBase", "handbook").spec.documents)
        assert len(report.added) == 4
        assert report.ok
        expected = {
            "How many vacation days do I have?": "time-off.md",
            "Is there a limit on what I can spend on dinner when travelling?": "expenses.html",
            "What should I do if my computer gets stolen?": "security.txt",
            "Can I do my job from home?": "remote-work.md",
        }
        assert {q: kb.search(q, k=1)[0].metadata["title"] for q in expected} == expected
        task = await wg.run("help-desk", "Can I work from another country?")
        events = [event async for event in task]
    citations = [e for e in events if e.type == "citation"]
    assert citations
    assert Path(citations[0].source).name == "remote-work.md"
    assert "20 working days" in next(e for e in events if e.type == "tool.result").output
