"""SKILL.md folders as Skill resources (upstream reference 1.8 and 6.3): the frontmatter is a YAML mapping between
`---` lines, `name` comes from it or from the folder, the body is `spec.prompt`; bad files are located by line; the
loader reads SKILL.md only and never imports what a skill folder holds."""

from __future__ import annotations

import string
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wegent_core._errors import ValidationError
from wegent_core._loader import dump, load, loads
from wegent_core._resources import Skill

GOOD = """\
---
description: Draw diagrams as Mermaid code.
displayName: Diagrams
version: 1.0
author: ada
tags: [diagram, mermaid]
bindShells: [Chat, ClaudeCode]
mcpServers:
  render: {command: mermaid-mcp}
---

# Diagrams

Write a `mermaid` block.
"""


def skill_folder(root: Path, folder: str, text: str) -> Path:
    path = root / folder
    path.mkdir(parents=True, exist_ok=True)
    (path / "SKILL.md").write_text(text, encoding="utf-8")
    return path


def only_skill(resources: list) -> Skill:
    (skill,) = resources
    assert isinstance(skill, Skill)
    return skill


def problems_of(path: Path, **kwargs: bool) -> list[str]:
    with pytest.raises(ValidationError) as info:
        load(path, **kwargs)
    return [str(p) for p in info.value.problems]


# --- good files -----------------------------------------------------------------------------------------------------


def test_a_skill_folder_is_a_skill_named_after_the_folder(tmp_path: Path) -> None:
    folder = skill_folder(tmp_path, "mermaid-diagram", GOOD)
    resources = load(folder, strict=True)
    skill = only_skill(resources)
    assert skill.name == "mermaid-diagram"
    assert skill.namespace == "default"
    spec = skill.spec
    assert spec.description == "Draw diagrams as Mermaid code."
    assert (spec.display_name, spec.version, spec.author) == ("Diagrams", "1.0", "ada")
    assert spec.tags == ["diagram", "mermaid"]
    assert spec.bind_shells == ["Chat", "ClaudeCode"]
    assert spec.mcp_servers == {"render": {"command": "mermaid-mcp"}}
    assert spec.prompt == "# Diagrams\n\nWrite a `mermaid` block."
    assert resources.warnings == []
    assert resources.sources == [str(folder / "SKILL.md")]


def test_the_frontmatter_name_wins_over_the_folder_and_the_file_itself_loads(tmp_path: Path) -> None:
    folder = skill_folder(tmp_path, "folder-name", "---\nname: real-name\ndescription: d\n---\nbody\n")
    assert only_skill(load(folder)).name == "real-name"
    assert only_skill(load(folder / "SKILL.md")).name == "real-name"
    assert only_skill(load(str(folder / "SKILL.md"))).spec.prompt == "body"


def test_a_folder_of_skill_folders_loads_them_with_the_yaml_files(tmp_path: Path) -> None:
    skill_folder(tmp_path, "b-skill", "---\ndescription: b\n---\nB\n")
    skill_folder(tmp_path, "a-skill", "---\ndescription: a\n---\nA\n")
    (tmp_path / "not-a-skill").mkdir()
    (tmp_path / "not-a-skill" / "ghost.yaml").write_text("kind: Ghost\nmetadata: {name: nested}\nspec: {}\n")
    (tmp_path / "ghost.yaml").write_text(
        "kind: Ghost\nmetadata: {name: g}\nspec: {systemPrompt: hi, skills: [a-skill]}\n"
    )
    resources = load(tmp_path, strict=True)
    assert [str(r) for r in resources] == ["Skill default/a-skill", "Skill default/b-skill", "Ghost default/g"]


def test_a_skill_folder_yields_only_its_skill(tmp_path: Path) -> None:
    """The other files of a skill folder are the skill's (templates, examples): the loader leaves them alone."""
    folder = skill_folder(tmp_path, "s", "---\ndescription: d\n---\n")
    (folder / "template.yaml").write_text("kind: Ghost\nmetadata: {name: stray}\nspec: {systemPrompt: x}\n")
    skill = only_skill(load(folder))
    assert skill.spec.prompt is None  # an empty body is no prompt


