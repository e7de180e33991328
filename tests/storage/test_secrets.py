"""Secrets at rest: the SecretBox, where its key comes from, and which values seal/unseal/redact touch."""

from __future__ import annotations

import base64
import hashlib
import json
import multiprocessing
import os
import re
import secrets
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import wegent_core
from wegent_core import Ghost, Model, Resource, Skill, WegentError, redact_resource
from wegent_storage import _secrets
from wegent_storage._secrets import (
    GENERATE_KEY,
    SecretBox,
    SecretKeyError,
    is_encrypted,
    key_id,
    seal,
    unseal,
)

UPSTREAM = Path(__file__).parent.parent / "fixtures" / "upstream" / "team-example.yaml"
POSIX = pytest.mark.skipif(os.name == "nt", reason="POSIX permissions")
PLACEHOLDERS = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*\}|\$\{\{[^{}]*\}\}")


def new_key() -> bytes:
    return secrets.token_bytes(32)


def key_text(key: bytes) -> str:
    return base64.urlsafe_b64encode(key).decode()


@pytest.fixture
def box() -> SecretBox:
    return SecretBox(new_key())


def model(config: dict[str, Any], name: str = "m") -> Model:
    return Model.model_validate({"metadata": {"name": name}, "spec": {"modelConfig": config}})


def ghost(mcp_servers: Any) -> Ghost:
    return Ghost.model_validate({"metadata": {"name": "g"}, "spec": {"systemPrompt": "hi", "mcpServers": mcp_servers}})


# --- the box ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("plain", ["sk-live-123", "", "ünïcødé ✓ 🔑", "x" * 10_000, "enc:v1 not really"])
def test_round_trip(box: SecretBox, plain: str) -> None:
    sealed = box.encrypt(plain)
    assert is_encrypted(sealed)
    assert sealed.startswith(f"enc:v1:{box.key_id}:")
    assert plain not in sealed or plain == ""
    assert box.decrypt(sealed) == plain


def test_key_id_is_the_start_of_the_sha256() -> None:
    key = b"k" * 32
    assert key_id(key) == hashlib.sha256(key).hexdigest()[:8]
    assert SecretBox(key).key_id == key_id(key)


def test_nonces_differ(box: SecretBox) -> None:
    first, second = box.encrypt("same"), box.encrypt("same")
    assert first != second
    assert box.decrypt(first) == box.decrypt(second) == "same"


def test_wrong_key_names_both_keys(box: SecretBox) -> None:
    other = SecretBox(new_key())
    with pytest.raises(SecretKeyError) as caught:
        other.decrypt(box.encrypt("sk-live-123"))
    message = str(caught.value)
    assert f"encrypted with key {box.key_id} while the current key is {other.key_id}" in message
    assert "WEGENT_SECRET_KEY" in message
    assert "secret.key" in message
    assert isinstance(caught.value, WegentError)


def _flip(value: str, index: int) -> str:
    prefix, data = value.rsplit(":", 1)
    raw = bytearray(base64.urlsafe_b64decode(data))
    raw[index] ^= 1
    return f"{prefix}:{base64.urlsafe_b64encode(bytes(raw)).decode()}"


@pytest.mark.parametrize("where", ["nonce", "ciphertext", "tag", "truncated", "not base64"])
def test_tampered_value_is_refused(box: SecretBox, where: str) -> None:
    sealed = box.encrypt("sk-live-123")
    tampered = {
        "nonce": _flip(sealed, 0),
        "ciphertext": _flip(sealed, 13),
        "tag": _flip(sealed, -1),
        "truncated": sealed[: len(f"enc:v1:{box.key_id}:") + 8],
        "not base64": sealed[:-4] + "!!!!",
    }[where]
    assert tampered != sealed
    with pytest.raises(SecretKeyError, match="modified"):
        box.decrypt(tampered)


def test_unknown_format_version(box: SecretBox) -> None:
    with pytest.raises(SecretKeyError, match="format v9"):
        box.decrypt(f"enc:v9:{box.key_id}:AAAA")


