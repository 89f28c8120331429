"""guard._native, the C hot loops, against their Python twins: same bytes, same columns, no crash on odd input.

The whole check on the C loop is held to the check modules in test_engine; here, each C
function is held to its twin directly, on values built to reach every branch of the C code.
"""

from __future__ import annotations

import json
import os
import sys
from collections import UserDict
from datetime import timedelta
from pathlib import Path
from types import MappingProxyType
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from guard import Guard, Policy, Reason, ReasonCode
from guard._accel import native
from guard.checks.contract import field_values_python
from guard.engine import (
    conflict_groups,
    contract_members,
    finish,
    fold_reasons,
    identical_copies,
    owner_versions,
    screen,
    superseded_copies,
)
from guard.guard import compile_policy
from guard.lineage._base import _sqlite_time
from guard.lineage._values import all_storable, explain
from guard.lineage.store import record_rows, record_rows_python
from guard.signing import UNSIGNED_MEMBERS, canonical_bytes, canonical_bytes_python
from guard.tallies import tally_check
from tests.conftest import NOW, STRIPE_KEY
from tests.test_engine import records as engine_records

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
from workload import SIGNING_KEY, make_records

if native is None:
    if os.environ.get("FRESHGUARD_REQUIRE_NATIVE") == "1":
        pytest.fail("guard._native is not built, and FRESHGUARD_REQUIRE_NATIVE=1 requires it", pytrace=False)
    pytest.skip("guard._native is not built (no C compiler at install?)", allow_module_level=True)
assert native is not None


class Text(str):
    """A str subclass: plain JSON text to json, but not an exact str to the C code."""


texts = st.one_of(
    st.text(max_size=8),
    st.sampled_from(["", '"', "\\", "\n\t\r\b\f", "\x00\x1f\x7f", "é", "日本", "😀", "\ud800", "a\udfffb"]),
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(),  # nan and infinities included: json refuses them, C hands them back
    texts,
    texts.map(Text),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.lists(inner, max_size=3).map(tuple),
        st.dictionaries(texts, inner, max_size=4),
        st.dictionaries(st.one_of(st.integers(), st.booleans(), st.none()), inner, min_size=1, max_size=2),
    ),
    max_leaves=20,
)
envelopes = st.dictionaries(st.one_of(texts, st.sampled_from(sorted(UNSIGNED_MEMBERS))), values, max_size=6)


def python_outcome(envelope: dict[Any, Any]) -> bytes | type[BaseException]:
    try:
        return canonical_bytes_python(envelope)
    except (TypeError, ValueError, RecursionError) as exc:
        return type(exc)


@settings(max_examples=600, deadline=None)
@given(envelope=envelopes)
def test_canonical_json_is_the_json_modules_bytes_or_hands_back(envelope: dict[Any, Any]) -> None:
    """The C encoder writes exactly json's canonical bytes, or says Unsupported and lets json decide."""
    try:
        produced = native.canonical_json(envelope, UNSIGNED_MEMBERS)
    except native.Unsupported:
        return
    assert produced == python_outcome(envelope)


plain_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=8),
)
plain_values = st.recursive(
    plain_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=4).filter(str.isprintable), inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(envelope=st.dictionaries(st.text(max_size=6), plain_values, max_size=6))
def test_canonical_json_takes_all_plain_json_data_itself(envelope: dict[str, Any]) -> None:
    """Plain JSON data (text keys, finite numbers, valid text) never goes back to Python: the fast case is the case."""
    assert native.canonical_json(envelope, UNSIGNED_MEMBERS) == canonical_bytes_python(envelope)
    assert canonical_bytes(envelope) == canonical_bytes_python(envelope)


def test_canonical_json_hands_back_what_it_does_not_take() -> None:
    deep: Any = "leaf"
    for _ in range(200):
        deep = [deep]
    for odd in ({"a": float("nan")}, {"a": {1: 2}}, {"a": Text("x")}, {"a": "\ud800"}, {"a": deep}, UserDict(a=1)):
        with pytest.raises(native.Unsupported):
            native.canonical_json(odd, None)
    with pytest.raises(TypeError, match="exclude"):
        native.canonical_json({}, ["id"])  # type: ignore[arg-type]


rows = st.lists(
    st.one_of(
        st.none(),
        st.dictionaries(st.sampled_from(["email", "tier", "x"]), scalars, max_size=3),
        st.dictionaries(st.sampled_from(["email", "tier"]), scalars, max_size=2).map(UserDict),
    ),
    max_size=8,
)


