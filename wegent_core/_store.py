"""The resource store protocol, and the namespace fallback rule every store shares.

Stores follow Kubernetes' optimistic concurrency. Every stored resource carries `metadata.resource_version`, a
store-wide, strictly increasing integer (as a string, like etcd's revision). `put` with a version updates only if the
version is still current (else `ConflictError`); `put` without one creates or replaces unconditionally. A put that
changes nothing keeps the stored version and timestamps, so callers can tell created, updated and unchanged apart.
Stores hand out copies: nothing a caller does to an object it passed in or got back changes what the store holds.
A store whose calls never block (no I/O, no waiting on locks held across processes) may say so with a class
attribute `blocking = False`; the engine then calls it on the event loop instead of in a worker thread. A blocking
store may say how many calls are worth running at once (`workers`, default 4): one for a SQLite file, whose writers
take turns anyway, more for a database server. A store may also offer `revision() -> int`, the store-wide revision
(it moves with every put that changes something and every delete, as etcd's does): the engine then reuses a team's
resolved plan until the revision moves.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

from ._errors import ConflictError, NotFoundError
from ._resources import Resource
from ._selectors import LabelSelector

PUBLIC_NAMESPACE = "public"
# Kinds a `default` reference may find in `public` (as upstream shares public shells, models, ...).
# Task and Workspace are per user and never fall back.
FALLBACK_KINDS = frozenset({"Ghost", "Model", "Shell", "Bot", "Team", "Skill", "KnowledgeBase"})

SelectorLike = str | LabelSelector | Mapping[str, str]
SchemaState = Literal["current", "empty", "old", "newer"]


@runtime_checkable
class ResourceStore(Protocol):
    def get(self, kind: str, name: str, namespace: str = "default") -> Resource | None:
        """The resource at exactly (namespace, kind, name), or None. No fallback: see `lookup`."""
        ...

    def list(
        self, kind: str | None = None, namespace: str | None = None, selector: SelectorLike | None = None
    ) -> builtins.list[Resource]:
        """Resources of a kind (None: every kind) in a namespace (None: every namespace) whose labels match the
        selector (None: all), sorted by (namespace, kind, name)."""
        ...

    def put(self, resource: Resource) -> Resource:
        """Create or replace; returns a new object holding the store-managed metadata. See the module docstring."""
        ...

    def put_many(self, resources: Iterable[Resource]) -> builtins.list[Resource]:
        """`put` each resource, in order, atomically: all are stored or none is (the first error is raised)."""
        ...

    def delete(
        self, kind: str, name: str, namespace: str = "default", *, resource_version: str | None = None
    ) -> Resource:
        """Remove and return the resource; `NotFoundError` if missing, `ConflictError` if the version is stale."""
        ...


def search_path(kind: str, namespace: str = "default") -> list[str]:
    """The namespaces a reference searches, in order: its own, then `public` for a `default` reference to a
    shareable kind."""
    if namespace == "default" and kind in FALLBACK_KINDS:
        return [namespace, PUBLIC_NAMESPACE]
    return [namespace]


def lookup(store: ResourceStore, kind: str, name: str, namespace: str = "default") -> tuple[Resource | None, list[str]]:
    """Find a resource by reference along its `search_path`.

    Returns the resource (or None) and the namespaces searched, for messages such as
    "not found in namespace default or public".
    """
    searched = []
    for candidate in search_path(kind, namespace):
        searched.append(candidate)
        found = store.get(kind, name, candidate)
        if found is not None:
            return found, searched
    return None, searched


# --- shared by the store implementations --------------------------------------------------------------------------

_UNMANAGED = {"resource_version": None, "created_at": None, "updated_at": None}


def same_content(a: Resource, b: Resource) -> bool:
    """Whether two resources are equal apart from the store-managed metadata (version and timestamps)."""
    return type(a) is type(b) and _unmanaged(a) == _unmanaged(b)


def _unmanaged(resource: Resource) -> Resource:
    # Shallow copies: only the metadata object is replaced, so this costs two dict copies, not a deep copy.
    return resource.model_copy(update={"metadata": resource.metadata.model_copy(update=_UNMANAGED)})


def not_found(kind: str, name: str, namespace: str) -> NotFoundError:
    return NotFoundError(f"{kind} '{name}' not found in namespace '{namespace}'")


def check_version(current: Resource | None, key: tuple[str, str, str], expected: str | None) -> None:
    """Enforce optimistic concurrency: a given version must name the stored resource's current version."""
    if expected is None:
        return
    namespace, kind, name = key
    if current is None:
        raise NotFoundError(
            f"{kind} '{name}' not found in namespace '{namespace}' "
            f"(resource version {expected} was given, so it must exist; it may have been deleted)"
        )
    actual = current.metadata.resource_version
    if actual != expected:
        raise ConflictError(
            f"{kind} {namespace}/{name} was changed since it was read (resource version {expected}, now {actual})"
        )


# --- schemas ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SchemaStatus:
    """Where a store's database schema stands: `wegent db current` shows it, `wegent db upgrade` moves it."""

    current: str | None  # the database's revision; None if it has no schema yet
    head: str  # the newest revision the store's code knows
    state: SchemaState  # "empty" and "old" can be upgraded; "newer" needs a newer store


@runtime_checkable
class StoreSchema(Protocol):
    """The schema of one store's database, for stores that have one (registered with `register_store_schemas`)."""

    location: str  # the store URL with any password hidden, for messages

    def status(self) -> SchemaStatus:
        """The schema's revision, without changing anything (a database that does not exist yet is "empty")."""
        ...

    def upgrade(self) -> SchemaStatus:
        """Create or upgrade the schema to the head revision (refusing a newer one); the status afterwards."""
        ...
