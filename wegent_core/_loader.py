"""Loading resources from files, directories, strings and dicts, and dumping them back.

Every problem of every document is collected, located (file, line, field path) and raised together in one
`ValidationError`; the YAML reading itself (safe loading only, see `_yaml`) happens in `_yaml`.

A folder holding a `SKILL.md` is a Skill (upstream reference 1.8): its frontmatter, a YAML mapping between `---`
lines, gives `name` (else the folder's name) and the spec fields; the Markdown body is `spec.prompt`. Only SKILL.md is
read: the scripts and modules a skill folder may hold are never imported or run.
"""

from __future__ import annotations

import copy
import difflib
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pydantic
from yaml import Mark
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from ._errors import Problem, ValidationError
from ._gc import collector_paused
from ._resources import API_VERSION, KINDS, Resource, Schema
from ._yaml import YamlError, check_shape, compose, line_of, needs_shape_check, parse_stream, to_yaml

SUFFIXES = (".yaml", ".yml", ".json")
SKILL_FILE = "SKILL.md"


class ResourceSet(list[Resource]):
    """The resources of one load, in document order, plus the warnings the load produced."""

    def __init__(
        self, resources: Iterable[Resource] = (), warnings: Iterable[Problem] = (), sources: Iterable[str] = ()
    ) -> None:
        super().__init__(resources)
        self.warnings: list[Problem] = list(warnings)
        self.sources: list[str] = list(sources)  # the files read, in order

    def of_kind(self, kind: str) -> list[Resource]:
        return [r for r in self if r.kind == kind]

    def find(self, kind: str, name: str, namespace: str = "default") -> Resource | None:
        return next((r for r in self if r.key == (namespace, kind, name)), None)


# --- public entry points ------------------------------------------------------------------------------------------


def load(*paths: str | Path, strict: bool = False) -> ResourceSet:
    """Load every resource in the given files and directories (`*.yaml`, `*.yml`, `*.json`, sorted by name).

    A directory with a `SKILL.md` is one Skill; in any other directory, each sub-folder with a `SKILL.md` is a
    Skill too (a folder of skills), loaded in name order with the files.

    Raises `ValidationError` listing every problem of every document; `strict` also reports unknown fields.
    """
    loader = _Loader(strict)
    with collector_paused():
        for path in _expand(paths, loader):
            loader.read_file(path)
    return loader.finish()


def loads(
    content: str | bytes | dict[str, Any] | Sequence[Any], *, source: str = "<string>", strict: bool = False
) -> ResourceSet:
    """Load resources from YAML or JSON text (one or many documents), a dict, or a list of dicts."""
    loader = _Loader(strict)
    if isinstance(content, bytes):
        try:
            content = content.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ValidationError([Problem(f"not UTF-8 text: {exc.reason} at byte {exc.start}", source)]) from None
    with collector_paused():
        if isinstance(content, str):
            loader.read_text(content, source)
        else:
            loader.read_objects(content, source)
    return loader.finish()


def dump(resources: Resource | Iterable[Resource], format: str = "yaml") -> str:
    """Dump resources in canonical form: envelope keys first, fields in schema order, defaults left out."""
    items = [resources] if isinstance(resources, Resource) else list(resources)
    docs = [to_document(r) for r in items]
    if format == "json":
        return json.dumps(docs[0] if isinstance(resources, Resource) else docs, indent=2, ensure_ascii=False) + "\n"
    if format != "yaml":
        raise ValueError(f"unknown format {format!r} (expected yaml or json)")
    return to_yaml(*docs)


def to_document(resource: Resource) -> dict[str, Any]:
    """The canonical plain-data form of one resource (JSON types only)."""
    data = resource.model_dump(mode="json", exclude_defaults=True)
    metadata = data.get("metadata", {})
    metadata = {"name": resource.metadata.name, "namespace": resource.metadata.namespace, **metadata}
    doc = {"apiVersion": resource.api_version, "kind": resource.kind, "metadata": metadata}
    doc.update((k, v) for k, v in data.items() if k not in doc)
    return doc


# --- the loader ---------------------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Document:
    data: Any
    source: str
    node: Node | None  # for line numbers; None for dicts given directly and for JSON
    line: int | None
    json_text: str | None = None  # JSON is composed into nodes only if a problem needs a line
    index: int | None = None  # position in a top-level list

    def locate(self, loc: tuple[Any, ...]) -> int | None:
        node = self.node
        if node is None and self.json_text is not None:
            node = compose(self.json_text)
            if self.index is not None:
                node = node.value[self.index] if isinstance(node, SequenceNode) else None
        return line_of(node, loc) if node is not None else self.line


