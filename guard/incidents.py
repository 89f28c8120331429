"""From health to operations: state changes, incidents opened and closed. Pure: no clock, no I/O.

A breach opens an incident for its integration point; the return to healthy closes it (a point
that goes from breached to degraded stays in its incident). Every change of state is a
transition that alerts are sent for, except a point's first evaluation finding it healthy.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from guard.health import HealthState, PointHealth

Point = tuple[str, str]


@dataclass(frozen=True, slots=True)
class Transition:
    """A point's state changed (previous None: its first evaluation)."""

    point: Point
    previous: str | None
    state: str
    findings: tuple[str, ...]
    health: PointHealth


@dataclass(frozen=True, slots=True)
class Opening:
    """An incident to open: what is breached, since when (estimated), the figures at detection."""

    point: Point
    breaches: tuple[str, ...]
    findings: tuple[str, ...]
    figures: Mapping[str, Any]
    started_at: datetime
    recovery_s: float | None


@dataclass(slots=True)
class Plan:
    """What one evaluation changes."""

    transitions: list[Transition] = field(default_factory=list)
    openings: list[Opening] = field(default_factory=list)
    closings: list[Point] = field(default_factory=list)
    unchanged: list[Point] = field(default_factory=list)


def plan(healths: Sequence[PointHealth], states: Mapping[Point, str], open_points: set[Point], now: datetime) -> Plan:
    """Compare each SLA'd point's state with the one recorded: the transitions and incident changes."""
    out = Plan()
    for health in healths:
        if health.state is None:
            continue
        point, state = (health.source, health.object), health.state.value
        previous = states.get(point)
        if state != previous and not (previous is None and health.state is HealthState.HEALTHY):
            out.transitions.append(Transition(point, previous, state, tuple(health.findings), health))
        elif previous is not None:
            out.unchanged.append(point)
        if health.state is HealthState.BREACHED and point not in open_points:
            out.openings.append(
                Opening(point, tuple(health.breaches), tuple(health.findings), health.to_dict(),
                        started_at(health, now), health.recovery_s)
            )  # fmt: skip
        elif health.state is HealthState.HEALTHY and point in open_points:
            out.closings.append(point)
    return out


def started_at(health: PointHealth, now: datetime) -> datetime:
    """When the breach most likely began: the lag crossing max_lag, the missed deadline, or now."""
    candidates = [now]
    if "lag" in health.breaches and health.lag_s is not None and health.max_lag_s is not None:
        candidates.append(now - timedelta(seconds=health.lag_s - health.max_lag_s))
    if "deadline" in health.breaches and health.due is not None:
        candidates.append(health.due)
    return min(candidates)


def durations(incident: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    """Time to detect, to acknowledge and to recover, in seconds, and whether recovery ran past its objective."""
    started, detected = incident["started_at"], incident["detected_at"]
    acknowledged, recovered = incident["acknowledged_at"], incident["recovered_at"]
    objective = incident["recovery_objective_s"]
    elapsed = ((recovered or now) - started).total_seconds()
    return {
        "time_to_detect_s": (detected - started).total_seconds(),
        "time_to_acknowledge_s": None if acknowledged is None else (acknowledged - detected).total_seconds(),
        "time_to_recover_s": None if recovered is None else elapsed,
        "open_for_s": None if recovered is not None else elapsed,
        "past_objective": objective is not None and elapsed > objective,
    }
