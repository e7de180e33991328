"""Ingestion as a background job.

What "background job" means here, plainly: the ingestion runs in a worker thread of this process (embedding is CPU
work in onnxruntime, which releases the GIL), while the caller's event loop or thread goes on. The job reports its
progress, can be cancelled (between files: a file is stored whole or not at all), and gives its `IngestReport` or its
error. It is not durable: a job dies with its process, and running it again is cheap, since unchanged files are
recognised by their hash and skipped.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from pathlib import Path

import anyio

from ._knowledge import IngestProgress, IngestReport, Knowledge, Progress


class IngestionJob:
    """A running ingestion: `progress`, `done`, `cancel()`, `result()` (blocking) and `await wait()`."""

    def __init__(self, knowledge: Knowledge, paths: Iterable[str | Path], progress: Progress | None = None) -> None:
        self.knowledge = knowledge
        self.paths = [Path(p) for p in paths]
        self.progress: IngestProgress | None = None
        self._listener = progress
        self._cancel = threading.Event()
        self._done = threading.Event()
        self._report: IngestReport | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=f"wegent-ingest-{knowledge.plan.key}", daemon=True)

    def start(self) -> IngestionJob:
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            self._report = self.knowledge.ingest(self.paths, progress=self._update, cancelled=self._cancel.is_set)
        except BaseException as error:  # handed to whoever waits for the job
            self._error = error
        finally:
            self._done.set()

    def _update(self, progress: IngestProgress) -> None:
        self.progress = progress
        if self._listener is not None:
            self._listener(progress)

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def cancel(self) -> None:
        """Stop after the file being ingested; what was stored stays."""
        self._cancel.set()

    def result(self, timeout: float | None = None) -> IngestReport:
        if not self._done.wait(timeout):
            raise TimeoutError("the ingestion job is still running")
        if self._error is not None:
            raise self._error
        assert self._report is not None
        return self._report

    async def wait(self) -> IngestReport:
        """Wait without blocking the event loop; cancelling the wait cancels the job."""
        try:
            while not self._done.is_set():
                await anyio.sleep(0.05)
        except anyio.get_cancelled_exc_class():
            self.cancel()
            raise
        return self.result()


def start_ingestion(
    knowledge: Knowledge, paths: Iterable[str | Path], *, progress: Progress | None = None
) -> IngestionJob:
    """Start ingesting `paths` into `knowledge` in the background."""
    return IngestionJob(knowledge, paths, progress).start()


async def ingest_async(
    knowledge: Knowledge, paths: Iterable[str | Path], *, progress: Progress | None = None
) -> IngestReport:
    """Ingest in a background job and wait for it (the async API)."""
    return await start_ingestion(knowledge, paths, progress=progress).wait()
