"""Where secrets live in resources: the one definition of the values a store encrypts and every output redacts.

Secrets: a Model's `modelConfig.env` (and flat `modelConfig`) values under credential-like keys or keys listed in
`modelConfig.secretKeys`, and credential headers in `DEFAULT_HEADERS`; a Ghost's or Skill's MCP server `env` values
under credential-like keys and credential headers (`headers`, or upstream's `auth`). `${ENV}` and `${{path}}`
placeholders are not secrets: they are kept and shown as written.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import Any

from ._plan import REDACTED, is_secret_header, is_secret_key, only_placeholders
from ._resolve import unwrap_mcp_servers
from ._resources import Ghost, Model, Resource, Skill

# Encrypted values (written by a store) look like `enc:v1:<key id>:<data>`; any version counts as encrypted.
_ENCRYPTED = re.compile(r"enc:v[0-9]+:")


def is_encrypted(value: Any) -> bool:
    return isinstance(value, str) and _ENCRYPTED.match(value) is not None


# --- which values are secrets -------------------------------------------------------------------------------------

_Slot = tuple[dict[Any, Any], Any, str]  # (container, key, path for messages)


def holds_secret(value: Any) -> bool:
    """A plaintext secret: a non-blank string that is not encrypted and not made only of `${ENV}` placeholders."""
    if not isinstance(value, str) or not value.strip() or is_encrypted(value):
        return False
    return not only_placeholders(value)


def _secret_slots(resource: Resource) -> list[_Slot]:
    """Every place in the resource that holds, or may hold, a secret value: the one definition of secret locations."""
    if isinstance(resource, Model):
        found = _model_slots(resource.spec.config)
    elif isinstance(resource, Ghost | Skill):
        found = _mcp_slots(resource.spec.mcp_servers)
    else:
        return []
    unique = {(id(container), key): (container, key, path) for container, key, path in found}
    return list(unique.values())


def _model_slots(config: dict[str, Any]) -> Iterator[_Slot]:
    listed = config.get("secretKeys")
    marked = {k for k in listed if isinstance(k, str)} if isinstance(listed, list) else set()
    env = config.get("env")
    # The flat form (`api_key` straight under modelConfig, as upstream's CLI template writes) is an env as well.
    places = [(env, "spec.modelConfig.env")] if isinstance(env, dict) else []
    places.append((config, "spec.modelConfig"))
    for mapping, path in places:
        for key in mapping:
            if isinstance(key, str) and (is_secret_key(key) or key in marked):
                yield mapping, key, f"{path}.{key}"
        yield from _header_slots(mapping, "DEFAULT_HEADERS", path)


def _mcp_slots(raw: Any) -> Iterator[_Slot]:
    for name, server in unwrap_mcp_servers(raw).items():
        if not isinstance(server, dict):
            continue
        path = f"spec.mcpServers.{name}"
        env = server.get("env")
        if isinstance(env, dict):
            yield from ((env, k, f"{path}.env.{k}") for k in env if isinstance(k, str) and is_secret_key(k))
        for key in ("headers", "auth"):
            yield from _header_slots(server, key, path)


def _header_slots(owner: dict[str, Any], key: str, path: str) -> Iterator[_Slot]:
    headers = owner.get(key)
    if isinstance(headers, dict):
        yield from ((headers, name, f"{path}.{key}.{name}") for name in headers if is_secret_header(name))
    elif isinstance(headers, str) and (is_encrypted(headers) or _json_has_secret(headers)):
        # A JSON string is sealed whole: re-serialising it would not give back the string as written.
        yield owner, key, f"{path}.{key}"


def _json_has_secret(text: str) -> bool:
    try:
        headers = json.loads(text)
    except ValueError:
        return False
    return isinstance(headers, dict) and any(is_secret_header(k) and holds_secret(v) for k, v in headers.items())


def map_secrets(resource: Resource, change: Callable[[Any, str], Any]) -> Resource:
    """`change(value, path)` applied to every secret slot, in a copy (the resource itself when it has none):
    the argument is never mutated."""
    if not _secret_slots(resource):
        return resource  # nothing to change: no copy (stores call this on every write and read)
    copy = resource.clone()
    for container, key, path in _secret_slots(copy):
        container[key] = change(container[key], path)
    return copy


def redact_resource(resource: Resource) -> Resource:
    """A copy with every secret, encrypted or plaintext, shown as `***`; placeholders are shown as written."""
    return map_secrets(resource, lambda value, _: REDACTED if is_encrypted(value) or holds_secret(value) else value)
