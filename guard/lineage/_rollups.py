"""Per-minute rollups of the run tallies: what health, metrics and the dashboard read, however long the history.

Each check adds its tallies to the rollup of its UTC minute and integration point (an upsert that
adds, in the transaction that writes the run), so a window of a day is at most 1,440 rows per point
whatever the check rate. Functions over a connection the store opened; `LineageStore` exposes them.
"""

from __future__ import annotations

import functools
import itertools
import json
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from guard.lineage._driver import executemany
from guard.lineage.tables import (
    AGE_BUCKET_COLUMNS,
    rollup_reasons,
    rollup_reasons_hourly,
    tally_rollups,
    tally_rollups_hourly,
)
from guard.tallies import Tally

_MINUTE = timedelta(minutes=1)
_HOUR = timedelta(hours=1)
_COUNTS = ("runs", "records", "allowed", "warned", "blocked", "age_sum_s", *AGE_BUCKET_COLUMNS)


def minute_of(moment: datetime) -> datetime:
    """The start of the UTC minute `moment` falls in."""
    return moment.replace(second=0, microsecond=0)


@functools.lru_cache(maxsize=4096)  # a store has few points, and each check names them again
def point_key(source: str | None, obj: str | None) -> str:
    """The key of an integration point in the rollups (JSON, so that a missing source or object is distinct)."""
    return json.dumps([source, obj], ensure_ascii=False)


def hour_of(moment: datetime) -> datetime:
    """The start of the UTC hour `moment` falls in."""
    return moment.replace(minute=0, second=0, microsecond=0)


#: The grains kept: (totals table, reasons table, the start of a moment's span).
GRAINS = ((tally_rollups, rollup_reasons, minute_of), (tally_rollups_hourly, rollup_reasons_hourly, hour_of))


def add(conn: Connection, tallies: Iterable[Mapping[str, Any]]) -> None:
    """Add `run_tallies` rows (one per run and point) to the rollups of their minutes and hours."""
    minutes, minute_reasons = _summed(tallies)
    hours, hour_reasons = _by_hour(minutes, minute_reasons)
    for (totals_table, reasons_table, _), totals, reasons in zip(
        GRAINS, (minutes, hours), (minute_reasons, hour_reasons), strict=True
    ):
        # Sorted by key: concurrent writers (PostgreSQL, several processes) lock rows in one order, never deadlock.
        executemany(conn, _totals_upsert(conn.dialect.name, totals_table), [totals[key] for key in sorted(totals)])
        executemany(
            conn,
            _reasons_upsert(conn.dialect.name, reasons_table),
            [{"minute": m, "point": p, "code": c, "records": n} for (m, p, c), n in sorted(reasons.items())],
        )


Totals = dict[tuple[datetime, str], dict[str, Any]]
Reasons = dict[tuple[datetime, str, str], int]


def _summed(tallies: Iterable[Mapping[str, Any]]) -> tuple[Totals, Reasons]:
    """The tallies summed per minute and point: the minute rollups' rows, and their reasons' counts."""
    totals: Totals = {}
    reasons: Reasons = {}
    for tally in tallies:
        start, point = minute_of(tally["checked_at"]), point_key(tally["source"], tally["object"])
        row = totals.get((start, point))
        if row is None:
            row = totals[start, point] = {
                "minute": start, "point": point, "source": tally["source"], "object": tally["object"],
                "age_max_s": None, **dict.fromkeys(_COUNTS, 0),
            }  # fmt: skip
        row["runs"] += 1
        for name in ("records", "allowed", "warned", "blocked", "age_sum_s"):
            row[name] += tally[name]
        for name, count in zip(AGE_BUCKET_COLUMNS, tally["age_buckets"], strict=True):
            row[name] += count
        row["age_max_s"] = _larger(row["age_max_s"], tally["age_max_s"])
        for code, count in (tally["reasons"] or {}).items():
            reasons[start, point, code] = reasons.get((start, point, code), 0) + count
    return totals, reasons


