"""Property-based tests of the loader.

(a) Whatever it is given (YAML-able data, text, bytes, mutated valid documents), `load`/`loads` either succeed or raise
    `ValidationError`: never any other exception.
(b) Valid resources of every kind round-trip exactly through `dump` (YAML and JSON), and `dump` is idempotent.
"""

from __future__ import annotations

import json
import os
import string
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wegent_core._errors import ValidationError
from wegent_core._loader import ResourceSet, dump, load, loads
from wegent_core._resources import KINDS, CollaborationModel, ContextPassing, ModelType, TaskState

# libyaml's emitter, as the library uses: PyYAML's pure-Python emitter writes U+0085 unescaped in plain keys,
# where the reader then takes it for a line break.
DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
# Modest by default so the file runs in seconds; WEGENT_PROPERTY_EXAMPLES=2000 for a deeper search.
EXAMPLES = int(os.environ.get("WEGENT_PROPERTY_EXAMPLES", "30"))
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FEW = settings(max_examples=max(EXAMPLES // 3, 5), deadline=None, suppress_health_check=[HealthCheck.too_slow])

# --- building blocks ----------------------------------------------------------------------------------------------

ALPHANUMERIC = string.ascii_lowercase + string.digits
dns_names = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,18}[a-z0-9])?", fullmatch=True)
# Names are free text apart from surrounding whitespace; mostly DNS-like, sometimes any unicode.
names = dns_names | st.text(min_size=1, max_size=16).filter(lambda s: s.strip() == s)
namespaces = st.sampled_from(["default", "public", "team-a", "parent/child"]) | dns_names
texts = st.text(max_size=40)
# Multi-line strings, as prompts are written: several lines, blank lines, indentation, sometimes a final newline.
multiline = st.builds(
    lambda lines, end: "\n".join(lines) + end,
    st.lists(
        st.text(alphabet=st.characters(exclude_categories=["Cs", "Cc", "Zl", "Zp"]), max_size=30),
        min_size=1,
        max_size=6,
    ),
    st.sampled_from(["", "\n"]),
)
prose = texts | multiline
small_ints = st.integers(min_value=0, max_value=10**6)
finite_floats = st.floats(allow_nan=False, allow_infinity=False, width=64)
datetimes = st.datetimes(
    min_value=datetime(1970, 1, 2), max_value=datetime(2100, 1, 1), timezones=st.none() | st.just(UTC)
)

json_scalars = st.none() | st.booleans() | st.integers(min_value=-(2**53), max_value=2**53) | finite_floats | texts
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
    max_leaves=8,
)
# Keys no schema defines (nor any alias of a defined field): what a future upstream version might add.
extra_keys = st.from_regex(r"x[A-Z][A-Za-z0-9_]{0,8}", fullmatch=True)
extras = st.dictionaries(extra_keys, json_values, max_size=2)
labels = st.dictionaries(
    st.from_regex(r"[A-Za-z][A-Za-z0-9_./-]{0,15}", fullmatch=True),
    texts | st.sampled_from(["true", "false", "1.0", "null", "~", "yes"]),
    max_size=4,
)


def optional(draw: st.DrawFn, target: dict[str, Any], key: str, strategy: st.SearchStrategy[Any]) -> None:
    if draw(st.booleans()):
        target[key] = draw(strategy)


def with_extras(draw: st.DrawFn, mapping: dict[str, Any]) -> dict[str, Any]:
    mapping.update(draw(extras))
    return mapping


@st.composite
def refs(draw: st.DrawFn) -> dict[str, Any]:
    ref: dict[str, Any] = {"name": draw(names)}
    optional(draw, ref, "namespace", namespaces)
    return with_extras(draw, ref)


@st.composite
def envelopes(draw: st.DrawFn, kind: str, spec: dict[str, Any]) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": draw(names)}
    optional(draw, metadata, "namespace", namespaces)
    optional(draw, metadata, "displayName", texts)
    optional(draw, metadata, "labels", labels)
    document: dict[str, Any] = {"kind": kind, "metadata": with_extras(draw, metadata), "spec": spec}
    if draw(st.booleans()):
        document["apiVersion"] = "agent.wecode.io/v1"
    if kind not in ("Task", "Skill") and draw(st.booleans()):
        status: dict[str, Any] = {"state": draw(st.sampled_from(["Available", "Unavailable"]))}
        optional(draw, status, "message", texts)
        document["status"] = with_extras(draw, status)
    return with_extras(draw, document)