class _Loader:
    def __init__(self, strict: bool) -> None:
        self.strict = strict
        self.resources: list[Resource] = []
        self.problems: list[Problem] = []
        self._seen: dict[tuple[str, str, str], str] = {}
        self.sources: list[str] = []

    # reading

    def read_file(self, path: Path) -> None:
        source = str(path)
        self.sources.append(source)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            self.problems.append(Problem(f"cannot read file: {exc}", source=source))
            return
        if path.name == SKILL_FILE:
            self.read_skill(text, source, path.resolve().parent.name)
        elif path.suffix == ".json":
            self._read_json(text, source)
        else:
            self.read_text(text, source)

    def read_skill(self, text: str, source: str, folder: str) -> None:
        """A SKILL.md file: a Skill named by its frontmatter, else by its folder."""
        try:
            front, node, body, body_line = _split_skill(text)
        except YamlError as exc:
            self.problems.append(Problem(str(exc), source=source, line=exc.line, kind="Skill", name=folder))
            return
        name = front.pop("name", folder)
        spec = dict(front)
        if body:
            spec["prompt"] = body  # the body is the prompt, as upstream's uploader reads it
        data = {"apiVersion": API_VERSION, "kind": "Skill", "metadata": {"name": name}, "spec": spec}
        self._add(_Document(data, source, _skill_node(node, body_line), 1))

    def read_text(self, text: str, source: str) -> None:
        if text.lstrip().startswith(("{", "[")):
            try:
                return self._read_json(text, source)
            except ValueError:
                pass  # flow-style YAML rather than JSON
        try:
            for doc in parse_stream(text):
                if doc.error is not None:
                    self.problems.append(Problem(str(doc.error), source=source, line=doc.error.line))
                else:
                    self._add(_Document(doc.data, source, doc.node, doc.line))
        except YamlError as exc:
            self.problems.append(Problem(str(exc), source=source, line=exc.line))

    def _read_json(self, text: str, source: str) -> None:
        try:
            data = json.loads(text, parse_constant=_refuse_constant)
            if needs_shape_check(text):
                check_shape(data)
        except json.JSONDecodeError as exc:
            if source.endswith(".json"):
                self.problems.append(Problem(f"invalid JSON: {exc.msg}", source=source, line=exc.lineno))
                return
            raise ValueError(str(exc)) from None
        except RecursionError:
            self.problems.append(Problem("the document nests too deeply", source=source))
            return
        except YamlError as exc:
            self.problems.append(Problem(str(exc), source=source, line=exc.line))
            return
        self._add(_Document(data, source, None, 1, json_text=text))

    def read_objects(self, content: Any, source: str) -> None:
        try:
            check_shape(content, plain=True)
        except YamlError as exc:
            self.problems.append(Problem(str(exc), source=source))
            return
        # pydantic keeps free-form dicts by reference: copy, so the caller's later edits cannot reach the resources.
        self._add(_Document(copy.deepcopy(content), source, None, None))

    def _add(self, doc: _Document) -> None:
        for item in _flatten(doc):
            self._validate(item)

    # validation

    def _validate(self, doc: _Document) -> None:
        data = doc.data
        if data is None:
            return  # empty document
        if not isinstance(data, dict):
            self._problem(doc, f"a document must be a mapping with `kind`, got {_type_name(data)}")
            return
        kind = data.get("kind")
        name = _name_of(data)
        if not isinstance(kind, str) or not kind:
            self._problem(doc, "the document has no `kind`", path="kind", name=name)
            return
        cls = KINDS.get(kind)
        if cls is None:
            self._unknown_kind(doc, kind, name)
            return
        try:
            resource = cls.model_validate(data, by_name=False)  # YAML uses the upstream spellings only
        except pydantic.ValidationError as exc:
            for error in exc.errors(include_url=False):
                self._problem(
                    doc, _message(error, data), path=_path(error["loc"]), kind=kind, name=name, loc=error["loc"]
                )
            return
        first = self._seen.get(resource.key)
        if first is not None:
            self._problem(doc, f"{resource} is defined twice (first at {first})", kind=kind, name=name)
            return
        self._seen[resource.key] = _where(doc)
        self.resources.append(resource)
        if self.strict:
            for path, field, known in unknown_fields(resource):
                hint = _did_you_mean(field, known)
                self._problem(
                    doc,
                    f"unknown field {field!r}{hint}",
                    path=path,
                    kind=kind,
                    name=name,
                    loc=_split(path),
                    severity="warning",
                )

    def _unknown_kind(self, doc: _Document, kind: str, name: str | None) -> None:
        close = difflib.get_close_matches(kind, KINDS, n=1, cutoff=0.75)
        exact_but_case = [k for k in KINDS if k.lower() == kind.lower()]
        if exact_but_case or close:
            suggestion = (exact_but_case or close)[0]
            self._problem(
                doc, f"unknown kind {kind!r}; did you mean {suggestion!r}?", path="kind", name=name, loc=("kind",)
            )
        else:
            self._problem(
                doc,
                f"kind {kind!r} is not a wegent resource; skipped",
                path="kind",
                kind=kind,
                name=name,
                loc=("kind",),
                severity="warning",
            )

    def _problem(
        self,
        doc: _Document,
        message: str,
        *,
        path: str = "",
        kind: str | None = None,
        name: str | None = None,
        loc: tuple[Any, ...] = (),
        severity: str = "error",
    ) -> None:
        line = doc.locate(loc)
        self.problems.append(
            Problem(
                message,
                source=doc.source,
                line=line,
                path=path,
                severity=severity,  # type: ignore[arg-type]
                kind=kind,
                name=name,
            )
        )

    def finish(self) -> ResourceSet:
        if any(p.severity == "error" for p in self.problems):
            raise ValidationError(self.problems, loaded=ResourceSet(self.resources, (), self.sources))
        return ResourceSet(self.resources, self.problems, self.sources)


