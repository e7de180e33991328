from __future__ import annotations

import itertools
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import anyio
import pytest

from wegent_core import KnowledgeBasePlan
from wegent_core._resources import KnowledgeBackendSpec, KnowledgeChunking
from wegent_storage.knowledge import Knowledge, collection_name, ingest_async, source_of, start_ingestion

from .conftest import CORPUS, QUERIES, write_corpus


def plan(index: Path, name: str = "corpus", **extra: object) -> KnowledgeBasePlan:
    return KnowledgeBasePlan(
        name=name, namespace="default", backend=KnowledgeBackendSpec(path=str(index)), source="direct", **extra
    )


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    return write_corpus(tmp_path / "docs")


@pytest.fixture
def kb(tmp_path: Path) -> Knowledge:
    return Knowledge.open(plan(tmp_path / "index"))


def top_titles(kb: Knowledge) -> dict[str, str]:
    return {query: kb.search(query, k=1)[0].metadata["title"] for query in QUERIES}


def test_paraphrased_queries_find_their_documents(kb: Knowledge, corpus: Path) -> None:
    report = kb.ingest([corpus])
    assert sorted(Path(s).name for s in report.added) == sorted(CORPUS)
    assert report.ok
    assert top_titles(kb) == QUERIES


def test_hits_carry_source_and_location(kb: Knowledge, corpus: Path) -> None:
    kb.ingest([corpus])
    hit = kb.search("How long do kittens snooze?", k=1)[0]
    assert hit.metadata["source"] == source_of(corpus / "cats.md")
    assert hit.metadata["location"] == "lines 1-3"
    assert "twelve to sixteen hours" in hit.text
    html = kb.search("What comes out of a mountain when it explodes?", k=1)[0]
    assert "var x" not in html.text
    assert "p{}" not in html.text  # scripts and styles are not text


def test_reingesting_unchanged_files_embeds_nothing(kb: Knowledge, corpus: Path) -> None:
    kb.ingest([corpus])
    before = kb.count()
    again = kb.ingest([corpus])
    assert len(again.unchanged) == len(CORPUS)
    assert again.chunks == 0
    assert kb.count() == before


def test_a_changed_file_replaces_its_old_chunks(kb: Knowledge, corpus: Path) -> None:
    kb.ingest([corpus])
    cats = corpus / "cats.md"
    cats.write_text("# Cats\n\nCats purr when they are content, and sometimes when they are hurt.\n")
    report = kb.ingest([cats])
    assert report.replaced == [source_of(cats)]
    chunks = kb.backend.get(where={"source": source_of(cats)})
    assert len(chunks) == 1
    assert "purr" in chunks[0].text
    assert "sixteen hours" not in " ".join(c.text for c in kb.backend.get())
    assert kb.count() == len(CORPUS)


def test_deleting_a_document_removes_only_its_chunks(kb: Knowledge, corpus: Path) -> None:
    kb.ingest([corpus])
    assert kb.remove(corpus / "tides.txt") == 1
    assert kb.count() == len(CORPUS) - 1
    assert source_of(corpus / "tides.txt") not in kb.documents()
    assert kb.search("What makes the sea go up and down?", k=1)[0].metadata["title"] != "tides.txt"
    assert kb.remove(corpus / "tides.txt") == 0