@settings(max_examples=200, deadline=None)
@given(rows=rows)
def test_field_values_reads_every_row_as_python_does(rows: list[Any]) -> None:
    names = ["email", "tier", "missing"]
    assert native.field_values(rows, names) == field_values_python(names, rows)


def test_screen_refuses_malformed_arguments_with_a_message(example_policy: Policy) -> None:
    """A caller's mistake is a TypeError or ValueError that says what is wrong, not a crash."""
    columns = tuple([None] for _ in range(9))

    def never(*args: Any) -> Any:
        raise AssertionError("not called for an empty record")

    def call(limits: Any = None, cols: Any = columns) -> Any:
        return native.screen([{}], limits or {}, {}, 60.0, {}, never, never, never, cols, never, frozenset())

    with pytest.raises(TypeError, match="limits values"):
        call(limits={"customer": ("rules", 5, frozenset(), "sap", True)})
    with pytest.raises(ValueError, match="9 lists"):
        call(cols=columns[:3])
    with pytest.raises(ValueError, match="as long as the records"):
        call(cols=tuple([] for _ in range(9)))


class Sneaky:
    """A key that equals "id" and empties the record when compared: the C loop must hold its own references."""

    def __init__(self, record: dict[Any, Any]) -> None:
        self.record = record

    def __hash__(self) -> int:
        return hash("id")

    def __eq__(self, other: object) -> bool:
        self.record.clear()
        return False


def test_screen_survives_a_record_that_changes_while_it_is_read(example_policy: Policy, record: Any) -> None:
    compiled = compile_policy(example_policy, {"STRIPE_SIGNING_KEY": STRIPE_KEY})
    odd = record(id="r1")
    del odd["id"]
    odd[Sneaky(odd)] = "x"
    batch = screen([odd, record(id="r2")], compiled, NOW)
    table = finish(batch, {})
    assert [d.id for d in table][1] == "r2"


def test_the_bench_workload_decides_alike_in_c_and_in_python(example_policy: Policy) -> None:
    """3,000 mixed records (stale, broken, signed, conflicting, unknown): every decision, word and age alike."""
    compiled = compile_policy(example_policy, {"STRIPE_SIGNING_KEY": SIGNING_KEY})
    batch = make_records(3000, NOW - timedelta(minutes=1))

    def decided(**how: bool) -> list[Any]:
        table = finish(screen(batch, compiled, NOW, **how), {})
        return [(d.id, d.action, d.reasons, d.age_s, d.observed_at, d.updated_at) for d in table]

    full = decided(fast=False)
    assert decided(fast=True, use_native=True) == full
    assert decided(fast=True, use_native=False) == full


odd_contents = st.one_of(
    st.none(), texts, texts.map(Text), st.integers(), st.just(b"bytes"), st.lists(st.integers(), max_size=2)
)
odd_fields = st.one_of(
    st.none(),
    st.just({}),
    st.dictionaries(st.sampled_from(["email", "tier", "n"]), scalars, max_size=3),
    st.just({1: "a", "b": 2}),  # keys orjson refuses
    st.just({"n": 2**80}),  # a number orjson refuses
    st.just(UserDict(a=1)),
    st.just([1, 2]),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    batch=st.lists(engine_records(), max_size=8),
    contents=st.lists(st.tuples(odd_contents, odd_fields), max_size=8),
    sqlite=st.booleans(),
)
def test_record_rows_are_the_python_rows(
    example_policy: Policy, batch: list[Any], contents: list[tuple[Any, Any]], sqlite: bool
) -> None:
    """The lineage rows built in C are the Python rows: every cell, every content hash, every timestamp."""
    for record, (content, fields) in zip(batch, contents, strict=False):
        if isinstance(record, dict):
            record["content"], record["fields"] = content, fields
    guard = Guard(example_policy, environ={"STRIPE_SIGNING_KEY": STRIPE_KEY})
    result = guard.check(batch, pipeline="t", now=NOW)
    table = result.decisions
    columns = (
        table.ids, table.objects, table.keys, table.sources, table.observed, table.updated, list(batch),
        table.ages, table.actions, table.reasons,
    )  # fmt: skip
    stamp = _sqlite_time if sqlite else None
    assert record_rows(result.run_id, columns, stamp) == record_rows_python(result.run_id, columns, stamp)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batch=st.lists(engine_records(), max_size=14), shifts=st.lists(st.integers(-90, 90), max_size=14))
