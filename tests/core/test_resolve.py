"""Resolution rules of the upstream reference, section 2, and the error messages of 2.9.

Each test builds the smallest resource graph that exercises one rule and checks the plan or the error.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest

from wegent_core._errors import ResolutionError
from wegent_core._loader import load, loads
from wegent_core._memory_store import MemoryStore
from wegent_core._resolve import resolve_task, resolve_team

FIXTURES = Path(__file__).parent.parent / "fixtures" / "upstream"


# --- builders -----------------------------------------------------------------------------------------------------


def doc(kind: str, name: str, spec: dict[str, Any], namespace: str = "default", **metadata: Any) -> dict[str, Any]:
    return {"kind": kind, "metadata": {"name": name, "namespace": namespace, **metadata}, "spec": spec}


def ghost(name: str, prompt: str = "You help.", namespace: str = "default", **spec: Any) -> dict[str, Any]:
    return doc("Ghost", name, {"systemPrompt": prompt, **spec}, namespace)


def shell(name: str, shell_type: str | None = "Chat", namespace: str = "default", **spec: Any) -> dict[str, Any]:
    return doc("Shell", name, {**({"shellType": shell_type} if shell_type else {}), **spec}, namespace)


def model(name: str, namespace: str = "default", env: dict[str, Any] | None = None, **config: Any) -> dict[str, Any]:
    if env is None and "bind_model" not in config:
        env = {"model": "openai", "model_id": f"{name}-id", "api_key": "${OPENAI_API_KEY}"}
    body = {**({"env": env} if env is not None else {}), **config}
    return doc("Model", name, {"modelConfig": body}, namespace)


def bot(
    name: str, ghost: str = "g", shell: str = "chat", model: str | None = "m", namespace: str = "default", **spec: Any
) -> dict[str, Any]:
    refs: dict[str, Any] = {"ghostRef": {"name": ghost}, "shellRef": {"name": shell}}
    if model is not None:
        refs["modelRef"] = {"name": model}
    return doc("Bot", name, {**refs, **spec}, namespace)


def team(name: str, *members: str | dict[str, Any], mode: str = "solo", namespace: str = "default") -> dict[str, Any]:
    entries = [{"botRef": {"name": m}} if isinstance(m, str) else m for m in members]
    return doc("Team", name, {"members": entries, "collaborationModel": mode}, namespace)


def store_of(*docs: dict[str, Any]) -> MemoryStore:
    return MemoryStore.from_resources(loads(list(docs)))


def basics() -> list[dict[str, Any]]:
    return [ghost("g"), shell("chat"), model("m")]


def problems(exc: pytest.ExceptionInfo[ResolutionError]) -> list[str]:
    return [str(p) for p in exc.value.problems]


ENV = {"OPENAI_API_KEY": "sk-test"}


# --- 2.1 lookup and public fallback -------------------------------------------------------------------------------


def test_default_references_fall_back_to_public_resources() -> None:
    store = store_of(
        ghost("g", namespace="public"),
        shell("chat", namespace="public"),
        model("m", namespace="public"),
        bot("b", namespace="public"),
        team("t", "b"),
    )
    plan = resolve_team(store, "t", environ=ENV)
    member = plan.members[0]
    assert member.bot == "public/b"
    assert member.ghost == "public/g"
    assert member.shell.namespace == "public"
    assert member.model.namespace == "public"


def test_a_public_team_uses_public_members() -> None:
    public = [ghost("g", namespace="public"), shell("chat", namespace="public"), model("m", namespace="public")]
    store = store_of(*basics(), *public, bot("b", namespace="public"), team("t", "b", namespace="public"))
    plan = resolve_team(store, "t", environ=ENV)
    assert plan.team == "public/t"
    assert (plan.members[0].bot, plan.members[0].ghost) == ("public/b", "public/g")


def test_own_resource_wins_over_public() -> None:
    store = store_of(*basics(), ghost("g", "public prompt", namespace="public"), bot("b"), team("t", "b"))
    assert resolve_team(store, "t", environ=ENV).members[0].system_prompt == "You help."


def test_group_namespace_never_falls_back_to_public() -> None:
    store = store_of(
        ghost("g", namespace="public"),
        shell("chat", namespace="dev"),
        model("m", namespace="dev"),
        bot("b", namespace="dev"),
        team("t", "b", namespace="dev"),
    )
    with pytest.raises(ResolutionError) as exc:
        resolve_team(store, "t", "dev", environ=ENV)
    assert problems(exc) == ["Team t -> members[0] -> Bot b -> Ghost g: not found in namespace dev"]


def test_tasks_and_workspaces_never_fall_back_to_public() -> None:
    task = doc("Task", "job", {"prompt": "hi", "teamRef": {"name": "t"}, "workspaceRef": {"name": "ws"}})
    workspace = doc(
        "Workspace",
        "ws",
        {"repository": {"gitUrl": "", "gitRepo": "", "branchName": "", "gitDomain": ""}},
        namespace="public",
    )
    public_task = {**task, "metadata": {"name": "job", "namespace": "public"}}
    store = store_of(*basics(), bot("b"), team("t", "b"), task, workspace)
    with pytest.raises(ResolutionError) as exc:
        resolve_task(store, "job", environ=ENV)
    assert problems(exc) == ["Task job -> Workspace ws: not found in namespace default"]
    with pytest.raises(ResolutionError) as exc:
        resolve_task(store_of(*basics(), bot("b"), team("t", "b"), public_task), "job", environ=ENV)
    assert problems(exc) == ["Task job: not found in namespace default"]


def test_reference_without_namespace_means_the_referrers_namespace() -> None:
    store = store_of(
        ghost("g", "dev ghost", namespace="dev"),
        shell("chat", namespace="dev"),
        model("m", namespace="dev"),
        bot("b", namespace="dev"),
        team("t", "b", namespace="dev"),
        ghost("g", "default ghost"),
    )
    plan = resolve_team(store, "t", "dev", environ=ENV)
    assert plan.members[0].system_prompt == "dev ghost"


def test_explicit_reference_namespace_crosses_namespaces() -> None:
    member = {"botRef": {"name": "b", "namespace": "shared"}}
    store = store_of(
        ghost("g", namespace="shared"),
        shell("chat", namespace="shared"),
        model("m", namespace="shared"),
        bot("b", namespace="shared"),
        team("t", member, namespace="dev"),
    )
    assert resolve_team(store, "t", "dev", environ=ENV).members[0].bot == "shared/b"


# --- 2.2 / 2.3 task, team and members -----------------------------------------------------------------------------


def test_task_resolves_its_team_prompt_title_and_workspace() -> None:
    repo = {"gitUrl": "https://example.invalid/r.git", "gitRepo": "o/r", "branchName": "main", "gitDomain": "example"}
    task = doc("Task", "job", {"prompt": "x" * 60, "teamRef": {"name": "t"}, "workspaceRef": {"name": "ws"}})
    store = store_of(*basics(), bot("b"), team("t", "b"), task, doc("Workspace", "ws", {"repository": repo}))
    plan = resolve_task(store, "job", environ=ENV)
    assert plan.task == "default/job"
    assert plan.team == "default/t"
    assert plan.prompt == "x" * 60
    assert plan.title == "x" * 50 + "..."
    assert plan.workspace is not None
    assert plan.workspace.git_repo == "o/r"


def test_missing_team_of_a_task_names_the_chain() -> None:
    task = doc("Task", "job", {"prompt": "hi", "teamRef": {"name": "ghost-team"}})
    with pytest.raises(ResolutionError) as exc:
        resolve_task(store_of(task), "job")
    assert problems(exc) == ["Task job -> Team ghost-team: not found in namespace default or public"]


def test_members_keep_their_order_and_the_leader_is_the_leader_role() -> None:
    store = store_of(
        *basics(),
        bot("a"),
        bot("b"),
        bot("c"),
        team("t", "a", {"botRef": {"name": "b"}, "role": "leader"}, "c", mode="route"),
    )
    plan = resolve_team(store, "t", environ=ENV)
    assert [m.bot for m in plan.members] == ["default/a", "default/b", "default/c"]
    assert plan.leader == 1
    assert [m.leader for m in plan.members] == [False, True, False]


def test_without_a_leader_role_the_first_member_leads() -> None:
    store = store_of(*basics(), bot("a"), bot("b"), team("t", "a", "b", mode="collaborate"))
    assert resolve_team(store, "t", environ=ENV).leader == 0


def test_several_leaders_warn_and_the_first_leads() -> None:
    leader_a = {"botRef": {"name": "a"}, "role": "leader"}
    leader_b = {"botRef": {"name": "b"}, "role": "Leader"}
    store = store_of(*basics(), bot("a"), bot("b"), team("t", "a", leader_a, leader_b))
    plan = resolve_team(store, "t", environ=ENV)
    assert plan.leader == 1
    assert any("several members have role leader" in w for w in plan.warnings)


def test_pipeline_members_carry_confirmation_and_context_passing() -> None:
    stage0 = {"botRef": {"name": "a"}, "requireConfirmation": True, "contextPassing": "original_and_previous"}
    store = store_of(*basics(), bot("a"), bot("b"), team("t", stage0, "b", mode="pipeline"))
    plan = resolve_team(store, "t", environ=ENV)
    assert plan.collaboration_model == "pipeline"
    assert plan.members[0].require_confirmation is True
    assert plan.members[0].context_passing == "original_and_previous"
    assert plan.members[1].require_confirmation is False
    assert plan.members[1].context_passing == "none"


def test_task_current_stage_is_carried_and_checked() -> None:
    task = doc("Task", "job", {"prompt": "hi", "teamRef": {"name": "t"}, "currentStage": 1})
    store = store_of(*basics(), bot("a"), bot("b"), team("t", "a", "b", mode="pipeline"), task)
    assert resolve_task(store, "job", environ=ENV).current_stage == 1
    past = doc("Task", "late", {"prompt": "hi", "teamRef": {"name": "t"}, "currentStage": 2})
    store.put(loads(past)[0])
    with pytest.raises(ResolutionError, match="currentStage 2 is past the last stage"):
        resolve_task(store, "late", environ=ENV)


# --- 2.6 system prompt ----------------------------------------------------------------------------------------------


def test_system_prompt_is_ghost_prompt_then_member_prompt() -> None:
    member = {"botRef": {"name": "b"}, "prompt": "Focus on tests."}
    store = store_of(ghost("g", "You review code."), shell("chat"), model("m"), bot("b"), team("t", member))
    plan = resolve_team(store, "t", environ=ENV)
    assert plan.members[0].system_prompt == "You review code.\n\nFocus on tests."
    assert plan.members[0].member_prompt == "Focus on tests."


@pytest.mark.parametrize("member_prompt", [None, "", "   "])
def test_blank_member_prompt_adds_nothing(member_prompt: str | None) -> None:
    member = {"botRef": {"name": "b"}, "prompt": member_prompt}
    store = store_of(ghost("g", "You review code."), shell("chat"), model("m"), bot("b"), team("t", member))
    assert resolve_team(store, "t", environ=ENV).members[0].system_prompt == "You review code."


def test_a_public_ghost_still_gives_its_prompt() -> None:
    # Upstream's HEAD prompt lookup skips the public fallback (an empty prompt); this library does not copy that.
    store = store_of(
        ghost("g", "Public persona.", namespace="public"), shell("chat"), model("m"), bot("b"), team("t", "b")
    )
    assert resolve_team(store, "t", environ=ENV).members[0].system_prompt == "Public persona."


# --- 2.4 shells ---------------------------------------------------------------------------------------------------


def test_shell_type_base_image_and_execution_class() -> None:
    labelled = {
        **shell("cc", "ClaudeCode", baseImage="ghcr.io/x/y:1"),
        "metadata": {"name": "cc", "labels": {"type": "local_engine"}},
    }
    store = store_of(
        ghost("g"),
        labelled,
        shell("chat"),
        model("m"),
        bot("a", shell="cc"),
        bot("b"),
        team("t", "a", "b", mode="collaborate"),
    )
    members = resolve_team(store, "t", environ=ENV).members
    assert (members[0].shell.shell_type, members[0].shell.base_image) == ("ClaudeCode", "ghcr.io/x/y:1")
    assert members[0].shell.execution_type == "local_engine"
    assert members[1].shell.execution_type == "local_engine"  # no label: upstream treats it as local_engine


def test_runtime_alias_gives_the_shell_type() -> None:
    store = store_of(ghost("g"), doc("Shell", "chat", {"runtime": "Agno"}), model("m"), bot("b"), team("t", "b"))
    assert resolve_team(store, "t", environ=ENV).members[0].shell.shell_type == "Agno"


def test_derived_shell_inherits_type_and_supported_models_from_its_base() -> None:
    base = shell("ClaudeCode", "ClaudeCode", namespace="public", supportModel=["claude"], baseImage="base:1")
    derived = shell("mine", None, baseShellRef="ClaudeCode", baseImage="custom:2")
    store = store_of(ghost("g"), base, derived, model("m"), bot("b", shell="mine"), team("t", "b"))
    plan_shell = resolve_team(store, "t", environ=ENV).members[0].shell
    assert plan_shell.shell_type == "ClaudeCode"
    assert plan_shell.support_model == ["claude"]
    assert plan_shell.base_image == "custom:2"
    assert plan_shell.chain == ["default/mine", "public/ClaudeCode"]


def test_derived_shell_base_wins_over_its_own_type() -> None:
    base = shell("base", "ClaudeCode")
    derived = shell("mine", "Chat", baseShellRef="base")
    store = store_of(ghost("g"), base, derived, model("m"), bot("b", shell="mine"), team("t", "b"))
    assert resolve_team(store, "t", environ=ENV).members[0].shell.shell_type == "ClaudeCode"


def test_cyclic_base_shells_are_reported() -> None:
    store = store_of(
        ghost("g"),
        shell("a", None, baseShellRef="b"),
        shell("b", None, baseShellRef="a"),
        model("m"),
        bot("x", shell="a"),
        team("t", "x"),
    )
    with pytest.raises(ResolutionError, match="cyclic: a -> b -> a"):
        resolve_team(store, "t", environ=ENV)


def test_missing_shell_names_the_whole_chain() -> None:
    store = store_of(
        ghost("g"),
        shell("chat"),
        model("m"),
        bot("writer"),
        bot("reviewer", shell="gpu-shell"),
        team("dev-team", "writer", "reviewer"),
    )
    with pytest.raises(ResolutionError) as exc:
        resolve_team(store, "dev-team", environ=ENV)
    assert problems(exc) == [
        "Team dev-team -> members[1] -> Bot reviewer -> Shell gpu-shell: not found in namespace default or public"
    ]


# --- 2.5 models -----------------------------------------------------------------------------------------------------


def model_store(bot_doc: dict[str, Any], *extra: dict[str, Any]) -> MemoryStore:
    return store_of(
        ghost("g"),
        shell("chat"),
        model("own"),
        model("bound"),
        model("override"),
        bot_doc,
        team("t", bot_doc["metadata"]["name"]),
        *extra,
    )


def selected(store: MemoryStore, **kwargs: Any) -> tuple[str, str]:
    plan_model = resolve_team(store, "t", environ=ENV, **kwargs).members[0].model
    return plan_model.name, plan_model.selected_by


def test_forced_override_beats_everything() -> None:
    store = model_store(bot("b", model="own", agent_config={"bind_model": "bound"}))
    assert selected(store, model="override", force_model=True) == ("override", "forced override")


def test_bind_model_beats_model_ref_and_a_fallback() -> None:
    store = model_store(bot("b", model="own", agent_config={"bind_model": "bound"}))
    assert selected(store) == ("bound", "bind_model")
    assert selected(store, model="override") == ("bound", "bind_model")


def test_blank_bind_model_is_ignored() -> None:
    store = model_store(bot("b", model="own", agent_config={"bind_model": "  "}))
    assert selected(store) == ("own", "modelRef")


def test_model_ref_beats_an_unforced_override() -> None:
    store = model_store(bot("b", model="own"))
    assert selected(store, model="override") == ("own", "modelRef")


def test_override_is_the_fallback_for_a_bot_without_a_model() -> None:
    store = model_store(bot("b", model=None))
    assert selected(store, model="override") == ("override", "task fallback")


def test_a_bot_without_any_model_fails() -> None:
    with pytest.raises(ResolutionError) as exc:
        resolve_team(model_store(bot("b", model=None)), "t", environ=ENV)
    assert problems(exc) == [
        "Team t -> members[0] -> Bot b: Bot b has no model configured (give it a modelRef, or pass a model)"
    ]


def test_task_labels_override_and_force_the_model() -> None:
    labels = {"modelId": "override", "forceOverrideBotModel": "true"}
    task = doc("Task", "job", {"prompt": "hi", "teamRef": {"name": "t"}}, labels=labels)
    store = model_store(bot("b", model="own"), task)
    assert resolve_task(store, "job", environ=ENV).members[0].model.name == "override"
    unforced = doc("Task", "job2", {"prompt": "hi", "teamRef": {"name": "t"}}, labels={"modelId": "override"})
    store.put(loads(unforced)[0])
    assert resolve_task(store, "job2", environ=ENV).members[0].model.name == "own"


ALLOWED = [{"name": "own"}, {"name": "override"}]


@pytest.mark.parametrize(
    ("allowed", "override", "force", "ok"),
    [
        (ALLOWED, "override", True, True),  # allowed override
        ([{"name": "own"}], "override", True, False),  # override not allowed
        ([{"name": "own"}], "override", False, True),  # final model (own) is allowed
        (["override", 3, None], "override", True, False),  # every entry malformed: everything blocked
        ([{"name": "override"}, "junk"], "override", True, True),  # malformed entries ignored
        ([{"name": "other"}], None, False, True),  # no override: no check
        ([], "override", True, True),  # empty list: no whitelist
    ],
)
def test_allowed_models_whitelist(allowed: list[Any], override: str | None, force: bool, ok: bool) -> None:
    store = model_store(bot("b", model="own", agent_config={"allowed_models": allowed}))
    if ok:
        resolve_team(store, "t", model=override, force_model=force, environ=ENV)
    else:
        with pytest.raises(ResolutionError, match="Model 'override' is not in the allowed models list for bot 'b'"):
            resolve_team(store, "t", model=override, force_model=force, environ=ENV)


def pointer_chain(length: int) -> list[dict[str, Any]]:
    """m -> p1 -> ... -> p<length> (a real model)."""
    names = ["m", *(f"p{i}" for i in range(1, length + 1))]
    docs = [model(n, bind_model=nxt) for n, nxt in itertools.pairwise(names)]
    return [*docs, model(names[-1])]


def test_bind_model_pointers_are_followed() -> None:
    store = store_of(ghost("g"), shell("chat"), *pointer_chain(5), bot("b"), team("t", "b"))
    plan_model = resolve_team(store, "t", environ=ENV).members[0].model
    assert plan_model.name == "p5"
    assert plan_model.model_id == "p5-id"
    assert plan_model.chain == ["default/m", "default/p1", "default/p2", "default/p3", "default/p4", "default/p5"]


def test_a_pointer_chain_of_six_hops_is_too_deep() -> None:
    store = store_of(ghost("g"), shell("chat"), *pointer_chain(6), bot("b"), team("t", "b"))
    with pytest.raises(ResolutionError, match="too deep or cyclic"):
        resolve_team(store, "t", environ=ENV)


def test_a_pointer_cycle_is_reported() -> None:
    store = store_of(
        ghost("g"), shell("chat"), model("m", bind_model="n"), model("n", bind_model="m"), bot("b"), team("t", "b")
    )
    with pytest.raises(ResolutionError, match="cyclic: m -> n -> m"):
        resolve_team(store, "t", environ=ENV)


def test_a_pointer_to_a_missing_model_names_it() -> None:
    store = store_of(ghost("g"), shell("chat"), model("m", bind_model="gone"), bot("b"), team("t", "b"))
    with pytest.raises(ResolutionError) as exc:
        resolve_team(store, "t", environ=ENV)
    assert problems(exc) == [
        "Team t -> members[0] -> Bot b -> Model m: binds to model 'gone', which was not found "
        "in namespace default or public"
    ]


def test_no_silent_default_model() -> None:
    store = store_of(ghost("g"), shell("chat"), model("m", env={"model": "openai"}), bot("b"), team("t", "b"))
    plan_model = resolve_team(store, "t", environ=ENV).members[0].model
    assert plan_model.model_id is None  # upstream silently used gpt-4 here
    assert plan_model.base_url is None


def test_a_model_without_env_fails() -> None:
    store = store_of(
        ghost("g"), shell("chat"), doc("Model", "m", {"modelConfig": {"DEFAULT_HEADERS": {}}}), bot("b"), team("t", "b")
    )
    with pytest.raises(ResolutionError, match="Model m: Model config has no env configuration"):
        resolve_team(store, "t", environ=ENV)


def test_flat_model_config_is_read_as_env() -> None:
    flat = doc("Model", "m", {"modelConfig": {"model_id": "gpt-x", "api_key": "k", "protocol": "openai"}})
    store = store_of(ghost("g"), shell("chat"), flat, bot("b"), team("t", "b"))
    assert resolve_team(store, "t", environ=ENV).members[0].model.model_id == "gpt-x"


@pytest.mark.parametrize(
    ("spec_fields", "config", "env_model", "protocol", "api_format"),
    [
        ({}, {}, "openai", "openai", "chat/completions"),
        ({}, {}, "claude", "claude", None),
        ({"protocol": "openai-responses"}, {}, "openai", "openai-responses", "responses"),
        ({}, {"protocol": "openai-responses"}, "openai", "openai-responses", "responses"),
        ({"apiFormat": "responses"}, {}, "openai", "openai", "responses"),
        ({}, {"apiFormat": "responses"}, "openai", "openai", "responses"),
        ({"protocol": "gemini"}, {"protocol": "claude"}, "openai", "gemini", None),
    ],
)
def test_protocol_and_api_format_inference(
    spec_fields: dict[str, Any], config: dict[str, Any], env_model: str, protocol: str, api_format: str | None
) -> None:
    m = doc("Model", "m", {"modelConfig": {"env": {"model": env_model, "model_id": "x"}, **config}, **spec_fields})
    store = store_of(ghost("g"), shell("chat"), m, bot("b"), team("t", "b"))
    plan_model = resolve_team(store, "t", environ=ENV).members[0].model
    assert (plan_model.protocol, plan_model.api_format) == (protocol, api_format)


def test_raw_anthropic_env_of_the_upstream_example() -> None:
    env = {"ANTHROPIC_MODEL": "claude-x", "ANTHROPIC_API_KEY": "secret", "ANTHROPIC_BASE_URL": "http://127.0.0.1:1"}
    store = store_of(ghost("g"), shell("chat"), model("m", env=env), bot("b"), team("t", "b"))
    plan_model = resolve_team(store, "t", environ=ENV).members[0].model
    assert (plan_model.provider, plan_model.protocol, plan_model.model_id) == ("claude", "claude", "claude-x")
    assert plan_model.api_key == "secret"
    assert plan_model.model_dump()["api_key"] == "***"
    assert plan_model.model_dump()["env"]["ANTHROPIC_API_KEY"] == "***"


def test_default_headers_sources_and_json_strings() -> None:
    env = {"model": "openai", "DEFAULT_HEADERS": '{"X-From": "env"}'}
    both = model("m", env=env, DEFAULT_HEADERS={"X-From": "config"})
    store = store_of(ghost("g"), shell("chat"), both, bot("b"), team("t", "b"))
    assert resolve_team(store, "t", environ=ENV).members[0].model.default_headers == {"X-From": "config"}
    store = store_of(ghost("g"), shell("chat"), model("m", env=env), bot("b"), team("t", "b"))
    assert resolve_team(store, "t", environ=ENV).members[0].model.default_headers == {"X-From": "env"}
    bad = model("m", env={"model": "openai", "DEFAULT_HEADERS": "{not json"})
    with pytest.raises(ResolutionError, match="DEFAULT_HEADERS is a string but not valid JSON"):
        resolve_team(store_of(ghost("g"), shell("chat"), bad, bot("b"), team("t", "b")), "t", environ=ENV)


def test_context_window_from_model_config_wins_and_bools_are_ignored() -> None:
    def plan_for(config: dict[str, Any]) -> Any:
        m = doc(
            "Model",
            "m",
            {"modelConfig": {"env": {"model": "openai"}, **config}, "contextWindow": 1000, "maxOutputTokens": 10},
        )
        return (
            resolve_team(store_of(ghost("g"), shell("chat"), m, bot("b"), team("t", "b")), "t", environ=ENV)
            .members[0]
            .model
        )

    assert plan_for({"context_window": 2000}).context_window == 2000
    assert plan_for({"context_window": True}).context_window == 1000
    assert plan_for({"max_output_tokens": 20}).max_output_tokens == 20
    assert plan_for({}).max_output_tokens == 10


def test_env_placeholders_are_kept_in_the_plan_and_expanded_only_at_run_time() -> None:
    env = {"model": "openai", "api_key": "${MY_KEY}", "base_url": "http://${HOST}:1/v1", "model_id": "x"}
    store = store_of(ghost("g"), shell("chat"), model("m", env=env), bot("b"), team("t", "b"))
    plan = resolve_team(store, "t", environ={"MY_KEY": "sk-live"})
    plan_model = plan.members[0].model
    assert plan_model.api_key == "${MY_KEY}"
    assert "sk-live" not in plan.model_dump_json()
    assert any("${HOST}" in w and "not set" in w for w in plan.warnings)
    live = plan_model.materialize({"MY_KEY": "sk-live", "HOST": "127.0.0.1"})
    assert live["api_key"] == "sk-live"
    assert live["base_url"] == "http://127.0.0.1:1/v1"
    assert plan_model.materialize({})["api_key"] == "${MY_KEY}"  # unknown variables stay as written


# --- 2.7 skills -----------------------------------------------------------------------------------------------------


def skill(name: str, namespace: str = "default", **spec: Any) -> dict[str, Any]:
    return doc("Skill", name, {"description": f"{name} skill", **spec}, namespace)


def test_ghost_skills_resolve_in_order_with_preload_flags() -> None:
    g = ghost("g", skills=["b-skill", "a-skill"], preload_skills=["a-skill"])
    store = store_of(
        g, shell("chat"), model("m"), skill("a-skill"), skill("b-skill", namespace="public"), bot("b"), team("t", "b")
    )
    skills = resolve_team(store, "t", environ=ENV).members[0].skills
    assert [(s.name, s.namespace, s.preload) for s in skills] == [
        ("b-skill", "public", False),
        ("a-skill", "default", True),
    ]


def test_missing_skills_are_skipped_with_a_warning_not_an_error() -> None:
    store = store_of(ghost("g", skills=["nowhere"]), shell("chat"), model("m"), bot("b"), team("t", "b"))
    plan = resolve_team(store, "t", environ=ENV)
    assert plan.members[0].skills == []
    assert any("skill 'nowhere' not found" in w for w in plan.warnings)


def test_skill_refs_pick_the_exact_namespace_and_preload_refs_win() -> None:
    g = ghost(
        "g",
        skills=["s"],
        preload_skills=["s"],
        skill_refs={"s": {"skill_id": 1, "namespace": "team-a"}},
        preload_skill_refs={"s": {"skill_id": 2, "namespace": "team-b"}},
    )
    store = store_of(
        g, shell("chat"), model("m"), skill("s"), skill("s", "team-a"), skill("s", "team-b"), bot("b"), team("t", "b")
    )
    assert resolve_team(store, "t", environ=ENV).members[0].skills[0].namespace == "team-b"
    public_ref = ghost("g", skills=["s"], skill_refs={"s": {"skill_id": 1, "is_public": True}})
    store = store_of(public_ref, shell("chat"), model("m"), skill("s"), skill("s", "public"), bot("b"), team("t", "b"))
    assert resolve_team(store, "t", environ=ENV).members[0].skills[0].namespace == "public"


def test_task_skill_labels_add_and_preload_skills() -> None:
    labels = {"additionalSkills": '["extra"]', "requestedSkillRefs": '[{"name": "pub", "is_public": true}]'}
    task = doc("Task", "job", {"prompt": "hi", "teamRef": {"name": "t"}}, labels=labels)
    store = store_of(
        ghost("g", skills=["extra"]),
        shell("chat"),
        model("m"),
        skill("extra"),
        skill("pub", "public"),
        bot("b"),
        team("t", "b"),
        task,
    )
    skills = resolve_task(store, "job", environ=ENV).members[0].skills
    assert [(s.name, s.preload, s.source) for s in skills] == [("extra", True, "ghost"), ("pub", True, "task")]


def test_skills_bound_to_other_shells_are_skipped() -> None:
    store = store_of(
        ghost("g", skills=["cc-only", "any"]),
        shell("chat"),
        model("m"),
        skill("cc-only", bindShells=["ClaudeCode"]),
        skill("any"),
        bot("b"),
        team("t", "b"),
    )
    plan = resolve_team(store, "t", environ=ENV)
    assert [s.name for s in plan.members[0].skills] == ["any"]
    assert any("cc-only" in w and "not Chat" in w for w in plan.warnings)


def test_bind_shells_match_case_blindly_and_an_empty_list_binds_to_no_shell() -> None:
    store = store_of(
        ghost("g", skills=["lower", "none", "unset", "other"]),
        shell("chat"),
        model("m"),
        skill("lower", bindShells=["chat"]),
        skill("none", bindShells=[]),
        skill("unset"),
        skill("other", bindShells=["Agno", "Dify"]),
        bot("b"),
        team("t", "b"),
    )
    plan = resolve_team(store, "t", environ=ENV)
    assert [s.name for s in plan.members[0].skills] == ["lower", "unset"]
    assert any("none is bound to no shell" in w for w in plan.warnings)
    assert plan.members[0].missing_skills == []  # skipped for its shell, which is not missing


def test_skill_plans_carry_what_the_runtime_needs() -> None:
    store = store_of(
        ghost("g", skills=["draw"]),
        shell("chat"),
        model("m"),
        skill("draw", prompt="# Drawing\n\nUse boxes.", displayName="Diagrams", version=1.0),
        bot("b"),
        team("t", "b"),
    )
    (plan,) = resolve_team(store, "t", environ=ENV).members[0].skills
    assert (plan.prompt, plan.display_name, plan.version) == ("# Drawing\n\nUse boxes.", "Diagrams", "1.0")
    assert plan.model_dump(mode="json")["prompt"] == "# Drawing\n\nUse boxes."  # plans print it (it holds no secret)


def test_missing_skills_are_recorded_per_member_once() -> None:
    labels = {"additionalSkills": '["task-gone"]'}
    store = store_of(
        ghost("g", skills=["ghost-gone", "here"], preload_skills=["ghost-gone"]),
        ghost("h", skills=["here"]),
        shell("chat"),
        model("m"),
        skill("here"),
        bot("b"),
        bot("c", ghost="h"),
        team("t", "b", "c"),
        doc("Task", "job", {"teamRef": {"name": "t"}, "prompt": "go"}, labels=labels),
    )
    members = resolve_task(store, "job", environ=ENV).members
    assert members[0].missing_skills == ["ghost-gone", "task-gone"]
    assert members[1].missing_skills == ["task-gone"]
    assert [s.name for s in members[1].skills] == ["here"]


# --- 2.8 MCP --------------------------------------------------------------------------------------------------------


def test_mcp_servers_become_a_named_list_with_normalised_types() -> None:
    servers = {
        "git": {"command": "uvx", "args": ["mcp-server-git", 1], "env": {"TOKEN": "${GIT_TOKEN}"}},
        "docs": {"url": "http://127.0.0.1:9/mcp", "headers": {"Authorization": "Bearer x"}, "timeoutSeconds": 5},
        "old": {"url": "http://127.0.0.1:9/sse", "type": "sse"},
        "plain-http": {"url": "http://127.0.0.1:9/mcp", "type": "http"},
        "task-aware": {"url": "${{backend_url}}/mcp", "auth": {"Authorization": "Bearer ${{task_token}}"}},
    }
    store = store_of(ghost("g", mcpServers=servers), shell("chat"), model("m"), bot("b"), team("t", "b"))
    plan = {s.name: s for s in resolve_team(store, "t", environ=ENV).members[0].mcp_servers}
    assert list(plan) == ["git", "docs", "old", "plain-http", "task-aware"]
    assert (plan["git"].type, plan["git"].command, plan["git"].args) == ("stdio", "uvx", ["mcp-server-git", "1"])
    assert (plan["docs"].type, plan["docs"].timeout) == ("streamable-http", 5.0)
    assert plan["docs"].headers == {"Authorization": "Bearer x"}
    assert plan["old"].type == "sse"
    assert plan["plain-http"].type == "streamable-http"
    assert plan["task-aware"].url == "${{backend_url}}/mcp"  # placeholders are resolved at run time, not here
    assert plan["task-aware"].headers == {"Authorization": "Bearer ${{task_token}}"}


def test_nested_mcp_server_forms_are_accepted() -> None:
    for wrapped in ({"mcpServers": {"t": {"command": "x"}}}, {"mcp_servers": {"mcpServers": {"t": {"command": "x"}}}}):
        store = store_of(ghost("g", mcpServers=wrapped), shell("chat"), model("m"), bot("b"), team("t", "b"))
        assert [s.name for s in resolve_team(store, "t", environ=ENV).members[0].mcp_servers] == ["t"]


def test_placeholder_and_broken_mcp_entries_are_skipped() -> None:
    servers = {"...": None, "nocmd": {"type": "stdio"}, "nourl": {"type": "sse"}}
    store = store_of(ghost("g", mcpServers=servers), shell("chat"), model("m"), bot("b"), team("t", "b"))
    plan = resolve_team(store, "t", environ=ENV)
    assert plan.members[0].mcp_servers == []
    assert len([w for w in plan.warnings if "MCP server" in w]) == 2


def test_skill_mcp_servers_are_named_after_the_skill_and_the_ghost_wins() -> None:
    g = ghost("g", skills=["browser", "search"], mcpServers={"search_web": {"command": "ghost-wins"}})
    browser = skill("browser", mcpServers={"browser": {"command": "b"}, "tabs": {"command": "t"}})
    search = skill("search", mcpServers={"web": {"command": "skill-loses"}})
    store = store_of(g, shell("chat"), model("m"), browser, search, bot("b"), team("t", "b"))
    servers = resolve_team(store, "t", environ=ENV).members[0].mcp_servers
    assert [(s.name, s.command, s.source) for s in servers] == [
        ("search_web", "ghost-wins", "ghost"),
        ("browser", "b", "skill:browser"),
        ("browser_tabs", "t", "skill:browser"),
    ]


# --- 2.9 errors -----------------------------------------------------------------------------------------------------


def test_team_without_members() -> None:
    with pytest.raises(ResolutionError) as exc:
        resolve_team(store_of(team("t")), "t")
    assert problems(exc) == ["Team t: Team 't' has no members"]


def test_missing_team() -> None:
    with pytest.raises(ResolutionError) as exc:
        resolve_team(store_of(), "nope", "dev")
    assert problems(exc) == ["Team nope: not found in namespace dev"]


def test_every_broken_member_is_reported_at_once() -> None:
    store = store_of(
        shell("chat"),
        model("m"),
        ghost("g"),
        bot("ok"),
        bot("noghost", ghost="gone"),
        bot("nothing", ghost="gone", shell="gone", model="gone"),
        team("t", "ok", "noghost", "missing-bot", "nothing"),
    )
    with pytest.raises(ResolutionError) as exc:
        resolve_team(store, "t", environ=ENV)
    assert problems(exc) == [
        "Team t -> members[1] -> Bot noghost -> Ghost gone: not found in namespace default or public",
        "Team t -> members[2] -> Bot missing-bot: not found in namespace default or public",
        "Team t -> members[3] -> Bot nothing -> Ghost gone: not found in namespace default or public",
        "Team t -> members[3] -> Bot nothing -> Shell gone: not found in namespace default or public",
        "Team t -> members[3] -> Bot nothing -> Model gone: not found in namespace default or public",
    ]


def test_chain_shows_namespaces_that_differ_from_the_teams() -> None:
    member = {"botRef": {"name": "b", "namespace": "other"}}
    store = store_of(bot("b", namespace="other"), team("t", member))
    with pytest.raises(ResolutionError) as exc:
        resolve_team(store, "t")
    assert problems(exc)[0] == "Team t -> members[0] -> Bot other/b -> Ghost g: not found in namespace other"


# --- upstream files -------------------------------------------------------------------------------------------------


def test_every_upstream_team_resolves_given_a_model() -> None:
    resources = load(FIXTURES)
    store = MemoryStore.from_resources(resources)
    teams = [r for r in resources if r.kind == "Team"]
    assert teams
    for t in teams:
        plan = resolve_team(store, t.name, t.namespace, model="claude-model", environ={})
        assert plan.members[0].shell.shell_type == "ClaudeCode"
        assert plan.members[0].model.provider == "claude"
        assert plan.members[0].mcp_servers[0].command == "docker"
    task_plan = resolve_task(store, "implement-feature", environ={})
    assert task_plan.workspace is not None
    assert task_plan.workspace.branch_name == "main"


def test_members_sharing_a_model_share_one_warning() -> None:
    store = store_of(*basics(), bot("a"), bot("b"), team("t", "a", "b", mode="collaborate"))
    warnings = resolve_team(store, "t", environ={}).warnings
    assert warnings == ["Model m: ${OPENAI_API_KEY} not set in the environment"]


def test_plan_output_redacts_every_kind_of_secret() -> None:
    env = {"model": "openai", "api_key": "sk-a", "MY_PASS_PHRASE": "hunter2", "DEFAULT_HEADERS": {"X-Auth-Token": "t1"}}
    mcp = {
        "docs": {
            "url": "http://127.0.0.1:9/mcp",
            "headers": {"x-api-key": "k2", "Accept": "json"},
            "env": {"SERVICE_TOKEN": "t3"},
        }
    }
    store = store_of(
        ghost("g", mcpServers=mcp),
        shell("chat"),
        model("m", env=env, secretKeys=["MY_PASS_PHRASE"]),
        bot("b"),
        team("t", "b"),
    )
    dumped = resolve_team(store, "t", environ=ENV).model_dump_json()
    for secret in ("sk-a", "hunter2", "t1", "k2", "t3"):
        assert secret not in dumped
    assert '"Accept":"json"' in dumped
