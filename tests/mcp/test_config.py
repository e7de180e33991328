"""Configuration forms (reference 2.8): `${{path}}` placeholders, the nested `mcpServers` wrappers, JSON headers, and
the tool names a model sees. Property-based where the inputs are open-ended."""

from __future__ import annotations

import json
import re
from typing import Any

import mcp_types as types
from hypothesis import assume, given
from hypothesis import strategies as st

from wegent_core import MemoryStore, loads, resolve_team
from wegent_core._resolve import unwrap_mcp_servers
from wegent_runtimes.mcp import fill_placeholders
from wegent_runtimes.mcp._tools import MAX_NAME, render, render_block, tool_name, unique

from .conftest import team_yaml

# --- placeholders -----------------------------------------------------------------------------------------------------

keys = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=8)
scalars = st.one_of(
    st.text(max_size=10), st.integers(), st.booleans(), st.floats(allow_nan=False, allow_infinity=False)
)
data = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(keys, inner, max_size=3)),
    max_leaves=12,
)


def paths(value: Any, prefix: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    """Every (path, value) in nested data."""
    found = [(prefix, value)] if prefix else []
    if isinstance(value, dict):
        for key, inner in value.items():
            found += paths(inner, (*prefix, key))
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            found += paths(inner, (*prefix, str(index)))
    return found


@given(st.dictionaries(keys, data, min_size=1, max_size=4), st.data())
def test_a_known_path_is_replaced_by_its_value(known: dict[str, Any], draw: Any) -> None:
    path, value = draw.draw(st.sampled_from(paths(known)))
    template = "x-${{" + ".".join(path) + "}}-y"
    expected = value if isinstance(value, str) else json.dumps(value)
    assert fill_placeholders(template, known) == f"x-{expected}-y"
    assert fill_placeholders({"k": [template]}, known) == {"k": [f"x-{expected}-y"]}  # inside lists and maps too


@given(st.dictionaries(keys, data, max_size=4), st.lists(keys, min_size=1, max_size=3))
def test_an_unknown_path_keeps_the_placeholder(known: dict[str, Any], path: list[str]) -> None:
    assume(path[0] not in known)
    template = "${{" + ".".join(path) + "}} and ${ENV_NAME}"
    assert fill_placeholders(template, known) == template  # `${ENV}` is not this function's business


@given(st.text().filter(lambda s: "${{" not in s), st.dictionaries(keys, data))
def test_text_without_placeholders_is_unchanged(text: str, known: dict[str, Any]) -> None:
    assert fill_placeholders(text, known) == text


def test_placeholder_details() -> None:
    known = {"task_id": 7, "bot": [{"name": "coder", "role": None}], "flag": True}
    assert fill_placeholders("${{ task_id }}/${{bot.0.name}}", known) == "7/coder"
    assert (
        fill_placeholders("${{bot.0.role}} ${{bot.1.name}} ${{bot.x}}", known)
        == "${{bot.0.role}} ${{bot.1.name}} ${{bot.x}}"
    )
    assert fill_placeholders("${{flag}}", known) == "true"
    assert fill_placeholders(3, known) == 3


# --- nested forms -------------------------------------------------------------------------------------------------

server_names = keys.filter(lambda name: name not in ("mcpServers", "mcp_servers"))
servers = st.dictionaries(server_names, st.fixed_dictionaries({"command": st.text(min_size=1, max_size=5)}), max_size=3)
spellings = st.sampled_from(["mcpServers", "mcp_servers"])


@given(servers, st.lists(spellings, max_size=2))
def test_servers_wrapped_up_to_twice_in_either_spelling_are_found(found: dict[str, Any], wrappers: list[str]) -> None:
    raw: Any = found
    for key in wrappers:
        raw = {key: raw}
    assert unwrap_mcp_servers(raw) == found


@given(servers, servers, servers)
def test_both_spellings_follow_upstreams_order(
    camel: dict[str, Any], snake: dict[str, Any], deep: dict[str, Any]
) -> None:
    assert unwrap_mcp_servers({"mcp_servers": snake, "mcpServers": camel}) == camel
    # a double wrapping wins over a single one, whatever the spellings: snake/camel before single camel
    assume(deep)
    assert (
        unwrap_mcp_servers({"mcpServers": camel or {"x": {"command": "c"}}, "mcp_servers": {"mcpServers": deep}})
        == deep
    )
    assert unwrap_mcp_servers({"mcpServers": {"mcp_servers": deep, "mcpServers": camel}}) == camel  # camel/camel first


def test_a_map_with_other_keys_is_a_server_map() -> None:
    raw = {"mcp_servers": {"command": "x"}, "other": {"command": "y"}}
    assert unwrap_mcp_servers(raw) == raw
    assert unwrap_mcp_servers(None) == {}
    assert unwrap_mcp_servers({"mcpServers": {}}) == {}


def test_headers_in_upstreams_json_string_form_and_type_spellings_resolve() -> None:
    servers = {
        "a": {"url": "http://h/mcp", "headers": json.dumps({"Authorization": "Bearer ${{task_token}}"})},
        "b": {"url": "http://h/mcp", "type": "streamableHttp", "auth": {"X-Key": "k"}},
        "c": {"url": "http://h/mcp", "headers": "not json"},
    }
    yaml = team_yaml({"g": {"mcpServers": {"mcpServers": servers}}})
    plan = {s.name: s for s in resolve_team(MemoryStore.from_resources(loads(yaml)), "team").members[0].mcp_servers}
    assert plan["a"].headers == {"Authorization": "Bearer ${{task_token}}"}
    assert (plan["b"].type, plan["b"].headers) == ("streamable-http", {"X-Key": "k"})
    assert plan["c"].headers == {}


# --- tool names ---------------------------------------------------------------------------------------------------

VALID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


@given(st.text(min_size=1, max_size=80), st.text(min_size=1, max_size=150))
def test_tool_names_are_valid_for_model_apis_and_stable(server: str, name: str) -> None:
    result = tool_name(server, name)
    assert VALID.match(result)
    assert result == tool_name(server, name)


@given(st.text(min_size=1, max_size=150), st.text(min_size=1, max_size=150))
def test_long_names_differ_when_the_full_names_differ(first: str, second: str) -> None:
    assume(first != second)
    long = "s" * 60
    assert tool_name(long, first) != tool_name(long, second) or len(f"{long}__{first}") <= MAX_NAME


@given(st.lists(st.sampled_from(["a", "b", "a_2", "x" * 64]), max_size=8))
def test_unique_names_never_repeat(names: list[str]) -> None:
    taken: set[str] = set()
    given_names = [unique(name, taken) for name in names]
    assert len(set(given_names)) == len(given_names)
    assert all(len(n) <= MAX_NAME for n in given_names)


def test_naming_examples() -> None:
    assert tool_name("time", "get_current_time") == "time__get_current_time"
    assert tool_name("my server", "files/read.v2") == "my_server__files_read_v2"
    taken: set[str] = set()
    assert [unique(n, taken) for n in ("s__get_prompt", "s__get_prompt", "s__get_prompt")] == [
        "s__get_prompt",
        "s__get_prompt_2",
        "s__get_prompt_3",
    ]


# --- content ------------------------------------------------------------------------------------------------------


def test_content_other_than_text_is_summarised() -> None:
    blob = types.BlobResourceContents(uri="file:///a.bin", mime_type="application/zip", blob="AAAA")
    blocks = [
        types.TextContent(text="first"),
        types.AudioContent(data="AAAAAA==", mime_type="audio/wav"),
        types.EmbeddedResource(resource=types.TextResourceContents(uri="file:///a.txt", text="inside")),
        types.EmbeddedResource(resource=blob),
        types.ResourceLink(name="report", uri="file:///r.pdf"),
    ]
    assert render(blocks).split("\n") == [
        "first",
        "[audio audio/wav, 4 bytes]",
        "inside",
        "[binary resource file:///a.bin: application/zip, 3 bytes]",
        "[resource report: file:///r.pdf]",
    ]
    assert render([], {"sum": 3}) == '{"sum": 3}'  # structured content only: given as JSON
    assert render_block(types.ImageContent(data="", mime_type="image/png")) == "[image image/png, 0 bytes]"


def test_the_handshake_timeout_comes_from_the_server_then_the_environment() -> None:
    from wegent_core import McpServerPlan
    from wegent_runtimes.mcp._client import DEFAULT_TIMEOUT, start_timeout

    plan = McpServerPlan(name="s", type="stdio", command="x", source="ghost")
    assert start_timeout(plan.model_copy(update={"timeout": 5.0}), {"WEGENT_MCP_TIMEOUT": "9"}) == 5.0
    assert start_timeout(plan, {"WEGENT_MCP_TIMEOUT": "9"}) == 9.0
    assert start_timeout(plan, {"WEGENT_MCP_TIMEOUT": "soon"}) == start_timeout(plan, {}) == DEFAULT_TIMEOUT == 30.0
