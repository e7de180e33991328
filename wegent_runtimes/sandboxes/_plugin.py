"""Registers the sandbox providers. Each module loads at first use: registering imports no container SDK."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from wegent_core import SandboxProvider, hookimpl
from wegent_core._hookspecs import Register


def local(options: Mapping[str, Any]) -> SandboxProvider:
    from ._local import LocalProvider

    return LocalProvider(options)


def docker(options: Mapping[str, Any]) -> SandboxProvider:
    from ._docker import DockerProvider

    return DockerProvider(options)


def podman(options: Mapping[str, Any]) -> SandboxProvider:
    from ._podman import PodmanProvider

    return PodmanProvider(options)


@hookimpl
def register_sandboxes(register: Register) -> None:
    register("local", local, description="a subprocess in a per-task directory: NO isolation (trusted work only)")
    register("docker", docker, description="one hardened Docker container per task (pip install 'wegent[docker]')")
    register("podman", podman, description="one hardened Podman container per task (pip install 'wegent[podman]')")
