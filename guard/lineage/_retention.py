"""Retention: how long each kind of history is kept, and pruning what is older in small batches.

Each batch is a transaction of its own over a few hundred runs (a few thousand record rows), so a
writer never waits long for a lock; the store notes how far back each kind was pruned
(`prune_horizons`), so readers can say "pruned" rather than "never seen", and the next prune starts
where the last one stopped. Incidents, their figures and state changes are never pruned here.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from guard.errors import StoreError
from guard.lineage._base import StoreBase
from guard.lineage.tables import (
    consumption,
    entity_sightings,
    heartbeats,
    incidents,
    prune_horizons,
    rollup_reasons,
    rollup_reasons_hourly,
    run_records,
    run_tallies,
    runs,
    tally_rollups,
    tally_rollups_hourly,
)

#: Runs per batch: each batch deletes their records (20 per run is 500 rows) in one short transaction.
BATCH_RUNS = 25
#: Rows per batch of heartbeats, rollups and sightings.
BATCH_ROWS = 500

#: The pause between batches, per dialect (seconds).
PAUSE_S = {"sqlite": 0.05, "postgresql": 0.005}

KINDS = ("records", "runs", "heartbeats", "rollups")
#: The tables each kind of history is pruned from.
TABLES_OF = {
    "records": ("run_records", "entity_sightings"),
    "runs": ("run_tallies", "consumption", "runs"),
    "heartbeats": ("heartbeats",),
    "rollups": ("tally_rollups", "rollup_reasons", "tally_rollups_hourly", "rollup_reasons_hourly"),
}


@dataclass(frozen=True, slots=True)
class Retention:
    """How long each kind of history is kept (None: forever).

    `records`: one row per record checked (and which entities were seen); `runs`: the runs, their
    tallies and their model-call links (never less than `records`); `heartbeats`: every sync reported
    (the newest per writer is always kept); `rollups`: the per-minute figures health and charts read.
    """

    records: timedelta | None = timedelta(days=30)
    runs: timedelta | None = timedelta(days=30)
    heartbeats: timedelta | None = timedelta(days=30)
    rollups: timedelta | None = timedelta(days=400)

    def __post_init__(self) -> None:
        for kind in KINDS:
            kept = getattr(self, kind)
            if kept is not None and kept <= timedelta(0):
                raise StoreError(f"retention of {kind} must be a positive duration, got {kept}")
        if self.records is not None and self.runs is not None and self.runs < self.records:
            raise StoreError(
                f"runs are kept {self.runs}, less than their records ({self.records}): keep runs at least as long"
            )

    def horizons(self, now: datetime) -> dict[str, datetime]:
        """The moment before which each kind kept for a limited time is pruned."""
        return {kind: now - kept for kind in KINDS if (kept := getattr(self, kind)) is not None}


@dataclass(slots=True)
class PruneReport:
    """What a prune removed (or, when `dry_run`, would remove), by table, and the horizon of each kind."""

    horizons: dict[str, datetime]
    dry_run: bool = False
    removed: dict[str, int] = field(default_factory=dict)
    batches: int = 0
    seconds: float = 0.0
    finished: bool = True  # False when it stopped at its batch limit: the next prune carries on

    def count(self, table: str, rows: int) -> None:
        self.removed[table] = self.removed.get(table, 0) + rows


class RetentionStore(StoreBase):
    """Pruning history past its retention, and the horizons readers report."""

    def pruned_before(self) -> dict[str, datetime]:
        """How far back each kind of history was pruned (kinds never pruned are absent)."""
        with self._connect("read the prune horizons") as conn:
            return {row.kind: row.pruned_before for row in conn.execute(sa.select(prune_horizons))}

    def prune(
        self,
        retention: Retention,
        now: datetime,
        *,
        dry_run: bool = False,
        pause_s: float | None = None,
        max_batches: int | None = None,
        stop: Callable[[], bool] = lambda: False,
    ) -> PruneReport:
        """Remove history older than `retention` allows, batch by batch, pausing `pause_s` between batches.

        The pause lets writers in: SQLite has one writer at a time, and a waiting writer polls with
        sleeps of up to 100 ms, so its default pause is longer than PostgreSQL's (whose row locks
        never hold up the inserts of new checks).

        `dry_run` counts instead. `max_batches` bounds the work of one call (the background prune);
        `stop` is asked between batches.
        """
        horizons = retention.horizons(now)
        report = PruneReport(horizons=horizons, dry_run=dry_run)
        report.removed = {table: 0 for kind in horizons for table in TABLES_OF[kind]}
        started = time.monotonic()
        if dry_run:
            with self._connect("count what a prune would remove", bounded=False) as conn:
                _count_all(conn, horizons, report)
            report.seconds = time.monotonic() - started
            return report
        pause = pause_s if pause_s is not None else PAUSE_S[self.dialect]
        if "runs" in horizons:
            with self._connect("keep the impact of incidents", bounded=False) as conn:
                _keep_impacts(conn, horizons["runs"])
        steps = _steps(horizons)
        for step in steps:
            while True:
                if stop() or (max_batches is not None and report.batches >= max_batches):
                    report.finished = False
                    report.seconds = time.monotonic() - started
                    return report
                with self._connect("prune history") as conn:
                    done = step(conn, report)
                report.batches += 1
                if done:
                    break
                if pause:
                    time.sleep(pause)
        with self._connect("note the prune horizons") as conn:
            for kind, at in horizons.items():
                _note_horizon(conn, kind, at)
        report.seconds = time.monotonic() - started
        return report


Step = Callable[[Connection, PruneReport], bool]  # one batch; True when nothing is left


def _steps(horizons: dict[str, datetime]) -> Iterator[Step]:
    if "records" in horizons:
        yield _RecordPruner(horizons["records"]).step
        yield functools.partial(_prune_rows, table=entity_sightings, column="last_seen", horizon=horizons["records"])
    if "runs" in horizons:
        yield lambda conn, report: _prune_runs(conn, horizons["runs"], report)
    if "heartbeats" in horizons:
        yield functools.partial(_prune_rows, table=heartbeats, column="received_at", horizon=horizons["heartbeats"])
    if "rollups" in horizons:
        for table in (tally_rollups, rollup_reasons, tally_rollups_hourly, rollup_reasons_hourly):
            yield functools.partial(_prune_rows, table=table, column="minute", horizon=horizons["rollups"])


class _RecordPruner:
    """Deletes the record rows of runs older than the horizon, a batch of runs at a time, oldest first.

    Starts where the last prune of records stopped (runs before it hold no records any more).
    """

    def __init__(self, horizon: datetime) -> None:
        self.horizon = horizon
        self.after: datetime | None = None  # within this prune: every run at or before it is done
        self.started = False

    def step(self, conn: Connection, report: PruneReport) -> bool:
        older = [runs.c.checked_at < self.horizon]
        if not self.started:
            self.started = True
            known = conn.execute(sa.select(prune_horizons.c.pruned_before).where(prune_horizons.c.kind == "records"))
            start = known.scalar()
            if start is not None:
                older.append(runs.c.checked_at >= start)
        if self.after is not None:
            older.append(runs.c.checked_at > self.after)
        times = sa.select(runs.c.checked_at).where(*older).order_by(runs.c.checked_at).limit(BATCH_RUNS)
        batch = list(conn.execute(times).scalars())
        if not batch:
            return True
        last = batch[-1]
        # Every run up to `last` (ties included): the next batch starts strictly after it.
        chosen = sa.select(runs.c.run_id).where(*older, runs.c.checked_at <= last)
        report.count("run_records", conn.execute(run_records.delete().where(run_records.c.run_id.in_(chosen))).rowcount)
        self.after = last
        return len(batch) < BATCH_RUNS


def _prune_runs(conn: Connection, horizon: datetime, report: PruneReport) -> bool:
    batch = list(
        conn.execute(
            sa.select(runs.c.run_id).where(runs.c.checked_at < horizon).order_by(runs.c.checked_at).limit(BATCH_RUNS)
        ).scalars()
    )
    if not batch:
        return True
    for table in (run_records, run_tallies, consumption):
        report.count(table.name, conn.execute(table.delete().where(table.c.run_id.in_(batch))).rowcount)
    report.count("runs", conn.execute(runs.delete().where(runs.c.run_id.in_(batch))).rowcount)
    return len(batch) < BATCH_RUNS


def _prune_rows(conn: Connection, report: PruneReport, *, table: sa.Table, column: str, horizon: datetime) -> bool:
    """Delete about BATCH_ROWS of the oldest rows of `table` before `horizon` (by `column`, which is indexed)."""
    moment = table.c[column]
    edge = conn.execute(
        sa.select(moment).where(moment < horizon).order_by(moment).offset(BATCH_ROWS - 1).limit(1)
    ).scalar()
    cut = moment < horizon if edge is None else sa.and_(moment <= edge, moment < horizon)
    report.count(table.name, conn.execute(table.delete().where(cut)).rowcount)
    return edge is None


def _keep_impacts(conn: Connection, horizon: datetime) -> None:
    """Keep the impact totals of every recovered incident that began before `horizon` with the incident itself."""
    from guard import impact as impacts
    from guard.lineage._operations import impact

    due = conn.execute(
        sa.select(incidents).where(
            incidents.c.impact.is_(None), incidents.c.recovered_at.is_not(None), incidents.c.started_at < horizon
        )
    ).mappings()
    for incident in list(due):
        start, end = impacts.window(incident["started_at"], incident["recovered_at"], incident["recovered_at"])
        totals = impacts.from_rows(impact(conn, incident["source"], incident["object"], start, end)).totals()
        conn.execute(incidents.update().where(incidents.c.id == incident["id"]), {"impact": totals})


def _note_horizon(conn: Connection, kind: str, at: datetime) -> None:
    known = conn.execute(sa.select(prune_horizons.c.pruned_before).where(prune_horizons.c.kind == kind)).scalar()
    if known is None:
        conn.execute(prune_horizons.insert(), {"kind": kind, "pruned_before": at})
    elif at > known:
        conn.execute(prune_horizons.update().where(prune_horizons.c.kind == kind), {"pruned_before": at})


def _count_all(conn: Connection, horizons: dict[str, datetime], report: PruneReport) -> None:
    def older(table: sa.Table, column: str, horizon: datetime) -> int:
        return int(conn.execute(sa.select(sa.func.count()).where(table.c[column] < horizon)).scalar() or 0)

    def of_runs(table: sa.Table, horizon: datetime) -> int:
        old = sa.select(runs.c.run_id).where(runs.c.checked_at < horizon)
        return int(conn.execute(sa.select(sa.func.count()).where(table.c.run_id.in_(old))).scalar() or 0)

    if "records" in horizons:
        report.count("run_records", of_runs(run_records, horizons["records"]))
        report.count("entity_sightings", older(entity_sightings, "last_seen", horizons["records"]))
    if "runs" in horizons:
        for table in (run_tallies, consumption):
            report.count(table.name, of_runs(table, horizons["runs"]))
        report.count("runs", older(runs, "checked_at", horizons["runs"]))
    if "heartbeats" in horizons:
        report.count("heartbeats", older(heartbeats, "received_at", horizons["heartbeats"]))
    if "rollups" in horizons:
        for table in (tally_rollups, rollup_reasons, tally_rollups_hourly, rollup_reasons_hourly):
            report.count(table.name, older(table, "minute", horizons["rollups"]))