def test_decrypting_plaintext_is_a_caller_error(box: SecretBox) -> None:
    with pytest.raises(ValueError, match="not an encrypted value"):
        box.decrypt("sk-live-123")


def test_repr_hides_the_key() -> None:
    key = new_key()
    text = repr(SecretBox(key))
    assert key_id(key) in text
    assert key_text(key) not in text


def test_key_must_be_32_bytes() -> None:
    with pytest.raises(SecretKeyError, match="32 bytes"):
        SecretBox(b"short")


def test_previous_keys_decrypt_and_refresh_re_encrypts() -> None:
    old_key, new = new_key(), new_key()
    old = SecretBox(old_key)
    rotated = SecretBox(new, previous_keys=iter([old_key]))  # any iterable
    written = old.encrypt("sk-live-123")
    assert rotated.decrypt(written) == "sk-live-123"
    refreshed = rotated.refresh(written)
    assert refreshed.startswith(f"enc:v1:{rotated.key_id}:")
    assert SecretBox(new).decrypt(refreshed) == "sk-live-123"
    current = rotated.encrypt("x")
    assert rotated.refresh(current) == current
    with pytest.raises(SecretKeyError, match=rf"previous keys: {old.key_id}"):
        rotated.decrypt(SecretBox(new_key()).encrypt("x"))


# --- where the key comes from -------------------------------------------------------------------------------------


def test_key_from_the_environment(tmp_path: Path) -> None:
    key = new_key()
    box = SecretBox.from_environment(tmp_path, environ={"WEGENT_SECRET_KEY": key_text(key)})
    assert box.key_id == key_id(key)
    assert box.source == "WEGENT_SECRET_KEY"
    assert not (tmp_path / "secret.key").exists()  # no key file when the variable is set
    unpadded = SecretBox.from_environment(tmp_path, environ={"WEGENT_SECRET_KEY": key_text(key).rstrip("=") + "\n"})
    assert unpadded.key_id == box.key_id


@pytest.mark.parametrize(
    "value",
    [
        "",
        "too-short",
        base64.urlsafe_b64encode(secrets.token_bytes(16)).decode(),
        base64.urlsafe_b64encode(secrets.token_bytes(48)).decode(),
        base64.b64encode(b"\xfb" * 32).decode(),  # standard base64 ('+', '/'), not urlsafe
        secrets.token_hex(32),  # 64 hex characters
        key_text(new_key())[:-2] + "!=",
    ],
)
def test_invalid_environment_key_is_explained(tmp_path: Path, value: str) -> None:
    with pytest.raises(SecretKeyError) as caught:
        SecretBox.from_environment(tmp_path, environ={"WEGENT_SECRET_KEY": value})
    message = str(caught.value)
    assert "WEGENT_SECRET_KEY" in message
    assert "urlsafe base64" in message
    assert "32" in message
    assert GENERATE_KEY in message
    assert not value or value not in message  # the (possibly real) key is not echoed
    assert not (tmp_path / "secret.key").exists()


def test_generate_key_command_makes_a_valid_key(tmp_path: Path) -> None:
    code = GENERATE_KEY.removeprefix('python -c "').removesuffix('"')
    printed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    SecretBox.from_environment(tmp_path, environ={"WEGENT_SECRET_KEY": printed})


@POSIX
def test_key_file_created_private_and_reused(tmp_path: Path) -> None:
    data_dir = tmp_path / "new" / "data"
    first = SecretBox.from_environment(data_dir, environ={})
    path = data_dir / "secret.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert first.source == f"the key file {path}"
    second = SecretBox.from_environment(data_dir, environ={})
    assert second.key_id == first.key_id
    assert second.decrypt(first.encrypt("sk-live-123")) == "sk-live-123"
    assert sorted(p.name for p in data_dir.iterdir()) == ["secret.key"]  # no temporary file left behind