# --- valid documents of every kind --------------------------------------------------------------------------------


@st.composite
def mcp_servers(draw: st.DrawFn) -> dict[str, Any]:
    stdio = st.fixed_dictionaries(
        {"command": st.sampled_from(["docker", "npx", "uvx"]), "args": st.lists(texts, max_size=4)},
        optional={"env": st.dictionaries(st.from_regex(r"[A-Z_]{1,10}", fullmatch=True), texts, max_size=2)},
    )
    remote = st.fixed_dictionaries(
        {"url": st.sampled_from(["http://127.0.0.1:9000/mcp", "https://mcp.example.com/sse"])},
        optional={
            "type": st.sampled_from(["streamable-http", "sse", "http"]),
            "headers": st.dictionaries(st.sampled_from(["Authorization", "X-Team"]), texts, max_size=2),
            "timeout": st.integers(min_value=1, max_value=600),
        },
    )
    return draw(st.dictionaries(dns_names, stdio | remote, max_size=3))


@st.composite
def skill_ref_metas(draw: st.DrawFn) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    optional(draw, meta, "skill_id", st.integers(min_value=1, max_value=10**6))
    optional(draw, meta, "namespace", namespaces)
    optional(draw, meta, "is_public", st.booleans())
    optional(draw, meta, "content_hash", st.from_regex(r"sha256:[0-9a-f]{8,64}", fullmatch=True))
    return meta


@st.composite
def ghosts(draw: st.DrawFn) -> dict[str, Any]:
    spec: dict[str, Any] = {"systemPrompt": draw(prose)}
    optional(draw, spec, "mcpServers", mcp_servers())
    skills = draw(st.lists(dns_names, max_size=4, unique=True))
    if skills or draw(st.booleans()):
        spec["skills"] = skills
        if skills:
            preload = draw(st.lists(st.sampled_from(skills), unique=True))
            if preload:
                spec["preload_skills"] = preload
            optional(draw, spec, "skill_refs", st.fixed_dictionaries({s: skill_ref_metas() for s in skills}))
            if preload:
                preload_refs = st.fixed_dictionaries({s: skill_ref_metas() for s in preload})
                optional(draw, spec, "preload_skill_refs", preload_refs)
    optional(
        draw,
        spec,
        "defaultKnowledgeBaseRefs",
        st.lists(st.fixed_dictionaries({"name": names}, optional={"id": small_ints}), max_size=2),
    )
    return draw(envelopes("Ghost", with_extras(draw, spec)))


