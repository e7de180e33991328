"""wegent_core: resources, loading, resolution, plugin hooks and the in-memory store.

Depends only on pydantic, pluggy, anyio and PyYAML; the other wegent packages plug in through entry points.
"""