def test_the_second_pass_loops_are_their_python_twins(
    example_policy: Policy, batch: list[Any], shifts: list[int]
) -> None:
    """Supersession, conflict groups, identical copies, contract members, actions, owner versions: C = Python."""
    compiled = compile_policy(example_policy, {"STRIPE_SIGNING_KEY": STRIPE_KEY})
    first = screen(batch, compiled, NOW)
    marks = {
        (obj, key): NOW + timedelta(minutes=shift)
        for obj, key, shift in zip(first.objects, first.keys, shifts, strict=False)
        if obj is not None and key is not None
    }
    assert superseded_copies(first, marks) == superseded_copies(first, marks, use_native=False)
    groups = conflict_groups(first)
    assert groups == conflict_groups(first, use_native=False)
    for members in groups:
        copies = [first.raw[i] for i in members]
        assert identical_copies(copies) == identical_copies(copies, use_native=False)
    assert fold_reasons(first.reasons) == fold_reasons(first.reasons, use_native=False)
    assert contract_members(first) == contract_members(first, use_native=False)
    table = finish(first, marks)
    assert owner_versions(first, table) == owner_versions(first, table, use_native=False)


def test_identical_copies_compare_field_types_and_survive_odd_values() -> None:
    base = {"fields": {"n": 1, "s": "a"}, "content": "c"}
    assert identical_copies([base, dict(base)])
    assert not identical_copies([base, {**base, "fields": {"n": 1.0, "s": "a"}}])  # equal, but not the same type
    assert not identical_copies([base, {**base, "content": "d"}])
    deep: Any = []
    for _ in range(100_000):
        deep = [deep]
    assert not identical_copies([{"fields": {"x": deep}}, {"fields": {"x": deep[0]}}])  # RecursionError: not identical


@settings(max_examples=300, deadline=None)
@given(values=st.lists(st.one_of(st.none(), texts, texts.map(Text), st.just("a\x00b"), st.just("é\x00")), max_size=6))
def test_all_storable_is_its_python_twin(values: list[str | None]) -> None:
    """A NUL or a lone surrogate anywhere in a column, and only that, sends it through `storable`."""
    assert all_storable(values) == all_storable(values, use_native=False)


def test_all_storable_hands_back_what_is_not_text() -> None:
    assert native.all_storable(["a", 5]) is None
    assert native.all_storable(("a",)) is None  # type: ignore[arg-type]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batch=st.lists(engine_records(), max_size=14))
def test_tallies_are_their_python_twins(example_policy: Policy, batch: list[Any]) -> None:
    """Counts, reason counts, the age histogram, the largest age and the exact sum of ages: C = Python."""
    table = Guard(example_policy, environ={"STRIPE_SIGNING_KEY": STRIPE_KEY}).check(batch, pipeline="t", now=NOW)
    assert tally_check(table.decisions) == tally_check(table.decisions, use_native=False)


def test_tallies_of_the_bench_workload_are_their_python_twins(example_policy: Policy) -> None:
    guard = Guard(example_policy, environ={"STRIPE_SIGNING_KEY": SIGNING_KEY})
    table = guard.check(make_records(3000, NOW - timedelta(minutes=1)), pipeline="t", now=NOW).decisions
    native_tallies = tally_check(table)
    assert native_tallies == tally_check(table, use_native=False)
    assert sum(t.records for t in native_tallies) == 3000


details = st.dictionaries(
    st.text(max_size=4),
    st.recursive(scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=2)),
    max_size=3,
)


@settings(max_examples=300, deadline=None)
@given(
    reasons=st.lists(
        st.builds(Reason, st.sampled_from(list(ReasonCode)), texts, details | details.map(MappingProxyType)),
        max_size=3,
    )
)
def test_explanations_written_from_the_dataclasses_are_to_dicts_json(reasons: list[Reason]) -> None:
    """What the store keeps as a decision's explanations is the JSON of each reason's to_dict(), whichever path."""
    listed = [reason.to_dict() for reason in reasons]
    try:
        expected = orjson.dumps(listed).decode()
    except TypeError:
        expected = None
    found = explain(tuple(reasons))
    if expected is not None:
        assert found == expected
    assert json.loads(found) == json.loads(explain(list(reasons)))
