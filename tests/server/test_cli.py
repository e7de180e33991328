"""The `wegent` command line: in-process through `main([...])` for most cases, and a few real runs of the installed
console script for exit codes, output that parses, and start-up that imports nothing heavy."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
import yaml

from wegent_server._cli import main

UPSTREAM = Path(__file__).parent.parent / "fixtures" / "upstream"
WEGENT = Path(sys.executable).parent / "wegent"
HEAVY = ("pydantic", "pydantic_core", "yaml", "anthropic", "openai", "google.genai", "wegent_core")


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text).lstrip())
    return path


BAD_TEAM = """
    apiVersion: agent.wecode.io/v1
    kind: Team
    metadata:
      name: dev
    spec:
      collaborationModel: solo
      members:
        - role: leader
          botRef:
            namespace: default
"""  # line 9 holds `botRef`, whose `name` is missing

BAD_GHOST = """
    kind: Ghost
    metadata:
      name: g
    spec:
      mcpServers: {}
"""


@pytest.fixture
def bad_team(tmp_path: Path) -> Path:
    return write(tmp_path / "team.yaml", BAD_TEAM)


# --- the parser ---------------------------------------------------------------------------------------------------


def test_help_lists_the_commands(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--help")
    assert code == 0
    for command in ("validate", "plan", "schema", "plugins", "version"):
        assert command in out


def test_no_command_prints_usage_and_fails(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys)
    assert code == 2
    assert "usage: wegent" in err


@pytest.mark.parametrize("argv", [["validate"], ["plan", "-f", "x.yaml"], ["nonsense"], ["version", "-o", "xml"]])
def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    code, _, err = run(capsys, *argv)
    assert code == 2
    assert "error:" in err


# --- validate -----------------------------------------------------------------------------------------------------


def test_validate_the_upstream_files(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "validate", "-f", str(UPSTREAM))
    assert code == 0
    assert out.strip().splitlines()[-1] == "2 files, 11 resources, no problems"


def test_validate_takes_repeated_and_multiple_paths(capsys: pytest.CaptureFixture[str]) -> None:
    files = [str(p) for p in sorted(UPSTREAM.glob("*.yaml"))]
    code, out, _ = run(capsys, "validate", "-f", *files)
    assert code == 0
    assert out.strip() == "2 files, 11 resources, no problems"
    code, out, _ = run(capsys, "validate", "-f", files[0], "-f", files[1])
    assert out.strip() == "2 files, 11 resources, no problems"


def test_validate_prints_file_line_path_and_message(capsys: pytest.CaptureFixture[str], bad_team: Path) -> None:
    code, out, _ = run(capsys, "validate", "-f", str(bad_team))
    assert code == 1
    first, summary = out.strip().splitlines()
    assert first.startswith(f"{bad_team}:9 spec.members[0].botRef.name: ")
    assert "required" in first
    assert summary == "1 file, 0 resources, 1 error"


def test_validate_reports_every_bad_document(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    write(tmp_path / "a.yaml", BAD_TEAM)
    shells = (UPSTREAM / "01-public-shells.yaml").read_text()
    write(tmp_path / "b.yaml", textwrap.dedent(BAD_GHOST) + "---\n" + shells)
    code, out, _ = run(capsys, "validate", "-f", str(tmp_path))
    assert code == 1
    lines = out.strip().splitlines()
    assert any(line.startswith(f"{tmp_path / 'a.yaml'}:9 ") for line in lines)
    assert any(line.startswith(f"{tmp_path / 'b.yaml'}:") and "spec.systemPrompt" in line for line in lines)
    assert lines[-1] == "2 files, 4 resources, 2 errors"


def test_validate_a_missing_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, _ = run(capsys, "validate", "-f", str(tmp_path / "nope.yaml"))
    assert code == 1
    assert "no such file" in out


def test_warnings_pass_unless_strict(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = write(
        tmp_path / "shell.yaml",
        """
        kind: Shell
        metadata:
          name: chat
        spec:
          shellType: Chat
          baseImag: python:3.12
        ---
        kind: ConfigMap
        metadata:
          name: unrelated
    """,
    )
    code, out, _ = run(capsys, "validate", "-f", str(path))
    assert code == 0
    assert "warning: kind 'ConfigMap' is not a wegent resource" in out
    assert out.strip().splitlines()[-1] == "1 file, 1 resource, 1 warning"

    code, out, _ = run(capsys, "validate", "--strict", "-f", str(path))
    assert code == 1
    assert f"{path}:6 spec.baseImag: warning: unknown field 'baseImag'" in out
    assert out.strip().splitlines()[-1] == "1 file, 1 resource, 2 warnings"


def test_validate_json(capsys: pytest.CaptureFixture[str], bad_team: Path) -> None:
    code, out, _ = run(capsys, "validate", "-f", str(bad_team), "-o", "json")
    assert code == 1
    report = json.loads(out)
    assert report["ok"] is False
    assert (report["files"], report["resources"], report["errors"], report["warnings"]) == (1, 0, 1, 0)
    [problem] = report["problems"]
    assert problem["source"] == str(bad_team)
    assert problem["line"] == 9
    assert problem["path"] == "spec.members[0].botRef.name"
    assert problem["severity"] == "error"

    code, out, _ = run(capsys, "validate", "-f", str(UPSTREAM), "-o", "json")
    assert code == 0
    assert json.loads(out)["ok"] is True


# --- plan ---------------------------------------------------------------------------------------------------------

RESOURCES = """
    kind: Ghost
    metadata: {name: coder-ghost}
    spec:
      systemPrompt: |
        You write small, tested changes.
        Never push to main.
      mcpServers:
        time: {command: uvx, args: [mcp-server-time]}
    ---
    kind: Shell
    metadata: {name: chat}
    spec: {shellType: Chat}
    ---
    kind: Model
    metadata: {name: gpt}
    spec:
      modelConfig:
        env: {model: openai, model_id: gpt-4o-mini, api_key: sk-literal-secret-123}
    ---
    kind: Model
    metadata: {name: other}
    spec:
      modelConfig:
        env: {model: claude, model_id: claude-haiku, api_key: "${ANTHROPIC_API_KEY}"}
    ---
    kind: Bot
    metadata: {name: coder}
    spec:
      ghostRef: {name: coder-ghost}
      shellRef: {name: chat}
      modelRef: {name: gpt}
    ---
    kind: Team
    metadata: {name: dev}
    spec:
      collaborationModel: solo
      members:
        - role: leader
          botRef: {name: coder}
    ---
    kind: Task
    metadata: {name: fix-bug}
    spec:
      prompt: Fix the flaky test
      teamRef: {name: dev}
