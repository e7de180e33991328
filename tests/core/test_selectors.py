"""Label selectors: kubectl syntax, Kubernetes matching semantics, canonical text, and precise errors."""

from __future__ import annotations

from collections.abc import Mapping

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wegent_core._selectors import LabelSelector, Operator, Requirement


def sel(text: str) -> LabelSelector:
    return LabelSelector.parse(text)


def req(key: str, operator: Operator, *values: str) -> Requirement:
    return Requirement(key, operator, frozenset(values))


# --- parsing ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a=b", [req("a", Operator.EQUALS, "b")]),
        ("a==b", [req("a", Operator.EQUALS, "b")]),
        ("a!=b", [req("a", Operator.NOT_EQUALS, "b")]),
        ("a in (x, y)", [req("a", Operator.IN, "x", "y")]),
        ("a notin (x,y)", [req("a", Operator.NOT_IN, "x", "y")]),
        ("a", [req("a", Operator.EXISTS)]),
        ("!a", [req("a", Operator.DOES_NOT_EXIST)]),
        ("a=", [req("a", Operator.EQUALS, "")]),
        ("a in ()", [req("a", Operator.IN, "")]),  # as Kubernetes: the empty list holds the empty value
        ("a in (x,)", [req("a", Operator.IN, "x", "")]),
        ("app.kubernetes.io/name=web-1", [req("app.kubernetes.io/name", Operator.EQUALS, "web-1")]),
        ("in=notin", [req("in", Operator.EQUALS, "notin")]),  # keywords are only keywords where an operator goes
        ("in in (in,notin)", [req("in", Operator.IN, "in", "notin")]),
        ("notin", [req("notin", Operator.EXISTS)]),
    ],
)
def test_parse_each_form(text: str, expected: list[Requirement]) -> None:
    assert sel(text).requirements == tuple(expected)


def test_commas_join_requirements_with_and() -> None:
    selector = sel("a=b,!c, d in (x)")
    assert set(selector.requirements) == {
        req("a", Operator.EQUALS, "b"),
        req("c", Operator.DOES_NOT_EXIST),
        req("d", Operator.IN, "x"),
    }


def test_whitespace_is_allowed_around_every_token() -> None:
    assert sel("  a  =  b ,  ! c ,d   notin(  x ,y  )  ") == sel("a=b,!c,d notin (x,y)")


@pytest.mark.parametrize("text", ["", "   ", "\t\n"])
def test_empty_selector_matches_everything(text: str) -> None:
    selector = sel(text)
    assert selector.requirements == ()
    assert selector.matches({})
    assert selector.matches({"a": "b"})
    assert str(selector) == ""


def test_equal_selectors_compare_equal_whatever_the_order_or_spelling() -> None:
    assert sel("b=2,a in (y,x)") == sel("a in (x, y),b==2")
    assert sel("a,a,a") == sel("a")
    assert hash(sel("a=1,b")) == hash(sel("b,a=1"))


# --- matching -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "labels", "expected"),
    [
        ("a=b", {"a": "b"}, True),
        ("a=b", {"a": "c"}, False),
        ("a=b", {}, False),
        ("a!=b", {"a": "c"}, True),
        ("a!=b", {"a": "b"}, False),
        ("a!=b", {}, True),  # Kubernetes: a missing label is "not equal"
        ("a in (x,y)", {"a": "y"}, True),
        ("a in (x,y)", {"a": "z"}, False),
        ("a in (x,y)", {}, False),
        ("a notin (x,y)", {"a": "z"}, True),
        ("a notin (x,y)", {"a": "x"}, False),
        ("a notin (x,y)", {}, True),
        ("a", {"a": ""}, True),
        ("a", {"b": "a"}, False),
        ("!a", {}, True),
        ("!a", {"a": "x"}, False),
        ("a=", {"a": ""}, True),
        ("a=", {}, False),
        ("a=b,c", {"a": "b", "c": "1"}, True),
        ("a=b,c", {"a": "b"}, False),
    ],
)
def test_matches(text: str, labels: dict[str, str], expected: bool) -> None:
    assert sel(text).matches(labels) is expected


