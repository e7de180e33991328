"""The loader, tested against the rules (DESIGN.md "Resources" and "Loading"; upstream reference 1, 6.3 and 7.2).

Each test states the rule it checks. The upstream fixtures in tests/fixtures/upstream/ are byte-for-byte copies of
upstream Wegent files: they must load unchanged, with no warning even in strict mode.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from wegent_core._errors import Problem, ValidationError
from wegent_core._loader import ResourceSet, dump, load, loads, to_document, unknown_fields
from wegent_core._resources import (
    Bot,
    CollaborationModel,
    ContextPassing,
    Ghost,
    Model,
    Resource,
    Shell,
    Skill,
    Task,
    Team,
    TeamLimits,
    Workspace,
)

UPSTREAM = Path(__file__).resolve().parent.parent / "fixtures" / "upstream"


def doc(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(doc(text), encoding="utf-8")
    return path


def errors(exc: ValidationError) -> list[Problem]:
    return [p for p in exc.problems if p.severity == "error"]


def only(resources: ResourceSet, kind: str) -> Resource:
    found = resources.of_kind(kind)
    assert len(found) == 1, found
    return found[0]


GHOST = """
apiVersion: agent.wecode.io/v1
kind: Ghost
metadata:
  name: {name}
spec:
  systemPrompt: You help.
