"""Reading history back: runs filtered and paged, tallies per integration point, published policy versions."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from guard import Guard, LineageStore, Policy, VersionConflictError, parse_policy
from tests.conftest import MINIMAL_POLICY, NOW, RecordFactory, ts


def _store(guard: Guard) -> LineageStore:
    assert guard.store is not None
    return guard.store


def test_runs_page_through_every_run_once_even_when_times_tie(stored_guard: Guard, record: RecordFactory) -> None:
    moments = [NOW, NOW, NOW + timedelta(seconds=1), NOW + timedelta(seconds=1), NOW + timedelta(seconds=2)]
    made = [stored_guard.check([record()], pipeline="p", now=moment).run_id for moment in moments]
    store = _store(stored_guard)

    seen: list[str] = []
    after: tuple[datetime, str] | None = None
    while True:
        page = store.list_runs(limit=2, after=after)
        if not page:
            break
        seen += [run["run_id"] for run in page]
        after = (page[-1]["checked_at"], page[-1]["run_id"])

    assert sorted(seen) == sorted(made)
    assert len(seen) == len(set(seen))
    times = [run["checked_at"] for run in store.list_runs(limit=10)]
    assert times == sorted(times, reverse=True)


def test_runs_are_filtered_by_verdict_and_time(stored_guard: Guard, record: RecordFactory) -> None:
    passed = stored_guard.check([record()], pipeline="p", now=NOW).run_id
    stale = record(observed_at=ts(NOW - timedelta(hours=3)))
    blocked = stored_guard.check([stale], pipeline="p", now=NOW + timedelta(minutes=1)).run_id
    later = stored_guard.check([record()], pipeline="q", now=NOW + timedelta(minutes=2)).run_id
    store = _store(stored_guard)

    def ids(**filters: object) -> list[str]:
        return [run["run_id"] for run in store.list_runs(**filters)]  # type: ignore[arg-type]

    assert ids(verdict="blocked") == [blocked]
    assert ids(verdict="pass") == [later, passed]
    assert ids(since=NOW + timedelta(minutes=1)) == [later, blocked]
    assert ids(until=NOW + timedelta(minutes=1)) == [passed]
    assert ids(since=NOW, until=NOW + timedelta(minutes=2), verdict="pass") == [passed]
    assert ids(pipeline="q", verdict="pass") == [later]


def test_each_check_leaves_one_tally_per_integration_point(stored_guard: Guard, record: RecordFactory) -> None:
    records = [
        record(id="a", key="C-1", source="sap", observed_at=ts(NOW - timedelta(minutes=5))),
        record(id="b", key="C-2", source="sap", observed_at=ts(NOW - timedelta(hours=2))),
        record(id="c", key="C-3", source="sap", observed_at=ts(NOW - timedelta(minutes=40))),
        record(id="d", key="C-4", source="salesforce"),
        record(id="e", key="C-5", source="hubspot"),
    ]
    stored_guard.check(records, pipeline="p", now=NOW)

    tallies = {(t.source, t.object): t for t in _store(stored_guard).tallies_since(NOW - timedelta(minutes=1))}

    sap = tallies[("sap", "customer")]
    assert (sap.records, sap.allowed, sap.warned, sap.blocked) == (3, 1, 1, 1)
    assert sap.reasons == {"STALE": 1, "AGING": 1}
    assert sum(sap.age_buckets) == 3
    assert sap.age_max_s == pytest.approx(7200)
    assert tallies[("hubspot", "customer")].reasons == {"UNKNOWN_SOURCE": 1}
    assert set(tallies) == {("sap", "customer"), ("salesforce", "customer"), ("hubspot", "customer")}
    assert _store(stored_guard).tallies_since(NOW + timedelta(seconds=1)) == []


def _policy(version: int) -> Policy:
    return parse_policy(MINIMAL_POLICY.replace("version: 3", f"version: {version}"), origin="test")


def test_published_versions_are_kept_and_must_rise(stored_guard: Guard) -> None:
    store = _store(stored_guard)
    assert store.latest_policy_version() is None

    stored_guard.publish_policy(_policy(4), text="v4", published_by="alice")
    stored_guard.publish_policy(_policy(9), text="v9", media_type="application/json", published_by="bob")
    with pytest.raises(VersionConflictError, match="version 9 is already published"):
        stored_guard.publish_policy(_policy(9), text="again", published_by="carol")
    with pytest.raises(VersionConflictError):
        stored_guard.publish_policy(_policy(5), text="older", published_by="carol")

    assert stored_guard.policy.version == 9
    assert store.latest_policy_version() == 9
    assert [(v["version"], v["published_by"]) for v in store.policy_history()] == [(9, "bob"), (4, "alice")]
    newest = store.newest_policy()
    assert newest is not None
    assert (newest["text"], newest["media_type"]) == ("v9", "application/json")


def test_another_guard_on_the_store_follows_a_published_version(minimal_policy: Policy, store_url: str) -> None:
    text = MINIMAL_POLICY.replace("version: 3", "version: 7").replace("max_age: 1h", "max_age: 2h")
    with Guard(minimal_policy, store=store_url) as one, Guard(minimal_policy, store=store_url) as other:
        one.publish_policy(parse_policy(text, origin="test"), text=text, published_by="alice")

        assert other.policy.version == 3
        assert other.sync_policy() is True
        assert other.sync_policy() is False

        assert other.policy.version == 7
        assert other.policy.objects["customer"].max_age == timedelta(hours=2)


@pytest.mark.parametrize("limit", [1, 3, 10])
def test_the_newest_blocks_are_the_newest_blocked_decisions(
    stored_guard: Guard, record: RecordFactory, limit: int
) -> None:
    for minutes in range(8):
        at = NOW + timedelta(minutes=minutes)
        broken = [record(key=f"C-{n}", fields={"email": "broken"}) for n in range(minutes % 3)]
        stored_guard.check([record(key="C-9"), *broken], pipeline="rag", now=at)

    store = _store(stored_guard)

    assert store.recent_blocks(limit) == store.decisions(action="block", limit=limit)
    assert store.recent_blocks(limit)
