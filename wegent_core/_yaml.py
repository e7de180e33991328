"""Safe, fast YAML in and out.

Reading uses the safe loader only: no tag can construct a Python object, so no document can make the library import
or call code. Values keep to what JSON can carry: timestamps stay the strings they were written as (typed fields parse
them, free-form fields keep them exactly), and binary, set and ordered-map values are refused. Documents are built
from libyaml's node tree by a small constructor of our own, several times faster than PyYAML's general one; the
rare forms it does not handle (merge keys) go through PyYAML's.

Line numbers are only worked out when something is wrong, by walking a document's node tree (`line_of`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any

import yaml
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

MAX_DEPTH = 100  # no resource nests this deep; libyaml (in C, unbounded) and pydantic fail on far deeper data
MAX_EXPANDED_NODES = 1_000_000  # bounds YAML alias expansion ("billion laughs")

_STR = "tag:yaml.org,2002:str"
_SEQ = "tag:yaml.org,2002:seq"
_MAP = "tag:yaml.org,2002:map"
_MERGE = "tag:yaml.org,2002:merge"


class YamlError(ValueError):
    """A problem in the YAML text: `line` is 1-based, or None."""

    def __init__(self, message: str, line: int | None) -> None:
        super().__init__(message)
        self.line = line


class _Construct:
    """Builds plain data from nodes; mixed into both the libyaml and the pure-Python loader."""

    _tags: dict[str, str] = {}  # plain scalar -> resolved tag; keys such as `name` recur in every document

    def resolve(self, kind: type[Node], value: Any, implicit: tuple[bool, bool]) -> str:
        # PyYAML's resolver tries its regular expressions on every scalar; the answer depends only on the text.
        if kind is ScalarNode:
            if not implicit[0]:
                return _STR  # quoted and block scalars are strings
            tag = self._tags.get(value)
            if tag is None:
                tag = super().resolve(kind, value, implicit)  # type: ignore[misc]
                if len(value) <= 64 and len(self._tags) < 10_000:
                    self._tags[value] = tag
            return tag
        return _SEQ if kind is SequenceNode else _MAP

    def descend_resolver(self, *_: Any) -> None:  # no path resolvers are registered: skip the bookkeeping
        pass

    def ascend_resolver(self) -> None:
        pass

    def build(self, node: Node) -> Any:
        self._memo: dict[int, Any] = {}  # aliases are the same node object: build each once, as PyYAML does
        try:
            return self._build(node)
        finally:
            self.constructed_objects: dict[Node, Any] = {}  # PyYAML's own memo, used by the fallback path
            self.recursive_objects: dict[Node, Any] = {}

    def _build(self, node: Node) -> Any:
        kind = type(node)
        if kind is ScalarNode and node.tag == _STR:
            return node.value
        known = self._memo.get(id(node))
        if known is not None:
            return known
        if kind is SequenceNode and node.tag == _SEQ:
            items: list[Any] = []
            self._memo[id(node)] = items
            items.extend(self._build(child) for child in node.value)
            return items
        if kind is MappingNode and node.tag == _MAP and not any(k.tag == _MERGE for k, _ in node.value):
            mapping: dict[Any, Any] = {}
            self._memo[id(node)] = mapping
            for key_node, value_node in node.value:
                key = self._build(key_node)
                try:
                    mapping[key] = self._build(value_node)
                except TypeError:
                    raise ConstructorError(None, None, "found an unhashable key", key_node.start_mark) from None
            return mapping
        return self.construct_object(node, deep=True)  # type: ignore[attr-defined]


def _refuse(loader: yaml.SafeLoader, node: Node) -> Any:
    raise ConstructorError(None, None, f"values tagged {node.tag} are not supported", node.start_mark)


def _finite_float(loader: yaml.SafeLoader, node: Node) -> float:
    value = yaml.SafeLoader.construct_yaml_float(loader, node)
    if not math.isfinite(value):  # JSON cannot carry .inf and .nan: a dump would silently turn them into null
        raise ConstructorError(None, None, f"non-finite numbers ({node.value}) are not supported", node.start_mark)
    return value


class _PythonLoader(_Construct, yaml.SafeLoader):
    """Pure-Python parser: slower, but its recursion ends in a RecursionError where libyaml's would crash."""


_PythonLoader.add_constructor("tag:yaml.org,2002:timestamp", yaml.SafeLoader.construct_yaml_str)
_PythonLoader.add_constructor("tag:yaml.org,2002:float", _finite_float)
for _tag in ("binary", "set", "omap", "pairs"):
    _PythonLoader.add_constructor(f"tag:yaml.org,2002:{_tag}", _refuse)