@st.composite
def models(draw: st.DrawFn) -> dict[str, Any]:
    env = draw(
        st.fixed_dictionaries(
            {},
            optional={
                "model": st.sampled_from(["openai", "claude", "gemini"]),
                "model_id": st.sampled_from(["gpt-4o-mini", "claude-sonnet-4-5", "gemini-2.5-pro"]),
                "api_key": st.sampled_from(["${OPENAI_API_KEY}", "${ANTHROPIC_API_KEY}", "sk-test"]),
                "base_url": st.sampled_from(["https://api.openai.com/v1", "http://127.0.0.1:8080/v1"]),
                "temperature": st.floats(min_value=0, max_value=2),
                "DIFY_PARAMS": st.just('{"a": 1}'),
            },
        )
    )
    config: dict[str, Any] = {"env": env} if env or draw(st.booleans()) else {"bind_model": draw(dns_names)}
    optional(draw, config, "allowed_models", st.lists(st.fixed_dictionaries({"name": dns_names}), max_size=2))
    optional(draw, config, "context_window", st.integers(min_value=1, max_value=2_000_000))
    spec: dict[str, Any] = {"modelConfig": config}
    optional(draw, spec, "isCustomConfig", st.booleans())
    optional(draw, spec, "protocol", st.sampled_from(["openai", "openai-responses", "claude", "gemini"]))
    optional(draw, spec, "apiFormat", st.sampled_from(["chat/completions", "responses"]))
    optional(draw, spec, "costIndex", st.sampled_from(["1", "0.5", "3"]) | st.integers(0, 9) | st.just(1.5))
    optional(draw, spec, "contextWindow", st.integers(min_value=1, max_value=2_000_000))
    optional(draw, spec, "maxOutputTokens", st.integers(min_value=1, max_value=200_000))
    optional(draw, spec, "modelType", st.sampled_from([m.value for m in ModelType]))
    optional(draw, spec, "modelGroup", texts)
    optional(draw, spec, "modelSubGroup", texts)
    optional(
        draw,
        spec,
        "ttsConfig",
        st.fixed_dictionaries(
            {},
            optional={"voice": texts, "speed": st.floats(0.25, 4.0), "output_format": st.sampled_from(["mp3", "wav"])},
        ),
    )
    optional(draw, spec, "sttConfig", st.fixed_dictionaries({}, optional={"language": texts}))
    optional(draw, spec, "embeddingConfig", st.fixed_dictionaries({}, optional={"dimensions": small_ints}))
    optional(
        draw,
        spec,
        "rerankConfig",
        st.fixed_dictionaries({}, optional={"top_n": small_ints, "return_documents": st.booleans()}),
    )
    optional(draw, spec, "videoConfig", st.dictionaries(texts, json_values, max_size=2))
    optional(draw, spec, "isAdvanced", st.booleans())
    optional(
        draw,
        spec,
        "modelCapabilities",
        st.fixed_dictionaries({}, optional={"supportsImage": st.booleans(), "supportsVideo": st.booleans()}),
    )
    return draw(envelopes("Model", with_extras(draw, spec)))


@st.composite
def shells(draw: st.DrawFn) -> dict[str, Any]:
    shell_type = st.sampled_from(["ClaudeCode", "Agno", "Dify", "Chat"])
    spec: dict[str, Any] = {}
    how = draw(st.sampled_from(["shellType", "runtime", "baseShellRef"]))
    if how == "baseShellRef":
        spec["baseShellRef"] = draw(shell_type)
    else:
        spec[how] = draw(shell_type)
        optional(draw, spec, "baseShellRef", shell_type)
    optional(draw, spec, "supportModel", st.lists(st.sampled_from(["claude", "openai", "gemini"]), max_size=3))
    optional(draw, spec, "baseImage", st.sampled_from(["ghcr.io/wecode-ai/wegent-executor:latest", "python:3.11"]))
    optional(draw, spec, "requiresWorkspace", st.booleans())
    return draw(envelopes("Shell", with_extras(draw, spec)))


@st.composite
def bots(draw: st.DrawFn) -> dict[str, Any]:
    spec: dict[str, Any] = {"ghostRef": draw(refs()), "shellRef": draw(refs())}
    optional(draw, spec, "modelRef", refs())
    optional(draw, spec, "secondaryModelRef", refs())
    optional(
        draw,
        spec,
        "agent_config",
        st.fixed_dictionaries(
            {"bind_model": dns_names}, optional={"bind_model_type": st.sampled_from(["public", "user", "group"])}
        ),
    )
    return draw(envelopes("Bot", with_extras(draw, spec)))


def enum_spelling(value: str) -> st.SearchStrategy[str]:
    # Upstream sources contain trailing spaces and other cases; they normalise to the enum value.
    return st.sampled_from([value, value.upper(), value.title(), f"{value} ", f" {value}  "])


@st.composite
def team_members(draw: st.DrawFn) -> dict[str, Any]:
    member: dict[str, Any] = {"botRef": draw(refs())}
    optional(draw, member, "prompt", prose)
    optional(draw, member, "role", st.sampled_from(["leader", "member", "developer", "Leader"]))
    optional(draw, member, "requireConfirmation", st.booleans())
    optional(draw, member, "contextPassing", st.sampled_from(list(ContextPassing)).flatmap(enum_spelling))
    optional(draw, member, "name", names)
    return with_extras(draw, member)


