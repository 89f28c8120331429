"""What operations keep: the state of each integration point, its changes, incidents and the alert outbox.

Functions over a connection the store opened (and its transaction); `LineageStore` exposes them.
`apply_evaluation` runs under a lock (PostgreSQL advisory lock, SQLite's write lock), so that
workers evaluating at once record each state change, incident and alert exactly once.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from guard.lineage._base import REPORT_EXTRA_S, StoreBase
from guard.lineage._values import json_value
from guard.lineage.tables import alert_outbox, consumption, incidents, point_states, run_tallies, runs, state_changes

#: Serialises health evaluations on one PostgreSQL database.
EVALUATION_LOCK_KEY = 7414245


def open_key(source: str, obj: str) -> str:
    """The incidents row's `open_key` while an incident of this point is open."""
    return f"{source}\x1f{obj}"


def point_states_now(conn: Connection) -> dict[tuple[str, str], dict[str, Any]]:
    """The last recorded state of every integration point."""
    return {(row["source"], row["object"]): dict(row) for row in conn.execute(sa.select(point_states)).mappings()}


def open_incidents(conn: Connection) -> dict[tuple[str, str], dict[str, Any]]:
    """The open incident of each integration point that has one."""
    query = sa.select(incidents).where(incidents.c.open_key.is_not(None))
    return {(row["source"], row["object"]): dict(row) for row in conn.execute(query).mappings()}


