"""Sandboxes: `local` (a subprocess in a workspace directory: no isolation), `docker` and `podman` (one hardened
container per task), and a warm pool in front of any of them. See docs/sandboxes.md."""

from ._docker import DockerProvider  # the container SDKs themselves load at the first use
from ._images import DEFAULT_IMAGE, build_image
from ._local import LocalProvider
from ._podman import PodmanProvider
from ._pool import PooledProvider, pooled

__all__ = [
    "DEFAULT_IMAGE",
    "DockerProvider",
    "LocalProvider",
    "PodmanProvider",
    "PooledProvider",
    "build_image",
    "pooled",
]