@st.composite
def teams(draw: st.DrawFn) -> dict[str, Any]:
    mode = draw(st.sampled_from(list(CollaborationModel)))
    spec: dict[str, Any] = {
        "members": draw(st.lists(team_members(), max_size=5)),
        "collaborationModel": draw(enum_spelling(mode.value)),
    }
    optional(draw, spec, "bind_mode", st.lists(st.sampled_from(["chat", "code", "knowledge", "task"]), max_size=4))
    optional(draw, spec, "description", prose)
    optional(draw, spec, "icon", texts)
    optional(draw, spec, "requiresWorkspace", st.booleans())
    optional(draw, spec, "capability", st.dictionaries(texts, json_values, max_size=2))
    optional(
        draw,
        spec,
        "inputPlaceholder",
        st.fixed_dictionaries(
            {}, optional={"en": texts, "zh": texts, "mobile": st.fixed_dictionaries({}, optional={"en": texts})}
        ),
    )
    optional(draw, spec, "quick_phrases", st.lists(st.text(max_size=120), max_size=6))
    optional(draw, spec, "workflow", st.just({"mode": mode.value}))
    optional(
        draw,
        spec,
        "limits",
        st.fixed_dictionaries(
            {},
            optional={
                "maxTurns": st.integers(1, 100),
                "maxModelCalls": st.integers(1, 1000),
                "maxTokens": st.none() | st.integers(1, 10**7),
                "maxCostUsd": st.none() | st.floats(0.01, 1000),
                "timeoutSeconds": st.floats(1, 86_400) | st.integers(1, 86_400),
                "turnTimeoutSeconds": st.floats(1, 3600),
            },
        ),
    )
    return draw(envelopes("Team", with_extras(draw, spec)))


@st.composite
def workspaces(draw: st.DrawFn) -> dict[str, Any]:
    repository: dict[str, Any] = {
        "gitUrl": draw(st.sampled_from(["https://github.com/o/r.git", ""])),
        "gitRepo": draw(st.sampled_from(["o/r", "{user}/{repo}", ""])),
        "branchName": draw(st.sampled_from(["main", "feature/x", ""])),
        "gitDomain": draw(st.sampled_from(["github.com", "gitlab.example.com", ""])),
    }
    optional(draw, repository, "gitRepoId", small_ints)
    return draw(envelopes("Workspace", with_extras(draw, {"repository": repository})))


@st.composite
def tasks(draw: st.DrawFn) -> dict[str, Any]:
    team_ref = draw(refs())
    optional(draw, team_ref, "user_id", small_ints)
    spec: dict[str, Any] = {"prompt": draw(prose), "teamRef": team_ref}
    optional(draw, spec, "title", texts)
    optional(draw, spec, "workspaceRef", refs())
    optional(draw, spec, "is_group_chat", st.booleans())
    optional(
        draw,
        spec,
        "knowledgeBaseRefs",
        st.lists(
            st.fixed_dictionaries({"name": names}, optional={"id": small_ints, "boundBy": texts, "boundAt": datetimes}),
            max_size=2,
        ),
    )
    optional(
        draw,
        spec,
        "externalKnowledgeRefs",
        st.lists(
            st.fixed_dictionaries(
                {"provider": texts, "id": small_ints | dns_names},
                optional={
                    "target_type": st.sampled_from(["knowledge_base", "folder", "document"]),
                    "node_id": small_ints,
                },
            ),
            max_size=2,
        ),
    )
    optional(draw, spec, "device_id", texts)
    optional(draw, spec, "deviceRef", refs())
    optional(
        draw,
        spec,
        "execution",
        st.fixed_dictionaries(
            {"workspace": st.fixed_dictionaries({"source": st.just("git_worktree")}, optional={"path": texts})}
        ),
    )
    optional(draw, spec, "currentStage", st.integers(0, 7))
    document = draw(envelopes("Task", with_extras(draw, spec)))
    if draw(st.booleans()):
        status: dict[str, Any] = {"status": draw(st.sampled_from([s.value for s in TaskState]))}
        optional(draw, status, "progress", st.integers(0, 100))
        optional(draw, status, "result", st.dictionaries(texts, json_values, max_size=2))
        optional(draw, status, "errorMessage", prose)
        optional(draw, status, "createdAt", datetimes)
        optional(draw, status, "startedAt", datetimes)
        optional(draw, status, "completedAt", datetimes)
        document["status"] = with_extras(draw, status)
    return document


