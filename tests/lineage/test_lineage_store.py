"""What a check leaves in the lineage store: one run row, one row per record, read back as the check decided."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Any

import pytest

from guard import Action, CheckResult, Guard, LineageStore, Policy, ReasonCode, Record, Verdict
from guard.lineage.store import content_hash
from tests.conftest import NOW, RecordFactory, ts
from tests.lineage.lineage_helpers import is_utc, scalar


def expected_rows(result: CheckResult, records: list[Any]) -> list[dict[str, Any]]:
    """What the store must hold for each record of a check, from the check's own decisions."""
    envelopes = [r.to_envelope() if isinstance(r, Record) else r for r in records]
    return [
        {
            "run_id": result.run_id,
            "position": decision.index,
            "record_id": decision.id,
            "object": decision.object,
            "key": decision.key,
            "source": decision.source,
            "observed_at": decision.observed_at,
            "updated_at": decision.updated_at,
            "content_hash": content_hash(envelope),
            "age_s": pytest.approx(decision.age_s) if decision.age_s is not None else None,
            "action": decision.action.value,
            "reasons": [code.value for code in decision.codes],
            "explanations": [reason.to_dict() for reason in decision.reasons],
        }
        for decision, envelope in zip(result.decisions, envelopes, strict=True)
    ]


def mixed_records(record: RecordFactory) -> list[Any]:
    """One record for each kind of outcome, with timestamps written in several offsets."""
    return [
        record(id="owner", key="C-1", updated_at="2026-11-22T13:53:00.123456+02:00"),
        record(id="aging", key="C-2", source="sap", observed_at=ts(NOW - timedelta(minutes=45)), updated_at=...),
        record(id="stale", key="C-3", source="warehouse", observed_at="2026-11-22T04:00:00-05:00"),
        record(id="bad-email", key="C-4", source="sap", fields={"email": "nope"}),
        record(id="stranger", key="C-5", source="hubspot"),
        record(id="fields-only", key="C-6", content=...),
        Record(
            id="model",
            object="customer",
            key="C-7",
            source="warehouse",
            observed_at=NOW - timedelta(minutes=1),
            fields={"email": "bo@example.com", "tier": "silver"},
        ),
    ]


def test_a_check_writes_one_run_row_that_matches_its_result(stored_guard: Guard, record: RecordFactory) -> None:
    records = mixed_records(record)
    consumer = {"model": "gpt-4o", "call_id": "c-17", "tags": ["support", "eu"]}

    result = stored_guard.check(records, pipeline="support-bot", now=NOW, consumer=consumer)
    assert stored_guard.store is not None
    run = stored_guard.store.get_run(result.run_id)

    assert run is not None
    decisions = run.pop("decisions")
    assert len(decisions) == len(records)
    expected_calls = [{"model": "gpt-4o", "call_id": "c-17", "linked_at": NOW, "extra": {"tags": ["support", "eu"]}}]
    assert expected_calls == run.pop("model_calls")
    counts = result.counts
    assert run == {
        "run_id": result.run_id,
        "pipeline": "support-bot",
        "checked_at": NOW,
        "policy_name": "support-bot",
        "policy_version": 3,
        "policy_hash": result.policy.hash,
        "verdict": Verdict.PARTIAL.value,
        "records": 7,
        "allowed": counts[Action.ALLOW],
        "warned": counts[Action.WARN],
        "blocked": counts[Action.BLOCK],
        "duration_ms": pytest.approx(result.duration_s * 1000),
        "consumer": consumer,
    }
    assert is_utc(run["checked_at"])
    assert (counts[Action.ALLOW], counts[Action.WARN], counts[Action.BLOCK]) == (3, 1, 3)


def test_every_record_gets_one_row_that_matches_its_decision(stored_guard: Guard, record: RecordFactory) -> None:
    records = mixed_records(record)

    result = stored_guard.check(records, pipeline="support-bot", now=NOW)
    assert stored_guard.store is not None
    run = stored_guard.store.get_run(result.run_id)

    assert run is not None
    assert run["decisions"] == expected_rows(result, records)
    by_id = {row["record_id"]: row for row in run["decisions"]}
    assert by_id["owner"]["updated_at"] == datetime(2026, 11, 22, 11, 53, 0, 123456, tzinfo=UTC)
    assert by_id["stale"]["observed_at"] == datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
    assert by_id["stale"]["reasons"] == [ReasonCode.STALE.value]
    assert by_id["aging"]["action"] == Action.WARN.value
    assert by_id["fields-only"]["content_hash"] is not None
    stamps = [row[name] for row in run["decisions"] for name in ("observed_at", "updated_at") if row[name] is not None]
    assert stamps
    assert all(is_utc(stamp) for stamp in stamps)


