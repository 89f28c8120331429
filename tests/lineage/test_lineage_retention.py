"""Retention: a prune removes exactly what is past each horizon, in batches, on SQLite and PostgreSQL; health is
the same before and after; incidents stay; the store remembers how far back it pruned."""

from __future__ import annotations

from datetime import timedelta

import pytest
from typer.testing import CliRunner

from guard import Guard, LineageStore, parse_policy
from guard.cli.main import app
from guard.lineage import _retention
from guard.lineage._retention import Retention
from tests.conftest import MINIMAL_POLICY, NOW, RecordFactory, ts
from tests.lineage.lineage_helpers import scalar

POLICY = parse_policy(
    MINIMAL_POLICY + "slas:\n  - {source: sap, object: customer, max_lag: 30m, max_block_rate: 0.2, window: 2h}\n",
    origin="retention.yaml",
)
#: Days before NOW each check ran (two checks a day at most, some either side of the 30-day horizon).
DAYS = (45, 40, 31, 30.5, 29.9, 20, 3, 1, 0.05, 0.01)


def _history(store: LineageStore, record: RecordFactory) -> Guard:
    guard = Guard(POLICY, store=store)
    for days in DAYS:
        at = NOW - timedelta(days=days)
        records = [
            record(key=f"C-{n}", source=source, observed_at=ts(at - timedelta(minutes=3)),
                   updated_at=ts(at - timedelta(minutes=4)))
            for n, source in enumerate(("salesforce", "sap", "sap"))
        ]  # fmt: skip
        guard.check(records, pipeline="rag", now=at, consumer={"model": "gpt", "call_id": f"call-{days}"})
        store.record_heartbeat("sap", "customer", at, at, writer=f"job-{int(days) % 2}")
    return guard


@pytest.fixture
def small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    """Batches of two runs and three rows, never grown: every prune here takes several."""
    monkeypatch.setattr(_retention, "BATCH_RUNS", 2)
    monkeypatch.setattr(_retention, "BATCH_ROWS", 3)
    monkeypatch.setattr(_retention, "SCALE_RANGE", (1.0, 1.0))


def test_prune_batches_grow_while_quick_shrink_when_slow_and_are_followed_by_as_long_a_pause() -> None:
    target = _retention.BATCH_TARGET_S
    pacer = _retention.Pacer(0.002)
    assert pacer.after(target / 10) == 0.002  # a quick batch: the least pause, and the next batch twice as big
    assert pacer.scale == 2.0
    assert pacer.after(target / 2) == target / 2  # within the target: as long a pause, the size kept
    assert pacer.scale == 2.0
    assert pacer.after(target * 3) == target * 3  # too long: half the size
    assert pacer.scale == 1.0
    for _ in range(20):
        pacer.after(target * 10)
    assert pacer.scale == _retention.SCALE_RANGE[0]
    for _ in range(20):
        pacer.after(0)
    assert pacer.scale == _retention.SCALE_RANGE[1]
    fixed = _retention.Pacer(0.05, fixed=True)
    assert fixed.after(target * 3) == 0.05


def test_a_prune_removes_exactly_what_is_past_each_horizon(
    store: LineageStore, store_url: str, record: RecordFactory, small_batches: None
) -> None:
    _history(store, record)
    kept = [d for d in DAYS if d < 30]
    retention = Retention(records=timedelta(days=30), runs=timedelta(days=35), heartbeats=timedelta(days=30),
                          rollups=timedelta(days=41))  # fmt: skip

    dry = store.prune(retention, NOW, dry_run=True)
    report = store.prune(retention, NOW)

    runs_kept = [d for d in DAYS if d < 35]
    assert scalar(store_url, "SELECT count(*) FROM runs") == len(runs_kept)
    assert scalar(store_url, "SELECT count(*) FROM run_tallies") == 2 * len(runs_kept)
    assert scalar(store_url, "SELECT count(*) FROM consumption") == len(runs_kept)
    assert scalar(store_url, "SELECT count(*) FROM run_records") == 3 * len(kept)
    assert scalar(store_url, "SELECT count(*) FROM heartbeats") == len(kept)
    assert scalar(store_url, "SELECT count(*) FROM tally_rollups") == 2 * len([d for d in DAYS if d < 41])
    hours = {(NOW - timedelta(days=d)).replace(minute=0, second=0, microsecond=0) for d in DAYS if d < 41}
    assert scalar(store_url, "SELECT count(*) FROM tally_rollups_hourly") == 2 * len(hours)
    assert report.removed == dry.removed
    assert report.removed["run_records"] == 3 * (len(DAYS) - len(kept))
    assert report.batches > 5
    # Every writer's newest sync stays, however old: the lag still sees a writer that went quiet.
    assert set(store.latest_heartbeats()) == {("sap", "customer", "job-0"), ("sap", "customer", "job-1")}
    assert store.pruned_before()["records"] == NOW - timedelta(days=30)
    assert store.prune(retention, NOW).removed == dict.fromkeys(report.removed, 0)


