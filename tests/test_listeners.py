"""Check listeners: told of every check after its lineage is kept, and never able to fail one."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from guard import CheckResult, Guard, Policy, Record
from tests.conftest import NOW, RecordFactory


def test_a_listener_hears_every_check_with_the_records_as_checked(
    minimal_policy: Policy, record: RecordFactory
) -> None:
    heard: list[tuple[CheckResult, list[Any]]] = []
    guard = Guard(minimal_policy)
    guard.add_listener(lambda result, records: heard.append((result, list(records))))
    model = Record(id="m", object="customer", key="C-9", source="salesforce", updated_at=NOW)

    result = guard.check([record(id="a"), model], pipeline="p", now=NOW)

    assert [(r.run_id, [e["id"] for e in records]) for r, records in heard] == [(result.run_id, ["a", "m"])]
    assert all(isinstance(e, dict) for e in heard[0][1])


def test_a_failing_listener_is_logged_and_the_check_stands(
    minimal_policy: Policy, record: RecordFactory, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(result: CheckResult, records: Any) -> None:
        raise RuntimeError("receiver down")

    heard: list[str] = []
    guard = Guard(minimal_policy)
    guard.add_listener(broken)
    guard.add_listener(lambda result, records: heard.append(result.run_id))

    with caplog.at_level(logging.ERROR, logger="freshguard"):
        result = guard.check([record()], pipeline="p", now=NOW)

    assert result.verdict.value == "pass"
    assert heard == [result.run_id]
    assert "a check listener" in caplog.text
    assert "receiver down" in caplog.text


def test_a_removed_listener_hears_nothing_more(minimal_policy: Policy, record: RecordFactory) -> None:
    heard: list[str] = []

    def listener(result: CheckResult, records: Any) -> None:
        heard.append(result.run_id)

    guard = Guard(minimal_policy)
    guard.add_listener(listener)
    guard.check([record()], pipeline="p", now=NOW)
    guard.remove_listener(listener)
    guard.check([record()], pipeline="p", now=NOW)

    assert len(heard) == 1
