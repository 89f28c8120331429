"""The per-record contract path decides exactly as the pandera schema does, check by check.

`Contract.check_one` (plain Python, for small batches) and `Contract.check_many`
(pandera on polars, the contract's definition) must return the same violations, in
the same order, for every contract the policy model accepts and every value a record
can carry: missing, null, right and wrong types, NaN, infinities, integers beyond 64
bits, text with newlines, control characters and any Unicode, timestamps with and
without offsets, and garbage.
"""

from __future__ import annotations

import math
import string
import warnings
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from guard.checks.contract import Contract
from guard.errors import PolicyError
from guard.policy.model import FieldSpec

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
_MISSING = object()

#: Patterns as policies write them, and some that probe where Python's `re` and Rust's regex part ways.
PATTERNS = (
    r"^[^@\s]+@[^@\s]+$",
    r"^[A-Z]{3}$",
    r"^SKU-\d{4,8}$",
    r"ab*c",
    r"^x$",
    r"\w+",
    r"[a-z]+$",
    r"a|bc",
    r"^gold$|^silver$",
    r"(?i)^gold$",
    r"\bid\b",
    r"(?m)^a$",
    r"\d+$",
    r"\s*\S+\s*$",
    r"[\w.-]+@[\w-]+\.\w{2,}$",
    r".+",
    r"(?s).+$",
    r"\W",
    r"[^\d\s]+$",
    r"é+",
    r"(?i)straße",
    r"",
)
PATTERN_TEXT = (
    "",
    "x",
    "x\n",
    "ab\nc",
    "ana@example.com",
    "ana@example.com\n",
    "an a@example.com",
    "ana\x1c@example.com",
    "EUR",
    "EUR\n",
    "eur",
    "SKU-1234",
    "SKU-١٢٣٤",
    "SKU-12345\n",
    "abbbc",
    "zbc",
    "gold",
    "GOLD",
    "silver\n",
    "é",
    "ÉÉ",
    "e\u0301",
    "²",
    "x\u200b",
    "id",
    "an id!",
    "idé",
    "\x1c\x1d\x1e\x1f",
    "\u00a0",
    "\u3000tab",
    "STRASSE",
    "straße",
    "ǅ",
    "\U0001f600",
    "\ud800",
    "a\x00b",
)
TIMESTAMPS = (
    "2026-11-22T10:00:00Z",
    "2026-11-22T10:00:00+00:00",
    "2026-11-22T10:00:00+05:30",
    "2026-11-22T10:00:00.123456-08:00",
    "2026-11-22T10:00:00",
    "2026-11-22",
    "20261122T100000Z",
    "0001-01-01T00:00:00+05:00",
    "0001-01-01T00:00:00Z",
    "9999-12-31T23:59:59-05:00",
    "9999-12-31T23:59:59.999999Z",
    "2026-02-30T10:00:00Z",
    "yesterday",
    "",
    " 2026-11-22T10:00:00Z",
)

bounds = st.one_of(
    st.integers(-5, 5),
    st.integers(),
    st.sampled_from([INT64_MAX, INT64_MAX + 1, INT64_MIN, INT64_MIN - 1, 2**53 + 1, -(2**53) - 1, 10**30, 10**400]),
    st.floats(-5, 5, allow_nan=False),
    st.sampled_from([0.5, -0.5, 2.0**53, 2.0**63, -(2.0**63), 1e300, -1e300, math.inf, -math.inf, -0.0, 5e-324]),
)
int_values = st.one_of(
    st.integers(-6, 6),
    st.integers(),
    st.integers(INT64_MAX - 2, INT64_MAX + 2),
    st.integers(INT64_MIN - 2, INT64_MIN + 2),
    st.sampled_from([2**53, 2**53 + 1, 10**30, -(10**30), 10**400, -(10**400)]),
)
float_values = st.one_of(
    st.floats(-6, 6),
    st.floats(),
    st.sampled_from([math.nan, math.inf, -math.inf, -0.0, 0.0, 2.0**53, 2.0**63, 1e300, 5e-324]),
)
texts = st.one_of(
    st.text(max_size=12),
    st.text(st.characters(codec="utf-8"), max_size=12),
    st.text(string.printable, max_size=12),
    st.sampled_from(PATTERN_TEXT),
)
timestamps = st.one_of(
    st.sampled_from(TIMESTAMPS),
    st.builds(
        lambda moment, offset: moment.replace(tzinfo=offset).isoformat() if offset is not None else moment.isoformat(),
        st.datetimes(),
        st.none() | st.just(UTC) | st.integers(-1439, 1439).map(lambda m: timezone(timedelta(minutes=m))),
    ),
)


class Text(str):
    """Text of a type of its own, as a Python caller may send (an enum of str, say)."""


