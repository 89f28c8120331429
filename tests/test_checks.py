"""Every reason code of docs/decisions.md, one table of records per concern, decided through `Guard.check`."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from guard import Action, Guard, InputError, ReasonCode, Record, Verdict, parse_policy
from tests.conftest import MINIMAL_POLICY, NOW, RecordFactory, ts

C = ReasonCode


def ago(**delta: float) -> str:
    return ts(NOW - timedelta(**delta))


def ahead(**delta: float) -> str:
    return ts(NOW + timedelta(**delta))


def decide_one(guard: Guard, record: Any) -> tuple[Action, tuple[ReasonCode, ...]]:
    decision = guard.check([record], pipeline="test", now=NOW).decisions[0]
    return decision.action, decision.codes


ENVELOPE_CASES = {
    "valid": ({}, Action.ALLOW, ()),
    "id missing": ({"id": ...}, Action.BLOCK, (C.INVALID_RECORD,)),
    "object missing": ({"object": ...}, Action.BLOCK, (C.INVALID_RECORD,)),
    "key empty": ({"key": ""}, Action.BLOCK, (C.INVALID_RECORD,)),
    "source a number": ({"source": 7}, Action.BLOCK, (C.INVALID_RECORD,)),
    "numeric key is text": ({"key": 1042}, Action.ALLOW, ()),
    "observed_at garbage": ({"observed_at": "yesterday"}, Action.BLOCK, (C.INVALID_RECORD,)),
    "observed_at naive": ({"observed_at": "2026-11-22T11:55:00"}, Action.BLOCK, (C.INVALID_RECORD,)),
    "updated_at a number": ({"updated_at": 1700000000}, Action.BLOCK, (C.INVALID_RECORD,)),
    "fields a list": ({"fields": [1, 2]}, Action.BLOCK, (C.INVALID_RECORD,)),
    "content a number": ({"content": 12}, Action.BLOCK, (C.INVALID_RECORD,)),
    "lineage not a list": ({"lineage": "salesforce"}, Action.BLOCK, (C.INVALID_RECORD,)),
    "lineage hop without time": ({"lineage": [{"system": "salesforce"}]}, Action.BLOCK, (C.INVALID_RECORD,)),
    "offset other than UTC": ({"observed_at": ts(NOW - timedelta(minutes=5)).replace("Z", "+00:00")}, Action.ALLOW, ()),
}


@pytest.mark.parametrize(("overrides", "action", "codes"), ENVELOPE_CASES.values(), ids=ENVELOPE_CASES.keys())
def test_envelope(
    guard: Guard, record: RecordFactory, overrides: dict[str, Any], action: Action, codes: tuple[ReasonCode, ...]
) -> None:
    assert decide_one(guard, record(**overrides)) == (action, codes)


@pytest.mark.parametrize("value", [None, "text", 42, ["list"], True], ids=repr)
def test_a_record_that_is_not_an_object_blocks_only_itself(guard: Guard, record: RecordFactory, value: Any) -> None:
    result = guard.check([record(), value], pipeline="test", now=NOW)
    assert [d.action for d in result.decisions] == [Action.ALLOW, Action.BLOCK]
    assert result.decisions[1].id == "#1"
    assert result.decisions[1].codes == (C.INVALID_RECORD,)
    assert result.verdict is Verdict.PARTIAL


def test_duplicate_ids_block_the_later_copies(guard: Guard, record: RecordFactory) -> None:
    first, second = record(id="same"), record(id="same", key="C-2")
    result = guard.check([first, second], pipeline="test", now=NOW)
    assert [d.codes for d in result.decisions] == [(), (C.INVALID_RECORD,)]
    assert "already taken by record #0" in result.decisions[1].reasons[0].message


def test_naive_timestamps_may_be_declared_utc(record: RecordFactory) -> None:
    policy = parse_policy(MINIMAL_POLICY + "naive_timestamps: utc\n")
    naive = (NOW - timedelta(minutes=5)).replace(tzinfo=None).isoformat()
    assert decide_one(Guard(policy), record(observed_at=naive, updated_at=...)) == (Action.ALLOW, ())


OWNERSHIP_CASES = {
    "owner": ({"source": "salesforce"}, ()),
    "replica": ({"source": "sap"}, ()),
    "unknown source": ({"source": "hubspot"}, (C.UNKNOWN_SOURCE,)),
    "unknown object": ({"object": "lead"}, (C.UNKNOWN_OBJECT,)),
    "both unknown": ({"object": "lead", "source": "hubspot"}, (C.UNKNOWN_OBJECT, C.UNKNOWN_SOURCE)),
}


@pytest.mark.parametrize(("overrides", "codes"), OWNERSHIP_CASES.values(), ids=OWNERSHIP_CASES.keys())
def test_ownership(
    guard: Guard, record: RecordFactory, overrides: dict[str, Any], codes: tuple[ReasonCode, ...]
) -> None:
    assert decide_one(guard, record(**overrides))[1] == codes


def test_unauthorized_source_names_the_system_of_record() -> None:
    policy = parse_policy(MINIMAL_POLICY.replace("replicas: [sap, warehouse]", "replicas: [sap]"))
    guard = Guard(policy)
    copy = {
        "id": "x",
        "object": "customer",
        "key": "C-1",
        "source": "warehouse",
        "observed_at": ago(minutes=1),
        "fields": {"email": "a@b.c"},
    }
    decision = guard.check([copy], pipeline="t", now=NOW).decisions[0]
    assert decision.codes == (C.UNAUTHORIZED_SOURCE,)
    assert "system of record is salesforce" in decision.reasons[0].message


FRESHNESS_CASES = {
    "fresh": ({"observed_at": ago(minutes=5)}, Action.ALLOW, ()),
    "exactly warn_age": ({"observed_at": ago(minutes=30)}, Action.ALLOW, ()),
    "aging": ({"observed_at": ago(minutes=31)}, Action.WARN, (C.AGING,)),
    "exactly max_age": ({"observed_at": ago(hours=1)}, Action.WARN, (C.AGING,)),
    "stale": ({"observed_at": ago(hours=3, minutes=5)}, Action.BLOCK, (C.STALE,)),
    "age from updated_at when not observed": (
        {"observed_at": ..., "updated_at": ago(hours=2)},
        Action.BLOCK,
        (C.STALE,),
    ),
    "observed_at wins over updated_at": ({"observed_at": ago(minutes=1), "updated_at": ago(days=3)}, Action.ALLOW, ()),
    "no timestamp": ({"observed_at": ..., "updated_at": ...}, Action.BLOCK, (C.MISSING_TIMESTAMP,)),
    "null timestamps": ({"observed_at": None, "updated_at": None}, Action.BLOCK, (C.MISSING_TIMESTAMP,)),
    "within clock skew": ({"observed_at": ahead(minutes=2)}, Action.ALLOW, ()),
    "beyond clock skew": ({"observed_at": ahead(minutes=2, seconds=1)}, Action.BLOCK, (C.FUTURE_TIMESTAMP,)),
    "updated_at in the future": ({"updated_at": ahead(hours=1)}, Action.BLOCK, (C.FUTURE_TIMESTAMP,)),
}


@pytest.mark.parametrize(("overrides", "action", "codes"), FRESHNESS_CASES.values(), ids=FRESHNESS_CASES.keys())
def test_freshness(
    guard: Guard, record: RecordFactory, overrides: dict[str, Any], action: Action, codes: tuple[ReasonCode, ...]
) -> None:
    assert decide_one(guard, record(**overrides)) == (action, codes)


def test_stale_message_reads_like_design_md(guard: Guard, record: RecordFactory) -> None:
    stale = record(source="sap", observed_at=ago(hours=3, minutes=5, seconds=20))
    decision = guard.check([stale], pipeline="t", now=NOW).decisions[0]
    assert decision.reasons[0].message == "customer C-1042 from sap is 3h 5m old; the limit agreed with sales-ops is 1h"
    assert decision.reasons[0].detail["max_age_s"] == 3600
    assert decision.age_s == pytest.approx(3 * 3600 + 5 * 60 + 20)


SCHEMA_CASES = {
    "missing required": ({"tier": "gold"}, [("email", "required")]),
    "wrong type": ({"email": "a@b.c", "credit_limit": "lots"}, [("credit_limit", "type")]),
    "bool is not a number": ({"email": "a@b.c", "credit_limit": True}, [("credit_limit", "type")]),
    "int is a float": ({"email": "a@b.c", "credit_limit": 5}, []),
    "below min": ({"email": "a@b.c", "credit_limit": -1}, [("credit_limit", "min")]),
    "not in set": ({"email": "a@b.c", "tier": "platinum"}, [("tier", "in")]),
    "pattern": ({"email": "not-an-email"}, [("email", "pattern")]),
    "null not allowed": ({"email": None}, [("email", "nullable")]),
    "several at once": (
        {"email": "x", "credit_limit": -5, "tier": "tin"},
        [("email", "pattern"), ("credit_limit", "min"), ("tier", "in")],
    ),
    "undeclared fields pass": ({"email": "a@b.c", "nickname": "Ana"}, []),
}


@pytest.mark.parametrize(("fields", "failures"), SCHEMA_CASES.values(), ids=SCHEMA_CASES.keys())
def test_schema(guard: Guard, record: RecordFactory, fields: dict[str, Any], failures: list[tuple[str, str]]) -> None:
    decision = guard.check([record(fields=fields)], pipeline="t", now=NOW).decisions[0]
    if not failures:
        assert decision.codes == ()
        return
    assert decision.codes == (C.SCHEMA_VIOLATION,)
    violations = decision.reasons[0].detail["violations"]
    assert [(v["field"], v["check"]) for v in violations] == failures


def test_schema_message_lists_each_failure_in_words(guard: Guard, record: RecordFactory) -> None:
    decision = guard.check([record(fields={"email": "x", "credit_limit": -5})], pipeline="t", now=NOW).decisions[0]
    assert decision.reasons[0].message == (
        "customer C-1042 from salesforce breaks the customer contract: email 'x' does not have the expected form; "
        "credit_limit is -5, below the minimum of 0"
    )


def test_record_without_fields_misses_required_ones(guard: Guard, record: RecordFactory) -> None:
    assert decide_one(guard, record(fields=...))[1] == (C.SCHEMA_VIOLATION,)


LINEAGE_POLICY = MINIMAL_POLICY.replace("warn_age: 30m", "warn_age: 30m\n    require_lineage: true")


def hop(system: str, **delta: float) -> dict[str, str]:
    return {"system": system, "at": ago(**delta)}


PROVENANCE_CASES = {
    "owner then replica": ([hop("salesforce", minutes=9), hop("sap", minutes=5)], ()),
    "owner only": ([hop("salesforce", minutes=9)], ()),
    "equal times": ([hop("salesforce", minutes=5), hop("sap", minutes=5)], ()),
    "no chain": (None, (C.MISSING_PROVENANCE,)),
    "empty chain": ([], (C.MISSING_PROVENANCE,)),
    "starts elsewhere": ([hop("sap", minutes=9), hop("warehouse", minutes=5)], (C.PROVENANCE_BROKEN,)),
    "goes back in time": ([hop("salesforce", minutes=5), hop("sap", minutes=9)], (C.PROVENANCE_BROKEN,)),
    "both broken": ([hop("sap", minutes=5), hop("warehouse", minutes=9)], (C.PROVENANCE_BROKEN, C.PROVENANCE_BROKEN)),
}


@pytest.mark.parametrize(("chain", "codes"), PROVENANCE_CASES.values(), ids=PROVENANCE_CASES.keys())
def test_provenance(record: RecordFactory, chain: list[dict[str, str]] | None, codes: tuple[ReasonCode, ...]) -> None:
    guard = Guard(parse_policy(LINEAGE_POLICY))
    assert decide_one(guard, record(source="sap", lineage=chain if chain is not None else ...))[1] == codes


def test_a_broken_chain_blocks_even_where_lineage_is_optional(guard: Guard, record: RecordFactory) -> None:
    chain = [hop("warehouse", minutes=9), hop("sap", minutes=5)]
    assert decide_one(guard, record(source="sap", lineage=chain))[1] == (C.PROVENANCE_BROKEN,)


def test_supersession_from_owner_records_and_changes(guard: Guard, record: RecordFactory) -> None:
    owner = record(source="salesforce", updated_at=ago(minutes=10))
    assert decide_one(guard, owner) == (Action.ALLOW, ())
    older_copy = record(source="sap", updated_at=ago(minutes=20), observed_at=ago(minutes=1))
    same_version = record(source="sap", updated_at=ago(minutes=10), observed_at=ago(minutes=1))
    other_entity = record(source="sap", key="C-9", updated_at=ago(minutes=20))
    no_version = record(source="sap", updated_at=...)
    result = guard.check([older_copy, same_version, other_entity, no_version], pipeline="t", now=NOW)
    assert [d.codes for d in result.decisions] == [(C.SUPERSEDED,), (), (), ()]
    guard.note_change("customer", "C-9", NOW - timedelta(minutes=15))
    guard.note_change("customer", "C-9", NOW - timedelta(hours=5))  # an older notice never lowers it
    assert decide_one(guard, record(key="C-9", source="sap", updated_at=ago(minutes=20)))[1] == (C.SUPERSEDED,)


def test_blocked_owner_records_teach_nothing(guard: Guard, record: RecordFactory) -> None:
    guard.check(
        [record(source="salesforce", updated_at=ago(minutes=1), fields={"email": "broken"})], pipeline="t", now=NOW
    )
    assert decide_one(guard, record(source="sap", updated_at=ago(minutes=20)))[1] == ()


def test_records_models_and_generators_are_accepted(guard: Guard, record: RecordFactory) -> None:
    model = Record.model_validate(record())
    result = guard.check((r for r in [model, record(key="C-2")]), pipeline="t", now=NOW)
    assert [d.action for d in result.decisions] == [Action.ALLOW, Action.ALLOW]
    assert result.allowed[0] is model


@pytest.mark.parametrize("records", ["text", {"id": "x"}, 42, None], ids=repr)
def test_input_that_is_not_a_list_of_records_is_refused(guard: Guard, records: Any) -> None:
    with pytest.raises(InputError, match="records must be a list"):
        guard.check(records, pipeline="t", now=NOW)


def test_pipeline_and_now_are_required_correctly(guard: Guard, record: RecordFactory) -> None:
    with pytest.raises(InputError, match="pipeline"):
        guard.check([record()], pipeline="", now=NOW)
    with pytest.raises(InputError, match="timezone-aware"):
        guard.check([record()], pipeline="t", now=NOW.replace(tzinfo=None))


def test_result_shape(guard: Guard, record: RecordFactory) -> None:
    result = guard.check(
        [record(), record(source="hubspot"), record(observed_at=ago(minutes=45))],
        pipeline="bot",
        now=NOW,
        consumer={"model": "gpt"},
    )
    body = result.to_dict()
    assert body["verdict"] == "partial"
    assert body["policy"] == {"name": "support-bot", "version": 3}
    assert body["allowed"] == [result.decisions[0].id, result.decisions[2].id]
    assert [r["action"] for r in body["records"]] == ["allow", "block", "warn"]
    assert result.counts == {Action.ALLOW: 1, Action.WARN: 1, Action.BLOCK: 1}
    assert len(result.allowed) == 2
    assert result.consumer == {"model": "gpt"}
    assert [d.id for d in result.blocked] == [result.decisions[1].id]
    assert result.decisions[-1].id == result.decisions[2].id


def test_empty_check_passes(guard: Guard) -> None:
    result = guard.check([], pipeline="t", now=NOW)
    assert (result.verdict, len(result.decisions), result.allowed) == (Verdict.PASS, 0, ())


def test_nothing_allowed_is_blocked_verdict(guard: Guard, record: RecordFactory) -> None:
    assert guard.check([record(source="x")], pipeline="t", now=NOW).verdict is Verdict.BLOCKED