def test_malformed_records_are_stored_too(stored_guard: Guard, record: RecordFactory) -> None:
    """Nothing a check accepted is lost: a record that is not an object, or has no id, still gets its row."""
    records: list[Any] = [
        5,
        "customer C-1042",
        None,
        [],
        record(id=...),
        record(id=""),
        record(id=7),
        record(id="no-key", key=...),
        record(id="bad-time", observed_at="last tuesday"),
        record(id="fine"),
    ]

    result = stored_guard.check(records, pipeline="support-bot", now=NOW)
    assert stored_guard.store is not None
    run = stored_guard.store.get_run(result.run_id)

    assert run is not None
    assert run["records"] == len(records)
    assert run["decisions"] == expected_rows(result, records)
    assert [row["record_id"] for row in run["decisions"]] == [
        "#0", "#1", "#2", "#3", "#4", "#5", "#6", "no-key", "bad-time", "fine",
    ]  # fmt: skip
    assert [row["action"] for row in run["decisions"]] == ["block"] * 9 + ["allow"]
    assert all(row["reasons"] == [ReasonCode.INVALID_RECORD.value] for row in run["decisions"][:9])


def test_an_empty_check_is_a_run_with_no_records(stored_guard: Guard) -> None:
    result = stored_guard.check([], pipeline="support-bot", now=NOW)
    assert stored_guard.store is not None
    run = stored_guard.store.get_run(result.run_id)

    assert run is not None
    assert (run["records"], run["verdict"], run["decisions"]) == (0, Verdict.PASS.value, [])


def test_an_unknown_run_is_none(store: LineageStore) -> None:
    assert store.get_run("no-such-run") is None


def test_list_runs_is_newest_first_and_filters_by_pipeline(stored_guard: Guard, record: RecordFactory) -> None:
    checks = [("rag", NOW), ("agent", NOW + timedelta(minutes=1)), ("rag", NOW + timedelta(minutes=2))]
    run_ids = [stored_guard.check([record()], pipeline=pipeline, now=now).run_id for pipeline, now in checks]
    store = stored_guard.store
    assert store is not None

    assert [run["run_id"] for run in store.list_runs()] == run_ids[::-1]
    assert [run["run_id"] for run in store.list_runs(pipeline="rag")] == [run_ids[2], run_ids[0]]
    assert [run["run_id"] for run in store.list_runs(limit=1)] == [run_ids[2]]
    assert store.list_runs(pipeline="nobody") == []
    assert [run["checked_at"] for run in store.list_runs()] == [now for _, now in checks][::-1]


def test_entity_history_lists_every_decision_about_one_entity_oldest_first(
    stored_guard: Guard, record: RecordFactory
) -> None:
    later = NOW + timedelta(minutes=10)
    first = stored_guard.check([record(key="C-1"), record(key="C-2")], pipeline="rag", now=NOW)
    second = stored_guard.check([record(key="C-1", source="sap")], pipeline="agent", now=later)
    store = stored_guard.store
    assert store is not None

    history = store.entity_history("customer", "C-1")

    assert [(row["run_id"], row["pipeline"], row["source"], row["checked_at"]) for row in history] == [
        (first.run_id, "rag", "salesforce", NOW),
        (second.run_id, "agent", "sap", later),
    ]
    assert {(row["policy_name"], row["policy_version"]) for row in history} == {("support-bot", 3)}
    assert store.entity_history("customer", "C-404") == []


AWKWARD_TEXT = [
    ("tabs, newlines and backslashes", "C\t1\n2\\N\r", "C\t1\n2\\N\r"),
    ("quotes and commas", "C,'1',\"2\"", "C,'1',\"2\""),
    ("letters beyond ASCII", "Zoë-Łódź-東京-😀", "Zoë-Łódź-東京-😀"),
]


