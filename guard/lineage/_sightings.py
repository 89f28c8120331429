"""When each entity was last checked through each source: coverage (distinct entities per window) by index.

Functions over a connection the store opened; `LineageStore` exposes them.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from guard.lineage._base import as_stored_time
from guard.lineage.tables import entity_sightings

Sighting = tuple[str, str, str]  # (source, object, key)


def add(conn: Connection, seen: Iterable[tuple[Sighting, datetime]]) -> None:
    """Note that each entity was checked at that time (the newest time wins).

    On the request path: one statement on the driver, its timestamps converted once per value,
    with none of SQLAlchemy's per-row binding.
    """
    newest: dict[Sighting, datetime] = {}
    for entity, at in seen:
        known = newest.get(entity)
        if known is None or at > known:
            newest[entity] = at
    if not newest:
        return
    sqlite = conn.dialect.name == "sqlite"
    stamp = as_stored_time(sqlite)
    # In key order: concurrent writers (PostgreSQL, several processes) lock rows in one order, never deadlock.
    rows = [(s, o, k, stamp(at)) for (s, o, k), at in sorted(newest.items())]
    conn.exec_driver_sql(_NEWEST_SQLITE if sqlite else _NEWEST_POSTGRESQL, rows)


def _newest(mark: str) -> str:
    """Insert a sighting, or move an entity's last sighting forward (never back)."""
    return (
        f'INSERT INTO entity_sightings (source, object, "key", last_seen) VALUES ({mark}, {mark}, {mark}, {mark}) '  # noqa: S608
        'ON CONFLICT (source, object, "key") DO UPDATE SET last_seen = excluded.last_seen '
        "WHERE excluded.last_seen > entity_sightings.last_seen"
    )


_NEWEST_SQLITE, _NEWEST_POSTGRESQL = _newest("?"), _newest("%s")


def counts_since(conn: Connection, start: datetime, points: Iterable[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """How many distinct entities each of `points` (source, object) had checked at or after `start`.

    One index range count per point: the cost follows the entities of the window, not the history.
    """
    found: dict[tuple[str, str], int] = {}
    for source, obj in points:
        count = conn.execute(
            sa.select(sa.func.count()).where(
                entity_sightings.c.source == source, entity_sightings.c.object == obj,
                entity_sightings.c.last_seen >= start,
            )
        ).scalar_one()  # fmt: skip
        if count:
            found[source, obj] = int(count)
    return found
