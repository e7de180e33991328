"""Property: resolving any generated resource graph gives a plan, or an error naming a real broken reference."""

from __future__ import annotations

import itertools
import re
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from wegent_core._errors import ResolutionError
from wegent_core._loader import loads
from wegent_core._memory_store import MemoryStore
from wegent_core._resolve import resolve_team

NAMES = st.sampled_from(["a", "b", "c", "d"])
NAMESPACES = st.sampled_from(["default", "public", "dev"])
OPTIONAL_NS = st.none() | NAMESPACES


def ref(name: str, namespace: str | None) -> dict[str, Any]:
    return {"name": name, **({"namespace": namespace} if namespace else {})}


@st.composite
def graphs(draw: st.DrawFn) -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for ns in draw(st.sets(NAMESPACES)):
        for name in draw(st.sets(NAMES)):
            docs.append({"kind": "Ghost", "metadata": {"name": name, "namespace": ns}, "spec": {"systemPrompt": name}})
    for ns, name in draw(st.sets(st.tuples(NAMESPACES, NAMES))):
        base = draw(st.none() | NAMES)
        spec = {"shellType": "Chat"} if base is None else {"baseShellRef": base}
        docs.append({"kind": "Shell", "metadata": {"name": name, "namespace": ns}, "spec": spec})
    for ns, name in draw(st.sets(st.tuples(NAMESPACES, NAMES))):
        target = draw(st.none() | NAMES)
        config = {"env": {"model": "openai", "model_id": name}} if target is None else {"bind_model": target}
        docs.append({"kind": "Model", "metadata": {"name": name, "namespace": ns}, "spec": {"modelConfig": config}})
    for ns, name in draw(st.sets(st.tuples(NAMESPACES, NAMES))):
        spec: dict[str, Any] = {
            "ghostRef": ref(draw(NAMES), draw(OPTIONAL_NS)),
            "shellRef": ref(draw(NAMES), draw(OPTIONAL_NS)),
        }
        if draw(st.booleans()):
            spec["modelRef"] = ref(draw(NAMES), draw(OPTIONAL_NS))
        if draw(st.booleans()):
            spec["agent_config"] = {"bind_model": draw(NAMES)}
        docs.append({"kind": "Bot", "metadata": {"name": name, "namespace": ns}, "spec": spec})
    members = [{"botRef": ref(draw(NAMES), draw(OPTIONAL_NS))} for _ in range(draw(st.integers(1, 4)))]
    team_spec = {"members": members, "collaborationModel": "coordinate"}
    docs.append({"kind": "Team", "metadata": {"name": "t", "namespace": draw(NAMESPACES)}, "spec": team_spec})
    return docs


NOT_FOUND = re.compile(r"not found in namespace (.+)$")
ELEMENT = re.compile(r"^(Ghost|Shell|Model|Bot|Team) (?:(.+)/)?([^/]+)$")


def check_problem(store: MemoryStore, chain: list[str], message: str, override: str | None, team_ns: str) -> None:
    kind, element_ns, name = ELEMENT.match(chain[-1]).groups()  # type: ignore[union-attr]
    if missing := NOT_FOUND.search(message):
        target = re.search(r"binds to model '([^']+)'", message)
        kind, name = ("Model", target.group(1)) if target else (kind, name)
        for namespace in missing.group(1).split(" or "):
            assert store.get(kind, name, namespace) is None, f"{kind} {namespace}/{name} exists: {message}"
    elif "cyclic" in message and "too deep" not in message:
        names = message.rsplit(": ", 1)[1].split(" -> ")
        assert names[0] == names[-1] or names[-1] in names[:-1], message
    elif "too deep or cyclic" in message:
        assert len(chain) - chain.index(next(c for c in chain if c.startswith(("Model", "Shell")))) > 5, message
    elif "has no model configured" in message:
        assert override is None, message
        bot = store.get("Bot", name, element_ns or team_ns)
        assert bot is not None
        assert bot.spec.model_ref is None  # type: ignore[attr-defined]
    else:
        raise AssertionError(f"unexpected problem: {' -> '.join(chain)}: {message}")


@settings(max_examples=300, deadline=None)
@given(graphs(), st.none() | NAMES, st.booleans())
def test_resolution_yields_a_plan_or_names_a_real_broken_reference(
    docs: list[dict[str, Any]], override: str | None, force: bool
) -> None:
    store = MemoryStore.from_resources(loads(docs))
    team = next(d for d in docs if d["kind"] == "Team")
    try:
        plan = resolve_team(store, "t", team["metadata"]["namespace"], model=override, force_model=force, environ={})
    except ResolutionError as exc:
        failure = exc
    else:
        failure = None
    if failure is not None:
        assert failure.problems
        for problem in failure.problems:
            check_problem(store, problem.path.split(" -> "), problem.message, override, team["metadata"]["namespace"])
        return
    assert len(plan.members) == len(team["spec"]["members"])
    for member in plan.members:
        for kind, key in (("Bot", member.bot), ("Ghost", member.ghost)):
            namespace, name = key.split("/")
            assert store.get(kind, name, namespace) is not None
        hops = [store.get("Model", *reversed(h.split("/"))) for h in member.model.chain]
        assert all(h is not None for h in hops)
        for current, following in itertools.pairwise(hops):
            assert current.spec.config.get("bind_model") == following.name  # type: ignore[union-attr]
        assert "env" in hops[-1].spec.config  # type: ignore[union-attr]