@pytest.mark.parametrize(("key", "stored"), [case[1:] for case in AWKWARD_TEXT], ids=[c[0] for c in AWKWARD_TEXT])
def test_any_text_a_check_accepts_is_stored(stored_guard: Guard, record: RecordFactory, key: str, stored: str) -> None:
    """Text a database may trip over (quotes, separators, letters beyond ASCII) is stored as it came."""
    result = stored_guard.check(
        [record(id=f"id {key}", key=key, content=f"about {key}")], pipeline=f"rag {key}", now=NOW
    )
    store = stored_guard.store
    assert store is not None

    history = store.entity_history("customer", key)

    assert [(row["run_id"], row["record_id"], row["key"]) for row in history] == [
        (result.run_id, f"id {stored}", stored)
    ]
    assert history[0]["content_hash"] == content_hash({"content": f"about {key}"})
    assert [run["run_id"] for run in store.list_runs(pipeline=f"rag {key}")] == [result.run_id]


def test_consumer_metadata_that_is_not_json_is_stored_as_text(stored_guard: Guard, record: RecordFactory) -> None:
    consumer: dict[Any, Any] = {"model": "gpt-4o", "at": NOW, "tags": ("a", "b"), 7: "numbered", "nan": float("nan")}

    result = stored_guard.check([record()], pipeline="rag", now=NOW, consumer=consumer)
    assert stored_guard.store is not None
    run = stored_guard.store.get_run(result.run_id)

    assert run is not None
    assert run["consumer"] == {
        "model": "gpt-4o",
        "at": "2026-11-22T12:00:00+00:00",
        "tags": ["a", "b"],
        "7": "numbered",
        "nan": None,
    }


def test_fields_whose_keys_are_not_text_are_hashed_and_stored(stored_guard: Guard, record: RecordFactory) -> None:
    odd = record(content=..., fields={"email": "ana@example.com", 1: "one", "at": NOW})

    result = stored_guard.check([odd], pipeline="rag", now=NOW)
    assert stored_guard.store is not None
    run = stored_guard.store.get_run(result.run_id)

    assert run is not None
    assert run["decisions"] == expected_rows(result, [odd])
    assert run["decisions"][0]["content_hash"] is not None


def test_a_guard_can_share_an_open_store(minimal_policy: Policy, store: LineageStore, record: RecordFactory) -> None:
    """A `LineageStore` handed to a guard is the guard's store; closing the guard leaves it open."""
    with Guard(minimal_policy, store=store) as guard:
        result = guard.check([record()], pipeline="rag", now=NOW)

    run = store.get_run(result.run_id)
    assert run is not None
    assert run["records"] == 1


def test_rows_are_written_once_per_record(store_url: str, stored_guard: Guard, record: RecordFactory) -> None:
    result = stored_guard.check([record(key=f"C-{n}") for n in range(25)], pipeline="rag", now=NOW)

    assert scalar(store_url, "SELECT count(*) FROM runs") == 1
    assert scalar(store_url, "SELECT count(*) FROM run_records WHERE run_id = :run", run=result.run_id) == 25


CONTENT_HASH_CASES = [
    ("content wins over fields", {"content": "x", "fields": {"a": 1}}, {"content": "x", "fields": {"a": 2}}, True),
    ("fields in any order", {"fields": {"a": 1, "b": 2}}, {"fields": {"b": 2, "a": 1}}, True),
    ("different content", {"content": "x"}, {"content": "y"}, False),
    ("different fields", {"fields": {"a": 1}}, {"fields": {"a": 2}}, False),
    ("a mapping that is not a dict", {"content": "x"}, MappingProxyType({"content": "x"}), True),
]


@pytest.mark.parametrize(
    ("left", "right", "same"), [c[1:] for c in CONTENT_HASH_CASES], ids=[c[0] for c in CONTENT_HASH_CASES]
)
def test_content_hash_follows_what_the_model_would_see(left: Any, right: Any, same: bool) -> None:
    assert (content_hash(left) == content_hash(right)) is same
    assert content_hash(left) is not None


@pytest.mark.parametrize("nothing", [5, None, "text", {}, {"content": None}, {"fields": {}}])
def test_content_hash_of_a_record_with_nothing_to_show_is_none(nothing: Any) -> None:
    assert content_hash(nothing) is None


def test_an_in_memory_store_is_one_database_for_every_thread(minimal_policy: Policy, record: RecordFactory) -> None:
    """`sqlite://` is one database: checks from other threads see the same runs (and its tables)."""
    errors: list[BaseException] = []
    with Guard(minimal_policy, store="sqlite://") as guard:

        def check_ten() -> None:
            try:
                for _ in range(10):
                    guard.check([record()], pipeline="rag", now=NOW)
            except BaseException as exc:  # reported by the assertion below
                errors.append(exc)

        threads = [threading.Thread(target=check_ten) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert guard.store is not None
        runs = guard.store.list_runs(limit=100)

    assert errors == []
    assert len(runs) == 40
