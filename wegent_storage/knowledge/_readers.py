"""Reading documents into text: plain text and Markdown as they are, HTML through BeautifulSoup, PDF through pypdf.

A reader returns sections: the text of a whole file, or of one PDF page, so that a chunk's location can be a page.
A file that cannot be read raises `UnreadableDocument` with the reason; ingestion reports it by name and goes on.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

TEXT_SUFFIXES = frozenset({".txt", ".text", ".md", ".markdown", ".rst", ".csv", ".log", ".json", ".yaml", ".yml"})
HTML_SUFFIXES = frozenset({".html", ".htm", ".xhtml"})
PDF_SUFFIXES = frozenset({".pdf"})
SUPPORTED = TEXT_SUFFIXES | HTML_SUFFIXES | PDF_SUFFIXES


class UnreadableDocument(Exception):
    """A document that is unsupported, unreadable or empty; the message says why."""


@dataclass(frozen=True, slots=True)
class Section:
    text: str
    page: int | None = None  # 1-based, for paged formats


def is_supported(path: Path) -> bool:
    return path.suffix.lower() in SUPPORTED


def read_document(path: Path, data: bytes | None = None) -> list[Section]:
    """The text of a document, by its suffix. `data` is the file's content when the caller has read it already."""
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED:
        known = ", ".join(sorted(SUPPORTED))
        raise UnreadableDocument(f"unsupported file type {suffix or '(none)'} (supported: {known})")
    try:
        raw = path.read_bytes() if data is None else data
    except OSError as error:
        raise UnreadableDocument(f"cannot read: {error.strerror or error}") from None
    if suffix in PDF_SUFFIXES:
        sections = _pdf(raw)
    elif suffix in HTML_SUFFIXES:
        sections = [Section(_html(_decode(raw)))]
    else:
        sections = [Section(_decode(raw))]
    if not any(s.text.strip() for s in sections):
        raise UnreadableDocument("no text in it")
    return sections


def _decode(raw: bytes) -> str:
    if b"\x00" in raw[:4096]:
        raise UnreadableDocument("binary content, not text")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("latin-1")  # never fails; old documents are often Latin-1


def _html(markup: str) -> str:
    try:
        from bs4 import BeautifulSoup
    except ImportError:
        raise UnreadableDocument("HTML needs beautifulsoup4: pip install 'wegent[knowledge]'") from None
    soup = BeautifulSoup(markup, "html.parser")
    for hidden in soup(["script", "style", "noscript", "template"]):
        hidden.decompose()
    lines = (line.strip() for line in soup.get_text("\n").splitlines())
    return "\n".join(line for line in lines if line)


def _pdf(raw: bytes) -> list[Section]:
    try:
        from pypdf import PdfReader
        from pypdf.errors import PdfReadError
    except ImportError:
        raise UnreadableDocument("PDF needs pypdf: pip install 'wegent[knowledge]'") from None
    import io

    try:
        reader = PdfReader(io.BytesIO(raw))
        if reader.is_encrypted:
            raise UnreadableDocument("the PDF is encrypted")
        return [Section(page.extract_text() or "", page=i) for i, page in enumerate(reader.pages, start=1)]
    except (PdfReadError, ValueError, KeyError, TypeError) as error:
        raise UnreadableDocument(f"not a readable PDF: {error}") from None