def test_the_loader_never_imports_or_runs_what_a_skill_folder_holds(tmp_path: Path) -> None:
    sentinel = tmp_path / "ran"
    code = f"open({str(sentinel)!r}, 'w').close()\n"
    folder = skill_folder(
        tmp_path,
        "probe",
        "---\ndescription: d\nprovider: {module: provider, class: Probe}\n"
        "tools: [{name: t, provider: provider}]\n---\n",
    )
    for name in ("provider.py", "__init__.py", "setup.py", "conftest.py"):
        (folder / name).write_text(code)
    skill = only_skill(load(tmp_path))
    assert skill.spec.provider is not None
    assert skill.spec.provider.module == "provider"
    assert not sentinel.exists()
    assert "provider" not in sys.modules or not str(getattr(sys.modules["provider"], "__file__", "")).startswith(
        str(tmp_path)
    )


def test_crlf_bom_and_dots_closing_line_are_read(tmp_path: Path) -> None:
    text = "\ufeff---\r\ndescription: windows\r\n...\r\nline one\r\nline two\r\n"
    (tmp_path / "SKILL.md").write_bytes(text.encode("utf-8"))
    skill = only_skill(load(tmp_path))
    assert skill.name == tmp_path.name
    assert skill.spec.description == "windows"
    assert skill.spec.prompt == "line one\nline two"  # read with universal newlines


def test_unknown_frontmatter_keys_are_kept_and_strict_mode_says_where(tmp_path: Path) -> None:
    folder = skill_folder(tmp_path, "s", "---\ndescription: d\nlicense: MIT\npreload: true\n---\nbody\n")
    skill = only_skill(load(folder))
    assert skill.spec.model_extra == {"license": "MIT", "preload": True}
    found = [str(w) for w in load(folder, strict=True).warnings]
    assert found == [
        f"{folder / 'SKILL.md'}:3 spec.license: warning: unknown field 'license'",
        f"{folder / 'SKILL.md'}:4 spec.preload: warning: unknown field 'preload'",
    ]
    assert "license: MIT" in dump(skill)  # a round trip keeps them


# --- bad files ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("# Just markdown\n", ":1: SKILL.md must start with frontmatter"),
        ("", ":1: SKILL.md must start with frontmatter"),
        ("---\ndescription: d\nbody without end\n", ":1: the SKILL.md frontmatter has no closing `---` line"),
        ("---\ndescription: d\ntags: [a, b\n---\n", ":4: invalid YAML"),
        ("---\ndescription: d\n  bad: indent\n---\n", ":3: invalid YAML"),
        ("---\n- a\n- b\n---\n", ":2: the SKILL.md frontmatter must be a YAML mapping, got a list"),
        ("---\njust text\n---\n", ":2: the SKILL.md frontmatter must be a YAML mapping, got a string"),
        ("---\nname: ok\n---\nbody\n", ":2 spec.description: field required"),
        ("---\n---\nbody\n", ":1 spec.description: field required"),
        ("---\ndescription: d\n\n\nversion: [1]\n---\n", ":5 spec.version: input should be a valid string"),
        ("---\ndescription: d\nname: ' padded '\n---\n", ":3 metadata.name: must not start or end with whitespace"),
        ("---\ndescription: d\nvalue: !!python/object:os.system x\n---\n", ":3: invalid YAML"),
        ("---\ndescription: d\nbindShells: Chat\n---\n", ":3 spec.bindShells: input should be a valid list"),
    ],
)
def test_bad_skill_files_name_the_file_and_the_line(tmp_path: Path, text: str, expected: str) -> None:
    folder = skill_folder(tmp_path, "s", text)
    found = problems_of(folder)
    assert len(found) == 1, found
    assert found[0].startswith(str(folder / "SKILL.md") + expected), found[0]


