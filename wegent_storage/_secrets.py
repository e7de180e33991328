"""Secrets at rest: authenticated encryption of the credentials inside Model, Ghost and Skill specs.

A secret is stored as `enc:v1:<key-id>:<urlsafe base64 of nonce + AES-256-GCM ciphertext>`. The key id (first 8 hex
characters of sha256(key)) tells a value written with another key apart from a damaged one, so a wrong key gives a
clear error instead of garbage. Which values are secrets is decided in one place, `wegent_core._secret_fields`,
shared by `seal`, `unseal` and every redacted output. See docs/secrets.md.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
import secrets
import stat
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from wegent_core._errors import WegentError
from wegent_core._resources import Resource
from wegent_core._secret_fields import holds_secret, is_encrypted, map_secrets

KEY_ENV_VAR = "WEGENT_SECRET_KEY"
PREVIOUS_KEYS_ENV_VAR = "WEGENT_SECRET_KEY_PREVIOUS"
KEY_FILE_NAME = "secret.key"
GENERATE_KEY = 'python -c "import secrets, base64; print(base64.urlsafe_b64encode(secrets.token_bytes(32)).decode())"'

_VERSION = "v1"
_NONCE_BYTES = 12
_TAG_BYTES = 16
_KEY_TEXT = re.compile(r"[A-Za-z0-9_-]{43}=?")
_V1_VALUE = re.compile(r"enc:v1:([0-9a-f]{8}):([A-Za-z0-9_-]+={0,2})")


class SecretKeyError(WegentError):
    """The secret key is missing, malformed or not private, or a stored secret cannot be decrypted with it."""


# --- the box ------------------------------------------------------------------------------------------------------


def key_id(key: bytes) -> str:
    """The public identifier of a key: the first 8 hex characters of its sha256."""
    return hashlib.sha256(key).hexdigest()[:8]


class SecretBox:
    """Encrypts and decrypts single string values with AES-256-GCM and a random 96-bit nonce per value.

    `previous_keys` are accepted for decryption only, so a store keeps working while its secrets are rotated.
    """

    def __init__(self, key: bytes, *, previous_keys: Iterable[bytes] = (), source: str = "a key given in code") -> None:
        previous = list(previous_keys)
        for k in (key, *previous):
            if len(k) != 32:
                raise SecretKeyError(f"a secret key must be 32 bytes (AES-256), got {len(k)}")
        self.key_id = key_id(key)
        self.source = source  # where the key came from, for error messages
        self._ciphers = {key_id(k): AESGCM(k) for k in previous}
        self._ciphers[self.key_id] = AESGCM(key)

    @classmethod
    def from_environment(cls, data_dir: str | Path, *, environ: Mapping[str, str] | None = None) -> SecretBox:
        """The key from WEGENT_SECRET_KEY, else from `<data_dir>/secret.key` (created, owner-only, on first use)."""
        environ = os.environ if environ is None else environ
        previous = [
            _parse_key(text, PREVIOUS_KEYS_ENV_VAR)
            for text in environ.get(PREVIOUS_KEYS_ENV_VAR, "").split(",")
            if text.strip()
        ]
        text = environ.get(KEY_ENV_VAR)
        if text is not None:
            return cls(_parse_key(text, KEY_ENV_VAR), previous_keys=previous, source=KEY_ENV_VAR)
        path = Path(data_dir) / KEY_FILE_NAME
        return cls(_key_from_file(path), previous_keys=previous, source=f"the key file {path}")

    def __repr__(self) -> str:
        return f"SecretBox(key_id={self.key_id!r}, source={self.source!r})"

    def encrypt(self, value: str) -> str:
        header = f"enc:{_VERSION}:{self.key_id}:"
        nonce = os.urandom(_NONCE_BYTES)
        # The header is authenticated too, so changing the key id or version is detected as tampering.
        sealed = self._ciphers[self.key_id].encrypt(nonce, value.encode(), header.encode())
        return header + base64.urlsafe_b64encode(nonce + sealed).decode()

    def decrypt(self, value: str) -> str:
        if not is_encrypted(value):
            raise ValueError("not an encrypted value (expected enc:v1:<key-id>:<data>)")
        match = _V1_VALUE.fullmatch(value)
        if match is None:
            raise SecretKeyError(_unknown_format(value))
        vid, data = match.groups()
        cipher = self._ciphers.get(vid)
        if cipher is None:
            raise SecretKeyError(self._wrong_key(vid))
        try:
            raw = base64.urlsafe_b64decode(data)
        except (binascii.Error, ValueError):
            raise SecretKeyError(_modified(vid)) from None
        if len(raw) < _NONCE_BYTES + _TAG_BYTES:
            raise SecretKeyError(_modified(vid))
        try:
            plain = cipher.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], value[: match.start(2)].encode())
        except InvalidTag:
            raise SecretKeyError(_modified(vid)) from None
        return plain.decode()

    def refresh(self, value: str) -> str:
        """An encrypted value, checked, and re-encrypted with the current key if a previous key wrote it."""
        plain = self.decrypt(value)
        return value if value.startswith(f"enc:{_VERSION}:{self.key_id}:") else self.encrypt(plain)

    def _wrong_key(self, vid: str) -> str:
        previous = sorted(set(self._ciphers) - {self.key_id})
        also = f" (previous keys: {', '.join(previous)})" if previous else ""
        return (
            f"the value was encrypted with key {vid} while the current key is {self.key_id}{also}, from "
            f"{self.source}. {KEY_ENV_VAR}, or the key file {KEY_FILE_NAME} in the store's data directory, must be "
            "the one the store was written with (see docs/secrets.md)"
        )


def _modified(vid: str) -> str:
    return (
        f"the encrypted value (key {vid}) was modified or damaged: its authentication tag does not match. "
        "Restore the store from a backup, or apply the resource again with the plaintext secret"
    )


def _unknown_format(value: str) -> str:
    parts = value.split(":", 3)
    if parts[1] != _VERSION:
        return f"the value is encrypted in format {parts[1]}, which this version of wegent does not know; upgrade it"
    return _modified(parts[2][:8] if len(parts) > 2 else "?")


# --- where the key comes from -------------------------------------------------------------------------------------


def _parse_key(text: str, where: str) -> bytes:
    text = text.strip()
    if _KEY_TEXT.fullmatch(text):
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    found = "it is empty" if not text else f"its value ({len(text)} characters) is not"
    raise SecretKeyError(
        f"{where} must be the urlsafe base64 encoding of 32 random bytes (44 characters ending in '='); "
        f"{found}. Generate a key with:\n  {GENERATE_KEY}"
    )


def _key_from_file(path: Path) -> bytes:
    if not path.exists():
        key = _create_key_file(path)
        if key is not None:
            return key
    return _read_key_file(path)


def _create_key_file(path: Path) -> bytes | None:
    """A new key, written to `path` atomically; None when another process created the file first."""
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(32)
    data = base64.urlsafe_b64encode(key) + b"\n"
    # Write a private temporary file, then hard-link it into place: the link either publishes a complete key or fails
    # because another process won the race, and the key file is never visible half-written or with loose permissions.
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    _write_new_file(tmp, data)
    try:
        os.link(tmp, path)
    except FileExistsError:
        return None
    except OSError:  # a filesystem without hard links: create in place, and readers wait for the content
        try:
            _write_new_file(path, data)
        except FileExistsError:
            return None
    finally:
        tmp.unlink(missing_ok=True)
    _sync_directory(path.parent)
    return key


def _write_new_file(path: Path, data: bytes) -> None:
    # O_EXCL with mode 0600: the file never exists with wider permissions, not even for an instant.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o600)
    with os.fdopen(fd, "wb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())


def _sync_directory(directory: Path) -> None:
    # Losing the key file after a crash would make every stored secret unreadable: make its directory entry durable.
    if os.name == "nt":
        return
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some filesystems refuse fsync on directories; the key file itself is already synced
    finally:
        os.close(fd)


def _read_key_file(path: Path, attempts: int = 100) -> bytes:
    for _ in range(attempts):
        _check_private(path)
        text = path.read_bytes().decode("ascii", errors="replace")
        if text.strip():
            return _parse_key(text, f"the key file {path}")
        time.sleep(0.02)  # created in place by another process that has not written it yet
    raise SecretKeyError(
        f"the key file {path} is empty: delete it if nothing was ever stored with it, else restore it from a backup"
    )


def _check_private(path: Path) -> None:
    if os.name == "nt":  # permissions are ACLs there; st_mode says nothing useful
        return
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise SecretKeyError(
            f"the key file {path} is accessible by group or others (mode {mode:04o}); it must be private to its "
            f"owner: run `chmod 600 {path}`"
        )


# --- seal, unseal, redact -----------------------------------------------------------------------------------------


def seal(resource: Resource, box: SecretBox) -> Resource:
    """A copy with every plaintext secret encrypted (what a store writes). Placeholders stay as written."""

    def encrypt(value: Any) -> Any:
        if is_encrypted(value):
            return box.refresh(value)
        return box.encrypt(value) if holds_secret(value) else value

    return map_secrets(resource, _in_context(resource, encrypt))


def unseal(resource: Resource, box: SecretBox) -> Resource:
    """A copy with every encrypted secret decrypted (what a store hands out)."""
    return map_secrets(
        resource, _in_context(resource, lambda value: box.decrypt(value) if is_encrypted(value) else value)
    )


def _in_context(resource: Resource, change: Callable[[Any], Any]) -> Callable[[Any, str], Any]:
    def apply(value: Any, path: str) -> Any:
        try:
            return change(value)
        except SecretKeyError as error:
            raise SecretKeyError(f"{resource} {path}: {error}") from None

    return apply