def test_identical_content_is_stored_once(kb: Knowledge, corpus: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy-of-cats.md"
    copy.write_text(CORPUS["cats.md"])
    repeated = tmp_path / "repeated.txt"
    repeated.write_text("\n\n".join(["A footer that repeats on every page of the report."] * 40))
    report = kb.ingest([corpus, copy, repeated])
    assert report.duplicates == [(source_of(copy), source_of(corpus / "cats.md"))]
    assert kb.count(where={"source": source_of(copy)}) == 0
    chunks = kb.backend.get(where={"source": source_of(repeated)})
    assert len({c.text for c in chunks}) == len(chunks)  # identical chunks of one document are stored once


def test_bad_files_are_reported_by_name_and_nothing_is_lost(kb: Knowledge, corpus: Path, tmp_path: Path) -> None:
    kb.ingest([corpus])
    before = kb.count()
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    (bad / "broken.pdf").write_bytes(b"%PDF-1.4 this is not really a pdf")
    (bad / "empty.txt").write_text("   \n")
    (bad / "binary.txt").write_bytes(b"\x00\x01\x02" * 100)
    (bad / "good.md").write_text("Glaciers are slow rivers of ice that carve valleys.\n")
    report = kb.ingest([bad, tmp_path / "missing.txt"])
    skipped = {Path(path).name: reason for path, reason in report.skipped}
    assert set(skipped) == {"image.png", "broken.pdf", "empty.txt", "binary.txt", "missing.txt"}
    assert "unsupported" in skipped["image.png"]
    assert "PDF" in skipped["broken.pdf"]
    assert skipped["missing.txt"] == "no such file or folder"
    assert report.added == [source_of(bad / "good.md")]
    assert kb.count() == before + 1
    assert top_titles(kb) == QUERIES


def test_pdf_pages_are_locations(kb: Knowledge, tmp_path: Path) -> None:
    pypdf = pytest.importorskip("pypdf")
    pdf = tmp_path / "atlas.pdf"
    _write_pdf(pypdf, pdf, ["Paris is the capital of France.", "Penguins live in the southern hemisphere."])
    report = kb.ingest([pdf])
    assert report.ok, report.skipped
    hit = kb.search("Which birds are found near the south pole?", k=1)[0]
    assert hit.metadata["page"] == 2
    assert hit.metadata["location"].startswith("page 2")


def _write_pdf(pypdf: object, path: Path, pages: list[str]) -> None:
    from pypdf import PdfWriter
    from pypdf.generic import DecodedStreamObject, DictionaryObject, NameObject

    writer = PdfWriter()
    for text in pages:
        page = writer.add_blank_page(612, 792)
        font = DictionaryObject(
            {
                NameObject("/Type"): NameObject("/Font"),
                NameObject("/Subtype"): NameObject("/Type1"),
                NameObject("/BaseFont"): NameObject("/Helvetica"),
            }
        )
        page[NameObject("/Resources")] = DictionaryObject(
            {NameObject("/Font"): DictionaryObject({NameObject("/F1"): writer._add_object(font)})}
        )
        stream = DecodedStreamObject()
        stream.set_data(f"BT /F1 12 Tf 72 700 Td ({text}) Tj ET".encode())
        page[NameObject("/Contents")] = writer._add_object(stream)
    with path.open("wb") as out:
        writer.write(out)


def test_a_reopened_store_answers_the_same_in_a_new_process(kb: Knowledge, corpus: Path, tmp_path: Path) -> None:
    kb.ingest([corpus])
    expected = top_titles(kb)
    script = textwrap.dedent(
        f"""
        import json, socket
        real = socket.socket.connect
        def connect(self, address):
            if isinstance(address, tuple) and address[0] not in ("127.0.0.1", "::1", "localhost"):
                raise SystemExit(f"network access to {{address}}")
            return real(self, address)
        socket.socket.connect = connect
        import chromadb
        from wegent_core import KnowledgeBasePlan
        from wegent_core._resources import KnowledgeBackendSpec
        from wegent_storage.knowledge import Knowledge
        from wegent_storage.knowledge._embedding import offline_class
        queries = {list(QUERIES)!r}
        plan = KnowledgeBasePlan(name="corpus", namespace="default",
                                 backend=KnowledgeBackendSpec(path={str(tmp_path / "index")!r}), source="direct")
        kb = Knowledge.open(plan)
        ours = {{q: kb.search(q, k=1)[0].metadata["title"] for q in queries}}
        offline_class()  # registered with chromadb: a bare client rebuilds the offline embedding by its name
        client = chromadb.PersistentClient(path={str(tmp_path / "index")!r})
        collection = client.get_collection({collection_name("default", "corpus")!r})
        bare = {{q: collection.query(query_texts=[q], n_results=1)["metadatas"][0][0]["title"] for q in queries}}
        print(json.dumps([ours, bare, type(collection.configuration["embedding_function"]).__name__]))
        """
    )
    env = {"ANONYMIZED_TELEMETRY": "False", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    ours, bare, ef = json.loads(out.stdout.strip().splitlines()[-1])
    assert ours == expected == QUERIES
    assert bare == expected
    assert ef == "OfflineMiniLM"
    assert not (tmp_path / ".cache" / "chroma").exists()  # nothing was downloaded to chromadb's model cache


def test_chunking_settings_shape_the_chunks(tmp_path: Path) -> None:
    kb = Knowledge.open(plan(tmp_path / "index", chunking=KnowledgeChunking(size=200, overlap=50)))
    doc = tmp_path / "long.txt"
    doc.write_text(" ".join(f"Sentence number {i} is about topic {i % 7}." for i in range(100)))
    kb.ingest([doc])
    chunks = sorted(kb.backend.get(), key=lambda c: c.metadata["chunk"])
    assert len(chunks) > 10
    assert all(len(c.text) <= 200 for c in chunks)
    assert all(a.metadata["end"] > b.metadata["start"] for a, b in itertools.pairwise(chunks))


def test_score_threshold_drops_weak_hits(tmp_path: Path, corpus: Path) -> None:
    kb = Knowledge.open(plan(tmp_path / "index", score_threshold=0.3))
    kb.ingest([corpus])
    hits = kb.search("How long do kittens snooze?", k=6)
    assert [h.metadata["title"] for h in hits] == ["cats.md"]


def test_background_ingestion_reports_progress_and_can_be_awaited(kb: Knowledge, corpus: Path) -> None:
    seen: list[int] = []
    job = start_ingestion(kb, [corpus], progress=lambda p: seen.append(p.files_done))
    report = job.result(timeout=60)
    assert job.done
    assert seen == list(range(1, len(CORPUS) + 1))
    assert job.progress is not None
    assert job.progress.files_total == len(CORPUS)
    assert len(report.added) == len(CORPUS)

    async def again() -> int:
        return len((await ingest_async(kb, [corpus])).unchanged)

    assert anyio.run(again) == len(CORPUS)


def test_a_cancelled_job_keeps_what_it_stored(kb: Knowledge, corpus: Path) -> None:
    job = start_ingestion(kb, [corpus], progress=lambda p: job.cancel() if p.files_done == 2 else None)
    report = job.result(timeout=60)
    assert report.cancelled
    assert len(report.added) == 2
    assert kb.count() == 2


def test_collection_names_fit_chromadb() -> None:
    names = {collection_name(ns, n) for ns, n in [("default", "a"), ("team/sub", "x y"), ("default", "é" * 600)]}
    assert len(names) == 3
    assert all(3 <= len(n) <= 512 and n[0].isalnum() and n[-1].isalnum() for n in names)