@POSIX
def test_key_file_private_despite_a_permissive_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        SecretBox.from_environment(tmp_path, environ={})
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "secret.key").stat().st_mode) == 0o600


@POSIX
@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o620])
def test_key_file_readable_by_others_is_refused(tmp_path: Path, mode: int) -> None:
    SecretBox.from_environment(tmp_path, environ={})
    path = tmp_path / "secret.key"
    path.chmod(mode)
    with pytest.raises(SecretKeyError) as caught:
        SecretBox.from_environment(tmp_path, environ={})
    assert str(path) in str(caught.value)
    assert f"chmod 600 {path}" in str(caught.value)


def test_invalid_key_file_is_explained(tmp_path: Path) -> None:
    path = tmp_path / "secret.key"
    path.write_text("not a key\n")
    path.chmod(0o600)
    with pytest.raises(SecretKeyError, match=rf"the key file {re.escape(str(path))} must be the urlsafe base64"):
        SecretBox.from_environment(tmp_path, environ={})


def test_empty_key_file_is_explained(tmp_path: Path) -> None:
    path = tmp_path / "secret.key"
    path.touch(mode=0o600)
    with pytest.raises(SecretKeyError, match="is empty"):
        _secrets._read_key_file(path, attempts=2)


def _no_links(*args: Any) -> None:
    raise PermissionError("no hard links on this filesystem")


def test_key_file_without_hard_links(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "link", _no_links)
    first = SecretBox.from_environment(tmp_path, environ={})
    assert SecretBox.from_environment(tmp_path, environ={}).key_id == first.key_id
    assert sorted(p.name for p in tmp_path.iterdir()) == ["secret.key"]


def test_environment_key_wins_over_the_key_file(tmp_path: Path) -> None:
    from_file = SecretBox.from_environment(tmp_path, environ={})
    key = new_key()
    from_env = SecretBox.from_environment(tmp_path, environ={"WEGENT_SECRET_KEY": key_text(key)})
    assert from_env.key_id == key_id(key) != from_file.key_id


def test_previous_keys_from_the_environment(tmp_path: Path) -> None:
    old1, old2, new = new_key(), new_key(), new_key()
    environ = {"WEGENT_SECRET_KEY": key_text(new), "WEGENT_SECRET_KEY_PREVIOUS": f"{key_text(old1)}, {key_text(old2)}"}
    box = SecretBox.from_environment(tmp_path, environ=environ)
    for old in (old1, old2):
        assert box.decrypt(SecretBox(old).encrypt("v")) == "v"
    with pytest.raises(SecretKeyError, match="WEGENT_SECRET_KEY_PREVIOUS"):
        SecretBox.from_environment(tmp_path, environ={**environ, "WEGENT_SECRET_KEY_PREVIOUS": "nope"})


def _first_use(data_dir: str, barrier: Any, results: Any) -> None:
    barrier.wait()
    box = SecretBox.from_environment(Path(data_dir), environ={})
    results.put((box.key_id, box.encrypt(f"from {os.getpid()}")))


@pytest.mark.skipif(sys.platform != "linux", reason="uses fork to start the racing processes quickly")
@pytest.mark.parametrize("round_", range(3))
@pytest.mark.parametrize("hard_links", [True, False])
def test_concurrent_first_use_agrees_on_one_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, round_: int, hard_links: bool
) -> None:
    if not hard_links:  # the forked processes inherit the patch
        monkeypatch.setattr(os, "link", _no_links)
    context = multiprocessing.get_context("fork")
    barrier, results = context.Barrier(4), context.Queue()
    processes = [context.Process(target=_first_use, args=(str(tmp_path), barrier, results)) for _ in range(4)]
    for process in processes:
        process.start()
    found = [results.get(timeout=30) for _ in processes]
    for process in processes:
        process.join(timeout=30)
        assert process.exitcode == 0
    final = SecretBox.from_environment(tmp_path, environ={})
    assert {kid for kid, _ in found} == {final.key_id}
    assert all(final.decrypt(value).startswith("from ") for _, value in found)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["secret.key"]


