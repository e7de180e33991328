"""The store commands of `wegent` (apply, get, describe, delete, plan from the store, db, prune) on a real SQLite
file: in-process through `main([...])`, and a few runs of the installed console script.

Every test runs with WEGENT_HOME in a temporary directory, so the user's data directory, embedded store and secret
key file are never touched.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from wegent_server._cli import main

from .conftest import Result, Wegent

UPSTREAM = Path(__file__).parent.parent / "fixtures" / "upstream"
WEGENT = Path(sys.executable).parent / "wegent"
HEAVY = ("pydantic", "pydantic_core", "yaml", "sqlalchemy", "alembic", "cryptography", "wegent_core", "wegent_storage")
SECRET = "sk-live-123"

RESOURCES = f"""
    kind: Ghost
    metadata: {{name: coder-ghost, labels: {{tier: core}}}}
    spec: {{systemPrompt: You write small, tested changes.}}
    ---
    kind: Shell
    metadata: {{name: chat, labels: {{tier: core, runtime: chat}}}}
    spec: {{shellType: Chat, baseImage: python:3.12}}
    ---
    kind: Model
    metadata: {{name: gpt, labels: {{tier: paid}}}}
    spec:
      modelConfig:
        env: {{model: openai, model_id: gpt-4o-mini, api_key: {SECRET}}}
    ---
    kind: Bot
    metadata: {{name: coder}}
    spec:
      ghostRef: {{name: coder-ghost}}
      shellRef: {{name: chat}}
      modelRef: {{name: gpt}}
    ---
    kind: Team
    metadata: {{name: dev}}
    spec:
      collaborationModel: solo
      members:
        - role: leader
          botRef: {{name: coder}}
    ---
    kind: Task
    metadata: {{name: fix-bug}}
    spec:
      prompt: Fix the flaky test
      teamRef: {{name: dev}}
