"""The exported JSON Schema, checked with the `jsonschema` library as an editor or a CI job would use it: it accepts
what the loader accepts (the upstream files above all) and rejects what the loader rejects."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from wegent_core._errors import ValidationError
from wegent_core._loader import loads
from wegent_core._resources import KINDS
from wegent_core._schema import json_schema

UPSTREAM = Path(__file__).parent.parent / "fixtures" / "upstream"
UPSTREAM_FILES = sorted(UPSTREAM.glob("*.yaml"))
DRAFT_2020_12 = "https://json-schema.org/draft/2020-12/schema"


def upstream_documents() -> list[Any]:
    params = []
    for path in UPSTREAM_FILES:
        for i, doc in enumerate(yaml.safe_load_all(path.read_text())):
            params.append(pytest.param(doc, id=f"{path.name}[{i}]-{doc['kind']}"))
    return params


def errors(schema: dict[str, Any], document: Any) -> list[str]:
    return [e.message for e in Draft202012Validator(schema).iter_errors(document)]


def valid(schema: dict[str, Any], document: Any) -> bool:
    return not errors(schema, document)


def loader_accepts(document: Any) -> bool:
    try:
        loads(document)
    except ValidationError:
        return False
    return True


TEAM = {
    "apiVersion": "agent.wecode.io/v1",
    "kind": "Team",
    "metadata": {"name": "dev", "namespace": "default"},
    "spec": {
        "members": [{"role": "leader", "botRef": {"name": "coder"}, "prompt": ""}],
        "collaborationModel": "pipeline",
    },
}


def team(**spec: Any) -> dict[str, Any]:
    doc = copy.deepcopy(TEAM)
    doc["spec"].update(spec)
    return doc


# --- the schema itself --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", [None, *KINDS])
@pytest.mark.parametrize("strict", [False, True])
def test_every_schema_is_a_valid_draft_2020_12_schema(kind: str | None, strict: bool) -> None:
    schema = json_schema(kind, strict=strict)
    assert schema["$schema"] == DRAFT_2020_12
    Draft202012Validator.check_schema(schema)
    assert jsonschema.validators.validator_for(schema) is Draft202012Validator


def test_kind_names_are_case_insensitive() -> None:
    assert json_schema("team") == json_schema("Team") == json_schema("TEAM")


def test_an_unknown_kind_is_a_value_error_listing_the_kinds() -> None:
    with pytest.raises(ValueError, match="Teem") as excinfo:
        json_schema("Teem")
    for kind in KINDS:
        assert kind in str(excinfo.value)


def test_callers_may_change_the_returned_schema() -> None:
    json_schema("Team")["properties"].clear()
    assert json_schema("Team")["properties"]


# --- upstream files -----------------------------------------------------------------------------------------------


def test_the_upstream_fixtures_are_there() -> None:
    assert [p.name for p in UPSTREAM_FILES] == ["01-public-shells.yaml", "team-example.yaml"]


@pytest.mark.parametrize("strict", [False, True])
@pytest.mark.parametrize("document", upstream_documents())
def test_the_schema_of_any_document_accepts_every_upstream_document(document: Any, strict: bool) -> None:
    assert errors(json_schema(strict=strict), document) == []


@pytest.mark.parametrize("strict", [False, True])
@pytest.mark.parametrize("document", upstream_documents())
def test_the_schema_of_each_kind_accepts_its_upstream_documents(document: Any, strict: bool) -> None:
    assert errors(json_schema(document["kind"], strict=strict), document) == []


def test_a_list_of_documents_is_accepted_as_the_loader_accepts_it() -> None:
    docs = [doc for path in UPSTREAM_FILES for doc in yaml.safe_load_all(path.read_text())]
    assert valid(json_schema(), docs)
    assert loader_accepts(docs)


# --- one schema per kind ------------------------------------------------------------------------------------------


def test_a_kind_schema_accepts_only_its_kind() -> None:
    ghost = {"kind": "Ghost", "metadata": {"name": "g"}, "spec": {"systemPrompt": "Be brief."}}
    assert valid(json_schema("Ghost"), ghost)
    assert not valid(json_schema("Team"), ghost)
    assert valid(json_schema("Team"), TEAM)


def test_the_any_document_schema_dispatches_on_kind() -> None:
    schema = json_schema()
    wrong_spec = {"kind": "Ghost", "metadata": {"name": "g"}, "spec": TEAM["spec"]}  # a Team spec under a Ghost
    assert not valid(schema, wrong_spec)
    assert not valid(schema, {**TEAM, "kind": "Squad"})
    assert not valid(schema, {k: v for k, v in TEAM.items() if k != "kind"})


# --- agreement with the loader ------------------------------------------------------------------------------------

ACCEPTED = {
    "no apiVersion": {k: v for k, v in TEAM.items() if k != "apiVersion"},
    "no namespace": {**TEAM, "metadata": {"name": "dev"}},
    "enum in another case, with spaces": team(collaborationModel="Pipeline "),
    "label values YAML reads as booleans and numbers": {
        **TEAM,
        "metadata": {"name": "dev", "labels": {"on": True, "n": 3}},
    },
    "empty labels": {**TEAM, "metadata": {"name": "dev", "labels": None}},
    "shell with the runtime alias": {"kind": "Shell", "metadata": {"name": "s"}, "spec": {"runtime": "Chat"}},
    "shell inheriting its type": {"kind": "Shell", "metadata": {"name": "s"}, "spec": {"baseShellRef": "Chat"}},
    "skill version read as a number": {
        "kind": "Skill",
        "metadata": {"name": "k"},
        "spec": {"description": "d", "version": 1.0},
    },
    "free-form modelConfig": {
        "kind": "Model",
        "metadata": {"name": "m"},
        "spec": {"modelConfig": {"env": {"model": "openai"}, "anything": [1, 2]}},
    },
}

REJECTED = {
    "no kind": {k: v for k, v in TEAM.items() if k != "kind"},
    "an unknown apiVersion": {**TEAM, "apiVersion": "agent.wecode.io/v2"},
    "no metadata.name": {**TEAM, "metadata": {"namespace": "default"}},
    "an empty name": {**TEAM, "metadata": {"name": ""}},
    "an unknown collaboration model": team(collaborationModel="parallel"),
    "members that are not a list": team(members={"botRef": {"name": "coder"}}),
    "a member without botRef": team(members=[{"role": "leader"}]),
    "a misspelt required field": {**TEAM, "spec": {"members": TEAM["spec"]["members"], "colaborationModel": "solo"}},
    "a shell without a type": {"kind": "Shell", "metadata": {"name": "s"}, "spec": {"baseImage": "x"}},
    "a ghost without a prompt": {"kind": "Ghost", "metadata": {"name": "g"}, "spec": {}},
    "a wrong scalar type": team(members=[{"botRef": {"name": "coder"}, "requireConfirmation": "maybe"}]),
    "a bad task status": {
        "kind": "Task",
        "metadata": {"name": "t"},
        "spec": {"prompt": "p", "teamRef": {"name": "dev"}},
        "status": {"status": "DONE"},
    },
    "not a mapping": 42,
}


@pytest.mark.parametrize("document", ACCEPTED.values(), ids=ACCEPTED.keys())
def test_what_the_loader_accepts_the_schema_accepts(document: Any) -> None:
    assert loader_accepts(document)
    assert errors(json_schema(), document) == []
    assert errors(json_schema(document["kind"]), document) == []


@pytest.mark.parametrize("document", REJECTED.values(), ids=REJECTED.keys())
def test_what_the_loader_rejects_the_schema_rejects(document: Any) -> None:
    assert not loader_accepts(document)
    assert not valid(json_schema(), document)


# --- strict mode --------------------------------------------------------------------------------------------------


def test_strict_mode_flags_a_misspelt_field_that_lax_mode_lets_through() -> None:
    typo = team(colaborationModel="solo")  # next to the correct key: only strict mode can tell
    assert valid(json_schema("Team"), typo)
    assert valid(json_schema(), typo)
    strict_errors = errors(json_schema("Team", strict=True), typo)
    assert any("colaborationModel" in e for e in strict_errors)
    assert not valid(json_schema(strict=True), typo)


@pytest.mark.parametrize("where", ["envelope", "metadata", "member", "ref"])
def test_strict_mode_closes_every_object_of_the_models(where: str) -> None:
    doc = team()
    target = {
        "envelope": doc,
        "metadata": doc["metadata"],
        "member": doc["spec"]["members"][0],
        "ref": doc["spec"]["members"][0]["botRef"],
    }[where]
    target["extraField"] = 1
    assert valid(json_schema(), doc)
    assert not valid(json_schema(strict=True), doc)


def test_strict_mode_leaves_free_form_maps_open() -> None:
    model = {
        "kind": "Model",
        "metadata": {"name": "m", "labels": {"anything": "goes"}},
        "spec": {"modelConfig": {"env": {"model": "openai", "CUSTOM": "x"}, "bind_model": "other"}},
    }
    ghost = {
        "kind": "Ghost",
        "metadata": {"name": "g"},
        "spec": {"systemPrompt": "p", "mcpServers": {"github": {"command": "docker", "whatever": True}}},
    }
    for doc in (model, ghost):
        assert errors(json_schema(strict=True), doc) == []
        assert errors(json_schema(doc["kind"], strict=True), doc) == []


def test_strict_schema_keeps_the_alias_keys_the_loader_accepts() -> None:
    shell = {"kind": "Shell", "metadata": {"name": "s"}, "spec": {"runtime": "ClaudeCode"}}
    assert valid(json_schema("Shell", strict=True), shell)


MODES = ["solo", "pipeline", "route", "coordinate", "collaborate", "parallel", "pipe line", "", "solo-ish"]


@given(
    mode=st.sampled_from(MODES),
    upper=st.lists(st.booleans(), min_size=12, max_size=12),
    before=st.sampled_from(["", " ", "  ", "\t"]),
    after=st.sampled_from(["", " ", "\t "]),
)
@settings(max_examples=60, deadline=None)
def test_schema_and_loader_agree_on_collaboration_model_spellings(
    mode: str, upper: list[bool], before: str, after: str
) -> None:
    spelled = before + "".join(c.upper() if u else c for c, u in zip(mode, upper, strict=False)) + after
    document = team(collaborationModel=spelled)
    assert valid(json_schema("Team"), document) == loader_accepts(document)
