"""Sandboxes: `local` (a subprocess in a workspace directory: no isolation), `docker` and `podman` (one hardened
container per task). See docs/sandboxes.md."""
