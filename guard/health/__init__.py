"""SLA health per integration point (source, object): the figures behind it and a state in words.

Pure: the policy, the tallies of recent checks, the newest heartbeats per writer, the entities
seen and `now` go in; nothing is read from a clock or a database here. `DEFINITION` says in
words how states are decided; the service shows it beside them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from guard._durations import humanize_seconds as words
from guard.health._schedule import ScheduleView, view
from guard.policy.model import Policy, SLASpec
from guard.tallies import Tally, reasons_ranked

#: Freshness lag past this share of `max_lag` is a warning (degraded).
DEGRADED_LAG_FRACTION = 0.75
#: The error budget burns too fast when the block rate is this many times `max_block_rate` ...
BURN_FACTOR = 2.0
#: ... over both the long and the short look-back (shares of the SLA's `window`), as in the SRE workbook's
#: multiwindow burn-rate alerts: the long one shows the budget going, the short one that it still is.
LONG_LOOKBACK, SHORT_LOOKBACK = 1 / 4, 1 / 48
#: The window of figures for integration points without an SLA entry.
DEFAULT_WINDOW = timedelta(hours=1)

#: A writer (sync job) of a point without an SLA that has not reported for this long is retired.
DEFAULT_RETIREMENT = timedelta(days=7)

Point = tuple[str, str]  # (source, object)
WriterKey = tuple[str, str, str]  # (source, object, writer)

DEFINITION = (
    "breached: the freshness lag is past the SLA's max_lag (or a load due by its expected_by deadline has not "
    "arrived), or more than max_block_rate of the records checked over its window were blocked. "
    f"degraded: not breached, but the lag is past {DEGRADED_LAG_FRACTION:.0%} of max_lag, or the error budget "
    f"is burning too fast: the block rate is over {BURN_FACTOR:g}x max_block_rate over both the last "
    f"{LONG_LOOKBACK:.0%} and the last {SHORT_LOOKBACK:.1%} of the window (the SRE workbook's multiwindow "
    "burn-rate rule), or a load due by an expected_by deadline has not arrived within warn_before of it. "
    "no_data: no sync reported and no record checked over the window. healthy: otherwise. "
    "The lag is the oldest of the writers' newest syncs (so one fresh writer cannot hide a stale one), or the "
    "95th percentile age of the records checked when no writer reports; outside a schedule's active minutes "
    "it is not judged, and inside it counts from the start of the active period. A writer silent for longer than "
    "the SLA's retire_writers_after (7 days unless set) is retired: shown, but not counted in the lag."
)


class HealthState(StrEnum):
    """How an integration point stands against its SLA."""

    HEALTHY = "healthy"
    DEGRADED = "degraded"
    BREACHED = "breached"
    NO_DATA = "no_data"


@dataclass(slots=True)
class WriterLag:
    """One writer (sync job) of an integration point: its newest sync and how long ago it was."""

    writer: str
    last_sync: datetime
    lag_s: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"writer": self.writer, "last_sync": self.last_sync.isoformat(), "lag_s": round(self.lag_s, 3)}


@dataclass(slots=True)
class PointHealth:
    """One integration point: its SLA (if any), the figures over its window, its state and why."""

    source: str
    object: str
    team: str | None
    window_s: float
    last_sync: datetime | None = None
    lag_s: float | None = None
    lag_from: str | None = None  # "heartbeats" or "records"
    max_lag_s: float | None = None
    writers: list[WriterLag] = field(default_factory=list)
    retired: list[WriterLag] = field(default_factory=list)  # silent past retire_writers_after: not in the lag
    entities: int | None = None
    records: int = 0
    blocked: int = 0
    warned: int = 0
    block_rate: float | None = None
    max_block_rate: float | None = None
    burn_long: float | None = None
    burn_short: float | None = None
    reasons: list[tuple[str, int]] = field(default_factory=list)
    age_p50_s: float | None = None
    age_p95_s: float | None = None
    max_age_s: float | None = None
    recovery_s: float | None = None
    paused: bool = False
    due: datetime | None = None
    next_due: datetime | None = None
    has_sla: bool = False
    state: HealthState | None = None
    breaches: list[str] = field(default_factory=list)  # what is breached, by kind: "lag", "deadline", "block_rate"
    findings: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        """How people name the point: `sap → customer`."""
        return f"{self.source} → {self.object}"

    @property
    def budget_left(self) -> float | None:
        """Share of the error budget left over the window: 1 - block_rate / max_block_rate (0 when spent)."""
        if self.block_rate is None or not self.max_block_rate:
            return None
        return max(0.0, 1 - self.block_rate / self.max_block_rate)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "source": self.source,
            "object": self.object,
            "team": self.team,
            "has_sla": self.has_sla,
            "state": None if self.state is None else self.state.value,
            "breaches": list(self.breaches),
            "findings": list(self.findings),
            "window_s": self.window_s,
            "last_sync": _iso(self.last_sync),
            "lag_s": _rounded(self.lag_s),
            "lag_from": self.lag_from,
            "max_lag_s": self.max_lag_s,
            "writers": [writer.to_dict() for writer in self.writers],
            "retired_writers": [writer.to_dict() for writer in self.retired],
            "entities": self.entities,
            "records": self.records,
            "warned": self.warned,
            "blocked": self.blocked,
            "block_rate": _rounded(self.block_rate, 6),
            "max_block_rate": self.max_block_rate,
            "burn_rate_long": _rounded(self.burn_long),
            "burn_rate_short": _rounded(self.burn_short),
            "reasons": [{"code": code, "records": count} for code, count in self.reasons],
            "age_p50_s": _rounded(self.age_p50_s),
            "age_p95_s": _rounded(self.age_p95_s),
            "max_age_s": self.max_age_s,
            "recovery_s": self.recovery_s,
            "paused": self.paused,
            "due": _iso(self.due),
            "next_due": _iso(self.next_due),
        }


def windows(policy: Policy) -> dict[Point, timedelta]:
    """The window of figures of every integration point with an SLA (others use DEFAULT_WINDOW)."""
    return {(sla.source, sla.object): sla.window for sla in policy.slas}


def allowed_points(policy: Policy) -> set[Point]:
    """Every integration point the policy allows: each object with its owner and each replica."""
    return {(source, name) for name, spec in policy.objects.items() for source in (spec.owner, *spec.replicas)}


def window_starts(policy: Policy, now: datetime) -> set[datetime]:
    """Every start of a span `integration_health` sums tallies from: the windows and their burn-rate look-backs."""
    starts = {now - DEFAULT_WINDOW}
    for sla in policy.slas:
        starts.add(now - sla.window)
        if sla.max_block_rate:
            starts.update((now - sla.window * LONG_LOOKBACK, now - sla.window * SHORT_LOOKBACK))
    return starts


def integration_health(
    policy: Policy,
    tallies: Iterable[Tally],
    heartbeats: Mapping[WriterKey, datetime],
    now: datetime,
    entities: Mapping[Point, int] | None = None,
) -> list[PointHealth]:
    """Every SLA of the policy with its state, then every other allowed integration point with its figures.

    `heartbeats` holds the newest sync of each (source, object, writer); `entities` the distinct
    keys checked per point over its window, when the caller counted them.
    """
    recent = [tally for tally in tallies if tally.source is not None and tally.object is not None]
    declared = {(sla.source, sla.object): sla for sla in policy.slas}
    allowed = allowed_points(policy)
    facts = _Facts(policy, recent, heartbeats, now, entities or {})
    return [facts.point(point, sla) for point, sla in declared.items()] + [
        facts.point(point, None) for point in sorted(allowed - set(declared))
    ]


@dataclass(slots=True)
class _Facts:
    policy: Policy
    tallies: list[Tally]
    heartbeats: Mapping[WriterKey, datetime]
    now: datetime
    entities: Mapping[Point, int]

    def point(self, point: Point, sla: SLASpec | None) -> PointHealth:
        source, obj = point
        window = sla.window if sla is not None else DEFAULT_WINDOW
        spec = self.policy.objects.get(obj)
        health = PointHealth(
            source=source,
            object=obj,
            team=self.policy.team_of(source),
            window_s=window.total_seconds(),
            max_lag_s=_seconds(sla.max_lag) if sla is not None else None,
            max_block_rate=sla.max_block_rate if sla is not None else None,
            max_age_s=spec.max_age.total_seconds() if spec is not None else None,
            recovery_s=_seconds(sla.recovery) if sla is not None else None,
            has_sla=sla is not None,
            entities=self.entities.get(point),
        )
        merged = self._merged(point, self.now - window)
        health.records, health.blocked, health.warned = merged.records, merged.blocked, merged.warned
        if merged.records:
            health.block_rate = merged.blocked / merged.records
            health.reasons = reasons_ranked(merged.reasons)
            health.age_p50_s = merged.age_quantile(0.5)
            health.age_p95_s = merged.age_quantile(0.95)
        self._lag(health, point, sla.retire_writers_after if sla is not None else DEFAULT_RETIREMENT)
        if sla is not None and sla.max_block_rate:
            health.burn_long = self._burn(point, window * LONG_LOOKBACK, sla.max_block_rate)
            health.burn_short = self._burn(point, window * SHORT_LOOKBACK, sla.max_block_rate)
        if sla is not None:
            schedule = view(sla.schedule, self.now, health.last_sync) if sla.schedule is not None else None
            health.state, health.breaches, health.findings = _judge(health, sla, schedule, self.now)
        return health

    def _merged(self, point: Point, start: datetime) -> Tally:
        merged = Tally(*point)
        for tally in self.tallies:
            if (tally.source, tally.object) == point and (tally.checked_at is None or tally.checked_at >= start):
                merged.merge(tally)
        return merged

    def _lag(self, health: PointHealth, point: Point, retire_after: timedelta) -> None:
        """The freshness lag: the stalest active writer's newest sync, or else the records' p95 age."""
        every = [
            WriterLag(writer, synced, max((self.now - synced).total_seconds(), 0.0))
            for (source, obj, writer), synced in self.heartbeats.items()
            if (source, obj) == point
        ]
        every.sort(key=lambda w: (-w.lag_s, w.writer))
        retired = self.now - retire_after
        writers = [w for w in every if w.last_sync >= retired]
        health.writers, health.retired = writers, [w for w in every if w.last_sync < retired]
        if writers:
            health.last_sync = max(w.last_sync for w in writers)
            health.lag_s, health.lag_from = writers[0].lag_s, "heartbeats"
        elif health.age_p95_s is not None:
            health.lag_s, health.lag_from = health.age_p95_s, "records"

    def _burn(self, point: Point, lookback: timedelta, budget: float) -> float | None:
        tally = self._merged(point, self.now - lookback)
        return (tally.blocked / tally.records) / budget if tally.records else None


def _judge(
    health: PointHealth, sla: SLASpec, schedule: ScheduleView | None, now: datetime
) -> tuple[HealthState, list[str], list[str]]:
    """The state of an SLA'd point, what is breached, and each finding behind it in words."""
    breached: list[tuple[str, str]] = []
    degraded: list[str] = []
    lag = health.lag_s
    if schedule is not None:
        health.paused, health.due, health.next_due = schedule.paused, schedule.due, schedule.next_due
        if schedule.active_since is not None and lag is not None and health.lag_from == "heartbeats":
            lag = min(lag, max((now - schedule.active_since).total_seconds(), 0.0))
    if schedule is not None and schedule.due is not None:
        if schedule.missed:
            since = f"the last sync was {words(health.lag_s)} ago" if health.lag_s is not None else "no sync yet"
            breached.append(
                ("deadline", f"{health.name}: the load due by {_local(schedule.due)} has not arrived ({since})")
            )
        elif schedule.at_risk and schedule.next_due is not None:
            since = f"the last sync was {words(health.lag_s)} ago" if health.lag_s is not None else "no sync yet"
            left = words(max((schedule.next_due - now).total_seconds(), 0.0))
            due = _local(schedule.next_due)
            degraded.append(f"{health.name}: the load due by {due} has not arrived yet ({left} to go; {since})")
    elif schedule is not None and schedule.paused:
        pass  # a planned pause: the lag is not judged
    elif lag is not None and health.max_lag_s is not None:
        behind = f"{health.name}: behind by {words(lag)}; agreed {words(health.max_lag_s)}"
        if health.lag_from == "records":
            behind += " (from the ages of the records checked: no sync reported)"
        elif len(health.writers) > 1 and health.writers[0].lag_s == health.lag_s:
            behind += f" (writer {health.writers[0].writer or '(unnamed)'} of {len(health.writers)})"
        if lag > health.max_lag_s:
            breached.append(("lag", behind))
        elif lag > DEGRADED_LAG_FRACTION * health.max_lag_s:
            degraded.append(behind)
    if health.block_rate is not None and health.max_block_rate is not None:
        top = ", ".join(f"{code} {count}" for code, count in health.reasons[:3])
        rate = (
            f"{health.name}: {health.blocked} of {health.records} records blocked in the last "
            f"{words(health.window_s)} ({health.block_rate:.1%}; agreed at most {health.max_block_rate:.1%})"
            + (f": {top}" if top else "")
        )
        if health.block_rate > health.max_block_rate:
            breached.append(("block_rate", rate))
        elif (health.burn_long or 0) > BURN_FACTOR and (health.burn_short or 0) > BURN_FACTOR:
            degraded.append(
                f"{health.name}: the error budget is burning {health.burn_short:.1f}x too fast "
                f"({health.blocked} of {health.records} records blocked in the last {words(health.window_s)})"
            )
    if breached:
        return HealthState.BREACHED, [kind for kind, _ in breached], [text for _, text in breached] + degraded
    if degraded:
        return HealthState.DEGRADED, [], degraded
    if health.last_sync is None and health.records == 0:
        return (
            HealthState.NO_DATA,
            [],
            [f"{health.name}: no sync reported and no record checked in the last {words(health.window_s)}"],
        )
    if schedule is not None and schedule.paused:
        return HealthState.HEALTHY, [], [f"{health.name}: outside its schedule: the lag is not judged"]
    return HealthState.HEALTHY, [], []


def _local(moment: datetime) -> str:
    return moment.strftime("%a %Y-%m-%d %H:%M %Z")


def _seconds(duration: timedelta | None) -> float | None:
    return None if duration is None else duration.total_seconds()


def _rounded(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()
