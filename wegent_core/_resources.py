"""The resource kinds, as pydantic models that read and write upstream Wegent YAML unchanged.

Python attributes are snake_case; the YAML keys are the upstream spellings (camelCase, with upstream's snake_case
exceptions such as `preload_skills` or `bind_mode`). Unknown keys are kept (`model_extra`) so a load/dump round trip
loses nothing; `unknown_fields()` lists them for strict validation.
"""

from __future__ import annotations

import copy
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal, Self

from pydantic import (
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel
from yaml.constructor import SafeConstructor
from yaml.nodes import ScalarNode

API_VERSION = "agent.wecode.io/v1"
MAX_PROMPT_BYTES = 60_000


class Schema(BaseModel):
    """Base of every model: camelCase keys, unknown keys kept."""

    model_config = ConfigDict(
        extra="allow",
        populate_by_name=True,
        alias_generator=to_camel,
        serialize_by_alias=True,
        protected_namespaces=(),
        defer_build=True,  # a kind's validator is built when first used: importing stays cheap
    )


def _label_value(value: Any) -> Any:
    # Upstream stores boolean-looking flags as "true"/"false"; YAML turns unquoted ones into bools.
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return value


def _number_to_str(value: Any) -> Any:
    # YAML reads `version: 1.0` as a float; upstream coerces such values back to strings.
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return value


def _none_to_empty(value: Any) -> Any:
    return {} if value is None else value


def _yaml_timestamp(value: Any) -> Any:
    # The YAML reader keeps timestamps as written; YAML 1.1 forms that pydantic refuses (`2001-12-14 21:59:43.10 -5`)
    # are read the way PyYAML, and so upstream, reads them.
    if isinstance(value, str) and SafeConstructor.timestamp_regexp.match(value):
        try:
            return datetime.fromisoformat(value)  # the common case, ten times faster than the YAML rules
        except ValueError:
            pass
        parsed = _TIMESTAMPS.construct_yaml_timestamp(ScalarNode("tag:yaml.org,2002:timestamp", value))
        return parsed if isinstance(parsed, datetime) else datetime(parsed.year, parsed.month, parsed.day)
    return value


_TIMESTAMPS = SafeConstructor()

LabelValue = Annotated[str, BeforeValidator(_label_value)]
Timestamp = Annotated[datetime, BeforeValidator(_yaml_timestamp)]
NumberString = Annotated[str, BeforeValidator(_number_to_str)]


# --- envelope -----------------------------------------------------------------------------------------------------


class ObjectMeta(Schema):
    name: str = Field(min_length=1)
    namespace: str = Field(default="default", min_length=1)
    display_name: str | None = None
    labels: Annotated[dict[str, LabelValue], BeforeValidator(_none_to_empty)] = Field(default_factory=dict)
    # Managed by stores: never compared when deciding whether a resource changed.
    resource_version: str | None = None
    created_at: Timestamp | None = None
    updated_at: Timestamp | None = None

    @field_validator("name", "namespace")
    @classmethod
    def _no_surrounding_space(cls, value: str) -> str:
        if value != value.strip():
            raise ValueError("must not start or end with whitespace")
        return value


class ResourceStatus(Schema):
    state: str = "Available"  # upstream: Available | Unavailable
    message: str | None = None


class Ref(Schema):
    """A reference by name. An omitted namespace means the namespace of the resource that holds the reference."""

    name: str = Field(min_length=1)
    namespace: str | None = None


class Resource(Schema):
    """The common envelope: apiVersion, kind, metadata, spec, status."""

    api_version: str = API_VERSION
    kind: str
    metadata: ObjectMeta
    spec: Schema
    status: ResourceStatus = Field(default_factory=ResourceStatus)

    @field_validator("api_version")
    @classmethod
    def _known_api_version(cls, value: str) -> str:
        if value != API_VERSION:
            raise ValueError(f"unsupported apiVersion {value!r} (expected {API_VERSION})")
        return value

    @property
    def name(self) -> str:
        return self.metadata.name

    @property
    def namespace(self) -> str:
        return self.metadata.namespace

    @property
    def key(self) -> tuple[str, str, str]:
        """Store identity: (namespace, kind, name)."""
        return (self.metadata.namespace, self.kind, self.metadata.name)

    def __str__(self) -> str:
        return f"{self.kind} {self.metadata.namespace}/{self.metadata.name}"

    def clone(self) -> Self:
        """A deep copy, several times faster than `model_copy(deep=True)` (stores copy on every read)."""
        return _clone(self)


_ATOMS = frozenset({str, int, float, bool, type(None)})
_IMMUTABLE = (str, int, float, bytes, date, StrEnum)  # date covers datetime


def _clone(value: Any) -> Any:
    # Resources hold only models, JSON-like containers and immutable scalars, so copy.deepcopy's memo is not needed.
    kind = type(value)
    if kind in _ATOMS:
        return value
    if kind is dict:
        return {k: _clone(v) for k, v in value.items()}
    if kind is list:
        return [_clone(v) for v in value]
    if isinstance(value, BaseModel):
        copied = kind.__new__(kind)
        set_attr = object.__setattr__
        set_attr(copied, "__dict__", {k: _clone(v) for k, v in value.__dict__.items()})
        extra = value.__pydantic_extra__
        set_attr(copied, "__pydantic_extra__", None if extra is None else _clone(extra))
        set_attr(copied, "__pydantic_fields_set__", set(value.__pydantic_fields_set__))
        private = value.__pydantic_private__
        set_attr(copied, "__pydantic_private__", None if private is None else copy.deepcopy(private))
        return copied
    if isinstance(value, _IMMUTABLE):
        return value
    return copy.deepcopy(value)  # sets from `!!set`, tuples, anything unexpected


# --- Ghost --------------------------------------------------------------------------------------------------------


class SkillRefMeta(Schema):
    # Upstream requires a numeric row id; this library has none, so the id is optional and informational.
    skill_id: int | None = Field(default=None, alias="skill_id")
    namespace: str = "default"
    is_public: bool = Field(default=False, alias="is_public")
    content_hash: str | None = Field(default=None, alias="content_hash", pattern=r"^sha256:[0-9a-fA-F]+$")


class KnowledgeBaseRef(Schema):
    id: int | None = None  # upstream's row id: informational here
    name: str
    namespace: str | None = None  # this library's addition; omitted: the Ghost's namespace (then public)


class GhostSpec(Schema):
    system_prompt: str
    mcp_servers: dict[str, Any] | None = None
    skills: list[str] | None = None
    preload_skills: list[str] | None = Field(default=None, alias="preload_skills")
    skill_refs: dict[str, SkillRefMeta] | None = Field(default=None, alias="skill_refs")
    preload_skill_refs: dict[str, SkillRefMeta] | None = Field(default=None, alias="preload_skill_refs")
    default_knowledge_base_refs: list[KnowledgeBaseRef] | None = None


class Ghost(Resource):
    kind: Literal["Ghost"] = "Ghost"
    spec: GhostSpec


# --- Model --------------------------------------------------------------------------------------------------------


class ModelType(StrEnum):
    LLM = "llm"
    TTS = "tts"
    STT = "stt"
    EMBEDDING = "embedding"
    RERANK = "rerank"
    VIDEO = "video"
    IMAGE = "image"


class TtsConfig(Schema):
    voice: str | None = None
    speed: float = Field(default=1.0, ge=0.25, le=4.0)
    output_format: str = Field(default="mp3", alias="output_format")


class SttConfig(Schema):
    language: str | None = None
    transcription_format: str = Field(default="text", alias="transcription_format")


class EmbeddingConfig(Schema):
    dimensions: int | None = None
    encoding_format: str = Field(default="float", alias="encoding_format")
    additional_input_modalities: list[str] | None = Field(default=None, alias="additional_input_modalities")


class RerankConfig(Schema):
    top_n: int | None = Field(default=None, alias="top_n")
    return_documents: bool = Field(default=True, alias="return_documents")


class ModelCapabilities(Schema):
    supports_image: bool | None = None
    supports_video: bool | None = None


class ModelSpec(Schema):
    # `modelConfig` is free-form upstream: `env`, `bind_model`, `allowed_models`, `DEFAULT_HEADERS`, ...
    config: dict[str, Any] = Field(alias="modelConfig")
    is_custom_config: bool | None = None
    protocol: str | None = None
    api_format: Literal["chat/completions", "responses"] | None = None
    cost_index: NumberString | None = None
    context_window: int | None = None
    max_output_tokens: int | None = None
    model_type: ModelType = ModelType.LLM
    model_group: str | None = None
    model_sub_group: str | None = None
    tts_config: TtsConfig | None = None
    stt_config: SttConfig | None = None
    embedding_config: EmbeddingConfig | None = None
    rerank_config: RerankConfig | None = None
    video_config: dict[str, Any] | None = None
    image_config: dict[str, Any] | None = None
    is_advanced: bool | None = None
    is_wework_available: bool | None = None
    model_capabilities: ModelCapabilities | None = None

    @field_validator("config", mode="before")
    @classmethod
    def _config_none(cls, value: Any) -> Any:
        return _none_to_empty(value)


class Model(Resource):
    kind: Literal["Model"] = "Model"
    spec: ModelSpec


# --- Shell --------------------------------------------------------------------------------------------------------


class SandboxMount(Schema):
    source: str = Field(description="A host path")
    target: str = Field(description="The path inside the sandbox")
    read_only: bool = True


class ShellSandbox(Schema):
    """Where a coding shell's commands run (this library's addition: upstream runs them in its executor's container).
    Everything is closed unless opened here."""

    type: str | None = Field(
        default=None, description="docker, podman, local or a plugin's; default: $WEGENT_SANDBOX, else docker"
    )
    network: Literal["none", "host"] = "none"
    memory_mb: int | None = Field(default=1024, ge=16)
    cpus: float | None = Field(default=1.0, gt=0)
    pids: int | None = Field(default=256, ge=8)
    mounts: list[SandboxMount] = Field(default_factory=list)
    use_cli: bool = Field(default=False, description="ClaudeCode: run the image's `claude` command line, if it has one")


class ShellSpec(Schema):
    # `runtime` is the v1.0 name of `shellType`; both are read, `shellType` is written.
    shell_type: str | None = Field(
        default=None,
        validation_alias=AliasChoices("shellType", "runtime"),
        serialization_alias="shellType",
    )
    support_model: list[str] | None = None
    base_image: str | None = None
    base_shell_ref: str | None = None  # a plain string naming a public shell, not an object
    requires_workspace: bool | None = None
    sandbox: ShellSandbox | None = None

    @model_validator(mode="after")
    def _type_or_base(self) -> ShellSpec:
        if not self.shell_type and not self.base_shell_ref:
            raise ValueError(
                "a Shell needs `shellType` (or its alias `runtime`), or a `baseShellRef` to inherit it from"
            )
        return self


class Shell(Resource):
    kind: Literal["Shell"] = "Shell"
    spec: ShellSpec


# --- Bot ----------------------------------------------------------------------------------------------------------


class BotSpec(Schema):
    ghost_ref: Ref
    shell_ref: Ref
    model_ref: Ref | None = None
    secondary_model_ref: Ref | None = None
    # Legacy, unschematised upstream block; resolution reads `bind_model`, `bind_model_namespace`, `allowed_models`.
    agent_config: dict[str, Any] | None = Field(default=None, alias="agent_config")


class Bot(Resource):
    kind: Literal["Bot"] = "Bot"
    spec: BotSpec


# --- Team ---------------------------------------------------------------------------------------------------------


class CollaborationModel(StrEnum):
    SOLO = "solo"
    PIPELINE = "pipeline"
    ROUTE = "route"
    COORDINATE = "coordinate"
    COLLABORATE = "collaborate"


class ContextPassing(StrEnum):
    NONE = "none"
    ORIGINAL_USER = "original_user"
    PREVIOUS_BOT = "previous_bot"
    ORIGINAL_AND_PREVIOUS = "original_and_previous"


def _normalise_enum(value: Any) -> Any:
    # Upstream sources contain values such as "pipeline " (trailing space) and mixed case.
    return value.strip().lower() if isinstance(value, str) else value


class TeamMember(Schema):
    bot_ref: Ref
    prompt: str | None = None
    role: str | None = None  # "leader" is the only value with a meaning; others are free text
    require_confirmation: bool = False
    context_passing: Annotated[ContextPassing, BeforeValidator(_normalise_enum)] = ContextPassing.NONE
    name: str | None = None  # documented upstream, ignored

    @property
    def is_leader(self) -> bool:
        return (self.role or "").strip().lower() == "leader"


class LocalizedText(Schema):
    en: str | None = None
    zh: str | None = None


class InputPlaceholder(LocalizedText):
    mobile: LocalizedText | None = None
    desktop: LocalizedText | None = None


class TeamLimits(Schema):
    """Structural limits that stop a runaway team (this library's addition; upstream has no such block)."""

    max_turns: int = Field(default=32, ge=1)
    max_model_calls: int = Field(default=128, ge=1)
    max_tokens: int | None = Field(default=2_000_000, ge=1)
    max_cost_usd: float | None = Field(default=None, gt=0)
    timeout_seconds: float = Field(default=3600, gt=0)
    turn_timeout_seconds: float = Field(default=600, gt=0)


MAX_QUICK_PHRASES = 6
MAX_QUICK_PHRASE_CHARS = 120


class TeamSpec(Schema):
    members: list[TeamMember]
    collaboration_model: Annotated[CollaborationModel, BeforeValidator(_normalise_enum)]
    bind_mode: list[str] | None = Field(default=None, alias="bind_mode")
    description: str | None = None
    icon: str | None = None
    requires_workspace: bool | None = None
    capability: dict[str, Any] | None = None
    input_placeholder: InputPlaceholder | None = None
    quick_phrases: list[str] = Field(default_factory=list, alias="quick_phrases")
    workflow: dict[str, Any] | None = None  # UI echo of collaborationModel in upstream init data, ignored
    limits: TeamLimits = Field(default_factory=TeamLimits)

    @field_validator("quick_phrases", mode="before")
    @classmethod
    def _trim_quick_phrases(cls, value: Any) -> Any:
        if not isinstance(value, list):
            return value
        phrases = [p.strip() if isinstance(p, str) else p for p in value]
        phrases = [p for p in phrases if p != ""]
        if len(phrases) > MAX_QUICK_PHRASES:
            raise ValueError(f"at most {MAX_QUICK_PHRASES} quick phrases are allowed, got {len(phrases)}")
        for phrase in phrases:
            if isinstance(phrase, str) and len(phrase) > MAX_QUICK_PHRASE_CHARS:
                raise ValueError(f"a quick phrase may hold at most {MAX_QUICK_PHRASE_CHARS} characters: {phrase!r}")
        return phrases

    @property
    def leader_index(self) -> int:
        """The member with role `leader` (the first, if several), else the first member."""
        return next((i for i, m in enumerate(self.members) if m.is_leader), 0)


class Team(Resource):
    kind: Literal["Team"] = "Team"
    spec: TeamSpec


# --- Workspace ----------------------------------------------------------------------------------------------------


class Repository(Schema):
    git_url: str
    git_repo: str
    git_repo_id: int | None = None
    branch_name: str
    git_domain: str


class WorkspaceSpec(Schema):
    repository: Repository


class Workspace(Resource):
    kind: Literal["Workspace"] = "Workspace"
    spec: WorkspaceSpec


# --- Task ---------------------------------------------------------------------------------------------------------


class TaskState(StrEnum):
    """Task status values, as upstream (CANCELLING and PENDING_CONFIRMATION included)."""

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    PENDING_CONFIRMATION = "PENDING_CONFIRMATION"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLING = "CANCELLING"
    CANCELLED = "CANCELLED"
    DELETE = "DELETE"


class SubtaskState(StrEnum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    PENDING_CONFIRMATION = "PENDING_CONFIRMATION"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    DELETE = "DELETE"


class TeamRef(Ref):
    user_id: int | None = Field(default=None, alias="user_id")


class TaskKnowledgeBaseRef(Schema):
    id: int | None = None
    name: str
    namespace: str | None = None  # this library's addition; omitted: the Task's namespace (then public)
    bound_by: str | None = None
    bound_at: Timestamp | None = None


class KnowledgeBaseScope(Schema):
    id: int | None = None
    namespace: str = "default"
    name: str
    scope_restricted: bool = False
    folder_ids: list[int | str] | None = None
    explicit_document_ids: list[int | str] | None = None
    include_subfolders: bool = True
    bound_by: str | None = None
    bound_at: Timestamp | None = None


class ExternalKnowledgeRef(Schema):
    provider: str
    mode: str = "explicit"
    id: int | str
    name: str | None = None
    scope: str | None = None
    target_type: Literal["knowledge_base", "folder", "document"] | None = Field(default=None, alias="target_type")
    node_id: int | str | None = Field(default=None, alias="node_id")
    document_id: int | str | None = Field(default=None, alias="document_id")
    parent_id: int | str | None = Field(default=None, alias="parent_id")
    target_name: str | None = Field(default=None, alias="target_name")
    resource_url: str | None = Field(default=None, alias="resource_url")
    bound_by: str | None = None
    bound_at: Timestamp | None = None


class ExecutionWorkspace(Schema):
    source: str
    path: str | None = None


class TaskExecution(Schema):
    workspace: ExecutionWorkspace


class TaskFork(Schema):
    source_task_id: int = Field(ge=1)
    after_message_id: int = Field(ge=0)
    root_task_id: int = Field(ge=1)
    runtime: str | None = None


class TaskSpec(Schema):
    # Upstream requires `title`; here it defaults to the UI's rule (first 50 characters of the prompt).
    title: str | None = None
    prompt: str
    team_ref: TeamRef
    # Upstream requires a Workspace even for chat tasks (the UI makes an empty one); here it is optional.
    workspace_ref: Ref | None = None
    is_group_chat: bool = Field(default=False, alias="is_group_chat")
    knowledge_base_refs: list[TaskKnowledgeBaseRef] | None = None
    knowledge_base_scopes: list[KnowledgeBaseScope] | None = None
    external_knowledge_refs: list[ExternalKnowledgeRef] = Field(default_factory=list)
    device_id: str | None = Field(default=None, alias="device_id")
    device_ref: dict[str, Any] | None = None  # documented upstream, not in its schema; ignored
    execution: TaskExecution | None = None
    fork: TaskFork | None = None
    current_stage: int | None = Field(default=None, ge=0)

    @field_validator("prompt")
    @classmethod
    def _prompt_size(cls, value: str) -> str:
        size = len(value.encode())
        if size > MAX_PROMPT_BYTES:
            raise ValueError(f"the prompt is {size} bytes of UTF-8; at most {MAX_PROMPT_BYTES} are allowed")
        return value

    @property
    def effective_title(self) -> str:
        if self.title:
            return self.title
        return self.prompt[:50] + ("..." if len(self.prompt) > 50 else "")


class SubtaskInfo(Schema):
    title: str | None = None
    role: str | None = None
    bot_ids: list[int | str] | None = Field(default=None, alias="bot_ids")
    executor_namespace: str | None = Field(default=None, alias="executor_namespace")
    executor_name: str | None = Field(default=None, alias="executor_name")
    status: SubtaskState | None = None
    progress: int | None = None
    result: dict[str, Any] | None = None
    error_message: str | None = None
    message_id: int | None = None
    parent_id: int | None = None
    created_at: Timestamp | None = None
    updated_at: Timestamp | None = None
    completed_at: Timestamp | None = None


class TaskApp(Schema):
    name: str | None = None
    address: str | None = None
    preview_url: str | None = None


class TaskArchive(Schema):
    storage_key: str | None = None
    archived_at: Timestamp | None = None
    expires_at: Timestamp | None = None
    size_bytes: int | None = None
    session_file_included: bool | None = None
    git_included: bool | None = None


class TaskStatus(ResourceStatus):
    status: TaskState = TaskState.PENDING
    progress: int = Field(default=0, ge=0, le=100)
    result: dict[str, Any] | None = None
    error_message: str | None = None
    created_at: Timestamp | None = None
    updated_at: Timestamp | None = None
    started_at: Timestamp | None = None  # appears in upstream samples, not in its schema
    completed_at: Timestamp | None = None
    sub_tasks: list[SubtaskInfo] | None = None
    app: TaskApp | None = None
    archive: TaskArchive | None = None


class Task(Resource):
    kind: Literal["Task"] = "Task"
    spec: TaskSpec
    status: TaskStatus = Field(default_factory=TaskStatus)


# --- Skill --------------------------------------------------------------------------------------------------------


class SkillTool(Schema):
    name: str
    provider: str | None = None
    config: dict[str, Any] | None = None


class SkillProvider(Schema):
    """Names Python code in an uploaded skill package. Recorded only: loading YAML never imports it."""

    module: str = "provider"
    class_: str | None = Field(default=None, alias="class")


class SkillSource(Schema):
    type: Literal["upload", "git"] | None = None
    repo_url: str | None = Field(default=None, alias="repo_url")
    skill_path: str | None = Field(default=None, alias="skill_path")
    imported_at: Timestamp | None = Field(default=None, alias="imported_at")


class SkillSpec(Schema):
    description: str
    display_name: str | None = None
    prompt: str | None = None
    version: NumberString | None = None
    author: str | None = None
    tags: list[str] | None = None
    bind_shells: list[str] | None = None  # None: usable by every shell (see docs/resolution.md)
    config: dict[str, Any] | None = None
    tools: list[SkillTool] | None = None
    provider: SkillProvider | None = None
    mcp_servers: dict[str, Any] | None = None
    visible: bool = True
    source: SkillSource | None = None
    capability: dict[str, Any] | None = None


class SkillStatus(ResourceStatus):
    file_size: int | None = None
    file_hash: str | None = None


class Skill(Resource):
    kind: Literal["Skill"] = "Skill"
    spec: SkillSpec
    status: SkillStatus = Field(default_factory=SkillStatus)


# --- KnowledgeBase ------------------------------------------------------------------------------------------------
# Upstream has the kind but keeps it outside its core; the fields below are this library's (docs/knowledge.md), with
# upstream's `retrievalConfig` read where it says the same thing (`top_k`, `score_threshold`, the embedding model).


class KnowledgeEmbedding(Schema):
    """How texts become vectors. No `modelRef`: the offline all-MiniLM-L6-v2 shipped on PyPI (no network, ever)."""

    model_ref: Ref | None = Field(
        default=None, description="A Model with modelType: embedding (an OpenAI-compatible /embeddings endpoint)"
    )


class KnowledgeChunking(Schema):
    """How documents are cut before they are embedded, in characters."""

    size: int = Field(default=800, ge=50, le=20_000)
    overlap: int = Field(default=120, ge=0)

    @model_validator(mode="after")
    def _overlap_below_size(self) -> KnowledgeChunking:
        if self.overlap >= self.size:
            raise ValueError(f"chunking.overlap ({self.overlap}) must be smaller than chunking.size ({self.size})")
        return self


class KnowledgeBackendSpec(Schema):
    """Where the vectors live. `path` and `url` are exclusive; neither: `<data dir>/knowledge/<type>`."""

    type: str = Field(default="chromadb", description="chromadb, or a knowledge backend plugin's name")
    path: str | None = Field(default=None, description="A directory for an embedded, persistent index")
    url: str | None = Field(default=None, description="A server, such as http://127.0.0.1:8000 for chromadb")
    collection: str | None = Field(default=None, description="Default: derived from the namespace and name")
    options: dict[str, Any] = Field(default_factory=dict, description="Passed to the backend as they are")

    @model_validator(mode="after")
    def _path_or_url(self) -> KnowledgeBackendSpec:
        if self.path and self.url:
            raise ValueError("a knowledge backend takes a path or a url, not both")
        return self


class KnowledgeRetrievalConfig(Schema):
    """Upstream's `retrievalConfig` (snake_case inside, as upstream writes it)."""

    top_k: int | None = Field(default=None, alias="top_k", ge=1, le=100)
    score_threshold: float | None = Field(default=None, alias="score_threshold")
    retrieval_mode: str | None = Field(default=None, alias="retrieval_mode")
    embedding_config: dict[str, Any] | None = Field(default=None, alias="embedding_config")


class KnowledgeBaseSpec(Schema):
    name: str | None = Field(default=None, description="Upstream's display name; metadata.name is the identity")
    description: str | None = None
    embedding: KnowledgeEmbedding = Field(default_factory=KnowledgeEmbedding)
    chunking: KnowledgeChunking = Field(default_factory=KnowledgeChunking)
    backend: KnowledgeBackendSpec = Field(default_factory=KnowledgeBackendSpec)
    documents: list[str] = Field(
        default_factory=list, description="Files and folders attached to the knowledge base (`wegent kb add KB`)"
    )
    top_k: int = Field(default=5, ge=1, le=100, description="Chunks a search returns by default")
    retrieval_config: KnowledgeRetrievalConfig | None = None

    @property
    def embedding_ref(self) -> Ref | None:
        """`embedding.modelRef`, else upstream's `retrievalConfig.embedding_config.model_name`."""
        if self.embedding.model_ref is not None:
            return self.embedding.model_ref
        config = (self.retrieval_config.embedding_config if self.retrieval_config else None) or {}
        name = config.get("model_name")
        if isinstance(name, str) and name.strip():
            return Ref(name=name.strip(), namespace=config.get("model_namespace") or None)
        return None

    @property
    def effective_top_k(self) -> int:
        upstream = self.retrieval_config.top_k if self.retrieval_config else None
        return upstream if upstream and "top_k" not in self.model_fields_set else self.top_k


class KnowledgeBase(Resource):
    kind: Literal["KnowledgeBase"] = "KnowledgeBase"
    spec: KnowledgeBaseSpec


# --- registry -----------------------------------------------------------------------------------------------------

KINDS: dict[str, type[Resource]] = {
    cls.model_fields["kind"].default: cls
    for cls in (Ghost, Model, Shell, Bot, Team, Workspace, Task, Skill, KnowledgeBase)
}
"""Every resource kind the library understands, by its `kind` value."""
