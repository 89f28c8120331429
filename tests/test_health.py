"""SLA health per integration point: lag against max_lag, block rate against max_block_rate, and the state."""

from __future__ import annotations

from datetime import timedelta

import pytest

from guard import Guard, Policy, parse_policy
from guard.health import HealthState, PointHealth, integration_health
from guard.tallies import Tally
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


def sap_tally(records: int, blocked: int, minutes_ago: float = 5, **reasons: int) -> Tally:
    return Tally(
        "sap", "customer", records=records, allowed=records - blocked, blocked=blocked, reasons=reasons,
        checked_at=NOW - timedelta(minutes=minutes_ago),
    )  # fmt: skip


def sap_health(policy: Policy, tallies: list[Tally], lag_minutes: float | None) -> PointHealth:
    beats = {} if lag_minutes is None else {("sap", "customer"): NOW - timedelta(minutes=lag_minutes)}
    return integration_health(policy, tallies, beats, NOW)[0]


@pytest.mark.parametrize(
    ("lag_minutes", "records", "blocked", "expected"),
    [
        (5, 100, 0, HealthState.HEALTHY),
        (16, 100, 0, HealthState.DEGRADED),  # past 75% of 20m
        (21, 100, 0, HealthState.BREACHED),
        (5, 100, 6, HealthState.DEGRADED),  # 6% of a 10% budget
        (5, 100, 11, HealthState.BREACHED),
        (None, 100, 0, HealthState.HEALTHY),  # records flow, no heartbeat yet
        (5, 0, 0, HealthState.HEALTHY),  # synced, nothing checked
        (None, 0, 0, HealthState.NO_DATA),
        (30, 100, 50, HealthState.BREACHED),
    ],
)
def test_the_state_follows_lag_and_block_rate(
    policy: Policy, lag_minutes: float | None, records: int, blocked: int, expected: HealthState
) -> None:
    tallies = [sap_tally(records, blocked, STALE=blocked)] if records else []
    assert sap_health(policy, tallies, lag_minutes).state is expected


def test_findings_say_what_is_wrong_in_words(policy: Policy) -> None:
    health = sap_health(policy, [sap_tally(40, 8, STALE=6, SCHEMA_VIOLATION=2)], lag_minutes=47)

    assert health.state is HealthState.BREACHED
    assert health.findings == [
        "sap → customer: the last sync was 47m ago; agreed 20m",
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
