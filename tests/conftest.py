"""Suite-wide settings."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator

import pytest
from hypothesis import settings

# CI machines are shared and slow at times: a property test must fail on behaviour, never on wall time.
settings.register_profile("wegent", deadline=None)
settings.load_profile("wegent")


@pytest.fixture(scope="session", autouse=True)
def _private_data_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Keep the suite away from the user's data directory, store and secret key (and from their settings)."""
    saved = {name: os.environ.get(name) for name in ("WEGENT_HOME", "WEGENT_STORE", "WEGENT_SECRET_KEY")}
    os.environ["WEGENT_HOME"] = str(tmp_path_factory.mktemp("wegent-home"))
    os.environ.pop("WEGENT_STORE", None)
    os.environ.pop("WEGENT_SECRET_KEY", None)
    yield
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


RunTogether = Callable[[int, Callable[[int], None]], None]


@pytest.fixture
def run_together() -> RunTogether:
    """Run `work(0..n-1)` in n threads released together by a barrier; any thread's error fails the test."""

    def run(workers: int, work: Callable[[int], None]) -> None:
        barrier = threading.Barrier(workers)
        errors: list[BaseException] = []

        def one(index: int) -> None:
            barrier.wait()
            try:
                work(index)
            except BaseException as error:  # reported in the test's thread
                errors.append(error)

        threads = [threading.Thread(target=one, args=(i,)) for i in range(workers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []

    return run