"""


# --- the upstream corpus ------------------------------------------------------------------------------------------


def test_upstream_fixtures_are_unchanged_copies() -> None:
    shared = UPSTREAM.parents[3] / "shared" / "fixtures" / "upstream"  # shared/ sits beside the repository
    if not shared.is_dir():
        pytest.skip("the shared upstream corpus is not on this machine")
    for original in sorted(shared.glob("*.yaml")):
        assert (UPSTREAM / original.name).read_bytes() == original.read_bytes(), original.name


def test_upstream_files_load_strictly_without_problems() -> None:
    resources = load(UPSTREAM, strict=True)
    assert resources.warnings == []
    assert [str(r) for r in resources] == [
        # 01-public-shells.yaml sorts before team-example.yaml
        "Shell default/ClaudeCode",
        "Shell default/Agno",
        "Shell default/Dify",
        "Shell default/Chat",
        "Ghost default/developer-ghost",
        "Model default/claude-model",
        "Shell default/claude-shell",
        "Bot default/developer-bot",
        "Team default/dev-team",
        "Workspace default/project-workspace",
        "Task default/implement-feature",
    ]


def test_upstream_files_load_one_by_one() -> None:
    shells = load(UPSTREAM / "01-public-shells.yaml", strict=True)
    assert [r.spec.shell_type for r in shells] == ["ClaudeCode", "Agno", "Dify", "Chat"]
    chat = shells.find("Shell", "Chat")
    assert chat is not None
    assert chat.metadata.display_name == "Chat"
    assert chat.metadata.labels == {"type": "direct_chat"}
    assert chat.spec.support_model == ["claude", "openai", "gemini"]
    assert shells.find("Shell", "Dify").spec.base_image is None

    example = load(UPSTREAM / "team-example.yaml", strict=True)
    assert example.warnings == []
    shell = example.find("Shell", "claude-shell")
    assert shell.spec.shell_type == "ClaudeCode"  # written as `runtime:`
    ghost = example.find("Ghost", "developer-ghost")
    assert ghost.spec.mcp_servers["github"]["command"] == "docker"
    assert ghost.spec.system_prompt.startswith("You are a senior software engineer")
    model = example.find("Model", "claude-model")
    assert model.spec.config["env"]["ANTHROPIC_MODEL"] == "claude-4.1-opus"
    team = example.find("Team", "dev-team")
    assert team.spec.collaboration_model is CollaborationModel.PIPELINE
    assert team.spec.members[0].is_leader
    task = example.find("Task", "implement-feature")
    assert task.spec.title == "Implement new feature"
    assert task.spec.team_ref.name == "dev-team"
    assert task.spec.workspace_ref.name == "project-workspace"
    assert task.status.status == "PENDING"
    workspace = example.find("Workspace", "project-workspace")
    assert workspace.spec.repository.git_repo == "{user}/{repo}"


@pytest.mark.parametrize("fmt", ["yaml", "json"])
def test_upstream_files_round_trip(fmt: str) -> None:
    resources = load(UPSTREAM)
    again = loads(dump(resources, format=fmt), strict=True)
    assert again == resources
    assert again.warnings == []
    assert dump(again, format=fmt) == dump(resources, format=fmt)


# --- round trip and canonical form --------------------------------------------------------------------------------

FUTURE = doc(
    """
    apiVersion: agent.wecode.io/v1
    kind: Team
    metadata:
      name: future
      futureMeta: kept
    spec:
      someFutureField: {a: 1}
      collaborationModel: pipeline
      members:
        - botRef: {name: b1, futureRefKey: [1, 2]}
          weight: 3
      limits:
        maxTurns: 4
        futureLimit: 9
    status:
      state: Available
      futureStatus: {nested: {deep: true}}
    futureTopLevel: x
    ---
    apiVersion: agent.wecode.io/v1
    kind: Task
    metadata:
      name: t1
    spec:
      prompt: Do it.
      teamRef: {name: future}
    status:
      status: RUNNING
      progress: 40
      startedAt: 2025-01-02T03:04:05Z
      futureStatus: 1
    """
)


@pytest.mark.parametrize("fmt", ["yaml", "json"])
def test_unknown_fields_survive_the_round_trip(fmt: str) -> None:
    resources = loads(FUTURE)
    team = resources.find("Team", "future")
    assert team.spec.model_extra == {"someFutureField": {"a": 1}}
    assert team.metadata.model_extra == {"futureMeta": "kept"}
    assert team.spec.members[0].model_extra == {"weight": 3}
    assert team.spec.members[0].bot_ref.model_extra == {"futureRefKey": [1, 2]}
    assert team.spec.limits.model_extra == {"futureLimit": 9}
    assert team.status.model_extra == {"futureStatus": {"nested": {"deep": True}}}
    assert team.model_extra == {"futureTopLevel": "x"}
    task = resources.find("Task", "t1")
    assert task.status.started_at == datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)

    text = dump(resources, format=fmt)
    assert "someFutureField" in text
    assert "startedAt" in text
    again = loads(text)
    assert again == resources
    assert again.find("Team", "future").spec.model_extra == {"someFutureField": {"a": 1}}
    assert again.find("Task", "t1").status.started_at == task.status.started_at
    assert sorted(p for p, _, _ in unknown_fields(again.find("Team", "future"))) == [
        "futureTopLevel",
        "metadata.futureMeta",
        "spec.limits.futureLimit",
        "spec.members[0].botRef.futureRefKey",
        "spec.members[0].weight",
        "spec.someFutureField",
        "status.futureStatus",
    ]


def test_dump_is_canonical() -> None:
    text = doc(
        """
        spec:
          runtime: ClaudeCode
          requiresWorkspace: null
        metadata:
          labels: {}
          name: s
        kind: Shell
        ---
        kind: Ghost
        metadata: {name: g, namespace: team-a}
        spec:
          systemPrompt: "Line one.\\nLine two.\\n"
        status: {state: Available}
        """
    )
    resources = loads(text)
    out = dump(resources)
    docs = list(yaml.safe_load_all(out))
    shell, ghost = docs
    # envelope keys first, in this order; metadata starts with name and namespace; defaults left out
    assert list(shell) == ["apiVersion", "kind", "metadata", "spec"]
    assert shell["apiVersion"] == "agent.wecode.io/v1"
    assert list(shell["metadata"]) == ["name", "namespace"]
    assert shell["metadata"]["namespace"] == "default"
    # `runtime` is read, `shellType` is written
    assert shell["spec"] == {"shellType": "ClaudeCode"}
    assert "runtime" not in out
    assert "status" not in ghost  # the default status is left out
    # multi-line strings are written as blocks, as people write prompts
    assert "systemPrompt: |\n    Line one.\n    Line two.\n" in out
    assert ghost["metadata"]["namespace"] == "team-a"


def test_dump_json_shapes() -> None:
    resources = loads(GHOST.format(name="a") + "---\n" + GHOST.format(name="b"))
    single = json.loads(dump(resources[0], format="json"))
    assert isinstance(single, dict)
    assert single["metadata"]["name"] == "a"
    many = json.loads(dump(resources, format="json"))
    assert [d["metadata"]["name"] for d in many] == ["a", "b"]
    assert to_document(resources[0]) == single
    with pytest.raises(ValueError, match="format"):
        dump(resources, format="toml")


def test_to_document_uses_yaml_keys_and_plain_types() -> None:
    resources = loads(FUTURE)
    document = to_document(resources.find("Task", "t1"))
    assert document["spec"]["teamRef"] == {"name": "future"}
    assert document["status"]["startedAt"] == "2025-01-02T03:04:05Z"
    assert json.loads(json.dumps(document)) == document


# --- tricky points of upstream YAML (reference 7.2) ---------------------------------------------------------------


def test_runtime_is_an_alias_of_shell_type() -> None:
    resources = loads(
        doc(
            """
            apiVersion: agent.wecode.io/v1
            kind: Shell
            metadata: {name: claude-shell, namespace: development}
            spec:
              runtime: ClaudeCode
              supportModel: [openai, anthropic]
            status: {state: Available}
            """
        ),
        strict=True,
    )
    assert resources.warnings == []
    shell = only(resources, "Shell")
    assert isinstance(shell, Shell)
    assert shell.spec.shell_type == "ClaudeCode"
    assert shell.spec.support_model == ["openai", "anthropic"]
    assert to_document(shell)["spec"] == {"shellType": "ClaudeCode", "supportModel": ["openai", "anthropic"]}


def test_base_shell_ref_is_a_plain_string_and_stands_in_for_shell_type() -> None:
    resources = loads(
        doc(
            """
            kind: Shell
            metadata:
              name: my-claude
              labels: {type: local_engine}
            spec:
              baseShellRef: ClaudeCode
              baseImage: registry.example.com/team/executor:1.2
            """
        ),
        strict=True,
    )
    shell = only(resources, "Shell")
    assert shell.spec.base_shell_ref == "ClaudeCode"
    assert shell.spec.shell_type is None
    assert resources.warnings == []


def test_snake_and_camel_case_mix_loads_without_warnings() -> None:
    resources = loads(
        doc(
            """
            kind: Ghost
            metadata: {name: g}
            spec:
              systemPrompt: p
              skills: [interactive, mermaid-diagram]
              preload_skills: [interactive]
              skill_refs:
                interactive: {skill_id: 7, namespace: default, is_public: true, content_hash: "sha256:abc123"}
              preload_skill_refs:
                interactive: {skill_id: 8}
              defaultKnowledgeBaseRefs: [{id: 1, name: kb}]
            ---
            kind: Team
            metadata: {name: t}
            spec:
              collaborationModel: solo
              bind_mode: [chat, code]
              quick_phrases: ["  Summarise this  ", "", "Explain"]
              members: [{botRef: {name: b}}]
            ---
            kind: Task
            metadata: {name: task-1}
            spec:
              title: t
              prompt: p
              is_group_chat: true
              device_id: laptop-1
              teamRef: {name: t, namespace: default, user_id: 42}
            """
        ),
        strict=True,
    )
    assert resources.warnings == []
    ghost = resources.find("Ghost", "g")
    assert ghost.spec.preload_skills == ["interactive"]
    assert ghost.spec.skill_refs["interactive"].skill_id == 7
    assert ghost.spec.skill_refs["interactive"].is_public is True
    assert ghost.spec.skill_refs["interactive"].content_hash == "sha256:abc123"
    assert ghost.spec.preload_skill_refs["interactive"].skill_id == 8
    assert ghost.spec.default_knowledge_base_refs[0].name == "kb"
    team = resources.find("Team", "t")
    assert team.spec.bind_mode == ["chat", "code"]
    assert team.spec.quick_phrases == ["Summarise this", "Explain"]  # trimmed, blanks dropped
    task = resources.find("Task", "task-1")
    assert task.spec.is_group_chat is True
    assert task.spec.device_id == "laptop-1"
    assert task.spec.team_ref.user_id == 42
    out = to_document(task)["spec"]
    assert out["is_group_chat"] is True
    assert out["device_id"] == "laptop-1"
    assert out["teamRef"]["user_id"] == 42
    assert to_document(ghost)["spec"]["preload_skills"] == ["interactive"]
    assert to_document(team)["spec"]["bind_mode"] == ["chat", "code"]


def test_python_attribute_names_are_not_yaml_keys() -> None:
    # YAML is read in upstream's spellings only: `system_prompt` is not `systemPrompt`.
    with pytest.raises(ValidationError) as info:
        loads("kind: Ghost\nmetadata: {name: g}\nspec: {system_prompt: p}\n")
    (problem,) = errors(info.value)
    assert problem.path == "spec.systemPrompt"
    assert "system_prompt" in problem.message
    shell = only(loads("kind: Shell\nmetadata: {name: s}\nspec: {shellType: Chat, shell_type: Agno}\n"), "Shell")
    assert shell.spec.shell_type == "Chat"
    assert shell.spec.model_extra == {"shell_type": "Agno"}


def test_labels_are_strings_even_when_yaml_reads_booleans_or_numbers() -> None:
    resources = loads(
        doc(
            """
            kind: Task
            metadata:
              name: task-7
              labels:
                preserveExecutor: true
                autoDeleteExecutor: false
                quoted: "true"
                projectId: 12
                ratio: 1.5
            spec: {title: t, prompt: p, teamRef: {name: team}}
            """
        ),
        strict=True,
    )
    task = only(resources, "Task")
    assert task.metadata.labels == {
        "preserveExecutor": "true",
        "autoDeleteExecutor": "false",
        "quoted": "true",
        "projectId": "12",
        "ratio": "1.5",
    }
    assert all(isinstance(v, str) for v in to_document(task)["metadata"]["labels"].values())


def test_model_ref_is_optional_and_dify_params_stay_a_json_string() -> None:
    resources = loads(
        doc(
            """
            kind: Bot
            metadata: {name: public-bot}
            spec:
              ghostRef: {name: g}
              shellRef: {name: Chat}
            ---
            kind: Model
            metadata: {name: dify-model}
            spec:
              modelConfig:
                env:
                  DIFY_API_KEY: app-xxxx
                  DIFY_BASE_URL: https://api.dify.ai
                  DIFY_PARAMS: '{"language": "en", "depth": 2}'
            """
        ),
        strict=True,
    )
    assert resources.find("Bot", "public-bot").spec.model_ref is None
    params = resources.find("Model", "dify-model").spec.config["env"]["DIFY_PARAMS"]
    assert params == '{"language": "en", "depth": 2}'
    assert json.loads(params) == {"language": "en", "depth": 2}
    again = loads(dump(resources))
    assert again.find("Model", "dify-model").spec.config["env"]["DIFY_PARAMS"] == params


def test_numbers_where_strings_are_expected_are_coerced() -> None:
    resources = loads(
        doc(
            """
            kind: Skill
            metadata: {name: browser}
            spec:
              description: Drive a browser.
              version: 1.0
            ---
            kind: Skill
            metadata: {name: other}
            spec:
              description: d
              version: 2
            ---
            kind: Model
            metadata: {name: m}
            spec:
              modelConfig: {env: {model: openai}}
              costIndex: 1.5
            """
        ),
        strict=True,
    )
    assert resources.find("Skill", "browser").spec.version == "1.0"
    assert resources.find("Skill", "other").spec.version == "2"
    assert resources.find("Model", "m").spec.cost_index == "1.5"
    assert "version: '1.0'" in dump(resources.find("Skill", "browser"))


def test_placeholder_ellipses_from_the_docs_load() -> None:
    resources = loads(
        doc(
            """
            kind: Ghost
            metadata: {name: with-mcp}
            spec:
              systemPrompt: p
              mcpServers: { ... }
            ---
            kind: Ghost
            metadata: {name: with-args}
            spec:
              systemPrompt: p
              mcpServers:
                github:
                  command: docker
                  args: [...]
            """
        ),
        strict=True,
    )
    assert resources.find("Ghost", "with-mcp").spec.mcp_servers == {"...": None}
    assert resources.find("Ghost", "with-args").spec.mcp_servers["github"]["args"] == ["..."]


def test_omitted_namespace_is_default_and_api_version_is_optional() -> None:
    resources = loads(
        doc(
            """
            kind: Model
            metadata:
              name: claude
            spec:
              modelConfig:
                env: {ANTHROPIC_API_KEY: sk-xxx}
            """
        ),
        strict=True,
    )
    model = only(resources, "Model")
    assert model.metadata.namespace == "default"
    assert model.key == ("default", "Model", "claude")
    assert model.api_version == "agent.wecode.io/v1"


def test_trailing_whitespace_and_case_in_enum_values_are_tolerated() -> None:
    text = (
        "kind: Team\n"
        "metadata: {name: spec-dev-team}\n"
        "spec:\n"
        "  collaborationModel: pipeline   \n"  # trailing spaces in the source line (YAML strips them)
        "  members:\n"
        "    - botRef: {name: a}\n"
        "      contextPassing: 'Previous_Bot '\n"
        "---\n"
        "kind: Team\n"
        "metadata: {name: quoted}\n"
        "spec:\n"
        "  collaborationModel: 'Pipeline '\n"
        "  members: [{botRef: {name: a}}]\n"
    )
    resources = loads(text, strict=True)
    assert [t.spec.collaboration_model for t in resources] == [CollaborationModel.PIPELINE] * 2
    assert resources[0].spec.members[0].context_passing is ContextPassing.PREVIOUS_BOT
    assert to_document(resources[1])["spec"]["collaborationModel"] == "pipeline"


@pytest.mark.parametrize(
    ("field", "yaml_value"),
    [("collaborationModel", "sequential"), ("contextPassing", "everything")],
)
def test_unknown_enum_values_are_errors(field: str, yaml_value: str) -> None:
    cm = yaml_value if field == "collaborationModel" else "pipeline"
    cp = yaml_value if field == "contextPassing" else "none"
    text = doc(
        f"""
        kind: Team
        metadata: {{name: t}}
        spec:
          collaborationModel: {cm}
          members:
            - botRef: {{name: a}}
              contextPassing: {cp}
        """
    )
    with pytest.raises(ValidationError) as info:
        loads(text, source="team.yaml")
    (problem,) = errors(info.value)
    assert problem.path.endswith(field)
    assert problem.line == (4 if field == "collaborationModel" else 7)


def test_docs_only_member_name_team_workflow_and_task_device_ref_load() -> None:
    resources = loads(
        doc(
            """
            kind: Team
            metadata: {name: dev-pipeline-team}
            spec:
              collaborationModel: pipeline
              workflow: {mode: pipeline}
              members:
                - name: planner
                  role: leader
                  botRef: { name: planner-bot, namespace: default }
                  contextPassing: "original_user"
                  requireConfirmation: true
                - name: developer
                  role: member
                  botRef: { name: developer-bot, namespace: platform }
                  contextPassing: original_and_previous
            ---
            kind: Task
            metadata:
              name: task-1
              labels:
                preserveExecutor: "true"
            spec:
              title: t
              prompt: p
              teamRef: {name: dev-pipeline-team}
              workspaceRef: {name: ws}
              deviceRef: {name: my-laptop, namespace: default}
            status:
              state: Available
              status: RUNNING
              progress: 50
            """
        ),
        strict=True,
    )
    assert resources.warnings == []
    team = resources.find("Team", "dev-pipeline-team")
    assert team.spec.workflow == {"mode": "pipeline"}
    first, second = team.spec.members
    assert (first.name, second.name) == ("planner", "developer")
    assert first.require_confirmation is True
    assert second.require_confirmation is False
    assert first.context_passing is ContextPassing.ORIGINAL_USER
    assert second.context_passing is ContextPassing.ORIGINAL_AND_PREVIOUS
    # flow-style refs, and a member whose bot lives in another namespace
    assert (first.bot_ref.name, first.bot_ref.namespace) == ("planner-bot", "default")
    assert (second.bot_ref.name, second.bot_ref.namespace) == ("developer-bot", "platform")
    task = resources.find("Task", "task-1")
    assert task.spec.device_ref == {"name": "my-laptop", "namespace": "default"}
    assert task.status.status == "RUNNING"
    assert task.status.progress == 50
    assert task.metadata.labels["preserveExecutor"] == "true"


def test_ref_without_namespace_keeps_it_unset() -> None:
    # This library resolves an omitted ref namespace to the namespace of the referencing resource.
    resources = loads(
        "kind: Bot\nmetadata: {name: b, namespace: team-a}\nspec: {ghostRef: {name: g}, shellRef: {name: s}}\n"
    )
    bot = only(resources, "Bot")
    assert isinstance(bot, Bot)
    assert bot.spec.ghost_ref.namespace is None
    assert "namespace" not in to_document(bot)["spec"]["ghostRef"]


def test_leader_need_not_be_first() -> None:
    resources = loads(
        doc(
            """
            kind: Team
            metadata: {name: brainstorm}
            spec:
              collaborationModel: collaborate
              members:
                - {name: a, role: member, botRef: {name: a}}
                - {name: b, role: member, botRef: {name: b}}
                - {name: c, role: member, botRef: {name: c}}
                - {name: facilitator, role: leader, botRef: {name: f}}
            """
        ),
        strict=True,
    )
    team = only(resources, "Team")
    assert isinstance(team, Team)
    assert team.spec.leader_index == 3


def test_no_leader_means_the_first_member_leads() -> None:
    team = only(
        loads(
            "kind: Team\nmetadata: {name: t}\nspec: {collaborationModel: route, members: "
            "[{botRef: {name: a}, role: member}, {botRef: {name: b}, role: developer}]}\n"
        ),
        "Team",
    )
    assert team.spec.leader_index == 0


def test_task_title_is_optional_and_derived_from_the_prompt() -> None:
    prompt = "Write a migration that adds an index on users.email and backfills it safely"
    document = {"kind": "Task", "metadata": {"name": "t"}, "spec": {"prompt": prompt, "teamRef": {"name": "x"}}}
    task = only(loads(document), "Task")
    assert isinstance(task, Task)
    assert task.spec.title is None
    assert task.spec.workspace_ref is None
    assert task.spec.effective_title == prompt[:50] + "..."


def test_team_limits_default_and_load() -> None:
    team = only(
        loads(
            "kind: Team\nmetadata: {name: t}\nspec: {collaborationModel: coordinate, members: [], "
            "limits: {maxTurns: 8, maxCostUsd: 2.5, timeoutSeconds: 600}}\n",
            strict=True,
        ),
        "Team",
    )
    assert team.spec.limits.max_turns == 8
    assert team.spec.limits.max_cost_usd == 2.5
    assert team.spec.limits.timeout_seconds == 600
    assert team.spec.limits.max_model_calls == TeamLimits().max_model_calls
    default = only(loads("kind: Team\nmetadata: {name: t}\nspec: {collaborationModel: solo, members: []}\n"), "Team")
    assert default.spec.limits == TeamLimits()


def test_skill_provider_is_recorded_and_never_imported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sentinel = tmp_path / "imported"
    (tmp_path / "wegent_skill_provider_probe.py").write_text(f"open({str(sentinel)!r}, 'w').close()\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    skill = only(
        loads(
            doc(
                """
                kind: Skill
                metadata: {name: mermaid-diagram}
                spec:
                  description: Draw diagrams.
                  provider: {module: wegent_skill_provider_probe, class: Provider}
                  tools: [{name: render, provider: wegent_skill_provider_probe}]
                """
            ),
            strict=True,
        ),
        "Skill",
    )
    assert isinstance(skill, Skill)
    assert skill.spec.provider.module == "wegent_skill_provider_probe"
    assert skill.spec.provider.class_ == "Provider"
    assert to_document(skill)["spec"]["provider"] == {"module": "wegent_skill_provider_probe", "class": "Provider"}
    assert not sentinel.exists()
    assert "wegent_skill_provider_probe" not in sys.modules


# --- unknown and misspelt kinds -----------------------------------------------------------------------------------

FOREIGN = doc(
    """
    apiVersion: agent.wecode.io/v1
    kind: Template
    metadata: {name: general-chat-assistant, namespace: system}
    spec:
      resources:
        queue: {teamRef: {name: x}}
    ---
    apiVersion: apps/v1
    kind: Deployment
    metadata: {name: executor}
    spec: {replicas: 2}
    ---
    apiVersion: agent.wecode.io/v1
    kind: Collaboration
    metadata: {name: wf}
    spec: {type: workflow, config: {steps: [{name: s, participants: [a]}]}}
    ---
    apiVersion: agent.wecode.io/v1
    kind: ConnectorApp
    metadata: {name: app}
    spec: {httpTools: [{tool_name: t}]}
    ---
    """
) + GHOST.format(name="kept").lstrip("\n")


def test_unknown_kinds_are_skipped_with_a_warning() -> None:
    resources = loads(FOREIGN, source="mixed.yaml")
    assert [str(r) for r in resources] == ["Ghost default/kept"]
    assert [(w.severity, w.kind, w.path, w.line) for w in resources.warnings] == [
        ("warning", "Template", "kind", 2),
        ("warning", "Deployment", "kind", 9),
        ("warning", "Collaboration", "kind", 14),
        ("warning", "ConnectorApp", "kind", 19),
    ]
    assert all("skipped" in w.message for w in resources.warnings)
    assert all(w.source == "mixed.yaml" for w in resources.warnings)


@pytest.mark.parametrize("kind", ["Tema", "team", "TEAM", "Taem"])
def test_misspelt_known_kind_is_an_error_with_a_suggestion(kind: str) -> None:
    text = f"kind: {kind}\nmetadata: {{name: t}}\nspec: {{collaborationModel: solo, members: []}}\n"
    with pytest.raises(ValidationError) as info:
        loads(text, source="team.yaml")
    (problem,) = errors(info.value)
    assert problem.path == "kind"
    assert problem.line == 1
    assert "'Team'" in problem.message
    assert "did you mean" in problem.message


def test_document_without_kind_is_an_error() -> None:
    with pytest.raises(ValidationError) as info:
        loads("metadata: {name: x}\nspec: {}\n", source="x.yaml")
    (problem,) = errors(info.value)
    assert problem.path == "kind"
    assert problem.source == "x.yaml"


# --- negative samples from the upstream docs ----------------------------------------------------------------------


def test_shell_shared_between_bots_without_ghost_ref(tmp_path: Path) -> None:
    # docs/en/wegent/user-guide/settings/configuring-shells.md, last block: no ghostRef and no apiVersion
    path = write(
        tmp_path,
        "shared-shell.yaml",
        """
        kind: Bot
        metadata:
          name: bot-1
          namespace: development
        spec:
          shellRef:
            name: my-shell
            namespace: development
          modelRef:
            name: my-model
            namespace: development
        ---
        kind: Bot
        metadata:
          name: bot-2
          namespace: development
        spec:
          shellRef:
            name: my-shell
            namespace: development
        """,
    )
    with pytest.raises(ValidationError) as info:
        load(path)
    found = [(Path(p.source).name, p.line, p.path, p.message, p.name) for p in errors(info.value)]
    assert found == [
        ("shared-shell.yaml", 5, "spec.ghostRef", "field required", "bot-1"),
        ("shared-shell.yaml", 17, "spec.ghostRef", "field required", "bot-2"),
    ]
    assert str(errors(info.value)[0]).endswith("shared-shell.yaml:5 spec.ghostRef: field required")


def test_bot_missing_shell_ref(tmp_path: Path) -> None:
    # docs/en/wegent/developer-guide/architecture.md, next to a Kubernetes Deployment
    path = write(
        tmp_path,
        "architecture.yaml",
        """
        apiVersion: agent.wecode.io/v1
        kind: Bot
        metadata:
          name: developer-bot
          namespace: default
        spec:
          ghostRef:
            name: developer-ghost
            namespace: default
          modelRef:
            name: claude-model
            namespace: default
        ---
        apiVersion: apps/v1
        kind: Deployment
        metadata:
          name: wegent-backend
        spec:
          replicas: 1
        """,
    )
    with pytest.raises(ValidationError) as info:
        load(path)
    (problem,) = errors(info.value)
    assert (Path(problem.source).name, problem.line, problem.path) == ("architecture.yaml", 6, "spec.shellRef")
    assert problem.kind == "Bot"
    assert problem.name == "developer-bot"
    assert "required" in problem.message
    warnings = [p for p in info.value.problems if p.severity == "warning"]
    assert [w.kind for w in warnings] == ["Deployment"]


# --- inputs -------------------------------------------------------------------------------------------------------


def test_load_directory_takes_yaml_yml_json_sorted_by_name_not_recursive(tmp_path: Path) -> None:
    write(tmp_path, "b.yaml", GHOST.format(name="from-b"))
    write(tmp_path, "a.yml", GHOST.format(name="from-a"))
    (tmp_path / "c.json").write_text(json.dumps([yaml.safe_load(GHOST.format(name="from-c"))]))
    write(tmp_path, "0.txt", GHOST.format(name="from-txt"))
    write(tmp_path, "README.md", "# not a resource")
    write(tmp_path, "nested/d.yaml", GHOST.format(name="from-nested"))
    resources = load(tmp_path)
    assert [r.name for r in resources] == ["from-a", "from-b", "from-c"]


def test_load_several_paths_in_the_order_given(tmp_path: Path) -> None:
    one = write(tmp_path, "one/z.yaml", GHOST.format(name="z"))
    two = write(tmp_path, "two/a.yaml", GHOST.format(name="a"))
    assert [r.name for r in load(one, two)] == ["z", "a"]
    assert [r.name for r in load(str(two), str(one))] == ["a", "z"]


def test_multi_document_stream_and_empty_documents(tmp_path: Path) -> None:
    text = "---\n# only a comment\n---\n" + GHOST.format(name="a") + "---\n---\n" + GHOST.format(name="b") + "...\n"
    path = tmp_path / "stream.yaml"
    path.write_text(text)
    assert [r.name for r in load(path)] == ["a", "b"]
    assert [r.name for r in loads(text)] == ["a", "b"]
    (tmp_path / "empty.yaml").write_text("")
    (tmp_path / "blank.yml").write_text("\n   \n# nothing\n")
    assert list(load(tmp_path / "empty.yaml", tmp_path / "blank.yml")) == []


def test_yaml_list_of_documents() -> None:
    text = doc(
        """
        - kind: Ghost
          metadata: {name: a}
          spec: {systemPrompt: p}
        - kind: Ghost
          metadata: {name: b}
          spec: {systemPrompt: p}
        ---
        - kind: Shell
          metadata: {name: c}
          spec: {shellType: Chat}
        """
    )
    assert [str(r) for r in loads(text)] == ["Ghost default/a", "Ghost default/b", "Shell default/c"]


def test_yaml_list_errors_point_at_the_item() -> None:
    text = doc(
        """
        - kind: Ghost
          metadata: {name: a}
          spec: {systemPrompt: p}
        - kind: Ghost
          metadata: {name: b}
          spec: {}
        """
    )
    with pytest.raises(ValidationError) as info:
        loads(text, source="list.yaml")
    (problem,) = errors(info.value)
    assert (problem.line, problem.path, problem.name) == (6, "spec.systemPrompt", "b")


def test_json_files_object_or_list(tmp_path: Path) -> None:
    ghost = yaml.safe_load(GHOST.format(name="g"))
    shell = {"kind": "Shell", "metadata": {"name": "s"}, "spec": {"shellType": "Chat"}}
    (tmp_path / "one.json").write_text(json.dumps(ghost, indent=2))
    (tmp_path / "many.json").write_text(json.dumps([shell, {**ghost, "metadata": {"name": "h"}}], indent=2))
    assert [str(r) for r in load(tmp_path)] == ["Shell default/s", "Ghost default/h", "Ghost default/g"]
    assert [str(r) for r in loads(json.dumps(ghost))] == ["Ghost default/g"]
    assert [str(r) for r in loads(json.dumps([shell]))] == ["Shell default/s"]


def test_json_errors_have_lines(tmp_path: Path) -> None:
    bad = {"kind": "Bot", "metadata": {"name": "b"}, "spec": {"ghostRef": {"name": "g"}}}
    path = tmp_path / "bot.json"
    path.write_text(json.dumps(bad, indent=2))
    with pytest.raises(ValidationError) as info:
        load(path)
    (problem,) = errors(info.value)
    assert problem.path == "spec.shellRef"
    assert problem.line == 6  # the "spec" key
    path.write_text('{"kind": "Ghost",\n "metadata": {"name": "g"},\n "spec": {"systemPrompt": "p",}}')
    with pytest.raises(ValidationError) as info:
        load(path)
    (problem,) = errors(info.value)
    assert "JSON" in problem.message
    assert problem.line == 3


def test_loads_accepts_strings_bytes_dicts_and_lists() -> None:
    text = GHOST.format(name="g")
    data = yaml.safe_load(text)
    expected = ["Ghost default/g"]
    assert [str(r) for r in loads(text)] == expected
    assert [str(r) for r in loads(text.encode())] == expected
    assert [str(r) for r in loads(data)] == expected
    assert [str(r) for r in loads([data, {**data, "metadata": {"name": "h"}}])] == [*expected, "Ghost default/h"]
    assert list(loads([])) == []
    assert list(loads("")) == []
    resources = loads(data)
    assert isinstance(resources, ResourceSet)
    assert isinstance(resources[0], Ghost)


def test_loads_from_bytes_with_non_ascii_text() -> None:
    text = GHOST.format(name="g").replace("You help.", "Tu aides. 你好 — ✓")
    assert only(loads(text.encode("utf-8")), "Ghost").spec.system_prompt == "Tu aides. 你好 — ✓"


def test_loads_of_bytes_that_are_not_utf8_is_a_validation_error() -> None:
    # Regression: `loads(bytes)` used to let UnicodeDecodeError escape.
    with pytest.raises(ValidationError) as info:
        loads(b"kind: Ghost\nmetadata: {name: \xff}\n", source="latin1.yaml")
    assert errors(info.value)[0].source == "latin1.yaml"


def test_resource_set_helpers() -> None:
    resources = loads(
        GHOST.format(name="a") + "---\nkind: Shell\nmetadata: {name: s, namespace: ns}\nspec: {shellType: Chat}\n"
    )
    assert [r.name for r in resources.of_kind("Ghost")] == ["a"]
    assert resources.find("Shell", "s", "ns") is resources[1]
    assert resources.find("Shell", "s") is None


# --- error reporting ----------------------------------------------------------------------------------------------

TEAM_WITH_ERROR = """
apiVersion: agent.wecode.io/v1
kind: Team
metadata:
  name: dev
  namespace: default
