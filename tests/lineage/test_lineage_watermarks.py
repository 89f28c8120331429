"""Supersession watermarks: learned from the owner, kept across restarts, and never lowered."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from guard import Action, Guard, LineageStore, Policy, ReasonCode
from tests.conftest import NOW, RecordFactory, ts
from tests.lineage.lineage_helpers import is_utc, scalar

#: The version the owner's record carries (the `record` fixture's default `updated_at`).
T = NOW - timedelta(minutes=7)
PLUS_TWO = timezone(timedelta(hours=2))

Expected = tuple[Action, list[ReasonCode]]
SUPERSEDED: Expected = (Action.BLOCK, [ReasonCode.SUPERSEDED])
ALLOWED: Expected = (Action.ALLOW, [])
REPLICA_VERSIONS = [
    ("a second older", ts(T - timedelta(seconds=1)), SUPERSEDED),
    ("a microsecond older", ts(T - timedelta(microseconds=1)), SUPERSEDED),
    ("older, written +02:00", (T - timedelta(seconds=1)).astimezone(PLUS_TWO).isoformat(), SUPERSEDED),
    ("the same version", ts(T), ALLOWED),
    ("the same version, written +02:00", T.astimezone(PLUS_TWO).isoformat(), ALLOWED),
    ("newer", ts(T + timedelta(minutes=1)), ALLOWED),
]


@pytest.mark.parametrize(
    ("updated_at", "expected"), [c[1:] for c in REPLICA_VERSIONS], ids=[c[0] for c in REPLICA_VERSIONS]
)
def test_an_owner_version_outlives_the_guard_that_learned_it(
    minimal_policy: Policy,
    store_url: str,
    record: RecordFactory,
    updated_at: str,
    expected: Expected,
) -> None:
    """An allowed owner record at T, a restart, then a replica copy: older than T is SUPERSEDED, T or later is not."""
    with Guard(minimal_policy, store=store_url) as first:
        learned = first.check([record(id="owner")], pipeline="rag", now=NOW)
    assert learned.decisions[0].action is Action.ALLOW

    with Guard(minimal_policy, store=store_url) as second:
        result = second.check([record(id="copy", source="sap", updated_at=updated_at)], pipeline="rag", now=NOW)

    assert (result.decisions[0].action, list(result.decisions[0].codes)) == expected


def test_a_blocked_owner_record_teaches_nothing(minimal_policy: Policy, store_url: str, record: RecordFactory) -> None:
    with Guard(minimal_policy, store=store_url) as guard:
        broken = guard.check([record(fields={"email": "nope"}, updated_at=ts(NOW))], pipeline="rag", now=NOW)
        copy = guard.check([record(source="sap", updated_at=ts(T))], pipeline="rag", now=NOW)

    assert broken.decisions[0].action is Action.BLOCK
    assert copy.decisions[0].action is Action.ALLOW


def test_a_replica_record_teaches_nothing(minimal_policy: Policy, store_url: str, record: RecordFactory) -> None:
    with Guard(minimal_policy, store=store_url) as guard:
        guard.check([record(source="warehouse", updated_at=ts(NOW))], pipeline="rag", now=NOW)
        copy = guard.check([record(source="sap", updated_at=ts(T))], pipeline="rag", now=NOW)

    assert copy.decisions[0].action is Action.ALLOW


def test_note_change_raises_the_watermark_and_an_older_change_never_lowers_it(
    minimal_policy: Policy, store_url: str, record: RecordFactory
) -> None:
    def copy_action(updated_at: datetime) -> Action:
        with Guard(minimal_policy, store=store_url) as fresh:
            result = fresh.check([record(source="sap", updated_at=ts(updated_at))], pipeline="rag", now=NOW)
        return result.decisions[0].action

    with Guard(minimal_policy, store=store_url) as guard:
        guard.note_change("customer", "C-1042", T)
    assert (copy_action(T - timedelta(seconds=1)), copy_action(T)) == (Action.BLOCK, Action.ALLOW)

    with Guard(minimal_policy, store=store_url) as guard:
        guard.note_change("customer", "C-1042", T - timedelta(hours=1))
    assert (copy_action(T - timedelta(seconds=1)), copy_action(T)) == (Action.BLOCK, Action.ALLOW)

    with Guard(minimal_policy, store=store_url) as guard:
        guard.note_change("customer", "C-1042", (T + timedelta(minutes=1)).astimezone(PLUS_TWO))
    assert (copy_action(T), copy_action(T + timedelta(minutes=1))) == (Action.BLOCK, Action.ALLOW)


def test_a_watermark_remembers_where_it_was_learned(
    minimal_policy: Policy, store_url: str, record: RecordFactory
) -> None:
    with Guard(minimal_policy, store=store_url) as guard:
        guard.check([record(key="C-1")], pipeline="rag", now=NOW)
        guard.note_change("customer", "C-2", T)

    learned_from = "SELECT learned_from FROM watermarks WHERE key = :key"
    assert scalar(store_url, learned_from, key="C-1") == "owner_record"
    assert scalar(store_url, learned_from, key="C-2") == "change"


def test_noting_no_changes_writes_nothing(minimal_policy: Policy, store_url: str) -> None:
    with Guard(minimal_policy, store=store_url) as guard:
        guard.note_changes([])

    assert scalar(store_url, "SELECT count(*) FROM watermarks") == 0


@pytest.mark.parametrize("key", ["C-\t1\\n", "Zoë-東京-😀"], ids=["escapes", "beyond ASCII"])
def test_a_watermark_on_an_awkward_key_still_supersedes(
    minimal_policy: Policy, store_url: str, record: RecordFactory, key: str
) -> None:
    with Guard(minimal_policy, store=store_url) as guard:
        guard.check([record(key=key)], pipeline="rag", now=NOW)
    with Guard(minimal_policy, store=store_url) as guard:
        copy = record(key=key, source="sap", updated_at=ts(T - timedelta(seconds=1)))
        result = guard.check([copy], pipeline="rag", now=NOW)

    assert list(result.decisions[0].codes) == [ReasonCode.SUPERSEDED]


moments = st.datetimes(
    min_value=datetime(2000, 1, 1),
    max_value=datetime(2026, 1, 1),  # a change from the future is refused
    timezones=st.sampled_from([UTC, PLUS_TWO, timezone(timedelta(hours=-9, minutes=-30))]),
)
keys = st.text(st.characters(exclude_characters="\x00", exclude_categories=["Cs"]), min_size=1, max_size=12)
updates = st.lists(st.tuples(keys, moments), min_size=1, max_size=6)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batches=st.lists(updates, min_size=1, max_size=4))
def test_the_stored_watermark_is_the_newest_version_ever_noted(
    minimal_policy: Policy, store: LineageStore, batches: list[list[tuple[str, datetime]]]
) -> None:
    """Whatever the order and batching of change notes, each entity's watermark is the newest of them."""
    prefix = uuid.uuid4().hex  # the store outlives one example: give each its own entities
    guard = Guard(minimal_policy, store=store)
    for batch in batches:
        guard.note_changes([("customer", prefix + key, moment) for key, moment in batch])

    newest: dict[tuple[str, str], datetime] = {}
    for key, moment in (update for batch in batches for update in batch):
        entity = ("customer", prefix + key)
        newest[entity] = max(moment, newest.get(entity, moment))
    stored = store.watermarks([*newest, ("customer", prefix + "never noted")])

    assert stored == newest
    assert all(is_utc(moment) for moment in stored.values())