# --- strict validation --------------------------------------------------------------------------------------------


def unknown_fields(model: Schema, prefix: str = "") -> Iterator[tuple[str, str, list[str]]]:
    """Yield (path, field, known field names) for every key the schema does not define, at any depth."""
    known = [f.serialization_alias or f.alias or n for n, f in type(model).model_fields.items()]
    for key in model.model_extra or {}:
        yield (f"{prefix}.{key}" if prefix else key), key, known
    for name, field in type(model).model_fields.items():
        alias = field.serialization_alias or field.alias or name
        yield from _unknown_in(getattr(model, name), f"{prefix}.{alias}" if prefix else alias)


def _unknown_in(value: Any, path: str) -> Iterator[tuple[str, str, list[str]]]:
    if isinstance(value, Schema):
        yield from unknown_fields(value, path)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _unknown_in(item, f"{path}[{i}]")
    elif isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, Schema):
                yield from unknown_fields(item, f"{path}.{key}")


# --- helpers ------------------------------------------------------------------------------------------------------


def _expand(paths: Sequence[str | Path], loader: _Loader) -> Iterator[Path]:
    for raw in paths:
        path = Path(raw)
        if path.is_dir() and (path / SKILL_FILE).is_file():
            yield path / SKILL_FILE  # a skill folder: its other files belong to the skill, not to the loader
        elif path.is_dir():
            for entry in sorted(path.iterdir()):
                if entry.is_file() and entry.suffix in SUFFIXES:
                    yield entry
                elif entry.is_dir() and (entry / SKILL_FILE).is_file():
                    yield entry / SKILL_FILE
        elif path.exists():
            yield path
        else:
            loader.problems.append(Problem("no such file or directory", source=str(path)))


def _split_skill(text: str) -> tuple[dict[str, Any], Node | None, str, int]:
    """A SKILL.md's frontmatter (data and node, lines as in the file), its body stripped, and the body's first line.
    Raises `YamlError` (with the line) when the frontmatter is missing, unclosed, bad YAML or not a mapping."""
    lines = text.removeprefix("\ufeff").split("\n")  # YAML's line breaks; str.splitlines knows more
    if lines[0].rstrip() != "---":
        raise YamlError("SKILL.md must start with frontmatter: a `---` line, YAML fields, and a closing `---` line", 1)
    end = next((i for i in range(1, len(lines)) if lines[i].rstrip() in ("---", "...")), None)
    if end is None:
        raise YamlError("the SKILL.md frontmatter has no closing `---` line", 1)
    # One blank line stands for the opening `---`, so YAML marks give the lines of the file.
    documents = list(parse_stream("\n" + "\n".join(lines[1:end])))
    if len(documents) > 1:
        raise YamlError("the SKILL.md frontmatter must be one YAML mapping, not several documents", documents[1].line)
    if documents and documents[0].error is not None:
        raise documents[0].error
    data = documents[0].data if documents else None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise YamlError(f"the SKILL.md frontmatter must be a YAML mapping, got {_type_name(data)}", 2)
    body_lines = lines[end + 1 :]
    blank = next((i for i, line in enumerate(body_lines) if line.strip()), len(body_lines))
    return data, documents[0].node if documents else None, "\n".join(body_lines).strip(), end + 2 + blank


