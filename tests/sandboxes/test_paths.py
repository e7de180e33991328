"""`workspace_path`, which every sandbox's file operations go through: whatever the path, the result is a normalised
absolute path, and inside the workspace unless the caller asked for outside."""

from __future__ import annotations

import posixpath

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wegent_core import SandboxError, workspace_path

SEGMENTS = st.sampled_from(["..", ".", "", "a", "b.txt", "workspace", "etc", "...", "..a", " "])
PATHS = st.one_of(
    st.builds(
        lambda lead, parts: lead + "/".join(parts),
        st.sampled_from(["", "/", "//", "/workspace/"]),
        st.lists(SEGMENTS, max_size=8),
    ),
    st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=30),
)


def _normalised(result: str) -> bool:
    return result.startswith("/") and "//" not in result and all(p not in (".", "..") for p in result.split("/"))


@given(PATHS)
def test_never_escapes_the_workspace(path: str) -> None:
    try:
        result = workspace_path(path)
    except SandboxError:
        # refused only when the path really leads elsewhere
        normal = "/" + posixpath.normpath(posixpath.join("/workspace", path)).lstrip("/")
        assert normal != "/workspace"
        assert not normal.startswith("/workspace/")
        return
    assert result == "/workspace" or result.startswith("/workspace/")
    assert _normalised(result)


@given(PATHS)
def test_outside_when_asked_is_still_normalised(path: str) -> None:
    result = workspace_path(path, outside_workspace=True)
    assert _normalised(result)
    inside = result == "/workspace" or result.startswith("/workspace/")
    if inside:
        assert workspace_path(path) == result


@given(st.lists(st.sampled_from(["a", "b.txt", ".", "...", "x y"]), min_size=1, max_size=6))
def test_a_relative_path_without_dotdot_stays_inside(parts: list[str]) -> None:
    assert workspace_path("/".join(parts)).startswith("/workspace")


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("a/b", "/workspace/a/b"),
        (".", "/workspace"),
        ("", "/workspace"),
        ("/workspace/x/../y", "/workspace/y"),
        ("a/../b/./c", "/workspace/b/c"),
    ],
)
def test_examples(path: str, expected: str) -> None:
    assert workspace_path(path) == expected


@pytest.mark.parametrize("path", ["../x", "a/../../x", "/etc/passwd", "/workspace/../etc", "/workspacex/y", "/"])
def test_refused(path: str) -> None:
    with pytest.raises(SandboxError, match="outside the workspace"):
        workspace_path(path)
