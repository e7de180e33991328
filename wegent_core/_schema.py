"""JSON Schema of the resource kinds, for editors (yaml-language-server) and for CI checks.

The schema describes the YAML as people write it, so it follows what the loader accepts rather than what pydantic would
print by default: keys by alias (with every alias a field accepts, such as `runtime` for `shellType`), `apiVersion`
optional, `kind` required, label values and version strings that YAML reads as booleans or numbers, enum values in any
case with surrounding spaces (as upstream writes `"pipeline "`), and empty (`null`) label maps. `strict=True` closes
every object of our models (`additionalProperties: false`) so typos are flagged; free-form maps stay open.

    # yaml-language-server: $schema=./wegent.schema.json
"""

from __future__ import annotations

import copy
import functools
import re
from collections.abc import Callable
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any, Union

from pydantic import AliasChoices, BaseModel, Field, TypeAdapter
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue

from . import _resources
from ._resources import API_VERSION, KINDS, ShellSpec

if TYPE_CHECKING:
    from pydantic_core import core_schema  # pydantic's own; wegent_core depends on pydantic only

DRAFT = "https://json-schema.org/draft/2020-12/schema"


def json_schema(kind: str | None = None, *, strict: bool = False) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of one kind (`"Team"`, case-insensitive), or of any wegent document if None.

    Raises `ValueError` for an unknown kind. Each call returns a fresh dict that the caller may change.
    """
    name = None if kind is None else _kind_name(kind)
    return copy.deepcopy(_cached(name, strict))


def _kind_name(kind: str) -> str:
    by_lower = {k.lower(): k for k in KINDS}
    try:
        return by_lower[kind.strip().lower()]
    except KeyError:
        raise ValueError(f"unknown kind {kind!r} (kinds: {', '.join(KINDS)})") from None


@functools.cache
def _cached(kind: str | None, strict: bool) -> dict[str, Any]:
    generator = _StrictGenerator if strict else _Generator
    if kind is not None:
        schema = KINDS[kind].model_json_schema(by_alias=True, mode="validation", schema_generator=generator)
    else:
        schema = _any_document(generator)
    return {"$schema": DRAFT, **schema}


def _any_document(generator: type[GenerateJsonSchema]) -> dict[str, Any]:
    # The loader also takes a list of documents (a JSON array, or a YAML document that is a list).
    union = Annotated[Union[tuple(KINDS.values())], Field(discriminator="kind")]  # noqa: UP007 (dynamic union)
    one = TypeAdapter(union).json_schema(by_alias=True, mode="validation", schema_generator=generator)
    defs = one.pop("$defs", {})
    defs["Resource"] = one
    ref = {"$ref": "#/$defs/Resource"}
    return {
        "title": "wegent resource",
        "description": f"A wegent resource ({', '.join(KINDS)}), or a list of them.",
        "anyOf": [ref, {"type": "array", "items": ref}],
        "$defs": defs,
    }


# --- the generator ------------------------------------------------------------------------------------------------

# Validators of _resources that widen what the YAML may hold, and how the schema widens to match.
_SCALARS = [{"type": "string"}, {"type": "number"}, {"type": "boolean"}]


def _widen_to_scalar(inner: JsonSchemaValue, _: Any) -> JsonSchemaValue:
    return {"anyOf": _SCALARS, **_annotations(inner)}


def _allow_null(inner: JsonSchemaValue, _: Any) -> JsonSchemaValue:
    return {"anyOf": [_without_annotations(inner), {"type": "null"}], **_annotations(inner)}


def _any_case(inner: JsonSchemaValue, core: Any) -> JsonSchemaValue:
    values = _enum_values(core)
    if not values:
        return inner
    # Keep the plain enum first so editors still offer its values; ECMA regexes have no (?i), hence the classes.
    pattern = r"^\s*(" + "|".join(_caseless(v) for v in values) + r")\s*$"
    loose = {"type": "string", "pattern": pattern}
    return {"anyOf": [_without_annotations(inner), loose], **_annotations(inner)}


_BEFORE: dict[str, Callable[[JsonSchemaValue, Any], JsonSchemaValue]] = {
    "_label_value": _widen_to_scalar,
    "_number_to_str": _widen_to_scalar,
    "_none_to_empty": _allow_null,
    "_config_none": _allow_null,
    "_normalise_enum": _any_case,
}


class _Generator(GenerateJsonSchema):
    strict = False

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False  # "Shelltype" and the like help nobody; the key says it

    def function_before_schema(self, schema: core_schema.BeforeValidatorFunctionSchema) -> JsonSchemaValue:
        inner = super().function_before_schema(schema)
        widen = _BEFORE.get(getattr(schema["function"]["function"], "__name__", ""))
        return widen(inner, schema["schema"]) if widen else inner

    def model_schema(self, schema: core_schema.ModelSchema) -> JsonSchemaValue:
        out = super().model_schema(schema)
        cls = schema["cls"]
        if issubclass(cls, _resources.Schema) and out.get("type") == "object":
            _add_alias_choices(cls, out)
            if issubclass(cls, _resources.Resource):
                _envelope(out)
            if cls is ShellSpec:
                _shell_type_or_base(out)
            if self.strict:
                out["additionalProperties"] = False
        return out


class _StrictGenerator(_Generator):
    strict = True


def _envelope(out: JsonSchemaValue) -> None:
    props = out["properties"]
    props["apiVersion"] = {"enum": [API_VERSION], "default": API_VERSION}
    out["required"] = ["kind", *(r for r in out.get("required", []) if r != "kind")]


def _add_alias_choices(cls: type[BaseModel], out: JsonSchemaValue) -> None:
    # Validation mode shows only the first alias of AliasChoices; YAML may use any of them (`runtime` = `shellType`).
    props = out.get("properties", {})
    for field in cls.model_fields.values():
        alias = field.validation_alias
        if not isinstance(alias, AliasChoices):
            continue
        names = [c for c in alias.choices if isinstance(c, str)]
        main = next((n for n in names if n in props), None)
        for other in names:
            if main and other not in props:
                props[other] = {**props[main], "description": f"Alias of `{main}`."}


def _shell_type_or_base(out: JsonSchemaValue) -> None:
    # Mirrors ShellSpec's model validator: a shell needs a type, directly or inherited.
    keys = ["shellType", "runtime", "baseShellRef"]
    out["anyOf"] = [{"required": [k], "properties": {k: {"type": "string", "minLength": 1}}} for k in keys]


def _enum_values(core: Any) -> list[str]:
    cls = core.get("cls") if isinstance(core, dict) else None
    if isinstance(cls, type) and issubclass(cls, Enum):
        return [str(m.value) for m in cls]
    return []


def _caseless(value: str) -> str:
    return "".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else re.escape(c) for c in value)


_ANNOTATION_KEYS = ("default", "description", "title", "examples")


def _annotations(schema: JsonSchemaValue) -> dict[str, Any]:
    return {k: v for k, v in schema.items() if k in _ANNOTATION_KEYS}


def _without_annotations(schema: JsonSchemaValue) -> JsonSchemaValue:
    return {k: v for k, v in schema.items() if k not in _ANNOTATION_KEYS}
