"""wegent_core: resources, loading, resolution, the store protocol and the plugin hooks.

Depends only on pydantic, pluggy, anyio and PyYAML; the other wegent packages plug in through the `wegent`
entry-point group. Every module is private; this is the public surface.
"""

from ._apply import ApplyReport, ApplyResult, Reference, apply, dependents, references
from ._config import data_dir, default_store_url
from ._errors import (
    ConflictError,
    NotFoundError,
    PluginError,
    Problem,
    ResolutionError,
    StoreError,
    ValidationError,
    WegentError,
)
from ._hookspecs import hookimpl
from ._loader import ResourceSet, dump, load, loads, to_document
from ._memory_store import MemoryStore
from ._plan import ExecutionPlan, McpServerPlan, MemberPlan, ModelPlan, ShellPlan, SkillPlan
from ._plugins import PluginInfo, Plugins, PluginWarning, Registration, Registry
from ._resolve import resolve_task, resolve_team
from ._resources import (
    API_VERSION,
    KINDS,
    Bot,
    CollaborationModel,
    ContextPassing,
    Ghost,
    Model,
    ObjectMeta,
    Ref,
    Resource,
    Shell,
    Skill,
    SubtaskState,
    Task,
    TaskState,
    Team,
    TeamLimits,
    TeamMember,
    Workspace,
)
from ._schema import json_schema
from ._secret_fields import redact_resource
from ._selectors import LabelSelector
from ._store import PUBLIC_NAMESPACE, ResourceStore, SchemaStatus, StoreSchema, lookup
from ._task_store import EventRecord, PruneReport, SubtaskRecord, TaskRecord, TaskStore
from ._yaml import to_yaml

__all__ = [
    "API_VERSION",
    "KINDS",
    "PUBLIC_NAMESPACE",
    "ApplyReport",
    "ApplyResult",
    "Bot",
    "CollaborationModel",
    "ConflictError",
    "ContextPassing",
    "EventRecord",
    "ExecutionPlan",
    "Ghost",
    "LabelSelector",
    "McpServerPlan",
    "MemberPlan",
    "MemoryStore",
    "Model",
    "ModelPlan",
    "NotFoundError",
    "ObjectMeta",
    "PluginError",
    "PluginInfo",
    "PluginWarning",
    "Plugins",
    "Problem",
    "PruneReport",
    "Ref",
    "Reference",
    "Registration",
    "Registry",
    "ResolutionError",
    "Resource",
    "ResourceSet",
    "ResourceStore",
    "SchemaStatus",
    "Shell",
    "ShellPlan",
    "Skill",
    "SkillPlan",
    "StoreError",
    "StoreSchema",
    "SubtaskRecord",
    "SubtaskState",
    "Task",
    "TaskRecord",
    "TaskState",
    "TaskStore",
    "Team",
    "TeamLimits",
    "TeamMember",
    "ValidationError",
    "WegentError",
    "Workspace",
    "apply",
    "data_dir",
    "default_store_url",
    "dependents",
    "dump",
    "hookimpl",
    "json_schema",
    "load",
    "loads",
    "lookup",
    "redact_resource",
    "references",
    "resolve_task",
    "resolve_team",
    "to_document",
    "to_yaml",
]