# --- what is a secret: Models -------------------------------------------------------------------------------------


def test_model_env_secrets_sealed_and_unsealed(box: SecretBox) -> None:
    config = {
        "env": {
            "model": "openai",
            "model_id": "gpt-4o",
            "base_url": "https://api.example.com/v1",
            "api_key": "sk-live-AAA",
            "ANTHROPIC_AUTH_TOKEN": "tok-live-BBB",
            "DIFY_API_KEY": "app-live-CCC",
            "password": "hunter2-DDD",
            "temperature": 0.2,
            "GITHUB_TOKEN": None,
        },
        "bind_model": "",
    }
    original = model(config)
    before = wegent_core.dump(original)
    sealed = seal(original, box)
    assert wegent_core.dump(original) == before  # the argument is not mutated
    env = sealed.spec.config["env"]
    for key in ("api_key", "ANTHROPIC_AUTH_TOKEN", "DIFY_API_KEY", "password"):
        assert is_encrypted(env[key])
    for key in ("model", "model_id", "base_url", "temperature", "GITHUB_TOKEN"):
        assert env[key] == config["env"][key]
    _assert_no_plaintext(sealed, ["sk-live-AAA", "tok-live-BBB", "app-live-CCC", "hunter2-DDD"])
    assert unseal(sealed, box) == original
    assert unseal(sealed, box).spec.config == config


def test_secret_keys_marks_more_keys(box: SecretBox) -> None:
    config = {"env": {"MY_PAT": "pat-live-EEE", "REGION": "eu"}, "secretKeys": ["MY_PAT", "NOT_THERE"]}
    sealed = seal(model(config), box)
    assert is_encrypted(sealed.spec.config["env"]["MY_PAT"])
    assert sealed.spec.config["env"]["REGION"] == "eu"
    assert sealed.spec.config["secretKeys"] == ["MY_PAT", "NOT_THERE"]
    assert unseal(sealed, box).spec.config == config
    assert redact_resource(model(config)).spec.config["env"] == {"MY_PAT": "***", "REGION": "eu"}


def test_flat_model_config_is_an_env(box: SecretBox) -> None:
    # Upstream's CLI template writes api_key straight under modelConfig; resolution reads it as the env.
    config = {"model": "openai", "model_id": "gpt-4o", "api_key": "sk-live-FFF"}
    sealed = seal(model(config), box)
    assert is_encrypted(sealed.spec.config["api_key"])
    assert sealed.spec.config["model_id"] == "gpt-4o"
    assert unseal(sealed, box).spec.config == config


@pytest.mark.parametrize("level", ["modelConfig", "env"])
def test_default_headers_mapping(box: SecretBox, level: str) -> None:
    headers = {
        "Authorization": "Bearer live-GGG",
        "x-api-key": "live-HHH",
        "X-Auth-Token": "live-III",
        "X-Request-Source": "wegent",
        "Proxy-Authorization": "${PROXY_AUTH}",
    }
    config: dict[str, Any] = {"env": {"model": "openai"}}
    (config if level == "modelConfig" else config["env"])["DEFAULT_HEADERS"] = headers
    original = model(config)
    sealed = seal(original, box)
    stored = (sealed.spec.config if level == "modelConfig" else sealed.spec.config["env"])["DEFAULT_HEADERS"]
    assert all(is_encrypted(stored[k]) for k in ("Authorization", "x-api-key", "X-Auth-Token"))
    assert stored["X-Request-Source"] == "wegent"
    assert stored["Proxy-Authorization"] == "${PROXY_AUTH}"
    _assert_no_plaintext(sealed, ["live-GGG", "live-HHH", "live-III"])
    assert unseal(sealed, box) == original
    shown = redact_resource(sealed)
    shown_headers = (shown.spec.config if level == "modelConfig" else shown.spec.config["env"])["DEFAULT_HEADERS"]
    assert shown_headers == {**headers, "Authorization": "***", "x-api-key": "***", "X-Auth-Token": "***"}