def list_incidents(
    conn: Connection, *, open_only: bool = False, since: datetime | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    """Incidents, newest first."""
    query = sa.select(incidents).order_by(incidents.c.detected_at.desc(), incidents.c.id.desc()).limit(limit)
    if open_only:
        query = query.where(incidents.c.open_key.is_not(None))
    if since is not None:
        query = query.where(sa.or_(incidents.c.recovered_at.is_(None), incidents.c.recovered_at >= since))
    return [dict(row) for row in conn.execute(query).mappings()]


def one_incident(conn: Connection, incident_id: int) -> dict[str, Any] | None:
    """One incident, or None."""
    row = conn.execute(sa.select(incidents).where(incidents.c.id == incident_id)).mappings().first()
    return None if row is None else dict(row)


def acknowledge(conn: Connection, incident_id: int, by: str, at: datetime) -> dict[str, Any] | None:
    """Acknowledge an incident (the first acknowledgement stands); None when there is no such incident."""
    known = one_incident(conn, incident_id)
    if known is None:
        return None
    if known["acknowledged_at"] is None:
        conn.execute(incidents.update().where(incidents.c.id == incident_id), {"acknowledged_at": at,
                                                                               "acknowledged_by": by})  # fmt: skip
        known = {**known, "acknowledged_at": at, "acknowledged_by": by}
    return known


def impact(conn: Connection, source: str, obj: str, start: datetime, end: datetime) -> list[dict[str, Any]]:
    """The runs that decided records of the point in [start, end], with what they let through and their model calls."""
    query = (
        sa.select(runs.c.run_id, runs.c.pipeline, runs.c.checked_at, run_tallies.c.records, run_tallies.c.allowed,
                  run_tallies.c.warned, run_tallies.c.blocked)
        .join(runs, runs.c.run_id == run_tallies.c.run_id)
        .where(run_tallies.c.source == source, run_tallies.c.object == obj, run_tallies.c.checked_at >= start,
               run_tallies.c.checked_at <= end)
        .order_by(run_tallies.c.checked_at)
    )  # fmt: skip
    found = [dict(row) for row in conn.execute(query).mappings()]
    calls: dict[str, list[dict[str, Any]]] = {}
    ids = [run["run_id"] for run in found]
    for begin in range(0, len(ids), 400):  # SQLite caps bound parameters
        chunk = ids[begin : begin + 400]
        rows = conn.execute(
            sa.select(consumption.c.run_id, consumption.c.model, consumption.c.call_id, consumption.c.extra)
            .where(consumption.c.run_id.in_(chunk))
            .order_by(consumption.c.id)
        ).mappings()
        for row in rows:
            calls.setdefault(row["run_id"], []).append(
                {"model": row["model"], "call_id": row["call_id"], "extra": row["extra"] or {}}
            )
    for run in found:
        run["model_calls"] = calls.get(run["run_id"], [])
    return found


def changes_since(conn: Connection, start: datetime) -> list[dict[str, Any]]:
    """State changes since `start`, oldest first."""
    query = sa.select(state_changes).where(state_changes.c.at >= start).order_by(state_changes.c.at, state_changes.c.id)
    return [dict(row) for row in conn.execute(query).mappings()]


def due_alerts(conn: Connection, now: datetime, limit: int) -> list[dict[str, Any]]:
    """Undelivered alerts whose next attempt is due, each the oldest pending of its channel and point.

    A later alert of a point waits for the earlier ones, so that a receiver never hears
    "resolved" before "triggered".
    """
    pending = conn.execute(
        sa.select(alert_outbox, state_changes.c.source, state_changes.c.object)
        .join(state_changes, state_changes.c.id == alert_outbox.c.change_id)
        .where(alert_outbox.c.delivered_at.is_(None), alert_outbox.c.failed_at.is_(None))
        .order_by(alert_outbox.c.id)
    ).mappings()
    first: dict[tuple[str, str, str], dict[str, Any]] = {}
    for row in pending:
        first.setdefault((row["channel"], row["source"], row["object"]), dict(row))
    due = [row for row in first.values() if row["next_attempt_at"] <= now]
    return sorted(due, key=lambda row: row["id"])[:limit]


def lease(conn: Connection, alert_id: int, attempts: int, until: datetime) -> bool:
    """Claim an alert for one delivery attempt until `until`; False if another worker claimed it first."""
    result = conn.execute(
        alert_outbox.update()
        .where(
            alert_outbox.c.id == alert_id, alert_outbox.c.attempts == attempts, alert_outbox.c.delivered_at.is_(None)
        )
        .values(attempts=attempts + 1, next_attempt_at=until)
    )
    return result.rowcount == 1


def delivered(conn: Connection, alert_id: int, at: datetime) -> None:
    """The receiver took the alert."""
    conn.execute(alert_outbox.update().where(alert_outbox.c.id == alert_id), {"delivered_at": at, "last_error": None})


def attempt_failed(conn: Connection, alert_id: int, error: str, retry_at: datetime | None, at: datetime) -> None:
    """A delivery attempt failed: retry at `retry_at`, or give up (None)."""
    values: dict[str, Any] = {"last_error": error[:1000]}
    if retry_at is None:
        values["failed_at"] = at
    else:
        values["next_attempt_at"] = retry_at
    conn.execute(alert_outbox.update().where(alert_outbox.c.id == alert_id), values)


def alert_counts(conn: Connection) -> dict[str, int]:
    """How many alerts are delivered, pending and failed."""
    delivered_count = sa.func.count().filter(alert_outbox.c.delivered_at.is_not(None))
    failed_count = sa.func.count().filter(alert_outbox.c.failed_at.is_not(None))
    total = sa.func.count()
    row = conn.execute(sa.select(delivered_count, failed_count, total)).one()
    return {"delivered": row[0], "failed": row[1], "pending": row[2] - row[0] - row[1]}


class Operations:
    """The operations tables on one connection, inside the evaluation lock (see `LineageStore.operations`)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def states(self) -> dict[tuple[str, str], dict[str, Any]]:
        """The last recorded state of every integration point."""
        return point_states_now(self.conn)

    def open_incidents(self) -> dict[tuple[str, str], dict[str, Any]]:
        """The open incident of each point that has one."""
        return open_incidents(self.conn)

    def impact(self, source: str, obj: str, start: datetime, end: datetime) -> list[dict[str, Any]]:
        """As `LineageStore.incident_impact`, inside this transaction."""
        return impact(self.conn, source, obj, start, end)

    def set_state(self, point: tuple[str, str], state: str, *, at: datetime, known: bool) -> None:
        """Record a point's new state, taken `at`."""
        source, obj = point
        values = {"state": state, "since": at, "evaluated_at": at}
        if known:
            where = (point_states.c.source == source, point_states.c.object == obj)
            self.conn.execute(point_states.update().where(*where), values)
        else:
            self.conn.execute(point_states.insert(), {"source": source, "object": obj, **values})

    def touch(self, points: Sequence[tuple[str, str]], at: datetime) -> None:
        """Mark points evaluated without a change."""
        for source, obj in points:
            where = (point_states.c.source == source, point_states.c.object == obj)
            self.conn.execute(point_states.update().where(*where), {"evaluated_at": at})

    def change(self, point: tuple[str, str], previous: str | None, state: str, *, at: datetime,
               findings: list[str]) -> int:  # fmt: skip
        """Keep a state change; its id."""
        row = {"source": point[0], "object": point[1], "previous": previous, "state": state, "at": at,
               "findings": findings}  # fmt: skip
        return int(self.conn.execute(state_changes.insert().returning(state_changes.c.id), row).scalar_one())

    def open_incident(self, values: Mapping[str, Any]) -> int:
        """Open an incident; its id."""
        row = {**values, "open_key": open_key(values["source"], values["object"]),
               "figures": json_value(values["figures"])}  # fmt: skip
        return int(self.conn.execute(incidents.insert().returning(incidents.c.id), row).scalar_one())

    def close_incident(self, incident_id: int, at: datetime) -> None:
        """Close an incident: the point is healthy again."""
        self.conn.execute(incidents.update().where(incidents.c.id == incident_id), {"recovered_at": at,
                                                                                   "open_key": None})  # fmt: skip

    def enqueue(self, change_id: int, channel: str, *, kind: str, payload: Mapping[str, Any], at: datetime) -> None:
        """Put one alert in the outbox (one per state change and channel)."""
        self.conn.execute(
            alert_outbox.insert(),
            {"change_id": change_id, "channel": channel, "kind": kind, "payload": json_value(payload),
             "created_at": at, "attempts": 0, "next_attempt_at": at},
        )  # fmt: skip


class OperationsStore(StoreBase):
    """Integration points' states, incidents and the alert outbox."""

    @contextmanager
    def operations(self) -> Iterator[Operations]:
        """The operations tables in one transaction that one evaluator at a time holds (across processes)."""
        with self._connect("evaluate integration health", extra_s=REPORT_EXTRA_S) as conn:
            if self.dialect == "postgresql":
                conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({EVALUATION_LOCK_KEY})")
            else:
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            yield Operations(conn)

    def incidents(
        self, *, open_only: bool = False, since: datetime | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        """Incidents, newest first; `since` keeps the open ones and those recovered since then."""
        with self._connect("list incidents") as conn:
            return list_incidents(conn, open_only=open_only, since=since, limit=limit)

    def incident(self, incident_id: int) -> dict[str, Any] | None:
        """One incident, or None."""
        with self._connect("read an incident") as conn:
            return one_incident(conn, incident_id)

    def acknowledge_incident(self, incident_id: int, by: str, at: datetime) -> dict[str, Any] | None:
        """Acknowledge an incident (the first acknowledgement stands); None when there is none such."""
        with self._connect("acknowledge an incident") as conn:
            return acknowledge(conn, incident_id, by, at)

    def incident_impact(self, source: str, obj: str, start: datetime, end: datetime) -> list[dict[str, Any]]:
        """The runs that decided records of (source, obj) in [start, end], and their model calls."""
        with self._connect("read an incident's impact", extra_s=REPORT_EXTRA_S) as conn:
            return impact(conn, source, obj, start, end)

    def point_states(self) -> dict[tuple[str, str], dict[str, Any]]:
        """The last recorded state of every integration point: state, since, evaluated_at."""
        with self._connect("read integration points' states") as conn:
            return point_states_now(conn)

    def state_changes_since(self, start: datetime) -> list[dict[str, Any]]:
        """Integration points' state changes since `start`, oldest first."""
        with self._connect("read state changes") as conn:
            return changes_since(conn, start)

    def due_alerts(self, now: datetime, limit: int = 100) -> list[dict[str, Any]]:
        """Alerts to send now, in order per channel and point."""
        with self._connect("read the alert outbox") as conn:
            return due_alerts(conn, now, limit)

    def lease_alert(self, alert_id: int, attempts: int, until: datetime) -> bool:
        """Claim an alert for one delivery attempt; False when another worker has it."""
        with self._connect("claim an alert") as conn:
            return lease(conn, alert_id, attempts, until)

    def alert_delivered(self, alert_id: int, at: datetime) -> None:
        """Mark an alert delivered."""
        with self._connect("mark an alert delivered") as conn:
            delivered(conn, alert_id, at)

    def alert_failed(self, alert_id: int, error: str, retry_at: datetime | None, at: datetime) -> None:
        """Record a failed attempt: retry at `retry_at`, or give up (None)."""
        with self._connect("record an alert failure") as conn:
            attempt_failed(conn, alert_id, error, retry_at, at)

    def latest_alerts(self) -> dict[tuple[str, str], list[dict[str, Any]]]:
        """For each point, the alerts of its latest state change: channel, delivered_at, failed_at, last_error."""
        latest = (
            sa.select(state_changes.c.source, state_changes.c.object, sa.func.max(state_changes.c.id).label("id"))
            .group_by(state_changes.c.source, state_changes.c.object)
            .subquery()
        )
        query = sa.select(latest.c.source, latest.c.object, alert_outbox.c.channel, alert_outbox.c.delivered_at,
                          alert_outbox.c.failed_at, alert_outbox.c.last_error).join(
            alert_outbox, alert_outbox.c.change_id == latest.c.id
        )  # fmt: skip
        found: dict[tuple[str, str], list[dict[str, Any]]] = {}
        with self._connect("read the latest alerts") as conn:
            for row in conn.execute(query).mappings():
                found.setdefault((row["source"], row["object"]), []).append(dict(row))
        return found

    def alert_counts(self) -> dict[str, int]:
        """How many alerts are delivered, pending and failed."""
        with self._connect("count alerts") as conn:
            return alert_counts(conn)