def _skill_node(front: Node | None, body_line: int) -> MappingNode:
    """A node tree shaped like the Skill document (`metadata.name`, `spec.*`) over the frontmatter's nodes, so that a
    problem in a field is reported at its line in SKILL.md."""

    def mark(line: int) -> Mark:
        return Mark("SKILL.md", 0, line - 1, 0, None, None)

    def key(value: str, line: int) -> ScalarNode:
        return ScalarNode("tag:yaml.org,2002:str", value, mark(line), mark(line))

    entries = front.value if isinstance(front, MappingNode) else []
    spec_entries = [(k, v) for k, v in entries if not (isinstance(k, ScalarNode) and k.value == "name")]
    spec_entries.append((key("prompt", body_line), key("", body_line)))
    name = [(k, v) for k, v in entries if isinstance(k, ScalarNode) and k.value == "name"]
    first = front.start_mark.line + 1 if front is not None else 1
    tag = "tag:yaml.org,2002:map"
    metadata = MappingNode(tag, name, mark(1), mark(1))
    spec = MappingNode(tag, spec_entries, mark(first), mark(first))
    return MappingNode(tag, [(key("metadata", 1), metadata), (key("spec", first), spec)], mark(1), mark(1))


def _flatten(doc: _Document) -> Iterator[_Document]:
    """A document that is a YAML list stands for each of its items."""
    if not isinstance(doc.data, list):
        yield doc
        return
    for i, item in enumerate(doc.data):
        node = doc.node.value[i] if isinstance(doc.node, SequenceNode) else None
        line = node.start_mark.line + 1 if node is not None else doc.line
        yield _Document(item, doc.source, node, line, doc.json_text, i)


def _where(doc: _Document) -> str:
    return f"{doc.source}:{doc.line}" if doc.line is not None else doc.source


def _name_of(data: dict[str, Any]) -> str | None:
    metadata = data.get("metadata")
    name = metadata.get("name") if isinstance(metadata, dict) else None
    return name if isinstance(name, str) else None


def _type_name(value: Any) -> str:
    return {str: "a string", int: "a number", float: "a number", bool: "a boolean", list: "a list"}.get(
        type(value), type(value).__name__
    )


def _split(path: str) -> tuple[Any, ...]:
    parts: list[Any] = []
    for piece in path.replace("[", ".[").split("."):
        if piece.startswith("["):
            parts.append(int(piece[1:-1]))
        elif piece:
            parts.append(piece)
    return tuple(parts)


def _path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _message(error: Any, data: dict[str, Any]) -> str:
    msg: str = error["msg"]
    for prefix in ("Value error, ", "Assertion failed, "):
        msg = msg.removeprefix(prefix)
    msg = msg[:1].lower() + msg[1:]
    if error["type"] == "missing" and error["loc"]:
        parent = _get(data, error["loc"][:-1])
        if isinstance(parent, dict):
            close = difflib.get_close_matches(str(error["loc"][-1]), [str(k) for k in parent], n=1, cutoff=0.75)
            if close:
                msg += f" (found {close[0]!r}: a misspelling?)"
    elif error["type"] in ("model_type", "dict_type") and error.get("input") is None:
        msg += " (the key is present but empty)"
    return msg


def _refuse_constant(name: str) -> Any:
    raise YamlError(f"non-finite numbers ({name}) are not supported", None)


def _did_you_mean(field: str, known: list[str]) -> str:
    close = difflib.get_close_matches(field, known, n=1, cutoff=0.75)
    return f"; did you mean {close[0]!r}?" if close else ""


def _get(data: Any, loc: tuple[Any, ...]) -> Any:
    for part in loc:
        try:
            data = data[part]
        except (KeyError, IndexError, TypeError):
            return None
    return data
