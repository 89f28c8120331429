"""The example policy and its sample records decide as the README says they do."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from guard import Guard, ReasonCode, load_policy
from tests.conftest import EXAMPLE_POLICY, POLICIES

SAMPLE = POLICIES / "support-assistant.records.jsonl"
EXPECTED = {
    "cust-1": [], "cust-2": [], "cust-3": ["STALE"], "cust-4": ["AGING"], "cust-5": [],
    "cust-6": ["CONFLICT"], "cust-7": ["UNKNOWN_SOURCE"], "cust-8": ["SCHEMA_VIOLATION"],
    "ord-1": [], "ord-2": [], "ord-3": ["MISSING_PROVENANCE"], "ord-4": ["PROVENANCE_BROKEN"],
    "inv-1": [], "inv-2": ["UNSIGNED"], "inv-3": ["BAD_SIGNATURE"], "case-1": [],
    "case-2": ["FUTURE_TIMESTAMP"], "case-3": ["MISSING_TIMESTAMP"], "case-4": ["UNAUTHORIZED_SOURCE"],
    "lead-1": ["UNKNOWN_OBJECT"], "bad-1": ["INVALID_RECORD"], "prod-1": [],
}  # fmt: skip


def test_sample_shows_every_outcome(tmp_path: object) -> None:
    records = [json.loads(line) for line in SAMPLE.read_text(encoding="utf-8").splitlines()]
    guard = Guard(load_policy(EXAMPLE_POLICY), environ={"STRIPE_SIGNING_KEY": "example-stripe-key"})
    result = guard.check(records, pipeline="sample", now=datetime(2026, 11, 22, 10, 30, tzinfo=UTC))
    assert {d.id: [c.value for c in d.codes] for d in result.decisions} == EXPECTED
    shown = {code for codes in EXPECTED.values() for code in codes}
    assert set(ReasonCode) - {ReasonCode(c) for c in shown} == {ReasonCode.SUPERSEDED}


def test_a_second_run_sees_the_owner_newer_version() -> None:
    """SUPERSEDED needs an owner version learned earlier: the second check of the sample shows it."""
    records = [json.loads(line) for line in SAMPLE.read_text(encoding="utf-8").splitlines()]
    guard = Guard(load_policy(EXAMPLE_POLICY), environ={"STRIPE_SIGNING_KEY": "example-stripe-key"})
    now = datetime(2026, 11, 22, 10, 30, tzinfo=UTC)
    guard.check(records, pipeline="sample", now=now)
    again = {d.id: [c.value for c in d.codes] for d in guard.check(records, pipeline="sample", now=now).decisions}
    assert again["cust-2"] == ["SUPERSEDED"]
    assert again["cust-1"] == []
