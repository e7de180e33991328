"""anyio task groups raise every error as an ExceptionGroup, even a single one; callers want the error itself."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import anyio

from ._errors import LimitExceeded


@contextmanager
def first_error() -> Iterator[None]:
    """Re-raise a task group's error as itself: the only one, else the first (a limit first: it explains the rest).
    Cancellation passes through untouched."""
    try:
        yield
    except BaseExceptionGroup as group:
        errors = _leaves(group)
        cancelled = anyio.get_cancelled_exc_class()
        real = [e for e in errors if not isinstance(e, cancelled)] or errors
        limits = [e for e in real if isinstance(e, LimitExceeded)]
        raise (limits or real)[0] from None


def _leaves(group: BaseExceptionGroup) -> list[BaseException]:
    found: list[BaseException] = []
    for error in group.exceptions:
        found += _leaves(error) if isinstance(error, BaseExceptionGroup) else [error]
    return found