@st.composite
def skills(draw: st.DrawFn) -> dict[str, Any]:
    spec: dict[str, Any] = {"description": draw(prose)}
    optional(draw, spec, "displayName", texts)
    optional(draw, spec, "prompt", multiline)
    optional(draw, spec, "version", st.sampled_from(["1.0.0", "2"]) | st.sampled_from([1.0, 2, 0.5]))
    optional(draw, spec, "author", texts)
    optional(draw, spec, "tags", st.lists(texts, max_size=3))
    optional(draw, spec, "bindShells", st.lists(st.sampled_from(["ClaudeCode", "Agno", "Dify", "Chat"]), max_size=4))
    optional(draw, spec, "config", st.dictionaries(texts, json_values, max_size=2))
    optional(
        draw,
        spec,
        "tools",
        st.lists(
            st.fixed_dictionaries(
                {"name": dns_names},
                optional={"provider": dns_names, "config": st.dictionaries(texts, json_values, max_size=2)},
            ),
            max_size=2,
        ),
    )
    optional(draw, spec, "provider", st.fixed_dictionaries({}, optional={"module": dns_names, "class": dns_names}))
    optional(draw, spec, "mcpServers", mcp_servers())
    optional(draw, spec, "visible", st.booleans())
    optional(
        draw,
        spec,
        "source",
        st.fixed_dictionaries(
            {}, optional={"type": st.sampled_from(["upload", "git"]), "repo_url": texts, "imported_at": datetimes}
        ),
    )
    document = draw(envelopes("Skill", with_extras(draw, spec)))
    if draw(st.booleans()):
        status: dict[str, Any] = {"state": "Available"}
        optional(draw, status, "fileSize", small_ints)
        optional(draw, status, "fileHash", st.from_regex(r"[0-9a-f]{64}", fullmatch=True))
        document["status"] = with_extras(draw, status)
    return document


@st.composite
def knowledge_bases(draw: st.DrawFn) -> dict[str, Any]:
    spec: dict[str, Any] = {}
    optional(draw, spec, "name", texts)
    optional(draw, spec, "description", texts)
    optional(draw, spec, "embedding", st.fixed_dictionaries({}, optional={"modelRef": refs()}))
    size = draw(st.integers(min_value=50, max_value=5000))
    optional(draw, spec, "chunking", st.fixed_dictionaries({"size": st.just(size), "overlap": st.integers(0, 49)}))
    backend = st.fixed_dictionaries(
        {}, optional={"type": st.just("chromadb"), "path": texts, "collection": dns_names}
    ) | st.fixed_dictionaries({"url": st.just("http://127.0.0.1:8000")})
    optional(draw, spec, "backend", backend)
    optional(draw, spec, "documents", st.lists(texts, max_size=3))
    optional(draw, spec, "topK", st.integers(1, 100))
    optional(
        draw,
        spec,
        "retrievalConfig",
        st.fixed_dictionaries({}, optional={"top_k": st.integers(1, 100), "retrieval_mode": st.just("vector")}),
    )
    return draw(envelopes("KnowledgeBase", with_extras(draw, spec)))


KIND_STRATEGIES: dict[str, st.SearchStrategy[dict[str, Any]]] = {
    "Ghost": ghosts(),
    "Model": models(),
    "Shell": shells(),
    "Bot": bots(),
    "Team": teams(),
    "Workspace": workspaces(),
    "Task": tasks(),
    "Skill": skills(),
    "KnowledgeBase": knowledge_bases(),
}
assert set(KIND_STRATEGIES) == set(KINDS)
valid_documents = st.one_of(*KIND_STRATEGIES.values())


def identity(document: dict[str, Any]) -> tuple[str, str, str]:
    return (document["kind"], document["metadata"].get("namespace", "default"), document["metadata"]["name"])


document_lists = st.lists(valid_documents, min_size=1, max_size=6, unique_by=identity)


# --- (b) valid resources round-trip -------------------------------------------------------------------------------


def to_yaml(documents: list[dict[str, Any]]) -> str:
    # Datetimes are given to YAML as ISO strings so both the YAML and the dict path see the same values.
    plain = json.loads(json.dumps(documents, default=str))
    return yaml.dump_all(plain, Dumper=DUMPER, allow_unicode=True, sort_keys=False)