class _FastLoader(_Construct, getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """libyaml's parser (when installed) with the same constructors."""

    yaml_constructors = _PythonLoader.yaml_constructors


@dataclass(frozen=True, slots=True)
class Document:
    node: Node
    line: int  # 1-based line where the document starts
    data: Any = None
    error: YamlError | None = None  # this document is bad; the stream goes on


def parse_stream(text: str) -> Iterator[Document]:
    """Every document of a YAML stream. A bad value spoils only its own document (`Document.error`); a syntax error
    ends the stream with `YamlError`, after the documents before it."""
    risks = _risks(text)
    loader = (_PythonLoader if risks.deep else _FastLoader)(text)
    try:
        while loader.check_node():
            node = loader.get_node()
            line = node.start_mark.line + 1
            try:
                data = loader.build(node)
                if risks:
                    check_shape(data)
            except yaml.YAMLError as exc:
                yield Document(node, line, error=_yaml_error(exc, line))
                continue
            except YamlError as exc:
                yield Document(node, line, error=YamlError(str(exc), line))
                continue
            yield Document(node, line, data)
    except yaml.YAMLError as exc:
        raise _yaml_error(exc, None) from None
    except RecursionError:
        raise YamlError(f"the document nests more than {MAX_DEPTH} levels deep", None) from None
    finally:
        loader.dispose()


def compose(text: str) -> Node | None:
    """The node tree of a single-document text, for line numbers; None if it does not parse."""
    try:
        return yaml.compose(text, Loader=_PythonLoader if _risks(text).deep else _FastLoader)
    except (yaml.YAMLError, RecursionError):
        return None


def line_of(node: Node | None, loc: tuple[Any, ...]) -> int | None:
    """The 1-based line of the deepest node along `loc` (the key's line for mapping entries)."""
    if node is None:
        return None
    line = node.start_mark.line + 1
    for part in loc:
        if isinstance(node, MappingNode):
            entry = next(((k, v) for k, v in node.value if isinstance(k, ScalarNode) and k.value == str(part)), None)
            if entry is None:
                break
            line, node = entry[0].start_mark.line + 1, entry[1]
        elif isinstance(node, SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    return line


# --- shape checks ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Risks:
    aliases: bool
    deep: bool

    def __bool__(self) -> bool:
        return self.aliases or self.deep


_BRACKET = re.compile(r"[\[\]{}]")
_DEEP_INDENT = re.compile(rf"^[ \t-]{{{2 * MAX_DEPTH},}}\S", re.MULTILINE)


def _risks(text: str) -> _Risks:
    """What the fast path must guard against, judged from the raw text at C speed."""
    deep = bool(_DEEP_INDENT.search(text))
    if not deep and text.count("[") + text.count("{") > MAX_DEPTH:
        depth = 0
        for match in _BRACKET.finditer(text):  # brackets inside strings can only over-estimate the depth
            depth += 1 if match.group() in "[{" else -1
            if depth > MAX_DEPTH:
                deep = True
                break
    return _Risks(aliases="*" in text, deep=deep)


def needs_shape_check(text: str) -> bool:
    return bool(_risks(text))


_PLAIN = (str, int, float, type(None), date)  # what JSON (with ISO dates) carries; bool is an int


def check_shape(data: Any, *, plain: bool = False) -> None:
    """Reject recursive aliases, nesting deeper than MAX_DEPTH and alias expansion past MAX_EXPANDED_NODES; with
    `plain`, also values JSON cannot carry (objects handed over from Python rather than parsed from text)."""
    sizes: dict[int, int] = {}
    active: set[int] = set()

    def size(value: Any, depth: int) -> int:
        if not isinstance(value, dict | list | tuple):
            if plain and not isinstance(value, _PLAIN):
                raise YamlError(f"values of type {type(value).__name__} are not supported", None)
            if plain and isinstance(value, float) and not math.isfinite(value):
                raise YamlError(f"non-finite numbers ({value}) are not supported", None)
            return 1
        if depth > MAX_DEPTH:
            raise YamlError(f"the document nests more than {MAX_DEPTH} levels deep", None)
        key = id(value)
        if key in active:
            raise YamlError("the document refers to itself through a YAML alias", None)
        if key not in sizes:  # a shared (aliased) node is counted once per use, but walked once
            active.add(key)
            items = value.values() if isinstance(value, dict) else value
            keys = value.keys() if plain and isinstance(value, dict) else ()
            sizes[key] = 1 + sum(size(v, depth + 1) for v in (*keys, *items))
            active.discard(key)
        return sizes[key]

    if size(data, 0) > MAX_EXPANDED_NODES:
        raise YamlError(f"the document expands to more than {MAX_EXPANDED_NODES} nodes (a YAML alias bomb?)", None)


def _yaml_error(exc: yaml.YAMLError, line: int | None) -> YamlError:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    context = getattr(exc, "context", None)
    return YamlError(f"invalid YAML: {context + ', ' if context else ''}{problem}", mark.line + 1 if mark else line)


# --- writing --------------------------------------------------------------------------------------------------------


class _BlockDumper(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):  # type: ignore[misc]
    """Writes multi-line strings as `|` blocks, as people write prompts."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> ScalarNode:
    return dumper.represent_scalar(_STR, value, style="|" if "\n" in value else None)


_BlockDumper.add_representer(str, _represent_str)


def to_yaml(*documents: Any) -> str:
    """Plain data as YAML the way people write it: keys in order, multi-line strings as `|` blocks."""
    return yaml.dump_all(documents, Dumper=_BlockDumper, sort_keys=False, allow_unicode=True, default_flow_style=False)