def test_default_headers_json_string_sealed_whole(box: SecretBox) -> None:
    text = '{"Authorization":  "Bearer live-JJJ", "X-Team": "core"}'  # odd spacing survives the round trip
    original = model({"env": {"model": "openai", "DEFAULT_HEADERS": text}})
    sealed = seal(original, box)
    assert is_encrypted(sealed.spec.config["env"]["DEFAULT_HEADERS"])
    _assert_no_plaintext(sealed, ["live-JJJ"])
    assert unseal(sealed, box).spec.config["env"]["DEFAULT_HEADERS"] == text
    assert redact_resource(original).spec.config["env"]["DEFAULT_HEADERS"] == "***"


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ('{"Authorization": "Bearer ${TOKEN}"}', True),  # text around the placeholder: not placeholder-only
        ('{"X-Team": "core"}', False),
        ('{"Authorization": "${AUTH_HEADER}"}', False),
        ('{"Authorization": ""}', False),
        ("not json {", False),
        ("[1, 2]", False),
    ],
)
def test_default_headers_json_string_cases(box: SecretBox, text: str, secret: bool) -> None:
    original = model({"env": {"DEFAULT_HEADERS": text}})
    sealed = seal(original, box).spec.config["env"]["DEFAULT_HEADERS"]
    assert is_encrypted(sealed) == secret
    assert unseal(seal(original, box), box) == original
    if not secret:
        assert sealed == text
        assert redact_resource(original) == original


def test_secret_key_listing_default_headers_is_not_sealed_twice(box: SecretBox) -> None:
    text = '{"Authorization": "Bearer live-KKK"}'
    original = model({"env": {"DEFAULT_HEADERS": text}, "secretKeys": ["DEFAULT_HEADERS"]})
    sealed = seal(original, box)
    assert box.decrypt(sealed.spec.config["env"]["DEFAULT_HEADERS"]) == text


# --- what is a secret: MCP servers --------------------------------------------------------------------------------


MCP = {
    "github": {
        "command": "docker",
        "args": ["run", "-e", "GITHUB_PERSONAL_ACCESS_TOKEN", "ghcr.io/github/github-mcp-server"],
        "env": {"GITHUB_PERSONAL_ACCESS_TOKEN": "ghp_live_LLL", "GITHUB_TOOLSETS": "repos", "CI_TOKEN": "${CI_TOKEN}"},
    },
    "search": {
        "type": "streamable-http",
        "url": "https://mcp.example.com/mcp",
        "headers": {"Authorization": "Bearer live-MMM", "X-Client": "wegent", "X-Task": "${{task_token}}"},
        "timeout": 30,
    },
    "legacy": {"type": "sse", "url": "https://old.example.com/sse", "auth": {"x-api-key": "live-NNN"}},
    "...": None,
}
MCP_SECRETS = ["ghp_live_LLL", "live-MMM", "live-NNN"]


@pytest.mark.parametrize(
    "servers", [MCP, {"mcpServers": MCP}, {"mcp_servers": {"mcpServers": MCP}}], ids=["flat", "nested", "twice"]
)
def test_ghost_mcp_secrets(box: SecretBox, servers: dict[str, Any]) -> None:
    original = ghost(servers)
    before = wegent_core.dump(original)
    sealed = seal(original, box)
    assert wegent_core.dump(original) == before
    _assert_no_plaintext(sealed, MCP_SECRETS)
    inner = sealed.spec.mcp_servers
    while "github" not in inner:
        (inner,) = inner.values()
    assert is_encrypted(inner["github"]["env"]["GITHUB_PERSONAL_ACCESS_TOKEN"])
    assert inner["github"]["env"]["GITHUB_TOOLSETS"] == "repos"
    assert inner["github"]["env"]["CI_TOKEN"] == "${CI_TOKEN}"
    assert inner["github"]["args"] == MCP["github"]["args"]
    assert is_encrypted(inner["search"]["headers"]["Authorization"])
    assert inner["search"]["headers"]["X-Client"] == "wegent"
    assert inner["search"]["headers"]["X-Task"] == "${{task_token}}"
    assert is_encrypted(inner["legacy"]["auth"]["x-api-key"])
    assert unseal(sealed, box) == original
    shown = wegent_core.dump(redact_resource(original))
    assert all(secret not in shown for secret in MCP_SECRETS)
    assert "${CI_TOKEN}" in shown
    assert "${{task_token}}" in shown


