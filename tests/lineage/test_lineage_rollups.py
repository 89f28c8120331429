"""Per-minute rollups agree with a recomputation from the raw record rows, and health read from them with the
health computed from every run's tallies, over generated histories."""

from __future__ import annotations

from bisect import bisect_left
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from guard import Guard, LineageStore, Policy, Tally, parse_policy
from guard.health import integration_health
from guard.lineage.tables import run_records, runs
from guard.tallies import AGE_BOUNDS_S
from tests.conftest import MINIMAL_POLICY, NOW, ts

POLICY = parse_policy(
    MINIMAL_POLICY
    + """
slas:
  - {source: sap, object: customer, max_lag: 30m, max_block_rate: 0.2, window: 96m}
  - {source: warehouse, object: customer, max_block_rate: 0.1, window: 48m}
""",
    origin="rollups.yaml",
)

#: A check: minutes before NOW it ran (and its second), and its records as (source, key, age in minutes, email ok).
checks = st.lists(
    st.tuples(
        st.integers(0, 180),
        st.integers(0, 59),
        st.lists(
            st.tuples(st.sampled_from(["salesforce", "sap", "warehouse", "nowhere"]), st.integers(0, 5),
                      st.integers(0, 200), st.booleans()),
            min_size=1, max_size=6,
        ),
    ),
    max_size=12,
)  # fmt: skip


def _write(policy: Policy, store: LineageStore, history: list[Any]) -> None:
    guard = Guard(policy, store=store)
    for minutes, second, records in history:
        at = NOW - timedelta(minutes=minutes, seconds=second)
        guard.check(
            [
                {
                    "object": "customer", "key": f"C-{key}", "source": source,
                    "observed_at": ts(at - timedelta(minutes=age)), "updated_at": ts(at - timedelta(minutes=age + 1)),
                    "fields": {"email": "ana@example.com" if valid else "not an email", "tier": "gold"},
                }
                for source, key, age, valid in records
            ],
            pipeline="rag",
            now=at,
        )  # fmt: skip


def _recomputed(store: LineageStore) -> dict[tuple[datetime | None, str | None, str | None], Tally]:
    """The per-minute tallies, counted again from the run_records rows."""
    columns = (run_records.c.source, run_records.c.object, run_records.c.action, run_records.c.age_s)
    query = sa.select(runs.c.checked_at, *columns, run_records.c.reasons).join(
        runs, runs.c.run_id == run_records.c.run_id
    )
    found: dict[tuple[datetime | None, str | None, str | None], Tally] = {}
    with store.engine.connect() as conn:
        for checked_at, source, obj, action, age, reasons in conn.execute(query):
            minute = checked_at.replace(second=0, microsecond=0)
            tally = found.setdefault((minute, source, obj), Tally(source, obj, checked_at=minute))
            tally.records += 1
            tally.allowed += action == "allow"
            tally.warned += action == "warn"
            tally.blocked += action == "block"
            for code in {code for code in reasons.split(",") if code}:
                tally.reasons[code] = tally.reasons.get(code, 0) + 1
            if age is not None:
                tally.age_buckets[bisect_left(AGE_BOUNDS_S, age)] += 1
                tally.age_sum_s += age
                tally.age_max_s = age if tally.age_max_s is None else max(tally.age_max_s, age)
    return found


def _same(rolled: Tally, counted: Tally) -> None:
    assert (rolled.records, rolled.allowed, rolled.warned, rolled.blocked) == (
        counted.records, counted.allowed, counted.warned, counted.blocked,
    )  # fmt: skip
    assert rolled.reasons == counted.reasons
    assert rolled.age_buckets == counted.age_buckets
    assert rolled.age_max_s == counted.age_max_s
    assert abs(rolled.age_sum_s - counted.age_sum_s) < 1e-6 * max(1.0, counted.age_sum_s)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(history=checks)
def test_rollups_agree_with_the_record_rows_and_health_with_the_run_tallies(history: list[Any]) -> None:
    store = LineageStore("sqlite://")
    try:
        _write(POLICY, store, history)
        start, end = NOW - timedelta(hours=4), NOW + timedelta(minutes=1)
        rolled = {(t.checked_at, t.source, t.object): t for t in store.minute_tallies(start, end)}
        counted = _recomputed(store)
        assert rolled.keys() == counted.keys()
        for key, tally in rolled.items():
            _same(tally, counted[key])
        # NOW is a whole minute and the windows and look-backs (1/4, 1/48) whole minutes: rollups count exactly.
        guard = Guard(POLICY, store=store)
        from_rollups = [point.to_dict() for point in guard.health(NOW, coverage=False)]
        raw = store.tallies_since(NOW - timedelta(hours=2), NOW + timedelta(microseconds=1))
        from_runs = [p.to_dict() for p in integration_health(POLICY, raw, store.latest_heartbeats(), NOW)]
        assert from_rollups == from_runs
    finally:
        store.close()


def test_rollups_on_both_stores_agree_with_the_record_rows(store: LineageStore) -> None:
    history = [(minutes, minutes % 60, [("sap", minutes % 3, minutes, minutes % 4 != 0), ("warehouse", 1, 5, True)])
               for minutes in range(0, 90, 7)]  # fmt: skip
    history += [(14, 30, [("salesforce", 2, 1, True), ("sap", 2, 400, False)])]

    _write(POLICY, store, history)

    rolled = {(t.checked_at, t.source, t.object): t for t in store.minute_tallies(NOW - timedelta(hours=2), NOW)}
    counted = _recomputed(store)
    assert rolled.keys() == counted.keys()
    for key, tally in rolled.items():
        _same(tally, counted[key])
