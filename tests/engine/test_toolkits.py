"""A task's session enters plugin contexts once per key, keeps them for the run and exits them in their own task."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import pytest

from wegent_core import TaskSession

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_a_context_is_entered_once_shared_and_exited_at_close() -> None:
    log: list[str] = []

    @asynccontextmanager
    async def server() -> AsyncIterator[str]:
        log.append("enter")
        await anyio.sleep(0.01)
        try:
            yield "conn"
        finally:
            log.append("exit")

    async with anyio.create_task_group() as group:
        session = TaskSession(1, group)
        values: list[str] = []

        async def use() -> None:
            values.append(await session.enter("s", server))

        async with anyio.create_task_group() as users:  # concurrent callers wait for the first entry
            for _ in range(5):
                users.start_soon(use)
        assert values == ["conn"] * 5
        assert log == ["enter"]
        await session.close()
        assert log == ["enter", "exit"]
        with pytest.raises(RuntimeError, match="the session of task 1 is closed"):
            await session.enter("other", server)


async def test_an_error_while_entering_reaches_the_caller_and_the_next_call_tries_again() -> None:
    attempts: list[int] = []

    @asynccontextmanager
    async def flaky() -> AsyncIterator[int]:
        attempts.append(1)
        if len(attempts) == 1:
            raise ValueError("handshake refused")
        yield len(attempts)

    async with anyio.create_task_group() as group:
        session = TaskSession(7, group)
        with pytest.raises(ValueError, match="handshake refused"):
            await session.enter("s", flaky)
        assert await session.enter("s", flaky) == 2
        await session.close()


async def test_the_engine_session_outlives_tasks_and_closes_with_the_engine() -> None:
    from wegent_core import AsyncWegent

    log: list[str] = []

    @asynccontextmanager
    async def provider() -> AsyncIterator[str]:
        log.append("open")
        try:
            yield "provider"
        finally:
            log.append("close")

    async with AsyncWegent("memory://") as wg:
        assert await wg.engine.session.enter("p", provider) == "provider"
        assert await wg.engine.session.enter("p", provider) == "provider"  # one per engine, not per caller
        assert log == ["open"]
    assert log == ["open", "close"]
