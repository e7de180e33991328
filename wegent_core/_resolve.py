"""Resolution: from a Team (plus a prompt) or a Task, and a store, to an `ExecutionPlan`.

The rules follow upstream Wegent (reference section 2); where upstream is inconsistent this module does what a user
expects, and docs/resolution.md lists each such choice. Every failure names the whole reference chain, and every
member is resolved before failing, so one run reports every broken reference.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from typing import Any

from ._errors import Problem, ResolutionError
from ._plan import (
    ExecutionPlan,
    KnowledgeBasePlan,
    KnowledgeScope,
    McpServerPlan,
    MemberPlan,
    ModelPlan,
    ShellPlan,
    SkillPlan,
    env_names,
)
from ._resources import (
    Bot,
    Ghost,
    KnowledgeBase,
    KnowledgeBaseScope,
    Model,
    ModelType,
    Resource,
    Shell,
    ShellSandbox,
    Skill,
    Task,
    Team,
    TeamMember,
    Workspace,
)
from ._store import PUBLIC_NAMESPACE, ResourceStore, lookup

MAX_POINTER_HOPS = 5  # bind_model and baseShellRef chains, as upstream


class _Failed(Exception):
    """Raised inside one member's resolution once its problem is recorded; the other members still resolve."""


class _Resolver:
    def __init__(self, store: ResourceStore, namespace: str, environ: Mapping[str, str] | None) -> None:
        self.store = store
        self.namespace = namespace
        self.environ = os.environ if environ is None else environ
        self.problems: list[Problem] = []
        self.warnings: list[str] = []
        self._found: dict[tuple[str, str, str], tuple[Resource | None, list[str]]] = {}
        self.kb_scopes: dict[str, list[KnowledgeScope]] = {}  # knowledge base key -> the Task's restrictions

    # --- lookups --------------------------------------------------------------------------------------------------

    def label(self, resource: Resource) -> str:
        ns = "" if resource.namespace == self.namespace else f"{resource.namespace}/"
        return f"{resource.kind} {ns}{resource.name}"

    def fail(self, chain: list[str], message: str) -> _Failed:
        self.problems.append(Problem(message, path=" -> ".join(chain)))
        return _Failed()

    def lookup(self, kind: str, name: str, namespace: str) -> tuple[Resource | None, list[str]]:
        """`lookup` with a per-plan memo: members often share shells, models and skills."""
        key = (kind, name, namespace)
        if key not in self._found:
            self._found[key] = lookup(self.store, kind, name, namespace)
        return self._found[key]

    def find(self, kind: str, name: str, namespace: str, chain: list[str]) -> Any:
        resource, searched = self.lookup(kind, name, namespace)
        if resource is None:
            where = " or ".join(searched)
            raise self.fail([*chain, f"{kind} {name}"], f"not found in namespace {where}")
        return resource

    def find_first(self, kind: str, name: str, namespaces: list[str]) -> Resource | None:
        for namespace in dict.fromkeys(namespaces):
            resource, _ = self.lookup(kind, name, namespace)
            if resource is not None:
                return resource
        return None

    # --- the plan -------------------------------------------------------------------------------------------------

    def plan(
        self,
        team: Team,
        chain: list[str],
        *,
        task: Task | None,
        prompt: str | None,
        model: str | None,
        force_model: bool,
        labels: Mapping[str, str],
        workspace_ref: str | None = None,
        knowledge_bases: list[tuple[str, str | None]] | None = None,
    ) -> ExecutionPlan:
        spec = team.spec
        task_kbs = knowledge_bases
        if task_kbs is None:
            task_kbs = task_knowledge_bases(task, with_restricted=True)
            self.kb_scopes = self.task_scopes(task)
        if not spec.members:
            self.fail(chain, f"Team '{team.name}' has no members")
            raise ResolutionError(self.problems)
        leaders = [i for i, m in enumerate(spec.members) if m.is_leader]
        if len(leaders) > 1:
            self.warnings.append(f"{self.label(team)}: several members have role leader; members[{leaders[0]}] leads")
        extra_skills = self.task_skills(labels)
        members = []
        for index, member in enumerate(spec.members):
            try:
                members.append(self.member(team, index, member, chain, model, force_model, extra_skills, task_kbs))
            except _Failed:
                continue
        stage = task.spec.current_stage if task is not None and task.spec.current_stage is not None else 0
        if stage >= len(spec.members):
            self.fail(chain, f"currentStage {stage} is past the last stage (the team has {len(spec.members)} members)")
        workspace = self.workspace(task, [self.label(task)]) if task is not None else None
        if workspace_ref:  # a run started from a Task keeps its Workspace's name (the Task itself is not stored)
            ref_namespace, _, ref_name = workspace_ref.rpartition("/")
            workspace = self.find_workspace(ref_name, ref_namespace or team.namespace, chain)
        if self.problems:
            raise ResolutionError(self.problems)
        return ExecutionPlan(
            team=f"{team.namespace}/{team.name}",
            task=f"{task.namespace}/{task.name}" if task is not None else None,
            collaboration_model=spec.collaboration_model,
            leader=spec.leader_index,
            members=members,
            title=task.spec.effective_title if task is not None else None,
            prompt=prompt,
            current_stage=stage,
            workspace=workspace,
            limits=spec.limits,
            labels=dict(labels),
            warnings=list(dict.fromkeys(self.warnings)),  # members sharing a model share its warnings
        )

    def workspace(self, task: Task, chain: list[str]) -> Any:
        ref = task.spec.workspace_ref
        if ref is None:
            return None
        return self.find_workspace(ref.name, ref.namespace or task.namespace, chain)

    def find_workspace(self, name: str, namespace: str, chain: list[str]) -> Any:
        try:
            workspace: Workspace = self.find("Workspace", name, namespace, chain)
        except _Failed:
            return None
        return workspace.spec.repository

    def member(
        self,
        team: Team,
        index: int,
        member: TeamMember,
        team_chain: list[str],
        model: str | None,
        force_model: bool,
        extra_skills: list[tuple[str, str | None]],
        task_kbs: Sequence[tuple[str, str | None]] = (),
    ) -> MemberPlan:
        chain = [*team_chain, f"members[{index}]"]
        bot: Bot = self.find("Bot", member.bot_ref.name, member.bot_ref.namespace or team.namespace, chain)
        chain = [*chain, self.label(bot)]
        failures = 0
        parts: dict[str, Any] = {}
        for part, build in (
            (
                "ghost",
                lambda: self.find(
                    "Ghost", bot.spec.ghost_ref.name, bot.spec.ghost_ref.namespace or bot.namespace, chain
                ),
            ),
            ("shell", lambda: self.shell(bot, chain)),
            ("model", lambda: self.model(bot, chain, model, force_model)),
        ):
            try:
                parts[part] = build()
            except _Failed:
                failures += 1
        if failures:
            raise _Failed()
        ghost: Ghost = parts["ghost"]
        shell: ShellPlan = parts["shell"]
        skills, skill_resources, missing = self.skills(ghost, shell, team, extra_skills)
        kbs, missing_kbs = self.knowledge_bases(ghost, team, task_kbs, chain)
        prompt = ghost.spec.system_prompt
        if member.prompt and member.prompt.strip():
            prompt = f"{prompt}\n\n{member.prompt}"
        return MemberPlan(
            index=index,
            role=member.role,
            leader=index == team.spec.leader_index,
            bot=f"{bot.namespace}/{bot.name}",
            ghost=f"{ghost.namespace}/{ghost.name}",
            shell=shell,
            model=parts["model"],
            system_prompt=prompt,
            member_prompt=member.prompt,
            skills=skills,
            missing_skills=missing,
            mcp_servers=self.mcp_servers(ghost, skill_resources),
            knowledge_bases=kbs,
            missing_knowledge_bases=missing_kbs,
            require_confirmation=member.require_confirmation,
            context_passing=member.context_passing,
        )

    # --- shells ---------------------------------------------------------------------------------------------------

    def shell(self, bot: Bot, chain: list[str]) -> ShellPlan:
        ref = bot.spec.shell_ref
        shell: Shell = self.find("Shell", ref.name, ref.namespace or bot.namespace, chain)
        visited = [shell]
        current = shell
        # A derived shell re-inherits shellType and supportModel from its base, as upstream does on every update.
        while current.spec.base_shell_ref:
            hop_chain = [*chain, *(self.label(s) for s in visited)]
            if len(visited) > MAX_POINTER_HOPS:
                raise self.fail(hop_chain, "baseShellRef chain is too deep or cyclic")
            base: Shell = self.find("Shell", current.spec.base_shell_ref, "default", hop_chain)
            if any(s.key == base.key for s in visited):
                names = " -> ".join(s.name for s in [*visited, base])
                raise self.fail(hop_chain, f"baseShellRef chain is cyclic: {names}")
            visited.append(base)
            current = base
        root = visited[-1]
        if not root.spec.shell_type:
            raise self.fail([*chain, self.label(root)], "the shell has no shellType")
        return ShellPlan(
            name=shell.name,
            namespace=shell.namespace,
            shell_type=root.spec.shell_type,
            execution_type=shell.metadata.labels.get("type") or root.metadata.labels.get("type") or "local_engine",
            base_image=shell.spec.base_image or root.spec.base_image,
            support_model=root.spec.support_model or [],
            requires_workspace=shell.spec.requires_workspace,
            sandbox=shell.spec.sandbox or root.spec.sandbox or ShellSandbox(),
            chain=[f"{s.namespace}/{s.name}" for s in visited],
        )

    # --- models ---------------------------------------------------------------------------------------------------

    def model(self, bot: Bot, chain: list[str], override: str | None, force: bool) -> ModelPlan:
        agent_config = bot.spec.agent_config or {}
        bind = agent_config.get("bind_model")
        if force and override:
            name, namespace, selected_by = override, self.namespace, "forced override"
        elif isinstance(bind, str) and bind.strip():
            name, selected_by = bind.strip(), "bind_model"
            namespace = agent_config.get("bind_model_namespace") or bot.namespace
        elif bot.spec.model_ref is not None:
            name, selected_by = bot.spec.model_ref.name, "modelRef"
            namespace = bot.spec.model_ref.namespace or bot.namespace
        elif override:
            name, namespace, selected_by = override, self.namespace, "task fallback"
        else:
            raise self.fail(chain, f"Bot {bot.name} has no model configured (give it a modelRef, or pass a model)")
        if override:
            self.check_allowed(bot, name, agent_config.get("allowed_models"), chain)
        models = self.chase_model(name, namespace, chain)
        return self.flatten(models, selected_by, chain)

    def check_allowed(self, bot: Bot, name: str, allowed: Any, chain: list[str]) -> None:
        if not isinstance(allowed, list) or not allowed:
            return
        names = {entry.get("name") for entry in allowed if isinstance(entry, dict)}
        if name not in names:
            raise self.fail(chain, f"Model '{name}' is not in the allowed models list for bot '{bot.name}'")

    def chase_model(self, name: str, namespace: str, chain: list[str]) -> list[Model]:
        """Follow `bind_model` pointers (a Model whose config has no env but a bind_model) up to 5 hops."""
        first: Model = self.find("Model", name, namespace, chain)
        visited = [first]
        while True:
            config = visited[-1].spec.config
            target = config.get("bind_model")
            if "env" in config or not isinstance(target, str) or not target.strip():
                return visited
            hop_chain = [*chain, *(self.label(m) for m in visited)]
            if len(visited) > MAX_POINTER_HOPS:
                raise self.fail(hop_chain, "the bind_model pointer chain is too deep or cyclic")
            target_ns = config.get("bind_model_namespace") or visited[-1].namespace
            found, searched = self.lookup("Model", target.strip(), target_ns)
            if found is None:
                where = " or ".join(searched)
                raise self.fail(
                    hop_chain, f"binds to model '{target.strip()}', which was not found in namespace {where}"
                )
            if any(m.key == found.key for m in visited):
                names = " -> ".join(m.name for m in [*visited, found])
                raise self.fail(hop_chain, f"the bind_model pointer chain is cyclic: {names}")
            visited.append(found)

    def script(self, config: dict[str, Any], chain: list[str]) -> list[dict[str, Any]]:
        script = config.get("script")
        if not isinstance(script, list) or not all(isinstance(reply, dict | str) for reply in script):
            raise self.fail(chain, "a scripted Model needs modelConfig.script: a list of replies (texts or mappings)")
        return [{"text": reply} if isinstance(reply, str) else reply for reply in script]

    def flatten(self, models: list[Model], selected_by: str, chain: list[str]) -> ModelPlan:
        model = models[-1]
        spec = model.spec
        config = spec.config
        env = config.get("env")
        model_chain = [*chain, *(self.label(m) for m in models)]
        if env is None and any(k in config for k in ("model_id", "api_key", "base_url", "model")):
            env = config  # the upstream CLI's model template writes these keys without an `env` block
        protocol = spec.protocol or config.get("protocol")
        scripted = protocol == SCRIPTED
        if env is None and protocol in _NO_ENV_NEEDED:
            env = {}  # a scripted model needs nothing but its script; the local and auto ones have defaults
        if not isinstance(env, dict):
            raise self.fail(model_chain, "Model config has no env configuration")
        provider = env.get("model") or _infer_provider(env)
        protocol = protocol or _PROTOCOL_BY_PROVIDER.get(str(provider or ""))
        api_format = spec.api_format or config.get("apiFormat") or _API_FORMAT_BY_PROTOCOL.get(str(protocol or ""))
        headers = self.headers(config, env, model_chain)
        missing = sorted(n for n in env_names(env) | env_names(headers) if n not in self.environ)
        if missing:
            names = ", ".join(f"${{{n}}}" for n in missing)
            self.warnings.append(f"{self.label(model)}: {names} not set in the environment")
        return ModelPlan(
            name=model.name,
            namespace=model.namespace,
            chain=[f"{m.namespace}/{m.name}" for m in models],
            selected_by=selected_by,
            protocol=protocol,
            api_format=api_format,
            provider=provider,
            model_id=_first(env, "model_id", "ANTHROPIC_MODEL", "OPENAI_MODEL", "GEMINI_MODEL"),
            base_url=_first(
                env, "base_url", "ANTHROPIC_BASE_URL", "OPENAI_BASE_URL", "GEMINI_BASE_URL", "DIFY_BASE_URL"
            ),
            api_key=_first(
                env,
                "api_key",
                "ANTHROPIC_API_KEY",
                "ANTHROPIC_AUTH_TOKEN",
                "OPENAI_API_KEY",
                "GEMINI_API_KEY",
                "GOOGLE_API_KEY",
                "DIFY_API_KEY",
            ),
            default_headers=headers,
            context_window=_int_setting(config.get("context_window"), spec.context_window),
            max_output_tokens=_int_setting(config.get("max_output_tokens"), spec.max_output_tokens),
            model_type=spec.model_type.value,
            temperature=_float(env.get("temperature")),
            think_config=env.get("thinking_config") or env.get("thinkingConfig"),
            tool_choice=self.tool_choice(config.get("toolChoice", env.get("tool_choice")), model_chain),
            env=env,
            secret_keys=[k for k in config.get("secretKeys") or [] if isinstance(k, str)],
            script=self.script(config, model_chain) if scripted else None,
        )

    def tool_choice(self, value: Any, chain: list[str]) -> str | None:
        if value is None or value in TOOL_CHOICES:
            return value
        raise self.fail(chain, f"toolChoice must be one of {', '.join(TOOL_CHOICES)}, not {value!r}")

    def headers(self, config: dict[str, Any], env: dict[str, Any], chain: list[str]) -> dict[str, str]:
        raw = config.get("DEFAULT_HEADERS", env.get("DEFAULT_HEADERS"))
        if raw is None or raw == "":
            return {}
        if isinstance(raw, str):
            try:
                raw = json.loads(raw)
            except ValueError:
                raise self.fail(chain, "DEFAULT_HEADERS is a string but not valid JSON") from None
        if not isinstance(raw, dict):
            raise self.fail(chain, "DEFAULT_HEADERS must be a mapping of header names to values")
        return {str(k): str(v) for k, v in raw.items()}

    # --- skills and MCP -------------------------------------------------------------------------------------------

    def task_skills(self, labels: Mapping[str, str]) -> list[tuple[str, str | None]]:
        """Skills a task asks for through the `additionalSkills` and `requestedSkillRefs` labels (JSON lists),
        as (name, namespace or None)."""
        wanted: list[tuple[str, str | None]] = []
        for key in ("additionalSkills", "requestedSkillRefs"):
            if not labels.get(key):
                continue
            try:
                items = json.loads(labels[key])
            except ValueError:
                self.warnings.append(f"label {key} is not a JSON list; ignored")
                continue
            for item in items if isinstance(items, list) else []:
                if isinstance(item, str):
                    wanted.append((item, None))
                elif isinstance(item, dict) and isinstance(item.get("name"), str):
                    public = item.get("is_public") is True
                    wanted.append((item["name"], PUBLIC_NAMESPACE if public else item.get("namespace")))
        return wanted

    def skills(
        self, ghost: Ghost, shell: ShellPlan, team: Team, extra: list[tuple[str, str | None]]
    ) -> tuple[list[SkillPlan], list[Skill], list[str]]:
        """The member's skills, the Skill resources they come from, and the names that were not found."""
        spec = ghost.spec
        preload = set(spec.preload_skills or [])
        refs = {**(spec.skill_refs or {}), **(spec.preload_skill_refs or {})}
        names = dict.fromkeys([*(spec.skills or []), *(spec.preload_skills or [])])
        wanted = [(name, "ghost", None) for name in names] + [(name, "task", ns) for name, ns in extra]
        plans: dict[str, SkillPlan] = {}
        resources: dict[str, Skill] = {}
        missing: list[str] = []
        for name, source, namespace in wanted:
            if name in plans:  # a task asking for a Ghost skill only preloads it
                if source == "task":
                    plans[name] = plans[name].model_copy(update={"preload": True})
                continue
            ref = refs.get(name) if source == "ghost" else None
            if ref is not None:
                namespaces = [PUBLIC_NAMESPACE if ref.is_public else ref.namespace]
            elif namespace is not None:
                namespaces = [namespace]
            else:
                namespaces = [ghost.namespace, team.namespace, "default"]
            skill = self.find_first("Skill", name, namespaces)
            if not isinstance(skill, Skill):
                self.warnings.append(f"{self.label(ghost)}: skill '{name}' not found; skipped")
                missing.append(name)
                continue
            binds = skill.spec.bind_shells
            if binds is not None and shell.shell_type.lower() not in {b.lower() for b in binds}:
                self.warnings.append(
                    f"{self.label(skill)} is bound to {', '.join(binds) or 'no shell'}, not {shell.shell_type}; skipped"
                )
                continue
            plans[name] = SkillPlan(
                name=name,
                namespace=skill.namespace,
                description=skill.spec.description,
                display_name=skill.spec.display_name or skill.metadata.display_name,
                prompt=skill.spec.prompt,
                version=skill.spec.version,
                preload=source == "task" or name in preload,
                source=source,
            )
            resources[name] = skill
        return list(plans.values()), list(resources.values()), list(dict.fromkeys(missing))

    # --- knowledge bases ------------------------------------------------------------------------------------------

    def knowledge_bases(
        self, ghost: Ghost, team: Team, task_kbs: Sequence[tuple[str, str | None]], chain: list[str]
    ) -> tuple[list[KnowledgeBasePlan], list[str]]:
        """The Ghost's `defaultKnowledgeBaseRefs` then the Task's `knowledgeBaseRefs`, each once. A knowledge base
        that is not found is skipped with a warning (as a missing skill is); a broken embedding Model fails."""
        wanted = [(ref.name, ref.namespace, "ghost") for ref in ghost.spec.default_knowledge_base_refs or []]
        wanted += [(name, namespace, "task") for name, namespace in task_kbs]
        plans: dict[str, KnowledgeBasePlan] = {}
        missing: list[str] = []
        for name, namespace, source in wanted:
            home = ghost.namespace if source == "ghost" else team.namespace
            namespaces = [namespace] if namespace else [home, "default"]
            found = self.find_first("KnowledgeBase", name, namespaces)  # `default` falls back to `public`
            if not isinstance(found, KnowledgeBase):
                self.warnings.append(f"{self.label(ghost)}: knowledge base '{name}' not found; skipped")
                missing.append(name)
                continue
            key = f"{found.namespace}/{found.name}"
            scopes = self.kb_scopes.get(key, [])
            if key in plans or (scopes and not any(s.folders or s.documents for s in scopes)):
                continue  # already there, or restricted to nothing that can be matched (warned once, in task_scopes)
            plan = self.knowledge_base(found, source, [*chain, self.label(found)])
            plans[key] = plan.model_copy(update={"scopes": scopes})  # a restriction holds however the KB was named
        return list(plans.values()), list(dict.fromkeys(missing))

    def task_scopes(self, task: Task | None) -> dict[str, list[KnowledgeScope]]:
        """The Task's restricted `knowledgeBaseScopes`, by the key of the knowledge base each restricts."""
        scopes: dict[str, list[KnowledgeScope]] = {}
        for raw in (task.spec.knowledge_base_scopes or []) if task is not None else []:
            found = self.find_first("KnowledgeBase", raw.name, [raw.namespace]) if raw.scope_restricted else None
            if found is None:
                continue  # unrestricted, or not found (the reference itself reports that)
            scope = knowledge_scope(raw)
            ids = [i for i in [*(raw.folder_ids or []), *(raw.explicit_document_ids or [])] if isinstance(i, int)]
            where = f"{self.label(task)}: knowledge base '{raw.name}'"
            if not scope.folders and not scope.documents:
                self.warnings.append(f"{where}: its restricted scope names no folder or document path; skipped")
            elif ids:
                self.warnings.append(f"{where}: upstream row ids {ids} in its scope name nothing here; ignored")
            scopes.setdefault(f"{found.namespace}/{found.name}", []).append(scope)
        return scopes

    def knowledge_base(self, kb: KnowledgeBase, source: str, chain: list[str]) -> KnowledgeBasePlan:
        spec = kb.spec
        embedding = None
        ref = spec.embedding_ref
        if ref is not None:
            models = self.chase_model(ref.name, ref.namespace or kb.namespace, chain)
            embedding = self.flatten(models, "modelRef", chain)
            if embedding.model_type != ModelType.EMBEDDING:
                model_chain = [*chain, *(self.label(m) for m in models)]
                wrong = embedding.model_type
                raise self.fail(model_chain, f"an embedding Model needs modelType: embedding, not {wrong}")
        retrieval = spec.retrieval_config
        return KnowledgeBasePlan(
            name=kb.name,
            namespace=kb.namespace,
            description=spec.description or spec.name,
            embedding=embedding,
            chunking=spec.chunking,
            backend=spec.backend,
            top_k=spec.effective_top_k,
            score_threshold=retrieval.score_threshold if retrieval else None,
            source=source,
        )

    def mcp_servers(self, ghost: Ghost, skills: list[Skill]) -> list[McpServerPlan]:
        servers: dict[str, McpServerPlan] = {}
        sources = [(None, ghost, ghost.spec.mcp_servers)] + [(s.name, s, s.spec.mcp_servers) for s in skills]
        for skill_name, owner, raw in sources:
            for server_name, config in unwrap_mcp_servers(raw).items():
                name = server_name if skill_name in (None, server_name) else f"{skill_name}_{server_name}"
                if name in servers:
                    continue  # the Ghost's server wins over a skill's of the same name
                plan = self.mcp_server(owner, name, config, "ghost" if skill_name is None else f"skill:{skill_name}")
                if plan is not None:
                    servers[name] = plan
        return list(servers.values())

    def mcp_server(self, owner: Resource, name: str, config: Any, source: str) -> McpServerPlan | None:
        if not isinstance(config, dict):
            if name != "...":  # `mcpServers: { ... }` is a documentation placeholder upstream
                self.warnings.append(f"{self.label(owner)}: MCP server '{name}' has no configuration; skipped")
            return None
        kind = str(config.get("type") or ("stdio" if config.get("command") else "streamable-http")).lower()
        kind = {
            "http": "streamable-http",
            "streamable_http": "streamable-http",
            "streamablehttp": "streamable-http",
        }.get(kind, kind)
        if kind not in ("stdio", "sse", "streamable-http"):
            self.warnings.append(f"{self.label(owner)}: MCP server '{name}' has unknown type '{kind}'; skipped")
            return None
        if kind == "stdio" and not config.get("command"):
            self.warnings.append(f"{self.label(owner)}: stdio MCP server '{name}' has no command; skipped")
            return None
        if kind != "stdio" and not config.get("url"):
            self.warnings.append(f"{self.label(owner)}: {kind} MCP server '{name}' has no url; skipped")
            return None
        timeout = next((config[k] for k in ("timeout", "timeoutSeconds", "timeout_seconds") if k in config), None)
        return McpServerPlan(
            name=name,
            type=kind,
            command=config.get("command"),
            args=[str(a) for a in config.get("args") or []],
            env={str(k): str(v) for k, v in (config.get("env") or {}).items()},
            url=config.get("url"),
            headers=_headers(config.get("headers") or config.get("auth")),
            timeout=_float(timeout),
            source=source,
        )


