"""Odd input a pipeline can send never escapes `Guard.check` as an exception: it is decided."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from guard import Action, Guard, InputError, ReasonCode, parse_policy, with_signature
from tests.conftest import MINIMAL_POLICY, NOW, RecordFactory

SIGNED = MINIMAL_POLICY.replace(
    "salesforce: {team: sales-ops}", "salesforce: {team: sales-ops, signing_key_env: SF_KEY}"
)


def nested(depth: int) -> Any:
    value: Any = "bottom"
    for _ in range(depth):
        value = {"x": value}
    return value


@pytest.mark.parametrize("stamp", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"])
def test_timestamps_beyond_the_calendar_in_utc_are_invalid_and_stored(
    record: RecordFactory, tmp_path: Path, stamp: str
) -> None:
    guard = Guard(parse_policy(MINIMAL_POLICY), store=f"sqlite:///{tmp_path / 'x.db'}")
    decision = guard.check([record(observed_at=stamp)], pipeline="t", now=NOW).decisions[0]
    assert decision.codes == (ReasonCode.INVALID_RECORD,)
    assert "outside the years 1 to 9999" in decision.reasons[0].message


def test_deeply_nested_values_are_decided(record: RecordFactory, tmp_path: Path) -> None:
    guard = Guard(parse_policy(SIGNED), store=f"sqlite:///{tmp_path / 'x.db'}", environ={"SF_KEY": "k"})
    deep = with_signature(record(), "k") | {"fields": {"email": "a@b.c", "x": nested(995)}}
    copies = [record(id=f"c{i}", source="sap", fields={"email": "a@b.c", "x": nested(995)}) for i in range(2)]
    result = guard.check([deep, *copies], pipeline="t", now=NOW)
    assert result.decisions[0].codes == (ReasonCode.BAD_SIGNATURE,)
    # too deep to compare: the copies count as disagreeing, so they are blocked, never silently allowed
    assert [d.codes for d in result.decisions[1:]] == [(ReasonCode.CONFLICT,), (ReasonCode.CONFLICT,)]


def test_many_copies_with_keys_that_are_not_text(guard: Guard, record: RecordFactory) -> None:
    copies = [record(id=f"r{i}", source="sap", fields={"email": "a@b.c", 1: i % 2}) for i in range(17)]
    result = guard.check(copies, pipeline="t", now=NOW)
    assert {d.codes for d in result.decisions} == {(ReasonCode.CONFLICT,)}


@pytest.mark.parametrize("copies", [2, 17])
def test_identical_copies_with_nan_do_not_conflict(guard: Guard, record: RecordFactory, copies: int) -> None:
    records = [record(id=f"r{i}", source="sap", fields={"email": "a@b.c", "score": math.nan}) for i in range(copies)]
    assert {d.action for d in guard.check(records, pipeline="t", now=NOW).decisions} == {Action.ALLOW}


@pytest.mark.parametrize("key", [10**5000, 2**64], ids=["huge", "beyond 64 bits"])
def test_integer_keys_must_fit_in_64_bits(guard: Guard, record: RecordFactory, key: int) -> None:
    assert guard.check([record(key=key)], pipeline="t", now=NOW).decisions[0].codes == (ReasonCode.INVALID_RECORD,)


def test_ids_that_look_like_stand_ins_are_still_checked_for_duplicates(guard: Guard, record: RecordFactory) -> None:
    result = guard.check([record(id="#0"), record(id="#0", key="C-2"), {"object": "x"}], pipeline="t", now=NOW)
    assert [d.codes for d in result.decisions[:2]] == [(), (ReasonCode.INVALID_RECORD,)]


def test_signatures_are_checked_whatever_the_object(record: RecordFactory) -> None:
    guard = Guard(parse_policy(SIGNED), environ={"SF_KEY": "k"})
    codes = guard.check([record(object="lead")], pipeline="t", now=NOW).decisions[0].codes
    assert codes == (ReasonCode.UNKNOWN_OBJECT, ReasonCode.UNSIGNED)


def test_conflict_between_owner_copies_says_so(record: RecordFactory) -> None:
    guard = Guard(parse_policy(MINIMAL_POLICY))
    owners = [record(id="a", fields={"email": "a@b.c"}), record(id="b", fields={"email": "z@b.c"})]
    message = guard.check(owners, pipeline="t", now=NOW).decisions[0].reasons[0].message
    assert "copies from salesforce, the system of record, disagree among themselves" in message


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (("lead", "L-1", NOW - timedelta(hours=1)), "does not cover"),
        (("customer", "", NOW - timedelta(hours=1)), "needs a key"),
        (("customer", "C-1", "2026-11-22T10:00:00Z"), "must be a datetime"),
        (("customer", "C-1", datetime(2026, 11, 22, 10)), "timezone-aware"),
        (("customer", "C-1", datetime(9999, 1, 1, tzinfo=UTC)), "in the future"),
    ],
)
def test_change_notifications_are_validated(guard: Guard, change: tuple[Any, Any, Any], words: str) -> None:
    with pytest.raises(InputError, match=words):
        guard.note_changes([change])


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"pipeline": "p" * 201}, "1 to 200 characters"),
        ({"pipeline": "p", "now": "2026-11-22T10:00:00Z"}, "must be a datetime"),
        ({"pipeline": "p", "consumer": "gpt"}, "consumer must be a mapping"),
    ],
)
def test_check_arguments_are_validated(guard: Guard, record: RecordFactory, kwargs: dict[str, Any], words: str) -> None:
    with pytest.raises(InputError, match=words):
        guard.check([record()], **kwargs)


def test_checked_at_is_utc(guard: Guard, record: RecordFactory) -> None:
    local = NOW.astimezone(__import__("datetime").timezone(timedelta(hours=5)))
    assert guard.check([record()], pipeline="t", now=local).checked_at.utcoffset() == timedelta(0)