garbage = st.one_of(
    st.builds(Text, st.sampled_from(PATTERN_TEXT)),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=2),
    st.just(datetime(2026, 11, 22, tzinfo=UTC)),
    st.binary(max_size=3),
)
any_value = st.one_of(st.none(), st.booleans(), int_values, float_values, texts, timestamps, garbage)


def _ordered(low: Any, high: Any) -> tuple[Any, Any]:
    return (low, high) if low <= high else (high, low)


@st.composite
def field_specs(draw: st.DrawFn, field_type: str | None = None) -> FieldSpec:
    """Any field contract the policy model accepts, with every check valid for its type."""
    kind = field_type or draw(st.sampled_from(["str", "int", "float", "bool", "datetime"]))
    spec: dict[str, Any] = {"type": kind, "required": draw(st.booleans()), "nullable": draw(st.booleans())}
    if kind in ("int", "float"):
        low, high = draw(st.none() | bounds), draw(st.none() | bounds)
        if low is not None and high is not None:
            low, high = _ordered(low, high)
        if low is not None:
            spec["min"] = low
        if high is not None:
            spec["max"] = high
        if draw(st.booleans()):
            members = (
                int_values if kind == "int" else st.one_of(float_values.filter(lambda v: not math.isnan(v)), int_values)
            )
            spec["in"] = draw(st.lists(members, min_size=1, max_size=4))
    elif kind == "str":
        if draw(st.booleans()):
            spec["pattern"] = draw(st.sampled_from(PATTERNS))
        low, high = draw(st.none() | st.integers(0, 6)), draw(st.none() | st.integers(0, 6))
        if low is not None and high is not None:
            low, high = _ordered(low, high)
        if low is not None:
            spec["min_length"] = low
        if high is not None:
            spec["max_length"] = high
        if draw(st.booleans()):
            spec["in"] = draw(st.lists(texts.filter(_encodable), min_size=1, max_size=4))
    elif kind == "bool" and draw(st.booleans()):
        spec["in"] = draw(st.lists(st.booleans(), min_size=1, max_size=2))
    return FieldSpec.model_validate(spec)