def test_health_is_the_same_before_and_after_pruning_rows_older_than_its_windows(
    store: LineageStore, record: RecordFactory
) -> None:
    guard = _history(store, record)
    before = [point.to_dict() for point in guard.health(NOW)]

    store.prune(Retention(records=timedelta(days=1), runs=timedelta(days=1), heartbeats=timedelta(days=1)), NOW)

    assert [point.to_dict() for point in guard.health(NOW)] == before
    assert store.get_run(guard.store.list_runs(limit=1)[0]["run_id"]) is not None  # type: ignore[union-attr]


def test_an_entitys_history_says_what_was_pruned(store: LineageStore, record: RecordFactory) -> None:
    _history(store, record)
    store.prune(Retention(), NOW)

    history = store.entity_history("customer", "C-1")

    assert [decision["checked_at"] for decision in history] == [
        NOW - timedelta(days=d) for d in sorted(DAYS, reverse=True) if d < 30
    ]
    assert store.pruned_before()["records"] == NOW - timedelta(days=30)


def test_incidents_and_their_impact_outlive_the_rows_they_were_computed_from(
    store: LineageStore, store_url: str, record: RecordFactory
) -> None:
    from guard import impact as impacts
    from guard.watch import Watcher

    guard = Guard(POLICY, store=store)
    at = NOW - timedelta(days=40)
    bad = [record(key=f"C-{n}", source="sap", fields={"email": "broken"}) for n in range(5)]
    guard.check(bad, pipeline="rag", now=at, consumer={"model": "gpt", "call_id": "c-1"})
    watcher = Watcher(guard)
    watcher.evaluate(at + timedelta(minutes=1))
    guard.check(bad, pipeline="rag", now=at + timedelta(minutes=2), consumer={"model": "gpt", "call_id": "c-2"})
    store.record_heartbeat("sap", "customer", at + timedelta(hours=3), at + timedelta(hours=3))
    watcher.evaluate(at + timedelta(hours=3))
    (incident,) = store.incidents(limit=10)
    assert incident["recovered_at"] is not None
    before = impacts.of_incident(store, incident, NOW)
    assert before.records_withheld == 5

    store.prune(Retention(), NOW)

    assert scalar(store_url, "SELECT count(*) FROM runs") == 0
    (kept,) = store.incidents(limit=10)
    assert {**kept, "impact": None} == {**incident, "impact": None}
    after = impacts.of_incident(store, kept, NOW)
    assert (after.totals(), after.sentence()) == (before.totals(), before.sentence())


def test_freshguard_store_prune_says_what_it_removed(store_url: str, record: RecordFactory) -> None:
    store = LineageStore(store_url)
    try:
        _history(store, record)
    finally:
        store.close()
    runner = CliRunner()

    dry = runner.invoke(app, ["store", "prune", "--database", store_url, "--older-than", "10d", "--dry-run"])
    done = runner.invoke(app, ["store", "prune", "--database", store_url, "--older-than", "10d"])
    bad = runner.invoke(app, ["store", "prune", "--database", store_url, "--older-than", "soon"])

    assert dry.exit_code == 0, dry.output
    assert "would remove" in dry.output
    assert "run_records" in dry.output
    assert done.exit_code == 0, done.output
    assert "removed" in done.output
    assert scalar(store_url, "SELECT count(*) FROM runs") == 0  # NOW is more than 10 days before today
    assert bad.exit_code == 2
    assert "--older-than" in bad.output