"""


@pytest.fixture
def resources(tmp_path: Path) -> Path:
    pytest.importorskip("wegent_core._resolve")
    pytest.importorskip("wegent_core._memory_store")
    return write(tmp_path / "resources.yaml", RESOURCES)


def test_plan_table(capsys: pytest.CaptureFixture[str], resources: Path) -> None:
    code, out, _ = run(capsys, "plan", "-f", str(resources), "--team", "dev", "--prompt", "Add a README")
    assert code == 0
    for expected in (
        "default/dev",
        "solo",
        "leader",
        "default/coder",
        "Chat",
        "default/gpt",
        "openai",
        "gpt-4o-mini",
        "time (stdio)",
        "You write small, tested changes.",
        "Add a README",
    ):
        assert expected in out
    assert "Never push to main" not in out  # only the first line of the system prompt
    assert "sk-literal-secret-123" not in out


def test_plan_json_is_the_redacted_plan(capsys: pytest.CaptureFixture[str], resources: Path) -> None:
    code, out, _ = run(capsys, "plan", "-f", str(resources), "--team", "dev", "-o", "json")
    assert code == 0
    plan = json.loads(out)
    assert plan["team"] == "default/dev"
    assert plan["collaboration_model"] == "solo"
    [member] = plan["members"]
    assert member["model"]["model_id"] == "gpt-4o-mini"
    assert member["system_prompt"].startswith("You write small, tested changes.\nNever push")
    assert "sk-literal-secret-123" not in out


def test_plan_yaml_matches_json(capsys: pytest.CaptureFixture[str], resources: Path) -> None:
    _, as_json, _ = run(capsys, "plan", "-f", str(resources), "--team", "dev", "-o", "json")
    code, as_yaml, _ = run(capsys, "plan", "-f", str(resources), "--team", "dev", "-o", "yaml")
    assert code == 0
    assert yaml.safe_load(as_yaml) == json.loads(as_json)
    assert "sk-literal-secret-123" not in as_yaml


def test_plan_a_task(capsys: pytest.CaptureFixture[str], resources: Path) -> None:
    code, out, _ = run(capsys, "plan", "-f", str(resources), "--task", "fix-bug", "-o", "json")
    assert code == 0
    plan = json.loads(out)
    assert plan["task"] == "default/fix-bug"
    assert plan["prompt"] == "Fix the flaky test"


def test_plan_with_a_forced_model(capsys: pytest.CaptureFixture[str], resources: Path) -> None:
    argv = ["plan", "-f", str(resources), "--team", "dev", "-o", "json", "--model", "other"]
    _, out, _ = run(capsys, *argv)
    assert json.loads(out)["members"][0]["model"]["name"] == "gpt"  # the bot has its own model
    _, out, _ = run(capsys, *argv, "--force-model")
    assert json.loads(out)["members"][0]["model"]["name"] == "other"


def test_plan_options_that_apply_to_teams_only(capsys: pytest.CaptureFixture[str], resources: Path) -> None:
    code, _, err = run(capsys, "plan", "-f", str(resources), "--task", "fix-bug", "--prompt", "x")
    assert code == 2
    assert "--team" in err


def test_plan_an_unknown_team(capsys: pytest.CaptureFixture[str], resources: Path) -> None:
    code, out, err = run(capsys, "plan", "-f", str(resources), "--team", "nope")
    assert code == 1
    assert out == ""
    assert "nope" in err


def test_plan_with_invalid_files(capsys: pytest.CaptureFixture[str], resources: Path, bad_team: Path) -> None:
    code, out, err = run(capsys, "plan", "-f", str(resources), str(bad_team), "--team", "dev")
    assert code == 1
    assert out == ""
    assert f"{bad_team}:9 spec.members[0].botRef.name: " in err


def test_plan_errors_as_json(capsys: pytest.CaptureFixture[str], resources: Path) -> None:
    code, out, err = run(capsys, "plan", "-f", str(resources), "--team", "nope", "-o", "json")
    assert code == 1
    assert "nope" in err
    report = json.loads(out)
    assert report["error"] == "ResolutionError"
    assert report["problems"]


# --- schema, plugins, version -------------------------------------------------------------------------------------


def test_schema(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "schema")
    assert code == 0
    schema = json.loads(out)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    code, out, _ = run(capsys, "schema", "team", "--strict")
    assert code == 0
    assert json.loads(out)["additionalProperties"] is False


def test_schema_of_an_unknown_kind(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "schema", "Squad")
    assert code == 2
    assert out == ""
    assert "Squad" in err
    assert "Team" in err


def test_plugins(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("wegent_core._memory_store")
    monkeypatch.delenv("WEGENT_DISABLE_PLUGINS", raising=False)
    code, out, _ = run(capsys, "plugins")
    assert code == 0
    assert "memory-store" in out
    assert "memory" in out
    code, out, _ = run(capsys, "plugins", "-o", "json")
    [builtin] = [p for p in json.loads(out)["plugins"] if p["name"] == "memory-store"]
    assert builtin["distribution"] == "wegent"
    assert builtin["error"] is None
    assert "register_stores" in builtin["hooks"]
    assert [s["name"] for s in builtin["registered"]["stores"]] == ["memory"]


def test_plugins_blocked(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEGENT_DISABLE_PLUGINS", "memory-store")
    code, out, _ = run(capsys, "plugins", "-o", "json")
    assert code == 0
    report = json.loads(out)
    assert "memory-store" not in [p["name"] for p in report["plugins"]]
    assert report["blocked"] == ["memory-store"]


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    python = ".".join(map(str, sys.version_info[:3]))
    code, out, _ = run(capsys, "version")
    assert code == 0
    assert f"wegent {metadata.version('wegent')}" in out
    assert python in out
    code, out, _ = run(capsys, "version", "-o", "json")
    data = json.loads(out)
    assert data["wegent"] == metadata.version("wegent")
    assert data["python"] == python


# --- the installed script, in subprocesses ------------------------------------------------------------------------


def script(*argv: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    if not WEGENT.exists():
        pytest.skip("the wegent console script is not installed (pip install -e .)")
    env = {k: v for k, v in os.environ.items() if k != "WEGENT_DISABLE_PLUGINS"}
    return subprocess.run([str(WEGENT), *argv], capture_output=True, text=True, timeout=60, env=env, **kwargs)


def test_script_version_json() -> None:
    result = script("version", "-o", "json")
    assert result.returncode == 0
    assert json.loads(result.stdout)["wegent"] == metadata.version("wegent")


def test_script_validate(bad_team: Path) -> None:
    result = script("validate", "-f", str(bad_team))
    assert result.returncode == 1
    assert result.stdout.startswith(f"{bad_team}:9 spec.members[0].botRef.name: ")
    result = script("validate", "-f", str(UPSTREAM), "-o", "json")
    assert result.returncode == 0
    assert json.loads(result.stdout)["resources"] == 11


def test_script_usage_error() -> None:
    result = script("validate")
    assert result.returncode == 2
    assert "-f" in result.stderr


def test_script_schema_json() -> None:
    result = script("schema", "-o", "json")
    assert result.returncode == 0
    assert "$defs" in json.loads(result.stdout)


def test_python_dash_m() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "wegent_server", "version"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0
    assert result.stdout.startswith("wegent ")


@pytest.mark.parametrize("argv", [["--help"], ["version"], ["validate", "--help"]])
def test_fast_commands_import_nothing_heavy(argv: list[str]) -> None:
    code = textwrap.dedent(f"""
        import sys
        from wegent_server._cli import main
        main({argv!r})
        sys.stderr.write("\\nMODULES " + " ".join(sys.modules))
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    modules = set(result.stderr.rsplit("MODULES ", 1)[1].split())
    imported = sorted(m for m in modules for heavy in HEAVY if m == heavy or m.startswith(heavy + "."))
    assert imported == []


def test_plan_table_shows_pipeline_stages(capsys: pytest.CaptureFixture[str]) -> None:
    examples = Path(__file__).parent.parent.parent / "examples"
    code, out, _ = run(
        capsys, "plan", "-f", str(examples / "common"), str(examples / "pipeline"), "--team", "spec-to-code"
    )
    assert code == 0
    stages = [line.split(":", 1)[1].strip() for line in out.splitlines() if line.strip().startswith("stage:")]
    assert len(stages) == 3
    assert stages[0].startswith("waits for confirmation")
    assert stages[-1] == "continues on its own; hands over: none"