def test_concurrent_writers_of_the_same_watermarks_do_not_fail(store: LineageStore) -> None:
    """Two writers raising the same entities in opposite orders neither deadlock nor lose the newest version."""
    entities = [("customer", f"C-{n:04d}") for n in range(300)]
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def write(order: list[tuple[str, str]], offset: timedelta) -> None:
        start.wait()
        try:
            for round_ in range(8):
                versions = {entity: T + offset + timedelta(seconds=round_) for entity in order}
                store.advance_watermarks(versions, learned_from="change", at=NOW)
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    writers = [
        threading.Thread(target=write, args=(entities, timedelta(0))),
        threading.Thread(target=write, args=(entities[::-1], timedelta(minutes=1))),
    ]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join()

    assert errors == []
    newest = T + timedelta(minutes=1, seconds=7)
    assert store.watermarks(entities) == dict.fromkeys(entities, newest)


@pytest.mark.parametrize("asked", [6, 450, 2400], ids=["one statement", "per object", "a scan"])
def test_watermarks_read_back_exactly_those_kept_however_many_are_asked(store: LineageStore, asked: int) -> None:
    # Keys shared by two objects, entities never kept among those asked: each way of reading finds only its own.
    kept = {(obj, f"K-{n}"): T + timedelta(seconds=n) for obj in ("customer", "order") for n in range(0, asked, 2)}
    store.advance_watermarks(kept, learned_from="owner_record", at=NOW)
    wanted = [(obj, f"K-{n}") for obj in ("customer", "order", "invoice") for n in range(asked // 2)]
    assert store.watermarks(wanted) == {entity: kept[entity] for entity in wanted if entity in kept}