@SETTINGS
@given(document_lists)
def test_valid_documents_load(documents: list[dict[str, Any]]) -> None:
    resources = loads(documents)
    assert [r.kind for r in resources] == [d["kind"] for d in documents]
    assert [r.name for r in resources] == [d["metadata"]["name"] for d in documents]
    assert loads(to_yaml(documents)) == resources


@SETTINGS
@given(document_lists, st.sampled_from(["yaml", "json"]))
def test_valid_resources_round_trip_exactly(documents: list[dict[str, Any]], fmt: str) -> None:
    resources = loads(documents)
    text = dump(resources, format=fmt)
    again = loads(text, source=f"dumped.{fmt}")
    assert again == resources
    for before, after in zip(resources, again, strict=True):
        assert type(before) is type(after)
        assert before.model_extra == after.model_extra
        assert before.spec.model_extra == after.spec.model_extra


@SETTINGS
@given(document_lists, st.sampled_from(["yaml", "json"]))
def test_dump_is_idempotent(documents: list[dict[str, Any]], fmt: str) -> None:
    first = dump(loads(documents), format=fmt)
    assert dump(loads(first), format=fmt) == first


@FEW
@given(valid_documents)
def test_single_resource_round_trips_through_json_object(document: dict[str, Any]) -> None:
    (resource,) = loads(document)
    text = dump(resource, format="json")
    assert isinstance(json.loads(text), dict)
    assert loads(text) == [resource]


@FEW
@given(document_lists, st.booleans())
def test_round_trip_through_files(tmp_path_factory: Any, documents: list[dict[str, Any]], as_json: bool) -> None:
    directory: Path = tmp_path_factory.mktemp("rt")
    resources = loads(documents)
    path = directory / ("all.json" if as_json else "all.yaml")
    path.write_text(dump(resources, format="json" if as_json else "yaml"), encoding="utf-8")
    assert load(directory) == resources


# --- (a) nothing but ValidationError ------------------------------------------------------------------------------

yaml_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=20)
    | st.binary(max_size=8)
    | st.datetimes()
    | st.dates()
)
yaml_data = st.recursive(
    yaml_scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=10) | st.integers() | st.none() | st.booleans(), inner, max_size=4)
    ),
    max_leaves=20,
)
# Documents that look like resources: a known (or nearly known) kind, arbitrary metadata and spec.
kinds = st.sampled_from([*KINDS, "Tema", "team", "Template", "Deployment", ""]) | st.text(max_size=8) | yaml_scalars
resource_like = st.fixed_dictionaries(
    {"kind": kinds},
    optional={
        "apiVersion": st.sampled_from(["agent.wecode.io/v1", "v2"]) | yaml_scalars,
        "metadata": st.fixed_dictionaries(
            {}, optional={"name": names | yaml_scalars, "namespace": yaml_data, "labels": yaml_data}
        )
        | yaml_data,
        "spec": yaml_data,
        "status": yaml_data,
    },
)


def outcome(call: Any) -> ResourceSet | ValidationError:
    """Run a load; anything but success or ValidationError fails the test (hypothesis reports it)."""
    try:
        resources = call()
    except ValidationError as exc:
        failure = exc
    else:
        assert isinstance(resources, ResourceSet)
        for warning in resources.warnings:
            assert warning.severity == "warning"
        return resources
    assert failure.problems, "a ValidationError must list its problems"
    assert any(p.severity == "error" for p in failure.problems)
    for problem in failure.problems:
        assert problem.line is None or problem.line >= 1
        assert str(problem)
    assert str(failure)
    return failure


def yaml_text(data: Any) -> str | None:
    try:
        return yaml.dump_all([data] if not isinstance(data, list) else data, Dumper=DUMPER, allow_unicode=True)
    except (yaml.YAMLError, ValueError, RecursionError):
        return None


@SETTINGS
@given(yaml_data | resource_like | st.lists(resource_like, max_size=3), st.booleans())
def test_any_yaml_data_gives_resources_or_a_validation_error(data: Any, strict: bool) -> None:
    text = yaml_text(data)
    if text is not None:
        outcome(lambda: loads(text, strict=strict))
    outcome(lambda: loads(data, strict=strict))


@SETTINGS
@given(st.text(), st.booleans())
def test_any_text_gives_resources_or_a_validation_error(text: str, strict: bool) -> None:
    outcome(lambda: loads(text, strict=strict))