def _by_hour(minutes: Totals, minute_reasons: Reasons) -> tuple[Totals, Reasons]:
    """Minute rollup rows summed into the rows of their hours."""
    totals: Totals = {}
    for (minute, point), summed in minutes.items():
        start = hour_of(minute)
        row = totals.get((start, point))
        if row is None:
            totals[start, point] = {**summed, "minute": start}
            continue
        for name in _COUNTS:
            row[name] += summed[name]
        row["age_max_s"] = _larger(row["age_max_s"], summed["age_max_s"])
    reasons: Reasons = {}
    for (minute, point, code), count in minute_reasons.items():
        key = (hour_of(minute), point, code)
        reasons[key] = reasons.get(key, 0) + count
    return totals, reasons


def _larger(known: float | None, other: float | None) -> float | None:
    if other is None:
        return known
    return other if known is None or other > known else known


def upsert_statement(dialect: str, table: sa.Table) -> Any:
    """An INSERT in `dialect` ("sqlite", "postgresql"), for `.on_conflict_do_update` (both spell it alike).

    Build the upsert once per dialect and table (`functools.cache`): constructing one costs more
    than executing it (a rollup's is about a millisecond of SQLAlchemy expression building).
    """
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)


@functools.cache
def _totals_upsert(dialect: str, table: sa.Table) -> Any:
    """Add a row's counts to its span's totals (the larger age_max_s wins): built once per dialect and table."""
    insert = upsert_statement(dialect, table)
    new, old = insert.excluded, table.c
    larger = sa.case(
        (new.age_max_s.is_(None), old.age_max_s),
        (sa.or_(old.age_max_s.is_(None), new.age_max_s > old.age_max_s), new.age_max_s),
        else_=old.age_max_s,
    )
    return insert.on_conflict_do_update(
        index_elements=["minute", "point"],
        set_={**{name: old[name] + new[name] for name in _COUNTS}, "age_max_s": larger},
    )


@functools.cache
def _reasons_upsert(dialect: str, table: sa.Table) -> Any:
    """Add a row's records to its span's count of a reason code: built once per dialect and table."""
    insert = upsert_statement(dialect, table)
    return insert.on_conflict_do_update(
        index_elements=["minute", "point", "code"], set_={"records": table.c.records + insert.excluded.records}
    )


def window_tallies(conn: Connection, starts: Iterable[datetime], end: datetime) -> list[Tally]:
    """The checks from the earliest of `starts` up to `end`, summed per point between consecutive starts.

    Each tally carries the start of its span as `checked_at`, so summing those at or after a start gives
    that start's whole window. Whole minutes are counted: a span runs from its start's minute. The hours
    a span covers whole are read from the hourly rollups, its edges from the per-minute ones, so a day is
    about 24 rows per point, not 1,440.
    """
    bounds = sorted(set(starts))
    if not bounds:
        return []
    edges = [minute_of(bound) for bound in bounds] + [minute_of(end) + _MINUTE]
    pieces: list[tuple[int, int, datetime, datetime]] = []  # (grain: 0 minutes, 1 hours; span; from; to)
    for position, (low, high) in enumerate(itertools.pairwise(edges)):
        first_hour, last_hour = hour_of(low + _HOUR - _MINUTE), hour_of(high)
        if first_hour < last_hour:
            pieces += [
                (0, position, low, first_hour),
                (1, position, first_hour, last_hour),
                (0, position, last_hour, high),
            ]
        else:
            pieces.append((0, position, low, high))
    found: dict[tuple[int, str], Tally] = {}
    for grain in range(len(GRAINS)):
        mine = [(position, low, high) for kind, position, low, high in pieces if kind == grain and low < high]
        if not mine:
            continue
        params = {f"{name}{n}": value for n, piece in enumerate(mine) for name, value in zip("slh", piece, strict=True)}
        totals, reasons = _window_queries(grain, len(mine))
        for row in conn.execute(totals, params).mappings():
            tally = _tally(row, bounds[row["span"]])
            known = found.get((row["span"], row["point"]))
            if known is None:
                found[row["span"], row["point"]] = tally
            else:
                known.merge(tally)
        for position, point, code, count in conn.execute(reasons, params):
            counted = found.get((position, point))
            if counted is not None:
                counted.reasons[code] = counted.reasons.get(code, 0) + int(count)
    return sorted(found.values(), key=lambda tally: tally.checked_at or bounds[0])


