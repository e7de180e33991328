"""Cutting text into overlapping chunks that remember where they came from.

Chunks are at most `size` characters, and each starts `overlap` characters (or a little more, to land on a word)
before the previous one ended, so a sentence cut at a boundary is whole in one of the two. Cuts prefer a paragraph
break, then a line break, then a sentence end, then a space, in the last third of the window; a text with none is
cut at `size`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_BREAKS = (re.compile(r"\n\s*\n"), re.compile(r"\n"), re.compile(r"[.!?;:]\s"), re.compile(r"\s"))


@dataclass(frozen=True, slots=True)
class Piece:
    text: str
    start: int  # offset of the first character in the text it was cut from
    end: int  # offset after the last character


def chunk_text(text: str, size: int = 800, overlap: int = 120) -> list[Piece]:
    """Chunks of `text` (see the module docstring). Blank text gives none; `text[p.start:p.end] == p.text`."""
    if size <= 0 or not 0 <= overlap < size:
        raise ValueError(f"need 0 <= overlap < size, got size={size} overlap={overlap}")
    pieces: list[Piece] = []
    start = _skip_space(text, 0)
    while start < len(text):
        end = _cut(text, start, size)
        piece = text[start:end]
        if piece.strip():
            pieces.append(Piece(piece, start, end))
        if end >= len(text):
            break
        start = _skip_space(text, max(end - overlap, start + 1))
    return pieces


def _cut(text: str, start: int, size: int) -> int:
    limit = start + size
    if limit >= len(text):
        return len(text)
    window = text[start:limit]
    floor = size * 2 // 3  # never cut in the first two thirds: chunks stay near their size
    for pattern in _BREAKS:
        ends = [m.end() for m in pattern.finditer(window) if m.end() > floor]
        if ends:
            return start + ends[-1]
    return limit


def _skip_space(text: str, index: int) -> int:
    while index < len(text) and text[index].isspace():
        index += 1
    return index


def line_of(text: str, offset: int) -> int:
    """The 1-based line number of a character offset."""
    return text.count("\n", 0, offset) + 1
