"""The sandbox conformance suite, on the real Docker and Podman engines."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from wegent_core.testing import SandboxConformance
from wegent_runtimes.sandboxes._containers import ContainerProvider

from .conftest import new_provider


class TestDockerConformance(SandboxConformance):
    @pytest.fixture
    async def provider(self, engines: tuple[str, ...]) -> AsyncIterator[ContainerProvider]:
        provider = new_provider("docker")
        yield provider
        await provider.aclose()


class TestPodmanConformance(SandboxConformance):
    @pytest.fixture
    async def provider(self, engines: tuple[str, ...]) -> AsyncIterator[ContainerProvider]:
        provider = new_provider("podman")
        yield provider
        await provider.aclose()
