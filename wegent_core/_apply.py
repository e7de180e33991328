"""Applying resources to a store, and the reference graph between resources.

`apply` creates or updates resources in dependency order and reports, per resource, created / updated / unchanged /
failed. A reference to something not (yet) stored is a warning, not a failure, so the order of files never matters
(as with kubectl). `references` and `dependents` are the one definition of "what refers to what", shared by apply,
`wegent describe` and `wegent delete`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from ._errors import WegentError
from ._resources import Bot, Ghost, Model, Resource, Shell, Task, Team
from ._store import PUBLIC_NAMESPACE, ResourceStore, lookup, same_content, search_path

# Referenced kinds first, so a store that does check references (none does today) would see them exist.
APPLY_ORDER = ("Skill", "Shell", "Model", "Ghost", "Bot", "Team", "Workspace", "Task")

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
    results = []
    for resource in batch:
        warnings = _missing_references(store, resource, incoming)
        try:
            operation = _apply_one(store, resource, dry_run)
        except WegentError as exc:
            results.append(ApplyResult(resource.kind, resource.name, resource.namespace, "failed", str(exc), warnings))
            continue
        results.append(ApplyResult(resource.kind, resource.name, resource.namespace, operation, None, warnings))
    return ApplyReport(results, dry_run)


def _apply_one(store: ResourceStore, resource: Resource, dry_run: bool) -> Operation:
    existing = store.get(resource.kind, resource.name, resource.namespace)
    if dry_run:
        if existing is None:
            return "created"
        return "unchanged" if same_content(existing, resource) else "updated"
    stored = store.put(resource)
    if existing is None:
        return "created"
    return "unchanged" if stored.metadata.resource_version == existing.metadata.resource_version else "updated"


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
