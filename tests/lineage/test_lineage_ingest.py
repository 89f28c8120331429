"""Heartbeats and consumption in the lineage store, on SQLite and PostgreSQL, and migration 0002 up and down."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from alembic import command

from guard import Guard, InputError, LineageStore, Policy
from guard.lineage.store import alembic_config
from tests.conftest import NOW, RecordFactory
from tests.lineage.lineage_helpers import head_revision, is_utc, scalar, table_names

ERP = ("sap", "customer", "")


def test_every_heartbeat_is_kept_and_the_newest_sync_per_integration_point_is_latest(store: LineageStore) -> None:
    store.record_heartbeat("sap", "customer", NOW - timedelta(minutes=10), NOW)
    store.record_heartbeat("sap", "customer", NOW - timedelta(minutes=20), NOW)  # a late, older report
    store.record_heartbeat("warehouse", "customer", NOW - timedelta(hours=3), NOW)

    latest = store.latest_heartbeats()

    assert latest == {ERP: NOW - timedelta(minutes=10), ("warehouse", "customer", ""): NOW - timedelta(hours=3)}
    assert all(is_utc(moment) for moment in latest.values())
    assert scalar(store.url, "SELECT count(*) FROM heartbeats") == 3


def test_without_heartbeats_latest_is_empty(store: LineageStore) -> None:
    assert store.latest_heartbeats() == {}


def test_a_check_whose_consumer_names_a_model_links_its_run_to_that_call(
    minimal_policy: Policy, store: LineageStore, record: RecordFactory
) -> None:
    consumer = {"model": "gpt-4o", "call_id": "call-1", "ticket": "T-8"}
    result = Guard(minimal_policy, store=store).check([record()], pipeline="rag", now=NOW, consumer=consumer)

    [decision] = store.entity_history("customer", "C-1042")

    expected = [{"model": "gpt-4o", "call_id": "call-1", "linked_at": NOW, "extra": {"ticket": "T-8"}}]
    assert expected == decision["model_calls"]
    run = store.get_run(result.run_id)
    assert run is not None
    assert expected == run["model_calls"]


@pytest.mark.parametrize("consumer", [None, {"call_id": "call-1"}, {"model": ""}, {"model": None}])
def test_a_check_whose_consumer_names_no_model_links_no_call(
    minimal_policy: Policy, store: LineageStore, record: RecordFactory, consumer: dict[str, object] | None
) -> None:
    Guard(minimal_policy, store=store).check([record()], pipeline="rag", now=NOW, consumer=consumer)

    [decision] = store.entity_history("customer", "C-1042")

    assert decision["model_calls"] == []
    assert scalar(store.url, "SELECT count(*) FROM consumption") == 0


def test_a_run_linked_after_the_fact_shows_the_call_once_however_often_it_is_linked(
    minimal_policy: Policy, store: LineageStore, record: RecordFactory
) -> None:
    result = Guard(minimal_policy, store=store).check([record()], pipeline="rag", now=NOW)
    later = NOW + timedelta(seconds=3)

    first = store.link_consumption(result.run_id, "claude", "msg-1", {"note": "late"}, linked_at=later)
    again = store.link_consumption(result.run_id, "claude", "msg-1", None, linked_at=later + timedelta(minutes=1))

    expected = {"run_id": result.run_id, "model": "claude", "call_id": "msg-1", "linked_at": later}
    assert first is not None
    assert again is not None
    assert expected == {name: first[name] for name in expected}
    assert expected == {name: again[name] for name in expected}
    [decision] = store.entity_history("customer", "C-1042")
    assert [{"model": "claude", "call_id": "msg-1", "linked_at": later, "extra": {"note": "late"}}] == decision[
        "model_calls"
    ]


@pytest.mark.parametrize("extra", [None, {}])
def test_a_link_without_extra_members_comes_back_with_an_empty_extra(
    minimal_policy: Policy, store: LineageStore, record: RecordFactory, extra: dict[str, Any] | None
) -> None:
    """New or already known, a link's `extra` is a mapping, as every reader of the store gives it."""
    result = Guard(minimal_policy, store=store).check([record()], pipeline="rag", now=NOW)

    first = store.link_consumption(result.run_id, "claude", None, extra, linked_at=NOW)
    again = store.link_consumption(result.run_id, "claude", None, extra, linked_at=NOW + timedelta(seconds=1))

    assert first is not None
    assert again is not None
    assert (first["extra"], again["extra"]) == ({}, {})


def test_linking_an_unknown_run_returns_none_and_writes_nothing(store: LineageStore) -> None:
    assert store.link_consumption("no-such-run", "claude", linked_at=NOW) is None
    assert scalar(store.url, "SELECT count(*) FROM consumption") == 0


def test_guard_note_heartbeat_refuses_what_the_policy_does_not_allow(
    minimal_policy: Policy, store: LineageStore
) -> None:
    guard = Guard(minimal_policy, store=store)
    now = guard_now()

    for source, obj, when, expected in [
        ("oracle", "customer", now, "not a source of policy support-bot"),
        ("sap", "invoice", now, "does not cover"),
        ("sap", "customer", now + timedelta(hours=1), "in the future"),
    ]:
        with pytest.raises(InputError, match=expected):
            guard.note_heartbeat(source, obj, when)

    stored = guard.note_heartbeat("sap", "customer", now)
    assert (stored["source"], stored["object"], stored["synced_at"]) == ("sap", "customer", now)
    assert store.latest_heartbeats() == {ERP: now}


def guard_now() -> datetime:
    """The real clock (heartbeats are judged against it), to the second."""
    return datetime.now(UTC).replace(microsecond=0)


def test_migration_0002_upgrades_a_0001_store_and_downgrades_back_keeping_its_runs(
    minimal_policy: Policy, store_url: str, store: LineageStore, record: RecordFactory
) -> None:
    result = Guard(minimal_policy, store=store).check([record()], pipeline="rag", now=NOW)
    with store.engine.begin() as conn:
        command.downgrade(alembic_config(conn), "0001")
    assert {"heartbeats", "consumption"} & table_names(store_url) == set()
    assert scalar(store_url, "SELECT version_num FROM alembic_version") == "0001"

    store.migrate()  # what opening the store of a newer Freshguard does

    assert {"heartbeats", "consumption"} <= table_names(store_url)
    assert scalar(store_url, "SELECT version_num FROM alembic_version") == head_revision(store)
    assert store.link_consumption(result.run_id, "gpt-4o", "call-9", linked_at=NOW) is not None
    store.record_heartbeat("sap", "customer", NOW, NOW)
    assert store.latest_heartbeats() == {ERP: NOW}

    with store.engine.begin() as conn:
        command.downgrade(alembic_config(conn), "0001")
    assert {"heartbeats", "consumption"} & table_names(store_url) == set()
    assert scalar(store_url, "SELECT count(*) FROM runs WHERE run_id = :run_id", run_id=result.run_id) == 1
