"""SLA health per integration point (source, object): the figures behind it and a state in words.

Pure: the policy, the tallies of recent checks, the newest heartbeats and `now` go in; nothing
is read from a clock or a database here.

States, for each SLA the policy declares:

- `breached`: the newest sync is older than `max_lag`, or the share of records blocked over
  `window` is above `max_block_rate`;
- `degraded`: not breached, but the newest sync is older than DEGRADED_LAG_FRACTION of
  `max_lag`, or the block rate has used more than DEGRADED_BUDGET_FRACTION of `max_block_rate`;
- `no_data`: no heartbeat and no record checked in the window: nothing shows it is working;
- `healthy`: otherwise.

Integration points the policy allows (an object's owner and replicas) without an SLA entry
get the same figures and no state.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from guard._durations import humanize_seconds as words
from guard.policy.model import Policy, SLASpec
from guard.tallies import Tally, reasons_ranked

DEGRADED_LAG_FRACTION = 0.75
DEGRADED_BUDGET_FRACTION = 0.5
#: The window of figures for integration points without an SLA entry.
DEFAULT_WINDOW = timedelta(hours=1)

Point = tuple[str, str]  # (source, object)


class HealthState(StrEnum):
    """How an integration point stands against its SLA."""

    HEALTHY = "healthy"
    DEGRADED = "degraded"
    BREACHED = "breached"
    NO_DATA = "no_data"


@dataclass(slots=True)
class PointHealth:
    """One integration point: its SLA (if any), the figures over its window, its state and why."""

    source: str
    object: str
    team: str | None
    window_s: float
    last_sync: datetime | None = None
    lag_s: float | None = None
    max_lag_s: float | None = None
    records: int = 0
    blocked: int = 0
    warned: int = 0
    block_rate: float | None = None
    max_block_rate: float | None = None
    reasons: list[tuple[str, int]] = field(default_factory=list)
    age_p50_s: float | None = None
    age_p95_s: float | None = None
    max_age_s: float | None = None
    recovery_s: float | None = None
    has_sla: bool = False
    state: HealthState | None = None
    findings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "source": self.source,
            "object": self.object,
            "team": self.team,
            "has_sla": self.has_sla,
            "state": None if self.state is None else self.state.value,
            "findings": list(self.findings),
            "window_s": self.window_s,
            "last_sync": None if self.last_sync is None else self.last_sync.isoformat(),
            "lag_s": _rounded(self.lag_s),
            "max_lag_s": self.max_lag_s,
            "records": self.records,
            "warned": self.warned,
            "blocked": self.blocked,
            "block_rate": None if self.block_rate is None else round(self.block_rate, 6),
            "max_block_rate": self.max_block_rate,
            "reasons": [{"code": code, "records": count} for code, count in self.reasons],
            "age_p50_s": _rounded(self.age_p50_s),
            "age_p95_s": _rounded(self.age_p95_s),
            "max_age_s": self.max_age_s,
            "recovery_s": self.recovery_s,
        }


def integration_health(
    policy: Policy, tallies: Iterable[Tally], heartbeats: Mapping[Point, datetime], now: datetime
) -> list[PointHealth]:
    """Every SLA of the policy with its state, then every other allowed integration point with its figures."""
    recent = [tally for tally in tallies if tally.source is not None and tally.object is not None]
    declared = {(sla.source, sla.object): sla for sla in policy.slas}
    points: list[PointHealth] = [
        _point(policy, point, sla, tallies=recent, heartbeats=heartbeats, now=now) for point, sla in declared.items()
    ]
    others = sorted(
        {(source, name) for name, spec in policy.objects.items() for source in (spec.owner, *spec.replicas)}
        - set(declared)
    )
    points += [_point(policy, point, None, tallies=recent, heartbeats=heartbeats, now=now) for point in others]
    return points


def _point(
    policy: Policy,
    point: Point,
    sla: SLASpec | None,
    *,
    tallies: list[Tally],
    heartbeats: Mapping[Point, datetime],
    now: datetime,
) -> PointHealth:
    source, obj = point
    window = sla.window if sla is not None else DEFAULT_WINDOW
    start = now - window
    spec = policy.objects.get(obj)
    health = PointHealth(
        source=source,
        object=obj,
        team=policy.team_of(source),
        window_s=window.total_seconds(),
        max_lag_s=_seconds(sla.max_lag) if sla is not None else None,
        max_block_rate=sla.max_block_rate if sla is not None else None,
        max_age_s=spec.max_age.total_seconds() if spec is not None else None,
        recovery_s=_seconds(sla.recovery) if sla is not None else None,
        has_sla=sla is not None,
    )
    merged = Tally(source, obj)
    for tally in tallies:
        if (tally.source, tally.object) == point and (tally.checked_at is None or tally.checked_at >= start):
            merged.merge(tally)
    health.records, health.blocked, health.warned = merged.records, merged.blocked, merged.warned
    if merged.records:
        health.block_rate = merged.blocked / merged.records
        health.reasons = reasons_ranked(merged.reasons)
        health.age_p50_s = merged.age_quantile(0.5)
        health.age_p95_s = merged.age_quantile(0.95)
    synced = heartbeats.get(point)
    if synced is not None:
        health.last_sync = synced
        health.lag_s = max((now - synced).total_seconds(), 0.0)
    if sla is not None:
        health.state, health.findings = _judge(health)
    return health


def _judge(health: PointHealth) -> tuple[HealthState, list[str]]:
    """The state of an SLA'd point, and each finding behind it in words."""
    name = f"{health.source} → {health.object}"
    breached: list[str] = []
    degraded: list[str] = []
    if health.lag_s is not None and health.max_lag_s is not None:
        behind = f"{name}: the last sync was {words(health.lag_s)} ago; agreed {words(health.max_lag_s)}"
        if health.lag_s > health.max_lag_s:
            breached.append(behind)
        elif health.lag_s > DEGRADED_LAG_FRACTION * health.max_lag_s:
            degraded.append(behind)
    if health.block_rate is not None and health.max_block_rate is not None:
        top = ", ".join(f"{code} {count}" for code, count in health.reasons[:3])
        rate = (
            f"{name}: {health.blocked} of {health.records} records blocked in the last {words(health.window_s)} "
            f"({health.block_rate:.1%}; agreed at most {health.max_block_rate:.1%})" + (f": {top}" if top else "")
        )
        if health.block_rate > health.max_block_rate:
            breached.append(rate)
        elif health.block_rate > DEGRADED_BUDGET_FRACTION * health.max_block_rate:
            degraded.append(rate)
    if breached:
        return HealthState.BREACHED, breached + degraded
    if degraded:
        return HealthState.DEGRADED, degraded
    if health.last_sync is None and health.records == 0:
        return HealthState.NO_DATA, [
            f"{name}: no sync reported and no record checked in the last {words(health.window_s)}"
        ]
    return HealthState.HEALTHY, []


def _seconds(duration: timedelta | None) -> float | None:
    return None if duration is None else duration.total_seconds()


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 3)