@functools.lru_cache(maxsize=64)
def _window_queries(grain: int, pieces: int) -> tuple[sa.CompoundSelect[Any], sa.CompoundSelect[Any]]:
    """The totals and reasons of `pieces` time ranges of one grain's rollups, per point: built once, reused.

    Range n is bound as `s{n}` (its span), `l{n}` and `h{n}` (from, to).
    """
    totals_table, reasons_table, _ = GRAINS[grain]
    moment = totals_table.c.minute.type

    def span(n: int) -> Any:
        return sa.bindparam(f"s{n}", type_=sa.Integer()).label("span")

    def within(table: sa.Table, n: int) -> Any:
        low, high = sa.bindparam(f"l{n}", type_=moment), sa.bindparam(f"h{n}", type_=moment)
        return sa.and_(table.c.minute >= low, table.c.minute < high)

    totals = sa.union_all(*(
        sa.select(
            span(n), totals_table.c.point,
            *(sa.func.sum(totals_table.c[name]).label(name) for name in _COUNTS),
            sa.func.max(totals_table.c.age_max_s).label("age_max_s"),
        ).where(within(totals_table, n)).group_by(totals_table.c.point)
        for n in range(pieces)
    ))  # fmt: skip
    reasons = sa.union_all(*(
        sa.select(span(n), reasons_table.c.point, reasons_table.c.code,
                  sa.func.sum(reasons_table.c.records).label("records"))
        .where(within(reasons_table, n)).group_by(reasons_table.c.point, reasons_table.c.code)
        for n in range(pieces)
    ))  # fmt: skip
    return totals, reasons


def minute_tallies(
    conn: Connection, start: datetime, end: datetime, point: tuple[str, str] | None = None
) -> list[Tally]:
    """One tally per minute and point from `start`'s minute up to `end` (of one point, when asked), oldest first."""
    where = [tally_rollups.c.minute >= minute_of(start), tally_rollups.c.minute <= end]
    reason_where = [rollup_reasons.c.minute >= minute_of(start), rollup_reasons.c.minute <= end]
    if point is not None:
        where.append(tally_rollups.c.point == point_key(*point))
        reason_where.append(rollup_reasons.c.point == point_key(*point))
    found: dict[tuple[datetime, str], Tally] = {}
    for row in conn.execute(sa.select(tally_rollups).where(*where).order_by(tally_rollups.c.minute)).mappings():
        found[row["minute"], row["point"]] = _tally(row, row["minute"])
    query = sa.select(rollup_reasons.c.minute, rollup_reasons.c.point, rollup_reasons.c.code, rollup_reasons.c.records)
    for minute, key, code, count in conn.execute(query.where(*reason_where)):
        tally = found.get((minute, key))
        if tally is not None:
            tally.reasons[code] = count
    return list(found.values())


def _tally(row: Mapping[Any, Any], at: datetime) -> Tally:
    source, obj = json.loads(row["point"])
    return Tally(
        source=source,
        object=obj,
        records=int(row["records"]),
        allowed=int(row["allowed"]),
        warned=int(row["warned"]),
        blocked=int(row["blocked"]),
        age_buckets=[int(row[name]) for name in AGE_BUCKET_COLUMNS],
        age_max_s=row["age_max_s"],
        age_sum_s=float(row["age_sum_s"]),
        checked_at=at,
    )
