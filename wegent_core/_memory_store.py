"""The in-process resource store, and the plugin that registers it under the URL scheme `memory://`.

This module is itself the plugin object: pyproject's `wegent` entry point `memory-store` names it.
"""

from __future__ import annotations

import builtins
import threading
from collections.abc import Iterable
from datetime import UTC, datetime

from ._hookspecs import Register, hookimpl
from ._resources import Resource
from ._selectors import LabelSelector
from ._store import SelectorLike, check_version, not_found, same_content

_Key = tuple[str, str, str]  # (namespace, kind, name)


class MemoryStore:
    """A `ResourceStore` in a dict; thread-safe. Nothing persists.

    Stored objects are private and never mutated once stored (a put stores a new object), so reads copy them
    outside the lock: the lock guards only the dict and the revision counter.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._resources: dict[_Key, Resource] = {}
        self._revision = 0

    @classmethod
    def from_resources(cls, resources: Iterable[Resource]) -> MemoryStore:
        """A store holding the given resources (a later one replaces an earlier one with the same key).

        A new store has no history, so any resource versions the resources carry (from a dump of another store,
        say) are ignored rather than checked.
        """
        store = cls()
        with store._lock:
            for resource in resources:
                store._store(resource, expected_version=None)
        return store

    @classmethod
    def from_url(cls, url: str) -> MemoryStore:
        if url != "memory://":
            raise ValueError(f"the memory store takes the URL 'memory://', got {url!r}")
        return cls()

    def get(self, kind: str, name: str, namespace: str = "default") -> Resource | None:
        with self._lock:
            found = self._resources.get((namespace, kind, name))
        return None if found is None else found.clone()

    def list(
        self, kind: str | None = None, namespace: str | None = None, selector: SelectorLike | None = None
    ) -> builtins.list[Resource]:
        wanted = LabelSelector.coerce(selector)  # a bad selector fails before taking the lock
        with self._lock:
            snapshot = [*self._resources.values()]
        chosen = [
            r
            for r in snapshot
            if (kind is None or r.kind == kind)
            and (namespace is None or r.metadata.namespace == namespace)
            and wanted.matches(r.metadata.labels)
        ]
        chosen.sort(key=lambda r: r.key)
        return [r.clone() for r in chosen]

    def put(self, resource: Resource) -> Resource:
        return self.put_many([resource])[0]

    def put_many(self, resources: Iterable[Resource]) -> builtins.list[Resource]:
        batch = builtins.list(resources)
        with self._lock:
            saved = (dict(self._resources), self._revision)  # all or nothing: undo on the first error
            try:
                stored = [self._store(r, expected_version=r.metadata.resource_version) for r in batch]
            except BaseException:
                self._resources, self._revision = saved
                raise
        return [r.clone() for r in stored]

    def delete(
        self, kind: str, name: str, namespace: str = "default", *, resource_version: str | None = None
    ) -> Resource:
        key = (namespace, kind, name)
        with self._lock:
            current = self._resources.get(key)
            if current is None:
                raise not_found(kind, name, namespace)
            check_version(current, key, resource_version)
            del self._resources[key]
        return current  # the store no longer holds it, so the caller may have it without a copy

    def _store(self, resource: Resource, expected_version: str | None) -> Resource:
        """Store a copy of `resource` unless its content is unchanged; returns what is stored. Needs the lock."""
        key = resource.key
        current = self._resources.get(key)
        check_version(current, key, expected_version)
        if current is not None and same_content(current, resource):
            return current  # unchanged: same version, same timestamps, no copy
        self._revision += 1
        now = datetime.now(UTC)
        stored = resource.clone()
        stored.metadata.resource_version = str(self._revision)
        stored.metadata.created_at = now if current is None else current.metadata.created_at
        stored.metadata.updated_at = now
        self._resources[key] = stored
        return stored


@hookimpl
def register_stores(register: Register) -> None:
    register("memory", MemoryStore.from_url, description="In-process store; nothing persists")