spec:
  collaborationModel: pipeline
  members:
    - role: leader
      botRef:
        name: planner
    - role: member
      prompt: Review the plan.
      botRef:
        namespace: default
"""


def test_error_names_file_line_and_field_path(tmp_path: Path) -> None:
    path = write(tmp_path, "team.yaml", TEAM_WITH_ERROR)
    with pytest.raises(ValidationError) as info:
        load(path)
    (problem,) = errors(info.value)
    assert (problem.source, problem.line, problem.path, problem.message) == (
        str(path),
        14,
        "spec.members[1].botRef.name",
        "field required",
    )
    assert (problem.kind, problem.name) == ("Team", "dev")
    assert str(problem) == f"{path}:14 spec.members[1].botRef.name: field required"
    assert f"{path}:14 spec.members[1].botRef.name: field required" in str(info.value)
    with pytest.raises(ValidationError) as info:
        loads(doc(TEAM_WITH_ERROR), source="team.yaml")
    assert str(errors(info.value)[0]) == "team.yaml:14 spec.members[1].botRef.name: field required"


def test_every_bad_document_of_every_file_is_reported(tmp_path: Path) -> None:
    write(
        tmp_path,
        "a.yaml",
        """
        kind: Ghost
        metadata: {name: good-a}
        spec: {systemPrompt: p}
        ---
        kind: Ghost
        metadata: {name: bad-a1}
        spec: {}
        ---
        kind: Shell
        metadata: {name: good-shell}
        spec: {shellType: Chat}
        ---
        kind: Bot
        metadata: {name: bad-a2}
        spec:
          ghostRef: {name: g}
          shellRef: {namespace: default}
        """,
    )
    write(
        tmp_path,
        "b.yaml",
        """
        kind: Team
        metadata: {name: bad-b1}
        spec:
          members: [{botRef: {name: x}}]
        ---
        kind: Model
        metadata: {name: good-b}
        spec: {modelConfig: {env: {model: openai}}}
        ---
        kind: Task
        metadata: {name: bad-b2}
        spec:
          teamRef: {name: bad-b1}
          currentStage: -1
        """,
    )
    with pytest.raises(ValidationError) as info:
        load(tmp_path)
    found = sorted({(Path(p.source).name, p.name, p.line, p.path) for p in errors(info.value)})
    assert found == [
        ("a.yaml", "bad-a1", 7, "spec.systemPrompt"),
        ("a.yaml", "bad-a2", 17, "spec.shellRef.name"),
        ("b.yaml", "bad-b1", 3, "spec.collaborationModel"),
        ("b.yaml", "bad-b2", 12, "spec.prompt"),
        ("b.yaml", "bad-b2", 14, "spec.currentStage"),
    ]
    assert sorted(str(r) for r in info.value.loaded) == [
        "Ghost default/good-a",
        "Model default/good-b",
        "Shell default/good-shell",
    ]
    assert "5 problems found" in str(info.value)


def test_misspelt_required_field_hints_at_the_misspelling() -> None:
    text = "kind: Team\nmetadata: {name: t}\nspec:\n  members: []\n  colaborationModel: pipeline\n"
    with pytest.raises(ValidationError) as info:
        loads(text)
    (problem,) = errors(info.value)
    assert problem.path == "spec.collaborationModel"
    assert "colaborationModel" in problem.message


def test_empty_key_is_reported_as_empty() -> None:
    with pytest.raises(ValidationError) as info:
        loads("kind: Ghost\nmetadata:\nspec: {systemPrompt: p}\n")
    (problem,) = errors(info.value)
    assert problem.path == "metadata"
    assert problem.line == 2


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("just a string\n", "mapping"),
        ("- 1\n- 2\n", "mapping"),
        ("42\n", "mapping"),
        ("kind: Ghost\nmetadata: {name: g}\nspec: {systemPrompt: p}\napiVersion: agent.wecode.io/v2\n", "apiVersion"),
        ("kind: Ghost\nmetadata: {name: ' g'}\nspec: {systemPrompt: p}\n", "whitespace"),
        ("kind: Shell\nmetadata: {name: s}\nspec: {supportModel: []}\n", "shellType"),
    ],
)
def test_other_invalid_documents(text: str, fragment: str) -> None:
    with pytest.raises(ValidationError) as info:
        loads(text)
    assert any(fragment in p.message for p in errors(info.value)), info.value.problems


def test_strict_reports_unknown_fields_at_every_depth_with_did_you_mean() -> None:
    text = doc(
        """
        kind: Team
        metadata:
          name: t
          lables: {a: b}
        spec:
          collaborationModel: pipeline
          colaborationModel: pipeline
          members:
            - botRef: {name: b, namspace: x}
              requireConfirmaton: true
          limits: {maxTurn: 3}
        stauts: {}
        ---
        kind: Ghost
        metadata: {name: g}
        spec:
          systemPrompt: p
          skill_refs: {a: {skill_id: 1, namepsace: x}}
          preload_skill: [a]
          mcpServers: {anything: {goes: here}}
        """
    )
    lax = loads(text)
    assert lax.warnings == []
    resources = loads(text, source="t.yaml", strict=True)
    assert len(resources) == 2  # warnings do not stop the load
    found = {(w.path, w.line, w.message) for w in resources.warnings}
    assert found == {
        ("metadata.lables", 4, "unknown field 'lables'; did you mean 'labels'?"),
        ("spec.colaborationModel", 7, "unknown field 'colaborationModel'; did you mean 'collaborationModel'?"),
        ("spec.members[0].botRef.namspace", 9, "unknown field 'namspace'; did you mean 'namespace'?"),
        (
            "spec.members[0].requireConfirmaton",
            10,
            "unknown field 'requireConfirmaton'; did you mean 'requireConfirmation'?",
        ),
        ("spec.limits.maxTurn", 11, "unknown field 'maxTurn'; did you mean 'maxTurns'?"),
        ("stauts", 12, "unknown field 'stauts'; did you mean 'status'?"),
        ("spec.skill_refs.a.namepsace", 18, "unknown field 'namepsace'; did you mean 'namespace'?"),
        ("spec.preload_skill", 19, "unknown field 'preload_skill'; did you mean 'preload_skills'?"),
    }
    assert all(w.severity == "warning" and w.source == "t.yaml" for w in resources.warnings)
    assert str(next(w for w in resources.warnings if w.path == "stauts")) == (
        "t.yaml:12 stauts: warning: unknown field 'stauts'; did you mean 'status'?"
    )


def test_strict_unknown_field_without_close_match_has_no_suggestion() -> None:
    resources = loads("kind: Ghost\nmetadata: {name: g}\nspec: {systemPrompt: p, zzz: 1}\n", strict=True)
    (warning,) = resources.warnings
    assert warning.message == "unknown field 'zzz'"


def test_strict_warnings_are_reported_with_errors() -> None:
    text = "kind: Ghost\nmetadata: {name: g}\nspec: {systemPrompt: p, extra: 1}\n"
    text += "---\nkind: Ghost\nmetadata: {name: h}\n"
    with pytest.raises(ValidationError) as info:
        loads(text, strict=True)
    severities = sorted(p.severity for p in info.value.problems)
    assert severities == ["error", "warning"]
    assert [r.name for r in info.value.loaded] == ["g"]


def test_duplicate_resources_are_an_error_naming_the_first_location(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", GHOST.format(name="g") + "---\n" + GHOST.format(name="other"))
    write(tmp_path, "b.yaml", "# comment\n" + GHOST.format(name="g"))
    with pytest.raises(ValidationError) as info:
        load(tmp_path)
    (problem,) = errors(info.value)
    assert Path(problem.source).name == "b.yaml"
    assert problem.line == 3
    assert f"{tmp_path / 'a.yaml'}:1" in problem.message
    assert "Ghost default/g" in problem.message
    assert [r.name for r in info.value.loaded] == ["g", "other"]


def test_same_name_in_other_namespace_or_kind_is_not_a_duplicate() -> None:
    text = (
        GHOST.format(name="x")
        + "---\nkind: Ghost\nmetadata: {name: x, namespace: other}\nspec: {systemPrompt: p}\n"
        + "---\nkind: Shell\nmetadata: {name: x}\nspec: {shellType: Chat}\n"
    )
    assert len(loads(text)) == 3


def test_duplicates_within_a_json_array_are_an_error() -> None:
    # Regression: items of a JSON array (or of a list of dicts) share one location, and the duplicate check used to
    # compare locations, so both copies were loaded.
    ghost = yaml.safe_load(GHOST.format(name="g"))
    with pytest.raises(ValidationError, match="defined twice"):
        loads(json.dumps([ghost, {**ghost, "spec": {"systemPrompt": "other"}}]))


def test_duplicates_within_a_list_of_dicts_are_an_error() -> None:
    # Regression: same cause as above.
    ghost = yaml.safe_load(GHOST.format(name="g"))
    with pytest.raises(ValidationError, match="defined twice"):
        loads([ghost, {**ghost, "spec": {"systemPrompt": "other"}}])


def test_loading_the_same_file_twice_reports_duplicates(tmp_path: Path) -> None:
    # Regression: same cause; the second copy has the same location as the first.
    path = write(tmp_path, "a.yaml", GHOST.format(name="g"))
    with pytest.raises(ValidationError, match="defined twice"):
        load(tmp_path, path)


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "broken.yaml",
        """
        kind: Ghost
        metadata:
          name: g: h
        spec: {systemPrompt: p}
        """,
    )
    with pytest.raises(ValidationError) as info:
        load(path)
    (problem,) = errors(info.value)
    assert problem.source == str(path)
    assert problem.line == 3
    assert "invalid YAML" in problem.message


def test_yaml_syntax_error_keeps_the_documents_before_it() -> None:
    text = GHOST.format(name="a") + "---\nkind: [\n"
    with pytest.raises(ValidationError) as info:
        loads(text)
    assert [r.name for r in info.value.loaded] == ["a"]


def test_missing_path_is_reported_by_name(tmp_path: Path) -> None:
    good = write(tmp_path, "good.yaml", GHOST.format(name="g"))
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ValidationError) as info:
        load(good, missing, tmp_path / "no-dir")
    assert sorted(p.source for p in errors(info.value)) == [str(tmp_path / "no-dir"), str(missing)]
    assert [r.name for r in info.value.loaded] == ["g"]


def test_unreadable_file_is_reported_by_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    undecodable = tmp_path / "latin1.yaml"
    undecodable.write_bytes(b"kind: Ghost\nmetadata: {name: caf\xe9}\n")
    locked = write(tmp_path, "locked.yaml", GHOST.format(name="g"))
    real_read_text = Path.read_text

    def read_text(self: Path, *args: object, **kwargs: object) -> str:
        if self == locked:
            raise PermissionError(13, "Permission denied", str(self))
        return real_read_text(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Path, "read_text", read_text)
    with pytest.raises(ValidationError) as info:
        load(undecodable, locked)
    found = {p.source: p.message for p in errors(info.value)}
    assert set(found) == {str(undecodable), str(locked)}
    assert "Permission denied" in found[str(locked)]


# --- safety -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "payload",
    [
        '!!python/object/apply:os.system ["touch {sentinel}"]',
        "kind: Ghost\nmetadata: {{name: g}}\nspec:\n"
        '  systemPrompt: !!python/object/apply:os.system ["touch {sentinel}"]\n',
        "kind: Ghost\nmetadata: {{name: g}}\nspec: {{systemPrompt: p, hook: !!python/name:os.system }}\n",
        '!!python/object/new:os.system ["touch {sentinel}"]',
        "kind: !!python/object/apply:subprocess.check_call [[touch, {sentinel}]]\n",
        "- !!python/object/apply:builtins.exec [\"open('{sentinel}', 'w').close()\"]\n",
        "!!python/module:os\n",
    ],
)
def test_python_tags_never_run_code(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, payload: str) -> None:
    sentinel = tmp_path / "pwned"
    calls: list[object] = []
    monkeypatch.setattr(os, "system", lambda *a: calls.append(a) or 0)
    monkeypatch.setattr(subprocess, "check_call", lambda *a, **k: calls.append(a) or 0)
    text = payload.format(sentinel=sentinel)
    with pytest.raises(ValidationError) as info:
        loads(text)
    assert calls == []
    assert not sentinel.exists()
    assert any("python" in p.message for p in errors(info.value))
    path = tmp_path / "evil.yaml"
    path.write_text(text)
    with pytest.raises(ValidationError):
        load(path)
    assert calls == []
    assert not sentinel.exists()


def test_python_tags_never_import_modules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sentinel = tmp_path / "imported"
    (tmp_path / "wegent_evil_probe.py").write_text(f"open({str(sentinel)!r}, 'w').close()\ndef run(*a): pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    for text in (
        "!!python/name:wegent_evil_probe.run\n",
        "!!python/module:wegent_evil_probe\n",
        "kind: Ghost\nmetadata: {name: g}\nspec: {systemPrompt: !!python/object/apply:wegent_evil_probe.run [x]}\n",
    ):
        with pytest.raises(ValidationError):
            loads(text)
    assert not sentinel.exists()
    assert "wegent_evil_probe" not in sys.modules


def test_bad_tag_does_not_hide_the_other_documents_of_the_stream() -> None:
    # Regression: a refused tag (a per-document constructor error, not a syntax error) used to abort the whole
    # stream, so the good Ghost after it was not loaded and the bad Bot after it was not reported.
    text = doc(
        """
        kind: Ghost
        metadata: {name: evil}
        spec: {systemPrompt: !!python/name:os.system }
        ---
        kind: Ghost
        metadata: {name: good}
        spec: {systemPrompt: p}
        ---
        kind: Bot
        metadata: {name: bad}
        spec: {ghostRef: {name: good}}
        """
    )
    with pytest.raises(ValidationError) as info:
        loads(text, source="s.yaml")
    assert [r.name for r in info.value.loaded] == ["good"]
    assert {p.line for p in errors(info.value)} == {3, 11}


def billion_laughs(levels: int = 9) -> str:
    lines = ['lol0: &lol0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, levels + 1):
        lines.append(f"lol{i}: &lol{i} [" + ", ".join([f"*lol{i - 1}"] * 9) + "]")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("where", ["top", "spec", "list"])
def test_alias_bomb_is_rejected_quickly(where: str) -> None:
    bomb = billion_laughs()
    if where == "spec":
        text = "kind: Ghost\nmetadata: {name: g}\nspec:\n  systemPrompt: p\n" + textwrap.indent(bomb, "  ")
    elif where == "list":
        text = "- kind: Ghost\n  metadata: {name: g}\n  spec:\n    systemPrompt: p\n" + textwrap.indent(bomb, "    ")
    else:
        text = bomb
    started = time.perf_counter()
    with pytest.raises(ValidationError) as info:
        loads(text, strict=True)
    assert time.perf_counter() - started < 3
    assert errors(info.value)


def test_small_aliases_are_fine() -> None:
    text = doc(
        """
        kind: Team
        metadata: {name: t}
        spec:
          collaborationModel: pipeline
          members:
            - botRef: &bot {name: shared-bot}
            - botRef: *bot
              requireConfirmation: true
        """
    )
    team = only(loads(text), "Team")
    assert [m.bot_ref.name for m in team.spec.members] == ["shared-bot", "shared-bot"]


def test_self_referencing_alias_is_rejected() -> None:
    # Regression: a recursive alias used to load, after which `dump` failed ("Circular reference detected") and `==`
    # recursed without end.
    text = "kind: Ghost\nmetadata: {name: g}\nspec: &s {systemPrompt: p, self: *s}\n"
    with pytest.raises(ValidationError):
        loads(text)


@pytest.mark.parametrize(
    "text",
    [
        "a: " + "[" * 50_000 + "]" * 50_000 + "\n",
        "[" * 50_000 + "]" * 50_000,
        "kind: Ghost\nmetadata: {name: g}\nspec: {systemPrompt: p, x: " + "{a: " * 50_000 + "1" + "}" * 50_000 + "}\n",
    ],
    ids=["yaml-flow", "json", "yaml-in-spec"],
)
def test_deep_nesting_is_a_validation_error_not_a_crash(text: str, tmp_path: Path) -> None:
    # Regression: 50,000 nested flow collections (100 KB) used to crash the interpreter with a segmentation fault in
    # libyaml's composer (it recurses in C, unbounded by Python's recursion limit), and the JSON branch raised a raw
    # RecursionError. Run in a child process so that a crash fails this test instead of killing the run.
    path = tmp_path / "deep.yaml"
    path.write_text(text)
    script = (
        "import sys\n"
        "from wegent_core._loader import load\n"
        "from wegent_core._errors import ValidationError\n"
        "try:\n"
        f"    load({str(path)!r})\n"
        "except ValidationError:\n"
        "    print('validation error')\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, f"exit {result.returncode}: {result.stderr[-500:]}"
    assert result.stdout.strip() == "validation error"


@pytest.mark.parametrize(
    "value",
    [
        "!!binary /w==",  # bytes that are not UTF-8
        "[" * 300 + "]" * 300,  # deeper than pydantic's serialisation limit (255)
    ],
    ids=["binary", "deep"],
)
def test_whatever_loads_can_be_dumped(value: str) -> None:
    # Regression: both used to load (the value sits in an unknown, free-form field) and then make `dump` raise:
    # UnicodeDecodeError for the bytes, ValueError "Maximum serialization depth exceeded" for the nesting.
    # Rejecting them at load time with a ValidationError satisfies this test as well.
    text = f"kind: Ghost\nmetadata: {{name: g}}\nspec:\n  systemPrompt: p\n  xFuture: {value}\n"
    try:
        resources = loads(text)
    except ValidationError:
        return
    for fmt in ("yaml", "json"):
        assert len(loads(dump(resources, format=fmt))) == 1


class _CountingText(str):
    """A str that counts substring searches over the whole text."""

    searches = 0

    def __contains__(self, item: object) -> bool:
        self.searches += 1
        return super().__contains__(item)  # type: ignore[operator]


def test_loading_a_stream_does_not_search_the_whole_text_per_document(monkeypatch: pytest.MonkeyPatch) -> None:
    # Regression (performance): the loader used to evaluate `"*" in text` once per document, scanning the whole text
    # n times for n documents: O(n x size), about 0.85 s of the 10,000-resource benchmark's load.
    # libyaml's parser accepts only an exact str, so it is handed a plain copy; the loader's own searches are counted.
    from wegent_core import _yaml

    parser = _yaml._FastLoader
    monkeypatch.setattr(_yaml, "_FastLoader", lambda text: parser(str(text)))
    text = _CountingText(
        "".join(f"---\nkind: Shell\nmetadata: {{name: s{i}}}\nspec: {{shellType: Chat}}\n" for i in range(100))
    )
    assert len(loads(text)) == 100
    assert text.searches <= 1


# --- what the loaded models are -----------------------------------------------------------------------------------


def test_each_kind_loads_into_its_model_class() -> None:
    text = doc(
        """
        kind: Ghost
        metadata: {name: g}
        spec: {systemPrompt: p}
        ---
        kind: Model
        metadata: {name: m}
        spec: {modelConfig: {env: {model: openai, model_id: gpt-4o, api_key: "${OPENAI_API_KEY}"}}}
        ---
        kind: Shell
        metadata: {name: s}
        spec: {shellType: Chat}
        ---
        kind: Bot
        metadata: {name: b}
        spec: {ghostRef: {name: g}, shellRef: {name: s}, modelRef: {name: m}}
        ---
        kind: Team
        metadata: {name: t}
        spec: {collaborationModel: solo, members: [{botRef: {name: b}}]}
        ---
        kind: Workspace
        metadata: {name: w}
        spec:
          repository: {gitUrl: "https://github.com/o/r.git", gitRepo: o/r, gitRepoId: 5, branchName: main,
                       gitDomain: github.com}
        ---
        kind: Task
        metadata: {name: task-1}
        spec: {title: t, prompt: p, teamRef: {name: t}, workspaceRef: {name: w}}
        ---
        kind: Skill
        metadata: {name: k}
        spec: {description: d}
        """
    )
    resources = loads(text, strict=True)
    assert [type(r) for r in resources] == [Ghost, Model, Shell, Bot, Team, Workspace, Task, Skill]
    assert resources.warnings == []
    model = resources.find("Model", "m")
    assert model.spec.config["env"]["api_key"] == "${OPENAI_API_KEY}"  # placeholders are kept as written
    assert resources.find("Workspace", "w").spec.repository.git_repo_id == 5


@pytest.mark.parametrize(
    "timestamp",
    ["2001-12-14t21:59:43.10-05:00", "2001-12-14 21:59:43.10 -5", "2001-12-15 2:59:43.10", "2002-12-14"],
)
def test_every_yaml_timestamp_form_loads_into_datetime_fields(timestamp: str) -> None:
    # Regression: timestamps are read as strings and parsed by pydantic, which rejects some forms that YAML
    # 1.1 defines and PyYAML (hence upstream) reads as datetimes: a space before the zone, a one-digit zone hour,
    # a one-digit hour. These are the YAML specification's own examples.
    text = "kind: Task\nmetadata: {name: t}\nspec: {prompt: p, teamRef: {name: x}}\n"
    text += f"status: {{createdAt: {timestamp}}}\n"
    expected = yaml.safe_load(f"v: {timestamp}")["v"]
    if not isinstance(expected, datetime):
        expected = datetime(expected.year, expected.month, expected.day)
    task = only(loads(text), "Task")
    assert task.status.created_at == expected


@pytest.mark.parametrize("value", [".inf", "-.inf", ".nan"])
def test_non_finite_numbers_in_unknown_fields_are_not_silently_lost(value: str) -> None:
    # Regression: `.inf`/`.nan` in a free-form or unknown field loaded, and the dump wrote them as `null` (JSON mode),
    # so the value was silently lost on the round trip. They are now refused at load time, like `!!binary`.
    text = f"kind: Ghost\nmetadata: {{name: g}}\nspec:\n  systemPrompt: p\n  xFuture: {value}\n"
    try:
        resources = loads(text)
    except ValidationError:
        return
    again = loads(dump(resources))
    assert again[0].spec.model_extra["xFuture"] is not None


def test_resources_loaded_from_objects_do_not_share_the_callers_data() -> None:
    env = {"model": "openai", "model_id": "a"}
    document = {"kind": "Model", "metadata": {"name": "m"}, "spec": {"modelConfig": {"env": env}}}
    (resource,) = loads(document)
    env["model_id"] = "changed"
    assert resource.spec.config["env"]["model_id"] == "a"  # type: ignore[attr-defined]
