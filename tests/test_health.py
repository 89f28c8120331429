"""SLA health per integration point: lag against max_lag, block rate against max_block_rate, and the state."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from croniter import croniter
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from guard import Guard, Policy, parse_policy
from guard.health import HealthState, PointHealth, integration_health
from guard.health._schedule import _Minutes
from guard.tallies import AGE_BOUNDS_S, Tally
from tests.conftest import NOW, RecordFactory, ts

POLICY = """
policy: health
version: 1
sources:
  salesforce: {team: sales-ops}
  sap: {team: finance-systems}
  warehouse: {team: data-platform}
objects:
  customer: {owner: salesforce, replicas: [sap, warehouse], max_age: 1h}
slas:
  - {source: sap, object: customer, max_lag: 20m, max_block_rate: 0.1, window: 1h}
"""


@pytest.fixture
def policy() -> Policy:
    return parse_policy(POLICY, origin="test")


def sap_tally(records: int, blocked: int, minutes_ago: float = 5, ages_s: float | None = None, **reasons: int) -> Tally:
    """A check of `records` sap customer records `minutes_ago`, `blocked` of them, all `ages_s` old if given."""
    tally = Tally(
        "sap", "customer", records=records, allowed=records - blocked, blocked=blocked, reasons=reasons,
        checked_at=NOW - timedelta(minutes=minutes_ago),
    )  # fmt: skip
    if ages_s is not None:
        tally.age_buckets[next(i for i, bound in enumerate(AGE_BOUNDS_S) if ages_s <= bound)] += records
        tally.age_max_s, tally.age_sum_s = ages_s, ages_s * records
    return tally


def sap_health(policy: Policy, tallies: list[Tally], lag_minutes: float | None) -> PointHealth:
    beats = {} if lag_minutes is None else {("sap", "customer", ""): NOW - timedelta(minutes=lag_minutes)}
    return integration_health(policy, tallies, beats, NOW)[0]


@pytest.mark.parametrize(
    ("lag_minutes", "records", "blocked", "expected"),
    [
        (5, 100, 0, HealthState.HEALTHY),
        (16, 100, 0, HealthState.DEGRADED),  # past 75% of 20m
        (21, 100, 0, HealthState.BREACHED),
        (5, 100, 6, HealthState.HEALTHY),  # 6% of a 10% budget, and nothing in the last minute: no fast burn
        (5, 100, 11, HealthState.BREACHED),
        (None, 100, 0, HealthState.HEALTHY),  # records flow, no heartbeat: lag from their ages (5m)
        (5, 0, 0, HealthState.HEALTHY),  # synced, nothing checked
        (None, 0, 0, HealthState.NO_DATA),
        (30, 100, 50, HealthState.BREACHED),
    ],
)
def test_the_state_follows_lag_and_block_rate(
    policy: Policy, lag_minutes: float | None, records: int, blocked: int, expected: HealthState
) -> None:
    tallies = [sap_tally(records, blocked, STALE=blocked, ages_s=300)] if records else []
    assert sap_health(policy, tallies, lag_minutes).state is expected


def test_findings_say_what_is_wrong_in_words(policy: Policy) -> None:
    health = sap_health(policy, [sap_tally(40, 8, STALE=6, SCHEMA_VIOLATION=2)], lag_minutes=47)

    assert health.state is HealthState.BREACHED
    assert health.breaches == ["lag", "block_rate"]
    assert health.findings == [
        "sap → customer: behind by 47m; agreed 20m",
        "sap → customer: 8 of 40 records blocked in the last 1h (20.0%; agreed at most 10.0%): "
        "STALE 6, SCHEMA_VIOLATION 2",
    ]
    assert health.team == "finance-systems"
    assert health.to_dict()["reasons"] == [{"code": "STALE", "records": 6}, {"code": "SCHEMA_VIOLATION", "records": 2}]


def test_only_checks_inside_the_window_count(policy: Policy) -> None:
    old = sap_tally(100, 100, minutes_ago=61, STALE=100)
    recent = sap_tally(10, 0, minutes_ago=59)

    health = sap_health(policy, [old, recent], lag_minutes=1)

    assert (health.records, health.blocked, health.block_rate) == (10, 0, 0.0)
    assert health.state is HealthState.HEALTHY


def test_points_without_an_sla_show_their_figures_without_a_state(policy: Policy) -> None:
    points = integration_health(policy, [Tally("warehouse", "customer", records=3, blocked=1)], {}, NOW)

    assert [(p.source, p.object, p.has_sla) for p in points] == [
        ("sap", "customer", True),
        ("salesforce", "customer", False),
        ("warehouse", "customer", False),
    ]
    warehouse = points[2]
    assert (warehouse.state, warehouse.records, warehouse.blocked) == (None, 3, 1)
    assert warehouse.block_rate == pytest.approx(1 / 3)


def test_a_guard_reports_health_from_its_store(policy: Policy, record: RecordFactory, store_url: str) -> None:
    with Guard(policy, store=store_url) as guard:
        guard.check(
            [record(id="a", source="sap", key="C-1"), record(id="b", source="sap", key="C-2",
             observed_at=ts(NOW - timedelta(hours=3)))],
            pipeline="p", now=NOW - timedelta(minutes=1),
        )  # fmt: skip
        guard.note_heartbeat("sap", "customer", NOW - timedelta(minutes=2))

        sap = guard.health(now=NOW)[0]

    assert (sap.records, sap.blocked, sap.reasons) == (2, 1, [("STALE", 1)])
    assert sap.state is HealthState.BREACHED  # half blocked, against 10%
    assert sap.age_p95_s is not None
    assert sap.age_p95_s <= 3 * 3600


def test_the_stalest_writer_sets_the_lag_so_a_fresh_one_cannot_hide_it(policy: Policy) -> None:
    beats = {
        ("sap", "customer", "delta-sync"): NOW - timedelta(minutes=1),
        ("sap", "customer", "full-sync"): NOW - timedelta(minutes=50),
        ("sap", "customer", "retired"): NOW - timedelta(days=30),  # silent for a month: no longer expected
    }

    health = integration_health(policy, [], beats, NOW)[0]

    assert [w.writer for w in health.writers] == ["full-sync", "delta-sync"]
    assert health.lag_s == 50 * 60
    assert health.last_sync == NOW - timedelta(minutes=1)
    assert health.state is HealthState.BREACHED
    assert health.findings[0] == "sap → customer: behind by 50m; agreed 20m (writer full-sync of 2)"


def test_without_heartbeats_the_lag_comes_from_the_records_ages(policy: Policy) -> None:
    health = sap_health(policy, [sap_tally(50, 0, ages_s=1700)], lag_minutes=None)

    assert health.lag_from == "records"
    assert health.lag_s is not None
    assert 1500 < health.lag_s <= 1700
    assert health.state is HealthState.BREACHED
    assert "from the ages of the records checked" in health.findings[0]


@pytest.mark.parametrize(
    ("old", "recent", "latest", "expected"),
    [
        ((1000, 0), (100, 0), (20, 0), HealthState.HEALTHY),
        ((1000, 0), (100, 25), (20, 5), HealthState.DEGRADED),  # 2.7% of the hour, but 25% of the last quarter
        ((1000, 0), (100, 25), (20, 0), HealthState.HEALTHY),  # the burn stopped: the short look-back resets it
        ((100, 0), (100, 25), (20, 5), HealthState.BREACHED),  # 13.6% of the hour: the budget is gone
    ],
)
def test_a_fast_burn_of_the_error_budget_is_degraded_before_it_is_breached(
    policy: Policy, old: tuple[int, int], recent: tuple[int, int], latest: tuple[int, int], expected: HealthState
) -> None:
    tallies = [sap_tally(*old, minutes_ago=50), sap_tally(*recent, minutes_ago=10), sap_tally(*latest, minutes_ago=0.5)]

    health = sap_health(policy, tallies, lag_minutes=1)

    assert health.state is expected, health.findings
    if expected is HealthState.DEGRADED:
        assert "the error budget is burning 2.5x too fast" in health.findings[0]


SCHEDULED = POLICY.replace(
    "window: 1h}",
    "window: 1h, schedule: {timezone: Europe/Berlin, active: '* 6-21 * * 1-5'}}",
)
DAILY = POLICY.replace("window: 1h}", "window: 1h, schedule: {timezone: Europe/Berlin, expected_by: '06:00'}}")
MONDAY_8 = datetime(2026, 12, 7, 7, 0, tzinfo=UTC)  # Monday 08:00 in Berlin
SATURDAY = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("now", "last_sync", "state", "paused"),
    [
        (SATURDAY, datetime(2026, 12, 4, 20, 55, tzinfo=UTC), HealthState.HEALTHY, True),  # the weekend pause
        (MONDAY_8, datetime(2026, 12, 4, 20, 55, tzinfo=UTC), HealthState.BREACHED, False),  # 2h into Monday
        (MONDAY_8 - timedelta(hours=1, minutes=50), datetime(2026, 12, 4, 20, 55, tzinfo=UTC), HealthState.HEALTHY,
         False),  # 06:10: ten minutes into the period
        (MONDAY_8, MONDAY_8 - timedelta(minutes=5), HealthState.HEALTHY, False),
    ],
)  # fmt: skip
def test_a_planned_pause_is_not_a_breach_and_the_lag_counts_from_the_period_start(
    now: datetime, last_sync: datetime, state: HealthState, paused: bool
) -> None:
    policy = parse_policy(SCHEDULED, origin="test")

    health = integration_health(policy, [], {("sap", "customer", ""): last_sync}, now)[0]

    assert (health.state, health.paused) == (state, paused), health.findings


@pytest.mark.parametrize(
    ("now", "last_sync", "state"),
    [
        (datetime(2026, 12, 7, 6, 0, tzinfo=UTC), datetime(2026, 12, 7, 4, 30, tzinfo=UTC), HealthState.HEALTHY),
        (datetime(2026, 12, 7, 6, 0, tzinfo=UTC), datetime(2026, 12, 6, 4, 30, tzinfo=UTC), HealthState.BREACHED),
        (datetime(2026, 12, 7, 4, 0, tzinfo=UTC), datetime(2026, 12, 6, 4, 30, tzinfo=UTC), HealthState.HEALTHY),
        (datetime(2026, 12, 7, 6, 0, tzinfo=UTC), None, HealthState.BREACHED),
    ],
)
def test_a_load_expected_by_a_deadline_is_judged_at_the_deadline(
    now: datetime, last_sync: datetime | None, state: HealthState
) -> None:
    policy = parse_policy(DAILY, origin="test")
    beats = {} if last_sync is None else {("sap", "customer", ""): last_sync}
    tallies = [] if last_sync is not None else [Tally("sap", "customer", records=1, allowed=1, checked_at=now)]

    health = integration_health(policy, tallies, beats, now)[0]

    assert health.state is state, health.findings
    if state is HealthState.BREACHED:
        assert health.breaches == ["deadline"]
        assert "the load due by Mon 2026-12-07 06:00 CET has not arrived" in health.findings[0]


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(["* 6-21 * * 1-5", "*/15 * 1,15 * *", "0 6 * * mon-fri", "* * 1-7 * 1", "30 2 * 3,6 *",
                     "* * * * 0", "* * * * 7", "5-10/2 */3 * * *", "* * * * *"]),
    st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2030, 1, 1),
                 timezones=st.just(ZoneInfo("Europe/Berlin"))),
)  # fmt: skip
def test_schedule_minutes_match_as_croniter_does(expression: str, moment: datetime) -> None:
    """Away from DST changes (croniter moves a job that falls in the gap; we read the clock's fields as they are)."""
    minute = moment.replace(second=0, microsecond=0)
    zone = minute.tzinfo
    assert zone is not None
    around = [(minute.astimezone(UTC) + timedelta(hours=h)).astimezone(zone).utcoffset() for h in (-3, 0, 3)]
    assume(len(set(around)) == 1)
    assert _Minutes(expression).match(minute) == croniter.match(expression, minute)


def test_health_without_coverage_leaves_the_entities_uncounted(
    policy: Policy, record: RecordFactory, store_url: str
) -> None:
    with Guard(policy, store=store_url) as guard:
        guard.check([record(id="a", source="sap", key="C-1"), record(id="b", source="sap", key="C-2")], pipeline="p",
                    now=NOW - timedelta(minutes=1))  # fmt: skip

        counted = guard.health(now=NOW)[0]
        quick = guard.health(now=NOW, coverage=False)[0]

    assert (counted.entities, quick.entities) == (2, None)
    assert quick.state is counted.state


WARNED = DAILY.replace("expected_by: '06:00'}", "expected_by: '06:00', warn_before: 30m}")


@pytest.mark.parametrize(
    ("now", "last_sync", "state"),
    [
        (datetime(2026, 12, 7, 4, 20, tzinfo=UTC), datetime(2026, 12, 6, 4, 30, tzinfo=UTC), HealthState.HEALTHY),
        (datetime(2026, 12, 7, 4, 40, tzinfo=UTC), datetime(2026, 12, 6, 4, 30, tzinfo=UTC), HealthState.DEGRADED),
        (datetime(2026, 12, 7, 4, 40, tzinfo=UTC), datetime(2026, 12, 7, 4, 35, tzinfo=UTC), HealthState.HEALTHY),
        (datetime(2026, 12, 7, 5, 10, tzinfo=UTC), datetime(2026, 12, 6, 4, 30, tzinfo=UTC), HealthState.BREACHED),
    ],
)  # 06:00 in Berlin is 05:00 UTC: warned from 04:30 UTC on, breached once it passes without a load
def test_a_load_not_started_within_warn_before_of_its_deadline_is_degraded(
    now: datetime, last_sync: datetime, state: HealthState
) -> None:
    policy = parse_policy(WARNED, origin="test")

    health = integration_health(policy, [], {("sap", "customer", ""): last_sync}, now)[0]

    assert health.state is state, health.findings
    if state is HealthState.DEGRADED:
        assert "the load due by Mon 2026-12-07 06:00 CET has not arrived yet (20m to go;" in health.findings[0]


@pytest.mark.parametrize(
    ("retire", "retired"), [("", ["old-job"]), (", retire_writers_after: 1d", ["old-job", "idle"])]
)
def test_a_writer_silent_past_retire_writers_after_is_retired_and_not_counted_in_the_lag(
    retire: str, retired: list[str]
) -> None:
    policy = parse_policy(POLICY.replace("window: 1h}", f"window: 1h{retire}}}"), origin="test")
    silent = {"old-job": timedelta(days=8), "idle": timedelta(days=2), "live": timedelta(minutes=5)}
    beats = {("sap", "customer", writer): NOW - span for writer, span in silent.items()}

    health = integration_health(policy, [], beats, NOW)[0]

    assert [writer.writer for writer in health.retired] == retired
    assert {writer.writer for writer in health.writers} == {"old-job", "idle", "live"} - set(retired)
    assert health.to_dict()["retired_writers"][0]["writer"] == "old-job"
    expected_lag = timedelta(minutes=5) if "idle" in retired else timedelta(days=2)
    assert health.lag_s == expected_lag.total_seconds()
