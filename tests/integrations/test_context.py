"""Reading records in tool text, fail-closed, and the notices the model reads instead of a blocked record."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from guard import Guard, load_policy
from guard.integrations.context import (
    TextRecords,
    Unreadable,
    is_record_like,
    notice,
    read_text,
    replaced,
    summary,
)
from tests.conftest import EXAMPLE_POLICY
from tests.integrations.conftest import customer

STALE = customer("cust-stale", "C-2001", "sap", timedelta(hours=3, minutes=5), name="Bruno Costa")
FRESH = customer("cust-fresh", "C-1042", "salesforce", timedelta(minutes=5))


def paths(read: TextRecords | Unreadable | None) -> list[tuple[str | int, ...]]:
    assert isinstance(read, TextRecords), read
    return [path for path, _ in read.records]


@pytest.mark.parametrize(
    ("value", "record_like"),
    [
        ({"object": "customer", "key": "C-1"}, True),  # no source: still a record, decided INVALID_RECORD
        ({"id": "a", "source": "sap"}, True),
        ({"key": "C-1", "source": "sap"}, True),
        ({"id": "chatcmpl-1", "object": "chat.completion"}, True),  # any two of the four
        ({"id": 7, "name": "weather"}, False),
        ({"key": "C-1"}, False),
        ("object key source", False),
        ([{"object": "customer", "key": "C-1"}], False),  # a list is not itself a record
    ],
)
def test_two_required_members_make_an_object_record_like(value: object, record_like: bool) -> None:
    assert is_record_like(value) is record_like


def test_one_record_a_list_and_a_wrapping_object_are_read_where_they_sit() -> None:
    assert paths(read_text(json.dumps(STALE))) == [()]
    assert paths(read_text(json.dumps([STALE, FRESH]))) == [(0,), (1,)]
    wrapped = {"results": [STALE, FRESH], "next_page": None, "best": FRESH}
    assert paths(read_text(json.dumps(wrapped))) == [("results", 0), ("results", 1), ("best",)]
    assert paths(read_text(json.dumps({"data": [STALE], "items": [FRESH]}))) == [("data", 0), ("items", 0)]


def test_a_list_with_one_record_in_it_is_checked_item_by_item() -> None:
    read = read_text(json.dumps([STALE, {"note": "page 1 of 2"}, "end"]))
    assert paths(read) == [(0,), (1,), (2,)]  # the stray items go to the check too (INVALID_RECORD)


def test_an_envelope_missing_a_member_is_still_read_as_a_record() -> None:
    missing = {k: v for k, v in STALE.items() if k != "source"}
    assert paths(read_text(json.dumps(missing))) == [()]


@pytest.mark.parametrize(
    "text",
    [
        json.dumps(STALE) + "\nEnd of results",  # JSON, then prose
        "Here is what the CRM says: " + json.dumps(STALE),  # prose, then JSON
        json.dumps([STALE])[:-1],  # cut short
        "[" * 5000 + json.dumps(STALE) + "]" * 5000,  # too deep for the parser
    ],
    ids=["trailing-prose", "leading-prose", "truncated", "too-deep"],
)
def test_text_that_holds_records_but_is_not_json_alone_is_unreadable(text: str) -> None:
    assert isinstance(read_text(text), Unreadable)


@pytest.mark.parametrize(
    "value",
    [
        {"response": {"results": [STALE]}},  # two levels down
        [[STALE]],  # a list of lists
        [{"results": [STALE]}],  # a list of wrappers
        {"results": [FRESH], "meta": {"also": STALE}},  # records read, and another deeper
    ],
)
def test_records_deeper_than_the_rules_go_make_the_text_unreadable(value: Any) -> None:
    assert isinstance(read_text(json.dumps(value)), Unreadable)


@pytest.mark.parametrize(
    "text",
    ["the weather is fine", '{"not": "a record"}', "[1, 2, 3]", '{"id": 5, "name": "x"}', "", "[" * 100000],
)
def test_text_without_records_carries_none(text: str) -> None:
    assert read_text(text) is None


def test_replacing_keeps_the_rest_of_the_document() -> None:
    document: dict[str, Any] = {"results": [STALE, FRESH], "next_page": 2}
    out = replaced(document, [(("results", 0), "withheld")])
    assert out == {"results": ["withheld", FRESH], "next_page": 2}
    assert document["results"][0] == STALE  # a copy


@pytest.fixture
def guard(monkeypatch: pytest.MonkeyPatch) -> Iterator[Guard]:
    monkeypatch.setenv("STRIPE_SIGNING_KEY", "example-stripe-key")
    with Guard(load_policy(EXAMPLE_POLICY), store=None) as opened:
        yield opened


def notices_for(guard: Guard, records: list[Any]) -> list[str]:
    result = guard.check(records, pipeline="p")
    return [notice(d) for d in result.blocked]


def test_notices_name_the_entity_and_the_code_and_never_the_records_values(guard: Guard) -> None:
    owner = customer("cust-owner", "C-3003", "salesforce", timedelta(minutes=4), name="Carla Dias")
    copy = customer("cust-sap-copy", "C-3003", "sap", timedelta(minutes=3), credit_limit=9123.0, name="Carla Dias")
    bad = customer("cust-bad", "C-9", "salesforce", timedelta(minutes=1))
    bad["fields"]["email"] = "secret-ssn-123-45-6789"
    broken = {"id": "cust-broken", "object": "customer", "key": "C-7", "source": "sap", "observed_at": "2026-13-45"}
    stale = customer("cust-stale", "C-2001", "sap", timedelta(hours=3, minutes=5, seconds=30), name="Bruno Costa")
    records = [owner, copy, bad, stale, broken]  # dated now: the suite may run long after this module was imported

    said = notices_for(guard, records)

    assert said == [
        "record withheld: customer C-3003 from sap (CONFLICT: another copy is used)",
        "record withheld: customer C-9 from salesforce (SCHEMA_VIOLATION: breaks its contract on email (pattern))",
        "record withheld: customer C-2001 from sap (STALE: 3h 5m old, the limit is 1h)",
        "record withheld: customer C-7 from sap (INVALID_RECORD: malformed envelope (observed_at); "
        "SCHEMA_VIOLATION: breaks its contract on email (required), name (required))",
    ]
    for leaked in ("9123", "secret-ssn", "2026-13-45"):
        assert not any(leaked in n for n in said)
    # operators still read the full reasons
    result = guard.check(records, pipeline="p")
    assert "9123" in summary(result)
    assert "secret-ssn" in summary(result)


def test_a_record_that_is_not_an_envelope_is_named_by_its_position(guard: Guard) -> None:
    assert notices_for(guard, ["page 1 of 2"]) == [
        "record withheld: record #0 (INVALID_RECORD: not a valid record envelope)"
    ]