def test_skill_mcp_secrets(box: SecretBox) -> None:
    original = Skill.model_validate(
        {"metadata": {"name": "s"}, "spec": {"description": "d", "mcpServers": {"github": MCP["github"]}}}
    )
    sealed = seal(original, box)
    _assert_no_plaintext(sealed, ["ghp_live_LLL"])
    assert unseal(sealed, box) == original


def test_upstream_fixture(box: SecretBox) -> None:
    resources = list(wegent_core.load(UPSTREAM))
    sealed = [seal(r, box) for r in resources]
    text = wegent_core.dump(sealed)
    assert "ghp_xxxxx" not in text
    assert "ANTHROPIC_API_KEY: xxxxxx" not in text
    by_kind = {r.kind: r for r in sealed}
    assert is_encrypted(by_kind["Ghost"].spec.mcp_servers["github"]["env"]["GITHUB_PERSONAL_ACCESS_TOKEN"])
    env = by_kind["Model"].spec.config["env"]
    assert is_encrypted(env["ANTHROPIC_API_KEY"])
    assert env["ANTHROPIC_MODEL"] == "claude-4.1-opus"
    assert [unseal(r, box) for r in sealed] == resources
    for kind in ("Shell", "Bot", "Team", "Workspace", "Task"):
        assert by_kind[kind] == next(r for r in resources if r.kind == kind)
    shown = wegent_core.dump([redact_resource(r) for r in sealed])
    assert "GITHUB_PERSONAL_ACCESS_TOKEN: '***'" in shown
    assert "ANTHROPIC_API_KEY: '***'" in shown
    assert "enc:v1:" not in shown


# --- placeholders, idempotence, errors ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value", ["${OPENAI_API_KEY}", " ${A} ", "${A}${B}", "${A} ${B}", "${{task_token}}", "", "   ", 42, True, None]
)
def test_placeholders_and_non_secrets_stay_as_written(box: SecretBox, value: Any) -> None:
    original = model({"env": {"api_key": value}})
    assert seal(original, box) == original
    assert redact_resource(original) == original


@pytest.mark.parametrize("value", ["Bearer ${TOKEN}", "${A}-literal", "$OPENAI_API_KEY", "${lower-case}x"])
def test_text_around_placeholders_is_a_secret(box: SecretBox, value: str) -> None:
    sealed = seal(model({"env": {"api_key": value}}), box)
    assert is_encrypted(sealed.spec.config["env"]["api_key"])


def test_seal_is_idempotent(box: SecretBox) -> None:
    once = seal(model({"env": {"api_key": "sk-live-OOO"}}), box)
    assert seal(once, box) == once


def test_seal_re_encrypts_previous_keys_and_refuses_unknown_ones() -> None:
    old_key = new_key()
    old = SecretBox(old_key)
    rotated = SecretBox(new_key(), previous_keys=[old_key])
    written = seal(model({"env": {"api_key": "sk-live-PPP"}}), old)
    resealed = seal(written, rotated)
    assert resealed.spec.config["env"]["api_key"].startswith(f"enc:v1:{rotated.key_id}:")
    assert unseal(resealed, rotated).spec.config["env"]["api_key"] == "sk-live-PPP"
    with pytest.raises(SecretKeyError, match=f"encrypted with key {old.key_id}"):
        seal(written, SecretBox(new_key()))


