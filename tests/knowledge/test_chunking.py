"""Chunking: properties over open-ended texts and settings."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from wegent_storage.knowledge import chunk_text

texts = st.text(alphabet=st.sampled_from("abc xyz.\n\n!é"), max_size=3000)
shapes = st.integers(min_value=20, max_value=400).flatmap(
    lambda size: st.tuples(st.just(size), st.integers(0, size - 1))
)


@settings(max_examples=300, deadline=None)
@given(text=texts, shape=shapes)
def test_chunks_cover_the_text_in_order_within_size_with_overlap(text: str, shape: tuple[int, int]) -> None:
    size, overlap = shape
    pieces = chunk_text(text, size, overlap)
    for piece in pieces:
        assert text[piece.start : piece.end] == piece.text  # offsets locate every chunk
        assert 0 < len(piece.text) <= size
        assert piece.text.strip()
    for before, after in itertools.pairwise(pieces):
        assert before.start < after.start  # progress: no loop, no repeat
        gap = text[before.end : after.start]  # chunks start at a word: only blanks may fall between two
        assert after.start <= before.end or not gap.strip()
    covered = set().union(*(range(p.start, p.end) for p in pieces)) if pieces else set()
    assert all(i in covered for i, c in enumerate(text) if not c.isspace())


@given(shape=shapes)
def test_blank_text_gives_no_chunks(shape: tuple[int, int]) -> None:
    assert chunk_text(" \n\t ", *shape) == []


def test_cuts_prefer_paragraphs_then_sentences() -> None:
    text = "First paragraph sentence one. Sentence two.\n\nSecond paragraph is here and goes on for a while."
    pieces = chunk_text(text, 60, 10)
    assert pieces[0].text == "First paragraph sentence one. Sentence two.\n\n"
    assert chunk_text("A sentence of twenty. Next go on and on", 30, 5)[0].text == "A sentence of twenty. "