def _encodable(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def values_for(spec: FieldSpec) -> st.SearchStrategy[Any]:
    """Values a record may carry for this field, weighted towards the ones near its checks."""
    near: list[st.SearchStrategy[Any]] = []
    if spec.in_:
        near.append(st.sampled_from(spec.in_))
    if spec.type in ("int", "float"):
        for bound in (spec.min, spec.max):
            if bound is not None and (isinstance(bound, int) or math.isfinite(bound)):
                near.append(st.sampled_from([bound, bound - 1, bound + 1]))
                if isinstance(bound, int) and abs(bound) < 2**1000:
                    near.append(st.sampled_from([float(bound), bound + 0.5, bound - 0.5]))
                else:
                    near.append(st.sampled_from([math.floor(bound), math.ceil(bound)]))
        near.append(int_values if spec.type == "int" else st.one_of(float_values, int_values))
    elif spec.type == "str":
        near.append(texts)
        if spec.pattern:
            matching = st.from_regex(spec.pattern.replace("$", r"\Z"), alphabet=st.characters(codec="utf-8"))
            near.append(matching)
            near.append(st.tuples(matching, st.sampled_from(["\n", "\x1c", " ", "é", "\u0301", "x"])).map("".join))
    elif spec.type == "bool":
        near.append(st.booleans())
    elif spec.type == "datetime":
        near.append(timestamps)
    return st.one_of(st.one_of(near), any_value)


@st.composite
def contracts_and_rows(draw: st.DrawFn, max_fields: int = 1) -> tuple[Contract, list[dict[str, Any] | None]]:
    """A contract of one to `max_fields` fields and a batch of records' fields for it."""
    count = draw(st.integers(1, max_fields))
    specs = {f"f{n}": draw(field_specs()) for n in range(count)}
    contract = Contract("thing", specs, naive_is_utc=draw(st.booleans()))
    columns = {name: values_for(spec) for name, spec in specs.items()}

    @st.composite
    def row(inner: st.DrawFn) -> dict[str, Any] | None:
        if inner(st.integers(0, 30)) == 0:
            return None
        out: dict[str, Any] = {}
        for name, values in columns.items():
            value = inner(st.one_of(st.just(_MISSING), values))
            if value is not _MISSING:
                out[name] = value
        if inner(st.integers(0, 10)) == 0:
            out["unrelated"] = "not in the contract"
        return out

    rows = draw(st.lists(row(), min_size=1, max_size=60))
    return contract, rows


def decide_both_ways(contract: Contract, rows: list[dict[str, Any] | None]) -> None:
    one_by_one = [contract.check_one(r) for r in rows]
    assert one_by_one == contract.check_many(rows)


SLOW = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@settings(SLOW, max_examples=300)
@given(contracts_and_rows())
def test_one_field_decides_as_pandera(case: tuple[Contract, list[dict[str, Any] | None]]) -> None:
    """For any single-field contract and batch, check_one and check_many find the same violations."""
    decide_both_ways(*case)


@settings(SLOW, max_examples=120)
@given(contracts_and_rows(max_fields=4))
def test_several_fields_decide_as_pandera(case: tuple[Contract, list[dict[str, Any] | None]]) -> None:
    """With several fields, violations come in field order, then check order, the same both ways."""
    decide_both_ways(*case)


@pytest.mark.parametrize("field_type", ["str", "int", "float", "bool", "datetime"])
@settings(SLOW, max_examples=40)
@given(data=st.data())
def test_each_type_decides_as_pandera(field_type: str, data: st.DataObject) -> None:
    """Every field type gets its share of examples, whatever the mix above draws."""
    spec = data.draw(field_specs(field_type))
    contract = Contract("thing", {"f": spec}, naive_is_utc=data.draw(st.booleans()))
    rows = data.draw(st.lists(st.one_of(st.just({}), values_for(spec).map(lambda v: {"f": v})), max_size=80))
    decide_both_ways(contract, rows)


# Regular expressions built from the pieces policies use, and the pieces where the engines differ.
_ATOMS = (
    "a", "b", "x", "é", "K", "ſ", "İ", " ", "-", ".", "@", "_", "\\.", "\\-", "\\$", "\\n", "\\t", "\\x41", "\\u00e9",
    "\\d", "\\D", "\\w", "\\W", "\\s", "\\S", "\\b", "\\B", "\\A", "^", "$", "[a-z]", "[^a-z]", "[\\w.-]", "[^@\\s]",
    "[\\d\\s]", "[^\\S]", "[]a]", "[a-]", "[\\x00-\\x1f]", "[é-ú]", "\\u0301", "[[:alpha:]]", "[a-z&&b]", "\\<", "#",
)  # fmt: skip
_QUANTIFIERS = ("", "", "", "*", "+", "?", "{2}", "{1,3}", "{2,}", "*?", "+?", "{,2}", "*+", "{x}")


@st.composite
def regexes(draw: st.DrawFn) -> str:
    """A small regular expression: atoms, quantifiers, groups, alternation and flags."""

    def sequence(depth: int) -> str:
        parts = []
        for _ in range(draw(st.integers(0, 4))):
            if depth < 2 and draw(st.integers(0, 5)) == 0:
                opening = draw(st.sampled_from(["(", "(?:", "(?P<g>", "(?i:", "(?m:", "(?-i:", "(?s:", "(?x:", "(?="]))
                atom = opening + sequence(depth + 1) + ")"
            else:
                atom = draw(st.sampled_from(_ATOMS))
            parts.append(atom + draw(st.sampled_from(_QUANTIFIERS)))
        text = "".join(parts)
        if depth < 2 and draw(st.integers(0, 4)) == 0:
            text += "|" + sequence(depth + 1)
        return text

    flags = draw(st.sampled_from(["", "", "", "(?i)", "(?m)", "(?s)", "(?im)", "(?x)", "(?u)"]))
    return flags + sequence(0)


regex_text = st.one_of(
    st.text(st.sampled_from("abxéKkſsSiİ -.@_\n\t\x1c\u0301\u00a0AZ09٣²"), max_size=8),
    st.text(max_size=6),
    st.sampled_from(PATTERN_TEXT),
)


@settings(SLOW, max_examples=400)
@given(pattern=regexes(), values=st.lists(regex_text, min_size=1, max_size=40))
def test_any_pattern_decides_as_polars(pattern: str, values: list[str]) -> None:
    """For any pattern both engines accept, Python's verdict on every value is polars' verdict."""
    try:
        with warnings.catch_warnings():  # `[[:alpha:]]`: Python warns of a nested set, and takes it
            warnings.simplefilter("ignore", FutureWarning)
            spec = FieldSpec(type="str", pattern=pattern)
    except ValidationError:
        assume(False)  # Python's re refuses it: the policy does not load
    try:
        contract = Contract("thing", {"f": spec}, naive_is_utc=False)
    except PolicyError:
        assume(False)  # polars refuses it: the policy does not load
    rows: list[dict[str, Any] | None] = [{"f": v} for v in values]
    decide_both_ways(contract, rows)


def test_python_and_rust_agree_on_white_space() -> None:
    """The contract's `\\s` is Rust's White_Space, not Python's (which adds \\x1c-\\x1f)."""
    spec = FieldSpec(type="str", pattern=r"\s")
    contract = Contract("thing", {"f": spec}, naive_is_utc=False)
    rows: list[dict[str, Any] | None] = [{"f": chr(c)} for c in range(0x3001) if not 0xD800 <= c <= 0xDFFF]
    decide_both_ways(contract, rows)