def test_unseal_with_the_wrong_key_names_the_resource_and_field(box: SecretBox) -> None:
    sealed = seal(model({"env": {"api_key": "sk-live-QQQ"}}, name="gpt"), box)
    other = SecretBox(new_key())
    with pytest.raises(SecretKeyError) as caught:
        unseal(sealed, other)
    message = str(caught.value)
    assert message.startswith("Model default/gpt spec.modelConfig.env.api_key: ")
    assert box.key_id in message
    assert other.key_id in message
    assert "sk-live-QQQ" not in message


def test_unseal_of_a_tampered_resource(box: SecretBox) -> None:
    sealed = seal(model({"env": {"api_key": "sk-live-RRR"}}), box)
    sealed.spec.config["env"]["api_key"] = _flip(sealed.spec.config["env"]["api_key"], 20)
    with pytest.raises(SecretKeyError, match="modified"):
        unseal(sealed, box)


def test_other_kinds_are_left_untouched(box: SecretBox) -> None:
    shell = wegent_core.loads("kind: Shell\nmetadata: {name: s}\nspec: {shellType: Chat}\n")[0]
    before = shell.clone()
    assert seal(shell, box) == before
    assert unseal(shell, box) == before
    assert shell == before


def _assert_no_plaintext(resource: Resource, secrets_: list[str]) -> None:
    for form in ("yaml", "json"):
        text = wegent_core.dump(resource, format=form)
        for secret in secrets_:
            assert secret not in text, f"{secret!r} in the {form} dump"


# --- properties ---------------------------------------------------------------------------------------------------

SECRET_NAMES = ["api_key", "apiKey", "OPENAI_API_KEY", "ANTHROPIC_AUTH_TOKEN", "GITHUB_TOKEN", "DIFY_API_KEY"]
SECRET_NAMES += ["password", "secret", "db_password", "CLIENT_SECRET"]
PLAIN_NAMES = ["model", "model_id", "base_url", "ANTHROPIC_MODEL", "region", "tokens", "token_limit", "keys"]
names = st.one_of(st.sampled_from(SECRET_NAMES + PLAIN_NAMES), st.text(max_size=12))
placeholder = st.from_regex(r"\$\{[A-Za-z_][A-Za-z0-9_]{0,8}\}", fullmatch=True)
texts = st.one_of(
    st.text(),
    placeholder,
    st.lists(placeholder, min_size=1, max_size=3).map("".join),
    st.tuples(st.text(max_size=5), placeholder, st.text(max_size=5)).map("".join),
    st.sampled_from(["", " ", "sk-live", "Bearer ${T}"]),
).filter(lambda v: not re.match(r"enc:v[0-9]+:", v))  # the one shape a plaintext value cannot take
values = st.one_of(texts, st.integers(), st.booleans(), st.none())
PROPERTY_BOX = SecretBox(secrets.token_bytes(32))


def _expected_secret(value: Any) -> bool:
    return isinstance(value, str) and bool(PLACEHOLDERS.sub("", value).strip())


@given(env=st.dictionaries(names, values, max_size=8), data=st.data())
def test_seal_unseal_round_trip_property(env: dict[str, Any], data: st.DataObject) -> None:
    box = PROPERTY_BOX
    marked = data.draw(st.lists(st.sampled_from(sorted(env)), unique=True) if env else st.just([]))
    config: dict[str, Any] = {"env": env, "secretKeys": marked} if marked else {"env": env}
    original = model(config)
    sealed = seal(original, box)
    assert unseal(sealed, box) == original
    assert original.spec.config["env"] == env  # not mutated
    sealed_env = sealed.spec.config["env"]
    for key, value in env.items():
        secret_name = bool(re.search(r"(^|_)(api_?key|auth_?token|secret|password|token)$", key, re.I))
        if (secret_name or key in marked) and _expected_secret(value):
            assert is_encrypted(sealed_env[key])
            assert box.decrypt(sealed_env[key]) == value
        else:
            assert sealed_env[key] == value
    shown = redact_resource(sealed).spec.config["env"]
    assert all(v == "***" for k, v in shown.items() if is_encrypted(sealed_env[k]))
    assert "enc:v1:" not in json.dumps(shown)
