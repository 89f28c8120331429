"""What someone on call needs beside each point and incident: since when, what it touched, whom to call, what to do.

Gathered once per page from the policy, the store and `guard.impact` (the one definition of an
incident's impact, which the API and the alerts use too).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from guard import impact as impacts
from guard.alerts import Unset
from guard.health import PointHealth
from guard.incidents import durations
from guard.lineage.store import LineageStore
from guard.policy.model import Policy


@dataclass(frozen=True, slots=True)
class Channel:
    """An alert channel of a point and how its latest alert went."""

    name: str
    delivered: bool | None  # None: nothing sent yet for the latest state change
    problem: str | None  # why it did not go out (failed, or not configured)

    @property
    def flag(self) -> bool:
        """An undelivered alert or a channel that cannot deliver: the red flag."""
        return self.problem is not None


@dataclass(frozen=True, slots=True)
class Contacts:
    """Who to call for a point: the team owning the object, the team of the source, the alert channels."""

    owner: str | None
    owner_team: str | None
    source_team: str | None
    channels: tuple[Channel, ...]
    runbook: str | None


@dataclass(frozen=True, slots=True)
class IncidentView:
    """An incident as the pages show it: the row, its durations, its impact, its contacts."""

    row: Mapping[str, Any]
    times: Mapping[str, Any]
    impact: impacts.Impact
    contacts: Contacts

    @property
    def open(self) -> bool:
        return self.row["recovered_at"] is None

    @property
    def badge(self) -> tuple[str, str, str]:
        """(css state, icon, word): open, acknowledged, recovered."""
        if not self.open:
            return "healthy", "✓", "recovered"
        if self.row["acknowledged_at"] is not None:
            return "degraded", "●", "acknowledged"
        return "breached", "✕", "open"

    @property
    def at_detection(self) -> str:
        """The findings at detection, without the point's name (the card already says it)."""
        name = f"{self.row['source']} → {self.row['object']}: "
        return "; ".join(text.removeprefix(name) for text in self.row["findings"])

    def __getattr__(self, name: str) -> Any:
        for source in (self.row, self.times):
            if name in source:
                return source[name]
        raise AttributeError(name)


def contacts(
    policy: Policy,
    source: str,
    obj: str,
    *,
    latest_alerts: Mapping[tuple[str, str], Sequence[Mapping[str, Any]]],
    unconfigured: Mapping[str, Unset],
) -> Contacts:
    """Whom to call for (source, obj), and whether its alert channels got the latest alert out."""
    spec = policy.objects.get(obj)
    owner = spec.owner if spec is not None else None
    sla = next((s for s in policy.slas if (s.source, s.object) == (source, obj)), None)
    sent = {a["channel"]: a for a in latest_alerts.get((source, obj), [])}
    channels = []
    for name in sla.notify if sla is not None else []:
        alert = sent.get(name)
        unset = unconfigured.get(name)
        problem = None if unset is None else f"{unset.variable} is not set"
        delivered: bool | None = None
        if alert is not None:
            delivered = alert["delivered_at"] is not None
            if not delivered and problem is None:
                problem = alert["last_error"] or "not delivered yet (retrying)"
        channels.append(Channel(name, delivered, problem))
    return Contacts(
        owner=owner,
        owner_team=policy.team_of(owner) if owner else None,
        source_team=policy.team_of(source),
        channels=tuple(channels),
        runbook=sla.runbook if sla is not None else None,
    )


def incident_view(
    store: LineageStore,
    *,
    policy: Policy,
    row: Mapping[str, Any],
    now: datetime,
    latest_alerts: Mapping[tuple[str, str], Sequence[Mapping[str, Any]]],
    unconfigured: Mapping[str, Unset],
) -> IncidentView:
    """An incident with its durations, impact and contacts."""
    return IncidentView(
        row=row,
        times=durations(row, now),
        impact=impacts.of_incident(store, row, now),
        contacts=contacts(policy, row["source"], row["object"], latest_alerts=latest_alerts, unconfigured=unconfigured),
    )


def open_incident_of(views: Sequence[IncidentView], health: PointHealth) -> IncidentView | None:
    """The open incident of a point, if it has one."""
    return next((v for v in views if v.open and (v.row["source"], v.row["object"]) == (health.source, health.object)),
                None)  # fmt: skip