@SETTINGS
@given(st.binary())
def test_any_bytes_give_resources_or_a_validation_error(data: bytes) -> None:
    outcome(lambda: loads(data))


@FEW
@given(st.binary(), st.sampled_from(["x.yaml", "x.yml", "x.json"]))
def test_any_file_gives_resources_or_a_validation_error(tmp_path_factory: Any, data: bytes, name: str) -> None:
    path = tmp_path_factory.mktemp("any") / name
    path.write_bytes(data)
    outcome(lambda: load(path))


YAML_SNIPPETS = [
    "kind: Ghost\n",
    "metadata: {name: g}\n",
    "spec: {systemPrompt: p}\n",
    "---\n",
    "- ",
    "  ",
    "{",
    "}",
    "[",
    "]",
    "&a ",
    "*a ",
    "!!python/name:os.system ",
    "!!binary ",
    "? ",
    ": ",
    "'",
    '"',
    "#",
    "\t",
    "\n",
    "...\n",
    "%YAML 1.1\n",
    "<<: *a\n",
    "|\n",
    ">-\n",
    "\\",
    "\ufeff",
    "null",
    "~",
    "1e3",
    ".inf",
    "2024-01-01",
]


@SETTINGS
@given(st.lists(st.sampled_from(YAML_SNIPPETS) | st.text(max_size=5), max_size=30))
def test_yaml_like_text_gives_resources_or_a_validation_error(pieces: list[str]) -> None:
    outcome(lambda: loads("".join(pieces)))
    outcome(lambda: loads("".join(pieces), strict=True))


# Mutations of valid documents: drop, rename or retype keys at any depth, or wrap the document.


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found += paths(item, (*prefix, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found += paths(item, (*prefix, i))
    return found


def get(value: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        value = value[part]
    return value


@st.composite
def mutated(draw: st.DrawFn) -> Any:
    document = json.loads(json.dumps(draw(valid_documents), default=str))
    for _ in range(draw(st.integers(1, 4))):
        path = draw(st.sampled_from(paths(document)))
        if not path:
            action = draw(st.sampled_from(["wrap", "retype"]))
            if action == "wrap":
                document = [document, document] if draw(st.booleans()) else {"items": document}
            else:
                document = draw(yaml_data)
            continue
        parent, key = get(document, path[:-1]), path[-1]
        action = draw(st.sampled_from(["drop", "rename", "retype", "retype", "null"]))
        if action == "drop":
            del parent[key]
        elif action == "rename" and isinstance(parent, dict):
            parent[
                draw(
                    st.sampled_from(
                        [str(key).lower(), str(key) + "s", str(key)[:-1], key.upper() if isinstance(key, str) else "x"]
                    )
                    | st.text(max_size=6)
                )
            ] = parent.pop(key)
        elif action == "null":
            parent[key] = None
        else:
            parent[key] = draw(yaml_data)
    return document


@SETTINGS
@given(mutated(), st.booleans())
def test_mutated_documents_give_resources_or_a_validation_error(document: Any, strict: bool) -> None:
    outcome(lambda: loads(document, strict=strict))
    text = yaml_text(document)
    if text is not None:
        outcome(lambda: loads(text, source="mutated.yaml", strict=strict))
    try:
        as_json = json.dumps(document)
    except (TypeError, ValueError):
        return
    outcome(lambda: loads(as_json, source="mutated.json", strict=strict))


@SETTINGS
@given(st.lists(mutated() | valid_documents, min_size=1, max_size=4))
def test_streams_of_mutated_documents(documents: list[Any]) -> None:
    text = yaml.dump_all(json.loads(json.dumps(documents, default=str)), Dumper=DUMPER, allow_unicode=True)
    result = outcome(lambda: loads(text))
    if isinstance(result, ValidationError):
        for problem in result.problems:
            assert problem.source == "<string>"


@SETTINGS
@given(yaml_data | resource_like | mutated())
def test_whatever_loads_can_be_dumped_and_loaded_again(data: Any) -> None:
    # A document that loads must survive dump and reload: the dump must neither fail nor produce an invalid document.
    try:
        resources = loads(data)
    except ValidationError:
        return
    for fmt in ("yaml", "json"):
        loads(dump(resources, format=fmt))
