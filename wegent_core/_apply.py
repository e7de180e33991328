"""Applying resources to a store, and the reference graph between resources.

`apply` creates or updates resources in dependency order and reports, per resource, created / updated / unchanged /
failed. A reference to something not (yet) stored is a warning, not a failure, so the order of files never matters
(as with kubectl). `references` and `dependents` are the one definition of "what refers to what", shared by apply,
`wegent describe` and `wegent delete`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from ._errors import WegentError
from ._resources import Bot, Ghost, KnowledgeBase, Model, Resource, Shell, Task, Team
from ._store import PUBLIC_NAMESPACE, ResourceStore, lookup, same_content, search_path

# Referenced kinds first, so a store that does check references (none does today) would see them exist.
APPLY_ORDER = ("Skill", "Shell", "Model", "KnowledgeBase", "Ghost", "Bot", "Team", "Workspace", "Task")

Operation = Literal["created", "updated", "unchanged", "failed"]


@dataclass(frozen=True, slots=True)
class Reference:
    """`path` in the referring resource names `kind` `namespace/name`."""

    kind: str
    name: str
    namespace: str
    path: str

    def __str__(self) -> str:
        return f"{self.path} -> {self.kind} {self.namespace}/{self.name}"


def references(resource: Resource) -> list[Reference]:
    """Every reference a resource holds, with the namespace it resolves in (omitted = the referrer's)."""
    ns = resource.namespace
    refs: list[Reference] = []

    def add(kind: str, name: str | None, namespace: str | None, path: str) -> None:
        if isinstance(name, str) and name.strip():
            refs.append(Reference(kind, name.strip(), namespace or ns, path))

    if isinstance(resource, Bot):
        spec = resource.spec
        add("Ghost", spec.ghost_ref.name, spec.ghost_ref.namespace, "spec.ghostRef")
        add("Shell", spec.shell_ref.name, spec.shell_ref.namespace, "spec.shellRef")
        for path, ref in (("spec.modelRef", spec.model_ref), ("spec.secondaryModelRef", spec.secondary_model_ref)):
            if ref is not None:
                add("Model", ref.name, ref.namespace, path)
        config = spec.agent_config or {}
        add("Model", config.get("bind_model"), config.get("bind_model_namespace"), "spec.agent_config.bind_model")
    elif isinstance(resource, Team):
        for i, member in enumerate(resource.spec.members):
            add("Bot", member.bot_ref.name, member.bot_ref.namespace, f"spec.members[{i}].botRef")
    elif isinstance(resource, Task):
        add("Team", resource.spec.team_ref.name, resource.spec.team_ref.namespace, "spec.teamRef")
        if resource.spec.workspace_ref is not None:
            ref = resource.spec.workspace_ref
            add("Workspace", ref.name, ref.namespace, "spec.workspaceRef")
        for i, kb in enumerate(resource.spec.knowledge_base_refs or []):
            add("KnowledgeBase", kb.name, kb.namespace, f"spec.knowledgeBaseRefs[{i}]")
    elif isinstance(resource, KnowledgeBase):
        ref = resource.spec.embedding_ref
        if ref is not None:
            add("Model", ref.name, ref.namespace, "spec.embedding.modelRef")
    elif isinstance(resource, Shell):
        add("Shell", resource.spec.base_shell_ref, "default", "spec.baseShellRef")
    elif isinstance(resource, Model):
        config = resource.spec.config
        add("Model", config.get("bind_model"), config.get("bind_model_namespace"), "spec.modelConfig.bind_model")
    elif isinstance(resource, Ghost):
        pinned = {**(resource.spec.skill_refs or {}), **(resource.spec.preload_skill_refs or {})}
        for i, skill in enumerate(resource.spec.skills or []):
            pin = pinned.get(skill)
            namespace = None if pin is None else (PUBLIC_NAMESPACE if pin.is_public else pin.namespace)
            add("Skill", skill, namespace, f"spec.skills[{i}]")
        for i, kb in enumerate(resource.spec.default_knowledge_base_refs or []):
            add("KnowledgeBase", kb.name, kb.namespace, f"spec.defaultKnowledgeBaseRefs[{i}]")
    return refs


def dependents(store: ResourceStore, target: Resource) -> list[tuple[Resource, Reference]]:
    """Stored resources with a reference that resolves to `target` (directly, or through the public fallback)."""
    found = []
    for resource in store.list():
        for ref in references(resource):
            if ref.kind != target.kind or ref.name != target.name:
                continue
            resolved, _ = lookup(store, ref.kind, ref.name, ref.namespace)
            if resolved is not None and resolved.key == target.key:
                found.append((resource, ref))
    return found


@dataclass(slots=True)
class ApplyResult:
    kind: str
    name: str
    namespace: str
    operation: Operation
    error: str | None = None
    warnings: list[str] = field(default_factory=list)


@dataclass(slots=True)
class ApplyReport:
    results: list[ApplyResult]
    dry_run: bool = False

    @property
    def ok(self) -> bool:
        return all(r.operation != "failed" for r in self.results)

    def count(self, operation: Operation) -> int:
        return sum(r.operation == operation for r in self.results)


def apply(
    store: ResourceStore,
    resources: Iterable[Resource],
    *,
    namespace: str | None = None,
    public: bool = False,
    dry_run: bool = False,
) -> ApplyReport:
    """Create or update each resource (`namespace` or `public` overrides the documents' namespaces)."""
    target_ns = PUBLIC_NAMESPACE if public else namespace
    batch = [_in_namespace(r, target_ns) for r in resources]
    batch.sort(key=lambda r: APPLY_ORDER.index(r.kind) if r.kind in APPLY_ORDER else len(APPLY_ORDER))
    incoming = {r.key for r in batch}
    warnings = [_missing_references(store, r, incoming) for r in batch]
    if dry_run:
        operations = [_would_do(store, r) for r in batch]
    else:
        operations = [
            op for start in range(0, len(batch), CHUNK) for op in _put_chunk(store, batch[start : start + CHUNK])
        ]
    results = [
        ApplyResult(
            r.kind,
            r.name,
            r.namespace,
            op if isinstance(op, str) else "failed",
            None if isinstance(op, str) else str(op),
            w,
        )
        for r, op, w in zip(batch, operations, warnings, strict=True)
    ]
    return ApplyReport(results, dry_run)


CHUNK = 500  # resources per transaction: big enough to be fast, small enough to keep writes short


def _put_chunk(store: ResourceStore, chunk: list[Resource]) -> list[Operation | WegentError]:
    """Put a chunk in one transaction; if it fails, put its resources one by one to find and report the culprits."""
    started = datetime.now(UTC)
    try:
        return [_operation(stored, started) for stored in store.put_many(chunk)]
    except WegentError:
        pass
    outcomes: list[Operation | WegentError] = []
    for resource in chunk:
        started = datetime.now(UTC)
        try:
            outcomes.append(_operation(store.put(resource), started))
        except WegentError as exc:
            outcomes.append(exc)
    return outcomes


def _operation(stored: Resource, started: datetime) -> Operation:
    # Stores stamp `updated_at` only when something changed, and set `created_at` to the same instant on creation.
    meta = stored.metadata
    if meta.updated_at is None or meta.updated_at < started:
        return "unchanged"
    return "created" if meta.created_at == meta.updated_at else "updated"


def _would_do(store: ResourceStore, resource: Resource) -> Operation:
    existing = store.get(resource.kind, resource.name, resource.namespace)
    if existing is None:
        return "created"
    return "unchanged" if same_content(existing, resource) else "updated"


def _in_namespace(resource: Resource, namespace: str | None) -> Resource:
    if namespace is None or namespace == resource.namespace:
        return resource
    copy = resource.clone()
    copy.metadata.namespace = namespace
    return copy


def _missing_references(store: ResourceStore, resource: Resource, incoming: set[tuple[str, str, str]]) -> list[str]:
    warnings = []
    for ref in references(resource):
        searched = search_path(ref.kind, ref.namespace)
        if any((ns, ref.kind, ref.name) in incoming for ns in searched):
            continue
        found, _ = lookup(store, ref.kind, ref.name, ref.namespace)
        if found is None:
            where = " or ".join(searched)
            warnings.append(f"{ref.path} refers to {ref.kind} {ref.name}, not found (yet) in namespace {where}")
    return warnings
