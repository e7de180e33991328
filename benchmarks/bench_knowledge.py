"""Knowledge benchmark, offline: ingest 1,000 short documents, and query latency on a 10,000-chunk collection.

    python benchmarks/bench_knowledge.py [--docs 1000] [--chunks 10000] [--queries 200]

Targets: ingest 1,000 short documents (files on disk, through `Knowledge.ingest`: read, chunk, hash, embed with the
offline all-MiniLM-L6-v2 int8 model, store in chromadb) under 60 s; median query latency (embed the query, search,
threshold) under 50 ms on a 10,000-chunk collection. Each part starts from a new index in a temporary directory; the
first ingestion includes loading the ONNX model (about 0.5 s), as a user's first `wegent kb add` does.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _machine import describe_machine

from wegent_core import KnowledgeBasePlan
from wegent_core._resources import KnowledgeBackendSpec
from wegent_storage.knowledge import ChunkRecord, Knowledge

SUBJECTS = [
    "the river",
    "a glacier",
    "the city council",
    "our team",
    "the telescope",
    "a bakery",
    "the orchestra",
    "the new bridge",
    "a honeybee",
    "the library",
    "the volcano",
    "a cargo ship",
    "the old mill",
]
VERBS = ["measured", "celebrated", "repaired", "studied", "announced", "photographed", "protected", "rebuilt"]
OBJECTS = [
    "the spring floods",
    "a record harvest",
    "the northern lights",
    "a quiet afternoon",
    "the annual budget",
    "a rare butterfly",
    "the midnight train",
    "an ancient map",
    "the winter market",
    "a solar eclipse",
]


def sentence(rng: random.Random) -> str:
    return (
        f"{rng.choice(SUBJECTS).capitalize()} {rng.choice(VERBS)} {rng.choice(OBJECTS)} in {rng.randint(1900, 2030)}."
    )


def short_document(rng: random.Random, i: int) -> str:
    return f"# Note {i}\n\n" + " ".join(sentence(rng) for _ in range(rng.randint(2, 5))) + "\n"


def open_kb(index: Path, name: str) -> Knowledge:
    plan = KnowledgeBasePlan(
        name=name, namespace="bench", backend=KnowledgeBackendSpec(path=str(index)), source="bench"
    )
    return Knowledge.open(plan)


def bench_ingest(root: Path, count: int, rng: random.Random) -> tuple[float, int]:
    docs = root / "docs"
    docs.mkdir()
    for i in range(count):
        (docs / f"note-{i:05d}.md").write_text(short_document(rng, i))
    kb = open_kb(root / "index", "ingest")
    began = time.perf_counter()
    report = kb.ingest([docs])
    took = time.perf_counter() - began
    assert len(report.added) == count, report.skipped[:3]
    assert report.ok
    return took, report.chunks


def bench_query(root: Path, chunks: int, queries: int, rng: random.Random) -> tuple[float, float, float]:
    kb = open_kb(root / "index-q", "query")
    began = time.perf_counter()
    batch = []
    for i in range(chunks):
        batch.append(ChunkRecord(f"c{i}", short_document(rng, i), {"source": f"doc-{i // 10}", "chunk": i % 10}))
        if len(batch) == 1000:
            kb.backend.add(batch)
            batch = []
    kb.backend.add(batch)
    filled = time.perf_counter() - began
    assert kb.count() == chunks
    kb.search("warm-up")
    times = []
    for _ in range(queries):
        text = f"When did {rng.choice(SUBJECTS)} see {rng.choice(OBJECTS)}?"
        start = time.perf_counter()
        hits = kb.search(text, k=5)
        times.append(time.perf_counter() - start)
        assert len(hits) == 5
    times.sort()
    return statistics.median(times) * 1000, times[int(len(times) * 0.95)] * 1000, filled


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=1000)
    parser.add_argument("--chunks", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()
    rng = random.Random(7)
    print(describe_machine())
    with tempfile.TemporaryDirectory() as tmp:
        took, stored = bench_ingest(Path(tmp), args.docs, rng)
        print(
            f"ingest {args.docs} short documents: {took:.1f} s ({stored} chunks, {args.docs / took:.0f} docs/s)"
            f"  target < 60 s  {'OK' if took < 60 else 'MISSED'}"
        )
        median, p95, filled = bench_query(Path(tmp), args.chunks, args.queries, rng)
        print(f"fill a {args.chunks}-chunk collection: {filled:.1f} s")
        print(
            f"query latency on {args.chunks} chunks: median {median:.1f} ms, p95 {p95:.1f} ms"
            f"  target < 50 ms  {'OK' if median < 50 else 'MISSED'}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
