"""The execution plan: what resolution produces and what the engine runs.

A plan is safe to print and to log: secrets hold what was written (`${OPENAI_API_KEY}` or a literal key) and every
serialisation redacts literal secrets. `${ENV}` placeholders are expanded only by `ModelPlan.materialize()`, at run
time, and the result is never stored.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_serializer

from ._resources import (
    CollaborationModel,
    ContextPassing,
    KnowledgeBackendSpec,
    KnowledgeChunking,
    Repository,
    ShellSandbox,
    TeamLimits,
)

REDACTED = "***"
PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_SECRET_KEY = re.compile(r"(^|_)(api_?key|auth_?token|secret|password|token)$", re.IGNORECASE)


_SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "x-api-key", "cookie"})


def is_secret_key(key: str) -> bool:
    """Keys whose values are credentials: `api_key`, `*_API_KEY`, `*_AUTH_TOKEN`, `DIFY_API_KEY`, ..."""
    return bool(_SECRET_KEY.search(key))


def is_secret_header(name: object) -> bool:
    """`Authorization`, `x-api-key`, and header names that look like credentials (`X-Auth-Token`, ...)."""
    return isinstance(name, str) and (name.lower() in _SECRET_HEADERS or is_secret_key(name.replace("-", "_")))


# MCP configs also hold `${{task_token}}`-style templates that the runtime fills in per request.
TEMPLATE = re.compile(r"\$\{\{[^{}]*\}\}")


def only_placeholders(value: str) -> bool:
    """Whether the text is nothing but `${ENV}` and `${{path}}` placeholders (and blanks): it holds no secret."""
    return not TEMPLATE.sub("", PLACEHOLDER.sub("", value)).strip()


def redact(value: Any) -> Any:
    """A literal secret becomes `***`; placeholders are shown as written (they hold no secret)."""
    if isinstance(value, str) and value and not only_placeholders(value):
        return REDACTED
    return value


def redact_headers(headers: Any) -> Any:
    """Headers (a mapping, or upstream's JSON string form) with credential headers redacted."""
    if isinstance(headers, str):
        try:
            parsed = json.loads(headers)
        except ValueError:
            return redact(headers)
        return json.dumps(redact_headers(parsed)) if isinstance(parsed, dict) else redact(headers)
    if isinstance(headers, dict):
        return {k: redact(v) if is_secret_header(k) else v for k, v in headers.items()}
    return headers


def expand_env(value: Any, environ: Mapping[str, str]) -> Any:
    """Replace `${NAME}` with the environment variable NAME; unknown names are left as written (as upstream)."""
    if isinstance(value, str):
        return PLACEHOLDER.sub(lambda m: environ.get(m.group(1), m.group(0)), value)
    if isinstance(value, dict):
        return {k: expand_env(v, environ) for k, v in value.items()}
    if isinstance(value, list):
        return [expand_env(v, environ) for v in value]
    return value


def env_names(value: Any) -> set[str]:
    """The environment variables that `${NAME}` placeholders in the value refer to."""
    if isinstance(value, str):
        return set(PLACEHOLDER.findall(value))
    if isinstance(value, dict):
        return set().union(*(env_names(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(env_names(v) for v in value)) if value else set()
    return set()


class PlanModel(BaseModel):
    model_config = ConfigDict(frozen=True, protected_namespaces=())


class ModelPlan(PlanModel):
    """A Model after pointer chasing and flattening (upstream reference section 2.5)."""

    name: str
    namespace: str
    chain: list[str] = Field(description="Models visited through bind_model pointers, first to last")
    selected_by: str = Field(description="forced override | bind_model | modelRef | task fallback")
    protocol: str | None = None
    api_format: str | None = None
    provider: str | None = Field(default=None, description="env.model: the provider family (openai, claude, gemini)")
    model_id: str | None = None
    base_url: str | None = None
    api_key: str | None = None
    default_headers: dict[str, str] = Field(default_factory=dict)
    context_window: int | None = None
    max_output_tokens: int | None = None
    model_type: str = "llm"
    temperature: float | None = None
    think_config: dict[str, Any] | None = None
    tool_choice: str | None = Field(
        default=None,
        description="modelConfig.toolChoice: auto (the default: the model decides) or required (the first model "
        "call of each turn must call a tool; for small models that would not call one by themselves)",
    )
    env: dict[str, Any] = Field(default_factory=dict, description="The Model's env as written")
    secret_keys: list[str] = Field(default_factory=list, description="env keys marked secret (modelConfig.secretKeys)")
    script: list[dict[str, Any]] | None = Field(
        default=None, description="protocol scripted: the replies, in order (modelConfig.script)"
    )

    @field_serializer("api_key")
    def _redact_key(self, value: str | None) -> str | None:
        return redact(value)

    @field_serializer("env")
    def _redact_env(self, value: dict[str, Any]) -> dict[str, Any]:
        def shown(key: str, item: Any) -> Any:
            if key == "DEFAULT_HEADERS":
                return redact_headers(item)
            return redact(item) if is_secret_key(key) or key in self.secret_keys else item

        return {k: shown(k, v) for k, v in value.items()}

    @field_serializer("default_headers")
    def _redact_headers(self, value: dict[str, str]) -> dict[str, str]:
        return redact_headers(value)

    def materialize(self, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
        """The provider configuration with `${ENV}` placeholders expanded. Call at run time; never store the result."""
        environ = os.environ if environ is None else environ
        return expand_env(
            {
                "protocol": self.protocol,
                "api_format": self.api_format,
                "provider": self.provider,
                "model_id": self.model_id,
                "base_url": self.base_url,
                "api_key": self.api_key,
                "default_headers": self.default_headers,
                "context_window": self.context_window,
                "max_output_tokens": self.max_output_tokens,
                "temperature": self.temperature,
                "think_config": self.think_config,
                "env": self.env,
            },
            environ,
        )


class ShellPlan(PlanModel):
    name: str
    namespace: str
    shell_type: str
    execution_type: str = Field(description="labels.type: local_engine (default), external_api or direct_chat")
    base_image: str | None = None
    support_model: list[str] = Field(default_factory=list)
    requires_workspace: bool | None = None
    sandbox: ShellSandbox = Field(default_factory=ShellSandbox, description="Where its commands run (closed defaults)")
    chain: list[str] = Field(default_factory=list, description="Shells visited through baseShellRef")


class McpServerPlan(PlanModel):
    name: str
    type: str = Field(description="stdio | sse | streamable-http")
    command: str | None = None
    args: list[str] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict)
    url: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    timeout: float | None = None
    source: str = Field(description="ghost, or skill:<name>")

    @field_serializer("env")
    def _redact_env(self, value: dict[str, str]) -> dict[str, str]:
        return {k: redact(v) if is_secret_key(k) else v for k, v in value.items()}

    @field_serializer("headers")
    def _redact_headers(self, value: dict[str, str]) -> dict[str, str]:
        return redact_headers(value)


class SkillPlan(PlanModel):
    name: str
    namespace: str
    description: str
    display_name: str | None = Field(default=None, description="spec.displayName: a friendly name for people")
    prompt: str | None = Field(default=None, description="The instructions (the SKILL.md body) a load returns")
    version: str | None = None
    preload: bool = False
    source: str = Field(description="ghost, or task")


class KnowledgeScope(PlanModel):
    """One restriction from a Task's `knowledgeBaseScopes` (`scopeRestricted: true`): the documents a search may
    return. Upstream's `folderIds`/`explicitDocumentIds` are row ids of its document tree; here a string entry is a
    folder (a path prefix of the stored `source`) or a document (a file name, or a path), and an integer, which
    names nothing here, is ignored (with a warning) so that the restriction only ever narrows."""

    folders: list[str] = Field(default_factory=list, description="Absolute, or relative (matched as path segments)")
    documents: list[str] = Field(default_factory=list, description="A file name, an absolute path or a path suffix")
    include_subfolders: bool = True

    def allows(self, source: str) -> bool:
        """Whether the document stored as `source` (an absolute POSIX path) is inside this scope."""
        folder = source.rpartition("/")[0]
        in_folder = any(_in_folder(folder, f.strip(), self.include_subfolders) for f in self.folders)
        return in_folder or any(_is_document(source, d.strip()) for d in self.documents)


def _in_folder(folder: str, wanted: str, deep: bool) -> bool:
    if wanted.startswith("/"):
        base = wanted.rstrip("/")
        return folder == base or (deep and folder.startswith(f"{base}/"))
    segments = wanted.strip("/")
    if not segments:
        return False
    return folder.endswith(f"/{segments}") or (deep and f"/{segments}/" in f"{folder}/")


def _is_document(source: str, wanted: str) -> bool:
    if "/" not in wanted:
        return bool(wanted) and source.rpartition("/")[2] == wanted
    return source == wanted if wanted.startswith("/") else source.endswith(f"/{wanted}")


class KnowledgeBasePlan(PlanModel):
    """A KnowledgeBase a member can search: everything needed to open its index, with the embedding Model resolved."""

    name: str
    namespace: str
    description: str | None = None
    embedding: ModelPlan | None = Field(
        default=None, description="The embedding Model (modelType: embedding); None: the offline built-in embedding"
    )
    chunking: KnowledgeChunking = Field(default_factory=KnowledgeChunking)
    backend: KnowledgeBackendSpec = Field(default_factory=KnowledgeBackendSpec)
    top_k: int = 5
    score_threshold: float | None = None
    source: str = Field(description="ghost (defaultKnowledgeBaseRefs), or task (knowledgeBaseRefs)")
    scopes: list[KnowledgeScope] = Field(
        default_factory=list,
        description="The Task's restrictions (knowledgeBaseScopes): a search returns documents inside any of them; "
        "none: the whole knowledge base",
    )

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    def allows(self, source: str) -> bool:
        """Whether searches may return the document stored as `source`."""
        return not self.scopes or any(scope.allows(source) for scope in self.scopes)


class MemberPlan(PlanModel):
    index: int
    role: str | None
    leader: bool
    bot: str = Field(description="namespace/name")
    ghost: str = Field(description="namespace/name")
    shell: ShellPlan
    model: ModelPlan
    system_prompt: str
    member_prompt: str | None = None
    skills: list[SkillPlan] = Field(default_factory=list)
    missing_skills: list[str] = Field(
        default_factory=list, description="Skills asked for but not found: skipped, and announced when the task runs"
    )
    mcp_servers: list[McpServerPlan] = Field(default_factory=list)
    knowledge_bases: list[KnowledgeBasePlan] = Field(default_factory=list)
    missing_knowledge_bases: list[str] = Field(
        default_factory=list, description="Knowledge bases referenced but not found: skipped, and announced"
    )
    require_confirmation: bool = False
    context_passing: ContextPassing = ContextPassing.NONE


class ExecutionPlan(PlanModel):
    team: str = Field(description="namespace/name")
    task: str | None = Field(default=None, description="namespace/name, when planned from a Task")
    collaboration_model: CollaborationModel
    leader: int = Field(description="Index of the leader member")
    members: list[MemberPlan]
    title: str | None = None
    prompt: str | None = None
    current_stage: int = 0
    workspace: Repository | None = None
    limits: TeamLimits
    labels: dict[str, str] = Field(default_factory=dict)
    warnings: list[str] = Field(default_factory=list)
