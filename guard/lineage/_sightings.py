"""When each entity was last checked through each source: coverage (distinct entities per window) by index.

Functions over a connection the store opened; `LineageStore` exposes them.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

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
    statement = upsert_statement(conn, entity_sightings)
    new, old = statement.excluded, entity_sightings.c
    statement = statement.on_conflict_do_update(
        index_elements=["source", "object", "key"],
        set_={"last_seen": sa.case((new.last_seen > old.last_seen, new.last_seen), else_=old.last_seen)},
    )
    for start in range(0, len(rows), _CHUNK):
        conn.execute(statement, rows[start : start + _CHUNK])


def counts_since(conn: Connection, start: datetime) -> dict[tuple[str, str], int]:
    """How many distinct entities each (source, object) had checked at or after `start`."""
    query = (
        sa.select(entity_sightings.c.source, entity_sightings.c.object, sa.func.count())
        .where(entity_sightings.c.last_seen >= start)
        .group_by(entity_sightings.c.source, entity_sightings.c.object)
    )
    return {(source, obj): count for source, obj, count in conn.execute(query)}
