"""When each entity was last checked through each source: coverage (distinct entities per window) by index.

Functions over a connection the store opened; `LineageStore` exposes them.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from guard.lineage._rollups import upsert_statement
from guard.lineage.tables import entity_sightings

#: Rows per upsert statement (SQLite caps bound parameters).
_CHUNK = 500

Sighting = tuple[str, str, str]  # (source, object, key)


def add(conn: Connection, seen: Iterable[tuple[Sighting, datetime]]) -> None:
    """Note that each entity was checked at that time (the newest time wins)."""
    newest: dict[Sighting, datetime] = {}
    for entity, at in seen:
        known = newest.get(entity)
        if known is None or at > known:
            newest[entity] = at
    if not newest:
        return
    rows = [{"source": s, "object": o, "key": k, "last_seen": at} for (s, o, k), at in sorted(newest.items())]
    statement = _newest_sighting(conn.dialect.name)
    for start in range(0, len(rows), _CHUNK):
        conn.execute(statement, rows[start : start + _CHUNK])


@functools.cache
def _newest_sighting(dialect: str) -> Any:
    """Insert a sighting, or move an entity's last sighting forward (never back): built once per dialect."""
    insert = upsert_statement(dialect, entity_sightings)
    new, old = insert.excluded, entity_sightings.c
    return insert.on_conflict_do_update(
        index_elements=["source", "object", "key"],
        set_={"last_seen": sa.case((new.last_seen > old.last_seen, new.last_seen), else_=old.last_seen)},
    )


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