# --- public entry points ------------------------------------------------------------------------------------------


def resolve_team(
    store: ResourceStore,
    name: str,
    namespace: str = "default",
    *,
    prompt: str | None = None,
    model: str | None = None,
    force_model: bool = False,
    labels: Mapping[str, str] | None = None,
    environ: Mapping[str, str] | None = None,
    workspace: str | None = None,
    knowledge_bases: list[str] | tuple[str, ...] = (),
) -> ExecutionPlan:
    """Resolve a Team into a plan. `model` is used for bots that have none; with `force_model`, for every bot.
    `workspace` (namespace/name) names the Workspace of the task's repository; `knowledge_bases` (name or
    namespace/name) are the task's knowledge bases, given to every member beside its Ghost's."""
    resolver = _Resolver(store, namespace, environ)
    try:
        team: Team = resolver.find("Team", name, namespace, [])
    except _Failed:
        raise ResolutionError(resolver.problems) from None
    return resolver.plan(
        team,
        [resolver.label(team)],
        task=None,
        prompt=prompt,
        model=model,
        force_model=force_model,
        labels=labels or {},
        workspace_ref=workspace,
        knowledge_bases=[_split_ref(ref) for ref in knowledge_bases],
    )


def resolve_knowledge_base(
    store: ResourceStore,
    name: str,
    namespace: str = "default",
    *,
    environ: Mapping[str, str] | None = None,
) -> KnowledgeBasePlan:
    """Resolve one KnowledgeBase (its embedding Model included), for ingestion and `wegent kb`."""
    resolver = _Resolver(store, namespace, environ)
    try:
        kb: KnowledgeBase = resolver.find("KnowledgeBase", name, namespace, [])
        return resolver.knowledge_base(kb, "direct", [resolver.label(kb)])
    except _Failed:
        raise ResolutionError(resolver.problems) from None