def test_from_dict_is_equality_on_every_key() -> None:
    selector = LabelSelector.from_dict({"app": "web", "tier": "front"})
    assert selector == sel("tier=front,app=web")
    assert selector.matches({"app": "web", "tier": "front", "extra": "x"})
    assert not selector.matches({"app": "web"})
    assert LabelSelector.from_dict({}) == sel("")


def test_coerce_accepts_what_stores_take() -> None:
    expected = sel("a=b")
    assert LabelSelector.coerce("a=b") == expected
    assert LabelSelector.coerce({"a": "b"}) == expected
    assert LabelSelector.coerce(expected) is expected
    assert LabelSelector.coerce(None) == sel("")


# --- canonical text -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("a==b", "a=b"),
        ("  b ,a ", "a,b"),
        ("a in (y, x, y)", "a in (x,y)"),
        ("!z, y notin ( q )", "y notin (q),!z"),
        ("a in (x,)", "a in (,x)"),
    ],
)
def test_str_is_canonical(text: str, canonical: str) -> None:
    assert str(sel(text)) == canonical
    assert sel(canonical) == sel(text)


# --- errors -------------------------------------------------------------------------------------------------------


def test_error_message_names_the_selector_the_problem_and_the_position() -> None:
    with pytest.raises(ValueError, match="missing") as caught:
        sel("a in (x")
    assert str(caught.value) == """invalid label selector "a in (x": missing ')' at character 8"""


@pytest.mark.parametrize(
    ("text", "problem", "position"),
    [
        ("a b", "found 'b'", 3),
        ("=x", "expected a label key, found '='", 1),
        ("a,", "expected a label key, found the end", 3),
        ("a,,b", "expected a label key, found ','", 3),
        ("!", "expected a label key", 2),
        ("!a=b", "found '='", 3),
        ("a=b=c", "found '='", 4),
        ("a in x", "expected '(' after 'in', found 'x'", 6),
        ("a notin", "expected '(' after 'notin', found the end", 8),
        ("a in (x y)", "found 'y'", 9),
        ("a in (x,y", "missing ')'", 10),
        ("a=b)", "found ')'", 4),
        ("a>1", "found '>'", 2),
        ("a<1", "found '<'", 2),
        ("a!", "found '!'", 2),
        ("(a)", "expected a label key, found '('", 1),
    ],
)
def test_bad_selectors_say_what_and_where(text: str, problem: str, position: int) -> None:
    with pytest.raises(ValueError, match=r"^invalid label selector ") as caught:
        sel(text)
    message = str(caught.value)
    assert f'"{text}"' in message
    assert problem in message
    assert message.endswith(f" at character {position}")