"""


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text).lstrip())
    return path


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str]) -> Wegent:
    """`run(*argv)`: main() in-process, without any store option."""

    def run(*argv: str) -> Result:
        code = main(list(argv))
        out, err = capsys.readouterr()
        return Result(code, out, err)

    return run


@pytest.fixture
def wegent(run: Wegent, url: str) -> Wegent:
    """`wegent(*argv)`: main() on a migrated, empty SQLite store (`--store` is added to store commands)."""
    assert run("db", "upgrade", "--store", url).code == 0

    def wegent(*argv: str) -> Result:
        return run(*argv, "--store", url)

    return wegent


@pytest.fixture
def resources(tmp_path: Path) -> Path:
    return write(tmp_path / "resources.yaml", RESOURCES)


@pytest.fixture
def applied(wegent: Wegent, resources: Path) -> Wegent:
    assert wegent("apply", "-f", str(resources)).code == 0
    return wegent


def lines(text: str) -> list[str]:
    return [line.strip() for line in text.strip().splitlines()]


def table(text: str) -> list[list[str]]:
    return [re.split(r"\s{2,}", line.strip()) for line in lines(text)]


# --- apply --------------------------------------------------------------------------------------------------------


def test_the_upstream_files_apply_cleanly(wegent: Wegent) -> None:
    result = wegent("apply", "-f", str(UPSTREAM))
    assert result.code == 0, result.err
    assert lines(result.out)[-1] == "11 resources: 11 created"
    assert "warning" not in result.out
    assert "Team/dev-team (default): created" in result.out
    rows = table(wegent("get", "teams").out)
    assert rows[0] == ["NAME", "NAMESPACE", "STATE", "AGE"]
    assert rows[1][:3] == ["dev-team", "default", "Available"]
    assert re.fullmatch(r"\d+s", rows[1][3])


def test_apply_reports_created_updated_unchanged(wegent: Wegent, resources: Path, tmp_path: Path) -> None:
    result = wegent("apply", "-f", str(resources))
    assert result.code == 0
    assert lines(result.out) == [
        "Shell/chat (default): created",
        "Model/gpt (default): created",
        "Ghost/coder-ghost (default): created",
        "Bot/coder (default): created",
        "Team/dev (default): created",
        "Task/fix-bug (default): created",
        "6 resources: 6 created",
    ]
    changed = write(tmp_path / "changed.yaml", RESOURCES.replace("Fix the flaky test", "Fix it properly"))
    result = wegent("apply", "-f", str(changed))
    assert result.code == 0
    assert "Task/fix-bug (default): updated" in result.out
    assert "Team/dev (default): unchanged" in result.out
    assert lines(result.out)[-1] == "6 resources: 1 updated, 5 unchanged"
    report = wegent("apply", "-f", str(changed), "-o", "json").json()
    assert report["ok"] is True
    assert (report["created"], report["updated"], report["unchanged"], report["failed"]) == (0, 0, 6, 0)
    assert report["results"][0] == {
        "kind": "Shell",
        "name": "chat",
        "namespace": "default",
        "operation": "unchanged",
        "error": None,
        "warnings": [],
    }


def test_apply_exits_1_when_a_resource_fails(wegent: Wegent, tmp_path: Path) -> None:
    # A resource version names the version the writer read: a stale one is a conflict, the others still apply.
    path = write(
        tmp_path / "stale.yaml",
        """
        kind: Shell
        metadata: {name: stale, resourceVersion: "999"}
        spec: {shellType: Chat}
        ---
        kind: Shell
        metadata: {name: fine}
        spec: {shellType: Chat}
        """,
    )
    result = wegent("apply", "-f", str(path))
    assert result.code == 1
    assert re.search(r"^Shell/stale \(default\): failed: .*999", result.out, re.MULTILINE)
    assert "Shell/fine (default): created" in result.out
    assert lines(result.out)[-1] == "2 resources: 1 created, 1 failed"
    report = wegent("apply", "-f", str(path), "-o", "json").json()
    assert report["ok"] is False
    [failed] = [r for r in report["results"] if r["operation"] == "failed"]
    assert failed["name"] == "stale"
    assert "999" in failed["error"]


def test_a_missing_reference_is_a_warning(wegent: Wegent, tmp_path: Path) -> None:
    bot = write(
        tmp_path / "bot.yaml",
        """
        kind: Bot
        metadata: {name: lonely}
        spec: {ghostRef: {name: g}, shellRef: {name: nowhere}}
        """,
    )
    result = wegent("apply", "-f", str(bot))
    assert result.code == 0
    assert result.out.splitlines() == [  # the warnings indented under their resource
        "Bot/lonely (default): created",
        "  warning: spec.ghostRef refers to Ghost g, not found (yet) in namespace default or public",
        "  warning: spec.shellRef refers to Shell nowhere, not found (yet) in namespace default or public",
        "1 resource: 1 created",
    ]
    warnings = wegent("apply", "-f", str(bot), "-o", "json").json()["results"][0]["warnings"]
    assert len(warnings) == 2


def test_apply_refuses_invalid_files_and_writes_nothing(wegent: Wegent, resources: Path, tmp_path: Path) -> None:
    bad = write(
        tmp_path / "bad.yaml",
        """
        kind: Team
        metadata:
          name: broken
        spec:
          collaborationModel: solo
          members:
            - botRef:
                namespace: default
        """,
    )
    result = wegent("apply", "-f", str(resources), str(bad))
    assert result.code == 1
    assert result.out == ""
    assert f"{bad}:7 spec.members[0].botRef.name: " in result.err
    assert "No teams found" in wegent("get", "teams").err


def test_dry_run_writes_nothing(wegent: Wegent, resources: Path) -> None:
    result = wegent("apply", "-f", str(resources), "--dry-run")
    assert result.code == 0
    assert "Team/dev (default): created (dry run)" in result.out
    assert lines(result.out)[-1] == "6 resources: 6 created (dry run)"
    assert wegent("apply", "-f", str(resources), "--dry-run", "-o", "json").json()["dry_run"] is True
    assert wegent("get", "team", "dev").code == 1
    assert wegent("get", "teams", "-A").out == ""


def test_apply_into_a_namespace_and_into_public(wegent: Wegent, resources: Path) -> None:
    result = wegent("apply", "-f", str(resources), "-n", "team-a")
    assert result.code == 0
    assert "Team/dev (team-a): created" in result.out
    assert [row[0] for row in table(wegent("get", "teams", "-n", "team-a").out)] == ["NAME", "dev"]
    assert "No teams found in namespace 'default'" in wegent("get", "teams").err

    assert wegent("apply", "-f", str(resources), "--public").code == 0
    assert table(wegent("get", "shells", "-n", "public").out)[1][:2] == ["chat", "public"]
    assert {row[1] for row in table(wegent("get", "sh", "-A").out)[1:]} == {"public", "team-a"}
    result = wegent("apply", "-f", str(resources), "-n", "x", "--public")
    assert result.code == 2


def test_apply_a_directory_in_any_order(wegent: Wegent, tmp_path: Path) -> None:
    # Files are read in name order: the Team comes before what it refers to, and nothing warns.
    docs = textwrap.dedent(RESOURCES).split("---\n")
    for i, doc in enumerate(reversed(docs)):
        (tmp_path / "dir").mkdir(exist_ok=True)
        (tmp_path / "dir" / f"{i:02}.yaml").write_text(doc)
    result = wegent("apply", "-f", str(tmp_path / "dir"))
    assert result.code == 0
    assert "warning" not in result.out


# --- get ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spelling", "name"),
    [
        ("gh", "coder-ghost"),
        ("ghosts", "coder-ghost"),
        ("GHOST", "coder-ghost"),
        ("mo", "gpt"),
        ("Models", "gpt"),
        ("sh", "chat"),
        ("shell", "chat"),
        ("bo", "coder"),
        ("Bots", "coder"),
        ("te", "dev"),
        ("Team", "dev"),
    ],
)
def test_kinds_by_short_name_plural_or_any_case(applied: Wegent, spelling: str, name: str) -> None:
    result = applied("get", spelling)
    assert result.code == 0
    assert [row[0] for row in table(result.out)] == ["NAME", name]


def test_kinds_with_nothing_stored(wegent: Wegent) -> None:
    for spelling in ("ws", "workspaces", "sk", "Skills"):
        result = wegent("get", spelling)
        assert result.code == 0
        assert result.out == ""
        assert "found in namespace 'default'" in result.err


def test_an_unknown_kind_is_a_usage_error(wegent: Wegent) -> None:
    result = wegent("get", "squads")
    assert result.code == 2
    assert "unknown kind 'squads'" in result.err
    assert "team (te)" in result.err


def test_get_one_defaults_to_yaml(applied: Wegent) -> None:
    result = applied("get", "team", "dev")
    assert result.code == 0
    doc = yaml.safe_load(result.out)
    assert doc["kind"] == "Team"
    assert doc["metadata"]["name"] == "dev"
    assert doc["metadata"]["resourceVersion"]
    assert doc["spec"]["members"][0]["botRef"]["name"] == "coder"
    as_json = applied("get", "team", "dev", "-o", "json").json()
    assert as_json == doc


def test_get_one_as_a_table(applied: Wegent) -> None:
    rows = table(applied("get", "bot", "coder", "-o", "wide").out)
    assert rows[0] == ["NAME", "NAMESPACE", "STATE", "AGE", "GHOST", "SHELL", "MODEL"]
    assert rows[1][4:] == ["coder-ghost", "chat", "gpt"]


def test_list_json_and_yaml_have_upstreams_shape(applied: Wegent) -> None:
    data = applied("get", "bots", "-o", "json").json()
    assert data["apiVersion"] == "agent.wecode.io/v1"
    assert data["kind"] == "BotList"
    assert [item["metadata"]["name"] for item in data["items"]] == ["coder"]
    assert yaml.safe_load(applied("get", "bots", "-o", "yaml").out) == data
    assert applied("get", "workspaces", "-o", "json").json() == {
        "apiVersion": "agent.wecode.io/v1",
        "kind": "WorkspaceList",
        "items": [],
    }


@pytest.mark.parametrize(
    ("kind", "columns", "values"),
    [
        ("shells", ["TYPE", "IMAGE"], ["Chat", "python:3.12"]),
        ("bots", ["GHOST", "SHELL", "MODEL"], ["coder-ghost", "chat", "gpt"]),
        ("teams", ["MODE", "MEMBERS"], ["solo", "coder"]),
        ("models", ["PROTOCOL", "MODEL_ID"], ["openai", "gpt-4o-mini"]),
    ],
)
def test_wide_columns(applied: Wegent, kind: str, columns: list[str], values: list[str]) -> None:
    header, row = table(applied("get", kind, "-o", "wide").out)
    assert header == ["NAME", "NAMESPACE", "STATE", "AGE", *columns]
    assert row[4:] == values


def test_wide_columns_of_upstream_models(wegent: Wegent) -> None:
    wegent("apply", "-f", str(UPSTREAM))
    _, row = table(wegent("get", "mo", "-o", "wide").out)
    assert row[0] == "claude-model"
    assert row[4:] == ["claude", "claude-4.1-opus"]  # inferred from ANTHROPIC_* as resolution does


def test_label_selectors(applied: Wegent) -> None:
    def names(*selector: str) -> list[str]:
        result = applied("get", *selector)
        assert result.code == 0, result.err
        return sorted(item["metadata"]["name"] for item in json.loads(result.out)["items"])

    assert names("shells", "-l", "tier=core", "-o", "json") == ["chat"]
    assert names("ghosts", "-l", "tier=core", "-o", "json") == ["coder-ghost"]
    assert names("shells", "-l", "tier=core,runtime!=chat", "-o", "json") == []
    assert names("models", "-l", "tier in (paid,free)", "-o", "json") == ["gpt"]
    assert names("models", "-l", "!tier", "-o", "json") == []
    result = applied("get", "shells", "-l", "tier in (a")
    assert result.code == 2
    assert "bad selector" in result.err


def test_all_namespaces(applied: Wegent, resources: Path) -> None:
    applied("apply", "-f", str(resources), "-n", "team-b")
    rows = table(applied("get", "teams", "-A").out)
    assert [(r[0], r[1]) for r in rows[1:]] == [("dev", "default"), ("dev", "team-b")]
    assert len(applied("get", "teams", "--all-namespaces", "-o", "json").json()["items"]) == 2
    assert applied("get", "teams", "dev", "-A").code == 2
    assert applied("get", "teams", "-n", "x", "-A").code == 2


def test_not_found(applied: Wegent, resources: Path) -> None:
    result = applied("get", "team", "x")
    assert result.code == 1
    assert result.out == ""
    assert result.err.strip() == "error: Team 'x' not found in namespace 'default'"
    result = applied("get", "te", "x", "-o", "json")
    assert result.code == 1
    assert result.json()["error"] == "NotFoundError"
    assert result.json()["message"] == "Team 'x' not found in namespace 'default'"
    assert applied("get", "team", "dev", "-n", "elsewhere").code == 1


def test_not_found_says_where_a_reference_would_find_it(applied: Wegent, resources: Path) -> None:
    applied("apply", "-f", str(resources), "--public")
    applied("delete", "-f", str(resources))
    result = applied("get", "shell", "chat")
    assert result.code == 1
    assert "Shell 'chat' not found in namespace 'default' (there is one in namespace 'public'" in result.err


# --- secrets ------------------------------------------------------------------------------------------------------


def test_secrets_are_redacted_unless_asked_for(applied: Wegent, tmp_path: Path) -> None:
    for argv in (
        ["get", "model", "gpt"],
        ["get", "model", "gpt", "-o", "json"],
        ["get", "models", "-o", "yaml"],
        ["get", "models", "-A", "-o", "json"],
        ["get", "models", "-o", "wide"],
        ["describe", "model", "gpt"],
        ["describe", "model", "gpt", "-o", "json"],
        ["plan", "--team", "dev", "-o", "json"],
    ):
        result = applied(*argv)
        assert result.code == 0, (argv, result.err)
        assert SECRET not in result.out + result.err, argv
    redacted = yaml.safe_load(applied("get", "model", "gpt").out)
    assert redacted["spec"]["modelConfig"]["env"]["api_key"] == "***"
    assert redacted["spec"]["modelConfig"]["env"]["model_id"] == "gpt-4o-mini"

    shown = applied("get", "model", "gpt", "--show-secrets", "-o", "json").json()
    assert shown["spec"]["modelConfig"]["env"]["api_key"] == SECRET
    listed = applied("get", "models", "--show-secrets", "-o", "json").json()
    assert listed["items"][0]["spec"]["modelConfig"]["env"]["api_key"] == SECRET


def test_the_database_holds_no_plaintext_secret(applied: Wegent, url: str) -> None:
    database = Path(url.removeprefix("sqlite:///"))
    raw = b"".join(p.read_bytes() for p in database.parent.glob(database.name + "*"))  # the WAL file too
    assert SECRET.encode() not in raw


def test_placeholders_are_shown_as_written(wegent: Wegent, tmp_path: Path) -> None:
    path = write(
        tmp_path / "model.yaml",
        """
        kind: Model
        metadata: {name: env-model}
        spec:
          modelConfig:
            env: {model: claude, model_id: claude-haiku, api_key: "${ANTHROPIC_API_KEY}"}
        """,
    )
    wegent("apply", "-f", str(path))
    doc = yaml.safe_load(wegent("get", "mo", "env-model").out)
    assert doc["spec"]["modelConfig"]["env"]["api_key"] == "${ANTHROPIC_API_KEY}"


# --- describe -----------------------------------------------------------------------------------------------------


def test_describe_shows_references_and_referrers(applied: Wegent) -> None:
    result = applied("describe", "bot", "coder")
    assert result.code == 0
    out = result.out
    for expected in (
        "Name:",
        "coder",
        "Namespace:",
        "Kind:",
        "Bot",
        "API Version:",
        "agent.wecode.io/v1",
        "Resource Version:",
        "Created:",
        "Updated:",
        "Labels:",
        "Spec:\n  ghostRef:\n    name: coder-ghost",
    ):
        assert expected in out
    references = out.split("References:\n", 1)[1].split("Referenced by:\n")[0]
    assert lines(references) == [
        "spec.ghostRef -> Ghost coder-ghost (default)",
        "spec.shellRef -> Shell chat (default)",
        "spec.modelRef -> Model gpt (default)",
    ]
    assert lines(out.split("Referenced by:\n", 1)[1]) == ["Team dev (default) via spec.members[0].botRef"]


def test_describe_public_and_missing_references(wegent: Wegent, resources: Path, tmp_path: Path) -> None:
    wegent("apply", "-f", str(resources), "--public")
    bot = write(
        tmp_path / "bot.yaml",
        """
        kind: Bot
        metadata: {name: mine, labels: {owner: me}}
        spec: {ghostRef: {name: coder-ghost}, shellRef: {name: chat}, modelRef: {name: gone}}
        """,
    )
    wegent("apply", "-f", str(bot))
    out = wegent("describe", "bo", "mine").out
    assert "spec.shellRef -> Shell chat (public)" in out
    assert "spec.modelRef -> Model gone (missing)" in out
    assert "owner=me" in out
    assert "Referenced by:\n  <none>" in out

    data = wegent("describe", "bo", "mine", "-o", "json").json()
    assert data["resource"]["metadata"]["name"] == "mine"
    refs = {r["path"]: r for r in data["references"]}
    assert refs["spec.shellRef"]["resolved_namespace"] == "public"
    assert refs["spec.modelRef"]["resolved"] is False
    assert data["referenced_by"] == []

    public = wegent("describe", "shell", "chat", "-n", "public", "-o", "json").json()
    referrers = {(r["kind"], r["name"], r["namespace"]) for r in public["referenced_by"]}
    assert ("Bot", "mine", "default") in referrers  # through the public fallback
    assert ("Bot", "coder", "public") in referrers


def test_describe_not_found(applied: Wegent) -> None:
    result = applied("describe", "team", "nope")
    assert result.code == 1
    assert "Team 'nope' not found in namespace 'default'" in result.err


# --- delete -------------------------------------------------------------------------------------------------------


def test_delete_refuses_while_referenced(applied: Wegent) -> None:
    result = applied("delete", "bot", "coder")
    assert result.code == 1
    assert result.out == ""
    assert "Bot/coder (default) is still referenced by:" in result.err
    assert "Team/dev (default) via spec.members[0].botRef" in result.err
    assert "nothing was deleted" in result.err
    assert applied("get", "bot", "coder").code == 0

    data = applied("delete", "bot", "coder", "-o", "json").json()
    assert data["ok"] is False
    assert data["deleted"] == []
    [blocked] = data["blocked"]
    assert blocked["name"] == "coder"
    assert blocked["referenced_by"] == [
        {"kind": "Team", "name": "dev", "namespace": "default", "path": "spec.members[0].botRef"}
    ]


def test_delete_cascade_deletes_dependents_of_dependents(applied: Wegent) -> None:
    result = applied("delete", "shell", "chat", "--cascade", "--dry-run")
    assert result.code == 0
    assert lines(result.out) == [
        "Task/fix-bug (default): deleted (dry run; it refers to Team/dev (default))",
        "Team/dev (default): deleted (dry run; it refers to Bot/coder (default))",
        "Bot/coder (default): deleted (dry run; it refers to Shell/chat (default))",
        "Shell/chat (default): deleted (dry run)",
        "4 resources would be deleted",
    ]
    assert applied("get", "shell", "chat").code == 0

    result = applied("delete", "sh", "chat", "--cascade")
    assert result.code == 0
    assert lines(result.out)[-1] == "4 resources deleted"
    for kind, name in (("task", "fix-bug"), ("team", "dev"), ("bot", "coder"), ("shell", "chat")):
        assert applied("get", kind, name).code == 1
    assert applied("get", "ghost", "coder-ghost").code == 0  # what they referred to stays
    assert applied("get", "model", "gpt").code == 0


def test_delete_what_nothing_refers_to(applied: Wegent) -> None:
    result = applied("delete", "task", "fix-bug")
    assert result.code == 0
    assert lines(result.out) == ["Task/fix-bug (default): deleted", "1 resource deleted"]
    result = applied("delete", "task", "fix-bug")
    assert result.code == 1
    assert "Task 'fix-bug' not found in namespace 'default'" in result.err


def test_delete_files_in_any_order(applied: Wegent, resources: Path) -> None:
    # Everything the files define goes, dependents first; references among them do not block.
    data = applied("delete", "-f", str(resources), "-o", "json").json()
    assert data["ok"] is True
    kinds = [d["kind"] for d in data["deleted"]]
    assert kinds[:3] == ["Task", "Team", "Bot"]
    assert sorted(kinds[3:]) == ["Ghost", "Model", "Shell"]
    assert applied("get", "bots", "-A", "-o", "json").json()["items"] == []


def test_delete_files_refuses_when_something_else_refers(applied: Wegent, tmp_path: Path) -> None:
    shell = write(tmp_path / "shell.yaml", "kind: Shell\nmetadata: {name: chat}\nspec: {shellType: Chat}\n")
    result = applied("delete", "-f", str(shell))
    assert result.code == 1
    assert "Bot/coder (default) via spec.shellRef" in result.err
    result = applied("delete", "-f", str(shell), "--cascade", "-o", "json")
    assert result.code == 0
    assert len(result.json()["deleted"]) == 4


def test_delete_usage_errors(applied: Wegent, resources: Path) -> None:
    assert applied("delete").code == 2
    assert applied("delete", "bot").code == 2
    assert applied("delete", "bot", "coder", "-f", str(resources)).code == 2


# --- plan from the store ------------------------------------------------------------------------------------------


def test_plan_from_the_store(applied: Wegent) -> None:
    result = applied("plan", "--team", "dev", "--prompt", "Add a README")
    assert result.code == 0, result.err
    assert "default/coder" in result.out
    assert "gpt-4o-mini" in result.out
    plan = applied("plan", "--task", "fix-bug", "-o", "json").json()
    assert plan["prompt"] == "Fix the flaky test"
    result = applied("plan", "--team", "nope")
    assert result.code == 1
    assert "nope" in result.err


def test_plan_takes_files_or_the_store(applied: Wegent, resources: Path) -> None:
    assert applied("plan", "-f", str(resources), "--team", "dev").code == 2


# --- store selection ----------------------------------------------------------------------------------------------


def test_the_store_from_the_environment(
    run: Wegent, url: str, resources: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WEGENT_STORE", url)
    assert run("db", "upgrade").code == 0
    assert run("apply", "-f", str(resources)).code == 0
    assert run("get", "team", "dev", "-o", "json").json()["metadata"]["name"] == "dev"
    assert run("plan", "--team", "dev").code == 0
    assert run("get", "teams", "--store", "memory://").err.startswith("No teams found")  # --store wins


def test_the_embedded_default_is_created_and_migrated(run: Wegent, home: Path, resources: Path) -> None:
    assert not home.exists()
    result = run("apply", "-f", str(resources))
    assert result.code == 0, result.err
    assert (home / "wegent.db").exists()
    assert run("get", "team", "dev").code == 0
    current = run("db", "current", "-o", "json").json()
    assert current["state"] == "current"


def test_an_explicit_empty_database_needs_an_upgrade(run: Wegent, url: str, resources: Path) -> None:
    result = run("apply", "-f", str(resources), "--store", url)
    assert result.code == 1
    assert "wegent db upgrade" in result.err


def test_an_unknown_store_scheme(run: Wegent) -> None:
    result = run("get", "teams", "--store", "redis://localhost")
    assert result.code == 1
    assert "redis" in result.err


# --- db -----------------------------------------------------------------------------------------------------------


def test_db_current_and_upgrade_on_a_fresh_file(run: Wegent, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh' / 'new.db'}"
    before = run("db", "current", "--store", url, "-o", "json").json()
    assert before["current"] is None
    assert before["upgrade_needed"] is True
    assert before["head"]
    text = run("db", "current", "--store", url).out
    assert "wegent db upgrade" in text
    assert not (tmp_path / "fresh").exists()  # looking creates nothing

    result = run("db", "upgrade", "--store", url)
    assert result.code == 0, result.err
    assert f"to {before['head']}" in result.out
    after = run("db", "current", "--store", url, "-o", "json").json()
    assert after == {**before, "current": before["head"], "state": "current", "upgrade_needed": False}
    assert "up to date" in run("db", "current", "--store", url).out
    again = run("db", "upgrade", "--store", url, "-o", "json").json()
    assert again["from"] == again["to"] == before["head"]


def test_db_on_a_store_without_schema(run: Wegent) -> None:
    result = run("db", "current", "--store", "memory://")
    assert result.code == 1
    assert "the 'memory' store has no schema to manage" in result.err
    assert run("db").code == 2


def test_db_hides_the_password(run: Wegent) -> None:
    result = run("db", "current", "--store", "postgresql://wegent:hunter2@127.0.0.1:1/wegent")
    assert result.code == 1
    assert "hunter2" not in result.err
    assert "127.0.0.1" in result.err


# --- prune --------------------------------------------------------------------------------------------------------


def finished_tasks(url: str, statuses: list[str]) -> list[int]:
    from wegent_core import Plugins, TaskRecord

    store = Plugins.load().open_store(url)
    try:
        ids = []
        for status in statuses:
            task = store.create_task(TaskRecord(team="default/dev", prompt="p"))
            store.append_event(task.id, "task.status", {"status": status})
            if status != "PENDING":
                store.update_task(task.id, task.version, status=status)
            ids.append(task.id)
        return ids
    finally:
        close = getattr(store, "close", None)
        if close:
            close()


def test_prune(wegent: Wegent, url: str) -> None:
    ids = finished_tasks(url, ["COMPLETED", "FAILED", "COMPLETED", "PENDING"])
    result = wegent("prune")  # default: finished more than 30 days ago: none yet
    assert result.code == 0
    assert result.out.strip() == "pruned 0 tasks, 0 subtasks and 0 events (finished more than 30d ago)"

    result = wegent("prune", "--keep", "1")
    assert result.code == 0
    assert result.out.startswith("pruned 2 tasks, 0 subtasks and 2 events")
    data = wegent("prune", "--keep", "0", "-o", "json").json()
    assert (data["tasks"], data["events"]) == (1, 1)
    assert data["keep"] == 0

    from wegent_core import Plugins

    store = Plugins.load().open_store(url)
    assert [t.id for t in store.list_tasks()] == [ids[3]]  # the pending one is never pruned


def test_prune_durations(wegent: Wegent) -> None:
    for duration in ("90s", "15m", "12h", "30d"):
        result = wegent("prune", "--older-than", duration, "-o", "json")
        assert result.code == 0, result.err
    assert wegent("prune", "--older-than", "12h", "-o", "json").json()["older_than_seconds"] == 12 * 3600
    for bad in ("30", "3w", "-1d", "d"):
        assert wegent("prune", "--older-than", bad).code == 2
    assert wegent("prune", "--keep", "-1").code == 2


def test_prune_the_memory_store(run: Wegent) -> None:
    result = run("prune", "--store", "memory://", "-o", "json")
    assert result.code == 0, result.err
    assert result.json()["tasks"] == 0


# --- the installed script, in subprocesses ------------------------------------------------------------------------


def script(*argv: str, home: Path) -> subprocess.CompletedProcess[str]:
    if not WEGENT.exists():
        pytest.skip("the wegent console script is not installed (pip install -e .)")
    env = {k: v for k, v in os.environ.items() if not k.startswith("WEGENT_")}
    env["WEGENT_HOME"] = str(home)
    return subprocess.run([str(WEGENT), *argv], capture_output=True, text=True, timeout=60, env=env)


def test_script_apply_get_delete(home: Path, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'script.db'}"
    assert script("db", "upgrade", "--store", url, home=home).returncode == 0
    result = script("apply", "-f", str(UPSTREAM), "--store", url, "-o", "json", home=home)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["created"] == 11
    result = script("get", "te", "--store", url, "-o", "json", home=home)
    assert [item["metadata"]["name"] for item in json.loads(result.stdout)["items"]] == ["dev-team"]
    result = script("delete", "bot", "developer-bot", "--store", url, home=home)
    assert result.returncode == 1
    assert "Team/dev-team (default)" in result.stderr
    result = script("get", "bot", "nope", "--store", url, home=home)
    assert result.returncode == 1
    assert result.stderr.strip() == "error: Bot 'nope' not found in namespace 'default'"


def test_script_uses_the_embedded_default(home: Path) -> None:
    assert script("apply", "-f", str(UPSTREAM), home=home).returncode == 0
    assert (home / "wegent.db").exists()
    result = script("get", "teams", home=home)
    assert result.returncode == 0
    assert "dev-team" in result.stdout


@pytest.mark.parametrize(
    "argv",
    [["--help"], ["get", "--help"], ["apply", "--help"], ["db", "--help"], ["db", "current", "--help"], ["get"]],
)
def test_help_imports_nothing_heavy(argv: list[str]) -> None:
    code = textwrap.dedent(f"""
        import sys
        from wegent_server._cli import main
        main({argv!r})
        sys.stderr.write("\\nMODULES " + " ".join(sys.modules))
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    modules = set(result.stderr.rsplit("MODULES ", 1)[1].split())
    imported = sorted(m for m in modules for heavy in HEAVY if m == heavy or m.startswith(heavy + "."))
    assert imported == []
    assert "wegent_server._store_commands" not in modules


def test_help_lists_the_store_commands(run: Wegent) -> None:
    result = run("--help")
    for command in ("apply", "get", "describe", "delete", "db", "prune"):
        assert command in result.out