def resolve_task(
    store: ResourceStore,
    name: str,
    namespace: str = "default",
    *,
    model: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> ExecutionPlan:
    """Resolve a Task into a plan, honouring its `modelId`, `forceOverrideBotModel` and skill labels."""
    resolver = _Resolver(store, namespace, environ)
    task = store.get("Task", name, namespace)  # tasks never fall back to the public scope
    if not isinstance(task, Task):
        raise ResolutionError([Problem(f"not found in namespace {namespace}", path=f"Task {name}")])
    labels = task.metadata.labels
    chain = [resolver.label(task)]
    ref = task.spec.team_ref
    try:
        team: Team = resolver.find("Team", ref.name, ref.namespace or task.namespace, chain)
    except _Failed:
        raise ResolutionError(resolver.problems) from None
    return resolver.plan(
        team,
        [*chain, resolver.label(team)],
        task=task,
        prompt=task.spec.prompt,
        model=model or labels.get("modelId"),
        force_model=labels.get("forceOverrideBotModel") == "true",
        labels=labels,
    )


# --- helpers ------------------------------------------------------------------------------------------------------


def task_knowledge_bases(task: Task | None, *, with_restricted: bool = False) -> list[tuple[str, str | None]]:
    """A Task's knowledge bases as (name, namespace or None): `knowledgeBaseRefs`, then `knowledgeBaseScopes`.

    Without `with_restricted`, a knowledge base that a scope restricts is left out (fail closed): the engine is handed
    names only, and must not give a member the whole of a knowledge base the Task narrowed."""
    if task is None:
        return []
    scopes = task.spec.knowledge_base_scopes or []
    refs: list[tuple[str, str | None]] = [(r.name, r.namespace) for r in task.spec.knowledge_base_refs or []]
    refs += [(s.name, s.namespace) for s in scopes]
    if not with_restricted:
        narrowed = {s.name for s in scopes if s.scope_restricted}
        refs = [ref for ref in refs if ref[0] not in narrowed]
    return list(dict.fromkeys(refs))


def knowledge_scope(raw: KnowledgeBaseScope) -> KnowledgeScope:
    """A restricted scope as this library can match it: the string entries (integers are upstream row ids)."""
    return KnowledgeScope(
        folders=[f for f in raw.folder_ids or [] if isinstance(f, str) and f.strip()],
        documents=[d for d in raw.explicit_document_ids or [] if isinstance(d, str) and d.strip()],
        include_subfolders=raw.include_subfolders,
    )


def _split_ref(ref: str) -> tuple[str, str | None]:
    namespace, _, name = ref.rpartition("/")
    return name, namespace or None


SCRIPTED = "scripted"  # the protocol of wegent_core.testing's scripted model
_NO_ENV_NEEDED = {SCRIPTED, "local", "auto"}
TOOL_CHOICES = ("auto", "required")
_PROTOCOL_BY_PROVIDER = {
    "openai": "openai",
    "claude": "claude",
    "anthropic": "claude",
    "gemini": "gemini",
    "google": "gemini",
}
_API_FORMAT_BY_PROTOCOL = {"openai": "chat/completions", "openai-responses": "responses"}


def _infer_provider(env: dict[str, Any]) -> str | None:
    """The provider family of the raw upstream env forms (`ANTHROPIC_*`, `OPENAI_*`, ...)."""
    for prefix, provider in (
        ("ANTHROPIC_", "claude"),
        ("OPENAI_", "openai"),
        ("GEMINI_", "gemini"),
        ("GOOGLE_", "gemini"),
        ("DIFY_", "dify"),
    ):
        if any(key.startswith(prefix) for key in env):
            return provider
    return None


def _first(env: dict[str, Any], *keys: str) -> str | None:
    value = next((env[k] for k in keys if env.get(k) not in (None, "")), None)
    return None if value is None else str(value)


def _int_setting(value: Any, fallback: int | None) -> int | None:
    # modelConfig.context_window / max_output_tokens win over the legacy spec fields; a bool is ignored.
    return value if isinstance(value, int) and not isinstance(value, bool) else fallback


def _float(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


_WRAPPERS = frozenset({"mcpServers", "mcp_servers"})
# Upstream's order when a config is wrapped in both spellings (reference 2.8): double camel/camel, camel/snake,
# snake/snake, snake/camel, then single camel, then single snake.
_WRAPPED = (
    ("mcpServers", "mcpServers"),
    ("mcpServers", "mcp_servers"),
    ("mcp_servers", "mcp_servers"),
    ("mcp_servers", "mcpServers"),
    ("mcpServers",),
    ("mcp_servers",),
)


def _is_wrapper(raw: Any) -> bool:
    """`{"mcpServers": {...}}` (either spelling, or both): a wrapper, not a server map. A map that also has other
    keys is a server map, so a server may be called `mcp_servers` among others."""
    return (
        isinstance(raw, dict) and bool(raw) and set(raw) <= _WRAPPERS and all(isinstance(v, dict) for v in raw.values())
    )


def unwrap_mcp_servers(raw: Any) -> dict[str, Any]:
    """Accept `{name: config}` and the nested `{"mcpServers": {...}}` forms (either key spelling, up to twice, in
    upstream's order of priority when both spellings are present)."""
    if not isinstance(raw, dict):
        return {}
    if not _is_wrapper(raw):
        return raw
    for path in _WRAPPED:
        node: Any = raw
        for key in path:
            node = node.get(key) if _is_wrapper(node) else None
        if isinstance(node, dict) and not _is_wrapper(node):
            return node
    return raw  # wrapped more than twice: taken as a map, whose odd entries are reported as broken servers


def _headers(value: Any) -> dict[str, str]:
    """Headers as a mapping, or upstream's JSON string form of one; anything else gives none."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return {}
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}