@pytest.mark.parametrize(
    ("labels", "problem"),
    [
        ({"": "x"}, "key must not be empty"),
        ({"a b": "x"}, "key 'a b'"),
        ({"a": "x y"}, "value 'x y'"),
        ({"a": "x,y"}, "value 'x,y'"),
        ({"a=": "x"}, "key 'a='"),
    ],
)
def test_from_dict_rejects_what_the_syntax_cannot_express(labels: dict[str, str], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        LabelSelector.from_dict(labels)


@pytest.mark.parametrize(
    ("operator", "values"),
    [
        (Operator.EQUALS, ()),
        (Operator.EQUALS, ("a", "b")),
        (Operator.NOT_EQUALS, ()),
        (Operator.IN, ()),
        (Operator.NOT_IN, ()),
        (Operator.EXISTS, ("a",)),
        (Operator.DOES_NOT_EXIST, ("a",)),
    ],
)
def test_requirement_checks_the_number_of_values(operator: Operator, values: tuple[str, ...]) -> None:
    with pytest.raises(ValueError, match="takes"):
        Requirement("k", operator, frozenset(values))


def test_requirement_rejects_a_bare_string_of_values() -> None:
    with pytest.raises(TypeError):
        Requirement("k", Operator.IN, "xy")  # type: ignore[arg-type]


# --- properties ---------------------------------------------------------------------------------------------------

# Keys and values: anything but whitespace and the syntax characters. Small pools make matches likely.
_RESERVED = ",=!()<>"
_word_chars = st.characters(blacklist_characters=_RESERVED, blacklist_categories=("Cs",)).filter(
    lambda c: not c.isspace()
)
_keys = st.one_of(st.sampled_from(["a", "b", "app", "in", "notin", "x.io/tier"]), st.text(_word_chars, min_size=1))
_values = st.one_of(st.sampled_from(["", "x", "y", "in", "prod"]), st.text(_word_chars))
_spaces = st.sampled_from(["", " ", "  ", "\t"])

# A requirement as plain data: (key, operator text, values).
Spec = tuple[str, str, tuple[str, ...]]


@st.composite
def _spec(draw: st.DrawFn) -> Spec:
    key = draw(_keys)
    operator = draw(st.sampled_from(["=", "==", "!=", "in", "notin", "exists", "!"]))
    if operator in ("=", "==", "!="):
        return key, operator, (draw(_values),)
    if operator in ("in", "notin"):
        return key, operator, tuple(draw(st.lists(_values, min_size=1, max_size=4)))
    return key, operator, ()


@st.composite
def _selector_text(draw: st.DrawFn) -> tuple[str, list[Spec]]:
    """Selector text written from specs, with random spacing, plus the specs it was written from."""
    specs = draw(st.lists(_spec(), max_size=5))
    parts = []
    for key, operator, values in specs:
        s1, s2, s3 = draw(_spaces), draw(_spaces), draw(_spaces)
        if operator == "exists":
            parts.append(f"{s1}{key}{s2}")
        elif operator == "!":
            parts.append(f"{s1}!{s2}{key}{s3}")
        elif operator in ("in", "notin"):
            inner = ",".join(f"{draw(_spaces)}{v}{draw(_spaces)}" for v in values)
            parts.append(f"{s1}{key} {operator}{s2}({inner}){s3}")
        else:
            parts.append(f"{s1}{key}{s2}{operator}{s3}{values[0]}{draw(_spaces)}")
    return ",".join(parts), specs


def _model_matches(specs: list[Spec], labels: Mapping[str, str]) -> bool:
    """The Kubernetes semantics, written out plainly."""
    for key, operator, values in specs:
        present = key in labels
        value = labels.get(key)
        if operator in ("=", "=="):
            ok = present and value == values[0]
        elif operator == "!=":
            ok = not present or value != values[0]
        elif operator == "in":
            ok = present and value in values
        elif operator == "notin":
            ok = not present or value not in values
        elif operator == "exists":
            ok = present
        else:
            ok = not present
        if not ok:
            return False
    return True


_labels = st.dictionaries(_keys, _values, max_size=5)


@given(_selector_text(), _labels)
def test_matches_agrees_with_a_plain_model(written: tuple[str, list[Spec]], labels: dict[str, str]) -> None:
    text, specs = written
    assert LabelSelector.parse(text).matches(labels) is _model_matches(specs, labels)


@given(_selector_text())
def test_str_round_trips(written: tuple[str, list[Spec]]) -> None:
    selector = LabelSelector.parse(written[0])
    canonical = str(selector)
    assert LabelSelector.parse(canonical) == selector
    assert str(LabelSelector.parse(canonical)) == canonical


@given(_labels, _labels)
def test_from_dict_selects_exactly_the_superset_labels(wanted: dict[str, str], labels: dict[str, str]) -> None:
    selector = LabelSelector.from_dict(wanted)
    assert selector.matches(labels) is all(labels.get(k) == v for k, v in wanted.items())
    assert LabelSelector.parse(str(selector)) == selector


@given(st.text(st.sampled_from("ab =!(),<>\tinot"), max_size=20))
def test_any_text_parses_or_raises_value_error(text: str) -> None:
    outcome: LabelSelector | ValueError
    try:
        outcome = LabelSelector.parse(text)
    except ValueError as error:
        outcome = error
    if isinstance(outcome, ValueError):
        assert str(outcome).startswith("invalid label selector ")
    else:
        assert LabelSelector.parse(str(outcome)) == outcome
