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
from guard.lineage._checkpoints import checkpoint
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

#: Runs in a prune's first batch: it deletes their records (20 per run is 500 rows) in one short transaction.
BATCH_RUNS = 25
#: Rows in the first batch of heartbeats, rollups and sightings.
BATCH_ROWS = 500
#: How long one batch may hold its transaction (seconds): the longest a check waits for a prune.
BATCH_TARGET_S = 0.015
#: How far batches grow or shrink from the first ones, to take about BATCH_TARGET_S each.
SCALE_RANGE = (0.2, 40.0)

#: The least pause between batches, per dialect (seconds); a batch is also followed by a pause as long as itself.
PAUSE_S = {"sqlite": 0.005, "postgresql": 0.002}

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

        Batches are paced (`Pacer`): each is sized to hold its transaction about BATCH_TARGET_S, and
        is followed by a pause at least as long, so a check never waits long for SQLite's one write
        lock (or for PostgreSQL's WAL behind a large delete) and checks get at least half the time.
        A `pause_s` given fixes the pause instead.

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
        pacer = Pacer(PAUSE_S[self.dialect] if pause_s is None else pause_s, fixed=pause_s is not None)
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
                began = time.monotonic()
                with self._connect("prune history") as conn:
                    done = step(conn, report, pacer.scale)
                if self.dialect == "sqlite":
                    self._checkpoint_wal()
                report.batches += 1
                if done:
                    break
                time.sleep(pacer.after(time.monotonic() - began))
        with self._connect("note the prune horizons") as conn:
            for kind, at in horizons.items():
                _note_horizon(conn, kind, at)
        report.seconds = time.monotonic() - started
        return report

    def _checkpoint_wal(self) -> None:
        """Copy the batch's WAL frames into the database before the next batch, never waiting for a lock.

        A prune writes the WAL faster than a passive checkpoint in another thread copies it, and a WAL that
        is never started over only grows: 40 GB in 17 minutes of pruning a 1,000,000-run store beside a
        busy service. Checkpointing here paces the prune by what the disk can copy (the time counts in the
        batch's), and restarts the WAL once it is long (`checkpoint`).
        """
        with self._driver("checkpoint the WAL") as driver:
            driver.execute("PRAGMA busy_timeout = 0")
            try:
                checkpoint(driver)
            finally:
                driver.execute(f"PRAGMA busy_timeout = {round(self.timeout_s * 1000)}")


Step = Callable[[Connection, PruneReport, float], bool]  # one batch, of its size times the scale; True when done


class Pacer:
    """Sizes a prune's batches to take about BATCH_TARGET_S each, and says how long to pause after each.

    `scale` multiplies the first batches' sizes: doubled after a batch that took under a third of the
    target, halved after one that took over it, within SCALE_RANGE. The pause after a batch is as long
    as the batch (at least `least_s`), or always `least_s` when `fixed`.
    """

    def __init__(self, least_s: float, *, fixed: bool = False) -> None:
        self.least_s, self.fixed = least_s, fixed
        self.scale = 1.0

    def after(self, took_s: float) -> float:
        """Note that a batch took `took_s`; the pause to take before the next one."""
        low, high = SCALE_RANGE
        if took_s > BATCH_TARGET_S:
            self.scale = max(low, self.scale / 2)
        elif took_s < BATCH_TARGET_S / 3:
            self.scale = min(high, self.scale * 2)
        return self.least_s if self.fixed else max(self.least_s, took_s)


def _sized(base: int, scale: float) -> int:
    return max(1, round(base * scale))


def _steps(horizons: dict[str, datetime]) -> Iterator[Step]:
    if "records" in horizons:
        yield _RecordPruner(horizons["records"]).step
        yield functools.partial(_prune_rows, table=entity_sightings, column="last_seen", horizon=horizons["records"])
    if "runs" in horizons:
        yield functools.partial(_prune_runs, horizon=horizons["runs"])
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

    def step(self, conn: Connection, report: PruneReport, scale: float) -> bool:
        older = [runs.c.checked_at < self.horizon]
        if not self.started:
            self.started = True
            known = conn.execute(sa.select(prune_horizons.c.pruned_before).where(prune_horizons.c.kind == "records"))
            start = known.scalar()
            if start is not None:
                older.append(runs.c.checked_at >= start)
        if self.after is not None:
            older.append(runs.c.checked_at > self.after)
        size = _sized(BATCH_RUNS, scale)
        times = sa.select(runs.c.checked_at).where(*older).order_by(runs.c.checked_at).limit(size)
        batch = list(conn.execute(times).scalars())
        if not batch:
            return True
        last = batch[-1]
        # Every run up to `last` (ties included): the next batch starts strictly after it. By their ids, not a
        # subquery: PostgreSQL planned the join by probing the oldest end of run_records' key, where the rows
        # this prune already deleted lie dead until a vacuum (114 ms of planning a batch at 20M rows, 0.7 ms).
        chosen = list(conn.execute(sa.select(runs.c.run_id).where(*older, runs.c.checked_at <= last)).scalars())
        report.count("run_records", conn.execute(run_records.delete().where(run_records.c.run_id.in_(chosen))).rowcount)
        self.after = last
        return len(batch) < size


def _prune_runs(conn: Connection, report: PruneReport, scale: float, *, horizon: datetime) -> bool:
    size = _sized(BATCH_RUNS, scale)
    batch = list(
        conn.execute(
            sa.select(runs.c.run_id).where(runs.c.checked_at < horizon).order_by(runs.c.checked_at).limit(size)
        ).scalars()
    )
    if not batch:
        return True
    for table in (run_records, run_tallies, consumption):
        report.count(table.name, conn.execute(table.delete().where(table.c.run_id.in_(batch))).rowcount)
    report.count("runs", conn.execute(runs.delete().where(runs.c.run_id.in_(batch))).rowcount)
    return len(batch) < size


def _prune_rows(
    conn: Connection, report: PruneReport, scale: float, *, table: sa.Table, column: str, horizon: datetime
) -> bool:
    """Delete about BATCH_ROWS x `scale` of the oldest rows of `table` before `horizon` (by `column`, indexed)."""
    moment = table.c[column]
    edge = conn.execute(
        sa.select(moment).where(moment < horizon).order_by(moment).offset(_sized(BATCH_ROWS, scale) - 1).limit(1)
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
