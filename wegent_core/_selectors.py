"""Kubernetes label selectors: `app=web,tier!=db`, `env in (dev, test)`, `team notin (a,b)`, `gpu`, `!legacy`.

Comma-separated requirements must all hold; the empty selector matches everything. As in Kubernetes, `!=` and
`notin` also match a resource that lacks the label, values may be empty (`a=` selects an empty value), and `a in ()`
means `a in ("")`. Keys and values are runs of any characters except whitespace and `,=!()<>`; the parser looks at
its position, not at keywords, so `in` and `notin` are valid keys and values too.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import NoReturn

_RESERVED = frozenset(",=!()<>")  # `<` and `>` are kept back so `a>1` fails instead of meaning "label `a>1` exists"


class Operator(StrEnum):
    EQUALS = "="
    NOT_EQUALS = "!="
    IN = "in"
    NOT_IN = "notin"
    EXISTS = "exists"
    DOES_NOT_EXIST = "!"


_VALUE_COUNT = {
    Operator.EQUALS: "exactly one value",
    Operator.NOT_EQUALS: "exactly one value",
    Operator.IN: "at least one value",
    Operator.NOT_IN: "at least one value",
    Operator.EXISTS: "no values",
    Operator.DOES_NOT_EXIST: "no values",
}


def _is_word_char(char: str) -> bool:
    return not char.isspace() and char not in _RESERVED


def _check_word(word: str, what: str, *, allow_empty: bool) -> None:
    if not word and not allow_empty:
        raise ValueError(f"a label selector {what} must not be empty")
    bad = next((c for c in word if not _is_word_char(c)), None)
    if bad is not None:
        raise ValueError(f"label selector {what} {word!r} contains {bad!r} (whitespace and ,=!()<> are not allowed)")


@dataclass(frozen=True, slots=True)
class Requirement:
    """One condition on one label. Values are a set: `a in (x,y)` equals `a in (y,x)`."""

    key: str
    operator: Operator
    values: frozenset[str] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        if isinstance(self.values, str):
            raise TypeError("Requirement values must be a collection of strings, not a string")
        object.__setattr__(self, "values", frozenset(self.values))  # accept any iterable; keep it hashable
        _check_word(self.key, "key", allow_empty=False)
        for value in self.values:
            _check_word(value, "value", allow_empty=True)
        count = len(self.values)
        if not _count_fits(self.operator, count):
            raise ValueError(f"operator {self.operator.value!r} takes {_VALUE_COUNT[self.operator]}, got {count}")

    def matches(self, labels: Mapping[str, str]) -> bool:
        value = labels.get(self.key)
        match self.operator:
            case Operator.EXISTS:
                return value is not None
            case Operator.DOES_NOT_EXIST:
                return value is None
            case Operator.EQUALS | Operator.IN:
                return value is not None and value in self.values
            case Operator.NOT_EQUALS | Operator.NOT_IN:
                return value is None or value not in self.values
        raise AssertionError(self.operator)  # pragma: no cover

    def __str__(self) -> str:
        values = sorted(self.values)
        match self.operator:
            case Operator.EXISTS:
                return self.key
            case Operator.DOES_NOT_EXIST:
                return f"!{self.key}"
            case Operator.EQUALS | Operator.NOT_EQUALS:
                return f"{self.key}{self.operator.value}{values[0]}"
            case _:
                return f"{self.key} {self.operator.value} ({','.join(values)})"


def _sort_key(requirement: Requirement) -> tuple[str, str, tuple[str, ...]]:
    return (requirement.key, requirement.operator.value, tuple(sorted(requirement.values)))


def _count_fits(operator: Operator, count: int) -> bool:
    if operator in (Operator.EQUALS, Operator.NOT_EQUALS):
        return count == 1
    if operator in (Operator.IN, Operator.NOT_IN):
        return count >= 1
    return count == 0


@dataclass(frozen=True, slots=True, init=False)
class LabelSelector:
    """A conjunction of requirements, kept sorted and without duplicates so equal selectors compare equal."""

    requirements: tuple[Requirement, ...]

    def __init__(self, requirements: Iterable[Requirement] = ()) -> None:
        unique = sorted(set(requirements), key=_sort_key)
        object.__setattr__(self, "requirements", tuple(unique))

    @classmethod
    def parse(cls, text: str) -> LabelSelector:
        """Parse kubectl syntax; raises `ValueError` naming the bad part and its (1-based) character position."""
        return cls(_Parser(text).selector())

    @classmethod
    def from_dict(cls, labels: Mapping[str, str]) -> LabelSelector:
        """Equality on every key: `{"app": "web"}` is `app=web`."""
        return cls(Requirement(key, Operator.EQUALS, frozenset({value})) for key, value in labels.items())

    @classmethod
    def coerce(cls, selector: str | LabelSelector | Mapping[str, str] | None) -> LabelSelector:
        """Accept what store methods take: selector text, a selector, a label mapping, or None (everything)."""
        if selector is None:
            return cls()
        if isinstance(selector, LabelSelector):
            return selector
        if isinstance(selector, str):
            return cls.parse(selector)
        return cls.from_dict(selector)

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(r.matches(labels) for r in self.requirements)

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)


class _Parser:
    """Recursive descent over the text, one requirement at a time; `pos` is the index of the next character."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def selector(self) -> list[Requirement]:
        if not self.text.strip():
            return []
        requirements = [self.requirement()]
        while self.peek() == ",":
            self.pos += 1
            requirements.append(self.requirement())
        if self.peek():
            self.fail(f"expected ',' or the end, found {self.found()}")
        return requirements

    def requirement(self) -> Requirement:
        if self.peek() == "!":
            self.pos += 1
            return Requirement(self.key(), Operator.DOES_NOT_EXIST)
        key = self.key()
        char = self.peek()
        if char in ("", ","):
            return Requirement(key, Operator.EXISTS)
        if char == "=":
            self.pos += 2 if self.text.startswith("==", self.pos) else 1
            return Requirement(key, Operator.EQUALS, frozenset({self.word()}))
        if self.text.startswith("!=", self.pos):
            self.pos += 2
            return Requirement(key, Operator.NOT_EQUALS, frozenset({self.word()}))
        start = self.pos
        word = self.word()
        if word in (Operator.IN, Operator.NOT_IN):
            return Requirement(key, Operator(word), self.value_list(word))
        self.pos = start
        self.fail(f"expected an operator (=, ==, !=, in, notin) or ',' after key {key!r}, found {self.found()}")

    def key(self) -> str:
        key = self.word()
        if not key:
            self.fail(f"expected a label key, found {self.found()}")
        return key

    def value_list(self, operator: str) -> frozenset[str]:
        if self.peek() != "(":
            self.fail(f"expected '(' after {operator!r}, found {self.found()}")
        self.pos += 1
        values = {self.word()}
        while (char := self.peek()) == ",":
            self.pos += 1
            values.add(self.word())
        if char == ")":
            self.pos += 1
            return frozenset(values)
        self.fail("missing ')'" if not char else f"expected ',' or ')' in the value list, found {self.found()}")

    def word(self) -> str:
        """A key or value: the run of word characters after any whitespace (possibly empty)."""
        self.skip_space()
        start = self.pos
        while self.pos < len(self.text) and _is_word_char(self.text[self.pos]):
            self.pos += 1
        return self.text[start : self.pos]

    def peek(self) -> str:
        """The next non-space character, or "" at the end."""
        self.skip_space()
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def skip_space(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def found(self) -> str:
        """What sits at the current position, for error messages."""
        if self.pos >= len(self.text):
            return "the end"
        end = self.pos
        while end < len(self.text) and _is_word_char(self.text[end]):
            end += 1
        return repr(self.text[self.pos : max(end, self.pos + 1)])

    def fail(self, message: str) -> NoReturn:
        raise ValueError(f'invalid label selector "{self.text}": {message} at character {self.pos + 1}')