def test_every_bad_skill_of_a_folder_is_reported_and_the_good_ones_load(tmp_path: Path) -> None:
    skill_folder(tmp_path, "good", "---\ndescription: fine\n---\n")
    skill_folder(tmp_path, "no-front", "text\n")
    skill_folder(tmp_path, "no-description", "---\nauthor: x\n---\n")
    with pytest.raises(ValidationError) as info:
        load(tmp_path)
    assert sorted(Path(p.source or "").parent.name for p in info.value.problems) == ["no-description", "no-front"]
    assert [r.name for r in info.value.loaded] == ["good"]


def test_a_prompt_in_the_frontmatter_is_kept_when_the_body_is_empty(tmp_path: Path) -> None:
    folder = skill_folder(tmp_path, "s", "---\ndescription: d\nprompt: from the frontmatter\n---\n\n")
    assert only_skill(load(folder)).spec.prompt == "from the frontmatter"
    skill_folder(tmp_path, "s", "---\ndescription: d\nprompt: from the frontmatter\n---\nfrom the body\n")
    assert only_skill(load(folder)).spec.prompt == "from the body"


# --- round trips ----------------------------------------------------------------------------------------------------

# NEL and the Unicode line and paragraph separators are line breaks to YAML 1.1, which a parser folds inside a
# scalar: a frontmatter writer must escape them, and these tests write plain YAML.
_NOT_IN_YAML_TEXT = "\x85\u2028\u2029"
_TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters=_NOT_IN_YAML_TEXT), max_size=40)
_WORD = st.text(string.ascii_letters + string.digits + "-_ ", min_size=1, max_size=20).map(str.strip).filter(bool)
_FRONTMATTER = st.fixed_dictionaries(
    {"description": _TEXT},
    optional={
        "name": _WORD.filter(lambda w: w not in (".", "..")),
        "displayName": _TEXT,
        "version": _WORD,
        "author": _TEXT,
        "tags": st.lists(_WORD, max_size=3),
        "bindShells": st.lists(st.sampled_from(["Chat", "Agno", "ClaudeCode", "Dify"]), unique=True, max_size=4),
        "visible": st.booleans(),
        "config": st.dictionaries(_WORD, st.integers() | _TEXT, max_size=3),
    },
)
_BODY = st.text(st.characters(blacklist_categories=("Cs",)), max_size=200)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(front=_FRONTMATTER, body=_BODY, as_json=st.booleans())
def test_frontmatter_round_trips_through_skill_md_and_back_through_yaml(front: dict, body: str, as_json: bool) -> None:
    rendered = (
        yaml.safe_dump(front, default_flow_style=as_json, allow_unicode=as_json, sort_keys=False) if front else ""
    )
    with tempfile.TemporaryDirectory() as root:
        folder = skill_folder(Path(root), "from-folder", f"---\n{rendered}---\n{body}")
        skill = only_skill(load(folder, strict=True))
    spec = skill.spec
    assert skill.name == front.get("name", "from-folder")
    assert spec.description == front["description"]
    assert spec.display_name == front.get("displayName")
    assert spec.version == front.get("version")
    assert spec.author == front.get("author")
    assert spec.tags == front.get("tags")
    assert spec.bind_shells == front.get("bindShells")
    assert spec.visible == front.get("visible", True)
    assert spec.config == front.get("config")
    assert spec.prompt == (body.replace("\r\n", "\n").replace("\r", "\n").strip() or None)  # universal newlines
    again = only_skill(loads(dump(skill), strict=True))
    assert again == skill


def test_a_skill_md_file_loaded_through_yaml_text_is_not_special() -> None:
    """Only files named SKILL.md are read as skills: the same text given to `loads` is YAML (and not a resource)."""
    text = textwrap.dedent(GOOD)
    with pytest.raises(ValidationError):
        loads(text)
